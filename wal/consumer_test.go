package wal

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pglogrepl"

	"github.com/synchrosync/synchro"
	"github.com/synchrosync/synchro/internal/pgtest"
)

// running is a consumer started by startConsumer or runConsumer.
type running struct {
	t      testing.TB
	c      *Consumer
	cancel context.CancelFunc
	// done is closed when Start returned, err then holds what it returned.
	done chan struct{}
	err  error

	stopOnce sync.Once
	stopErr  error
	// taken is set when the test received Start's outcome (stop, result):
	// the cleanup does not report it again.
	taken atomic.Bool
}

// stopTimeout bounds how long Start may take to return once cancelled.
const stopTimeout = 30 * time.Second

// newTestConsumer returns a consumer with cfg whose test signals deliver.
func newTestConsumer(t testing.TB, cfg ConsumerConfig) *Consumer {
	t.Helper()
	c, err := NewConsumer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.signals.init()
	return c
}

// startConsumer starts a consumer with cfg (see runConsumer).
func startConsumer(t testing.TB, cfg ConsumerConfig) *running {
	t.Helper()
	return runConsumer(t, newTestConsumer(t, cfg))
}

// runConsumer runs c.Start on a goroutine of its own. When t ends the
// consumer is stopped, and t fails if Start returned an error the test did
// not take (stop, result) or did not return within stopTimeout.
func runConsumer(t testing.TB, c *Consumer) *running {
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{t: t, c: c, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		r.err = c.Start(ctx)
	}()
	t.Cleanup(func() {
		if err := r.halt(); err != nil && !r.taken.Load() {
			t.Errorf("consumer of slot %s: %v", c.cfg.SlotName, err)
		}
	})
	return r
}

// halt cancels the consumer and waits for Start to return. It returns
// Start's error, or an error when Start did not return within stopTimeout;
// further calls return the same.
func (r *running) halt() error {
	r.stopOnce.Do(func() {
		r.cancel()
		select {
		case <-r.done:
			if r.err != nil {
				r.stopErr = fmt.Errorf("Start returned %w", r.err)
			}
		case <-time.After(stopTimeout):
			r.stopErr = fmt.Errorf("Start did not return within %v of the cancellation", stopTimeout)
		}
	})
	return r.stopErr
}

// stop is halt for the test, which takes the error.
func (r *running) stop() error {
	r.taken.Store(true)
	return r.halt()
}

// result waits, without cancelling, for Start to return by itself and
// returns its error; the test fails if it does not within timeout.
func (r *running) result(timeout time.Duration) error {
	r.t.Helper()
	r.taken.Store(true)
	select {
	case <-r.done:
		return r.err
	case <-time.After(timeout):
		r.t.Fatalf("Start did not return within %v", timeout)
		return nil
	}
}

// waitStreaming waits until a session of the consumer streams, and
// returns the position it streams from.
func (r *running) waitStreaming() pglogrepl.LSN {
	r.t.Helper()
	return await(r, "the consumer to stream", &r.c.signals.streaming)
}

// waitStandby waits until a session of the consumer finds the slot in use
// by another consumer.
func (r *running) waitStandby() {
	r.t.Helper()
	await(r, "the consumer to find the slot in use", &r.c.signals.standby)
}

// ctEnv is a database with the test schema and a running consumer.
type ctEnv struct {
	t   *testing.T
	db  *pgtest.Database
	reg *synchro.Registry
	cfg ConsumerConfig
	// cur is the running consumer, nil when stopped.
	cur *running
}

const ctSchema = `
CREATE TABLE lists (id text PRIMARY KEY, user_id text, name text, updated_at timestamptz NOT NULL DEFAULT now(), deleted_at timestamptz);
CREATE TABLE items (id text PRIMARY KEY, list_id text REFERENCES lists (id) ON DELETE CASCADE, title text, body text, updated_at timestamptz NOT NULL DEFAULT now(), deleted_at timestamptz);
CREATE TABLE notes (id bigint PRIMARY KEY, item_id text REFERENCES items (id) ON DELETE CASCADE, body text);
CREATE TABLE categories (id text PRIMARY KEY, name text);
CREATE TABLE shared (id text PRIMARY KEY, user_id text, name text, deleted_at timestamptz);
`

func ctRegistry() *synchro.Registry {
	reg := synchro.NewRegistry()
	reg.Register(&synchro.TableConfig{TableName: "lists", OwnerColumn: "user_id"})
	reg.Register(&synchro.TableConfig{TableName: "items", ParentTable: "lists", ParentFKCol: "list_id"})
	reg.Register(&synchro.TableConfig{TableName: "notes", ParentTable: "items", ParentFKCol: "item_id"})
	reg.Register(&synchro.TableConfig{TableName: "categories"})
	reg.Register(&synchro.TableConfig{TableName: "shared", OwnerColumn: "user_id", AllowGlobalRead: true})
	return reg
}

// ctStart prepares a database and starts a consumer on it.
func ctStart(t *testing.T, setup string) *ctEnv {
	t.Helper()
	db := pgtest.NewMigratedDatabase(t)
	pgtest.Exec(t, db.Super, ctSchema)
	if setup != "" {
		pgtest.Exec(t, db.Super, setup)
	}
	e := &ctEnv{t: t, db: db, reg: ctRegistry()}
	e.cfg = ConsumerConfig{
		ConnString:      db.DSN,
		SlotName:        "s_" + strings.ReplaceAll(db.Name, "-", "_"),
		PublicationName: "pub",
		Registry:        e.reg,
		ChangelogDB:     db.Super,
		StandbyTimeout:  200 * time.Millisecond,
	}
	// Streaming, not only an active slot: the slot is active already
	// while the consumer records the existing rows, and a write then would
	// be part of that record rather than of the stream.
	e.cur = startConsumer(t, e.cfg)
	e.cur.waitStreaming()
	return e
}

// stop stops the consumer, if it runs, failing the test if Start returned
// an error.
func (e *ctEnv) stop() {
	e.t.Helper()
	if e.cur == nil {
		return
	}
	if err := e.cur.stop(); err != nil {
		e.t.Error(err)
	}
	e.cur = nil
}

// changelog returns the changelog as "bucket table id op" lines in seq order.
func (e *ctEnv) changelog() []string {
	rows, err := e.db.Super.Query(`SELECT bucket_id, table_name, record_id, operation FROM synchro.changelog ORDER BY seq`)
	if err != nil {
		e.t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var b, tb, id string
		var op synchro.Operation
		if err := rows.Scan(&b, &tb, &id, &op); err != nil {
			e.t.Fatal(err)
		}
		out = append(out, fmt.Sprintf("%s %s %s %s", b, tb, id, op))
	}
	return out
}

// waitChangelog waits until the changelog has at least n rows after skip
// and returns those rows.
func (e *ctEnv) waitChangelog(skip, n int) []string {
	e.t.Helper()
	var cl []string
	pgtest.WaitFor(e.t, fmt.Sprintf("%d changelog rows after %d", n, skip), 20*time.Second, func() (bool, string) {
		cl = e.changelog()
		return len(cl) >= skip+n, fmt.Sprintf("%d rows: %v", len(cl), cl)
	})
	return cl[skip:]
}

func ctEqual(t *testing.T, what string, got []string, want ...string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("%s:\n got %q\nwant %q", what, got, want)
	}
}

func TestConsumerCapturesChanges(t *testing.T) {
	t.Parallel()
	e := ctStart(t, "")
	db := e.db.Super
	pgtest.Exec(t, db, `INSERT INTO lists (id, user_id, name) VALUES ('l1', 'alice', 'one')`)
	ctEqual(t, "insert", e.waitChangelog(0, 1), "user:alice lists l1 create")

	pgtest.Exec(t, db, `INSERT INTO items (id, list_id, title) VALUES ('i1', 'l1', 'a')`)
	ctEqual(t, "child insert", e.waitChangelog(1, 1), "user:alice items i1 create")

	pgtest.Exec(t, db, `INSERT INTO notes (id, item_id, body) VALUES (7, 'i1', 'n')`)
	ctEqual(t, "grandchild insert", e.waitChangelog(2, 1), "user:alice notes 7 create")

	pgtest.Exec(t, db, `UPDATE items SET title = 'b' WHERE id = 'i1'`)
	ctEqual(t, "update", e.waitChangelog(3, 1), "user:alice items i1 update")

	// The owner changes: the list and its descendants move.
	pgtest.Exec(t, db, `UPDATE lists SET user_id = 'bob' WHERE id = 'l1'`)
	ctEqual(t, "owner change", e.waitChangelog(4, 6),
		"user:alice lists l1 delete", "user:bob lists l1 create",
		"user:alice items i1 delete", "user:bob items i1 create",
		"user:alice notes 7 delete", "user:bob notes 7 create")

	pgtest.Exec(t, db, `UPDATE items SET deleted_at = now() WHERE id = 'i1'`)
	ctEqual(t, "soft delete", e.waitChangelog(10, 1), "user:bob items i1 delete")

	pgtest.Exec(t, db, `DELETE FROM notes WHERE id = 7`)
	ctEqual(t, "hard delete", e.waitChangelog(11, 1), "user:bob notes 7 delete")

	pgtest.Exec(t, db, `INSERT INTO categories VALUES ('c1', 'x'), ('c2', 'y')`)
	ctEqual(t, "reference rows", e.waitChangelog(12, 2), "global categories c1 create", "global categories c2 create")
	pgtest.Exec(t, db, `TRUNCATE categories`)
	ctEqual(t, "truncate", e.waitChangelog(14, 2), "global categories c1 delete", "global categories c2 delete")

	pgtest.Exec(t, db, `UPDATE lists SET id = 'l9' WHERE id = 'l1' AND false`) // no-op
	pgtest.Exec(t, db, `INSERT INTO shared VALUES ('s1', NULL, 'g')`)
	ctEqual(t, "global row", e.waitChangelog(16, 1), "global shared s1 create")
	pgtest.Exec(t, db, `UPDATE shared SET user_id = 'carol' WHERE id = 's1'`)
	ctEqual(t, "global to user", e.waitChangelog(17, 2), "global shared s1 delete", "user:carol shared s1 create")

	pgtest.Exec(t, db, `UPDATE shared SET id = 's2' WHERE id = 's1'`)
	ctEqual(t, "key change", e.waitChangelog(19, 2), "user:carol shared s1 delete", "user:carol shared s2 create")
}

func TestConsumerBackfillsExistingRows(t *testing.T) {
	t.Parallel()
	e := ctStart(t, `
INSERT INTO lists (id, user_id, name) VALUES ('l1', 'alice', 'one'), ('l2', 'bob', 'two');
INSERT INTO items (id, list_id, title) VALUES ('i1', 'l1', 'a'), ('i2', 'l2', 'b');
INSERT INTO categories VALUES ('c1', 'x');`)
	// Backfilled rows have buckets but no changelog rows; a later change to
	// them knows their buckets.
	pgtest.Exec(t, e.db.Super, `UPDATE lists SET user_id = 'carol' WHERE id = 'l1'`)
	ctEqual(t, "move of a backfilled row", e.waitChangelog(0, 4),
		"user:alice lists l1 delete", "user:carol lists l1 create",
		"user:alice items i1 delete", "user:carol items i1 create")
	var edges int
	if err := e.db.Super.QueryRow(`SELECT count(*) FROM synchro.bucket_edges`).Scan(&edges); err != nil || edges != 5 {
		t.Fatalf("edges = %d, %v; want 5", edges, err)
	}
}

// A parent that gets its first buckets (an owner set on a row that had
// none) brings the children it already has.
func TestConsumerParentGainsBucketsMovesChildren(t *testing.T) {
	t.Parallel()
	e := ctStart(t, "")
	db := e.db.Super
	pgtest.Exec(t, db, `INSERT INTO lists (id, user_id, name) VALUES ('l1', NULL, 'orphan')`)
	pgtest.Exec(t, db, `INSERT INTO items (id, list_id, title) VALUES ('i1', 'l1', 'a')`)
	pgtest.Exec(t, db, `INSERT INTO lists (id, user_id, name) VALUES ('mark', 'zed', 'marker')`)
	ctEqual(t, "rows without buckets write nothing", e.waitChangelog(0, 1), "user:zed lists mark create")
	pgtest.Exec(t, db, `UPDATE lists SET user_id = 'alice' WHERE id = 'l1'`)
	ctEqual(t, "owner set", e.waitChangelog(1, 2), "user:alice lists l1 create", "user:alice items i1 create")
}

// Registering a table after NewConsumer does not affect the consumer: it
// captures the tables registered when it was created.
func TestConsumerIgnoresLaterRegistrations(t *testing.T) {
	t.Parallel()
	db := pgtest.NewMigratedDatabase(t)
	pgtest.Exec(t, db.Super, ctSchema)
	e := &ctEnv{t: t, db: db, reg: ctRegistry()}
	e.cfg = ConsumerConfig{
		ConnString: db.DSN, SlotName: "s_" + strings.ReplaceAll(db.Name, "-", "_"), PublicationName: "pub",
		Registry: e.reg, ChangelogDB: db.Super, StandbyTimeout: 200 * time.Millisecond,
	}
	c := newTestConsumer(t, e.cfg)
	pgtest.Exec(t, db.Super, `CREATE TABLE later (id text PRIMARY KEY, user_id text)`)
	e.reg.Register(&synchro.TableConfig{TableName: "later", OwnerColumn: "user_id"})
	e.cur = runConsumer(t, c)
	e.cur.waitStreaming()
	pgtest.Exec(t, db.Super, `INSERT INTO later VALUES ('x', 'amy'); INSERT INTO lists (id, user_id) VALUES ('l1', 'amy')`)
	ctEqual(t, "only the tables known at NewConsumer", e.waitChangelog(0, 1), "user:amy lists l1 create")
}

// TestBatchDue checks when received transactions are written while no
// batch is being written: at MaxBatchEvents or eagerBatchEvents row
// changes, after a pause of idleFlush, or once the first has waited
// MaxBatchDelay; otherwise they wait for more.
func TestBatchDue(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		maxEvents    int
		events       int
		idle, waited time.Duration
		want         bool
	}{
		{10000, 1, 0, 0, false},
		{10000, eagerBatchEvents - 1, idleFlush - time.Microsecond, 20*time.Millisecond - time.Microsecond, false},
		{10000, eagerBatchEvents, 0, 0, true},
		{10000, 1, idleFlush, 0, true},
		{10000, 1, 0, 20 * time.Millisecond, true},
		{4, 3, 0, 0, false},
		{4, 4, 0, 0, true},
	} {
		c := &Consumer{cfg: ConsumerConfig{MaxBatchEvents: tc.maxEvents, MaxBatchDelay: 20 * time.Millisecond}}
		if got := c.batchDue(tc.events, tc.idle, tc.waited); got != tc.want {
			t.Errorf("MaxBatchEvents %d: %d row changes, idle %v, waited %v: due %v, want %v",
				tc.maxEvents, tc.events, tc.idle, tc.waited, got, tc.want)
		}
	}
}
