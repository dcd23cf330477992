package wal

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/synchrosync/synchro"
	"github.com/synchrosync/synchro/internal/changenote"
	"github.com/synchrosync/synchro/internal/pgerr"
	"github.com/synchrosync/synchro/internal/pgtest"
)

// TestBackfillPartsAnnounceEveryBucket: a table registered again is
// recorded in parts (of two rows in these tests), each written and
// forgotten before the next; the notification sent with the record's
// transaction must still name the buckets of every part's changelog rows,
// or devices waiting on the earlier parts' buckets would not hear of them
// until their re-check.
func TestBackfillPartsAnnounceEveryBucket(t *testing.T) {
	t.Parallel()
	e := e2eNew(t, otherSchema, otherRegistry())
	e.run()
	e.step(`INSERT INTO other (id, user_id) SELECT 'o' || g, 'u' || g FROM generate_series(1, 5) AS g`)
	e.halt()
	e.cfg.Registry = ctRegistry() // rolled back: the session forgets other
	e.run()
	e.halt()
	pgtest.Exec(t, e.db.Super, `UPDATE other SET user_id = 'v' || substr(id, 2)`)

	ctx := context.Background()
	listener, err := pgx.Connect(ctx, e.db.DSN)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = listener.Close(ctx) }()
	if _, err := listener.Exec(ctx, "LISTEN "+pgx.Identifier{synchro.ChangesChannel}.Sanitize()); err != nil {
		t.Fatal(err)
	}
	e.cfg.Registry = otherRegistry() // rolled forward: recorded again
	e.run()
	var want []string
	for g := 1; g <= 5; g++ {
		want = append(want, fmt.Sprintf("user:u%d", g), fmt.Sprintf("user:v%d", g))
	}
	got := map[string]bool{}
	all := false
	deadline := time.Now().Add(e2eTimeout)
	for !all && slices.ContainsFunc(want, func(b string) bool { return !got[b] }) {
		if time.Now().After(deadline) {
			t.Fatalf("notes named %v, want every one of %v", got, want)
		}
		wctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		n, err := listener.WaitForNotification(wctx)
		cancel()
		if err != nil {
			continue
		}
		note := changenote.Decode(n.Payload)
		all = all || note.All
		for _, b := range note.Buckets {
			got[b] = true
		}
	}
	for id, want := range map[string]string{"o1": "user:v1", "o3": "user:v3", "o5": "user:v5"} {
		ctEqual(t, "edges of "+id, e.edges("other", id), want)
	}
}

// pauseAssigner is the JoinResolver, except that it stops at row o5 of
// other (once) until released: the backfill of other has then written its
// first two parts (o1,o2 and o3,o4) and still reads on mgmt.
type pauseAssigner struct {
	BucketAssigner
	once             *sync.Once
	reached, release chan struct{}
	last             string // the id to stop at, o5 when empty
}

func (a pauseAssigner) AssignBuckets(ctx context.Context, table, id string, op synchro.Operation, data map[string]any) ([]string, error) {
	stop := a.last
	if stop == "" {
		stop = "o5"
	}
	if table == "other" && id == stop {
		a.once.Do(func() { close(a.reached); <-a.release })
	}
	return a.BucketAssigner.AssignBuckets(ctx, table, id, op, data)
}

// TestBackfillLeavesChangelogWritesFree: while a table added to a
// streaming slot is still being read, after parts of its record were
// written, LockChangelogWrites (a snapshot start, a resubscription) is
// not kept waiting: the parts' changelog rows wait in a temporary table
// until the end. Written into synchro.changelog part by part (found by
// review), they held its lock from the first part on.
func TestBackfillLeavesChangelogWritesFree(t *testing.T) {
	t.Parallel()
	e := e2eNew(t, otherSchema, nil)
	e.run() // other is not registered
	e.halt()
	pgtest.Exec(t, e.db.Super, `INSERT INTO other (id, user_id) SELECT 'o' || g, 'u' || g FROM generate_series(1, 6) AS g`)

	pa := pauseAssigner{once: new(sync.Once), reached: make(chan struct{}), release: make(chan struct{})}
	e.cfg.Registry = otherRegistry()
	pa.BucketAssigner = synchro.NewJoinResolverWithDB(e.cfg.Registry, e.db.Super)
	e.cfg.Assigner = pa
	r := e.launch(newTestConsumer(t, e.cfg))
	select {
	case <-pa.reached:
	case <-time.After(e2eTimeout):
		close(pa.release)
		t.Fatal("the backfill of other never reached o5")
	}

	ctx := context.Background()
	tx, err := e.db.Super.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = tx.ExecContext(ctx, `SET LOCAL lock_timeout = '500ms'`)
	start := time.Now()
	_, lockErr := tx.ExecContext(ctx, `LOCK TABLE synchro.changelog IN SHARE ROW EXCLUSIVE MODE`) // store.LockChangelogWrites
	waited := time.Since(start)
	_ = tx.Rollback()
	close(pa.release)
	r.waitStreaming()
	if lockErr != nil {
		t.Errorf("LockChangelogWrites while the backfill still reads other: %v (code %s) after %v; "+
			"the changelog transaction holds synchro.changelog from its first part on", lockErr, pgerr.Code(lockErr), waited.Round(time.Millisecond))
	}
}

// liveHeapAtLastRow records other's n rows as a table added to a streaming
// slot, in parts of 1000 rows, and returns the live Go heap (after GC)
// while the assigner is at the last row.
func liveHeapAtLastRow(t *testing.T, n int) uint64 {
	e := e2eNew(t, otherSchema, nil)
	e.run() // other is not registered
	e.halt()
	pgtest.Exec(t, e.db.Super, `INSERT INTO other (id, user_id) SELECT 'o' || g, 'u' || (g % 50) FROM generate_series(1, $1::int) AS g`, n)
	pa := pauseAssigner{once: new(sync.Once), reached: make(chan struct{}), release: make(chan struct{})}
	pa.last = fmt.Sprintf("o%d", n)
	e.cfg.Registry = otherRegistry()
	pa.BucketAssigner = synchro.NewJoinResolverWithDB(e.cfg.Registry, e.db.Super)
	e.cfg.Assigner = pa
	e.cfg.backfillPart = 1000
	r := e.launch(newTestConsumer(t, e.cfg))
	select {
	case <-pa.reached:
	case <-time.After(2 * e2eTimeout):
		t.Fatal("the backfill of other never reached its last row")
	}
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	close(pa.release)
	r.waitStreaming()
	r.stop()
	return ms.HeapAlloc
}

// TestBackfillHeapFlatForAnAddedTable: the live heap of a record of a
// table added to a streaming slot, at its last row, does not grow with
// the table's rows. It kept the moved record of every row for
// moveChildren, even for a table without child tables (found by review:
// about 114 bytes a row). Not parallel: it reads the process's heap.
func TestBackfillHeapFlatForAnAddedTable(t *testing.T) {
	small := liveHeapAtLastRow(t, 10000)
	large := liveHeapAtLastRow(t, 60000)
	grown := float64(int64(large)-int64(small)) / (1 << 20)
	t.Logf("live heap at the last row: 10k rows %.1f MB, 60k rows %.1f MB (+%.1f MB, %.0f B per extra row)",
		float64(small)/(1<<20), float64(large)/(1<<20), grown, grown*(1<<20)/50000)
	if grown > 2 {
		t.Errorf("the live heap grew by %.1f MB for 50k more rows, parts of 1000", grown)
	}
}

// TestFlushPartForgetsItsRecords: a record handed out after flushPart is
// a fresh one. Truncating the batch's spare records to length 0 kept
// their array, and rec handed out the forgotten records with their state
// (found by review; latent, a backfill's batch having no spare records).
func TestFlushPartForgetsItsRecords(t *testing.T) {
	t.Parallel()
	db := pgtest.NewMigratedDatabase(t)
	a := &applier{db: db.Super, slot: "review", logger: slog.New(slog.DiscardHandler), signals: new(consumerSignals),
		tables: map[string]*synchro.TableConfig{}}
	ctx := context.Background()
	conn, tx, err := a.begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	defer func() { _ = tx.Rollback() }()
	b := a.newBatch(ctx, conn, tx, 4)
	b.setEdges(b.rec(recKey{"lists", "l1"}), []string{"user:a"})
	if err := b.flushPart(); err != nil {
		t.Fatal(err)
	}
	r := b.rec(recKey{"lists", "l2"})
	if r.loaded || r.dirty || r.edges != nil {
		t.Errorf("a new record after flushPart: loaded=%v dirty=%v edges=%q, want a fresh record", r.loaded, r.dirty, r.edges)
	}
}

// TestBackfillPartsWithoutSubtransactions: the parts of a record do not
// each open a subtransaction. insertEdges's savepoint, taken once per
// part, gave each part's edges an XID of their own (found by review): past
// 64 in one transaction (PGPROC_MAX_CACHED_SUBXIDS) the subtransaction
// cache overflows, and every snapshot on the server costs more until the
// record commits. Here a new slot's record of 650 rows in parts of 10
// (650,000 rows at the default part size).
func TestBackfillPartsWithoutSubtransactions(t *testing.T) {
	t.Parallel()
	e := e2eNew(t, otherSchema+`INSERT INTO other (id, user_id) SELECT 'o' || g, 'u' || (g % 50) FROM generate_series(1, 650) AS g;`, otherRegistry())
	e.cfg.backfillPart = 10
	e.run()
	xids := pgtest.Count(t, e.db.Super, `SELECT count(DISTINCT xmin::text) FROM synchro.bucket_edges WHERE table_name = 'other'`)
	if xids > 64 {
		t.Errorf("the record's bucket edges were written by %d (sub)transactions, more than the 64 a backend caches", xids)
	}
}

// recordOtherAdded adds table other, holding n rows, to the streaming slot
// of e (through the registry: a session that did not register it ran
// first), with setup applied to e before that session starts, and fails t
// unless the record completes without a failed session: n edges and n
// creates.
func recordOtherAdded(t *testing.T, e *e2eEnv, n int, setup func()) {
	t.Helper()
	e.run() // other is not registered
	e.halt()
	pgtest.Exec(t, e.db.Super, `INSERT INTO other (id, user_id) SELECT 'o' || g, 'u' || (g % 50) FROM generate_series(1, $1::int) AS g`, n)
	e.cfg.Registry = otherRegistry()
	setup()
	r := e.launch(newTestConsumer(t, e.cfg))
	pgtest.WaitFor(t, "the record of other", e2eTimeout, func() (bool, string) {
		if errs := r.c.signals.reconnecting.drain(); len(errs) != 0 {
			t.Fatalf("the session failed: %v", errs)
		}
		edges := pgtest.Count(t, e.db.Super, `SELECT count(*) FROM synchro.bucket_edges WHERE table_name = 'other'`)
		creates := pgtest.Count(t, e.db.Super, `SELECT count(*) FROM synchro.changelog WHERE table_name = 'other'`)
		return edges == n && creates == n, fmt.Sprintf("%d edges, %d changelog rows of other", edges, creates)
	})
}

// TestBackfillWithoutTemporaryTables: a ChangelogDB role that may not
// create temporary tables (TEMPORARY revoked from PUBLIC, a common
// hardening) still records a table added to the streaming slot: its
// parts' changelog rows then go straight to synchro.changelog. Found by
// review: every attempt failed on the temporary table, and capture stopped.
func TestBackfillWithoutTemporaryTables(t *testing.T) {
	t.Parallel()
	e := e2eNew(t, otherSchema, nil)
	pgtest.Exec(t, e.db.Super, capturerGrants)
	pgtest.Exec(t, e.db.Super, `DO $$ BEGIN EXECUTE format('REVOKE TEMPORARY ON DATABASE %I FROM PUBLIC', current_database()); END $$`)
	e.cfg.ChangelogDB = e.db.App
	recordOtherAdded(t, e, 7, func() {})
}

// TestBackfillStashUnderTempFileLimit: the stashed changelog rows of a
// large record go to synchro.changelog without temporary files, which a
// server's temp_file_limit may refuse. Found by review: written by one
// statement that buffered and sorted them all, the record failed at
// every attempt.
func TestBackfillStashUnderTempFileLimit(t *testing.T) {
	t.Parallel()
	e := e2eNew(t, otherSchema, nil)
	recordOtherAdded(t, e, 40000, func() {
		pgtest.Exec(t, e.db.Super, `DO $$ BEGIN
EXECUTE format('ALTER DATABASE %I SET temp_file_limit = ''1MB''', current_database());
EXECUTE format('ALTER DATABASE %I SET work_mem = ''64kB''', current_database()); END $$`)
		db, err := sql.Open("pgx", e.db.DSN) // sessions that see the settings
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = db.Close() })
		e.cfg.ChangelogDB = db
		e.cfg.backfillPart = 1000
	})
}

// TestBackfillStashBeforeLastPart: the stashed changelog rows of a
// record's parts take lower seqs than its last part's, in the order the
// rows were read (heap order o1..o5; parts of two, o5 the last). Suggested
// by review: the order of the two writes in batch.write was untested.
func TestBackfillStashBeforeLastPart(t *testing.T) {
	t.Parallel()
	e := e2eNew(t, otherSchema, nil)
	recordOtherAdded(t, e, 5, func() {})
	ctEqual(t, "changelog rows of other by seq", slices.DeleteFunc(e.changelog(), func(l string) bool { return !strings.Contains(l, " other ") }),
		"user:u1 other o1 create", "user:u2 other o2 create", "user:u3 other o3 create", "user:u4 other o4 create", "user:u5 other o5 create")
}

// TestStopReadCancels: a backfill that fails while reading a table stops
// the read by cancelling it (stopRead), instead of reading the rest of the
// table before its error returns; the connection is usable afterwards.
func TestStopReadCancels(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDatabase(t)
	ctx := t.Context()
	conn, err := pgconn.Connect(ctx, db.DSN)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	// Some minutes of rows, were they all read (in the select list, they
	// are streamed: in FROM, a function scan would make them all first).
	rr := conn.ExecParams(ctx, `SELECT generate_series(1, 1000000000), repeat('x', 100)`, nil, nil, nil, nil)
	for i := 0; i < 10 && rr.NextRow(); i++ {
	}
	if err := stopRead(ctx, conn, rr); pgerr.Code(err) != pgerr.QueryCanceled {
		t.Fatalf("stopRead: %v, want the statement cancelled (%s)", err, pgerr.QueryCanceled)
	}
	res := conn.ExecParams(ctx, `SELECT 1`, nil, nil, nil, nil).Read()
	if res.Err != nil || len(res.Rows) != 1 {
		t.Fatalf("the connection after stopRead: %v", res.Err)
	}
}
