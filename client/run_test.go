package client_test

import (
	"context"
	"testing"
	"time"

	"github.com/synchrosync/synchro/client"
	"github.com/synchrosync/synchro/internal/pgtest"
)

// run runs d's Run until the test ends (or stop is called).
func (d *device) run() (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	c := d.c
	go func() { done <- c.Run(ctx) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			d.t.Errorf("Run returned %v", err)
		}
	}
	d.t.Cleanup(stop)
	return stop
}

// ready waits until the device's Run made its first round.
func (d *device) ready() {
	d.t.Helper()
	pgtest.WaitUntil(d.t, "the device's first round", 20*time.Second, func() bool {
		return !d.c.Status().LastSync.IsZero()
	})
}

// count returns the result of a count query on d.
func (d *device) count(query string, args ...any) int {
	d.t.Helper()
	var n int
	if err := d.c.DB().QueryRow(query, args...).Scan(&n); err != nil {
		d.t.Fatalf("%s: %v", query, err)
	}
	return n
}

// Run pushes a local write at once and hears of a change within a moment
// of its capture, by pulls that wait, not by polling.
func TestRunLive(t *testing.T) {
	t.Parallel()
	s := startServer(t, "")
	a := s.newDevice(t, "alice", func(c *client.Config) { c.PollInterval = 5 * time.Second; c.PullWait = 10 * time.Second })
	b := s.newDevice(t, "alice", func(c *client.Config) { c.PollInterval = 5 * time.Second; c.PullWait = 10 * time.Second })
	a.run()
	b.run()
	a.ready()
	b.ready()

	for i := range 3 {
		start := time.Now()
		listID := id()
		a.exec(`INSERT INTO lists (id, user_id, name) VALUES (?, 'alice', ?)`, listID, "live")
		pgtest.WaitUntil(t, "B to receive A's list", 10*time.Second, func() bool {
			return b.count(`SELECT count(*) FROM lists WHERE id = ?`, listID) == 1
		})
		t.Logf("write on A to row on B, round %d: %v", i, time.Since(start))
	}

	// Idle: the waiting pulls make few requests.
	before := s.requests.Load()
	time.Sleep(time.Second) // measuring the idle request rate over a second
	if n := s.requests.Load() - before; n > 4 {
		t.Errorf("%d requests in an idle second, want the pulls to wait", n)
	}

	// The application's own write on the server.
	start := time.Now()
	s.exec(t, `UPDATE lists SET name = 'renamed on the server'`)
	pgtest.WaitUntil(t, "both to receive the server's change", 10*time.Second, func() bool {
		return a.count(`SELECT count(*) FROM lists WHERE name = 'renamed on the server'`) == 3 &&
			b.count(`SELECT count(*) FROM lists WHERE name = 'renamed on the server'`) == 3
	})
	t.Logf("server write to both devices: %v", time.Since(start))
	if st := a.c.Status(); st.LastSync.IsZero() || st.Err != nil {
		t.Errorf("status %+v", st)
	}
}

// Schema changes: a column added on the server is added to the local
// tables in place, rows and pending changes kept, and the rows changed on
// the server just before come again with it; a column removed rebuilds
// the tables from a snapshot, keeping the pending changes that still fit.
func TestSchemaChanges(t *testing.T) {
	t.Parallel()
	s := startServer(t, `INSERT INTO lists (id, user_id, name) VALUES ('l1', 'alice', 'one'), ('l2', 'alice', 'two');
		INSERT INTO items (id, list_id, title, data) VALUES ('i1', 'l1', 'a', '{"n": 1}'), ('i2', 'l1', 'b', null)`)
	a := s.newDevice(t, "alice", nil)
	b := s.newDevice(t, "alice", nil)
	a.sync()
	b.sync()
	// As if A had synced a while ago, so that it has a checkpoint to pull
	// again from (see local.RewindAge).
	a.exec(`UPDATE _synchro_checkpoints SET at = at - 120000`)

	// Offline on A: a pending change.
	a.exec(`UPDATE lists SET name = 'one on A' WHERE id = 'l1'`)

	// The server adds a column, and sets it on a row.
	s.exec(t, `ALTER TABLE lists ADD COLUMN color text NOT NULL DEFAULT 'blue'`)
	s.exec(t, `UPDATE lists SET color = 'red' WHERE id = 'l2'`)
	waitForContract(t, s, 2)

	a.sync()
	if got := a.eventsOf(client.EventSchemaChanged); len(got) != 1 || got[0].Reason != "in_place" {
		t.Fatalf("schema events on A: %+v", got)
	}
	if got := a.eventsOf(client.EventSnapshot); len(got) != 1 { // only the first
		t.Fatalf("A took %d snapshots", len(got))
	}
	var color, name string
	if err := a.c.DB().QueryRow(`SELECT color FROM lists WHERE id = 'l2'`).Scan(&color); err != nil || color != "red" {
		t.Fatalf("l2's color on A: %q, %v", color, err)
	}
	s.captured(t)
	a.sync()
	b.sync()
	if got := b.eventsOf(client.EventSchemaChanged); len(got) != 1 || got[0].Reason != "rebuilt" {
		// B has no checkpoint old enough to pull again from: rebuilt.
		t.Fatalf("schema events on B: %+v", got)
	}
	if err := b.c.DB().QueryRow(`SELECT name, color FROM lists WHERE id = 'l1'`).Scan(&name, &color); err != nil || name != "one on A" || color != "blue" {
		t.Fatalf("l1 on B: %q %q, %v", name, color, err)
	}
	s.converged(t, a)
	s.converged(t, b)

	// Offline on B: changes to items; then the server drops a column of
	// items and renames one of lists.
	b.exec(`UPDATE items SET title = 'a on B', data = '{"n": 2}' WHERE id = 'i1'`)
	b.exec(`INSERT INTO items (id, list_id, title) VALUES ('i3', 'l2', 'new on B')`)
	b.exec(`DELETE FROM items WHERE id = 'i2'`)
	s.exec(t, `ALTER TABLE items DROP COLUMN data`)
	waitForContract(t, s, 3)
	b.sync()
	if got := b.eventsOf(client.EventSchemaChanged); len(got) != 2 || got[1].Reason != "rebuilt" {
		t.Fatalf("schema events on B: %+v", got)
	}
	if n := b.pending(); n != 0 {
		t.Fatalf("%d changes pending on B", n)
	}
	if rej := b.rejections(); len(rej) != 0 {
		t.Fatalf("B's rejections: %+v", rej)
	}
	var title string
	if err := s.db.Super.QueryRow(`SELECT title FROM items WHERE id = 'i1'`).Scan(&title); err != nil || title != "a on B" {
		t.Fatalf("i1 on the server: %q, %v", title, err)
	}
	var live int
	if err := s.db.Super.QueryRow(`SELECT count(*) FROM items WHERE deleted_at IS NULL`).Scan(&live); err != nil || live != 2 {
		t.Fatalf("%d live items on the server (%v), want 2", live, err)
	}
	s.captured(t)
	a.sync()
	b.sync()
	s.converged(t, a)
	s.converged(t, b)
}

// waitForContract waits until the server's engine gives schema version
// version (it re-reads its catalog every few seconds).
func waitForContract(t *testing.T, s *server, version int64) {
	t.Helper()
	pgtest.WaitUntil(t, "the engine's schema version to reach the change", 20*time.Second, func() bool {
		resp, err := s.engine.Load().Schema(context.Background())
		return err == nil && resp.SchemaVersion >= version
	})
}

// The server adds a column whose default only it computes (a typical
// "public id" column): PostgreSQL fills it for every existing row. The
// client used to add it in place as a nullable column without a default
// and pull again only the last minute, so the rows that did not change
// since kept NULL where the server has a value, for good. Such a change
// now rebuilds the tables.
func TestSchemaChangeServerOnlyDefault(t *testing.T) {
	t.Parallel()
	s := startServer(t, `INSERT INTO lists (id, user_id, name) VALUES ('l1', 'alice', 'one'), ('l2', 'alice', 'two')`)
	d := s.newDevice(t, "alice", nil)
	d.sync()
	// As if the device had synced a while ago (as TestSchemaChanges does).
	d.exec(`UPDATE _synchro_checkpoints SET at = at - 120000`)

	s.exec(t, `ALTER TABLE lists ADD COLUMN public_id uuid DEFAULT gen_random_uuid()`)
	waitForContract(t, s, 2)
	d.sync()
	s.captured(t)
	d.sync()
	if got := d.eventsOf(client.EventSchemaChanged); len(got) != 1 {
		t.Fatalf("schema events: %+v", got)
	}
	if how := d.eventsOf(client.EventSchemaChanged)[0].Reason; how != "rebuilt" {
		t.Errorf("schema change made %s, want rebuilt", how)
	}
	var nulls int
	if err := d.c.DB().QueryRow(`SELECT count(*) FROM lists WHERE public_id IS NULL`).Scan(&nulls); err != nil {
		t.Fatal(err)
	}
	if nulls != 0 {
		t.Errorf("%d of 2 lists have no public_id on the device; the server has one for each", nulls)
	}
	s.converged(t, d)
}
