package pgtest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/synchrosync/synchro/internal/pgerr"
	"github.com/synchrosync/synchro/internal/pglocal"
)

// Environment variables that choose the server.
const (
	envDatabaseURL = "SYNCHRO_TEST_DATABASE_URL"
	envBackend     = "SYNCHRO_TEST_BACKEND"
	envImage       = "SYNCHRO_TEST_POSTGRES_IMAGE"
)

// Values of envBackend.
const (
	backendURL    = "url"
	backendDocker = "docker"
	backendLocal  = "local"
)

// errUnavailable marks a backend that is not present on this machine (as
// opposed to one that is present but failed to start). It is pglocal's, so
// that the local backend's errors carry it.
var errUnavailable = pglocal.ErrUnavailable

// server is the PostgreSQL server of the test binary.
type server struct {
	// base is the superuser URL of the maintenance database; dsnFor
	// replaces its path and user.
	base url.URL
	// admin is a superuser pool on the maintenance database.
	admin *sql.DB
	// external is true for a server the harness did not start: the
	// templates must be dropped at the end, and names must not collide
	// with other test binaries.
	external bool
	// stop stops a server the harness started; nil for an external one.
	stop func(context.Context) error
	// describe says which server this is, for messages.
	describe string
	// local is true for a server run from the local binaries (the backend
	// that can also run a DedicatedServer).
	local bool
	// runID makes database names unique to this test binary.
	runID string
	// seq numbers the test databases.
	seq atomic.Int64

	tmplMu sync.Mutex
	tmpls  map[templateKind]string
}

// startServer finds or starts a server as described in the package
// documentation.
func startServer(ctx context.Context) (*server, error) {
	switch backend := os.Getenv(envBackend); backend {
	case backendURL:
		raw := os.Getenv(envDatabaseURL)
		if raw == "" {
			return nil, fmt.Errorf("%s=%s but %s is not set", envBackend, backendURL, envDatabaseURL)
		}
		return connectURL(ctx, raw)
	case backendDocker:
		ep, err := findDocker(ctx)
		if err != nil {
			return nil, fmt.Errorf("%s=%s: %w", envBackend, backendDocker, err)
		}
		srv, err := startDocker(ctx, ep)
		if err != nil {
			return nil, fmt.Errorf("%s=%s: Docker engine at %s: %w", envBackend, backendDocker, ep.host, err)
		}
		return srv, nil
	case backendLocal:
		return startLocal(ctx)
	case "":
	default:
		return nil, fmt.Errorf("%s=%q: want %s, %s or %s", envBackend, backend, backendURL, backendDocker, backendLocal)
	}

	if raw := os.Getenv(envDatabaseURL); raw != "" {
		return connectURL(ctx, raw)
	}
	ep, dockerErr := findDocker(ctx)
	if dockerErr == nil {
		srv, err := startDocker(ctx, ep)
		if err == nil {
			return srv, nil
		}
		dockerErr = fmt.Errorf("a Docker engine answers at %s (%s) but did not give PostgreSQL in a container: %w", ep.host, ep.source, err)
	}
	srv, localErr := startLocal(ctx)
	if localErr == nil {
		if !errors.Is(dockerErr, errUnavailable) {
			// Docker answered but could not run the server: say why the
			// local binaries are used instead.
			fmt.Fprintf(os.Stderr, "pgtest: docker: %v; using the local PostgreSQL binaries\n", dockerErr)
		}
		return srv, nil
	}
	if !errors.Is(localErr, errUnavailable) {
		return nil, localErr
	}
	return nil, fmt.Errorf(`no PostgreSQL server for the tests
  docker: %v
  local:  %v
Provide one of:
  - %s=postgres://USER:PASSWORD@HOST:PORT/postgres, a superuser on a server with wal_level=logical
  - a running Docker engine (image from %s, default %s)
  - the PostgreSQL server binaries, e.g. apt-get install postgresql-15`,
		dockerErr, localErr, envDatabaseURL, envImage, defaultImage)
}

// connectURL uses the external server at raw.
func connectURL(ctx context.Context, raw string) (*server, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		// The parse error would echo the URL, password included.
		return nil, fmt.Errorf("%s must be a postgres://USER:PASSWORD@HOST:PORT/DATABASE URL", envDatabaseURL)
	}
	srv, err := newServer(ctx, *u, nil, "the server of "+envDatabaseURL)
	if err != nil {
		return nil, err
	}
	srv.external = true
	return srv, nil
}

// newServer connects to the server at base, checks that it can serve the
// tests and creates AppRole. On failure it calls stop (when not nil).
func newServer(ctx context.Context, base url.URL, stop func(context.Context) error, describe string) (_ *server, err error) {
	srv := &server{
		base:     base,
		stop:     stop,
		describe: describe,
		runID:    fmt.Sprintf("%d_%04x", os.Getpid(), rand.N(0x10000)),
		tmpls:    make(map[templateKind]string),
	}
	defer func() {
		if err == nil {
			return
		}
		if srv.admin != nil {
			_ = srv.admin.Close()
		}
		if stop != nil {
			stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
			defer cancel()
			if stopErr := stop(stopCtx); stopErr != nil {
				err = errors.Join(err, fmt.Errorf("stopping PostgreSQL: %w", stopErr))
			}
		}
	}()

	if srv.admin, err = openPool(base.String()); err != nil {
		return nil, err
	}
	var (
		walLevel  string
		superuser bool
	)
	err = srv.admin.QueryRowContext(ctx,
		`SELECT current_setting('wal_level'), rolsuper FROM pg_roles WHERE rolname = current_user`,
	).Scan(&walLevel, &superuser)
	if err != nil {
		return nil, fmt.Errorf("connecting to %s: %w", describe, err)
	}
	if walLevel != "logical" {
		return nil, fmt.Errorf("%s runs with wal_level=%s; the tests need wal_level=logical", describe, walLevel)
	}
	if !superuser {
		return nil, fmt.Errorf("%s: user %q is not a superuser; the tests need one", describe, base.User.Username())
	}
	if err := srv.ensureAppRole(ctx); err != nil {
		return nil, err
	}
	return srv, nil
}

// ensureAppRole creates AppRole, tolerating a concurrent creation by another
// test binary, and checks that an existing role is subject to RLS.
func (s *server) ensureAppRole(ctx context.Context) error {
	// CREATE ROLE takes no parameters: let the server quote the password.
	var password string
	if err := s.admin.QueryRowContext(ctx, `SELECT quote_literal($1::text)`, appPassword).Scan(&password); err != nil {
		return fmt.Errorf("quoting the password of %s: %w", AppRole, err)
	}
	create := `CREATE ROLE ` + ident(AppRole) + ` LOGIN PASSWORD ` + password +
		` NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE`
	if _, err := s.admin.ExecContext(ctx, create); err != nil && !hasCode(err, pgerr.DuplicateObject, pgerr.UniqueViolation) {
		return fmt.Errorf("creating role %s: %w", AppRole, err)
	}

	var superuser, bypassRLS, login bool
	err := s.admin.QueryRowContext(ctx,
		`SELECT rolsuper, rolbypassrls, rolcanlogin FROM pg_roles WHERE rolname = $1`, AppRole,
	).Scan(&superuser, &bypassRLS, &login)
	if err != nil {
		return fmt.Errorf("reading role %s: %w", AppRole, err)
	}
	if superuser || bypassRLS || !login {
		return fmt.Errorf("role %s already exists with SUPERUSER, BYPASSRLS or NOLOGIN; the tests need it without: drop the role", AppRole)
	}
	return nil
}

// close drops what the harness left on an external server and stops a
// server the harness started.
func (s *server) close(ctx context.Context) error {
	var errs []error
	if s.external {
		s.tmplMu.Lock()
		// Migrated templates are copies of the plain one: drop them first.
		for _, kind := range []templateKind{migratedTemplate, plainTemplate} {
			if name, ok := s.tmpls[kind]; ok {
				if err := s.dropDatabase(ctx, name); err != nil {
					errs = append(errs, err)
				}
				delete(s.tmpls, kind)
			}
		}
		s.tmplMu.Unlock()
	}
	if err := s.admin.Close(); err != nil {
		errs = append(errs, fmt.Errorf("closing pool: %w", err))
	}
	if s.stop != nil {
		if err := s.stop(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// nextDatabaseName returns a database name no other test of any test
// binary uses.
func (s *server) nextDatabaseName() string {
	return fmt.Sprintf("synchro_test_%s_%d", s.runID, s.seq.Add(1))
}

// dsn returns the superuser URL of database name with the extra query
// parameters.
func (s *server) dsn(name string, extra url.Values) string {
	return s.dsnFor(name, s.base.User, extra)
}

// dsnAs returns the URL of database name for user.
func (s *server) dsnAs(name string, user *url.Userinfo) string {
	return s.dsnFor(name, user, nil)
}

func (s *server) dsnFor(name string, user *url.Userinfo, extra url.Values) string {
	u := s.base
	u.User = user
	u.Path = "/" + name
	u.RawPath = ""
	q := u.Query()
	// A dbname parameter would override the path.
	q.Del("dbname")
	q.Del("database")
	for k, v := range extra {
		q[k] = v
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// createDatabase creates name as a copy of tmpl. CREATE DATABASE fails while
// another session is connected to the template; the harness closes its own
// connections to templates, but the server ends those sessions
// asynchronously, so the copy is retried a few times.
func (s *server) createDatabase(ctx context.Context, name, tmpl string) error {
	stmt := `CREATE DATABASE ` + ident(name) + ` TEMPLATE ` + ident(tmpl)
	const attempts = 5
	for attempt := 1; ; attempt++ {
		_, err := s.admin.ExecContext(ctx, stmt)
		if err == nil {
			return nil
		}
		if !hasCode(err, pgerr.ObjectInUse) || attempt == attempts {
			return fmt.Errorf("creating database %s from %s: %w", name, tmpl, err)
		}
		if err := s.terminateSessions(ctx, tmpl); err != nil {
			return fmt.Errorf("creating database %s from %s: %w", name, tmpl, err)
		}
		if err := sleep(ctx, time.Duration(attempt)*100*time.Millisecond); err != nil {
			return fmt.Errorf("creating database %s from %s: %w", name, tmpl, err)
		}
	}
}

// terminateSessions ends every other session connected to database name.
func (s *server) terminateSessions(ctx context.Context, name string) error {
	_, err := s.admin.ExecContext(ctx,
		`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()`, name)
	if err != nil {
		return fmt.Errorf("terminating sessions of %s: %w", name, err)
	}
	return nil
}

// dropDatabase drops database name, after the replication slots created in
// it: DROP DATABASE refuses while the database has logical slots, and a slot
// cannot be dropped while a walsender streams it.
func (s *server) dropDatabase(ctx context.Context, name string) error {
	if err := s.dropSlots(ctx, name); err != nil {
		return fmt.Errorf("dropping database %s: %w", name, err)
	}
	if _, err := s.admin.ExecContext(ctx, `DROP DATABASE IF EXISTS `+ident(name)+` WITH (FORCE)`); err != nil {
		return fmt.Errorf("dropping database %s: %w", name, err)
	}
	return nil
}

// dropSlots terminates the walsenders connected to database name and drops
// its replication slots, waiting (bounded by ctx and a deadline) for the
// terminated walsenders to release them.
func (s *server) dropSlots(ctx context.Context, name string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		_, err := s.admin.ExecContext(ctx, `
			SELECT pg_terminate_backend(pid) FROM pg_stat_activity
			WHERE datname = $1 AND backend_type = 'walsender'
			UNION ALL
			SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots
			WHERE database = $1 AND active_pid IS NOT NULL`, name)
		if err != nil {
			return fmt.Errorf("terminating walsenders: %w", err)
		}
		slots, err := s.slotsOf(ctx, name)
		if err != nil {
			return err
		}
		if len(slots) == 0 {
			return nil
		}
		inUse := false
		for _, slot := range slots {
			_, err := s.admin.ExecContext(ctx, `SELECT pg_drop_replication_slot($1)`, slot)
			switch {
			case err == nil:
			case hasCode(err, pgerr.ObjectInUse):
				// Its walsender has not exited yet.
				inUse = true
			case hasCode(err, pgerr.UndefinedObject):
				// Dropped meanwhile: a temporary slot whose session ended.
			default:
				return fmt.Errorf("dropping replication slot %s: %w", slot, err)
			}
		}
		if !inUse {
			continue
		}
		if err := sleep(ctx, 20*time.Millisecond); err != nil {
			return fmt.Errorf("replication slots %s still in use: %w", strings.Join(slots, ", "), err)
		}
	}
}

// slotsOf lists the replication slots of database name.
func (s *server) slotsOf(ctx context.Context, name string) ([]string, error) {
	rows, err := s.admin.QueryContext(ctx, `SELECT slot_name FROM pg_replication_slots WHERE database = $1`, name)
	if err != nil {
		return nil, fmt.Errorf("listing replication slots: %w", err)
	}
	defer rows.Close()
	var slots []string
	for rows.Next() {
		var slot string
		if err := rows.Scan(&slot); err != nil {
			return nil, fmt.Errorf("listing replication slots: %w", err)
		}
		slots = append(slots, slot)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("listing replication slots: %w", err)
	}
	return slots, nil
}

// ident quotes a single SQL identifier.
func ident(name string) string {
	return pgx.Identifier{name}.Sanitize()
}

// sleep waits for d or until ctx is done, whichever comes first. It is used
// only between the attempts of bounded retry loops.
func sleep(ctx context.Context, d time.Duration) error {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
