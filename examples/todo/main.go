// Command todo is an example server that embeds synchro the way an
// application would: a to-do app whose lists and items sync to devices that
// keep a local SQLite copy and work offline.
//
//	cd examples/todo
//	go run .                               # serves http://127.0.0.1:8080/sync/...
//	go run ./client -server http://127.0.0.1:8080
//
// make demo runs both: the server, then the scripted client against it.
// The example is a module of its own (go.mod here, with a replace directive
// to the repository root), so that the client's SQLite driver
// (modernc.org/sqlite) stays out of synchro's go.mod.
//
// # DEMO-ONLY AUTHENTICATION
//
// The server believes whatever user the request names in the header
// "Authorization: Bearer <user>": anybody who reaches it can read and write
// every user's data. It listens on 127.0.0.1 by default; never expose it. A
// real application puts its own authentication in synchrohttp's
// Config.UserID (see DemoUserID in todoapp/auth.go).
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
// At start-up (package todoapp), as the superuser: the application's own
// tables (todoapp/schema.go), migrations.Migrate for schema synchro, the
// role todo_app with its grants, and the row-level security policies of
// synchro.GenerateRLSPolicies. Then:
//
//   - the engine, connected as todo_app, which has neither SUPERUSER nor
//     BYPASSRLS, so the policies apply to it;
//   - the change-capture consumer (package wal), on a replication
//     connection as the superuser, which reads every user's rows;
//   - compaction of the changelog (Engine.StartCompaction);
//   - the HTTP adapter (package synchrohttp) under /sync/;
//   - the health endpoints of synchrohttp.Health: GET /healthz (liveness:
//     200 while the server serves) and GET /readyz (readiness: 200 while
//     change capture streams and keeps up, else 503 with the reason);
//   - the metrics of the engine and of change capture (docs/metrics.md) at
//     GET /metrics, in the Prometheus text format, from todoapp.Metrics: a
//     small MeterProvider of the example's own on the OpenTelemetry metric
//     API, since the library's module has no SDK (examples/metrics shows
//     the SDK with its Prometheus exporter).
//
// SIGINT or SIGTERM shut it down in order: the HTTP server finishes the
// requests in flight, the consumer and the compaction stop, and the
// throwaway PostgreSQL is stopped and removed.
package main

import (
	"context"
	"errors"
	"expvar"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/synchrosync/synchro/examples/todo/todoapp"
)

// Bounds of the shutdown.
const (
	// shutdownTimeout bounds the HTTP server's graceful shutdown.
	shutdownTimeout = 10 * time.Second
	// stopTimeout bounds stopping the application (todoapp.App.Close),
	// the throwaway PostgreSQL included.
	stopTimeout = 30 * time.Second
)

// options are the command-line flags.
type options struct {
	addr            string
	readyFile       string
	compactInterval time.Duration
	verbose         bool
	debugAddr       string
}

func main() {
	var opts options
	flag.StringVar(&opts.addr, "addr", "127.0.0.1:8080", "`address` to listen on (port 0: any free port)")
	flag.StringVar(&opts.readyFile, "ready-file", "", "once serving, write the server's base URL (http://HOST:PORT) to this `file`")
	flag.DurationVar(&opts.compactInterval, "compact-interval", 10*time.Minute, "how often the changelog is compacted")
	flag.BoolVar(&opts.verbose, "v", false, "log at debug level")
	flag.StringVar(&opts.debugAddr, "debug-addr", "", "`address` of a second listener serving Go's profiles (/debug/pprof/) and runtime variables (/debug/vars); empty: none")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: todo [flags]\n\n"+
			"An example synchro server. DEMO-ONLY AUTHENTICATION: \"Authorization: Bearer <user>\" is believed.\n"+
			"Uses %s when set, else a throwaway local PostgreSQL.\n\n", todoapp.EnvDatabaseURL)
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

	metrics := todoapp.NewMetrics()
	app, err := todoapp.Open(ctx, todoapp.Config{
		DatabaseURL:     os.Getenv(todoapp.EnvDatabaseURL),
		CompactInterval: opts.compactInterval,
		Logger:          logger,
		MeterProvider:   metrics,
	})
	if err != nil {
		return err
	}
	// After the HTTP server: the consumer and the compaction stop, and the
	// throwaway PostgreSQL is stopped and removed.
	defer func() {
		stopCtx, cancel := context.WithTimeout(context.Background(), stopTimeout)
		defer cancel()
		err = errors.Join(err, app.Close(stopCtx))
	}()

	if opts.debugAddr != "" {
		stopDebug, err := serveDebug(opts.debugAddr, logger)
		if err != nil {
			return err
		}
		defer stopDebug()
	}

	mux := http.NewServeMux()
	mux.Handle("/sync/", app.Handler)
	mux.Handle("/healthz", app.Health)
	mux.Handle("/readyz", app.Health)
	mux.Handle("/metrics", metrics)
	// Requests run under reqCtx, which shutdown cancels once the other
	// requests had their grace: pulls waiting for changes (live sync) end
	// then instead of holding the shutdown for up to a minute.
	reqCtx, endRequests := context.WithCancel(context.Background())
	defer endRequests()
	server := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return reqCtx },
	}
	serveDone := make(chan error, 1)
	go func() { serveDone <- server.Serve(ln) }()

	base := "http://" + ln.Addr().String()
	logger.Warn("todo: DEMO-ONLY AUTHENTICATION: every request's \"Authorization: Bearer <user>\" is believed; never expose this server")
	logger.Info("todo: serving", "url", base+"/sync/", "ready", base+"/readyz", "metrics", base+"/metrics", "tables", app.Registry.TableNames())
	if opts.readyFile != "" {
		if err := writeReadyFile(opts.readyFile, base); err != nil {
			return errors.Join(err, shutdown(server, endRequests))
		}
	}

	select {
	case <-ctx.Done():
		logger.Info("todo: shutting down")
		return shutdown(server, endRequests)
	case err := <-serveDone:
		return fmt.Errorf("serving HTTP: %w", err)
	case <-app.Done():
		// The deferred Close reports why.
		return errors.Join(errors.New("change capture stopped"), shutdown(server, endRequests))
	}
}

// shutdown stops the HTTP server, letting the requests in flight finish.
func shutdown(server *http.Server, endRequests context.CancelFunc) error {
	ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- server.Shutdown(ctx) }()
	var err error
	select {
	case err = <-done:
	case <-time.After(shutdownGrace):
		endRequests() // what still runs is mostly pulls waiting for changes
		err = <-done
	}
	if err != nil {
		return fmt.Errorf("stopping the HTTP server: %w", err)
	}
	return nil
}

// shutdownGrace is how long requests in progress may finish on their own
// at shutdown before their context is cancelled.
const shutdownGrace = time.Second

// serveDebug serves Go's profiles and runtime variables on addr (operators
// and the live sync memory measure of docs/benchmarks.md use them), and
// returns the function that stops it.
func serveDebug(addr string, logger *slog.Logger) (func(), error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("-debug-addr: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.Handle("/debug/vars", expvar.Handler())
	server := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = server.Serve(ln) }()
	logger.Info("todo: debug endpoints", "url", "http://"+ln.Addr().String()+"/debug/")
	return func() { _ = server.Close() }, nil
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
