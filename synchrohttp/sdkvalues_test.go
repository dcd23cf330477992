package synchrohttp_test

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/synchrosync/synchro"
	"github.com/synchrosync/synchro/internal/pgtest"
)

// sdkValuesSchema is a table with the column types whose values the SDKs
// keep in SQLite in another form than they pulled them.
const sdkValuesSchema = `
CREATE TABLE docs (
	id         text PRIMARY KEY,
	user_id    text NOT NULL,
	title      text NOT NULL,
	meta       jsonb,
	tags       json,
	updated_at timestamptz NOT NULL DEFAULT now(),
	deleted_at timestamptz
);`

func sdkValuesRegistry() []*synchro.TableConfig {
	return []*synchro.TableConfig{{TableName: "docs", OwnerColumn: "user_id"}}
}

// asSQLiteText is what the SDKs store in SQLite for a pulled value, and so
// push back with the whole row: an object or an array as its JSON text.
func asSQLiteText(t *testing.T, v any) any {
	t.Helper()
	switch v.(type) {
	case map[string]any, []any:
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	return v
}

// TestConformanceJSONColumnsKeepTheirObjects: a device edits one column of
// a row whose json and jsonb columns hold an object and an array; the SDK
// pushes the whole row with those as the JSON text it keeps in SQLite.
// They must stay an object and an array on the server. Before, a string
// stayed a string, and the first edit of the row by an SDK turned them
// into strings for every device and the application.
func TestConformanceJSONColumnsKeepTheirObjects(t *testing.T) {
	t.Parallel()
	e := confStart(t, sdkValuesSchema, sdkValuesRegistry())
	pgtest.Exec(t, e.db.Super, `INSERT INTO docs (id, user_id, title, meta, tags) VALUES
		('kotlin', 'alice', 'first', '{"tags":["a","b"],"n":1}', '["x", {"y": 2}]'),
		('swift', 'alice', 'first', '{"tags":["a","b"],"n":1}', '["x", {"y": 2}]')`)
	e.caughtUp(t)
	for _, shape := range []string{kotlin, swift} {
		d := e.joined(t, shape, "alice")
		held := d.rows["docs/"+shape]
		if held == nil {
			t.Fatalf("%s: the snapshot lacks docs/%s: %v", shape, shape, d.rows)
		}
		row := map[string]any{}
		for k, v := range held {
			row[k] = asSQLiteText(t, v)
		}
		row["title"] = "edited by " + shape
		wantStatus(t, d.push(record("docs", shape, "update", row, held["updated_at"])), shape, synchro.PushStatusApplied, "")
		var meta, tags, metaType, tagsType string
		pgtest.QueryRow(t, e.db.Super, `SELECT meta::text, tags::text, jsonb_typeof(meta), json_typeof(tags) FROM docs WHERE id = $1`, shape).
			Scan(&meta, &tags, &metaType, &tagsType)
		if metaType != "object" || tagsType != "array" || meta != `{"n": 1, "tags": ["a", "b"]}` {
			t.Errorf("%s: after an edit of the title, meta is the %s %s and tags the %s %s; want the object and the array pulled", shape, metaType, meta, tagsType, tags)
		}
	}
}

// numbersSchema holds the column types whose values PostgreSQL writes as
// JSON numbers without a '.' that are not 64-bit integers.
const numbersSchema = `
CREATE DOMAIN dfloat AS double precision;
CREATE DOMAIN dnum AS numeric;
CREATE DOMAIN posf AS double precision CHECK (VALUE > 0);
CREATE TABLE nums (
	id         text PRIMARY KEY,
	user_id    text NOT NULL,
	f8         double precision,
	f4         real,
	n          numeric,
	i8         bigint,
	df         dfloat,
	dn         dnum,
	fa         double precision[],
	na         numeric[],
	pfa        posf[],
	updated_at timestamptz NOT NULL DEFAULT now(),
	deleted_at timestamptz
);`

// kotlinReadable reports whether the Kotlin SDK's decoder reads the JSON
// number s: one with a '.' as a Double, any other as a Long.
func kotlinReadable(s string) bool {
	if strings.Contains(s, ".") {
		_, err := strconv.ParseFloat(s, 64)
		return err == nil
	}
	_, err := strconv.ParseInt(s, 10, 64)
	return err == nil
}

// TestConformanceNumbersKotlinReads: floats PostgreSQL writes with an
// exponent (1e-05, 1e+20) and integers past 2^63 (a numeric of scale 0)
// must reach the device in a form the Kotlin SDK decodes, whose decoder
// reads a number without '.' as a Long and fails the whole page (snapshot,
// pull, or the push answer carrying a conflict's server_version)
// otherwise, and with the value PostgreSQL holds.
func TestConformanceNumbersKotlinReads(t *testing.T) {
	t.Parallel()
	e := confStart(t, numbersSchema, []*synchro.TableConfig{{TableName: "nums", OwnerColumn: "user_id"}})
	pgtest.Exec(t, e.db.Super, `INSERT INTO nums (id, user_id, f8, f4, n, i8, df, dn, fa, na, pfa) VALUES
		('small', 'alice', 0.00001, 0.00001, 0.00001, 9223372036854775807, 0.00001, 0.00001, '{0.00001,2}', '{1,0.5}', '{0.00001,1e20}'),
		('big', 'alice', 1e20, 1e20, 123456789012345678901234, -9223372036854775808, 1e20, 123456789012345678901234,
		 '{{1e20,-1e-300},{3,4}}', '{123456789012345678901234}', '{2}'),
		('edge', 'alice', 123456789012345, 1e-40, -9223372036854775809, 0, -1e-7, -9223372036854775809, '{}', '{NULL,7}', '{}'),
		('plain', 'alice', 2.5, -3, 12.50, 42, 2.5, 12.50, NULL, NULL, NULL)`)
	e.caughtUp(t)
	d := e.joined(t, kotlin, "alice")
	check := func(where string, rows map[string]map[string]any) {
		t.Helper()
		for id, row := range rows {
			for _, col := range []string{"fa", "na", "pfa"} {
				var readable func(v any) bool
				readable = func(v any) bool {
					switch v := v.(type) {
					case json.Number:
						return kotlinReadable(v.String())
					case []any:
						for _, e := range v {
							if !readable(e) {
								return false
							}
						}
					}
					return true
				}
				text, _ := json.Marshal(row[col])
				var same bool
				pgtest.QueryRow(t, e.db.Super, fmt.Sprintf(`SELECT coalesce(to_jsonb(%s), 'null') = $2::jsonb FROM nums WHERE id = $1`, col),
					strings.TrimPrefix(id, "nums/"), string(text)).Scan(&same)
				if !readable(row[col]) || !same {
					t.Errorf("%s: %s.%s is %s: Kotlin's decoder refuses it, or it is not the value stored", where, id, col, text)
				}
			}
			for _, col := range []string{"f8", "f4", "n", "i8", "df", "dn"} {
				num, ok := row[col].(json.Number)
				if !ok {
					t.Errorf("%s: %s.%s is %T %v, want a number", where, id, col, row[col], row[col])
					continue
				}
				if !kotlinReadable(num.String()) {
					t.Errorf("%s: %s.%s is %s, which Kotlin's decoder refuses", where, id, col, num)
				}
				var same bool
				pgtest.QueryRow(t, e.db.Super, fmt.Sprintf(`SELECT %s = $2::numeric::%s FROM nums WHERE id = $1`, col, map[string]string{
					"f8": "float8", "f4": "float4", "n": "numeric", "i8": "numeric", "df": "float8", "dn": "numeric"}[col]), strings.TrimPrefix(id, "nums/"), num.String()).Scan(&same)
				if !same {
					t.Errorf("%s: %s.%s is %s, not the value stored", where, id, col, num)
				}
			}
		}
	}
	check("snapshot", d.rows)

	// The rows again, by pull.
	pgtest.Exec(t, e.db.Super, `UPDATE nums SET user_id = user_id`)
	d.rows = map[string]map[string]any{}
	d.pullUntil("the rows", func() bool { return len(d.rows) == 4 })
	check("pull", d.rows)

	// A conflict's server_version: an update from an old base, an hour
	// late.
	stale := record("nums", "small", "update", map[string]any{"id": "small", "user_id": "alice", "f8": 1}, "2000-01-01T00:00:00.000Z")
	stale["client_updated_at"] = time.Now().Add(-time.Hour).UTC().Format("2006-01-02T15:04:05.000Z")
	r := wantStatus(t, d.push(stale), "small", synchro.PushStatusConflict, "")
	sv := confObj(t, r, "server_version")
	check("server_version", map[string]map[string]any{"nums/small": confObj(t, sv, "data")})
}

// arrayDefaultsSchema has array columns with the constant defaults apps
// give them.
const arrayDefaultsSchema = `
CREATE TABLE notes (
	id         text PRIMARY KEY,
	user_id    text NOT NULL,
	body       text,
	tags       text[] NOT NULL DEFAULT '{}',
	nums       int[] NOT NULL DEFAULT '{1,2}',
	words      text[] DEFAULT '{"a b",NULL,"it''s","x\"y"}',
	grid       int[] DEFAULT '{{1,2},{3,4}}',
	updated_at timestamptz NOT NULL DEFAULT now(),
	deleted_at timestamptz
);`

// sqliteText is the text a device's SQLite stores for a column left out
// of an insert, whose DEFAULT is the contract's sqlite_default_sql, a
// string literal.
func sqliteText(t *testing.T, literal string) string {
	t.Helper()
	if len(literal) < 2 || literal[0] != '\'' || literal[len(literal)-1] != '\'' {
		t.Fatalf("sqlite_default_sql %q is not a string literal", literal)
	}
	return strings.ReplaceAll(literal[1:len(literal)-1], "''", "'")
}

// TestConformanceArrayDefaults: a row created on a device without its
// array columns holds their defaults as the contract gave them
// (sqlite_default_sql, copied into the SDK's CREATE TABLE), and the SDK
// pushes that text with the whole row. The create must be applied, with
// the defaults PostgreSQL gives. The contract gives PostgreSQL's array
// text ('{}'), which the push refused (rejected_terminal, invalid_data),
// and the SDK dropped the row for good. A malformed array text is refused
// terminally, naming the column, without the others of the push.
func TestConformanceArrayDefaults(t *testing.T) {
	t.Parallel()
	e := confStart(t, arrayDefaultsSchema, []*synchro.TableConfig{{TableName: "notes", OwnerColumn: "user_id"}})
	pgtest.Exec(t, e.db.Super, `INSERT INTO notes (id, user_id) VALUES ('server', 'alice')`)
	cols := []string{"tags", "nums", "words", "grid"}
	sameAsServer := func(id string) {
		t.Helper()
		for _, c := range cols {
			var same bool
			var got, want string
			pgtest.QueryRow(t, e.db.Super, `SELECT d.`+c+` IS NOT DISTINCT FROM s.`+c+`, d.`+c+`::text, s.`+c+`::text
				FROM notes d, notes s WHERE d.id = $1 AND s.id = 'server'`, id).Scan(&same, &got, &want)
			if !same {
				t.Errorf("%s: %s is %s, want the default %s", id, c, got, want)
			}
		}
	}
	// What devices hold for the defaults, PostgreSQL's array text, written
	// out (the loop below reads them from the contract).
	earlier := map[string]any{"tags": "{}", "nums": "{1,2}", "words": `{"a b",NULL,"it's","x\"y"}`, "grid": "{{1,2},{3,4}}"}

	for _, shape := range []string{kotlin, swift} {
		d := e.joined(t, shape, "alice")
		row := map[string]any{"id": "n-" + shape, "user_id": "alice", "body": "hello", "updated_at": localStamp(shape), "deleted_at": nil}
		for _, c := range confRecords(t, d.schemaTables()["notes"], "columns") {
			name := confStr(t, c, "name")
			if !slices.Contains(cols, name) {
				continue
			}
			lit, _ := c["sqlite_default_sql"].(string)
			row[name] = sqliteText(t, lit)
			t.Logf("%s: sqlite_default_sql %s", name, lit)
		}
		wantStatus(t, d.push(record("notes", "n-"+shape, "create", row, nil)), "n-"+shape, synchro.PushStatusApplied, "")
		sameAsServer("n-" + shape)

		old := map[string]any{"id": "old-" + shape, "user_id": "alice", "body": "hello", "updated_at": localStamp(shape), "deleted_at": nil}
		maps.Copy(old, earlier)
		wantStatus(t, d.push(record("notes", "old-"+shape, "create", old, nil)), "old-"+shape, synchro.PushStatusApplied, "")
		sameAsServer("old-" + shape)
		// The next edit pushes the whole row again.
		old["body"] = "edited"
		wantStatus(t, d.push(record("notes", "old-"+shape, "update", old, old["updated_at"])), "old-"+shape, synchro.PushStatusApplied, "")
		sameAsServer("old-" + shape)
	}

	// A malformed array text among good records: refused alone.
	d := e.joined(t, kotlin, "alice")
	bad := map[string]any{"id": "bad", "user_id": "alice", "body": "x", "updated_at": sqliteNow(), "deleted_at": nil}
	maps.Copy(bad, earlier)
	bad["nums"] = "{1,2"
	good := map[string]any{"id": "good", "user_id": "alice", "body": "y", "updated_at": sqliteNow(), "deleted_at": nil}
	maps.Copy(good, earlier)
	resp := d.push(record("notes", "good", "create", good, nil), record("notes", "bad", "create", bad, nil))
	wantStatus(t, resp, "good", synchro.PushStatusApplied, "")
	r := wantStatus(t, resp, "bad", synchro.PushStatusRejectedTerminal, "invalid_data")
	if msg, _ := r["message"].(string); !strings.Contains(msg, `column "nums"`) || !strings.Contains(msg, "malformed array text") {
		t.Errorf("the malformed array text was refused with %q, want a message naming the column", msg)
	}
}
