// Package pgtest gives every test its own PostgreSQL database on one server
// shared by the test binary. It is imported only by tests.
//
// # Usage
//
// A package whose tests need a database calls [Main] from TestMain, then each
// test asks for a fresh database:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
//
//	func TestSomething(t *testing.T) {
//		t.Parallel()
//		db := pgtest.NewMigratedDatabase(t)
//		// db.Super, db.App, db.ReplicationDSN ...
//	}
//
// Databases are copies of template databases, created once per test binary,
// so a new database costs one CREATE DATABASE. Each is dropped when its test
// ends, together with any replication slot created in it.
//
// # Where the server comes from
//
// Main looks for a server in this order:
//
//  1. SYNCHRO_TEST_DATABASE_URL: a postgres:// URL of a superuser on a server
//     running with wal_level=logical. Several test binaries may share it: the
//     names of their databases differ.
//  2. A container started with testcontainers-go when a Docker engine
//     answers. The image is SYNCHRO_TEST_POSTGRES_IMAGE (default
//     postgres:15; any image with the official image's entrypoint
//     contract). Whether an engine answers is checked with the standard
//     library, where testcontainers-go looks (tc.host and docker.host of
//     ~/.testcontainers.properties, DOCKER_HOST, /var/run/docker.sock, the
//     rootless and Docker Desktop sockets; unix:// and tcp:// addresses):
//     GET /_ping within two seconds. The container itself is run by the
//     program internal/pgcontainer, a module of its own that keeps
//     testcontainers-go and the Docker client out of synchro's go.mod;
//     this package runs it with `go run` (built once, then cached by Go),
//     reads the server's URL from it and keeps its standard input open for
//     as long as the server is in use. When an engine answers but the
//     container does not start (the image cannot be pulled or run), the
//     tests say why in one message on standard error and go on with the
//     local binaries.
//  3. The local PostgreSQL binaries (initdb and postgres on PATH or under
//     /usr/lib/postgresql/*/bin), started in a temporary directory on a free
//     port. When the test runs as root the server runs as the postgres OS
//     user. The server is killed if the test binary dies.
//
// SYNCHRO_TEST_BACKEND=url|docker|local forces one of them.
//
// The local server lives in a directory under SYNCHRO_TEST_TMPDIR when set,
// else under /dev/shm when it is writable (creating databases on a tmpfs is
// about ten times faster than on a disk), else under os.TempDir.
//
// # Interrupted runs
//
// Main stops the server when the tests end, pass or fail, and on SIGINT or
// SIGTERM. If the test binary is killed outright, a local server dies with
// it (Linux) and the next test binary removes its directory; a container is
// removed by internal/pgcontainer when its standard input closes, which a
// killed test binary closes too (testcontainers' reaper, where it runs,
// would also remove it). On an external server the databases of
// a killed binary stay behind: their names start with synchro_test_ and
// synchro_tmpl_.
//
// # A server of one's own
//
// A test that restarts the server (a fault test) asks for a
// [DedicatedServer] instead: a server for that test alone, with databases
// made the same way, available with the local binaries only.
//
// # Helpers
//
// Exec, QueryRow and Count run a statement or read a row and fail the test
// on error; WaitFor waits for a condition under a deadline (Poll, for a
// goroutine that may not fail the test):
//
//	pgtest.Exec(t, db.Super, `INSERT INTO lists (id) VALUES ($1)`, "l1")
//	var name string
//	pgtest.QueryRow(t, db.Super, `SELECT name FROM lists WHERE id = $1`, "l1").Scan(&name)
//	pgtest.WaitFor(t, "the row to be captured", 30*time.Second, func() (bool, string) {
//		n := pgtest.Count(t, db.Super, `SELECT count(*) FROM synchro.changelog`)
//		return n > 0, fmt.Sprintf("%d changelog rows", n)
//	})
//
// # Roles
//
// Every database has two pools: Super, connected as a superuser, and App,
// connected as [AppRole], a login role without SUPERUSER or BYPASSRLS, so
// row level security applies to it. AppRole may use and create objects in
// schema public and, in a migrated database, use every table of schema
// synchro; tables a test creates as the superuser are granted to it by
// default privileges.
package pgtest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver

	"github.com/synchrosync/synchro/internal/pgerr"
)

// AppRole is the login role of [Database.App] and [Database.AppDSN]: no
// SUPERUSER, no BYPASSRLS, no CREATEDB, no CREATEROLE. Its password is its
// name.
const AppRole = "synchro_app"

// appPassword is AppRole's password.
const appPassword = "synchro_app"

// maxOpenConns bounds each pool of a Database, so that many parallel tests
// stay well below the server's max_connections.
const maxOpenConns = 10

// Database is a fresh database of its own for one test, dropped when the
// test ends.
type Database struct {
	// Name is the database name, unique on the server.
	Name string
	// DSN is a postgres:// URL of this database for a superuser.
	DSN string
	// ReplicationDSN is DSN with replication=database: a superuser
	// connection that can create and stream logical replication slots.
	ReplicationDSN string
	// AppDSN is a postgres:// URL of this database for AppRole.
	AppDSN string
	// Super is a pool (pgx stdlib driver) connected as the superuser.
	Super *sql.DB
	// App is a pool (pgx stdlib driver) connected as AppRole, which is
	// subject to row level security.
	App *sql.DB
}

// active is the shared server, nil until its first use (see shared).
var active atomic.Pointer[server]

// Main runs the tests with one PostgreSQL server for the test binary,
// started by the first test that asks for a database, and stops it at the
// end. Call it from TestMain:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
//
// Tests that need no database (decoders, registry checks, SQL text) run
// without one: a binary that runs only those starts no server. Main never
// returns: it exits with the tests' exit code, after stopping the server and
// removing its files even when tests failed. After a green run it checks
// that no goroutine of the library outlives the tests (a consumer or a
// compaction loop nobody stopped): if one does after 5 s, it prints its
// stack and exits with status 1. SIGINT and SIGTERM stop the server too. When no server can be found or started, each test that asks
// for a database fails with why and how to provide one.
func Main(m *testing.M) {
	os.Exit(run(m))
}

// startTimeout bounds finding or starting the server, image pull included.
const startTimeout = 10 * time.Minute

func run(m *testing.M) int {
	// Caught from the start, so that an interrupted run always stops the
	// server and removes its files.
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(signals)

	// The server starts on first use (see shared), so that the tests that
	// need no database (decoders, registry, SQL text) run without one.
	lazy.start = func() (*server, error) {
		srv, err := start(signals)
		if err != nil {
			return nil, err
		}
		if testing.Verbose() {
			fmt.Fprintf(os.Stderr, "pgtest: using %s\n", srv.describe)
		}
		active.Store(srv)
		return srv, nil
	}

	var once sync.Once
	shutdown := func() {
		once.Do(func() {
			lazy.mu.Lock() // no start after this, none under way
			defer lazy.mu.Unlock()
			lazy.closed = true
			if srv := active.Load(); srv != nil {
				if err := closeServer(srv); err != nil {
					fmt.Fprintf(os.Stderr, "pgtest: stopping PostgreSQL: %v\n", err)
				}
			}
		})
	}
	done := make(chan struct{})
	watcherDone := make(chan struct{})
	go func() {
		defer close(watcherDone)
		select {
		case sig := <-signals:
			fmt.Fprintf(os.Stderr, "pgtest: %v: stopping PostgreSQL\n", sig)
			shutdown()
			os.Exit(1)
		case <-done:
		}
	}()

	code := m.Run()

	close(done)
	<-watcherDone
	shutdown()
	if code == 0 {
		code = checkLeaks()
	}
	return code
}

// start finds or starts the server. A signal meanwhile cancels the start,
// which cleans up after itself.
func start(signals <-chan os.Signal) (*server, error) {
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	type result struct {
		srv *server
		err error
	}
	started := make(chan result, 1)
	go func() {
		srv, err := startServer(ctx)
		started <- result{srv, err}
	}()
	select {
	case r := <-started:
		return r.srv, r.err
	case sig := <-signals:
		cancel()
		r := <-started
		err := fmt.Errorf("%v while starting PostgreSQL", sig)
		if r.srv != nil {
			// Started just as the signal came.
			err = errors.Join(err, closeServer(r.srv))
		}
		return nil, err
	}
}

// closeServer stops srv within a minute.
func closeServer(srv *server) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return srv.close(ctx)
}

// NewDatabase creates a fresh, empty database for t and drops it when t
// ends. AppRole may use and create objects in its schema public.
func NewDatabase(t testing.TB) *Database {
	t.Helper()
	return newDatabase(t, plainTemplate)
}

// NewMigratedDatabase is [NewDatabase] with migrations.Migrate already
// applied, and AppRole granted the use of schema synchro and its tables.
func NewMigratedDatabase(t testing.TB) *Database {
	t.Helper()
	return newDatabase(t, migratedTemplate)
}

func newDatabase(t testing.TB, kind templateKind) *Database {
	t.Helper()
	return shared(t).newDatabase(t, kind)
}

// lazy starts the shared server on first use; Main sets start.
var lazy struct {
	mu     sync.Mutex
	start  func() (*server, error)
	err    error // the first start's failure, reported to every later caller
	closed bool  // Main is shutting down
}

// shared returns the shared server, starting it on first use; it fails t
// when there is none.
func shared(t testing.TB) *server {
	t.Helper()
	if srv := active.Load(); srv != nil {
		return srv
	}
	lazy.mu.Lock()
	defer lazy.mu.Unlock()
	if srv := active.Load(); srv != nil {
		return srv
	}
	switch {
	case lazy.start == nil:
		t.Fatal("pgtest: no PostgreSQL server: call pgtest.Main from TestMain")
	case lazy.closed:
		t.Fatal("pgtest: the tests are over")
	case lazy.err == nil:
		if _, lazy.err = lazy.start(); lazy.err == nil {
			return active.Load()
		}
	}
	t.Fatalf("pgtest: %v", lazy.err)
	return nil
}

// newDatabase creates a database of kind on srv for t, dropped when t ends.
func (srv *server) newDatabase(t testing.TB, kind templateKind) *Database {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()

	tmpl, err := srv.template(ctx, kind)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	name := srv.nextDatabaseName()
	if err := srv.createDatabase(ctx, name, tmpl); err != nil {
		t.Fatalf("pgtest: %v", err)
	}

	db := &Database{
		Name:           name,
		DSN:            srv.dsn(name, nil),
		ReplicationDSN: srv.dsn(name, url.Values{"replication": {"database"}}),
		AppDSN:         srv.dsnAs(name, url.UserPassword(AppRole, appPassword)),
	}
	// Registered before the pools are opened: cleanups run last-in first-out,
	// and the pools must be closed before the database is dropped.
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := srv.dropDatabase(ctx, name); err != nil {
			t.Errorf("pgtest: %v", err)
		}
	})

	if db.Super, err = openPool(db.DSN); err != nil {
		t.Fatalf("pgtest: database %s as superuser: %v", name, err)
	}
	t.Cleanup(func() { closePool(t, name, db.Super) })
	if db.App, err = openPool(db.AppDSN); err != nil {
		t.Fatalf("pgtest: database %s as %s: %v", name, AppRole, err)
	}
	t.Cleanup(func() { closePool(t, name, db.App) })
	return db
}

// openPool opens a database/sql pool with the pgx driver. It does not
// connect yet.
func openPool(dsn string) (*sql.DB, error) {
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return nil, fmt.Errorf("opening pool: %w", err)
	}
	db.SetMaxOpenConns(maxOpenConns)
	db.SetMaxIdleConns(maxOpenConns)
	return db, nil
}

func closePool(t testing.TB, name string, db *sql.DB) {
	if err := db.Close(); err != nil {
		t.Errorf("pgtest: closing pool of %s: %v", name, err)
	}
}

// hasCode reports whether err is a PostgreSQL error with one of codes.
func hasCode(err error, codes ...string) bool {
	code := pgerr.Code(err)
	return code != "" && slices.Contains(codes, code)
}

// checkLeaks reports goroutines of the library that outlive a green run
// (a consumer, a compaction loop or a batch writer nobody stopped): it
// waits up to leakGrace for them to end, then prints their stacks and
// returns 1. Goroutines of other packages (database/sql's connection
// openers, pgx's readers) are not the library's to stop.
func checkLeaks() int {
	deadline := time.Now().Add(leakGrace)
	for {
		leaks := libraryGoroutines()
		if len(leaks) == 0 {
			return 0
		}
		if time.Now().After(deadline) {
			fmt.Fprintf(os.Stderr, "pgtest: %d goroutines of the library still run after the tests passed:\n\n%s\n",
				len(leaks), strings.Join(leaks, "\n\n"))
			return 1
		}
		time.Sleep(50 * time.Millisecond) // polling under a deadline
	}
}

// leakGrace is how long checkLeaks lets goroutines finish.
const leakGrace = 5 * time.Second

// libraryGoroutines returns the stacks of the running goroutines that are
// in a function of the library (not of this package or of a test).
func libraryGoroutines() []string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if !strings.Contains(g, "github.com/synchrosync/synchro") {
			continue
		}
		own := true
		for _, line := range strings.Split(g, "\n") {
			if strings.HasPrefix(line, "github.com/synchrosync/synchro") && !strings.HasPrefix(line, "github.com/synchrosync/synchro/internal/pgtest.") &&
				!strings.Contains(line, "_test.") && !strings.Contains(line, ".Test") {
				own = false
				break
			}
		}
		if !own {
			out = append(out, g)
		}
	}
	return out
}
