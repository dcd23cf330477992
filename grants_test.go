package synchro_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/synchrosync/synchro"
	"github.com/synchrosync/synchro/internal/pgtest"
)

// documentedGrants returns the GRANT statements the migrations package
// documents for the application's runtime role (the indented lines of its
// "Privileges" section), for role.
func documentedGrants(t *testing.T, role string) []string {
	t.Helper()
	src, err := os.ReadFile("migrations/migrate.go")
	if err != nil {
		t.Fatal(err)
	}
	var grants []string
	for _, line := range strings.Split(string(src), "\n") {
		if stmt, ok := strings.CutPrefix(line, "//\tGRANT "); ok {
			grants = append(grants, "GRANT "+strings.ReplaceAll(strings.TrimSuffix(stmt, ";"), "app_runtime", role))
		}
	}
	if len(grants) == 0 {
		t.Fatal("migrations/migrate.go documents no GRANT")
	}
	return grants
}

// runtimeRole creates a login role holding the privileges the
// documentation tells an application to grant, then runs each of more (a
// statement with %s for the role), and returns a pool connected as it.
func runtimeRole(t *testing.T, e *rpEnv, more ...string) *sql.DB {
	t.Helper()
	db := e.db.Super
	role := "rt_" + strings.ReplaceAll(e.db.Name, "-", "_")
	pgtest.Exec(t, db, `CREATE ROLE `+role+` LOGIN PASSWORD 'grants-test'`)
	t.Cleanup(func() {
		// After the role's pool is closed (cleanups run last first).
		if _, err := db.Exec(`DROP OWNED BY ` + role + `; DROP ROLE ` + role); err != nil {
			t.Errorf("dropping role %s: %v", role, err)
		}
	})
	for _, g := range documentedGrants(t, role) {
		pgtest.Exec(t, db, g)
	}
	for _, g := range more {
		pgtest.Exec(t, db, fmt.Sprintf(g, role))
	}
	u, err := url.Parse(e.db.DSN)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword(role, "grants-test")
	pool, err := sql.Open("pgx", u.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pool.Close() })
	return pool
}

// TestDocumentedGrants runs every engine operation as a role holding only
// the privileges the documentation tells an application to grant (and its
// own tables): a second snapshot with nothing written since the first drew
// a sequence number the documented grants did not allow, and failed with
// "permission denied for sequence".
func TestDocumentedGrants(t *testing.T) {
	t.Parallel()
	e := rpStart(t, rpOptions{})
	pool := runtimeRole(t, e, `GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO %s`)
	eng, err := synchro.NewEngine(synchro.Config{DB: pool, Registry: e.reg, Compactor: &synchro.CompactorConfig{}})
	if err != nil {
		t.Fatal(err)
	}
	e.eng = eng
	ctx := context.Background()

	alice := e.client("alice", "phone")
	v, h := e.schema()
	if _, err := eng.Schema(ctx); err != nil {
		t.Errorf("Schema: %v", err)
	}
	if _, err := eng.TableMetadata(ctx); err != nil {
		t.Errorf("TableMetadata: %v", err)
	}
	if _, err := eng.SchemaManifestHistory(ctx, 10); err != nil {
		t.Errorf("SchemaManifestHistory: %v", err)
	}
	alice.snapshot(100)
	resp, err := eng.Push(ctx, "alice", &synchro.PushRequest{ClientID: "phone", SchemaVersion: v, SchemaHash: h,
		Changes: []synchro.PushRecord{{ID: "1", TableName: "lists", Operation: "create",
			Data: json.RawMessage(`{"name": "groceries"}`), ClientUpdatedAt: time.Now()}}})
	if err != nil || len(resp.Accepted) != 1 {
		t.Fatalf("push: %+v, %v", resp, err)
	}
	e.caughtUp()
	alice.pullAll(100)
	rpSameRows(t, "alice after the pull", alice.rows, e.expected("alice"))
	// Two snapshots with nothing written between them: the second draws a
	// checkpoint of its own.
	for range 2 {
		alice.snapshot(100)
		rpSameRows(t, "alice after a snapshot", alice.rows, e.expected("alice"))
	}
	if _, err := eng.RunCompaction(ctx); err != nil {
		t.Errorf("RunCompaction: %v", err)
	}
	alice.pullAll(100)
}

// TestCompactionPruneNeedsUpdate: pruning the edges of a table locks the
// rows it prunes for, which needs the UPDATE privilege on the table. A role
// that sees every row (BYPASSRLS) but may only read the table gets the
// table named in EdgesNotPruned, as under row-level security, rather than
// a failed run ("permission denied for table items").
func TestCompactionPruneNeedsUpdate(t *testing.T) {
	t.Parallel()
	e := rpStart(t, rpOptions{registry: cpLeafItems()})
	db := e.db.Super
	pgtest.Exec(t, db, `INSERT INTO lists (id, user_id, name) VALUES (1, 'alice', 'a')`)
	pgtest.Exec(t, db, `INSERT INTO items (id, list_id, title, deleted_at) VALUES ('00000000-0000-4000-8000-000000000001', 1, 'i1', now() - interval '2 hours')`)
	e.caughtUp()
	pool := runtimeRole(t, e, `ALTER ROLE %s BYPASSRLS`, `GRANT SELECT ON ALL TABLES IN SCHEMA public TO %s`)
	eng, err := synchro.NewEngine(synchro.Config{DB: pool, Registry: e.reg,
		Compactor: &synchro.CompactorConfig{StaleThreshold: time.Hour, Logger: cpDiscard}})
	if err != nil {
		t.Fatal(err)
	}
	res, err := eng.RunCompaction(context.Background())
	if err != nil {
		t.Fatalf("RunCompaction: %v", err)
	}
	if res.EdgesNotPruned != "items" || res.PrunedEdges != 0 {
		t.Errorf("EdgesNotPruned %q, PrunedEdges %d: want items, 0", res.EdgesNotPruned, res.PrunedEdges)
	}
}
