package synchro

import (
	"database/sql"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	_ "modernc.org/sqlite" // the "sqlite" database/sql driver, as the example client uses

	"github.com/synchrosync/synchro/internal/pgtest"
)

// This file tests what the schema contract promises devices: the updated-at
// and deleted-at columns it names exist in its column list (made up when
// the table lacks them), the column list is what rows deliver, and the
// SQLite defaults of timestamp columns give RFC 3339 text.

// TestContractStableAcrossRefreshes checks that an engine's contract of
// tables without timestamp columns keeps its version and hash when the
// catalog is read again, and that /sync/tables names the same columns.
func TestContractStableAcrossRefreshes(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := pgtest.NewMigratedDatabase(t)
	pgtest.Exec(t, db.Super, `
CREATE TABLE plain (id bigint PRIMARY KEY, user_id text NOT NULL, body text);
CREATE TABLE soft (id bigint PRIMARY KEY, user_id text NOT NULL, note text, deleted_at timestamptz)`)
	reg := newTestRegistry(t,
		&TableConfig{TableName: "plain", OwnerColumn: "user_id"},
		&TableConfig{TableName: "soft", OwnerColumn: "user_id"})
	e, err := newEngine(ctx, Config{DB: db.Super, Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	first, err := e.Schema(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		m, err := e.schema.refresh(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if m.version != first.SchemaVersion || m.hash != first.SchemaHash {
			t.Fatalf("refresh gave version %d hash %s, want %d %s", m.version, m.hash, first.SchemaVersion, first.SchemaHash)
		}
	}
	// A second engine (a restart) agrees.
	again, err := newEngine(ctx, Config{DB: db.Super, Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	if v, h, err := again.CurrentSchemaManifest(ctx); err != nil || v != first.SchemaVersion || h != first.SchemaHash {
		t.Fatalf("second engine: %d %s %v, want %d %s", v, h, err, first.SchemaVersion, first.SchemaHash)
	}

	want := map[string][3]string{ // updated-at, deleted-at, column names
		"plain": {"updated_at", "deleted_at", "id user_id body updated_at deleted_at"},
		"soft":  {"updated_at", "deleted_at", "id user_id note deleted_at updated_at"},
	}
	for _, st := range first.Tables {
		var names []string
		for _, c := range st.Columns {
			names = append(names, c.Name)
		}
		w := want[st.TableName]
		if st.UpdatedAtColumn != w[0] || st.DeletedAtColumn != w[1] || strings.Join(names, " ") != w[2] {
			t.Errorf("%s: updated %q deleted %q columns %v, want %q %q %s", st.TableName, st.UpdatedAtColumn, st.DeletedAtColumn, names, w[0], w[1], w[2])
		}
	}
	meta, err := e.TableMetadata(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range meta.Tables {
		if w := want[m.TableName]; m.UpdatedAtColumn != w[0] || m.DeletedAtColumn != w[1] {
			t.Errorf("metadata of %s: %q %q, want %q %q", m.TableName, m.UpdatedAtColumn, m.DeletedAtColumn, w[0], w[1])
		}
	}
}

// TestContractServerVersionColumns checks that push's server_version
// carries the contract's columns: made-up ones as null, real timestamp
// columns that SyncColumns leaves out with their values, and nothing else.
func TestContractServerVersionColumns(t *testing.T) {
	t.Parallel()
	db := ptSetup(t)
	reg := NewRegistry()
	reg.Register(&TableConfig{TableName: "categories"})
	reg.Register(&TableConfig{TableName: "lists", OwnerColumn: "user_id", SyncColumns: []string{"user_id", "name"}})
	reg.Register(&TableConfig{TableName: "notes", OwnerColumn: "user_id"})
	if err := reg.Validate(); err != nil {
		t.Fatal(err)
	}
	p := ptEngine(t, db, db.Super, reg, nil)
	p.register("alice", "c1")
	schema, err := p.e.Schema(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	columns := ContractColumns(schema)

	// notes has neither timestamp column.
	ptWant(t, "create note", p.one("alice", "c1", ptCreate("notes", "10", `{"body":"one","user_id":"alice"}`)), PushStatusApplied, "")
	res := p.one("alice", "c1", ptCreate("notes", "10", `{"body":"dup","user_id":"alice"}`))
	ptWant(t, "create existing note", res, PushStatusConflict, reasonRecordExists)
	if res.ServerVersion == nil {
		t.Fatal("no server_version")
	}
	if got, want := string(res.ServerVersion.Data), `{"id":10,"user_id":"alice","body":"one","updated_at":null,"deleted_at":null}`; got != want {
		t.Errorf("note server_version data %s, want %s", got, want)
	}
	if keys := JSONObjectKeys(t, res.ServerVersion.Data); !slices.Equal(keys, columns["notes"]) {
		t.Errorf("note server_version keys %v, contract columns %v", keys, columns["notes"])
	}

	// lists syncs user_id and name; its real timestamps come along.
	id := ptID()
	ptWant(t, "create list", p.one("alice", "c1", ptCreate("lists", id, `{"name":"L","user_id":"alice"}`)), PushStatusApplied, "")
	res = p.one("alice", "c1", ptCreate("lists", id, `{"name":"again","user_id":"alice"}`))
	ptWant(t, "create existing list", res, PushStatusConflict, reasonRecordExists)
	if res.ServerVersion == nil {
		t.Fatal("no server_version")
	}
	if keys := JSONObjectKeys(t, res.ServerVersion.Data); !slices.Equal(keys, []string{"id", "user_id", "name", "updated_at", "deleted_at"}) ||
		!slices.Equal(keys, columns["lists"]) {
		t.Errorf("list server_version keys %v, contract columns %v", keys, columns["lists"])
	}
	var row map[string]any
	if err := json.Unmarshal(res.ServerVersion.Data, &row); err != nil {
		t.Fatal(err)
	}
	if s, _ := row["updated_at"].(string); s == "" || row["deleted_at"] != nil || row["name"] != "L" {
		t.Errorf("list server_version data %s, want the stored name, updated_at and a null deleted_at", res.ServerVersion.Data)
	}
}

// TestContractSQLiteTimestampDefaults creates a device's table from the
// contract the way the SDKs do (" DEFAULT " followed by sqlite_default_sql)
// in a real SQLite, inserts a row without the timestamp columns and checks
// that they hold RFC 3339 text in UTC that PostgreSQL reads back.
func TestContractSQLiteTimestampDefaults(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := pgtest.NewDatabase(t)
	pgtest.Exec(t, db.Super, `CREATE TABLE stamps (
		id integer PRIMARY KEY,
		created_at timestamptz NOT NULL DEFAULT now(),
		seen timestamp(3) DEFAULT CURRENT_TIMESTAMP,
		fixed timestamptz DEFAULT '2024-01-02 03:04:05.25+02',
		day date DEFAULT CURRENT_DATE,
		updated_at timestamptz NOT NULL DEFAULT transaction_timestamp()
	)`)
	snap := mustIntrospect(t, db.App, newTestRegistry(t, &TableConfig{TableName: "stamps"}))
	st := contractTable(t, snap, "stamps")

	lite, err := sql.Open("sqlite", "file:"+t.TempDir()+"/device.db")
	if err != nil {
		t.Fatal(err)
	}
	defer lite.Close()
	var defs []string
	for _, c := range st.Columns {
		def := `"` + c.Name + `" TEXT`
		if c.IsPrimaryKey {
			def = `"` + c.Name + `" INTEGER PRIMARY KEY`
		}
		if c.SQLiteDefaultSQL != "" {
			def += " DEFAULT " + c.SQLiteDefaultSQL
		}
		defs = append(defs, def)
	}
	create := `CREATE TABLE stamps (` + strings.Join(defs, ", ") + `)`
	if _, err := lite.ExecContext(ctx, create); err != nil {
		t.Fatalf("%s: %v", create, err)
	}
	before := time.Now().UTC().Add(-time.Second)
	if _, err := lite.ExecContext(ctx, `INSERT INTO stamps (id) VALUES (1)`); err != nil {
		t.Fatal(err)
	}
	var createdAt, seen, fixed, day, updatedAt sql.NullString
	if err := lite.QueryRowContext(ctx, `SELECT created_at, seen, fixed, day, updated_at FROM stamps WHERE id = 1`).
		Scan(&createdAt, &seen, &fixed, &day, &updatedAt); err != nil {
		t.Fatal(err)
	}
	for name, v := range map[string]sql.NullString{"created_at": createdAt, "seen": seen, "updated_at": updatedAt} {
		at, err := time.Parse(time.RFC3339Nano, v.String)
		if err != nil || !strings.HasSuffix(v.String, "Z") {
			t.Errorf("%s: SQLite default gave %q, want RFC 3339 in UTC (%v)", name, v.String, err)
			continue
		}
		if at.Before(before) || at.After(time.Now().Add(time.Second)) {
			t.Errorf("%s: SQLite default gave %s, not the time of the insert", name, at)
		}
		var back time.Time
		if err := db.App.QueryRowContext(ctx, `SELECT $1::text::timestamptz`, v.String).Scan(&back); err != nil || !back.Equal(at) {
			t.Errorf("%s: PostgreSQL reads %q as %v (%v), want %v", name, v.String, back, err, at)
		}
	}
	if fixed.String != "2024-01-02T01:04:05.250Z" {
		t.Errorf("fixed: SQLite default gave %q, want 2024-01-02T01:04:05.250Z", fixed.String)
	}
	if _, err := time.Parse(time.DateOnly, day.String); err != nil {
		t.Errorf("day: SQLite default gave %q, want a date", day.String)
	}
}
