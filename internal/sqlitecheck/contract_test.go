package sqlitecheck

import (
	"database/sql"
	"log/slog"
	"strings"
	"testing"
	"time"

	_ "modernc.org/sqlite" // the "sqlite" database/sql driver, as the example client uses

	"github.com/synchrosync/synchro"
	"github.com/synchrosync/synchro/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// TestContractSQLiteTimestampDefaults creates a device's table from the
// contract (Engine.Schema, what GET /sync/schema serves) the way the SDKs
// do (" DEFAULT " followed by sqlite_default_sql) in a real SQLite, inserts
// a row without the timestamp columns and checks that they hold RFC 3339
// text in UTC that PostgreSQL reads back. The defaults cover the ones of
// the wire conformance suite's tables (now() on timestamptz) and more.
func TestContractSQLiteTimestampDefaults(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := pgtest.NewMigratedDatabase(t)
	if _, err := db.Super.ExecContext(ctx, `CREATE TABLE stamps (
		id integer PRIMARY KEY,
		created_at timestamptz NOT NULL DEFAULT now(),
		seen timestamp(3) DEFAULT CURRENT_TIMESTAMP,
		fixed timestamptz DEFAULT '2024-01-02 03:04:05.25+02',
		day date DEFAULT CURRENT_DATE,
		updated_at timestamptz NOT NULL DEFAULT transaction_timestamp()
	)`); err != nil {
		t.Fatal(err)
	}
	st := contractTable(t, db, "stamps")
	lite := deviceTable(t, st, false)
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

// TestContractSQLiteDomainDefaults: a device's table built from the
// contract gives a column of a domain what the server gives it when an
// insert leaves it out, the domain's default, and refuses NULL where the
// domain does. The columns are NOT NULL in SQLite as the Go client builds
// them (not nullable, and a default the device can compute). Without the
// domain's default in the contract the device's insert failed ("NOT NULL
// constraint failed") or stored NULL, which the server then refused.
func TestContractSQLiteDomainDefaults(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := pgtest.NewMigratedDatabase(t)
	if _, err := db.Super.ExecContext(ctx, `
CREATE DOMAIN nn_text AS text NOT NULL DEFAULT '';
CREATE DOMAIN nn_rank AS integer DEFAULT 0 CHECK (VALUE IS NOT NULL);
CREATE DOMAIN nn_note AS nn_text;
CREATE DOMAIN flag AS boolean NOT NULL DEFAULT true;
CREATE DOMAIN stamp AS timestamptz DEFAULT now();
CREATE TABLE notes (
	id      integer PRIMARY KEY,
	title   text,
	note    nn_text,
	status  nn_text DEFAULT 'open',
	rank    nn_rank,
	outer_n nn_note,
	pinned  flag,
	seen    stamp
);
INSERT INTO notes (id, title) VALUES (1, 'a')`); err != nil {
		t.Fatal(err)
	}
	st := contractTable(t, db, "notes")
	lite := deviceTable(t, st, true)
	if _, err := lite.ExecContext(ctx, `INSERT INTO notes (id, title) VALUES (1, 'a')`); err != nil {
		t.Fatalf("device insert without the domain columns: %v", err)
	}
	var device, server string
	if err := lite.QueryRowContext(ctx, `SELECT note||'|'||status||'|'||rank||'|'||outer_n||'|'||pinned FROM notes`).Scan(&device); err != nil {
		t.Fatal(err)
	}
	if err := db.Super.QueryRowContext(ctx, `SELECT concat_ws('|', note, status, rank, outer_n, pinned::int) FROM notes`).Scan(&server); err != nil {
		t.Fatal(err)
	}
	if device != server {
		t.Errorf("device row %q, server row %q (note|status|rank|outer_n|pinned)", device, server)
	}
	var seen string
	if err := lite.QueryRowContext(ctx, `SELECT seen FROM notes`).Scan(&seen); err != nil {
		t.Fatal(err)
	}
	if _, err := time.Parse(time.RFC3339Nano, seen); err != nil {
		t.Errorf("seen: SQLite default gave %q, want RFC 3339 (%v)", seen, err)
	}
	// NULL is refused on the device as on the server.
	if _, err := lite.ExecContext(ctx, `INSERT INTO notes (id, note) VALUES (2, NULL)`); err == nil {
		t.Error("the device accepted NULL for a column of a NOT NULL domain")
	}
	if _, err := lite.ExecContext(ctx, `INSERT INTO notes (id, rank) VALUES (3, NULL)`); err == nil {
		t.Error("the device accepted NULL for a column of a CHECK (VALUE IS NOT NULL) domain")
	}
}

// TestContractSQLiteArrayDefaults: a device's table built from the
// contract gives a row that leaves out an array column the text of the
// column's default (PostgreSQL's array text, '{}'), which the push reads,
// as a JSON string given to the column's type, as the array PostgreSQL's
// own default gives.
func TestContractSQLiteArrayDefaults(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := pgtest.NewMigratedDatabase(t)
	if _, err := db.Super.ExecContext(ctx, `CREATE TABLE shelf (
		id integer PRIMARY KEY,
		tags text[] NOT NULL DEFAULT '{}',
		nums int[] DEFAULT '{1,2}',
		words text[] DEFAULT '{"a b",NULL,"it''s","x\"y"}',
		grid int[] DEFAULT '{{1,2},{3,4}}'
	);
	INSERT INTO shelf (id) VALUES (1)`); err != nil {
		t.Fatal(err)
	}
	st := contractTable(t, db, "shelf")
	lite := deviceTable(t, st, true)
	if _, err := lite.ExecContext(ctx, `INSERT INTO shelf (id) VALUES (1)`); err != nil {
		t.Fatal(err)
	}
	for _, col := range []struct{ name, typ string }{{"tags", "text[]"}, {"nums", "int[]"}, {"words", "text[]"}, {"grid", "int[]"}} {
		var text string
		if err := lite.QueryRowContext(ctx, `SELECT "`+col.name+`" FROM shelf`).Scan(&text); err != nil {
			t.Fatal(err)
		}
		var same bool
		var server string
		if err := db.Super.QueryRowContext(ctx, `SELECT s.`+col.name+` IS NOT DISTINCT FROM r.v, s.`+col.name+`::text
			FROM shelf s, jsonb_to_record(jsonb_build_object('v', $1::text)) AS r(v `+col.typ+`)`, text).Scan(&same, &server); err != nil {
			t.Errorf("%s: the device holds %q, which PostgreSQL does not read as the column's array: %v", col.name, text, err)
			continue
		}
		if !same {
			t.Errorf("%s: the device holds %q; the server's default is %s", col.name, text, server)
		}
	}
}

// contractTable registers table alone on an engine over db and returns its
// entry in the schema contract.
func contractTable(t *testing.T, db *pgtest.Database, table string) synchro.SchemaTable {
	t.Helper()
	reg := synchro.NewRegistry()
	reg.Register(&synchro.TableConfig{TableName: table})
	if err := reg.Validate(); err != nil {
		t.Fatal(err)
	}
	e, err := synchro.NewEngine(synchro.Config{DB: db.Super, Registry: reg, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	schema, err := e.Schema(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(schema.Tables) != 1 || schema.Tables[0].TableName != table {
		t.Fatalf("contract tables %+v, want %s alone", schema.Tables, table)
	}
	return schema.Tables[0]
}

// deviceTable creates st in a new SQLite database as a device would from
// the contract: every column TEXT (an integer key as INTEGER PRIMARY KEY)
// with the contract's SQLite default, and with notNull, NOT NULL where the
// contract says so (unless only the server can fill the column in).
func deviceTable(t *testing.T, st synchro.SchemaTable, notNull bool) *sql.DB {
	t.Helper()
	lite, err := sql.Open("sqlite", "file:"+t.TempDir()+"/device.db")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = lite.Close() })
	var defs []string
	for _, c := range st.Columns {
		def := `"` + c.Name + `" TEXT`
		switch {
		case c.IsPrimaryKey:
			def = `"` + c.Name + `" INTEGER PRIMARY KEY`
		case notNull && !c.Nullable && c.DefaultKind != synchro.DefaultKindServerOnly:
			def += " NOT NULL"
		}
		if c.SQLiteDefaultSQL != "" {
			def += " DEFAULT " + c.SQLiteDefaultSQL
		}
		defs = append(defs, def)
	}
	create := `CREATE TABLE "` + st.TableName + `" (` + strings.Join(defs, ", ") + `)`
	if _, err := lite.ExecContext(t.Context(), create); err != nil {
		t.Fatalf("%s: %v", create, err)
	}
	return lite
}
