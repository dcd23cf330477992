// Package todoapp is the application of the example server examples/todo,
// importable so that other programs (a load program, say) run the same
// application in-process: a to-do app whose lists and items sync to devices
// that keep a local SQLite copy and work offline.
//
// Open prepares the database as its superuser (the application's tables,
// migrations.Migrate for schema synchro, the role AppRole with its grants,
// the row-level security policies of synchro.GenerateRLSPolicies), then
// starts the engine as AppRole, change capture (package wal) as the
// superuser, and compaction of the changelog. The caller serves App.Handler
// under /sync/ and App.Health at /healthz and /readyz, and calls App.Close
// when done. With Config.MeterProvider set, the engine and change capture
// report their metrics to it; Metrics is one, that the caller serves at
// /metrics.
//
// Its authentication, DemoUserID, is DEMO-ONLY: it believes whatever user a
// request names. See the command examples/todo for the database it creates
// and what stays there after it stops.
package todoapp

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver
	"go.opentelemetry.io/otel/metric"

	"github.com/synchrosync/synchro"
	"github.com/synchrosync/synchro/internal/pglocal"
	"github.com/synchrosync/synchro/synchrohttp"
	"github.com/synchrosync/synchro/wal"
)

// EnvDatabaseURL names the environment variable that holds the superuser
// URL of the database to use. Commands built on this package read
// Config.DatabaseURL from it, and Open's errors and logs name the URL by it.
const EnvDatabaseURL = "SYNCHRO_DATABASE_URL"

// Bounds of the start-up and the shutdown.
const (
	// setupTimeout bounds starting PostgreSQL and preparing the database.
	setupTimeout = 2 * time.Minute
	// consumerReadyTimeout bounds the wait for the consumer to stream.
	consumerReadyTimeout = 30 * time.Second
	// stopTimeout bounds stopping the throwaway PostgreSQL.
	stopTimeout = 30 * time.Second
)

// defaultCompactInterval is how often the changelog is compacted when
// Config.CompactInterval is not positive.
const defaultCompactInterval = 10 * time.Minute

// Config configures Open. The zero value is valid.
type Config struct {
	// DatabaseURL is a postgres:// URL of a superuser on a server with
	// wal_level=logical; give the application a database of its own. Empty:
	// a throwaway local PostgreSQL (internal/pglocal, Name "synchro-todo")
	// with a database "todo" that has synchronous_commit=on, removed by
	// Close.
	DatabaseURL string
	// CompactInterval is how often the changelog is compacted. Not positive:
	// 10 minutes.
	CompactInterval time.Duration
	// NoCompaction turns compaction off: the changelog keeps every row.
	// For measurements (cmd/synchro-load) that need a changelog of a given
	// size; a server that runs for long needs compaction.
	NoCompaction bool
	// Logger receives the application's and the library's logs. Nil:
	// slog.Default().
	Logger *slog.Logger
	// MeterProvider receives the metrics of the engine and of change
	// capture (synchro.Config.MeterProvider, wal.ConsumerConfig.MeterProvider;
	// docs/metrics.md lists them): a *Metrics, say, served at /metrics. Nil:
	// no metrics.
	MeterProvider metric.MeterProvider
}

// withDefaults returns cfg with its zero fields set to their defaults.
func (cfg Config) withDefaults() Config {
	if cfg.CompactInterval <= 0 {
		cfg.CompactInterval = defaultCompactInterval
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return cfg
}

// App is the running application: the database prepared, the engine
// connected as AppRole, change capture streaming and compaction started.
// Open returns it; Close releases it.
type App struct {
	// Engine is the engine, connected as AppRole and so subject to
	// row-level security.
	Engine *synchro.Engine
	// Registry describes the synced tables: priorities, lists and items.
	Registry *synchro.Registry
	// Handler is the HTTP adapter (package synchrohttp) of Engine, with
	// DemoUserID as its authentication: mount it under /sync/.
	Handler http.Handler
	// Health serves liveness and readiness (synchrohttp.Health) for
	// Engine and the change capture of this App: mount it at /healthz and
	// /readyz.
	Health http.Handler
	// Super is a pool of the superuser, the owner of the tables.
	Super *sql.DB
	// SuperURL is the URL of Super. It may hold a password: never log it.
	SuperURL string

	logger *slog.Logger
	// engineDB is the pool of Engine, as AppRole.
	engineDB *sql.DB
	// stopPostgres releases the database (see database).
	stopPostgres func(context.Context) error

	// stopCompaction stops the compaction started by Open.
	stopCompaction context.CancelFunc
	// stopListen stops the engine's change listener (live sync);
	// listenDone is closed once it has stopped.
	stopListen context.CancelFunc
	listenDone chan struct{}
	// stopConsumer stops change capture; consumerDone is closed once it
	// has stopped, consumerErr set before.
	stopConsumer context.CancelFunc
	consumerDone chan struct{}
	consumerErr  error

	captureOnce sync.Once
	captureErr  error // of the first stopCapture
	closeOnce   sync.Once
	closeErr    error // of the first Close
}

// Open starts the application on the database of cfg: it prepares the
// database, connects the engine, starts change capture and waits until it
// streams (from then on every committed change reaches the changelog), and
// starts compaction. ctx bounds the start-up only; the App runs until Close.
// On error Open releases what it started.
func Open(ctx context.Context, cfg Config) (_ *App, err error) {
	cfg = cfg.withDefaults()
	logger := cfg.Logger
	a := &App{logger: logger}
	defer func() {
		if err != nil {
			// ctx may be what ended: release with a context of its own.
			err = errors.Join(err, a.Close(context.Background()))
		}
	}()

	superURL, stopPostgres, err := database(ctx, cfg.DatabaseURL, logger)
	if err != nil {
		return nil, err
	}
	a.SuperURL, a.stopPostgres = superURL, stopPostgres

	reg, err := newRegistry()
	if err != nil {
		return nil, err
	}
	a.Registry = reg

	// Preparing the database, as its owner.
	super, err := openPool(superURL)
	if err != nil {
		return nil, err
	}
	a.Super = super
	setupCtx, cancelSetup := context.WithTimeout(ctx, setupTimeout)
	defer cancelSetup()
	password, err := setUpDatabase(setupCtx, super, reg)
	if err != nil {
		return nil, err
	}

	// The engine, as the application role, subject to row-level security.
	appURL, err := withUser(superURL, url.UserPassword(AppRole, password), "")
	if err != nil {
		return nil, err
	}
	engineDB, err := openPool(appURL)
	if err != nil {
		return nil, err
	}
	a.engineDB = engineDB
	engine, err := synchro.NewEngine(synchro.Config{
		DB:            engineDB,
		Registry:      reg,
		Compactor:     &synchro.CompactorConfig{Logger: logger},
		Logger:        logger,
		MeterProvider: cfg.MeterProvider,
	})
	if err != nil {
		return nil, fmt.Errorf("starting the engine as %s: %w", AppRole, err)
	}
	a.Engine = engine

	// Change capture, as the superuser: it reads every user's rows.
	consumer, err := wal.NewConsumer(wal.ConsumerConfig{
		ConnString:    superURL,
		Registry:      reg,
		ChangelogDB:   super,
		Logger:        logger,
		MeterProvider: cfg.MeterProvider,
	})
	if err != nil {
		return nil, err
	}
	// Background work, stopped by Close (change capture also by
	// StopCapture).
	capture, stopConsumer := context.WithCancel(context.Background())
	a.stopConsumer = stopConsumer
	a.consumerDone = make(chan struct{})
	go func() {
		defer close(a.consumerDone)
		a.consumerErr = consumer.Start(capture)
	}()
	if err := waitForConsumer(setupCtx, super, a.consumerDone); err != nil {
		return nil, err
	}

	// Compaction: the engine's role is subject to row-level security, so
	// the bucket edges of soft-deleted rows are kept rather than pruned (see
	// synchro.Compactor); everything else it does as documented.
	compaction, stopCompaction := context.WithCancel(context.Background())
	a.stopCompaction = stopCompaction
	if !cfg.NoCompaction {
		engine.StartCompaction(compaction, cfg.CompactInterval)
	}

	// Live sync: the listener wakes pulls that wait for changes
	// (POST /sync/pull?wait=S) when change capture announces them.
	listen, stopListen := context.WithCancel(context.Background())
	a.stopListen, a.listenDone = stopListen, make(chan struct{})
	go func() {
		defer close(a.listenDone)
		if err := engine.Listen(listen, synchro.ListenConfig{}); err != nil {
			logger.Error("todo: live sync listener stopped", "error", err)
		}
	}()

	handler, err := synchrohttp.New(synchrohttp.Config{
		Engine: engine,
		UserID: DemoUserID,
		Logger: logger,
	})
	if err != nil {
		return nil, err
	}
	a.Handler = handler
	health, err := synchrohttp.NewHealth(synchrohttp.HealthConfig{
		Engine:   engine,
		Consumer: consumer,
		Logger:   logger,
	})
	if err != nil {
		return nil, err
	}
	a.Health = health
	return a, nil
}

// Done returns a channel closed when change capture stops: after
// StopCapture or Close, or on its own when it failed (Close or StopCapture
// then reports why).
func (a *App) Done() <-chan struct{} {
	return a.consumerDone
}

// StopCapture stops change capture only, and waits until it has stopped:
// the engine keeps serving, but new commits no longer reach the changelog.
// It returns the error change capture stopped with, if any other than being
// stopped; that error is not reported again by Close, which still releases
// the rest. Calling it again returns the same error.
func (a *App) StopCapture() error {
	a.captureOnce.Do(a.haltCapture)
	return a.captureErr
}

// haltCapture stops change capture, waits until it has stopped and sets
// captureErr. It runs once, through captureOnce.
func (a *App) haltCapture() {
	if a.consumerDone == nil { // never started
		return
	}
	a.stopConsumer()
	<-a.consumerDone
	if a.consumerErr != nil && !errors.Is(a.consumerErr, context.Canceled) {
		a.captureErr = fmt.Errorf("change capture: %w", a.consumerErr)
	}
}

// Close stops the compaction and change capture (reporting the error change
// capture stopped with, unless StopCapture already did), closes the pools
// and stops the throwaway PostgreSQL, if any, within ctx (and at most 30
// seconds). Calling it again returns the same error.
func (a *App) Close(ctx context.Context) error {
	a.closeOnce.Do(func() {
		var errs []error
		if a.stopCompaction != nil {
			a.stopCompaction()
		}
		if a.stopListen != nil {
			a.stopListen()
			<-a.listenDone
		}
		// Reported here unless StopCapture did.
		a.captureOnce.Do(func() {
			a.haltCapture()
			errs = append(errs, a.captureErr)
		})
		if a.engineDB != nil {
			_ = a.engineDB.Close()
		}
		if a.Super != nil {
			_ = a.Super.Close()
		}
		if a.stopPostgres != nil {
			stopCtx, cancel := context.WithTimeout(ctx, stopTimeout)
			defer cancel()
			if err := a.stopPostgres(stopCtx); err != nil {
				errs = append(errs, fmt.Errorf("stopping PostgreSQL: %w", err))
			}
		}
		a.closeErr = errors.Join(errs...)
	})
	return a.closeErr
}

// database returns the superuser URL of the database to use, and the
// function that releases it: rawURL when not empty, else a throwaway local
// PostgreSQL with a database todo.
func database(ctx context.Context, rawURL string, logger *slog.Logger) (string, func(context.Context) error, error) {
	noop := func(context.Context) error { return nil }
	if rawURL != "" {
		if _, err := parseURL(rawURL); err != nil {
			return "", nil, fmt.Errorf("%s: %w", EnvDatabaseURL, err)
		}
		logger.Info("todo: using the database of " + EnvDatabaseURL)
		return rawURL, noop, nil
	}

	startCtx, cancel := context.WithTimeout(ctx, setupTimeout)
	defer cancel()
	begin := time.Now()
	pg, err := pglocal.Start(startCtx, pglocal.Config{Name: "synchro-todo"})
	if err != nil {
		if errors.Is(err, pglocal.ErrUnavailable) {
			return "", nil, fmt.Errorf("no database: set %s to a postgres:// URL of a superuser on a server with wal_level=logical, or install the PostgreSQL server binaries (apt-get install postgresql-15): %w", EnvDatabaseURL, err)
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

// openPool opens a database/sql pool with the pgx driver.
//
// It keeps its connections open when idle: database/sql keeps only 2 by
// default, so under load every request beyond two concurrent ones closed
// its connection and the next opened one (a new PostgreSQL backend, and
// pgx preparing its statements again), which cut the example's throughput
// by more than half (measured with cmd/synchro-load).
func openPool(dsn string) (*sql.DB, error) {
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return nil, fmt.Errorf("opening a pool: %w", err)
	}
	db.SetMaxOpenConns(poolSize)
	db.SetMaxIdleConns(poolSize)
	return db, nil
}

// poolSize is the connections of each pool: enough to keep both cores of a
// small machine busy while requests wait on the network.
const poolSize = 20
