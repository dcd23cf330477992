package pgtest

import (
	"context"
	"sync"
	"testing"
	"time"
)

// DedicatedServer is a PostgreSQL server of one test's own, which the test
// may restart (fault tests: a consumer or a pool must survive the server
// going away). Restarting the server shared by the test binary would break
// every other test, hence a server per test.
//
// It exists only with the local-binaries backend: [NewDedicatedServer]
// skips the test when the tests run on a SYNCHRO_TEST_DATABASE_URL server or
// in a container. It runs with the settings of the shared local server,
// starts in about a second (initdb included) and is stopped, its files
// removed, when the test that created it ends, after the databases created
// on it are dropped. If the test binary dies, the server dies with it
// (Linux) and the next run removes its directory.
//
//	srv := pgtest.NewDedicatedServer(t)
//	db := srv.NewMigratedDatabase(t)
//	// ... use db.Super, db.DSN ...
//	srv.Restart(t) // fast shutdown, then a start on the same port and data
type DedicatedServer struct {
	srv *server
	// restart stops the server with a fast shutdown and starts it again on
	// the same port and data directory.
	restart func(context.Context) error

	mu sync.Mutex // serialises Restart and the final stop
}

// restartTimeout bounds Restart: the fast shutdown (killed after
// stopTimeout) and the start.
const restartTimeout = 2 * time.Minute

// NewDedicatedServer starts a server for t alone and stops it when t ends.
// It skips t unless the tests use the local PostgreSQL binaries, and must
// be called from the test's goroutine.
func NewDedicatedServer(t testing.TB) *DedicatedServer {
	t.Helper()
	shared := shared(t)
	if !shared.local {
		t.Skipf("pgtest: a dedicated server needs the local PostgreSQL binaries (%s=%s); these tests use %s",
			envBackend, backendLocal, shared.describe)
	}
	ctx, cancel := context.WithTimeout(t.Context(), startTimeout)
	defer cancel()
	srv, restart, err := startDedicated(ctx)
	if err != nil {
		t.Fatalf("pgtest: starting a dedicated server: %v", err)
	}
	d := &DedicatedServer{srv: srv, restart: restart}
	t.Cleanup(func() {
		d.mu.Lock()
		defer d.mu.Unlock()
		if err := closeServer(srv); err != nil {
			t.Errorf("pgtest: stopping the dedicated server: %v", err)
		}
	})
	return d
}

// NewDatabase is [NewDatabase] on the dedicated server. The database is
// dropped when t ends; t must not outlive the test of the server.
func (d *DedicatedServer) NewDatabase(t testing.TB) *Database {
	t.Helper()
	return d.srv.newDatabase(t, plainTemplate)
}

// NewMigratedDatabase is [NewMigratedDatabase] on the dedicated server.
// The database is dropped when t ends; t must not outlive the test of the
// server.
func (d *DedicatedServer) NewMigratedDatabase(t testing.TB) *Database {
	t.Helper()
	return d.srv.newDatabase(t, migratedTemplate)
}

// Restart stops the server with a fast shutdown (open transactions roll
// back, every session is disconnected; the server is killed if it has not
// stopped after 15 seconds) and starts it again on the same port and data
// directory, returning once it accepts connections. The data and the DSNs
// of its databases stay valid. Every connection open across the restart is
// broken, like an application's would be: statements in flight fail, and
// so does the next statement on each idle pooled connection, after which
// database/sql discards it and the pool opens new ones. Restart fails t if
// the server does not come back; call it from the test's goroutine.
func (d *DedicatedServer) Restart(t testing.TB) {
	t.Helper()
	d.mu.Lock()
	defer d.mu.Unlock()
	ctx, cancel := context.WithTimeout(t.Context(), restartTimeout)
	defer cancel()
	if err := d.restart(ctx); err != nil {
		t.Fatalf("pgtest: restarting the dedicated server: %v", err)
	}
	// The harness's own pool drops its broken connections at once; the
	// pools of the databases are left as an application's would be.
	d.srv.admin.SetMaxIdleConns(0)
	d.srv.admin.SetMaxIdleConns(maxOpenConns)
}
