package synchro_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/synchrosync/synchro"
	"github.com/synchrosync/synchro/internal/pgtest"
)

// This file tests compaction (compactor.go, Engine.RunCompaction and
// Engine.StartCompaction) against the real PostgreSQL of the test harness,
// with the WAL consumer running, and benchmarks it. Helpers carry the prefix
// "cp".
//
//	go test -count=1 -run Compaction .
//	go test -run '^$' -bench Compaction -benchtime 1x .
//
// The invariant under test (SPEC §4, invariant 4): a client whose checkpoint
// is below the compaction boundary gets snapshot_required with reason
// checkpoint_before_retention, a client at or past it never does, and
// compaction never removes a change that an active client, or a snapshot in
// progress, still needs.

var cpBenchRows = flag.Int("compaction.rows", 5_000_000, "changelog rows of BenchmarkCompaction")

// cpShortBenchRows is the size of BenchmarkCompaction under -short.
const cpShortBenchRows = 50_000

// cpRunLockKey is compactor.go's compactionRunLockKey ("synccmpt"), the
// session advisory lock one compaction run holds.
const cpRunLockKey = int64(0x73796e63636d7074)

// cpDiscard is a logger that drops everything.
var cpDiscard = slog.New(slog.DiscardHandler)

// cpEnv is a read path environment whose engine has compaction configured;
// its hooks record every compaction run and snapshot-required answer.
type cpEnv struct {
	*rpEnv
	mu       sync.Mutex
	runs     []synchro.CompactResult
	required []cpRequired
}

// cpRequired is a call of Hooks.OnSnapshotRequired.
type cpRequired struct {
	clientID           string
	checkpoint, minSeq int64
	reason             string
}

// cpStart starts an environment whose engine runs compaction with cc (nil:
// no compaction configured), as the superuser or as the application role.
func cpStart(t *testing.T, cc *synchro.CompactorConfig, app bool) *cpEnv {
	t.Helper()
	return cpStartWith(t, cc, app, nil)
}

// cpStartWith is cpStart with the registry reg (nil: rpRegistry()).
func cpStartWith(t *testing.T, cc *synchro.CompactorConfig, app bool, reg *synchro.Registry) *cpEnv {
	t.Helper()
	return cpStartOpts(t, cc, rpOptions{app: app, registry: reg})
}

// cpStartOpts is cpStart with the read path's options o (its config is
// replaced).
func cpStartOpts(t *testing.T, cc *synchro.CompactorConfig, o rpOptions) *cpEnv {
	t.Helper()
	e := &cpEnv{}
	if cc != nil && cc.Logger == nil {
		c := *cc
		c.Logger = cpDiscard
		cc = &c
	}
	o.config = func(cfg *synchro.Config) {
		cfg.Compactor = cc
		cfg.Hooks.OnCompaction = func(_ context.Context, r synchro.CompactResult) {
			e.mu.Lock()
			defer e.mu.Unlock()
			e.runs = append(e.runs, r)
		}
		cfg.Hooks.OnSnapshotRequired = func(_ context.Context, clientID string, checkpoint, minSeq int64, reason string) {
			e.mu.Lock()
			defer e.mu.Unlock()
			e.required = append(e.required, cpRequired{clientID, checkpoint, minSeq, reason})
		}
	}
	e.rpEnv = rpStart(t, o)
	return e
}

// runCount returns how many times Hooks.OnCompaction fired.
func (e *cpEnv) runCount() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.runs)
}

// lastRequired returns the last snapshot-required answer given to clientID.
func (e *cpEnv) lastRequired(clientID string) (cpRequired, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for i := len(e.required) - 1; i >= 0; i-- {
		if e.required[i].clientID == clientID {
			return e.required[i], true
		}
	}
	return cpRequired{}, false
}

// run runs one compaction cycle through the engine; it must not fail nor
// be skipped (no other run is in progress).
func (e *cpEnv) run() synchro.CompactResult {
	e.t.Helper()
	res, err := e.eng.RunCompaction(context.Background())
	if err != nil {
		e.t.Fatalf("RunCompaction: %v", err)
	}
	if res.Skipped {
		e.t.Fatalf("RunCompaction was skipped, but no other run is in progress")
	}
	return res
}

// cpInt runs a query returning one integer.
func cpInt(t testing.TB, db interface {
	QueryRow(string, ...any) *sql.Row
}, q string, args ...any) int64 {
	t.Helper()
	var n sql.NullInt64
	if err := db.QueryRow(q, args...).Scan(&n); err != nil {
		t.Fatalf("query %q: %v", q, err)
	}
	return n.Int64
}

// cpBoundary returns the recorded compaction boundary.
func cpBoundary(t testing.TB, db *sql.DB) int64 {
	t.Helper()
	return cpInt(t, db, `SELECT boundary_seq FROM synchro.compaction WHERE singleton`)
}

// cpMaxSeq returns the highest changelog seq, 0 when the changelog is empty.
func cpMaxSeq(t testing.TB, db *sql.DB) int64 {
	t.Helper()
	return cpInt(t, db, `SELECT coalesce(max(seq), 0) FROM synchro.changelog`)
}

// cpEligible counts, from the spec, the rows a compaction with boundary
// safe deletes: every row at or below it, and every row above it that a
// later row of the same bucket and record supersedes.
func cpEligible(t testing.TB, db *sql.DB, safe int64) int64 {
	t.Helper()
	return cpInt(t, db, `
SELECT (SELECT count(*) FROM synchro.changelog WHERE seq <= $1)
     + (SELECT count(*) FROM synchro.changelog AS c
         WHERE c.seq > $1 AND EXISTS (SELECT 1 FROM synchro.changelog AS n
                                       WHERE n.table_name = c.table_name AND n.record_id = c.record_id
                                         AND n.bucket_id = c.bucket_id AND n.seq > c.seq))`, safe)
}

// cpCheckCompacted checks what a compaction with boundary safe leaves:
// no row at or below it, and among the rows up to upTo (written before the
// run) one row at most per bucket and record.
func cpCheckCompacted(t testing.TB, db *sql.DB, safe, upTo int64) {
	t.Helper()
	if n := cpInt(t, db, `SELECT count(*) FROM synchro.changelog WHERE seq <= $1`, safe); n != 0 {
		t.Errorf("%d changelog rows at or below the boundary %d remain", n, safe)
	}
	if n := cpInt(t, db, `
SELECT count(*) FROM (SELECT 1 FROM synchro.changelog WHERE seq <= $1
                       GROUP BY table_name, record_id, bucket_id HAVING count(*) > 1) AS d`, upTo); n != 0 {
		t.Errorf("%d buckets and records keep superseded changelog rows", n)
	}
}

// cpClient reads a client's liveness and acknowledged checkpoint.
func cpClient(t testing.TB, db *sql.DB, clientID string) (active bool, acked sql.NullInt64) {
	t.Helper()
	if err := db.QueryRow(`SELECT is_active, acked_seq FROM synchro.clients WHERE client_id = $1`, clientID).Scan(&active, &acked); err != nil {
		t.Fatalf("reading client %s: %v", clientID, err)
	}
	return active, acked
}

// cpCatchUp pulls until has_more is false, then once more so that the
// server records the client's checkpoint as acknowledged (the checkpoint a
// pull starts from is the one compaction keeps).
func cpCatchUp(c *rpClient) {
	c.e.t.Helper()
	c.pullAll(100)
	resp := c.pull(100)
	if resp.SnapshotRequired || resp.HasMore || len(resp.Changes)+len(resp.Deletes) != 0 {
		c.e.t.Fatalf("pull %s/%s after catching up: %+v", c.user, c.id, resp)
	}
}

// cpPullAt pulls for c from checkpoint without applying the response.
func cpPullAt(c *rpClient, checkpoint int64) *synchro.PullResponse {
	c.e.t.Helper()
	v, h := c.e.schema()
	resp, err := c.e.eng.Pull(context.Background(), c.user, &synchro.PullRequest{ClientID: c.id, Checkpoint: checkpoint,
		Limit: 100, SchemaVersion: v, SchemaHash: h})
	if err != nil {
		c.e.t.Fatalf("pull %s/%s from %d: %v", c.user, c.id, checkpoint, err)
	}
	return resp
}

// checkRetention checks that resp, the answer to a pull of clientID from
// checkpoint, is snapshot_required for checkpoint_before_retention with
// boundary as the hook's minSeq.
func (e *cpEnv) checkRetention(resp *synchro.PullResponse, clientID string, checkpoint, boundary int64) {
	e.t.Helper()
	if !resp.SnapshotRequired || resp.SnapshotReason != synchro.SnapshotReasonCheckpointBeforeLimit {
		e.t.Fatalf("pull of %s from %d below the boundary %d: snapshot_required %v reason %q, want checkpoint_before_retention",
			clientID, checkpoint, boundary, resp.SnapshotRequired, resp.SnapshotReason)
	}
	if resp.Checkpoint != checkpoint || resp.HasMore || len(resp.Changes)+len(resp.Deletes) != 0 {
		e.t.Errorf("snapshot_required answer carries a page: %+v", resp)
	}
	r, ok := e.lastRequired(clientID)
	if !ok || r.checkpoint != checkpoint || r.minSeq != boundary || r.reason != synchro.SnapshotReasonCheckpointBeforeLimit {
		e.t.Errorf("OnSnapshotRequired for %s: got %+v (called %v), want checkpoint %d, minSeq %d", clientID, r, ok, checkpoint, boundary)
	}
}

// cpRunLockHeld reports whether a session of the test's database holds
// the compaction run lock.
func cpRunLockHeld(t testing.TB, db *sql.DB) bool {
	t.Helper()
	return cpInt(t, db, `
SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 1
   AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
   AND classid::bigint = $1 AND objid::bigint = $2`, cpRunLockKey>>32, cpRunLockKey&0xffffffff) > 0
}

// cpWaitPruneBlocked waits until one edge prune of the test's database
// waits for a lock (what says which).
func cpWaitPruneBlocked(t testing.TB, db *sql.DB, what string) {
	t.Helper()
	pgtest.WaitFor(t, what, rpTimeout, func() (bool, string) {
		var n int
		err := db.QueryRow(`SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND query LIKE '%DELETE FROM synchro.bucket_edges%' AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()`).Scan(&n)
		return err == nil && n == 1, fmt.Sprintf("%d waiting, %v", n, err)
	})
}

// cpAge makes the client look idle since ago before now: its last sync,
// pull and push (those it did) go back to then.
func cpAge(t testing.TB, db *sql.DB, clientID string, ago string) {
	t.Helper()
	pgtest.Exec(t, db, `
UPDATE synchro.clients SET last_sync_at = now() - $2::interval,
       last_pull_at = CASE WHEN last_pull_at IS NOT NULL THEN now() - $2::interval END,
       last_push_at = CASE WHEN last_push_at IS NOT NULL THEN now() - $2::interval END
 WHERE client_id = $1`, clientID, ago)
}

// TestCompactionBoundary checks that the boundary is exactly the lowest
// checkpoint an active client pulled from: that client, at the boundary,
// pulls on; a deactivated client below it is told to snapshot again, one
// seq below the boundary already is; and the rows deleted are exactly those
// at or below it plus the superseded ones.
func TestCompactionBoundary(t *testing.T) {
	t.Parallel()
	e := cpStart(t, &synchro.CompactorConfig{StaleThreshold: time.Hour}, false)
	db := e.db.Super
	pgtest.Exec(t, db, `INSERT INTO categories VALUES ('c1', 'one'), ('c2', 'two')`)
	pgtest.Exec(t, db, `INSERT INTO lists (id, user_id, name) VALUES (1, 'alice', 'a'), (2, 'alice', 'b'), (3, 'bob', 'c')`)
	e.caughtUp()
	fast, slow := e.client("alice", "fast"), e.client("alice", "slow")
	fast.snapshot(100)
	slow.snapshot(100)

	// Changes the slow client does not pull. List 1 is updated twice, in
	// separate transactions: the first update is superseded above the
	// boundary.
	pgtest.Exec(t, db, `UPDATE lists SET name = 'a1' WHERE id = 1`)
	pgtest.Exec(t, db, `UPDATE lists SET name = 'a2' WHERE id = 1`)
	pgtest.Exec(t, db, `INSERT INTO lists (id, user_id, name) VALUES (4, 'alice', 'd')`)
	pgtest.Exec(t, db, `UPDATE categories SET name = 'uno' WHERE id = 'c1'`)
	e.caughtUp()
	cpCatchUp(fast)

	// Active and behind, the slow client holds the boundary at the
	// checkpoint it pulled from last (its snapshot's).
	s := slow.checkpoint
	if _, acked := cpClient(t, db, "slow"); !acked.Valid || acked.Int64 != s {
		t.Fatalf("the slow client's acknowledged checkpoint is %v, want %d", acked, s)
	}
	if cpInt(t, db, `SELECT count(*) FROM synchro.changelog WHERE seq <= $1`, s) == 0 || cpMaxSeq(t, db) <= s {
		t.Fatalf("no changelog rows on both sides of the slow client's checkpoint %d: the test sets nothing up", s)
	}
	maxSeq, want := cpMaxSeq(t, db), cpEligible(t, db, s)
	res := e.run()
	if res.SafeSeq != s || res.DeletedEntries != want || res.DeactivatedClients != 0 {
		t.Errorf("first run: %+v, want SafeSeq %d (the slow client's checkpoint), DeletedEntries %d, no client deactivated", res, s, want)
	}
	if b := cpBoundary(t, db); b != s {
		t.Errorf("recorded boundary %d, want %d", b, s)
	}
	cpCheckCompacted(t, db, s, maxSeq)
	// Exactly at the boundary, the slow client pulls on.
	cpCatchUp(slow)
	rpSameRows(t, "slow client at the boundary", slow.rows, e.expected("alice"))

	// The slow client goes quiet for longer than the stale threshold; the
	// fast one pulls on.
	cpAge(t, db, "slow", "2 hours")
	pgtest.Exec(t, db, `UPDATE lists SET name = 'b1' WHERE id = 2`)
	pgtest.Exec(t, db, `DELETE FROM lists WHERE id = 4`)
	e.caughtUp()
	cpCatchUp(fast)
	b := fast.checkpoint
	// Changes after the fast client's checkpoint: the boundary is then
	// below the highest seq.
	pgtest.Exec(t, db, `UPDATE lists SET name = 'a3' WHERE id = 1`)
	pgtest.Exec(t, db, `INSERT INTO categories VALUES ('c3', 'three')`)
	e.caughtUp()
	maxSeq = cpMaxSeq(t, db)
	if slow.checkpoint >= b || maxSeq <= b {
		t.Fatalf("slow at %d, fast at %d, highest seq %d: the test sets nothing up", slow.checkpoint, b, maxSeq)
	}
	want = cpEligible(t, db, b)
	res = e.run()
	if res.SafeSeq != b || res.DeletedEntries != want || res.DeactivatedClients != 1 {
		t.Errorf("second run: %+v, want SafeSeq %d (the fast client's checkpoint), DeletedEntries %d, 1 client deactivated", res, b, want)
	}
	if got := cpBoundary(t, db); got != b {
		t.Errorf("recorded boundary %d, want %d", got, b)
	}
	cpCheckCompacted(t, db, b, maxSeq)
	if active, _ := cpClient(t, db, "slow"); active {
		t.Errorf("the slow client is still active")
	}
	if active, _ := cpClient(t, db, "fast"); !active {
		t.Errorf("the fast client was deactivated")
	}

	// One seq below the boundary: snapshot required. At it: not.
	e.checkRetention(cpPullAt(fast, b-1), "fast", b-1, b)
	cpCatchUp(fast)
	rpSameRows(t, "fast client after the second run", fast.rows, e.expected("alice"))

	// The deactivated client, below the boundary, must snapshot again, and
	// then goes on.
	from := slow.checkpoint
	e.checkRetention(slow.pull(100), "slow", from, b)
	slow.snapshot(2)
	if active, _ := cpClient(t, db, "slow"); !active {
		t.Errorf("the slow client is not active after its snapshot")
	}
	cpCatchUp(slow)
	rpSameRows(t, "slow client after its new snapshot", slow.rows, e.expected("alice"))
	pgtest.Exec(t, db, `UPDATE lists SET name = 'b2' WHERE id = 2`)
	e.caughtUp()
	cpCatchUp(slow)
	cpCatchUp(fast)
	rpSameRows(t, "slow client at the end", slow.rows, e.expected("alice"))
	rpSameRows(t, "fast client at the end", fast.rows, e.expected("alice"))
}

// TestCompactionLostPullResponse checks that compaction keeps what a
// client needs when the response of its last pull was lost: the server
// delivered a page, but the client still stands at the checkpoint it
// pulled from, and pulls from it again.
func TestCompactionLostPullResponse(t *testing.T) {
	t.Parallel()
	e := cpStart(t, &synchro.CompactorConfig{StaleThreshold: time.Hour}, false)
	db := e.db.Super
	pgtest.Exec(t, db, `INSERT INTO lists (id, user_id, name) VALUES (1, 'alice', 'a')`)
	e.caughtUp()
	a, b := e.client("alice", "a"), e.client("alice", "b")
	a.snapshot(100)
	b.snapshot(100)
	for i := range 3 {
		pgtest.Exec(t, db, `UPDATE lists SET name = $1 WHERE id = 1`, fmt.Sprint("v", i))
		pgtest.Exec(t, db, `INSERT INTO lists (id, user_id, name) VALUES ($1, 'alice', 'x')`, 10+i)
	}
	e.caughtUp()
	from := a.checkpoint
	if resp := cpPullAt(a, from); resp.SnapshotRequired || resp.Checkpoint <= from {
		t.Fatalf("the pull whose response is lost: %+v", resp)
	}
	cpCatchUp(b)
	res := e.run()
	if res.SafeSeq > from {
		t.Errorf("SafeSeq %d passes %d, the checkpoint the client whose response was lost pulls from", res.SafeSeq, from)
	}
	a.pullAll(2)
	rpSameRows(t, "the client after its lost response", a.rows, e.expected("alice"))
}

// TestCompactionSupersededRows checks that compaction removes, above the
// boundary, every row of a bucket and record but the last, and that a
// client behind (at the boundary) still converges from what is left.
func TestCompactionSupersededRows(t *testing.T) {
	t.Parallel()
	e := cpStart(t, &synchro.CompactorConfig{StaleThreshold: time.Hour}, false)
	db := e.db.Super
	const item = "00000000-0000-4000-8000-000000000001"
	pgtest.Exec(t, db, `INSERT INTO categories VALUES ('c1', 'one')`)
	pgtest.Exec(t, db, `INSERT INTO lists (id, user_id, name) VALUES (1, 'alice', 'a'), (2, 'bob', 'b'), (6, 'alice', 'f')`)
	pgtest.Exec(t, db, `INSERT INTO items (id, list_id, title) VALUES ($1, 1, 'i')`, item)
	e.caughtUp()
	behind := e.client("alice", "behind")
	behind.snapshot(100)
	s := behind.checkpoint

	// Each statement its own transaction: one changelog row each.
	for i := range 30 {
		pgtest.Exec(t, db, `UPDATE lists SET name = $1, updated_at = now() WHERE id = 1`, fmt.Sprint("a", i))
	}
	for i := range 10 {
		pgtest.Exec(t, db, `UPDATE categories SET name = $1 WHERE id = 'c1'`, fmt.Sprint("c", i))
		pgtest.Exec(t, db, `UPDATE lists SET name = $1 WHERE id = 2`, fmt.Sprint("b", i))
	}
	for i := range 5 {
		pgtest.Exec(t, db, `UPDATE items SET title = $1 WHERE id = $2`, fmt.Sprint("i", i), item)
	}
	// Created, updated and deleted above the boundary.
	pgtest.Exec(t, db, `INSERT INTO lists (id, user_id, name) VALUES (5, 'alice', 'e')`)
	for i := range 3 {
		pgtest.Exec(t, db, `UPDATE lists SET name = $1 WHERE id = 5`, fmt.Sprint("e", i))
	}
	pgtest.Exec(t, db, `DELETE FROM lists WHERE id = 5`)
	// Moving between buckets, ending in bob's.
	for _, owner := range []string{"bob", "alice", "bob"} {
		pgtest.Exec(t, db, `UPDATE lists SET user_id = $1 WHERE id = 6`, owner)
	}
	e.caughtUp()

	if n := cpInt(t, db, `SELECT count(*) FROM synchro.changelog WHERE table_name = 'lists' AND record_id = '1' AND bucket_id = 'user:alice'`); n < 10 {
		t.Fatalf("%d changelog rows of lists/1: the updates were not captured one by one", n)
	}
	lastRows := func() map[string]int64 {
		rows, err := db.Query(`SELECT table_name || '/' || record_id || ' in ' || bucket_id, max(seq), count(*)
  FROM synchro.changelog WHERE seq > $1 GROUP BY 1`, s)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		out := map[string]int64{}
		for rows.Next() {
			var k string
			var seq, n int64
			if err := rows.Scan(&k, &seq, &n); err != nil {
				t.Fatal(err)
			}
			out[k] = seq
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		return out
	}
	before, total := lastRows(), cpInt(t, db, `SELECT count(*) FROM synchro.changelog`)
	maxSeq := cpMaxSeq(t, db)
	res := e.run()
	after, left := lastRows(), cpInt(t, db, `SELECT count(*) FROM synchro.changelog`)
	if res.SafeSeq != s || res.DeletedEntries != total-left {
		t.Errorf("run: %+v, want SafeSeq %d (the client behind), DeletedEntries %d", res, s, total-left)
	}
	if left != int64(len(before)) {
		t.Errorf("%d changelog rows left, want %d: one per bucket and record", left, len(before))
	}
	for k, seq := range before {
		if after[k] != seq {
			t.Errorf("%s: the row kept is seq %d, want the last one, %d", k, after[k], seq)
		}
	}
	cpCheckCompacted(t, db, s, maxSeq)
	// Nothing more to do.
	if res := e.run(); res.SafeSeq != s || res.DeletedEntries != 0 {
		t.Errorf("run again: %+v, want SafeSeq %d and nothing deleted", res, s)
	}

	// The client behind pulls, one record a page, and converges.
	behind.pullAll(1)
	rpSameRows(t, "client behind after compaction", behind.rows, e.expected("alice"))
	if _, ok := behind.rows["lists/6"]; ok {
		t.Errorf("the client holds lists/6, which moved to bob")
	}
}

// TestCompactionSnapshotInProgress checks that compaction does not pass the
// checkpoint of a snapshot in progress, even with no other client: the
// snapshot completes and the pulls after it need no new snapshot.
func TestCompactionSnapshotInProgress(t *testing.T) {
	t.Parallel()
	e := cpStart(t, &synchro.CompactorConfig{StaleThreshold: time.Hour}, false)
	db := e.db.Super
	pgtest.Exec(t, db, `INSERT INTO categories SELECT 'c' || g, 'cat' || g FROM generate_series(1, 5) g`)
	pgtest.Exec(t, db, `INSERT INTO lists (id, user_id, name) SELECT g, CASE WHEN g = 5 THEN 'bob' ELSE 'alice' END, 'l' || g FROM generate_series(1, 5) g`)
	pgtest.Exec(t, db, `INSERT INTO items (id, list_id, title) VALUES ('00000000-0000-4000-8000-000000000001', 1, 'i1'), ('00000000-0000-4000-8000-000000000002', 3, 'i2')`)
	e.caughtUp()
	c := e.client("alice", "phone")
	v, h := e.schema()
	page := func(cur *synchro.SnapshotCursor) *synchro.SnapshotResponse {
		t.Helper()
		resp, err := e.eng.Snapshot(context.Background(), "alice", &synchro.SnapshotRequest{ClientID: "phone", Cursor: cur, Limit: 2,
			SchemaVersion: v, SchemaHash: h})
		if err != nil {
			t.Fatalf("snapshot page: %v", err)
		}
		return resp
	}
	first := page(nil)
	if !first.HasMore {
		t.Fatal("the snapshot ended on its first page")
	}
	s := first.Checkpoint

	// Changes while the snapshot runs.
	for i := range 3 {
		pgtest.Exec(t, db, `UPDATE lists SET name = $1 WHERE id = 1`, fmt.Sprint("x", i))
	}
	pgtest.Exec(t, db, `DELETE FROM lists WHERE id = 2`)
	pgtest.Exec(t, db, `UPDATE lists SET deleted_at = now() WHERE id = 3`)
	pgtest.Exec(t, db, `INSERT INTO categories VALUES ('c9', 'nine')`)
	pgtest.Exec(t, db, `INSERT INTO lists (id, user_id, name) VALUES (7, 'alice', 'l7')`)
	pgtest.Exec(t, db, `UPDATE lists SET user_id = 'alice' WHERE id = 5`)
	e.caughtUp()
	maxSeq := cpMaxSeq(t, db)
	if maxSeq <= s {
		t.Fatalf("highest seq %d, snapshot at %d: the test sets nothing up", maxSeq, s)
	}
	for i := range 2 {
		res := e.run()
		if res.SafeSeq != s {
			t.Errorf("run %d: SafeSeq %d, want the snapshot's checkpoint %d (the highest seq is %d)", i+1, res.SafeSeq, s, maxSeq)
		}
	}
	cpCheckCompacted(t, db, s, maxSeq)

	// The snapshot completes; the pulls after it need no new snapshot.
	rows := map[string]json.RawMessage{}
	for resp := first; ; {
		for _, r := range resp.Records {
			rows[r.TableName+"/"+r.ID] = r.Data
		}
		if resp.Checkpoint != s {
			t.Fatalf("snapshot page at checkpoint %d, want %d", resp.Checkpoint, s)
		}
		if !resp.HasMore {
			break
		}
		resp = page(resp.Cursor)
	}
	c.rows, c.checkpoint = rows, s
	c.pullAll(2)
	rpSameRows(t, "client after its snapshot and pulls", c.rows, e.expected("alice"))
}

// TestCompactionStaleClients checks which clients a run deactivates (the
// threshold in microseconds; clients that never synced are kept), and what
// a deactivated client finds when it comes back.
func TestCompactionStaleClients(t *testing.T) {
	t.Parallel()
	e := cpStart(t, &synchro.CompactorConfig{StaleThreshold: 36 * time.Hour}, false)
	db := e.db.Super
	ctx := context.Background()
	for _, id := range []string{"p1", "p2", "p3", "p4", "p5"} {
		e.client("u", id)
	}

	// The threshold counts in microseconds. In one transaction now() is
	// fixed: the margins are exact.
	{
		tx, err := db.Begin()
		if err != nil {
			t.Fatal(err)
		}
		for id, ago := range map[string]string{"p1": "1499 microseconds", "p2": "1501 microseconds", "p3": "1 second", "p5": "1 hour"} {
			if _, err := tx.Exec(`UPDATE synchro.clients SET last_sync_at = now() - $2::interval WHERE client_id = $1`, id, ago); err != nil {
				t.Fatal(err)
			}
		}
		// p4 never synced; p5 was deactivated already.
		if _, err := tx.Exec(`UPDATE synchro.clients SET is_active = false WHERE client_id = 'p5'`); err != nil {
			t.Fatal(err)
		}
		n, err := synchro.NewCompactor(&synchro.CompactorConfig{StaleThreshold: 1500 * time.Microsecond}).DeactivateStaleClients(ctx, tx)
		if err != nil {
			t.Fatal(err)
		}
		if n != 2 {
			t.Errorf("deactivated %d clients, want 2 (p2, p3)", n)
		}
		for id, want := range map[string]bool{"p1": true, "p2": false, "p3": false, "p4": true, "p5": false} {
			var active bool
			if err := tx.QueryRow(`SELECT is_active FROM synchro.clients WHERE client_id = $1`, id).Scan(&active); err != nil {
				t.Fatal(err)
			}
			if active != want {
				t.Errorf("%s: is_active %v, want %v", id, active, want)
			}
		}
		if err := tx.Rollback(); err != nil {
			t.Fatal(err)
		}
	}

	// Through the engine, with its threshold of 36 hours.
	{
		pgtest.Exec(t, db, `UPDATE synchro.clients SET last_sync_at = now() - interval '35 hours' WHERE client_id = 'p1'`)
		pgtest.Exec(t, db, `UPDATE synchro.clients SET last_sync_at = now() - interval '37 hours' WHERE client_id IN ('p2', 'p5')`)
		pgtest.Exec(t, db, `UPDATE synchro.clients SET is_active = false WHERE client_id = 'p5'`)
		res := e.run()
		if res.DeactivatedClients != 1 {
			t.Errorf("deactivated %d clients, want 1 (p2)", res.DeactivatedClients)
		}
		for id, want := range map[string]bool{"p1": true, "p2": false, "p3": true, "p4": true, "p5": false} {
			if active, _ := cpClient(t, db, id); active != want {
				t.Errorf("%s: is_active %v, want %v", id, active, want)
			}
		}
		if res := e.run(); res.DeactivatedClients != 0 {
			t.Errorf("run again: deactivated %d clients, want 0", res.DeactivatedClients)
		}
	}

	// Deactivated clients coming back.
	{
		pgtest.Exec(t, db, `INSERT INTO categories VALUES ('c1', 'one')`)
		pgtest.Exec(t, db, `INSERT INTO lists (id, user_id, name) VALUES (1, 'alice', 'a'), (2, 'bob', 'b')`)
		e.caughtUp()
		x, y, z := e.client("alice", "x"), e.client("alice", "y"), e.client("bob", "z")
		for _, c := range []*rpClient{x, y, z} {
			c.snapshot(100)
		}
		pgtest.Exec(t, db, `UPDATE lists SET name = 'a1' WHERE id = 1`)
		pgtest.Exec(t, db, `UPDATE categories SET name = 'uno' WHERE id = 'c1'`)
		e.caughtUp()
		cpCatchUp(y)
		cpCatchUp(z)
		m := cpMaxSeq(t, db)
		if x.checkpoint >= m || y.checkpoint != m || z.checkpoint != m {
			t.Fatalf("x at %d, y at %d, z at %d, highest seq %d: the test sets nothing up", x.checkpoint, y.checkpoint, z.checkpoint, m)
		}
		cpAge(t, db, "x", "37 hours")
		cpAge(t, db, "y", "37 hours")
		res := e.run()
		if res.DeactivatedClients != 2 || res.SafeSeq != m {
			t.Errorf("run: %+v, want 2 clients deactivated (x, y) and SafeSeq %d (z's checkpoint)", res, m)
		}
		for id, want := range map[string]bool{"x": false, "y": false, "z": true} {
			if active, _ := cpClient(t, db, id); active != want {
				t.Errorf("%s: is_active %v, want %v", id, active, want)
			}
		}
		// y, at the boundary, goes on and is active again.
		cpCatchUp(y)
		if active, _ := cpClient(t, db, "y"); !active {
			t.Errorf("y is not active after pulling")
		}
		rpSameRows(t, "y", y.rows, e.expected("alice"))
		// x, below it, must snapshot again; the snapshot reactivates it.
		from := x.checkpoint
		e.checkRetention(x.pull(100), "x", from, m)
		x.snapshot(1)
		if active, _ := cpClient(t, db, "x"); !active {
			t.Errorf("x is not active after its snapshot")
		}
		cpCatchUp(x)
		rpSameRows(t, "x", x.rows, e.expected("alice"))
		if res := e.run(); res.DeactivatedClients != 0 {
			t.Errorf("run after they came back: deactivated %d clients, want 0", res.DeactivatedClients)
		}
	}
}

// TestCompactionStaleClientSnapshotInProgress checks that a deactivated
// client that comes back and starts a snapshot (which reactivates it) keeps
// its snapshot protected: a compaction run while it is in progress must not
// pass its checkpoint, and the pulls after it need no new snapshot.
func TestCompactionStaleClientSnapshotInProgress(t *testing.T) {
	t.Parallel()
	e := cpStart(t, &synchro.CompactorConfig{StaleThreshold: 36 * time.Hour}, false)
	db := e.db.Super
	pgtest.Exec(t, db, `INSERT INTO categories VALUES ('c1', 'one'), ('c2', 'two')`)
	pgtest.Exec(t, db, `INSERT INTO lists (id, user_id, name) VALUES (1, 'alice', 'a'), (2, 'alice', 'b')`)
	e.caughtUp()
	x, z := e.client("alice", "x"), e.client("alice", "z")
	x.snapshot(100)
	z.snapshot(100)
	pgtest.Exec(t, db, `UPDATE lists SET name = 'a1' WHERE id = 1`)
	e.caughtUp()
	cpCatchUp(z)
	cpAge(t, db, "x", "37 hours")
	if res := e.run(); res.DeactivatedClients != 1 {
		t.Fatalf("run: %+v, want x deactivated", res)
	}
	e.checkRetention(x.pull(100), "x", x.checkpoint, z.checkpoint)

	// x comes back: its snapshot starts, which reactivates it.
	v, h := e.schema()
	page := func(cur *synchro.SnapshotCursor) *synchro.SnapshotResponse {
		t.Helper()
		resp, err := e.eng.Snapshot(context.Background(), "alice", &synchro.SnapshotRequest{ClientID: "x", Cursor: cur, Limit: 1,
			SchemaVersion: v, SchemaHash: h})
		if err != nil {
			t.Fatalf("snapshot page: %v", err)
		}
		return resp
	}
	first := page(nil)
	s := first.Checkpoint
	if active, _ := cpClient(t, db, "x"); !active || !first.HasMore {
		t.Fatalf("after the first page of its snapshot: x active %v, has_more %v", active, first.HasMore)
	}
	// Changes meanwhile, which z pulls; then a compaction run.
	pgtest.Exec(t, db, `UPDATE lists SET name = 'b1' WHERE id = 2`)
	pgtest.Exec(t, db, `UPDATE categories SET name = 'uno' WHERE id = 'c1'`)
	e.caughtUp()
	cpCatchUp(z)
	res := e.run()
	active, _ := cpClient(t, db, "x")
	if res.SafeSeq > s {
		t.Errorf("compaction passed the checkpoint %d of the snapshot in progress of x, which Snapshot reactivated: %+v, x active %v "+
			"(its last_sync_at is still the old one, so the run deactivated it again and no longer counted its snapshot)", s, res, active)
	}
	x.rows = map[string]json.RawMessage{}
	for resp := first; ; resp = page(resp.Cursor) {
		for _, r := range resp.Records {
			x.rows[r.TableName+"/"+r.ID] = r.Data
		}
		if !resp.HasMore {
			break
		}
	}
	x.checkpoint = s
	if resp := x.pull(100); resp.SnapshotRequired {
		t.Fatalf("x pulls from the checkpoint %d of the snapshot it just completed: snapshot required (%s), boundary %d",
			s, resp.SnapshotReason, cpBoundary(t, db))
	}
	cpCatchUp(x)
	rpSameRows(t, "x", x.rows, e.expected("alice"))
}

// TestCompactionShortStaleThreshold checks that a client that keeps
// pulling is never deactivated, however short the stale threshold (the
// threshold is any duration): here a client pulls every 100ms, with nothing
// new for it, for three thresholds of 500ms, while another client's
// buckets change and it pulls them. Compaction must neither deactivate the
// first nor pass its checkpoint.
func TestCompactionShortStaleThreshold(t *testing.T) {
	t.Parallel()
	const threshold = 500 * time.Millisecond
	e := cpStart(t, &synchro.CompactorConfig{StaleThreshold: threshold}, false)
	db := e.db.Super
	pgtest.Exec(t, db, `INSERT INTO categories VALUES ('c1', 'one')`)
	e.caughtUp()
	a, b := e.client("alice", "a"), e.client("bob", "b")
	a.snapshot(100)
	b.snapshot(100)
	deadline := time.Now().Add(3 * threshold)
	for i := 1; time.Now().Before(deadline); i++ {
		pgtest.Exec(t, db, `INSERT INTO lists (id, user_id, name) VALUES ($1, 'bob', 'x')`, i)
		e.caughtUp()
		cpCatchUp(b)
		if resp := a.pull(100); resp.SnapshotRequired || len(resp.Changes)+len(resp.Deletes) != 0 {
			t.Fatalf("alice's pull: %+v", resp)
		}
		time.Sleep(100 * time.Millisecond)
	}
	res := e.run()
	active, acked := cpClient(t, db, "a")
	if res.DeactivatedClients != 0 || !active || res.SafeSeq > a.checkpoint {
		var lastSync time.Time
		_ = db.QueryRow(`SELECT last_sync_at FROM synchro.clients WHERE client_id = 'a'`).Scan(&lastSync)
		t.Errorf("compaction after alice pulled every 100ms for %v, stale threshold %v: %+v; alice active %v, acked %v, checkpoint %d, last sync %v ago",
			3*threshold, threshold, res, active, acked, a.checkpoint, time.Since(lastSync).Round(time.Millisecond))
	}
	if resp := a.pull(100); resp.SnapshotRequired {
		t.Errorf("alice, who pulls every 100ms, must snapshot again (%s): her checkpoint %d, the boundary %d",
			resp.SnapshotReason, a.checkpoint, cpBoundary(t, db))
	}
}

// TestCompactionConcurrentRuns checks that one run at a time goes: a run
// that finds another in progress (or the lock held) returns at once with
// Skipped and no error, whatever handle it was given.
func TestCompactionConcurrentRuns(t *testing.T) {
	t.Parallel()
	e := cpStart(t, &synchro.CompactorConfig{StaleThreshold: time.Hour}, false)
	db := e.db.Super
	ctx := context.Background()
	pgtest.Exec(t, db, `INSERT INTO categories VALUES ('c1', 'one'), ('c2', 'two')`)
	e.caughtUp()
	standalone := synchro.NewCompactor(&synchro.CompactorConfig{Logger: cpDiscard})
	// skipped runs fn and checks that it returns at once, skipped.
	skipped := func(what string, fn func(context.Context) (synchro.CompactResult, error)) {
		t.Helper()
		ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		start := time.Now()
		res, err := fn(ctx)
		if took := time.Since(start); err != nil || !res.Skipped || took > 5*time.Second {
			t.Errorf("%s while another run holds the lock: %+v, %v after %v; want skipped at once, no error", what, res, err, took)
		}
		if res != (synchro.CompactResult{Skipped: true}) {
			t.Errorf("%s: a skipped run reports %+v", what, res)
		}
	}
	handles := func() {
		t.Helper()
		skipped("Engine.RunCompaction", e.eng.RunCompaction)
		skipped("Compactor.RunCompaction on the pool", func(ctx context.Context) (synchro.CompactResult, error) {
			return standalone.RunCompaction(ctx, db)
		})
		skipped("Compactor.RunCompaction on a connection", func(ctx context.Context) (synchro.CompactResult, error) {
			conn, err := db.Conn(ctx)
			if err != nil {
				return synchro.CompactResult{}, err
			}
			defer func() { _ = conn.Close() }()
			return standalone.RunCompaction(ctx, conn)
		})
		skipped("Compactor.RunCompaction in a transaction", func(ctx context.Context) (synchro.CompactResult, error) {
			tx, err := db.BeginTx(ctx, nil)
			if err != nil {
				return synchro.CompactResult{}, err
			}
			defer func() { _ = tx.Rollback() }()
			return standalone.RunCompaction(ctx, tx)
		})
	}

	// The lock held by another session.
	{
		conn, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = conn.Close() }()
		if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock($1)`, cpRunLockKey); err != nil {
			t.Fatal(err)
		}
		handles()
		if n := e.runCount(); n != 0 {
			t.Errorf("OnCompaction fired %d times for skipped runs", n)
		}
		if b := cpBoundary(t, db); b != 0 {
			t.Errorf("a skipped run recorded the boundary %d", b)
		}
		if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_unlock($1)`, cpRunLockKey); err != nil {
			t.Fatal(err)
		}
		_ = conn.Close()
	}

	// A run in progress.
	{
		// The first run waits on a lock of synchro.clients (its first
		// statement deactivates stale clients) while holding the
		// compaction lock.
		blocker, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = blocker.Rollback() }()
		if _, err := blocker.Exec(`LOCK TABLE synchro.clients IN SHARE MODE`); err != nil {
			t.Fatal(err)
		}
		type result struct {
			res synchro.CompactResult
			err error
		}
		firstDone := make(chan result, 1)
		runsBefore, maxSeq := e.runCount(), cpMaxSeq(t, db)
		go func() {
			res, err := e.eng.RunCompaction(ctx)
			firstDone <- result{res, err}
		}()
		pgtest.WaitFor(t, "the first run to hold the compaction lock and wait", rpTimeout, func() (bool, string) {
			return cpRunLockHeld(t, db) && cpInt(t, db, `
SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'
   AND query LIKE '%synchro.clients%'`) > 0, ""
		})
		// Two more at once, concurrently.
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { defer wg.Done(); skipped("Engine.RunCompaction (concurrent)", e.eng.RunCompaction) }()
		go func() {
			defer wg.Done()
			skipped("Compactor.RunCompaction (concurrent)", func(ctx context.Context) (synchro.CompactResult, error) {
				return standalone.RunCompaction(ctx, db)
			})
		}()
		wg.Wait()
		handles()
		select {
		case r := <-firstDone:
			t.Fatalf("the first run returned while blocked: %+v, %v", r.res, r.err)
		default:
		}
		if err := blocker.Commit(); err != nil {
			t.Fatal(err)
		}
		select {
		case r := <-firstDone:
			if r.err != nil || r.res.Skipped {
				t.Errorf("the first run: %+v, %v; want it done", r.res, r.err)
			}
			if r.res.SafeSeq != maxSeq || maxSeq == 0 {
				t.Errorf("the first run: SafeSeq %d, want the highest seq %d (no client has synced)", r.res.SafeSeq, maxSeq)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("the first run did not finish")
		}
		if n := e.runCount() - runsBefore; n != 1 {
			t.Errorf("OnCompaction fired %d times, want once", n)
		}
	}

	// Every handle releases the lock at the end of its run.
	{
		for i := range 2 {
			if _, err := e.eng.RunCompaction(ctx); err != nil {
				t.Fatal(err)
			}
			for what, run := range map[string]func() (synchro.CompactResult, error){
				"engine": func() (synchro.CompactResult, error) { return e.eng.RunCompaction(ctx) },
				"pool":   func() (synchro.CompactResult, error) { return standalone.RunCompaction(ctx, db) },
				"connection": func() (synchro.CompactResult, error) {
					conn, err := db.Conn(ctx)
					if err != nil {
						return synchro.CompactResult{}, err
					}
					defer func() { _ = conn.Close() }()
					return standalone.RunCompaction(ctx, conn)
				},
				"transaction": func() (synchro.CompactResult, error) {
					tx, err := db.BeginTx(ctx, nil)
					if err != nil {
						return synchro.CompactResult{}, err
					}
					defer func() { _ = tx.Rollback() }()
					res, err := standalone.RunCompaction(ctx, tx)
					if err == nil {
						err = tx.Commit()
					}
					return res, err
				},
			} {
				if res, err := run(); err != nil || res.Skipped {
					t.Errorf("round %d, %s: %+v, %v; want a run", i, what, res, err)
				}
				if cpRunLockHeld(t, db) {
					t.Errorf("round %d, %s: the compaction lock is still held after the run", i, what)
				}
			}
		}
	}

	// Many at once.
	{
		const n = 6
		var wg sync.WaitGroup
		results := make([]synchro.CompactResult, n)
		errs := make([]error, n)
		runsBefore := e.runCount()
		for i := range n {
			wg.Go(func() {
				if i%2 == 0 {
					results[i], errs[i] = e.eng.RunCompaction(ctx)
				} else {
					results[i], errs[i] = standalone.RunCompaction(ctx, db)
				}
			})
		}
		wg.Wait()
		done, engineDone := 0, 0
		for i := range n {
			if errs[i] != nil {
				t.Errorf("run %d: %v", i, errs[i])
			}
			if !results[i].Skipped {
				done++
				if i%2 == 0 {
					engineDone++
				}
			}
		}
		if done == 0 {
			t.Errorf("every run was skipped")
		}
		if got := e.runCount() - runsBefore; got != engineDone {
			t.Errorf("OnCompaction fired %d times, for %d engine runs done", got, engineDone)
		}
	}
}

// TestCompactionStart checks StartCompaction: a run at once, then one per
// interval, until its context ends; and that nothing runs without a
// Compactor.
func TestCompactionStart(t *testing.T) {
	t.Parallel()
	e := cpStart(t, &synchro.CompactorConfig{StaleThreshold: time.Hour}, false)
	waitRuns := func(n int) {
		t.Helper()
		pgtest.WaitFor(t, fmt.Sprintf("%d compaction runs", n), 20*time.Second, func() (bool, string) {
			runs := e.runCount()
			return runs >= n, fmt.Sprintf("%d runs", runs)
		})
	}
	// stays checks that no run starts for d.
	stays := func(what string, d time.Duration) {
		t.Helper()
		n := e.runCount()
		time.Sleep(d)
		if got := e.runCount(); got != n {
			t.Errorf("%s: %d runs within %v", what, got-n, d)
		}
	}

	// An interval of an hour, or of zero (an hour too): one run at once.
	for _, interval := range []time.Duration{time.Hour, 0} {
		ctx, cancel := context.WithCancel(context.Background())
		n := e.runCount()
		start := time.Now()
		e.eng.StartCompaction(ctx, interval)
		waitRuns(n + 1)
		t.Logf("interval %v: the first run after %v", interval, time.Since(start).Round(time.Millisecond))
		stays(fmt.Sprintf("interval %v, after the first run", interval), 300*time.Millisecond)
		cancel()
	}

	// A short interval: runs until cancelled.
	ctx, cancel := context.WithCancel(context.Background())
	n := e.runCount()
	e.eng.StartCompaction(ctx, 20*time.Millisecond)
	waitRuns(n + 4)
	cancel()
	time.Sleep(300 * time.Millisecond) // a run in flight at cancel may still finish
	stays("after cancel", 500*time.Millisecond)

	// Without a Compactor.
	var calls int
	var mu sync.Mutex
	eng, err := synchro.NewEngine(synchro.Config{DB: e.db.Super, Registry: e.reg, Hooks: synchro.Hooks{
		OnCompaction: func(context.Context, synchro.CompactResult) { mu.Lock(); calls++; mu.Unlock() },
	}})
	if err != nil {
		t.Fatal(err)
	}
	if res, err := eng.RunCompaction(context.Background()); err == nil {
		t.Errorf("RunCompaction without a Compactor: %+v, no error", res)
	}
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	eng.StartCompaction(ctx, time.Millisecond)
	time.Sleep(200 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	if calls != 0 {
		t.Errorf("StartCompaction without a Compactor ran %d times", calls)
	}
}

// TestCompactionDefaults checks the defaults of NewCompactor (nil config,
// zero or negative values: 7 days, batches of 10000) by their effects, and
// that every batch size deletes everything due. A statement trigger on the
// changelog records the rows each DELETE removes.
func TestCompactionDefaults(t *testing.T) {
	t.Parallel()
	e := cpStart(t, &synchro.CompactorConfig{}, false)
	db := e.db.Super
	ctx := context.Background()
	pgtest.Exec(t, db, `
CREATE TABLE cp_batches (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, n bigint NOT NULL);
CREATE FUNCTION cp_log_batch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO cp_batches (n) SELECT count(*) FROM old_rows;
	RETURN NULL;
END $$;
CREATE TRIGGER cp_batches AFTER DELETE ON synchro.changelog
	REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION cp_log_batch();`)

	if _, err := synchro.NewEngine(synchro.Config{DB: db, Registry: e.reg, Compactor: &synchro.CompactorConfig{StaleThreshold: -time.Second}}); err == nil {
		t.Errorf("NewEngine accepted a negative Compactor.StaleThreshold")
	}

	for _, tc := range []struct {
		name  string
		cfg   *synchro.CompactorConfig
		batch int64
		// below is the number of rows at or below the boundary.
		below int64
	}{
		{"nil", nil, 10000, 25001},
		{"zero", &synchro.CompactorConfig{Logger: cpDiscard}, 10000, 25001},
		{"negative", &synchro.CompactorConfig{StaleThreshold: -time.Hour, BatchSize: -5, Logger: cpDiscard}, 10000, 25001},
		{"batch 1", &synchro.CompactorConfig{BatchSize: 1, Logger: cpDiscard}, 1, 40},
		{"batch 7", &synchro.CompactorConfig{BatchSize: 7, Logger: cpDiscard}, 7, 40},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pgtest.Exec(t, db, `DELETE FROM synchro.clients; DELETE FROM synchro.changelog; TRUNCATE cp_batches;
UPDATE synchro.compaction SET boundary_seq = 0`)
			pgtest.Exec(t, db, `INSERT INTO synchro.changelog (bucket_id, table_name, record_id, operation)
SELECT 'user:u', 'lists', 'r' || g, 1 FROM generate_series(1, $1::int) g`, tc.below)
			// An active client at the last of them keeps the boundary
			// there; above it, 12 records of 5 versions each: 48 rows
			// superseded.
			pgtest.Exec(t, db, `INSERT INTO synchro.clients (user_id, client_id, acked_seq) SELECT 'u', 'cp', max(seq) FROM synchro.changelog`)
			boundary := cpMaxSeq(t, db)
			pgtest.Exec(t, db, `INSERT INTO synchro.changelog (bucket_id, table_name, record_id, operation)
SELECT 'user:u', 'lists', 'v' || (g % 12), 2 FROM generate_series(0, 59) g`)
			pgtest.Exec(t, db, `TRUNCATE cp_batches`)

			// The stale threshold: 7 days by default.
			tx, err := db.Begin()
			if err != nil {
				t.Fatal(err)
			}
			if _, err := tx.Exec(`INSERT INTO synchro.clients (user_id, client_id, last_sync_at) VALUES
	('u', 'fresh', now() - interval '7 days' + interval '1 minute'), ('u', 'stale', now() - interval '7 days' - interval '1 minute')`); err != nil {
				t.Fatal(err)
			}
			comp := synchro.NewCompactor(tc.cfg)
			n, err := comp.DeactivateStaleClients(ctx, tx)
			if err != nil {
				t.Fatal(err)
			}
			var stale bool
			if err := tx.QueryRow(`SELECT is_active FROM synchro.clients WHERE client_id = 'stale'`).Scan(&stale); err != nil {
				t.Fatal(err)
			}
			if n != 1 || stale {
				t.Errorf("stale threshold: deactivated %d clients (the one synced 7 days and a minute ago active: %v), want 1: the default is 7 days", n, stale)
			}
			_ = tx.Rollback()

			res, err := comp.RunCompaction(ctx, db)
			if err != nil {
				t.Fatal(err)
			}
			want := tc.below + 48
			if res.SafeSeq != boundary || res.DeletedEntries != want || res.Skipped {
				t.Errorf("run: %+v, want SafeSeq %d and DeletedEntries %d", res, boundary, want)
			}
			if left := cpInt(t, db, `SELECT count(*) FROM synchro.changelog`); left != 12 {
				t.Errorf("%d changelog rows left, want 12 (the last version of each record)", left)
			}
			var batches, biggest, sum int64
			if err := db.QueryRow(`SELECT count(*) FILTER (WHERE n > 0), coalesce(max(n), 0), coalesce(sum(n), 0) FROM cp_batches`).Scan(&batches, &biggest, &sum); err != nil {
				t.Fatal(err)
			}
			if biggest != tc.batch || sum != want {
				t.Errorf("%d batches deleted %d rows, the biggest %d; want %d rows in batches of at most (and some of exactly) %d",
					batches, sum, biggest, want, tc.batch)
			}
			if tc.batch == 10000 {
				var first []int64
				rows, err := db.Query(`SELECT n FROM cp_batches ORDER BY id LIMIT 3`)
				if err != nil {
					t.Fatal(err)
				}
				for rows.Next() {
					var n int64
					if err := rows.Scan(&n); err != nil {
						t.Fatal(err)
					}
					first = append(first, n)
				}
				rows.Close()
				if fmt.Sprint(first) != "[10000 10000 5001]" {
					t.Errorf("the rows at or below the boundary went in batches %v, want [10000 10000 5001]", first)
				}
			}
		})
	}

	t.Run("logger", func(t *testing.T) {
		var buf bytes.Buffer
		comp := synchro.NewCompactor(&synchro.CompactorConfig{Logger: slog.New(slog.NewTextHandler(&buf, nil))})
		if _, err := comp.RunCompaction(ctx, db); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(buf.String(), "synchro: compaction") || !strings.Contains(buf.String(), "deleted_entries=") {
			t.Errorf("the configured logger got %q", buf.String())
		}
	})
}

// TestCompactionPrune checks the bookkeeping a run prunes: the bucket
// edges of rows soft-deleted longer ago than the stale threshold, and rule
// failures replayed longer ago than it; recent ones, live rows and failures
// not replayed are kept.
func TestCompactionPrune(t *testing.T) {
	t.Parallel()
	const (
		i1 = "00000000-0000-4000-8000-000000000001"
		i2 = "00000000-0000-4000-8000-000000000002"
		i3 = "00000000-0000-4000-8000-000000000003"
	)
	setup := func(t *testing.T, e *cpEnv) {
		db := e.db.Super
		pgtest.Exec(t, db, `INSERT INTO lists (id, user_id, name) VALUES (1, 'alice', 'a'), (2, 'alice', 'b'), (3, 'alice', 'c')`)
		pgtest.Exec(t, db, `INSERT INTO items (id, list_id, title) VALUES ($1, 2, 'i1'), ($2, 2, 'i2'), ($3, 3, 'i3')`, i1, i2, i3)
		e.caughtUp()
		pgtest.Exec(t, db, `UPDATE lists SET deleted_at = now() - interval '2 hours' WHERE id = 1`)
		pgtest.Exec(t, db, `UPDATE lists SET deleted_at = now() - interval '30 minutes' WHERE id = 2`)
		pgtest.Exec(t, db, `UPDATE items SET deleted_at = now() - interval '3 hours' WHERE id = $1`, i1)
		e.caughtUp()
	}
	edges := func(t *testing.T, db *sql.DB) map[string]bool {
		t.Helper()
		rows, err := db.Query(`SELECT table_name || '/' || record_id FROM synchro.bucket_edges`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		out := map[string]bool{}
		for rows.Next() {
			var k string
			if err := rows.Scan(&k); err != nil {
				t.Fatal(err)
			}
			out[k] = true
		}
		return out
	}
	checkEdges := func(t *testing.T, db *sql.DB, want map[string]bool) {
		t.Helper()
		got := edges(t, db)
		for k, w := range want {
			if got[k] != w {
				t.Errorf("bucket edge of %s: present %v, want %v", k, got[k], w)
			}
		}
	}
	all := map[string]bool{"lists/1": true, "lists/2": true, "lists/3": true, "items/" + i1: true, "items/" + i2: true, "items/" + i3: true}
	leafItems := cpLeafItems

	t.Run("superuser", func(t *testing.T) {
		t.Parallel()
		e := cpStartWith(t, &synchro.CompactorConfig{StaleThreshold: time.Hour}, false, leafItems())
		db := e.db.Super
		setup(t, e)
		c := e.client("alice", "phone")
		c.snapshot(100)
		checkEdges(t, db, all)
		pgtest.Exec(t, db, `INSERT INTO synchro.rule_failures (table_name, record_id, operation, error_text, created_at, replayed_at) VALUES
	('lists', 'old', 1, 'x', now() - interval '3 days', now() - interval '2 hours'),
	('lists', 'recent', 1, 'x', now() - interval '3 days', now() - interval '30 minutes'),
	('lists', 'pending', 1, 'x', now() - interval '30 days', NULL)`)
		e.run()
		// Lists are the parents of items: their edges stay (see
		// TestCompactionPruneChildlessParent); items are pruned.
		checkEdges(t, db, map[string]bool{"lists/1": true, "lists/2": true, "lists/3": true,
			"items/" + i1: false, "items/" + i2: true, "items/" + i3: true})
		failures := func() string {
			var s string
			if err := db.QueryRow(`SELECT string_agg(record_id, ',' ORDER BY record_id) FROM synchro.rule_failures`).Scan(&s); err != nil {
				t.Fatal(err)
			}
			return s
		}
		if got := failures(); got != "pending,recent" {
			t.Errorf("rule failures left: %s, want pending,recent", got)
		}

		// A standalone Compactor prunes rule failures, not edges.
		pgtest.Exec(t, db, `UPDATE lists SET deleted_at = now() - interval '2 hours' WHERE id = 3`)
		e.caughtUp()
		pgtest.Exec(t, db, `UPDATE synchro.rule_failures SET replayed_at = now() - interval '2 hours' WHERE record_id = 'recent'`)
		if _, err := synchro.NewCompactor(&synchro.CompactorConfig{StaleThreshold: time.Hour, Logger: cpDiscard}).RunCompaction(context.Background(), db); err != nil {
			t.Fatal(err)
		}
		checkEdges(t, db, map[string]bool{"lists/3": true})
		if got := failures(); got != "pending" {
			t.Errorf("rule failures left: %s, want pending", got)
		}

		// A pruned row that comes back reaches the client.
		pgtest.Exec(t, db, `UPDATE lists SET deleted_at = NULL WHERE id = 1`)
		pgtest.Exec(t, db, `UPDATE items SET deleted_at = NULL WHERE id = $1`, i1)
		e.caughtUp()
		c.pullAll(100)
		rpSameRows(t, "client after the pruned rows came back", c.rows, e.expected("alice"))
	})

	t.Run("app role", func(t *testing.T) {
		t.Parallel()
		// Row-level security hides the rows from the role: their edges
		// are kept, and the run succeeds.
		e := cpStartWith(t, &synchro.CompactorConfig{StaleThreshold: time.Hour}, true, leafItems())
		setup(t, e)
		e.run()
		checkEdges(t, e.db.Super, all)
	})
}

// cpLeafItems is the read path's registry without notes: items are then
// no table's parent, and compaction may prune their edges.
func cpLeafItems() *synchro.Registry {
	return rpRegistryWithout("notes")
}

// cpTwoDeletedItems starts an environment whose compaction prunes the
// edges of items deleted over an hour ago, with two such items of alice's
// list, captured; it returns their ids.
func cpTwoDeletedItems(t *testing.T) (e *cpEnv, i1, i2 string) {
	t.Helper()
	i1, i2 = "00000000-0000-4000-8000-000000000001", "00000000-0000-4000-8000-000000000002"
	e = cpStartWith(t, &synchro.CompactorConfig{StaleThreshold: time.Hour}, false, cpLeafItems())
	db := e.db.Super
	pgtest.Exec(t, db, `INSERT INTO lists (id, user_id, name) VALUES (1, 'alice', 'a')`)
	pgtest.Exec(t, db, `INSERT INTO items (id, list_id, title) VALUES ($1, 1, 'i1'), ($2, 1, 'i2')`, i1, i2)
	pgtest.Exec(t, db, `UPDATE items SET deleted_at = now() - interval '2 hours'`)
	e.caughtUp()
	return e, i1, i2
}

// TestCompactionPruneRacesARestore: a row soft-deleted long ago is restored
// while compaction prunes its table's edges. The prune read the row as
// deleted (its statement began before the restore committed) and deleted
// its edge; capture, which had read the edge before the prune committed,
// saw the restored row keep its buckets and wrote no edge. The row was
// then live in no bucket's edges: a new device's snapshot missed it until
// it changed again. The prune now locks each row it prunes for (FOR
// SHARE): a restore in progress holds the prune up, and the prune sees it
// once committed. Here the prune is held open by a lock on another edge,
// so that it commits after capture wrote the restore.
func TestCompactionPruneRacesARestore(t *testing.T) {
	t.Parallel()
	e, i1, i2 := cpTwoDeletedItems(t)
	db := e.db.Super
	ctx := context.Background()

	begin := func() *sql.Tx {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = tx.Rollback() })
		return tx
	}
	holder := begin() // holds i2's edge: the prune waits there, open
	if _, err := holder.Exec(`SELECT 1 FROM synchro.bucket_edges WHERE table_name = 'items' AND record_id = $1 FOR UPDATE`, i2); err != nil {
		t.Fatal(err)
	}
	restore := begin()
	if _, err := restore.Exec(`UPDATE items SET deleted_at = NULL WHERE id = $1`, i1); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := e.eng.RunCompaction(ctx)
		done <- err
	}()
	cpWaitPruneBlocked(t, db, "the prune to wait for a lock")
	if err := restore.Commit(); err != nil {
		t.Fatal(err)
	}
	e.caughtUp() // capture wrote the restore: i1 keeps its bucket
	cpWaitPruneBlocked(t, db, "the prune to wait for i2's edge")
	if err := holder.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("RunCompaction: %v", err)
	}
	var edges string
	pgtest.QueryRow(t, db, `SELECT coalesce(string_agg(record_id, ',' ORDER BY record_id), '') FROM synchro.bucket_edges WHERE table_name = 'items'`).Scan(&edges)
	if edges != i1 {
		t.Errorf("edges of items after the prune: %q, want the restored %s's alone", edges, i1)
	}
	fresh := e.client("alice", "laptop")
	fresh.snapshot(100)
	rpSameRows(t, "new client", fresh.rows, e.expected("alice"))
}

// TestCompactionPruneBesideAPurge: the prune never waits for the
// application's locks on the rows it prunes for. An application purge
// deleting long-deleted rows in another order than the prune's deadlocked
// with it when the prune waited for them (found by a review: one of the
// two was killed, 40P01); the prune now skips a row locked elsewhere and
// keeps its edge until the next run.
func TestCompactionPruneBesideAPurge(t *testing.T) {
	t.Parallel()
	e, i1, i2 := cpTwoDeletedItems(t)
	db := e.db.Super
	ctx := context.Background()
	purge, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = purge.Rollback() })
	if _, err := purge.Exec(`DELETE FROM items WHERE id = $1`, i2); err != nil { // the row the prune reaches last
		t.Fatal(err)
	}
	runCtx, cancel := context.WithTimeout(ctx, rpTimeout)
	defer cancel()
	res, err := e.eng.RunCompaction(runCtx) // waited for the purge before
	if err != nil {
		t.Fatalf("RunCompaction: %v", err)
	}
	if res.PrunedEdges != 1 {
		t.Errorf("pruned %d edges, want i1's alone (i2 is locked by the purge)", res.PrunedEdges)
	}
	if _, err := purge.Exec(`DELETE FROM items WHERE id = $1`, i1); err != nil {
		t.Errorf("the purge: %v", err)
	}
	if err := purge.Commit(); err != nil {
		t.Errorf("the purge: %v", err)
	}
}

// TestCompactionPruneRowMovedPartition: the prune locks the rows it prunes
// for, and PostgreSQL cannot lock a row that moved to another partition
// since the prune's snapshot (serialization failure). The table's edges
// are then left to the next run, and the run goes on, instead of failing.
// Here the prune is held open by a lock on the edge of p1 while p2 moves
// from the first partition to the second.
func TestCompactionPruneRowMovedPartition(t *testing.T) {
	t.Parallel()
	reg := cpLeafItems()
	reg.Register(&synchro.TableConfig{TableName: "parts", OwnerColumn: "user_id"})
	e := cpStartOpts(t, &synchro.CompactorConfig{StaleThreshold: time.Hour}, rpOptions{registry: reg, schema: rpSchema + `
CREATE TABLE parts (id int PRIMARY KEY, user_id text, updated_at timestamptz NOT NULL DEFAULT now(), deleted_at timestamptz) PARTITION BY RANGE (id);
CREATE TABLE parts_a PARTITION OF parts FOR VALUES FROM (0) TO (1000);
CREATE TABLE parts_b PARTITION OF parts FOR VALUES FROM (1000) TO (2000);`})
	db := e.db.Super
	ctx := context.Background()
	pgtest.Exec(t, db, `INSERT INTO parts (id, user_id, deleted_at) VALUES (1, 'alice', now() - interval '2 hours'), (2, 'alice', now() - interval '2 hours')`)
	e.caughtUp()

	holder, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = holder.Rollback() })
	if _, err := holder.Exec(`SELECT 1 FROM synchro.bucket_edges WHERE table_name = 'parts' AND record_id = '1' FOR UPDATE`); err != nil {
		t.Fatal(err)
	}
	done := make(chan synchro.CompactResult, 1)
	errs := make(chan error, 1)
	go func() {
		res, err := e.eng.RunCompaction(ctx)
		errs <- err
		done <- res
	}()
	cpWaitPruneBlocked(t, db, "the prune to wait for p1's edge")
	pgtest.Exec(t, db, `UPDATE parts SET id = 1002 WHERE id = 2`) // to the second partition
	if err := holder.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := <-errs; err != nil {
		t.Fatalf("RunCompaction: %v", err)
	}
	if res := <-done; res.PrunedEdges != 0 {
		t.Errorf("the run pruned %d edges, want none (its statement on parts failed)", res.PrunedEdges)
	}
	e.caughtUp()
	res := e.run()
	var left int
	pgtest.QueryRow(t, db, `SELECT count(*) FROM synchro.bucket_edges WHERE table_name = 'parts'`).Scan(&left)
	if res.PrunedEdges != 2 || left != 0 {
		t.Errorf("the next run pruned %d edges and left %d, want 2 and none", res.PrunedEdges, left)
	}
}

// TestCompactionPruneDeletedParent checks that pruning the edges of a row
// soft-deleted long ago does not take its live children out of their
// buckets: the children of a soft-deleted list stay in the owner's bucket
// (the read rules follow the parent's owner, not its deleted_at), and a
// change of one of them, or a new one, must still reach the owner.
func TestCompactionPruneDeletedParent(t *testing.T) {
	t.Parallel()
	const (
		i1 = "00000000-0000-4000-8000-000000000001"
		i2 = "00000000-0000-4000-8000-000000000002"
	)
	e := cpStart(t, &synchro.CompactorConfig{StaleThreshold: time.Hour}, false)
	db := e.db.Super
	pgtest.Exec(t, db, `INSERT INTO lists (id, user_id, name) VALUES (1, 'alice', 'a')`)
	pgtest.Exec(t, db, `INSERT INTO items (id, list_id, title) VALUES ($1, 1, 'i1')`, i1)
	e.caughtUp()
	c := e.client("alice", "phone")
	c.snapshot(100)
	pgtest.Exec(t, db, `UPDATE lists SET deleted_at = now() - interval '2 hours' WHERE id = 1`)
	e.caughtUp()
	cpCatchUp(c)
	rpSameRows(t, "client after the list's soft delete", c.rows, e.expected("alice"))
	if _, ok := c.rows["items/"+i1]; !ok {
		t.Fatalf("the item of a soft-deleted list is not synced: the test's premise does not hold")
	}
	e.run()
	pgtest.Exec(t, db, `UPDATE items SET title = 'i1 again' WHERE id = $1`, i1)
	pgtest.Exec(t, db, `INSERT INTO items (id, list_id, title) VALUES ($1, 1, 'i2')`, i2)
	e.caughtUp()
	c.pullAll(100)
	rpSameRows(t, "client after its item of a pruned list changed", c.rows, e.expected("alice"))
	fresh := e.client("alice", "laptop")
	fresh.snapshot(100)
	rpSameRows(t, "new client", fresh.rows, e.expected("alice"))
	if t.Failed() {
		var edges string
		_ = db.QueryRow(`SELECT coalesce(string_agg(table_name || '/' || record_id || ' in ' || bucket_id, ', '), '') FROM synchro.bucket_edges`).Scan(&edges)
		t.Logf("bucket edges: %s", edges)
	}
}

// TestCompactionPruneChildlessParent: a list soft-deleted long ago, with no
// items when compaction ran, gets an item afterwards. The item takes the
// list's recorded buckets, so the list's edges must not have been pruned:
// when they were, the item was in no bucket and reached no client (found by
// the convergence model with compaction in the background).
func TestCompactionPruneChildlessParent(t *testing.T) {
	t.Parallel()
	const i1 = "00000000-0000-4000-8000-000000000001"
	e := cpStart(t, &synchro.CompactorConfig{StaleThreshold: time.Hour}, false)
	db := e.db.Super
	pgtest.Exec(t, db, `INSERT INTO lists (id, user_id, name) VALUES (1, 'alice', 'a')`)
	e.caughtUp()
	c := e.client("alice", "phone")
	c.snapshot(100)
	pgtest.Exec(t, db, `UPDATE lists SET deleted_at = now() - interval '2 hours' WHERE id = 1`)
	e.caughtUp()
	cpCatchUp(c)
	e.run()
	pgtest.Exec(t, db, `INSERT INTO items (id, list_id, title) VALUES ($1, 1, 'late')`, i1)
	e.caughtUp()
	c.pullAll(100)
	if _, ok := e.expected("alice")["items/"+i1]; !ok {
		t.Fatal("the item of a soft-deleted list is not alice's: the test's premise does not hold")
	}
	rpSameRows(t, "client after an item was added to a list pruned long ago", c.rows, e.expected("alice"))
}

// BenchmarkCompaction measures compaction against the real PostgreSQL of
// the test harness.
//
// bulk: a changelog of -compaction.rows rows (cpShortBenchRows under
// -short), a realistic mix written with plain SQL (about four rows per
// record: a create, updates, a delete for some; 1000 user buckets and a
// shared one; three tables), no client: every row can go. It reports the
// rows deleted per second.
//
// superseded: the same changelog, with an active client whose checkpoint
// is 0: nothing is below the boundary, and the rows superseded by a later
// one of the same bucket and record go.
//
// steady: K live records updated again and again, with compaction every M
// updates, and a client that pulls once between runs (the boundary trails
// one round behind). It reports the changelog rows kept per live record,
// which must stay bounded (at most one per record and bucket above the
// boundary).
func BenchmarkCompaction(b *testing.B) {
	rows := *cpBenchRows
	if testing.Short() {
		rows = cpShortBenchRows
	}
	ctx := context.Background()
	comp := synchro.NewCompactor(&synchro.CompactorConfig{Logger: cpDiscard})
	// load writes the bulk changelog: records r in [0, n/4), the version k
	// of record r is row g = k*records + r, so each record's versions are
	// spread over the whole changelog.
	load := func(b *testing.B, db *pgtest.Database, n int) {
		b.Helper()
		records := max(n/4, 1)
		pgtest.Exec(b, db.Super, `TRUNCATE synchro.changelog`)
		pgtest.Exec(b, db.Super, `
INSERT INTO synchro.changelog (bucket_id, table_name, record_id, operation)
SELECT CASE WHEN r % 20 = 0 THEN 'global' ELSE 'user:' || (r % 1000) END,
       (ARRAY['lists', 'items', 'notes'])[1 + r % 3],
       r::text,
       CASE WHEN g < $2 THEN 1 WHEN g + $2 >= $1 AND r % 7 = 0 THEN 3 ELSE 2 END
  FROM generate_series(0, $1::bigint - 1) AS g, LATERAL (SELECT g % $2 AS r) AS x
 ORDER BY g`, n, records)
		pgtest.Exec(b, db.Super, `VACUUM ANALYZE synchro.changelog`)
	}
	bulk := func(b *testing.B, client bool) {
		db := pgtest.NewMigratedDatabase(b)
		if client {
			pgtest.Exec(b, db.Super, `INSERT INTO synchro.clients (user_id, client_id, acked_seq) VALUES ('u', 'behind', 0)`)
		}
		var deleted int64
		var took time.Duration
		for range b.N {
			b.StopTimer()
			pgtest.Exec(b, db.Super, `UPDATE synchro.compaction SET boundary_seq = 0`)
			load(b, db, rows)
			// Without a client every row goes; with the client at 0,
			// all but the last row of each record (its bucket is fixed).
			want := int64(rows)
			if client {
				want -= int64(min(max(rows/4, 1), rows))
			}
			b.StartTimer()
			start := time.Now()
			res, err := comp.RunCompaction(ctx, db.Super)
			took += time.Since(start)
			if err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			if res.DeletedEntries != want {
				b.Fatalf("deleted %d rows, want %d", res.DeletedEntries, want)
			}
			deleted += res.DeletedEntries
		}
		b.ReportMetric(float64(deleted)/took.Seconds(), "rows-deleted/s")
		b.ReportMetric(float64(rows), "changelog-rows")
	}
	b.Run("bulk", func(b *testing.B) { bulk(b, false) })
	b.Run("superseded", func(b *testing.B) { bulk(b, true) })

	b.Run("steady", func(b *testing.B) {
		k, m, rounds := 10_000, 50_000, 20
		if testing.Short() {
			k, m, rounds = 1_000, 5_000, 5
		}
		db := pgtest.NewMigratedDatabase(b)
		var kept, peak, deleted int64
		var took time.Duration
		for range b.N {
			b.StopTimer()
			pgtest.Exec(b, db.Super, `DELETE FROM synchro.clients; TRUNCATE synchro.changelog; UPDATE synchro.compaction SET boundary_seq = 0`)
			// The live records, created once; a client has snapshotted
			// them.
			pgtest.Exec(b, db.Super, `INSERT INTO synchro.changelog (bucket_id, table_name, record_id, operation)
SELECT 'user:' || (r % 100), 'items', r::text, 1 FROM generate_series(0, $1::int - 1) AS r`, k)
			pgtest.Exec(b, db.Super, `INSERT INTO synchro.clients (user_id, client_id, acked_seq) SELECT 'u', 'c', max(seq) FROM synchro.changelog`)
			for range rounds {
				// M updates of random live records.
				pgtest.Exec(b, db.Super, `INSERT INTO synchro.changelog (bucket_id, table_name, record_id, operation)
SELECT 'user:' || (r % 100), 'items', r::text, 2
  FROM (SELECT floor(random() * $1)::int AS r FROM generate_series(1, $2::int)) AS u`, k, m)
				peak = max(peak, cpInt(b, db.Super, `SELECT count(*) FROM synchro.changelog`))
				b.StartTimer()
				start := time.Now()
				res, err := comp.RunCompaction(ctx, db.Super)
				took += time.Since(start)
				b.StopTimer()
				if err != nil {
					b.Fatal(err)
				}
				deleted += res.DeletedEntries
				kept = cpInt(b, db.Super, `SELECT count(*) FROM synchro.changelog`)
				if kept > int64(k) {
					b.Fatalf("%d changelog rows kept for %d live records", kept, k)
				}
				// The client pulls up to the highest seq.
				pgtest.Exec(b, db.Super, `UPDATE synchro.clients SET acked_seq = (SELECT max(seq) FROM synchro.changelog)`)
			}
		}
		b.ReportMetric(float64(kept)/float64(k), "rows/record")
		b.ReportMetric(float64(peak)/float64(k), "peak-rows/record")
		b.ReportMetric(float64(deleted)/took.Seconds(), "rows-deleted/s")
	})
}
