package synchro

import (
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/synchrosync/synchro/internal/pgtest"
)

// TestHydrateLooksUpKeysUnderRLS checks the plan of the hydration statement
// as a role subject to row-level security: the rows must be looked up by
// the primary key. When the join cast each id to the key type in its
// condition (not leakproof), PostgreSQL had to apply the policies first and
// scanned the whole table for every pull: with 50 users of 200 items, a
// pull of one record read 10000 rows.
func TestHydrateLooksUpKeysUnderRLS(t *testing.T) {
	t.Parallel()
	db, reg, m := planSetup(t)
	ctx := t.Context()
	st, err := m.table("items").readSQL(reg, true)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	rows, err := db.Super.QueryContext(ctx, `SELECT id::text FROM items WHERE list_id = md5('l1')::uuid LIMIT 3`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if err := rows.Close(); err != nil {
		t.Fatal(err)
	}

	tx := planReadTx(t, db)
	var jit string
	if err := tx.QueryRowContext(ctx, `SHOW jit`).Scan(&jit); err != nil || jit != "off" {
		t.Errorf("jit in a read transaction: %q, %v; want off", jit, err)
	}
	forceGenericPlans(t, tx)
	plan := explain(t, tx, st.hydrate, ids, []string{"user:u1", "global"})
	if strings.Contains(plan, "Seq Scan on items") || !strings.Contains(plan, "items_pkey") {
		t.Errorf("hydration of 3 items does not look them up by key:\n%s", plan)
	}

	// And the statement still returns exactly the user's rows.
	got, err := tx.QueryContext(ctx, st.hydrate, ids, []string{"user:u1", "global"})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for got.Next() {
		n++
	}
	if err := got.Close(); err != nil {
		t.Fatal(err)
	}
	if n != len(ids) {
		t.Errorf("hydrated %d rows of %d", n, len(ids))
	}
}

// TestPushLocksKeysUnderRLS checks, like TestHydrateLooksUpKeysUnderRLS,
// that push reads and locks the rows it is sent by their key as a role
// subject to row-level security: with the cast in the join condition it
// scanned the table, and a push of 100 records to a table of 10000 rows
// took 70 ms in that statement alone.
func TestPushLocksKeysUnderRLS(t *testing.T) {
	t.Parallel()
	plan := genericPlanOfItemKeys(t, func(m *manifest) string { return m.table("items").pushSQL().lock })
	if strings.Contains(plan, "Seq Scan on items") || !strings.Contains(plan, "items_pkey") {
		t.Errorf("push does not look its records up by key:\n%s", plan)
	}
}

// planSetup makes the database of the plan tests: the push tests' tables
// with the generated row-level security policies, 50 users with a list of
// 200 items each (analyzed), and an engine connected as the role subject to
// the policies. It returns the database, the registry and the engine's
// manifest.
func planSetup(t *testing.T) (*pgtest.Database, *Registry, *manifest) {
	t.Helper()
	db := ptSetup(t)
	reg := ptRegistry(t)
	rlsApply(t, db.Super, GenerateRLSPolicies(reg))
	pgtest.Exec(t, db.Super, `
INSERT INTO lists (id, user_id, name) SELECT md5('l' || u)::uuid, 'u' || u, 'list' FROM generate_series(1, 50) AS u;
INSERT INTO items (id, list_id, title) SELECT gen_random_uuid(), md5('l' || u)::uuid, 'item' FROM generate_series(1, 50) AS u, generate_series(1, 200);
ANALYZE lists, items`)
	p := ptEngine(t, db, db.App, reg, nil)
	m, err := p.e.schema.get(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return db, reg, m
}

// planReadTx begins a read transaction of the engine's kind as the role
// subject to the policies, with the auth context of u1; it is rolled back
// when the test ends.
func planReadTx(t *testing.T, db *pgtest.Database) *sql.Tx {
	t.Helper()
	tx, err := db.App.BeginTx(t.Context(), readTxOptions)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tx.Rollback() })
	if err := setReadContext(t.Context(), tx, "u1"); err != nil {
		t.Fatal(err)
	}
	return tx
}

// forceGenericPlans makes tx plan every statement generically: the
// engine's statements are prepared, and run with a generic plan after a
// few executions, so that is the plan to check.
func forceGenericPlans(t *testing.T, tx *sql.Tx) {
	t.Helper()
	if _, err := tx.ExecContext(t.Context(), `SET LOCAL plan_cache_mode = force_generic_plan`); err != nil {
		t.Fatal(err)
	}
}

// explain returns the text plan of query with args.
func explain(t *testing.T, db DB, query string, args ...any) string {
	t.Helper()
	rows, err := db.QueryContext(t.Context(), "EXPLAIN "+query, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = rows.Close() }()
	var b strings.Builder
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			t.Fatal(err)
		}
		b.WriteString(line + "\n")
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestSnapshotPlansAgree pages through a user's items with both snapshot
// page plans, as the role subject to row-level security: walking the table
// in key order and reading the keys the user's edges name must give the
// same pages. The decision between them must go by how many of the table's
// rows the client has, and the edge plan must look the rows up by key.
func TestSnapshotPlansAgree(t *testing.T) {
	t.Parallel()
	db, reg, m := planSetup(t)
	ctx := t.Context()
	// Edges as the consumer records them, and one soft-deleted item.
	pgtest.Exec(t, db.Super, `
INSERT INTO synchro.bucket_edges (table_name, record_id, bucket_id)
SELECT 'items', i.id::text, 'user:' || l.user_id FROM items AS i JOIN lists AS l ON l.id = i.list_id;
UPDATE items SET deleted_at = now() WHERE id = (SELECT id FROM items WHERE list_id = md5('l1')::uuid ORDER BY id LIMIT 1);
ANALYZE synchro.bucket_edges, items`)
	st, err := m.table("items").readSQL(reg, true)
	if err != nil {
		t.Fatal(err)
	}
	tx := planReadTx(t, db)
	subs := []string{"global", "user:u1"}
	decide := func(subs []string, n int) bool {
		t.Helper()
		var byEdges bool
		if err := tx.QueryRowContext(ctx, st.byEdges, subs, n).Scan(&byEdges); err != nil {
			t.Fatal(err)
		}
		return byEdges
	}
	// u1 has 200 of 10000 items: by edges for pages of 7 (cap
	// sqrt(1.5*7*10000) = 324); every user's items, or pages of 1 (cap 122),
	// make a walk cheaper.
	if !decide(subs, 7) {
		t.Errorf("200 items of 10000, pages of 7: not read by edges")
	}
	var all []string
	for u := 1; u <= 50; u++ {
		all = append(all, fmt.Sprintf("user:u%d", u))
	}
	if decide(all, 7) {
		t.Errorf("every item, pages of 7: read by edges")
	}
	if decide(subs, 1) {
		t.Errorf("200 items of 10000, pages of 1: read by edges")
	}

	pages := func(first, after string) []string {
		t.Helper()
		var ids []string
		last := ""
		for range 100 {
			var rows *sql.Rows
			if last == "" {
				rows, err = tx.QueryContext(ctx, first, subs, 7)
			} else {
				rows, err = tx.QueryContext(ctx, after, subs, 7, last)
			}
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for rows.Next() {
				var id string
				var data []byte
				var updated sql.NullTime
				var whole sql.NullString
				if err := rows.Scan(&id, &data, &updated, &whole); err != nil {
					t.Fatal(err)
				}
				ids = append(ids, id)
				last = id
				n++
			}
			if err := rows.Close(); err != nil {
				t.Fatal(err)
			}
			if n < 7 {
				return ids
			}
		}
		t.Fatal("the pages do not end")
		return nil
	}
	walked := pages(st.first, st.after)
	byEdges := pages(st.edgesFirst, st.edgesAfter)
	if len(walked) != 199 {
		t.Errorf("walking the table: %d items, want 199", len(walked))
	}
	if !slices.Equal(walked, byEdges) {
		t.Errorf("the plans disagree:\nwalk  %v\nedges %v", walked, byEdges)
	}
	forceGenericPlans(t, tx)
	plan := explain(t, tx, st.edgesAfter, subs, 7, walked[100])
	if strings.Contains(plan, "Seq Scan on items") || !strings.Contains(plan, "items_pkey") {
		t.Errorf("the edge plan does not look the items up by key:\n%s", plan)
	}
}

// genericPlanOfItemKeys returns the generic plan of the statement query
// picks, for two ids of items, as a role subject to row-level security
// (user u1): the plans of the statements that look rows up by the ids a
// client sent.
func genericPlanOfItemKeys(t *testing.T, query func(*manifest) string) string {
	t.Helper()
	db, _, m := planSetup(t)
	ctx := t.Context()
	tx, err := db.App.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback() }()
	if err := SetAuthContext(ctx, tx, "u1"); err != nil {
		t.Fatal(err)
	}
	forceGenericPlans(t, tx)
	ids := []string{"6f1c9f4e-33b5-4a8e-9c61-7d0c4c6e2a11", "0b7d5c2a-9e8f-4d3c-a1b2-c3d4e5f60718"}
	return explain(t, tx, query(m), ids)
}
