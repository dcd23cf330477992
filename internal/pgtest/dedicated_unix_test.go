//go:build unix

package pgtest

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// TestDedicatedServerRestart restarts a dedicated server: its data and port
// survive, sessions open across the restart are broken, the shared server is
// untouched, and the end of the test stops the server and removes its files.
func TestDedicatedServerRestart(t *testing.T) {
	t.Parallel()
	if !shared(t).local {
		t.Skip("the tests do not use the local PostgreSQL binaries")
	}
	var (
		dataDir string
		dsn     string
	)
	t.Run("server", func(t *testing.T) {
		ctx := t.Context()
		begin := time.Now()
		d := NewDedicatedServer(t)
		db := d.NewMigratedDatabase(t)
		plain := d.NewDatabase(t)
		t.Logf("dedicated server and two databases in %v", time.Since(begin).Round(time.Millisecond))
		dsn = db.DSN

		var (
			before time.Time
			port   int
		)
		if err := db.Super.QueryRowContext(ctx, `
			SELECT current_setting('data_directory'), pg_postmaster_start_time(), inet_server_port()`,
		).Scan(&dataDir, &before, &port); err != nil {
			t.Fatal(err)
		}
		if shared := shared(t); shared.base.Host == localBase(port).Host {
			t.Fatalf("the dedicated server listens on the shared server's address %s", shared.base.Host)
		}
		if _, err := db.Super.ExecContext(ctx, `
			CREATE TABLE kept (id int PRIMARY KEY);
			INSERT INTO kept VALUES (1), (2);`); err != nil {
			t.Fatal(err)
		}
		held, err := pgconn.Connect(ctx, db.DSN)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = held.Close(context.Background()) }()

		begin = time.Now()
		d.Restart(t)
		t.Logf("restart in %v", time.Since(begin).Round(time.Millisecond))

		if _, err := held.Exec(ctx, `SELECT 1`).ReadAll(); err == nil {
			t.Error("a session opened before the restart still works")
		}
		// Pooled connections are broken too; a pool replaces them.
		var (
			after     time.Time
			n, portTo int
		)
		failures := 0
		deadline := time.Now().Add(10 * time.Second)
		for {
			err = db.Super.QueryRowContext(ctx, `SELECT pg_postmaster_start_time(), inet_server_port(), (SELECT count(*) FROM kept)`).Scan(&after, &portTo, &n)
			if err == nil {
				break
			}
			t.Logf("the pool after the restart: %v", err)
			if failures++; time.Now().After(deadline) {
				t.Fatalf("the pool after the restart: %v", err)
			}
			time.Sleep(20 * time.Millisecond) // polling a condition under a deadline
		}
		t.Logf("the pool failed %d times after the restart", failures)
		if failures > maxOpenConns {
			t.Errorf("the pool failed %d times after the restart; want at most once per pooled connection", failures)
		}
		if !after.After(before) || n != 2 || portTo != port {
			t.Errorf("after the restart: started at %v (before: %v), port %d (before: %d), %d rows kept; want a later start, the same port and 2 rows",
				after, before, portTo, port, n)
		}
		if err := plain.Super.PingContext(ctx); err != nil {
			t.Errorf("the other database after the restart: %v", err)
		}
		// New databases still come from the templates.
		if err := d.NewMigratedDatabase(t).Super.QueryRowContext(ctx, `SELECT count(*) FROM synchro.compaction`).Scan(&n); err != nil || n != 1 {
			t.Errorf("a database created after the restart: %d rows in synchro.compaction, %v", n, err)
		}
		// The shared server did not restart.
		var sharedStart time.Time
		if err := shared(t).admin.QueryRowContext(ctx, `SELECT pg_postmaster_start_time()`).Scan(&sharedStart); err != nil {
			t.Fatal(err)
		}
		if !sharedStart.Before(before) {
			t.Errorf("the shared server started at %v, after the dedicated one (%v)", sharedStart, before)
		}
	})
	if dataDir == "" {
		return
	}
	if _, err := os.Stat(filepath.Dir(dataDir)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the directory of the dedicated server remains after its test: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if conn, err := pgconn.Connect(ctx, dsn); err == nil {
		_ = conn.Close(ctx)
		t.Error("the dedicated server still accepts connections after its test")
	}
}

// TestDedicatedServerSkipsOtherBackends checks that a test asking for a
// dedicated server is skipped when the tests use an external server or a
// container. Not parallel: it swaps the shared server.
func TestDedicatedServerSkipsOtherBackends(t *testing.T) {
	real := shared(t)
	active.Store(&server{describe: "the server of " + envDatabaseURL})
	defer active.Store(real)
	var started bool
	ok := t.Run("url", func(t *testing.T) {
		NewDedicatedServer(t)
		started = true
	})
	active.Store(real)
	if !ok || started {
		t.Fatalf("NewDedicatedServer with a URL backend: ok %v, started %v; want a skip", ok, started)
	}
}
