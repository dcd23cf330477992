package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/synchrosync/synchro/client"
)

// Local SQL is the application's surface: rows written offline on one
// device reach the user's other devices, never another user's; edits and
// deletes follow; what comes from the server is not pushed back.
func TestSyncBetweenDevices(t *testing.T) {
	t.Parallel()
	s := startServer(t, `INSERT INTO lists (id, user_id, name) VALUES ('old', 'alice', 'from before')`)
	a := s.newDevice(t, "alice", nil)
	b := s.newDevice(t, "alice", nil)
	bob := s.newDevice(t, "bob", nil)

	a.sync()
	if n := a.pending(); n != 0 {
		t.Fatalf("after the first sync %d changes are pending: the snapshot was captured", n)
	}
	var name string
	if err := a.c.DB().QueryRow(`SELECT name FROM lists WHERE id = 'old'`).Scan(&name); err != nil || name != "from before" {
		t.Fatalf("the snapshot's row: %q, %v", name, err)
	}

	// Offline writes, one transaction with a parent and its child.
	tx, err := a.c.DB().Begin()
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`INSERT INTO lists (id, user_id, name, position) VALUES ('l1', 'alice', 'Groceries', 1)`,
		`INSERT INTO items (id, list_id, title, data) VALUES ('i1', 'l1', 'milk', '{"qty": 2}')`,
		`INSERT INTO items (id, list_id, title) VALUES ('i2', 'l1', 'eggs')`,
		`UPDATE items SET done = 1 WHERE id = 'i2'`,
	} {
		if _, err := tx.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if n := a.pending(); n != 3 {
		t.Fatalf("%d pending changes, want 3 (the update merged into its create)", n)
	}
	a.sync()
	if n := a.pending(); n != 0 {
		t.Fatalf("%d changes pending after a sync", n)
	}
	s.captured(t)
	b.sync()
	bob.sync()
	s.converged(t, a)
	s.converged(t, b)
	s.converged(t, bob)
	var count int
	if err := bob.c.DB().QueryRow(`SELECT count(*) FROM lists`).Scan(&count); err != nil || count != 0 {
		t.Fatalf("bob holds %d lists (%v), want none of alice's", count, err)
	}

	// B edits and deletes; A follows.
	b.exec(`UPDATE lists SET name = 'Shopping' WHERE id = 'l1'`)
	b.exec(`DELETE FROM items WHERE id = 'i1'`)
	b.sync()
	s.captured(t)
	a.sync()
	if err := a.c.DB().QueryRow(`SELECT name FROM lists WHERE id = 'l1'`).Scan(&name); err != nil || name != "Shopping" {
		t.Fatalf("A's list: %q, %v", name, err)
	}
	if err := a.c.DB().QueryRow(`SELECT count(*) FROM items`).Scan(&count); err != nil || count != 1 {
		t.Fatalf("A holds %d items (%v), want 1", count, err)
	}
	if n := a.pending(); n != 0 {
		t.Fatalf("A pushes back what it received: %d pending", n)
	}
	s.converged(t, a)
	s.converged(t, b)

	// A server-side change (the application's own SQL) reaches both.
	s.exec(t, `UPDATE items SET title = 'two eggs' WHERE id = 'i2'`)
	s.captured(t)
	a.sync()
	b.sync()
	s.converged(t, a)
	s.converged(t, b)
	if got := a.eventsOf(client.EventReceived); len(got) == 0 {
		t.Error("no EventReceived")
	}
}

// A conflict the server wins replaces the local row and is reported; a
// change the server refuses goes back to the server's row and is kept as a
// rejection; nothing is silently lost.
func TestConflictsAndRejections(t *testing.T) {
	t.Parallel()
	s := startServer(t, `INSERT INTO lists (id, user_id, name) VALUES ('l1', 'alice', 'start'), ('l2', 'alice', 'two')`)
	a := s.newDevice(t, "alice", nil)
	b := s.newDevice(t, "alice", nil)
	a.sync()
	b.sync()

	// Both edit l1 offline; A's edit is the later one but B pushes last:
	// A's wins. B's loses, is reported, and B takes A's row.
	b.exec(`UPDATE lists SET name = 'by B' WHERE id = 'l1'`)
	time.Sleep(5 * time.Millisecond) // the edits' times must differ
	a.exec(`UPDATE lists SET name = 'by A' WHERE id = 'l1'`)
	a.sync()
	b.sync()
	var name string
	if err := b.c.DB().QueryRow(`SELECT name FROM lists WHERE id = 'l1'`).Scan(&name); err != nil || name != "by A" {
		t.Fatalf("B's row after losing: %q, %v", name, err)
	}
	rej := b.rejections()
	if len(rej) != 1 || rej[0].Status != "conflict" || rej[0].Reason != "server_won_conflict" || rej[0].ID != "l1" {
		t.Fatalf("B's rejections: %+v", rej)
	}
	var sent map[string]any
	if err := json.Unmarshal(rej[0].Data, &sent); err != nil || sent["name"] != "by B" {
		t.Fatalf("the rejection keeps the change sent: %s (%v)", rej[0].Data, err)
	}
	if got := b.eventsOf(client.EventConflict); len(got) != 1 {
		t.Fatalf("%d conflict events", len(got))
	}

	// A refusal (the server's CHECK constraint): the row goes back.
	a.exec(`UPDATE lists SET position = -1, name = 'negative' WHERE id = 'l2'`)
	a.exec(`INSERT INTO lists (id, user_id, name, position) VALUES ('l3', 'alice', 'bad', -5)`)
	a.sync()
	var pos int
	if err := a.c.DB().QueryRow(`SELECT name, position FROM lists WHERE id = 'l2'`).Scan(&name, &pos); err != nil || name != "two" || pos != 0 {
		t.Fatalf("l2 after the refusal: %q %d, %v", name, pos, err)
	}
	var n int
	if err := a.c.DB().QueryRow(`SELECT count(*) FROM lists WHERE id = 'l3'`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("the refused create stayed: %d, %v", n, err)
	}
	rej = a.rejections()
	if len(rej) != 2 || rej[0].Status != "rejected_terminal" || rej[1].Status != "rejected_terminal" {
		t.Fatalf("A's rejections: %+v", rej)
	}
	if got := a.eventsOf(client.EventRejected); len(got) != 2 {
		t.Fatalf("%d rejection events", len(got))
	}
	if err := a.c.DeleteRejections(context.Background(), rej[0].Seq); err != nil {
		t.Fatal(err)
	}
	if got := a.rejections(); len(got) != 1 || got[0].Seq != rej[1].Seq {
		t.Fatalf("after deleting one: %+v", got)
	}
	s.captured(t)
	a.sync()
	b.sync()
	s.converged(t, a)
	s.converged(t, b)
}

// With a contract bundled in the application, a new installation writes
// before it ever reached the server; the first sync's snapshot keeps those
// changes and pushes them.
func TestOfflineFirstStart(t *testing.T) {
	t.Parallel()
	s := startServer(t, `INSERT INTO lists (id, user_id, name) VALUES ('l1', 'alice', 'on the server')`)
	contract, err := s.engine.Load().Schema(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	f := newFlaky()
	f.offline.Store(true)
	d := s.newDevice(t, "alice", func(c *client.Config) { withFlaky(f)(c); c.Contract = contract })
	d.exec(`INSERT INTO lists (id, user_id, name) VALUES ('mine', 'alice', 'made offline')`)
	d.exec(`INSERT INTO items (id, list_id, title) VALUES ('i1', 'mine', 'x')`)
	if err := d.c.Sync(context.Background()); err == nil || d.c.Status().State != client.StateOffline {
		t.Fatalf("Sync while offline: %v, status %+v", err, d.c.Status())
	}
	f.offline.Store(false)
	d.sync()
	if n := d.pending(); n != 0 {
		t.Fatalf("%d pending", n)
	}
	if n := d.count(`SELECT count(*) FROM lists`); n != 2 {
		t.Fatalf("%d lists on the device, want the server's and its own", n)
	}
	s.captured(t)
	d.sync()
	s.converged(t, d)
}

// A child created under a parent that the application deleted before it
// was pushed can never be taken: after a few parent_not_found answers the
// client gives it up as a rejection (parent_missing), rather than keep it
// queued until the server's own bound.
func TestParentMissing(t *testing.T) {
	t.Parallel()
	s := startServer(t, "")
	d := s.newDevice(t, "alice", nil)
	d.sync()
	d.exec(`INSERT INTO lists (id, user_id, name) VALUES ('gone', 'alice', 'deleted before its push')`)
	d.exec(`INSERT INTO items (id, list_id, title) VALUES ('orphan', 'gone', 'x')`)
	d.exec(`DELETE FROM lists WHERE id = 'gone'`)
	for range 3 {
		d.sync()
	}
	rej := d.rejections()
	if len(rej) != 1 || rej[0].ID != "orphan" || rej[0].Reason != client.ReasonParentMissing {
		t.Fatalf("rejections %+v", rej)
	}
	if n := d.pending(); n != 0 {
		t.Fatalf("%d pending", n)
	}
	if n := d.count(`SELECT count(*) FROM items`); n != 0 {
		t.Fatalf("the orphan stayed")
	}
}

// Configuration errors name the field; calls after Close fail with
// ErrClosed.
func TestConfigAndClose(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, cfg := range []client.Config{
		{Path: dir + "/a.db"},
		{ServerURL: "ftp://x", Path: dir + "/a.db"},
		{ServerURL: "http://x"},
		{ServerURL: "http://x", Path: dir + "/a.db", PushBatch: 1001},
		{ServerURL: "http://x", Path: dir + "/a.db", PullWait: time.Hour},
		{ServerURL: "http://x", Path: dir + "/a.db", MinBackoff: time.Minute, MaxBackoff: time.Second},
	} {
		if c, err := client.Open(context.Background(), cfg); err == nil {
			_ = c.Close()
			t.Errorf("Open(%+v) succeeded", cfg)
		}
	}
	c, err := client.Open(context.Background(), client.Config{ServerURL: "http://127.0.0.1:1", Path: dir + "/b.db"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Tables() != nil || c.ClientID() == "" {
		t.Fatalf("a new file: tables %v, client id %q", c.Tables(), c.ClientID())
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Sync(context.Background()); !errors.Is(err, client.ErrClosed) {
		t.Fatalf("Sync after Close: %v", err)
	}
	if err := c.Run(context.Background()); !errors.Is(err, client.ErrClosed) {
		t.Fatalf("Run after Close: %v", err)
	}
	if c.Status().State != client.StateClosed {
		t.Fatalf("status after Close: %+v", c.Status())
	}
}

// Offline, the app writes 100 items and then the list they belong to (the
// local tables have no foreign keys, so any order works locally). With
// the default PushBatch (100), the first batch used to be the 100 items
// alone: each answered parent_not_found (retryable), pushAll stopped after
// that batch, every round, so the list (entry 101) was never pushed; after
// the server's bound (10 pushes that applied nothing, over 10 minutes:
// simulated here by backdating the waits) the items were refused for good
// (parent_never_arrived) and deleted locally. The list's create now goes
// in the items' batch.
func TestChildrenWrittenBeforeParent(t *testing.T) {
	t.Parallel()
	s := startServer(t, "")
	d := s.newDevice(t, "alice", nil)
	d.sync()

	for i := range 100 {
		d.exec(`INSERT INTO items (id, list_id, title) VALUES (?, 'l2', 'item')`, fmt.Sprint("i", i))
	}
	d.exec(`INSERT INTO lists (id, user_id, name) VALUES ('l2', 'alice', 'two')`)

	for range 3 {
		d.sync()
	}
	var onServer int
	if err := s.db.Super.QueryRow(`SELECT count(*) FROM lists WHERE id = 'l2'`).Scan(&onServer); err != nil {
		t.Fatal(err)
	}
	if p := d.pending(); p != 0 || onServer != 1 {
		t.Errorf("after 3 rounds: %d changes pending, the list on the server: %d (want 0 pending, the list pushed)", p, onServer)
	}

	for range 10 {
		s.exec(t, `UPDATE synchro.clients SET parent_waits = (SELECT coalesce(jsonb_agg(jsonb_set(w, '{since}', to_jsonb(now() - interval '11 minutes'))), '[]')
			FROM jsonb_array_elements(parent_waits) AS w) WHERE client_id = $1`, d.c.ClientID())
		d.sync()
	}
	var items int
	if err := d.c.DB().QueryRow(`SELECT count(*) FROM items`).Scan(&items); err != nil {
		t.Fatal(err)
	}
	if rej := d.rejections(); items != 100 || len(rej) != 0 {
		first := ""
		if len(rej) > 0 {
			first = rej[0].Status + " " + rej[0].Reason
		}
		t.Errorf("the items the user wrote: %d of 100 left on the device, %d rejections (first: %s)", items, len(rej), first)
	}
}

// TestArrayDefaults: a row the application inserts without its array
// columns gets their defaults from the contract's sqlite_default_sql,
// PostgreSQL's array text, and reaches the server holding the server's
// defaults. Before, the client pushed '{}' as the JSON object {} and the
// server refused the row for good (and '{1,2}' as a string, which the
// server refused too until it took array text).
func TestArrayDefaults(t *testing.T) {
	t.Parallel()
	s := startServer(t, `ALTER TABLE lists ADD COLUMN tags text[] NOT NULL DEFAULT '{}', ADD COLUMN ranks int[] DEFAULT '{1,2}',
		ADD COLUMN words text[] DEFAULT '{"a b",NULL,"it''s"}'`)
	d := s.newDevice(t, "alice", nil)
	d.sync()
	d.exec(`INSERT INTO lists (id, user_id, name) VALUES ('l1', 'alice', 'groceries')`)
	d.sync()
	if r := d.rejections(); len(r) != 0 {
		t.Fatalf("rejections: %+v", r)
	}
	if n := d.pending(); n != 0 {
		t.Fatalf("%d pending", n)
	}
	var tags, ranks, words string
	if err := s.db.Super.QueryRow(`SELECT tags::text, ranks::text, words::text FROM lists WHERE id = 'l1'`).Scan(&tags, &ranks, &words); err != nil {
		t.Fatalf("the row on the server: %v", err)
	}
	if tags != "{}" || ranks != "{1,2}" || words != `{"a b",NULL,it's}` {
		t.Errorf("the server holds tags %s, ranks %s, words %s; want the defaults {}, {1,2}, {\"a b\",NULL,it's}", tags, ranks, words)
	}
	s.captured(t)
	d.sync()
	s.converged(t, d)
}
