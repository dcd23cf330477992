package synchro

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/synchrosync/synchro/internal/pgtest"
)

// This file tests what the schema contract promises devices: the updated-at
// and deleted-at columns it names exist in its column list (made up when
// the table lacks them) and the column list is what rows deliver. That the
// SQLite defaults of timestamp columns give RFC 3339 text is tested with a
// real SQLite in internal/sqlitecheck, a module of its own.

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
