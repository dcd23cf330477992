package synchro_test

import (
	"context"
	"database/sql"
	"encoding/json"
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

// TestDocumentedGrants runs every engine operation as a role holding only
// the privileges the documentation tells an application to grant (and its
// own tables): a second snapshot with nothing written since the first drew
// a sequence number the documented grants did not allow, and failed with
// "permission denied for sequence".
func TestDocumentedGrants(t *testing.T) {
	t.Parallel()
	e := rpStart(t, rpOptions{})
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
	pgtest.Exec(t, db, `GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO `+role)

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
