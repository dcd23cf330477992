package synchro

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/synchrosync/synchro/internal/bucket"
	"github.com/synchrosync/synchro/internal/pgtest"
	"github.com/synchrosync/synchro/internal/store"
)

// This file checks that the read statements of snapshot, subscriptions and
// compaction do work bounded by what they return (a page, a batch) or
// linear in the set they read, on tables that were bulk loaded and never
// analysed: autovacuum off, no ANALYZE, as after an import that autovacuum
// has not reached yet. Each statement runs under EXPLAIN ANALYZE with real
// parameters, with custom and with generic plans, and the rows every plan
// node produced or filtered away, times its loops, must stay under a bound
// a few times the expected work. A plan that pairs two scans of unbounded
// size (a nested loop over every edge of a bucket for every row of a
// table) does millions of row visits and fails by orders of magnitude.

// statsFixture is a database holding a bulk load that was never analysed:
// 2,000 lists of u1, 20,000 of u2 and 100 of u3 (each list with two
// items for u2), their bucket edges and one changelog row per record, as
// capture would have written them.
type statsFixture struct {
	p   *ptEnv
	reg *Registry
	m   *manifest
}

const (
	statsU1Lists = 2000
	statsU2Lists = 20000
	statsU3Lists = 100
)

func newStatsFixture(t *testing.T) *statsFixture {
	t.Helper()
	db := ptSetup(t)
	reg := ptRegistry(t)
	rlsApply(t, db.Super, GenerateRLSPolicies(reg))
	pgtest.Exec(t, db.Super, `
ALTER TABLE lists SET (autovacuum_enabled = false);
ALTER TABLE items SET (autovacuum_enabled = false);
ALTER TABLE synchro.bucket_edges SET (autovacuum_enabled = false);
ALTER TABLE synchro.changelog SET (autovacuum_enabled = false);`)
	pgtest.Exec(t, db.Super, fmt.Sprintf(`
INSERT INTO lists (id, user_id, name) SELECT gen_random_uuid(), 'u1', 'l' FROM generate_series(1, %d);
INSERT INTO lists (id, user_id, name) SELECT gen_random_uuid(), 'u2', 'l' FROM generate_series(1, %d);
INSERT INTO lists (id, user_id, name) SELECT gen_random_uuid(), 'u3', 'l' FROM generate_series(1, %d);
INSERT INTO items (id, list_id, title) SELECT gen_random_uuid(), l.id, 'i' FROM lists l, generate_series(1, 2) WHERE l.user_id = 'u2';
INSERT INTO synchro.bucket_edges (table_name, record_id, bucket_id) SELECT 'lists', id::text, 'user:' || user_id FROM lists;
INSERT INTO synchro.bucket_edges (table_name, record_id, bucket_id) SELECT 'items', i.id::text, 'user:u2' FROM items i;
INSERT INTO synchro.changelog (bucket_id, table_name, record_id, operation) SELECT bucket_id, table_name, record_id, 1 FROM synchro.bucket_edges;
INSERT INTO synchro.changelog (bucket_id, table_name, record_id, operation) SELECT bucket_id, table_name, record_id, 2 FROM synchro.bucket_edges WHERE bucket_id = 'user:u1';`,
		statsU1Lists, statsU2Lists, statsU3Lists))
	var analysed int
	pgtest.QueryRow(t, db.Super, `SELECT count(*) FROM pg_stat_user_tables WHERE relname IN ('lists', 'items', 'bucket_edges', 'changelog')
		AND (last_analyze IS NOT NULL OR last_autoanalyze IS NOT NULL)`).Scan(&analysed)
	if analysed != 0 {
		t.Fatalf("%d of the fixture's tables were analysed; the test needs them without statistics", analysed)
	}
	p := ptEngine(t, db, db.App, reg, nil)
	m, err := p.e.schema.get(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return &statsFixture{p: p, reg: reg, m: m}
}

// planWork runs query under EXPLAIN (ANALYZE, FORMAT JSON) in tx and
// returns the rows its plan nodes produced or removed, times their loops,
// and the plan.
func planWork(t *testing.T, tx *sql.Tx, query string, args ...any) (int64, string) {
	t.Helper()
	var doc string
	if err := tx.QueryRowContext(t.Context(), "EXPLAIN (ANALYZE, FORMAT JSON) "+query, args...).Scan(&doc); err != nil {
		t.Fatalf("explaining %s: %v", query, err)
	}
	var plans []struct{ Plan planNode }
	if err := json.Unmarshal([]byte(doc), &plans); err != nil || len(plans) != 1 {
		t.Fatalf("reading the plan %s: %v", doc, err)
	}
	var b strings.Builder
	work := plans[0].Plan.work(&b, 0)
	return work, b.String()
}

// planNode is the part of a JSON plan node planWork reads.
type planNode struct {
	NodeType      string     `json:"Node Type"`
	Relation      string     `json:"Relation Name"`
	Index         string     `json:"Index Name"`
	Rows          float64    `json:"Actual Rows"`
	Loops         float64    `json:"Actual Loops"`
	Filtered      float64    `json:"Rows Removed by Filter"`
	JoinFiltered  float64    `json:"Rows Removed by Join Filter"`
	IndexRechecks float64    `json:"Rows Removed by Index Recheck"`
	Plans         []planNode `json:"Plans"`
}

// work sums the node's and its children's rows times loops, writing one
// line per node to b.
func (n planNode) work(b *strings.Builder, depth int) int64 {
	w := int64((n.Rows + n.Filtered + n.JoinFiltered + n.IndexRechecks) * n.Loops)
	fmt.Fprintf(b, "%s%s %s %s: rows %.0f removed %.0f loops %.0f\n", strings.Repeat("  ", depth), n.NodeType, n.Relation, n.Index,
		n.Rows, n.Filtered+n.JoinFiltered+n.IndexRechecks, n.Loops)
	for _, c := range n.Plans {
		w += c.work(b, depth+1)
	}
	return w
}

// planCase is one statement and the bound of its work.
type planCase struct {
	name  string
	query string
	args  []any
	// settings run first in the transaction, as the engine runs them.
	settings []string
	max      int64
}

// checkPlanWork runs each case in its own read-write transaction as the
// role subject to RLS (rolled back), with custom and with generic plans.
func checkPlanWork(t *testing.T, f *statsFixture, user string, cases []planCase) {
	t.Helper()
	for _, c := range cases {
		for _, mode := range []string{"force_custom_plan", "force_generic_plan"} {
			tx, err := f.p.db.App.BeginTx(t.Context(), &sql.TxOptions{Isolation: sql.LevelRepeatableRead})
			if err != nil {
				t.Fatal(err)
			}
			if err := setReadContext(t.Context(), tx, user, c.settings...); err != nil {
				t.Fatal(err)
			}
			if _, err := tx.ExecContext(t.Context(), "SET LOCAL plan_cache_mode = "+mode); err != nil {
				t.Fatal(err)
			}
			work, plan := planWork(t, tx, c.query, c.args...)
			if work > c.max {
				t.Errorf("%s (%s): %d row visits, want at most %d:\n%s", c.name, mode, work, c.max, plan)
			}
			_ = tx.Rollback()
		}
	}
}

// TestSnapshotPlansWithoutStatistics: snapshot pages walk the key index and
// stop after the page, and the edge plan looks rows up by key, whatever
// the planner believes; on the fixture without statistics the old walk
// statement (EXISTS flattened into a semi join) ran a nested loop over
// every edge of u2 for every list: 440 million row visits.
func TestSnapshotPlansWithoutStatistics(t *testing.T) {
	t.Parallel()
	f := newStatsFixture(t)
	lists, err := f.m.table("lists").readSQL(f.reg, true)
	if err != nil {
		t.Fatal(err)
	}
	items, err := f.m.table("items").readSQL(f.reg, true)
	if err != nil {
		t.Fatal(err)
	}
	const n = 50
	mid := "80000000-0000-0000-0000-000000000000"
	for _, u := range []struct {
		user  string
		lists int
	}{{"u1", statsU1Lists}, {"u2", statsU2Lists}, {"u3", statsU3Lists}} {
		subs := []string{"user:" + u.user, "global"}
		seq := []string{indexWalk}
		// A page of the walk reads about n·N/E rows of the table to
		// find n of the client's E among N, and probes each row's edges.
		walkMax := int64(40 * n * (statsU1Lists + statsU2Lists + statsU3Lists) / u.lists)
		cases := []planCase{
			{name: u.user + " walk, first page", query: lists.first, args: []any{subs, n + 2}, settings: seq, max: walkMax},
			{name: u.user + " walk, a later page", query: lists.after, args: []any{subs, n + 2, mid}, settings: seq, max: walkMax},
			// The decision reads at most cap+1 index entries.
			{name: u.user + " edges decision", query: lists.byEdges, args: []any{subs, n}, settings: seq, max: 70 * n},
		}
		if u.user == "u2" {
			// u2 holds every item: the walk reads about a page of them,
			// each checked against its list through the parent chain.
			cases = append(cases, planCase{name: "u2 items walk", query: items.first, args: []any{subs, n + 2}, settings: seq, max: 40 * n})
		} else {
			// The others hold none: the decision sends them to the
			// edges, which read nothing.
			cases = append(cases, planCase{name: u.user + " items by edges", query: items.edgesFirst, args: []any{subs, n + 2}, settings: seq, max: 20 * n})
		}
		if u.lists <= 64*n {
			// The edge plan reads every key of the client (the decision
			// allows it up to 64 pages' worth), then stops at the page.
			cases = append(cases,
				planCase{name: u.user + " edges, first page", query: lists.edgesFirst, args: []any{subs, n + 2}, settings: seq, max: int64(10*u.lists + 20*n)},
				planCase{name: u.user + " edges, a later page", query: lists.edgesAfter, args: []any{subs, n + 2, mid}, settings: seq, max: int64(10*u.lists + 20*n)})
		}
		checkPlanWork(t, f, u.user, cases)
	}
}

// TestSubscriptionAndCompactionPlansWithoutStatistics: subscription changes
// and compaction read each row they need a bounded number of times on the
// fixture without statistics.
func TestSubscriptionAndCompactionPlansWithoutStatistics(t *testing.T) {
	t.Parallel()
	f := newStatsFixture(t)
	private := bucket.Client("00000000-0000-0000-0000-000000000001")
	order := []string{"categories", "lists", "items", "notes"}
	var maxSeq int64
	pgtest.QueryRow(t, f.p.db.Super, `SELECT max(seq) FROM synchro.changelog`).Scan(&maxSeq)
	edgesU1 := int64(statsU1Lists)
	cases := []planCase{
		// u1 moves from its own bucket to u3's: deletes for its lists,
		// each probed once against the kept buckets.
		{name: "unsubscribe", query: store.Unsubscribe, args: []any{private, []string{"user:u1"}, int64(0), []string{"user:u3", "global"}, order}, max: 40 * 2 * edgesU1},
		{name: "subscribe", query: store.Subscribe, args: []any{private, []string{"user:u1"}, order}, max: 40 * edgesU1},
		// A batch of 1,000 below the boundary, and the window above it.
		{name: "compact below the boundary", query: store.CompactBelow, args: []any{maxSeq / 2, maxSeq/2 + 1000}, max: 40 * 1000},
		{name: "next seq", query: store.CompactNextSeq, args: []any{maxSeq / 2, maxSeq}, max: 100},
		{name: "compact superseded rows", query: store.CompactSuperseded, args: []any{maxSeq - 3000, maxSeq - 2000}, max: 40 * 1000},
	}
	// Pruning reads every edge of a table once (here none of the lists is
	// deleted).
	for _, q := range f.p.e.pruneStatements(f.m) {
		cases = append(cases, planCase{name: "prune " + q.table, query: q.sql, args: []any{int64(0)},
			max: 10 * (statsU1Lists + statsU2Lists + statsU3Lists) * 3})
	}
	checkPlanWork(t, f, "u1", cases)
}
