package synchro

import (
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/synchrosync/synchro/internal/bucket"
	"github.com/synchrosync/synchro/internal/pgtest"
	"github.com/synchrosync/synchro/internal/store"
)

// TestPullPlansWithoutStatistics checks the plans of pull's statements (the
// pending check, the changelog page in both forms, the hydration, and the
// page with its rows in both forms) on tables
// bulk loaded with autovacuum off and never analysed, as after an import
// or a restore: every scan of the changelog must be an index scan of
// (bucket_id, seq), which the LIMIT of a bucket's read stops, and the synced
// table must be read only by primary key probes driven by the page's ids.
// No plan may scan the changelog or the table whole, or read a bucket's
// entries with a bitmap scan (all of them, then sorted). The statements run
// in a transaction set up as a pull's (pullSettingsSQL, or pullPageSettingsSQL
// for the page statements with rows), with generic plans
// and with custom ones.
func TestPullPlansWithoutStatistics(t *testing.T) {
	t.Parallel()
	checkPullPlans(t, false)
}

// TestPullPlansWithOneBucketInStatistics checks the same plans on tables
// analysed while one bucket held every changelog entry (one user's, as in
// an application with one big tenant or a large "global" bucket). By such
// statistics every entry would be in whatever bucket is asked for, and a
// read of the client's own bucket, or of "global", empty both, would walk
// the changelog's primary key from the checkpoint and filter, reading
// every entry after it for each page; migration 0003 sets bucket_id's
// n_distinct so that PostgreSQL does not believe it.
func TestPullPlansWithOneBucketInStatistics(t *testing.T) {
	t.Parallel()
	checkPullPlans(t, true)
}

// checkPullPlans is TestPullPlansWithoutStatistics, or with oneBucket
// TestPullPlansWithOneBucketInStatistics.
func checkPullPlans(t *testing.T, oneBucket bool) {
	const n = 50_000 // rows of the user; another user holds as many
	db := pgtest.NewMigratedDatabase(t)
	pgtest.Exec(t, db.Super, `
CREATE TABLE pps_items (
	id         bigint PRIMARY KEY,
	user_id    text NOT NULL,
	title      text NOT NULL,
	updated_at timestamptz NOT NULL DEFAULT now(),
	deleted_at timestamptz
) WITH (autovacuum_enabled = off);
ALTER TABLE synchro.changelog SET (autovacuum_enabled = off);
ALTER TABLE synchro.bucket_edges SET (autovacuum_enabled = off)`)
	reg := NewRegistry()
	reg.Register(&TableConfig{TableName: "pps_items", OwnerColumn: "user_id"})
	// As in production, the application role reads under RLS: a lookup
	// by key must stay an index condition under the policy.
	for _, stmt := range GenerateRLSPolicies(reg) {
		pgtest.Exec(t, db.Super, stmt)
	}
	p := ptEngine(t, db, db.Super, reg, nil)
	ctx := t.Context()
	// The bulk load, after the engine read the (empty) tables.
	for _, q := range []string{
		`INSERT INTO pps_items (id, user_id, title) SELECT g, 'u' || (g % 2), 'item ' || g FROM generate_series(1, $1::bigint) AS g`,
		`INSERT INTO synchro.bucket_edges (table_name, record_id, bucket_id)
SELECT 'pps_items', g::text, 'user:u' || (g % 2) FROM generate_series(1, $1::bigint) AS g`,
		`INSERT INTO synchro.changelog (bucket_id, table_name, record_id, operation)
SELECT 'user:u' || (g % 2), 'pps_items', g::text, 1 FROM generate_series(1, $1::bigint) AS g ORDER BY g`,
	} {
		if oneBucket {
			q = strings.ReplaceAll(q, "(g % 2)", "0")
		}
		pgtest.Exec(t, db.Super, q, 2*n)
	}
	if oneBucket {
		pgtest.Exec(t, db.Super, `ANALYZE pps_items, synchro.bucket_edges, synchro.changelog`)
	}
	var analysed int
	if err := db.Super.QueryRowContext(ctx, `
SELECT count(*) FROM pg_stats WHERE schemaname IN ('public', 'synchro') AND tablename IN ('pps_items', 'changelog', 'bucket_edges')`).Scan(&analysed); err != nil {
		t.Fatal(err)
	}
	if analysed == 0 && oneBucket {
		t.Fatal("the tables have no statistics after ANALYZE")
	}
	if analysed != 0 && !oneBucket {
		t.Fatalf("the tables have statistics (%d columns): the test needs them missing", analysed)
	}

	m, err := p.e.schema.get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	st, err := m.table("pps_items").readSQL(reg, true)
	if err != nil {
		t.Fatal(err)
	}
	ps := p.e.pullPage(m, []string{"pps_items"})
	if ps == nil {
		t.Fatal("no page statements with rows")
	}
	ids := make([]string, 1000)
	for i := range ids {
		ids[i] = strconv.Itoa(2 * (n/2 + i)) // the user u0's rows from the middle
	}
	subs := []string{"global", "user:u0"}
	buckets := append(subs, bucket.Client("00000000-0000-0000-0000-000000000000"))
	var many []string // more buckets than bucketReadCap reads in full
	for i := range 20 {
		many = append(many, fmt.Sprintf("user:x%d", i))
	}
	many = append(many, "user:u0")

	statements := []struct {
		name  string
		query string
		args  []any
		// settings: the statement runs in the pull's read transaction,
		// after these settings (pullPageSettingsSQL on pgx's
		// connection, where the page statement with rows runs); the
		// pending check runs before it, alone ("").
		settings string
	}{
		{"pending check", store.PullState, []any{"u0", "dev", subs, int64(n / 2), bucket.ClientPrefix}, ""},
		{"page", store.PullFullPageFor(len(buckets)), []any{buckets, int64(n / 2), 1001, 1000}, pullSettingsSQL},
		{"page of many buckets", store.PullFullPageFor(len(many)), []any{many, int64(n / 2), 1001, 1000}, pullSettingsSQL},
		{"capped page", store.PullCappedPage, []any{many, int64(n / 2), 1001, bucketReadCap(1000, len(many))}, pullSettingsSQL},
		{"hydration", st.pull.sql, []any{ids, subs}, pullSettingsSQL},
		{"page with rows", ps.wrapped[store.PullMergedPage][0], []any{buckets, int64(n / 2), 1001, 1000, subs}, pullPageSettingsSQL},
		{"capped page with rows", ps.wrapped[store.PullCappedPage][0], []any{many, int64(n / 2), 1001, bucketReadCap(1000, len(many)), subs}, pullPageSettingsSQL},
		{"page of many buckets with rows", ps.wrapped[store.PullFullPage][0], []any{many, int64(n / 2), 1001, 1000, subs}, pullPageSettingsSQL},
		{"page with rows in UTC", ps.wrapped[store.PullMergedPage][1], []any{buckets, int64(n / 2), 1001, 1000, subs}, pullPageSettingsSQL},
		{"capped page with rows in UTC", ps.wrapped[store.PullCappedPage][1], []any{many, int64(n / 2), 1001, bucketReadCap(1000, len(many)), subs}, pullPageSettingsSQL},
	}
	// explainIn returns the plan of s in a transaction of its own, rolled
	// back at once, set up as a pull's with settings unless "".
	explainIn := func(query string, args []any, settings string, generic bool) string {
		t.Helper()
		tx, err := db.App.BeginTx(ctx, readTxOptions)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = tx.Rollback() }()
		if err := setReadContext(ctx, tx, "u0"); err != nil {
			t.Fatal(err)
		}
		if settings != "" {
			if _, err := tx.ExecContext(ctx, settings, "u0"); err != nil {
				t.Fatal(err)
			}
		}
		if generic {
			forceGenericPlans(t, tx)
		}
		return explain(t, tx, query, args...)
	}
	for _, generic := range []bool{false, true} {
		for _, s := range statements {
			plan := explainIn(s.query, s.args, s.settings, generic)
			if bad := unboundedPullScans(plan); bad != "" {
				t.Errorf("%s (generic plan %v): %s:\n%s", s.name, generic, bad, plan)
			}
			// A page is sorted once, when the buckets' entries are
			// merged: the statements wrapping it keep its order.
			if sorts := seqSorts(plan); sorts > 1 {
				t.Errorf("%s (generic plan %v): the page is sorted %d times:\n%s", s.name, generic, sorts, plan)
			}
			if s.settings != "" && testing.Verbose() {
				// What the statement would do without the settings.
				if bad := unboundedPullScans(explainIn(s.query, s.args, "", generic)); bad != "" {
					t.Logf("%s (generic plan %v) without pullSettingsSQL: %s", s.name, generic, bad)
				}
			}
		}
	}
}

// unboundedPullScans returns the first scan of plan that a pull statement
// must not make (see TestPullPlansWithoutStatistics), "" when none. A scan
// of the synced table by its primary key must probe it (an Index Cond):
// without one it reads the whole table.
func unboundedPullScans(plan string) string {
	lines := strings.Split(plan, "\n")
	for i, line := range lines {
		line = strings.TrimLeft(line, " ->")
		if strings.HasPrefix(line, "Index Scan using pps_items_pkey on pps_items") && !nodeHas(lines[i+1:], "Index Cond:") {
			return line + " (without an index condition)"
		}
		switch {
		case !strings.Contains(line, "Scan"),
			strings.HasPrefix(line, "Function Scan"),
			strings.HasPrefix(line, "CTE Scan"),
			strings.HasPrefix(line, "Subquery Scan"),
			strings.HasPrefix(line, "Seq Scan on compaction"), // one row
			strings.HasPrefix(line, "Index Scan using compaction_pkey on compaction"),
			strings.HasPrefix(line, "Index Scan using clients_user_client_key on clients"),
			strings.HasPrefix(line, "Index Scan using changelog_bucket_seq_idx on changelog"),
			strings.HasPrefix(line, "Index Only Scan using changelog_bucket_seq_idx on changelog"),
			strings.HasPrefix(line, "Index Scan using pps_items_pkey on pps_items"):
			continue
		}
		return line
	}
	return ""
}

// seqSorts counts the Sort nodes of plan (not Merge Append, which merges
// sorted inputs) that sort by a seq column.
func seqSorts(plan string) int {
	n := 0
	lines := strings.Split(plan, "\n")
	for i, line := range lines {
		node := strings.TrimLeft(line, " ->")
		if strings.HasPrefix(node, "Sort  (") && i+1 < len(lines) {
			key := strings.TrimSpace(lines[i+1])
			if strings.HasPrefix(key, "Sort Key:") && strings.HasSuffix(key, ".seq") {
				n++
			}
		}
	}
	return n
}

// nodeHas reports whether the detail lines at the start of lines (those
// up to the next node, "->") include one that starts with prefix.
func nodeHas(lines []string, prefix string) bool {
	for _, l := range lines {
		l = strings.TrimSpace(l)
		if strings.HasPrefix(l, "->") {
			return false
		}
		if strings.HasPrefix(l, prefix) {
			return true
		}
	}
	return false
}
