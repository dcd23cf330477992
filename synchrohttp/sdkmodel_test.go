package synchrohttp_test

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/synchrosync/synchro"
	"github.com/synchrosync/synchro/internal/pgtest"
)

// This file holds a model of the SDKs' local storage, and tests that the
// rows they push back after an edit of one column leave the others as the
// server holds them.
//
// A model of what the SDKs (trainstar/synchro at 1f5e90f) do with a pulled
// value, column by column, until they push the whole row back:
//
//  1. decode the JSON value with AnyCodable (Kotlin Models.kt
//     AnyCodableSerializer.fromJsonElement: a number with '.' is a Double,
//     any other a Long via element.long; Swift Models.swift
//     AnyCodable.init(from:): Bool, then Int64, then Double);
//  2. turn it into a bind value (SQLiteSchema.kt / SQLiteHelpers.swift
//     databaseValue: Bool -> 1/0, Long, Double, String; lists and maps ->
//     their JSON text);
//  3. store it in a column whose declared type comes from the contract's
//     logical_type (SQLiteSchema.sqliteType: int/int64/boolean INTEGER,
//     float REAL, bytes BLOB, all else TEXT), with SQLite's type affinity
//     (sqlite.org/datatype3.html: TEXT turns numbers into text, REAL turns
//     integers into floating point, INTEGER turns integral text/reals into
//     integers);
//  4. read it back by storage class (ChangeTracker.kt / .swift
//     hydratePendingForPush: INTEGER -> Long, or Bool when the logical type
//     is boolean; FLOAT -> Double; TEXT -> String; BLOB -> base64).

// sdkDecode is step 1.
func sdkDecode(shape string, v any) (any, error) {
	switch x := v.(type) {
	case json.Number:
		s := x.String()
		if shape == kotlin {
			if strings.Contains(s, ".") {
				return strconv.ParseFloat(s, 64) // element.double
			}
			return strconv.ParseInt(s, 10, 64) // element.long
		}
		if i, err := strconv.ParseInt(s, 10, 64); err == nil {
			return i, nil
		}
		return strconv.ParseFloat(s, 64)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			d, err := sdkDecode(shape, e)
			if err != nil {
				return nil, err
			}
			out[i] = d
		}
		return out, nil
	case map[string]any:
		out := map[string]any{}
		for k, e := range x {
			d, err := sdkDecode(shape, e)
			if err != nil {
				return nil, err
			}
			out[k] = d
		}
		return out, nil
	}
	return v, nil
}

// sqliteCell is steps 2 and 3: the value SQLite holds (nil, int64,
// float64 or string).
func sqliteCell(t *testing.T, logical string, v any) any {
	t.Helper()
	switch x := v.(type) {
	case bool:
		if x {
			v = int64(1)
		} else {
			v = int64(0)
		}
	case []any, map[string]any:
		b, err := json.Marshal(x)
		if err != nil {
			t.Fatal(err)
		}
		v = string(b)
	}
	switch logical {
	case "int", "int64", "boolean": // INTEGER affinity
		switch x := v.(type) {
		case string:
			if i, err := strconv.ParseInt(strings.TrimSpace(x), 10, 64); err == nil {
				return i
			}
		case float64:
			if x == float64(int64(x)) {
				return int64(x)
			}
		}
	case "float": // REAL affinity
		switch x := v.(type) {
		case int64:
			return float64(x)
		case string:
			if f, err := strconv.ParseFloat(strings.TrimSpace(x), 64); err == nil && !strings.ContainsAny(x, "nN") {
				return f
			}
		}
	case "bytes": // BLOB: no affinity
	default: // TEXT affinity
		switch x := v.(type) {
		case int64:
			return strconv.FormatInt(x, 10)
		case float64:
			return strconv.FormatFloat(x, 'g', 15, 64)
		}
	}
	return v
}

// sdkPushed is step 4, as JSON (numbers as the SDKs' encoders write them:
// a Long's digits, a Double's shortest form).
func sdkPushed(logical string, cell any) any {
	switch x := cell.(type) {
	case int64:
		if logical == "boolean" {
			return x != 0
		}
		return json.Number(strconv.FormatInt(x, 10))
	case float64:
		return json.Number(strconv.FormatFloat(x, 'g', -1, 64))
	}
	return cell
}

// sdkRoundTrip returns the whole row an SDK of shape pushes for a row it
// pulled (held), given the contract's logical types by column.
func sdkRoundTrip(t *testing.T, shape string, logical map[string]string, held map[string]any) map[string]any {
	t.Helper()
	out := map[string]any{}
	for col, v := range held {
		d, err := sdkDecode(shape, v)
		if err != nil {
			t.Fatalf("%s cannot decode %s = %v: %v", shape, col, v, err)
		}
		out[col] = sdkPushed(logical[col], sqliteCell(t, logical[col], d))
	}
	return out
}

// contractLogical returns the contract's logical type by column of table.
func contractLogical(t *testing.T, d *confDevice, table string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, c := range confRecords(t, d.schemaTables()[table], "columns") {
		out[confStr(t, c, "name")] = confStr(t, c, "logical_type")
	}
	return out
}

const sdkTypesSchema = `
CREATE TYPE mood AS ENUM ('ok', 'meh');
CREATE DOMAIN posint AS integer CHECK (VALUE > 0);
CREATE TABLE typed (
	id         text PRIMARY KEY,
	user_id    text NOT NULL,
	title      text,
	i8         bigint,
	num        numeric,
	num20      numeric(20,0),
	r4         real,
	f8         double precision,
	flag       boolean,
	raw        bytea,
	u          uuid,
	dt         date,
	tm         time,
	ttz        timetz,
	ts         timestamp,
	tstz       timestamptz,
	iv         interval,
	mo         mood,
	ta         text[],
	ia         int[],
	ja         jsonb[],
	j          json,
	jb         jsonb,
	ip         inet,
	ch         char(5),
	vc         varchar(10),
	dom        posint,
	updated_at timestamptz NOT NULL DEFAULT now(),
	deleted_at timestamptz
);`

// TestConformanceSDKRoundTripKeepsUntouchedColumns: a row holding a value
// of every column type is snapshotted by a device; the device edits its
// title; the SDK pushes the whole row as its SQLite holds it. Every other
// column must keep its value on the server. (Passes: the coverage sweep.
// numeric and json scalars are in the focused tests below.)
func TestConformanceSDKRoundTripKeepsUntouchedColumns(t *testing.T) {
	t.Parallel()
	e := confStart(t, sdkTypesSchema, []*synchro.TableConfig{{TableName: "typed", OwnerColumn: "user_id"}})
	cols := []string{"i8", "r4", "f8", "flag", "raw", "u", "dt", "tm", "ttz", "ts", "tstz", "iv", "mo",
		"ta", "ia", "ja", "j", "jb", "ip", "ch", "vc", "dom", "num", "num20"}
	// One row per interesting set of values; ids per shape.
	rows := map[string]string{
		"plain": `9007199254740993, 1.5, 0.1, true, '\x0102ff', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
			'2024-02-29', '12:34:56.789', '12:34:56+05:30', '2024-01-02 03:04:05.123456', '2024-01-02 03:04:05.123456+00',
			'1 day 02:03:04', 'meh', '{a,"b c",NULL}', '{1,2,3}', ARRAY['{"k":1}'::jsonb, '[2]'::jsonb], '{"a": [1, 2]}',
			'{"z": 1, "a": {"b": [true, null]}}', '192.168.0.1/24', 'ab', 'hello', 7, 12.50, 9007199254740993`,
		"manydigits": `-9223372036854775808, 3.4028235e38, 1.7976931348623157e308,
			false, '\x', NULL, '0001-01-01 BC', '24:00:00', '00:00:00-15:59', 'infinity', '-infinity', '-1 year 2 mons',
			'ok', '{}', '{{1,2},{3,4}}', '{}', '5', 'true', '::1', 'abcde', '', 1, 12345678901234567.1234567891, 99999999999999999999`,
	}
	names := make([]string, 0, len(rows))
	for name := range rows {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, shape := range []string{kotlin, swift} {
		for _, name := range names {
			pgtest.Exec(t, e.db.Super, fmt.Sprintf(`INSERT INTO typed (id, user_id, title, %s) VALUES ('%s-%s', 'alice', 'v0', %s)`,
				strings.Join(cols, ", "), shape, name, rows[name]))
		}
	}
	e.caughtUp(t)
	stored := func(id string) map[string]string {
		out := map[string]string{}
		for _, c := range cols {
			var s *string
			pgtest.QueryRow(t, e.db.Super, `SELECT `+c+`::text FROM typed WHERE id = $1`, id).Scan(&s)
			if s == nil {
				out[c] = "NULL"
			} else {
				out[c] = *s
			}
		}
		return out
	}
	for _, shape := range []string{kotlin, swift} {
		d := e.joined(t, shape, "alice")
		logical := contractLogical(t, d, "typed")
		for _, name := range names {
			id := shape + "-" + name
			held := d.rows["typed/"+id]
			if held == nil {
				t.Fatalf("snapshot lacks %s", id)
			}
			before := stored(id)
			row := sdkRoundTrip(t, shape, logical, held)
			row["title"] = "edited on " + shape
			r := result(t, d.push(record("typed", id, "update", row, held["updated_at"])), id)
			if r["status"] != synchro.PushStatusApplied {
				t.Errorf("%s: edit of the title answered %v %v: %v", id, r["status"], r["reason_code"], r["message"])
				continue
			}
			after := stored(id)
			for _, c := range cols {
				if before[c] != after[c] {
					t.Errorf("%s: untouched column %s (%s) was %s, is %s after the SDK pushed %v (pulled %v)",
						id, c, logical[c], before[c], after[c], row[c], held[c])
				}
			}
		}
	}
}

// TestConformanceSDKRoundTripKeepsJSONScalars: json and jsonb columns holding a
// number, a boolean, or a string whose text is JSON. The SDK stores the
// pulled value in a TEXT column (logical_type json): SQLite turns 5 into
// the text 5 and true (bound as 1) into the text 1, and a string stays its
// text; the next edit of the title pushes them as the strings "5", "1" and
// {"a":1}. The server's row must keep 5, true and the string.
func TestConformanceSDKRoundTripKeepsJSONScalars(t *testing.T) {
	t.Parallel()
	e := confStart(t, `
CREATE TABLE prefs (
	id         text PRIMARY KEY,
	user_id    text NOT NULL,
	title      text,
	j          json,
	jb         jsonb,
	updated_at timestamptz NOT NULL DEFAULT now(),
	deleted_at timestamptz
);`, []*synchro.TableConfig{{TableName: "prefs", OwnerColumn: "user_id"}})
	for _, shape := range []string{kotlin, swift} {
		pgtest.Exec(t, e.db.Super, `INSERT INTO prefs (id, user_id, title, j, jb) VALUES
			('`+shape+`-num', 'alice', 'v0', '5', '5'),
			('`+shape+`-bool', 'alice', 'v0', 'true', 'true'),
			('`+shape+`-str', 'alice', 'v0', '"{\"a\":1}"', '"[1,2]"')`)
	}
	e.caughtUp(t)
	for _, shape := range []string{kotlin, swift} {
		d := e.joined(t, shape, "alice")
		logical := contractLogical(t, d, "prefs")
		for _, kind := range []string{"num", "bool", "str"} {
			id := shape + "-" + kind
			held := d.rows["prefs/"+id]
			var before, after [2]string
			q := `SELECT j::text, jb::text FROM prefs WHERE id = $1`
			pgtest.QueryRow(t, e.db.Super, q, id).Scan(&before[0], &before[1])
			row := sdkRoundTrip(t, shape, logical, held)
			row["title"] = "edited"
			wantStatus(t, d.push(record("prefs", id, "update", row, held["updated_at"])), id, synchro.PushStatusApplied, "")
			pgtest.QueryRow(t, e.db.Super, q, id).Scan(&after[0], &after[1])
			if before != after {
				t.Errorf("%s: after an edit of the title, (json, jsonb) went from %v to %v; the SDK pushed j=%#v jb=%#v", id, before, after, row["j"], row["jb"])
			}
		}
	}
}

// TestConformanceSDKRoundTripKeepsNumericDigits: numeric is logical_type float, so
// the SDK's column is REAL: a pulled numeric becomes a Double (Kotlin
// element.double / Swift Double, or a Long that REAL affinity turns into
// a double), and the next edit of the title pushes the rounded value.
func TestConformanceSDKRoundTripKeepsNumericDigits(t *testing.T) {
	t.Parallel()
	e := confStart(t, `
CREATE TABLE ledger (
	id         text PRIMARY KEY,
	user_id    text NOT NULL,
	title      text,
	amount     numeric(30,10),
	ref        numeric(20,0),
	updated_at timestamptz NOT NULL DEFAULT now(),
	deleted_at timestamptz
);`, []*synchro.TableConfig{{TableName: "ledger", OwnerColumn: "user_id"}})
	pgtest.Exec(t, e.db.Super, `INSERT INTO ledger (id, user_id, title, amount, ref) VALUES
		('kotlin', 'alice', 'v0', 12345678901234567.1234567891, 9007199254740993),
		('swift', 'alice', 'v0', 12345678901234567.1234567891, 9007199254740993)`)
	e.caughtUp(t)
	for _, shape := range []string{kotlin, swift} {
		d := e.joined(t, shape, "alice")
		held := d.rows["ledger/"+shape]
		row := sdkRoundTrip(t, shape, contractLogical(t, d, "ledger"), held)
		row["title"] = "edited"
		wantStatus(t, d.push(record("ledger", shape, "update", row, held["updated_at"])), shape, synchro.PushStatusApplied, "")
		var amount, ref string
		pgtest.QueryRow(t, e.db.Super, `SELECT amount::text, ref::text FROM ledger WHERE id = $1`, shape).Scan(&amount, &ref)
		if amount != "12345678901234567.1234567891" || ref != "9007199254740993" {
			t.Errorf("%s: after an edit of the title, amount = %s, ref = %s (pushed %v, %v); want 12345678901234567.1234567891, 9007199254740993",
				shape, amount, ref, row["amount"], row["ref"])
		}
	}
}

// TestConformanceJSONEditsAreWritten: the rule that keeps a stored json
// value its device pushes back in SQLite's form must not swallow real
// edits: text after a number or an object, a string that reads as another
// number, an integer past 2^53 inside an object, an instant in another
// zone (found by review: each was taken for the stored value).
func TestConformanceJSONEditsAreWritten(t *testing.T) {
	t.Parallel()
	e := confStart(t, `CREATE TABLE prefs (id text PRIMARY KEY, user_id text NOT NULL, jb jsonb,
	updated_at timestamptz NOT NULL DEFAULT now(), deleted_at timestamptz);`,
		[]*synchro.TableConfig{{TableName: "prefs", OwnerColumn: "user_id"}})
	cases := []struct {
		id, stored string
		pushed     any
		want       string
	}{
		{"trailing", `5`, "5 apples", `"5 apples"`},
		{"phone", `0`, "0612345678x", `"0612345678x"`},
		{"objtext", `{"a":1}`, `{"a":1} (draft)`, `"{\"a\":1} (draft)"`},
		{"version", `"2.1"`, "2.10", `"2.10"`},
		{"bigid", `{"id":9007199254740993}`, map[string]any{"id": json.Number("9007199254740992")}, `{"id": 9007199254740992}`},
		{"zone", `"2026-01-01T00:00:00Z"`, "2026-01-01T09:00:00+09:00", `"2026-01-01T09:00:00+09:00"`},
		{"six", `5`, "6", `"6"`},
		{"flag", `true`, "0", `"0"`},
	}
	for _, c := range cases {
		pgtest.Exec(t, e.db.Super, `INSERT INTO prefs (id, user_id, jb) VALUES ($1, 'alice', $2::jsonb)`, c.id, c.stored)
	}
	e.caughtUp(t)
	d := e.joined(t, kotlin, "alice")
	for _, c := range cases {
		row := d.edit("prefs", c.id, map[string]any{"jb": c.pushed})
		wantStatus(t, d.push(d.write("prefs", c.id, "update", row)), c.id, synchro.PushStatusApplied, "")
		var got string
		pgtest.QueryRow(t, e.db.Super, `SELECT jb::text FROM prefs WHERE id = $1`, c.id).Scan(&got)
		if got != c.want {
			t.Errorf("%s: stored %s, the device set jb to %#v: stored is now %s, want %s", c.id, c.stored, c.pushed, got, c.want)
		}
	}
}
