// Command todo is an example server that embeds synchro the way an
// application would: a to-do app whose lists and items sync to devices that
// keep a local SQLite copy and work offline.
//
//	go run ./examples/todo                 # serves http://127.0.0.1:8080/sync/...
//	go run ./examples/todo/client -server http://127.0.0.1:8080
//
// make demo runs both: the server, then the scripted client against it.
//
// # DEMO-ONLY AUTHENTICATION
//
// The server believes whatever user the request names in the header
// "Authorization: Bearer <user>": anybody who reaches it can read and write
// every user's data. It listens on 127.0.0.1 by default; never expose it. A
// real application puts its own authentication in synchrohttp's
// Config.UserID (see demoUserID in auth.go).
//
// # The database
//
// With SYNCHRO_DATABASE_URL set (a postgres:// URL of a superuser on a
// server with wal_level=logical), the server uses that database: give it a
// database of its own. It creates there the tables priorities, lists and
// items in schema public, the schema synchro, the login role todo_app (with
// a new random password at every start) and the replication slot
// synchro_slot with the publication synchro_pub. The slot stays after the
// server exits and holds WAL back until it is dropped:
//
//	SELECT pg_drop_replication_slot('synchro_slot');
//
// Without SYNCHRO_DATABASE_URL, the server starts a throwaway PostgreSQL from
// the local binaries (initdb and postgres on PATH or under
// /usr/lib/postgresql/*/bin; apt-get install postgresql-15) in a temporary
// directory, and removes it when it exits: every start begins empty.
//
// # What it runs
//
// At start-up, as the superuser: the application's own tables (schema.go),
// migrations.Migrate for schema synchro, the role todo_app with its grants,
// and the row-level security policies of synchro.GenerateRLSPolicies. Then:
//
//   - the engine, connected as todo_app, which has neither SUPERUSER nor
//     BYPASSRLS, so the policies apply to it;
//   - the change-capture consumer (package wal), on a replication
//     connection as the superuser, which reads every user's rows;
//   - compaction of the changelog (Engine.StartCompaction);
//   - the HTTP adapter (package synchrohttp) under /sync/.
//
// SIGINT or SIGTERM shut it down in order: the HTTP server finishes the
// requests in flight, the consumer and the compaction stop, and the
// throwaway PostgreSQL is stopped and removed.
package main

import (
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver

	"github.com/synchrosync/synchro"
	"github.com/synchrosync/synchro/internal/pglocal"
	"github.com/synchrosync/synchro/synchrohttp"
	"github.com/synchrosync/synchro/wal"
)

// envDatabaseURL names the superuser URL of the database to use.
const envDatabaseURL = "SYNCHRO_DATABASE_URL"

// Bounds of the start-up and the shutdown.
const (
	// setupTimeout bounds starting PostgreSQL and preparing the database.
	setupTimeout = 2 * time.Minute
	// consumerReadyTimeout bounds the wait for the consumer to stream.
	consumerReadyTimeout = 30 * time.Second
	// shutdownTimeout bounds the HTTP server's graceful shutdown.
	shutdownTimeout = 10 * time.Second
	// stopTimeout bounds stopping the throwaway PostgreSQL.
	stopTimeout = 30 * time.Second
)

// options are the command-line flags.
type options struct {
	addr            string
	readyFile       string
	compactInterval time.Duration
	verbose         bool
}

func main() {
	var opts options
	flag.StringVar(&opts.addr, "addr", "127.0.0.1:8080", "`address` to listen on (port 0: any free port)")
	flag.StringVar(&opts.readyFile, "ready-file", "", "once serving, write the server's base URL (http://HOST:PORT) to this `file`")
	flag.DurationVar(&opts.compactInterval, "compact-interval", 10*time.Minute, "how often the changelog is compacted")
	flag.BoolVar(&opts.verbose, "v", false, "log at debug level")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: todo [flags]\n\n"+
			"An example synchro server. DEMO-ONLY AUTHENTICATION: \"Authorization: Bearer <user>\" is believed.\n"+
			"Uses %s when set, else a throwaway local PostgreSQL.\n\n", envDatabaseURL)
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() > 0 {
		flag.Usage()
		os.Exit(2)
	}
	if opts.compactInterval <= 0 {
		fmt.Fprintln(os.Stderr, "todo: -compact-interval must be positive")
		os.Exit(2)
	}

	level := slog.LevelInfo
	if opts.verbose {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	// Caught from the start, so that an interrupted start-up still removes
	// the throwaway PostgreSQL.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		// From the first signal on, a second one kills the process at once
		// (the throwaway PostgreSQL dies with it; the next start removes its
		// directory).
		<-ctx.Done()
		stop()
	}()
	if err := run(ctx, opts, logger); err != nil {
		if ctx.Err() != nil && errors.Is(err, context.Canceled) {
			logger.Info("todo: interrupted while starting", "error", err)
		} else {
			logger.Error("todo: stopped", "error", err)
		}
		stop()
		os.Exit(1)
	}
}

// run starts everything, serves until ctx ends or something fails, and
// shuts down in order.
func run(ctx context.Context, opts options, logger *slog.Logger) (err error) {
	// The address first: a busy port should fail before PostgreSQL starts.
	ln, err := net.Listen("tcp", opts.addr)
	if err != nil {
		return err
	}
	defer func() { _ = ln.Close() }()

	superURL, stopPostgres, err := database(ctx, logger)
	if err != nil {
		return err
	}
	defer func() {
		stopCtx, cancel := context.WithTimeout(context.Background(), stopTimeout)
		defer cancel()
		if stopErr := stopPostgres(stopCtx); stopErr != nil {
			err = errors.Join(err, fmt.Errorf("stopping PostgreSQL: %w", stopErr))
		}
	}()

	reg, err := newRegistry()
	if err != nil {
		return err
	}

	// Preparing the database, as its owner.
	super, err := openPool(superURL)
	if err != nil {
		return err
	}
	defer func() { _ = super.Close() }()
	setupCtx, cancelSetup := context.WithTimeout(ctx, setupTimeout)
	defer cancelSetup()
	password, err := setUpDatabase(setupCtx, super, reg)
	if err != nil {
		return err
	}

	// The engine, as the application role, subject to row-level security.
	appURL, err := withUser(superURL, url.UserPassword(appRole, password), "")
	if err != nil {
		return err
	}
	app, err := openPool(appURL)
	if err != nil {
		return err
	}
	defer func() { _ = app.Close() }()
	engine, err := synchro.NewEngine(synchro.Config{
		DB:        app,
		Registry:  reg,
		Compactor: &synchro.CompactorConfig{Logger: logger},
		Logger:    logger,
	})
	if err != nil {
		return fmt.Errorf("starting the engine as %s: %w", appRole, err)
	}

	// Background work, stopped after the HTTP server.
	background, stopBackground := context.WithCancel(context.Background())
	defer stopBackground()

	// Change capture, as the superuser: it reads every user's rows.
	consumer, err := wal.NewConsumer(wal.ConsumerConfig{
		ConnString:  superURL,
		Registry:    reg,
		ChangelogDB: super,
		Logger:      logger,
	})
	if err != nil {
		return err
	}
	var consumerErr error // set before consumerDone is closed
	consumerDone := make(chan struct{})
	go func() {
		defer close(consumerDone)
		consumerErr = consumer.Start(background)
	}()
	defer func() {
		stopBackground()
		<-consumerDone
		if consumerErr != nil {
			err = errors.Join(err, fmt.Errorf("change capture: %w", consumerErr))
		}
	}()
	if err := waitForConsumer(setupCtx, super, consumerDone); err != nil {
		return err
	}

	// Compaction: the engine's role is subject to row-level security, so
	// the bucket edges of soft-deleted rows are kept rather than pruned (see
	// synchro.Compactor); everything else it does as documented.
	engine.StartCompaction(background, opts.compactInterval)

	handler, err := synchrohttp.New(synchrohttp.Config{
		Engine: engine,
		UserID: demoUserID,
		Logger: logger,
	})
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("/sync/", handler)
	server := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	serveDone := make(chan error, 1)
	go func() { serveDone <- server.Serve(ln) }()

	base := "http://" + ln.Addr().String()
	logger.Warn("todo: DEMO-ONLY AUTHENTICATION: every request's \"Authorization: Bearer <user>\" is believed; never expose this server")
	logger.Info("todo: serving", "url", base+"/sync/", "tables", reg.TableNames())
	if opts.readyFile != "" {
		if err := writeReadyFile(opts.readyFile, base); err != nil {
			return errors.Join(err, shutdown(server))
		}
	}

	select {
	case <-ctx.Done():
		logger.Info("todo: shutting down")
		return shutdown(server)
	case err := <-serveDone:
		return fmt.Errorf("serving HTTP: %w", err)
	case <-consumerDone:
		// The deferred join reports why.
		return errors.Join(errors.New("change capture stopped"), shutdown(server))
	}
}

// shutdown stops the HTTP server, letting the requests in flight finish.
func shutdown(server *http.Server) error {
	ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := server.Shutdown(ctx); err != nil {
		return fmt.Errorf("stopping the HTTP server: %w", err)
	}
	return nil
}

// database returns the superuser URL of the database to use, and the
// function that releases it: SYNCHRO_DATABASE_URL when set, else a
// throwaway local PostgreSQL with a database todo.
func database(ctx context.Context, logger *slog.Logger) (string, func(context.Context) error, error) {
	noop := func(context.Context) error { return nil }
	if raw := os.Getenv(envDatabaseURL); raw != "" {
		if _, err := parseURL(raw); err != nil {
			return "", nil, fmt.Errorf("%s: %w", envDatabaseURL, err)
		}
		logger.Info("todo: using the database of " + envDatabaseURL)
		return raw, noop, nil
	}

	startCtx, cancel := context.WithTimeout(ctx, setupTimeout)
	defer cancel()
	begin := time.Now()
	pg, err := pglocal.Start(startCtx, pglocal.Config{Name: "synchro-todo"})
	if err != nil {
		if errors.Is(err, pglocal.ErrUnavailable) {
			return "", nil, fmt.Errorf("no database: set %s to a postgres:// URL of a superuser on a server with wal_level=logical, or install the PostgreSQL server binaries (apt-get install postgresql-15): %w", envDatabaseURL, err)
		}
		return "", nil, fmt.Errorf("starting a throwaway PostgreSQL: %w", err)
	}
	logger.Info("todo: started a throwaway PostgreSQL", "bin", pg.BinDir(), "port", pg.Port(), "dir", pg.Dir(), "took", time.Since(begin).Round(time.Millisecond))
	stopPG := func(ctx context.Context) error {
		err := pg.Stop(ctx)
		if err == nil {
			logger.Info("todo: stopped the throwaway PostgreSQL and removed " + pg.Dir())
		}
		return err
	}

	// A database of its own rather than the maintenance database. The
	// throwaway server commits asynchronously (it is tuned for tests), and
	// logical decoding sees a commit only once the WAL writer has flushed
	// it, up to a few hundred milliseconds later; synchronous commits, as an
	// application's database has, bring change capture's latency down to
	// milliseconds.
	const name = "todo"
	admin, err := openPool(pg.URL())
	if err == nil {
		err = createDatabase(startCtx, admin, name)
		if err == nil {
			_, err = admin.ExecContext(startCtx, `ALTER DATABASE `+name+` SET synchronous_commit = on`)
		}
		err = errors.Join(err, admin.Close())
	}
	var superURL string
	if err == nil {
		superURL, err = withUser(pg.URL(), url.User("postgres"), name)
	}
	if err != nil {
		stopCtx, cancel := context.WithTimeout(context.Background(), stopTimeout)
		defer cancel()
		return "", nil, errors.Join(err, stopPG(stopCtx))
	}
	return superURL, stopPG, nil
}

// waitForConsumer waits until the consumer streams: its slot exists and a
// walsender serves it. From then on every committed change reaches the
// changelog. It fails when the consumer stops first or ctx ends.
func waitForConsumer(ctx context.Context, super *sql.DB, done <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(ctx, consumerReadyTimeout)
	defer cancel()
	for {
		var active bool
		err := super.QueryRowContext(ctx,
			`SELECT coalesce(bool_or(active), false) FROM pg_replication_slots WHERE slot_name = $1`,
			wal.DefaultSlotName).Scan(&active)
		if err == nil && active {
			return nil
		}
		timer := time.NewTimer(20 * time.Millisecond)
		select {
		case <-done:
			timer.Stop()
			return errors.New("change capture stopped while starting")
		case <-ctx.Done():
			timer.Stop()
			return fmt.Errorf("waiting for change capture to stream (slot %s): %w", wal.DefaultSlotName, errors.Join(ctx.Err(), err))
		case <-timer.C:
		}
	}
}

// writeReadyFile writes base to path atomically, so that a reader never
// sees a partial URL.
func writeReadyFile(path, base string) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".ready-*")
	if err != nil {
		return fmt.Errorf("writing -ready-file: %w", err)
	}
	_, err = tmp.WriteString(base + "\n")
	err = errors.Join(err, tmp.Close())
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("writing -ready-file: %w", err)
	}
	return nil
}

// openPool opens a database/sql pool with the pgx driver.
func openPool(dsn string) (*sql.DB, error) {
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return nil, fmt.Errorf("opening a pool: %w", err)
	}
	db.SetMaxOpenConns(20)
	return db, nil
}
