// Package pglocal runs a throwaway PostgreSQL server from the local
// binaries: a new cluster in a temporary directory, listening on a free port
// of 127.0.0.1, with wal_level=logical. It serves the test harness
// (internal/pgtest) and the example server (examples/todo), and needs no
// testing package.
//
// # Usage
//
//	srv, err := pglocal.Start(ctx, pglocal.Config{})
//	if err != nil {
//		return err
//	}
//	defer srv.Stop(context.Background())
//	db, err := sql.Open("pgx", srv.URL()) // the superuser postgres, database postgres
//
// # The server
//
// initdb and postgres are looked up on PATH, else under
// /usr/lib/postgresql/*/bin (the newest version); apt-get install
// postgresql-15 provides them. Start reports an error wrapping
// [ErrUnavailable] when there are none, or on a platform other than Unix.
//
// The cluster trusts every local connection: the superuser is postgres,
// without a password. It is tuned for throwaway use: logical decoding with
// many slots and connections, and no durability (fsync and full-page writes
// off), so a crash of the machine loses its data. Never keep data you care
// about in it. Commits are asynchronous (synchronous_commit=off), so logical
// decoding sees a lone commit only when the WAL writer flushes it, up to a
// few hundred milliseconds later; a database or role that needs low capture
// latency sets synchronous_commit=on for itself (ALTER DATABASE ... SET).
//
// PostgreSQL refuses to run as root: when the process runs as root, the
// server runs as the OS user postgres, which must exist. The server runs in
// a process group of its own, so a terminal's ^C reaches only the calling
// program, which then stops the server in order (see [Server.Stop]).
//
// # Clean-up
//
// [Server.Stop] stops the server and removes its directory. On Linux the
// server is killed when the process that started it dies, even by SIGKILL;
// the next Start with the same [Config.Name] removes the directories of dead
// processes.
package pglocal

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// DefaultName is the default of Config.Name.
const DefaultName = "synchro-pglocal"

// ErrUnavailable reports that the local PostgreSQL binaries are not present
// on this machine (as opposed to present but failing to start).
var ErrUnavailable = errors.New("not available")

// Config configures Start. The zero value is valid.
type Config struct {
	// Dir is the directory in which the server's own temporary directory is
	// created. Defaults to /dev/shm when it is a writable directory (a tmpfs
	// makes CREATE DATABASE about ten times faster than a disk), else
	// os.TempDir(). When the process runs as root, the OS user postgres
	// must be able to reach it.
	Dir string

	// Name prefixes the server's temporary directory, which is named
	// Name + "-" + a random suffix. Start removes the directories with this
	// prefix that processes which have died left behind. Defaults to
	// DefaultName. It must not contain a path separator or glob characters.
	Name string
}

// withDefaults returns cfg with its zero fields set to their defaults.
func (cfg Config) withDefaults() Config {
	if cfg.Dir == "" {
		cfg.Dir = defaultDir()
	}
	if cfg.Name == "" {
		cfg.Name = DefaultName
	}
	return cfg
}

// validate checks a config that went through withDefaults.
func (cfg Config) validate() error {
	if strings.ContainsAny(cfg.Name, `/\*?[`) || strings.ContainsRune(cfg.Name, os.PathSeparator) {
		return fmt.Errorf("pglocal: Config.Name %q must not contain a path separator or a glob character", cfg.Name)
	}
	return nil
}

// readyTimeout bounds the wait for a server to accept connections.
const readyTimeout = 60 * time.Second

// errExited reports that the server process ended while WaitReady waited.
var errExited = errors.New("the server process exited")

// WaitReady polls connString until a connection succeeds, for at most a
// minute, and returns that connection. It gives up early when exited (may
// be nil) is closed: the server process has ended.
func WaitReady(ctx context.Context, connString string, exited <-chan struct{}) (*pgconn.PgConn, error) {
	waitCtx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	for {
		attemptCtx, cancelAttempt := context.WithTimeout(waitCtx, 2*time.Second)
		conn, err := pgconn.Connect(attemptCtx, connString)
		cancelAttempt()
		if err == nil {
			return conn, nil
		}
		timer := time.NewTimer(50 * time.Millisecond)
		select {
		case <-exited:
			timer.Stop()
			return nil, errExited
		case <-waitCtx.Done():
			timer.Stop()
			if ctx.Err() != nil {
				return nil, fmt.Errorf("waiting for connections: %w", ctx.Err())
			}
			return nil, fmt.Errorf("not accepting connections after %v: %w", readyTimeout, err)
		case <-timer.C:
		}
	}
}
