package synchro

import (
	"encoding/json"
	"maps"
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

// TestContractArrayDefaults: an array column's constant default reaches
// devices as JSON text, the form in which they keep arrays and push them
// back. A row a device makes without the column holds that text, and
// pushed as the SDKs push it (the text as a string) or as the Go client
// does (the JSON itself) it stores what PostgreSQL's own default stores.
// Before, the contract gave PostgreSQL's array text ('{}'), which push
// refused (rejected_terminal: the SDKs dropped the row for good). A
// default JSON cannot hold as PostgreSQL does is server_only, as any
// default a device cannot reproduce.
func TestContractArrayDefaults(t *testing.T) {
	t.Parallel()
	db := pgtest.NewMigratedDatabase(t)
	pgtest.Exec(t, db.Super, `
CREATE TYPE ad_mood AS ENUM ('happy', 'sad');
CREATE DOMAIN ad_tags AS text[] DEFAULT '{x}';
CREATE TABLE arr_defaults (
	id         text PRIMARY KEY,
	user_id    text NOT NULL,
	tags       text[] NOT NULL DEFAULT '{}',
	nums       int[] NOT NULL DEFAULT '{1,2}',
	words      text[] DEFAULT '{"a b",NULL,"NULL",it''s,"x\"y","back\\slash","{}",<&>}',
	grid       int[] DEFAULT '{{1,2},{3,NULL}}',
	flags      boolean[] DEFAULT '{t,f}',
	ratios     double precision[] DEFAULT '{0.00001,1e20,NaN}',
	amounts    numeric(10,2)[] DEFAULT '{1.5,-2}',
	big        bigint[] DEFAULT '{9007199254740993}',
	blobs      bytea[] DEFAULT '{"\\x0102ff"}',
	stamps     timestamptz[] DEFAULT '{"2024-01-02 03:04:05.25+02"}',
	days       date[] DEFAULT '{2024-02-29}',
	docs       jsonb[] DEFAULT '{"{\"a\": [1]}","\"s\"",NULL}',
	moods      ad_mood[] DEFAULT '{happy}',
	dom        ad_tags,
	wide       varchar(3)[] DEFAULT '{abc}',
	bounded    int[] DEFAULT '[0:1]={1,2}',
	nested_doc jsonb[] DEFAULT '{"[1, 2]"}',
	built      int[] DEFAULT ARRAY[1, 2],
	updated_at timestamptz NOT NULL DEFAULT now(),
	deleted_at timestamptz
)`)
	reg := newTestRegistry(t, &TableConfig{TableName: "arr_defaults", OwnerColumn: "user_id"})
	p := ptEngine(t, db, db.Super, reg, nil)
	p.register("alice", "c1")
	schema, err := p.e.Schema(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	// Every constant default is given as PostgreSQL prints it, a quoted
	// literal of its array text; ARRAY[...] is computed by the server.
	defaults := map[string]string{} // the text a device's SQLite holds
	for _, c := range schema.Tables[0].Columns {
		switch c.Name {
		case "id", "user_id", "updated_at", "deleted_at":
			continue
		case "built":
			if c.DefaultKind != DefaultKindServerOnly {
				t.Errorf("built: default kind %s, want %s", c.DefaultKind, DefaultKindServerOnly)
			}
			continue
		}
		w := c.SQLiteDefaultSQL
		if c.DefaultKind != DefaultKindPortable || len(w) < 2 || w[0] != '\'' || w[len(w)-1] != '\'' {
			t.Errorf("%s (default %s): %s %s, want a portable quoted literal", c.Name, c.DefaultSQL, c.DefaultKind, w)
			continue
		}
		defaults[c.Name] = strings.ReplaceAll(w[1:len(w)-1], "''", "'")
	}

	// PostgreSQL's own defaults, to compare with.
	pgtest.Exec(t, db.Super, `INSERT INTO arr_defaults (id, user_id) VALUES ('server', 'alice')`)
	sdk := map[string]any{"user_id": "alice"}
	for col, text := range defaults {
		sdk[col] = text // the SQLite text, pushed as a string
	}
	for id, row := range map[string]map[string]any{"sdk": sdk} {
		data, err := json.Marshal(row)
		if err != nil {
			t.Fatal(err)
		}
		ptWant(t, id+" create with the contract's defaults", p.one("alice", "c1", ptCreate("arr_defaults", id, string(data))), PushStatusApplied, "")
		for _, col := range slices.Sorted(maps.Keys(defaults)) {
			var same bool
			var got, server string
			pgtest.QueryRow(t, db.Super, `SELECT d.`+col+` IS NOT DISTINCT FROM s.`+col+`, d.`+col+`::text, s.`+col+`::text
				FROM arr_defaults d, arr_defaults s WHERE d.id = $1 AND s.id = 'server'`, id).Scan(&same, &got, &server)
			if !same {
				t.Errorf("%s: %s stored %s from the contract's default %s; PostgreSQL's default is %s", id, col, got, defaults[col], server)
			}
		}
	}
}
