package local

import (
	"database/sql"
	"encoding/json"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/synchrosync/synchro"
)

// testContract is a contract of two tables: lists (pushable, a made-up
// deleted_at) and tags (read-only).
func testContract() synchro.SchemaResponse {
	col := func(name, logical string, nullable bool, def string, pk bool) synchro.SchemaColumn {
		c := synchro.SchemaColumn{Name: name, LogicalType: logical, Nullable: nullable, DefaultKind: synchro.DefaultKindNone, IsPrimaryKey: pk}
		if def != "" {
			c.DefaultKind, c.SQLiteDefaultSQL = synchro.DefaultKindPortable, def
		}
		return c
	}
	return synchro.SchemaResponse{SchemaVersion: 1, SchemaHash: "h1", Tables: []synchro.SchemaTable{
		{TableName: "lists", PushPolicy: "owner_only", UpdatedAtColumn: "updated_at", DeletedAtColumn: "deleted_at", PrimaryKey: []string{"id"},
			Columns: []synchro.SchemaColumn{
				col("id", "string", false, "", true),
				col("user_id", "string", false, "", false),
				col("name", "string", true, "", false),
				col("done", "boolean", false, "0", false),
				col("blob", "bytes", true, "", false),
				col("meta", "json", true, "", false),
				col("updated_at", "datetime", false, "(strftime('%Y-%m-%dT%H:%M:%fZ','now'))", false),
				col("deleted_at", "datetime", true, "", false),
			}},
		{TableName: "tags", PushPolicy: "disabled", UpdatedAtColumn: "updated_at", DeletedAtColumn: "deleted_at", PrimaryKey: []string{"id"},
			Columns: []synchro.SchemaColumn{
				col("id", "int64", false, "", true),
				col("label", "string", true, "", false),
				col("updated_at", "datetime", true, "", false),
				col("deleted_at", "datetime", true, "", false),
			}},
	}}
}

func openTest(t *testing.T) (*Store, *Schema) {
	t.Helper()
	ctx := t.Context()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "local.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	schema, err := NewSchema(testContract())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Install(ctx, schema); err != nil {
		t.Fatal(err)
	}
	return s, schema
}

func exec(t *testing.T, s *Store, query string, args ...any) {
	t.Helper()
	if _, err := s.DB().ExecContext(t.Context(), query, args...); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}

type outboxRow struct {
	Table, ID, Op string
	Base          sql.NullString
	Version       int64
}

func outbox(t *testing.T, s *Store) []outboxRow {
	t.Helper()
	rows, err := s.DB().QueryContext(t.Context(), `SELECT table_name, record_id, operation, base_updated_at, version FROM _synchro_outbox ORDER BY seq`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []outboxRow
	for rows.Next() {
		var r outboxRow
		if err := rows.Scan(&r.Table, &r.ID, &r.Op, &r.Base, &r.Version); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

// serverRow applies a row as the server would send it.
func serverRow(t *testing.T, s *Store, schema *Schema, id, name, updatedAt string) {
	t.Helper()
	data, _ := json.Marshal(map[string]any{"id": id, "user_id": "u", "name": name, "done": false, "updated_at": updatedAt, "deleted_at": nil})
	err := s.Apply(t.Context(), func(tx *sql.Tx) error {
		a, err := newApplier(t.Context(), tx, schema)
		if err != nil {
			return err
		}
		defer a.close()
		return a.upsert(&synchro.Record{ID: id, TableName: "lists", Data: data})
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestCaptureCoalesces(t *testing.T) {
	s, schema := openTest(t)
	ctx := t.Context()

	// A create, updated, stays one create; deleted before it was sent, it
	// is forgotten.
	exec(t, s, `INSERT INTO lists (id, user_id, name) VALUES ('a', 'u', 'A')`)
	exec(t, s, `UPDATE lists SET name = 'A2' WHERE id = 'a'`)
	exec(t, s, `UPDATE lists SET name = 'A2' WHERE id = 'a'`) // no change: not captured
	if got := outbox(t, s); len(got) != 1 || got[0].Op != "create" || got[0].Version != 2 {
		t.Fatalf("after insert+update: %+v", got)
	}
	exec(t, s, `DELETE FROM lists WHERE id = 'a'`)
	if got := outbox(t, s); len(got) != 0 {
		t.Fatalf("after deleting an unsent create: %+v", got)
	}

	// A server row: updates keep the first base; the base row holds the
	// server's row; a soft delete deletes the row and queues a delete.
	serverRow(t, s, schema, "b", "B", "2026-01-01T00:00:00.000001Z")
	if got := outbox(t, s); len(got) != 0 {
		t.Fatalf("a server row was captured: %+v", got)
	}
	exec(t, s, `UPDATE lists SET name = 'B2' WHERE id = 'b'`)
	exec(t, s, `UPDATE lists SET name = 'B3', updated_at = 'x' WHERE id = 'b'`)
	got := outbox(t, s)
	if len(got) != 1 || got[0].Op != "update" || got[0].Base.String != "2026-01-01T00:00:00.000001Z" {
		t.Fatalf("after updates of a server row: %+v", got)
	}
	base, err := readRow(ctx, s.DB(), baseTable("lists"), schema.Table("lists"), "b")
	if err != nil || base == nil || base["name"] != "B" {
		t.Fatalf("base row %v, %v", base, err)
	}
	// The server's newer row lands in the base, not in the table.
	serverRow(t, s, schema, "b", "B-server", "2026-01-02T00:00:00.000001Z")
	row, _ := readRow(ctx, s.DB(), "lists", schema.Table("lists"), "b")
	base, _ = readRow(ctx, s.DB(), baseTable("lists"), schema.Table("lists"), "b")
	if row["name"] != "B3" || base["name"] != "B-server" {
		t.Fatalf("row %v base %v", row, base)
	}
	exec(t, s, `UPDATE lists SET deleted_at = '2026-01-03T00:00:00Z' WHERE id = 'b'`)
	if got := outbox(t, s); len(got) != 1 || got[0].Op != "delete" {
		t.Fatalf("after a soft delete: %+v", got)
	}
	var n int
	_ = s.DB().QueryRow(`SELECT count(*) FROM lists WHERE id = 'b'`).Scan(&n)
	if n != 0 {
		t.Fatal("a soft-deleted row stayed")
	}
	// Inserted again: an update of the server's row.
	exec(t, s, `INSERT INTO lists (id, user_id, name) VALUES ('b', 'u', 'again')`)
	if got := outbox(t, s); len(got) != 1 || got[0].Op != "update" {
		t.Fatalf("after a re-insert: %+v", got)
	}

	// A changed key: a delete and a create.
	serverRow(t, s, schema, "c", "C", "2026-01-01T00:00:00Z")
	exec(t, s, `UPDATE lists SET id = 'd' WHERE id = 'c'`)
	got = outbox(t, s)
	if len(got) != 3 || got[1].ID != "c" || got[1].Op != "delete" || got[2].ID != "d" || got[2].Op != "create" {
		t.Fatalf("after a key change: %+v", got)
	}

	// A read-only table refuses local writes.
	if _, err := s.DB().Exec(`INSERT INTO tags (id, label) VALUES (1, 'x')`); err == nil {
		t.Fatal("a read-only table took an insert")
	}
}

// An upsert (INSERT ... ON CONFLICT DO UPDATE) of a server row, the way
// client/doc.go tells applications to save a row, fires the update
// trigger: an update on the server's version. (INSERT OR REPLACE does not:
// see client/doc.go.)
func TestCaptureUpsert(t *testing.T) {
	s, schema := openTest(t)
	serverRow(t, s, schema, "r", "R", "2026-01-01T00:00:00.000001Z")
	exec(t, s, `INSERT INTO lists (id, user_id, name) VALUES ('r', 'u', 'R2') ON CONFLICT (id) DO UPDATE SET name = excluded.name`)
	got := outbox(t, s)
	if len(got) != 1 || got[0].Op != "update" || got[0].Base.String != "2026-01-01T00:00:00.000001Z" {
		t.Fatalf("after an upsert of a server row: %+v", got)
	}
}

// A delete of a server row followed by an insert of its key is an update
// of the server's row while the delete was never sent; once a push sent
// it (the server may have deleted the row), it is a create without base.
func TestCaptureInsertAfterDelete(t *testing.T) {
	s, schema := openTest(t)
	serverRow(t, s, schema, "u", "U", "2026-01-01T00:00:00Z")
	serverRow(t, s, schema, "v", "V", "2026-01-01T00:00:00Z")
	exec(t, s, `DELETE FROM lists WHERE id IN ('u', 'v')`)
	if _, _, err := s.NextBatch(t.Context(), schema, 1, nil); err != nil { // sends u's delete
		t.Fatal(err)
	}
	exec(t, s, `INSERT INTO lists (id, user_id, name) VALUES ('u', 'u', 'U2'), ('v', 'u', 'V2')`)
	got := outbox(t, s)
	if len(got) != 2 || got[0].ID != "u" || got[0].Op != "create" || got[0].Base.Valid ||
		got[1].ID != "v" || got[1].Op != "update" || got[1].Base.String != "2026-01-01T00:00:00.000000Z" {
		t.Fatalf("after deletes (u's sent) and inserts again: %+v", got)
	}
}

// A file whose application dropped a synced table still opens (found by
// review: renewing the triggers failed, and the file could not be opened).
func TestOpenWithoutASyncedTable(t *testing.T) {
	ctx := t.Context()
	path, s := installedFile(t)
	exec(t, s, `DROP TABLE lists`)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatalf("Open of a file without one of its synced tables: %v", err)
	}
	_ = s.Close()
}

// installedFile opens a new file and installs testContract in it.
func installedFile(t *testing.T) (string, *Store) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "local.db")
	s, err := Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	schema, err := NewSchema(testContract())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Install(t.Context(), schema); err != nil {
		t.Fatal(err)
	}
	return path, s
}

// Open makes the triggers again, so that a file whose triggers an
// earlier version made captures as this version does.
func TestOpenRenewsTriggers(t *testing.T) {
	ctx := t.Context()
	path, s := installedFile(t)
	// As an earlier version might have left it: an insert trigger that
	// queues nothing.
	exec(t, s, `DROP TRIGGER _synchro_insert_lists`)
	exec(t, s, `CREATE TRIGGER _synchro_insert_lists AFTER INSERT ON lists BEGIN SELECT 1; END`)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	exec(t, s, `INSERT INTO lists (id, user_id, name) VALUES ('a', 'u', 'A')`)
	if got := outbox(t, s); len(got) != 1 || got[0].Op != "create" {
		t.Fatalf("after an insert in the reopened file: %+v", got)
	}
}

func TestValuesRoundTrip(t *testing.T) {
	cases := []struct {
		logical, in string
		local       any
		out         string
	}{
		{"int64", `9007199254740993`, int64(9007199254740993), `9007199254740993`},
		{"int64", `"42"`, int64(42), `42`},
		{"boolean", `true`, int64(1), `true`},
		{"float", `1.5`, 1.5, `1.5`},
		{"float", `"NaN"`, "NaN", `"NaN"`},
		{"json", `{"b": [1, 2], "a": "x"}`, `{"b":[1,2],"a":"x"}`, `{"b":[1,2],"a":"x"}`},
		{"json", `"text"`, `"text"`, `"text"`},
		{"bytes", `"\\x01ff"`, []byte{1, 0xff}, `"Af8="`},
		{"datetime", `"2026-12-02T05:20:23.5+01:00"`, "2026-12-02T04:20:23.500000Z", `"2026-12-02T04:20:23.5Z"`},
		{"datetime", `"infinity"`, "infinity", `"infinity"`},
		{"string", `"x"`, "x", `"x"`},
		{"date", `null`, nil, `null`},
	}
	for _, c := range cases {
		v, err := fromJSON(c.logical, json.RawMessage(c.in))
		if err != nil {
			t.Errorf("%s %s: %v", c.logical, c.in, err)
			continue
		}
		if !reflect.DeepEqual(v, c.local) {
			t.Errorf("%s %s: local %#v, want %#v", c.logical, c.in, v, c.local)
		}
		if out := string(toJSON(c.logical, v)); out != c.out {
			t.Errorf("%s %s: pushed %s, want %s", c.logical, c.in, out, c.out)
		}
	}
}

func TestSettleOutcomes(t *testing.T) {
	s, schema := openTest(t)
	ctx := t.Context()
	serverRow(t, s, schema, "x", "X", "2026-01-01T00:00:00Z")
	serverRow(t, s, schema, "y", "Y", "2026-01-01T00:00:00Z")
	exec(t, s, `UPDATE lists SET name = 'X2' WHERE id = 'x'`)
	exec(t, s, `UPDATE lists SET name = 'Y2' WHERE id = 'y'`)
	exec(t, s, `INSERT INTO lists (id, user_id, name) VALUES ('z', 'u', 'Z')`)
	sent, _, err := s.NextBatch(ctx, schema, 10, nil)
	if err != nil || len(sent) != 3 {
		t.Fatalf("NextBatch: %d, %v", len(sent), err)
	}
	// y changes again while the push is under way.
	exec(t, s, `UPDATE lists SET name = 'Y3' WHERE id = 'y'`)
	at := time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)
	svData, _ := json.Marshal(map[string]any{"id": "x", "user_id": "u", "name": "X-server", "done": false, "updated_at": at, "deleted_at": nil})
	resp := &synchro.PushResponse{
		Accepted: []synchro.PushResult{{ID: "y", TableName: "lists", Operation: "update", Status: "applied", ServerUpdatedAt: &at}},
		Rejected: []synchro.PushResult{
			{ID: "x", TableName: "lists", Operation: "update", Status: "conflict", ReasonCode: "server_won_conflict",
				ServerVersion: &synchro.Record{ID: "x", TableName: "lists", Data: svData, UpdatedAt: at}},
			{ID: "z", TableName: "lists", Operation: "create", Status: "rejected_terminal", ReasonCode: "create_failed", Message: "no"},
		},
	}
	out, err := s.Settle(ctx, schema, sent, resp)
	if err != nil {
		t.Fatal(err)
	}
	if out.Accepted != 1 || len(out.Rejected) != 2 {
		t.Fatalf("settled %+v", out)
	}
	lists := schema.Table("lists")
	x, _ := readRow(ctx, s.DB(), "lists", lists, "x")
	y, _ := readRow(ctx, s.DB(), "lists", lists, "y")
	z, _ := readRow(ctx, s.DB(), "lists", lists, "z")
	if x["name"] != "X-server" || y["name"] != "Y3" || z != nil {
		t.Fatalf("rows x %v y %v z %v", x, y, z)
	}
	got := outbox(t, s)
	if len(got) != 1 || got[0].ID != "y" || got[0].Op != "update" || got[0].Base.String != "2026-01-05T00:00:00.000000Z" {
		t.Fatalf("outbox %+v", got)
	}
	rej, err := s.Rejections(ctx)
	if err != nil || len(rej) != 2 {
		t.Fatalf("rejections %+v %v", rej, err)
	}
}

// Whatever a server sends as a record's data, converting it neither
// panics nor gives a value toJSON cannot send back.
func FuzzRowValues(f *testing.F) {
	for _, seed := range []string{
		`{"id": "a", "user_id": "u", "name": "x", "done": true, "blob": "\\x00ff", "meta": {"a": [1, 2]}, "updated_at": "2026-01-01T00:00:00Z"}`,
		`{"id": 7, "done": 2, "blob": "AQI=", "meta": "text", "updated_at": "infinity", "deleted_at": "2026-01-01 00:00:00"}`,
		`{"id": "\u00e9\"x", "name": 1e400, "done": "true", "meta": null}`,
		`null`, `[]`, `{"id": {"x": 1}}`, `{`,
	} {
		f.Add([]byte(seed))
	}
	schema, err := NewSchema(testContract())
	if err != nil {
		f.Fatal(err)
	}
	t := schema.Table("lists")
	f.Fuzz(func(tt *testing.T, data []byte) {
		vals, set, err := rowValues(t, "id", data)
		if err != nil {
			return
		}
		row := map[string]any{}
		for i, c := range t.Columns {
			if set[i] {
				row[c.Name] = vals[i]
			}
		}
		if out := rowJSON(t, row); !json.Valid(out) {
			tt.Fatalf("rowJSON gave invalid JSON %s for %s", out, data)
		}
	})
}
