package synchro

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/synchrosync/synchro/internal/pgtest"
)

// This file pushes values of every kind of column through Engine.Push into
// PostgreSQL and reads them back with SQL: the forms of the package
// documentation's "Pushed values" are stored exactly, everything else is
// refused per record (rejected_terminal, invalid_data) naming the column.

// tvSchema is a table with one column of each kind.
const tvSchema = `
CREATE TYPE tv_mood AS ENUM ('happy', 'sad');
CREATE DOMAIN tv_posint AS integer CHECK (VALUE > 0);
CREATE TABLE typed_values (
	id         uuid PRIMARY KEY,
	user_id    text NOT NULL,
	s          text,
	vc         varchar(5),
	u          uuid,
	mood       tv_mood,
	span       interval,
	i2         smallint,
	i4         integer,
	i8         bigint,
	pos        tv_posint,
	f4         real,
	f8         double precision,
	num        numeric,
	money2     numeric(12,2),
	b          boolean,
	req        text NOT NULL DEFAULT 'x',
	j          json,
	jb         jsonb,
	raw        bytea,
	d          date,
	t          time,
	ttz        timetz,
	ts         timestamp,
	tstz       timestamptz,
	ia         integer[],
	ta         text[],
	ba         bytea[],
	tsa        timestamptz[],
	ma         tv_mood[],
	jba        jsonb[],
	updated_at timestamptz NOT NULL DEFAULT now(),
	deleted_at timestamptz
)`

// tvReaders read a column back as text where ::text would depend on the
// session (time zones) or hide the bytes.
var tvReaders = map[string]string{
	"raw":  `encode(raw, 'hex')`,
	"tstz": `(tstz AT TIME ZONE 'UTC')::text`,
	"tsa":  `(SELECT array_agg(x AT TIME ZONE 'UTC' ORDER BY o) FROM unnest(tsa) WITH ORDINALITY AS a(x, o))::text`,
	"ba":   `(SELECT array_agg(encode(x, 'hex') ORDER BY o) FROM unnest(ba) WITH ORDINALITY AS a(x, o))::text`,
}

// tvEnv is an engine on a database with tvSchema, with alice registered.
func tvEnv(t *testing.T) *ptEnv {
	t.Helper()
	db := pgtest.NewMigratedDatabase(t)
	pgtest.Exec(t, db.Super, tvSchema)
	reg := NewRegistry()
	reg.Register(&TableConfig{TableName: "typed_values", OwnerColumn: "user_id"})
	p := ptEngine(t, db, db.Super, reg, nil)
	p.register("alice", "c1")
	return p
}

// tvRead returns the text of column col of row id.
func tvRead(t *testing.T, p *ptEnv, col, id string) *string {
	t.Helper()
	expr, ok := tvReaders[col]
	if !ok {
		expr = col + "::text"
	}
	var v *string
	pgtest.QueryRow(t, p.db.Super, `SELECT `+expr+` FROM typed_values WHERE id = $1::uuid`, id).Scan(&v)
	return v
}

// TestPushTypedValues pushes each accepted form of each kind of column in
// a create and reads the stored value back; then each refused form, which
// must be rejected alone, terminally, as invalid_data naming the column
// and the form it expects.
func TestPushTypedValues(t *testing.T) {
	t.Parallel()
	p := tvEnv(t)

	accepted := []struct{ col, value, want string }{
		{"s", `"héllo 🌍 \t end"`, "héllo 🌍 \t end"},
		{"s", `""`, ""},
		{"vc", `"abc"`, "abc"},
		{"u", `"A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11"`, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"},
		{"mood", `"sad"`, "sad"},
		{"span", `"1 day 02:00:00"`, "1 day 02:00:00"},
		{"i2", `-32768`, "-32768"},
		{"i4", `2147483647`, "2147483647"},
		{"i4", `1.0`, "1"},
		{"i4", `1.5e1`, "15"},
		{"i4", `-0`, "0"},
		{"i8", `9007199254740993`, "9007199254740993"},
		{"i8", `"9223372036854775807"`, "9223372036854775807"},
		{"i8", `-9223372036854775808`, "-9223372036854775808"},
		{"pos", `7`, "7"},
		{"f4", `1.5`, "1.5"},
		{"f4", `"NaN"`, "NaN"},
		{"f8", `3.141592653589793`, "3.141592653589793"},
		{"f8", `-1.5e300`, "-1.5e+300"},
		{"f8", `"0.1"`, "0.1"},
		{"f8", `"-Infinity"`, "-Infinity"},
		{"f8", `4.9e-324`, "5e-324"},
		{"num", `12345678901234567890.0123456789`, "12345678901234567890.0123456789"},
		{"num", `"98765432109876543210.000000000001"`, "98765432109876543210.000000000001"},
		{"num", `"1.50"`, "1.50"},
		{"num", `1e-20`, "0.00000000000000000001"},
		{"num", `"Infinity"`, "Infinity"},
		{"num", `"NaN"`, "NaN"},
		{"money2", `12.5`, "12.50"},
		{"money2", `"NaN"`, "NaN"},
		{"b", `true`, "true"},
		{"b", `false`, "false"},
		{"b", `1`, "true"},
		{"b", `0`, "false"},
		{"req", `"set"`, "set"},
		// A json column gets jsonb's text of the value (keys sorted, one
		// space after separators): the values travel as jsonb.
		{"j", `{"b":[1,2],"a":null}`, `{"a": null, "b": [1, 2]}`},
		{"j", `"a string"`, `"a string"`},
		{"jb", `{"a":{"b":[1,2,{"c":null}]},"n":9007199254740993,"f":0.1}`, `{"a": {"b": [1, 2, {"c": null}]}, "f": 0.1, "n": 9007199254740993}`},
		{"jb", `[1,"two"]`, `[1, "two"]`},
		{"jb", `12.50`, `12.50`},
		{"raw", `"\\x0102ff"`, "0102ff"},
		{"raw", `"\\xDEADBEEF"`, "deadbeef"},
		{"raw", `"AQL/"`, "0102ff"},
		{"raw", `"aGVsbG8gd29ybGQ="`, "68656c6c6f20776f726c64"},
		{"raw", `"aGVsbG8gd29ybGQ"`, "68656c6c6f20776f726c64"},
		{"raw", `""`, ""},
		{"d", `"2024-02-29"`, "2024-02-29"},
		{"d", `"0044-03-15 BC"`, "0044-03-15 BC"},
		{"d", `"infinity"`, "infinity"},
		{"t", `"23:59:58.5"`, "23:59:58.5"},
		{"t", `"12:30"`, "12:30:00"},
		{"t", `"24:00:00"`, "24:00:00"},
		{"ttz", `"12:00:00+02"`, "12:00:00+02"},
		{"ttz", `"12:00:00"`, "12:00:00+00"},
		{"ts", `"2024-02-29T12:34:56.123456"`, "2024-02-29 12:34:56.123456"},
		{"ts", `"2024-02-29 12:34:56"`, "2024-02-29 12:34:56"},
		{"ts", `"2024-02-29T12:34:56Z"`, "2024-02-29 12:34:56"},
		{"ts", `"2024-02-29T12:34:56+02:00"`, "2024-02-29 10:34:56"},
		{"tstz", `"2024-02-29T12:34:56.123456+02:00"`, "2024-02-29 10:34:56.123456"},
		{"tstz", `"2026-12-02 04:20:23"`, "2026-12-02 04:20:23"},
		{"tstz", `"2026-12-02 04:20:23.123"`, "2026-12-02 04:20:23.123"},
		{"tstz", `"2026-12-02T04:20"`, "2026-12-02 04:20:00"},
		{"tstz", `"2026-12-02"`, "2026-12-02 00:00:00"},
		{"tstz", `"2026-12-02T04:20:23.000Z"`, "2026-12-02 04:20:23"},
		{"tstz", `"0044-03-15T10:00:00+00:00 BC"`, "0044-03-15 10:00:00 BC"},
		{"tstz", `"1900-01-01T00:00:00+00:19:32"`, "1899-12-31 23:40:28"},
		{"tstz", `"infinity"`, "infinity"},
		{"ia", `[1,-2,3]`, "{1,-2,3}"},
		{"ia", `[[1,2],[3,null]]`, "{{1,2},{3,NULL}}"},
		{"ia", `[]`, "{}"},
		{"ia", `[1.0,2e0]`, "{1,2}"},
		{"ia", `"[4,5]"`, "{4,5}"},
		{"ta", `["x","y z","with,comma","quote\"d",null]`, `{x,"y z","with,comma","quote\"d",NULL}`},
		{"ta", `"[\"a\",\"b\"]"`, "{a,b}"},
		{"ba", `["AQL/","\\x00"]`, "{0102ff,00}"},
		{"tsa", `["2026-12-02 04:20:23","2026-12-02T05:20:23+01:00"]`, `{"2026-12-02 04:20:23","2026-12-02 04:20:23"}`},
		{"ma", `["happy","sad"]`, "{happy,sad}"},
		{"jba", `[{"a":1},"x"]`, `{"{\"a\": 1}","\"x\""}`},
		// PostgreSQL's array text, which devices hold for a default that
		// an earlier contract gave in that form: read by PostgreSQL.
		{"ia", `"{}"`, "{}"},
		{"ia", `"{1,2}"`, "{1,2}"},
		{"ia", `" {{1,2},{3,NULL}} "`, "{{1,2},{3,NULL}}"},
		{"ia", `"[0:1]={1,2}"`, "[0:1]={1,2}"},
		{"ta", `"{\"a b\",NULL,\"NULL\",it's,\"x\\\"y\"}"`, `{"a b",NULL,"NULL",it's,"x\"y"}`},
		{"ba", `"{\"\\\\x0102ff\"}"`, "{0102ff}"},
		{"ma", `"{happy,sad}"`, "{happy,sad}"},
		{"jba", `"{\"{\\\"a\\\": 1}\",NULL}"`, `{"{\"a\": 1}",NULL}`},
		{"tsa", `"{\"2026-12-02 04:20:23\",\"2026-12-02 05:20:23+01\"}"`, `{"2026-12-02 04:20:23","2026-12-02 04:20:23"}`},
		{"s", `null`, ""},
	}
	var recs []PushRecord
	ids := make([]string, len(accepted))
	for i, c := range accepted {
		ids[i] = ptID()
		recs = append(recs, ptCreate("typed_values", ids[i], `{"`+c.col+`":`+c.value+`}`))
	}
	resp := p.push("alice", "c1", recs...)
	for i, c := range accepted {
		res := ptFind(t, resp, ids[i])
		if res.Status != PushStatusApplied {
			t.Errorf("%s = %s: %s/%s (%s), want applied", c.col, c.value, res.Status, res.ReasonCode, res.Message)
			continue
		}
		got := tvRead(t, p, c.col, ids[i])
		switch {
		case c.value == "null" && got != nil:
			t.Errorf("%s = null: stored %q", c.col, *got)
		case c.value != "null" && (got == nil || *got != c.want):
			t.Errorf("%s = %s: stored %v, want %q", c.col, c.value, ptStr(got), c.want)
		}
	}

	refused := []struct{ col, value, msg string }{
		{"s", `{"a":1}`, `column "s" expects a JSON string, got an object`},
		{"s", `[1,2]`, `column "s" expects a JSON string, got an array`},
		{"s", `42`, `column "s" expects a JSON string, got 42`},
		{"s", `true`, `column "s" expects a JSON string, got true`},
		{"s", `"a\u0000b"`, `column "s" holds the character \u0000`},
		{"s", strings.Repeat("[", 3000) + strings.Repeat("]", 3000), `column "s" expects a JSON string, got an array`},
		{"u", `12`, `column "u" expects a JSON string`},
		{"mood", `1`, `column "mood" expects a JSON string`},
		{"i2", `32768`, `column "i2" expects an integer from -32768 to 32767, got 32768`},
		{"i4", `1.5`, `column "i4" expects an integer (a JSON number without a fraction), got 1.5`},
		{"i4", `"7"`, `column "i4" expects an integer`},
		{"i4", `3000000000`, `column "i4" expects an integer from -2147483648 to 2147483647`},
		{"i8", `9223372036854775808`, `column "i8" expects an integer from -9223372036854775808 to 9223372036854775807`},
		{"i8", `"12abc"`, `column "i8" expects an integer`},
		{"pos", `1.5`, `column "pos" expects an integer`},
		{"f4", `1e39`, `column "f4" expects a number within the range of real`},
		{"f8", `1e400`, `column "f8" expects a number within the range of double precision`},
		{"f8", `"fast"`, `column "f8" expects a number`},
		{"num", `1e999999999`, `column "num" expects a number with at most 131072 digits`},
		{"num", `"12,5"`, `column "num" expects a number`},
		{"money2", `"Infinity"`, `column "money2" expects a number (a JSON number, or a string holding one, or "NaN")`},
		{"b", `"true"`, `column "b" expects true, false, 0 or 1, got "true"`},
		{"b", `2`, `column "b" expects true, false, 0 or 1, got 2`},
		{"b", `"yes"`, `column "b" expects true, false, 0 or 1`},
		{"raw", `12`, `column "raw" expects bytes as a base64 string or as PostgreSQL's hex text`},
		{"raw", `"\\xzz"`, `column "raw" expects bytes`},
		{"raw", `"not base64!"`, `column "raw" expects bytes`},
		{"raw", `"AQL_"`, `column "raw" expects bytes`},
		{"d", `"2024-02-30"`, `column "d" expects a date as a string YYYY-MM-DD`},
		{"d", `"2024-02-29T10:00:00Z"`, `column "d" expects a date`},
		{"d", `"today"`, `column "d" expects a date`},
		{"t", `"25:00"`, `column "t" expects a time of day`},
		{"t", `"10:00:00+05"`, `column "t" expects a time of day as a string HH:MM[:SS[.ffffff]], without a zone`},
		{"ts", `"yesterday"`, `column "ts" expects a timestamp`},
		{"tstz", `"now"`, `column "tstz" expects a timestamp as a string in RFC 3339 or SQLite's form`},
		{"tstz", `1764649223`, `column "tstz" expects a timestamp`},
		{"tstz", `"Jan 8 1999"`, `column "tstz" expects a timestamp`},
		{"tstz", `"2024-01-01T24:00:00Z"`, `column "tstz" expects a timestamp`},
		{"ia", `[1,"x"]`, `column "ia" element [1] expects an integer`},
		{"ia", `[[1],[2,3]]`, `column "ia" element [1] expects an array of length 1`},
		{"ia", `[[[[[[[1]]]]]]]`, `column "ia" element [0][0][0][0][0][0] expects a value (arrays have at most 6 dimensions)`},
		{"ia", `"{1,2"`, `column "ia" expects a JSON array (or a string holding one, as JSON or as PostgreSQL's array text) of integers, got "{1,2" (malformed array text: a missing "}")`},
		{"ia", `"1,2"`, `column "ia" expects a JSON array`},
		{"ia", `"{1,x}"`, `invalid input syntax for type integer: "x"`},
		{"ia", `"[1:3]={1,2}"`, `malformed array literal`},
		{"tsa", `"{now}"`, `column "tsa" element [0] expects a timestamp`},
		{"ia", `{"a":1}`, `column "ia" expects a JSON array`},
		{"ta", `["a",1]`, `column "ta" element [1] expects a JSON string, got 1`},
		{"ba", `[12]`, `column "ba" element [0] expects bytes`},
		{"tsa", `["soon"]`, `column "tsa" element [0] expects a timestamp`},
	}
	recs, ids = nil, make([]string, len(refused))
	for i, c := range refused {
		ids[i] = ptID()
		recs = append(recs, ptCreate("typed_values", ids[i], `{"`+c.col+`":`+c.value+`}`))
	}
	good := ptID()
	recs = append(recs, ptCreate("typed_values", good, `{"s":"fine"}`))
	resp = p.push("alice", "c1", recs...)
	ptWant(t, "the good record among the refused ones", ptFind(t, resp, good), PushStatusApplied, "")
	for i, c := range refused {
		res := ptFind(t, resp, ids[i])
		if res.Status != PushStatusRejectedTerminal || res.ReasonCode != reasonInvalidData || !strings.Contains(res.Message, c.msg) {
			t.Errorf("%s = %.60s: %s/%s %q, want rejected_terminal/invalid_data %q", c.col, c.value, res.Status, res.ReasonCode, res.Message, c.msg)
		}
	}
	if n := pgtest.Count(t, p.db.Super, `SELECT count(*) FROM typed_values WHERE id = ANY($1::uuid[])`, ids); n != 0 {
		t.Errorf("%d refused records were written", n)
	}

	// Null passes the checks: a NOT NULL column refuses it in PostgreSQL,
	// terminally.
	ptWant(t, "null for a NOT NULL column", p.one("alice", "c1", ptCreate("typed_values", ptID(), `{"req":null}`)), PushStatusRejectedTerminal, reasonCreateFailed)

	// Updates are checked the same way.
	res := p.one("alice", "c1", ptUpdate("typed_values", good, `{"s":"fine","i4":"7"}`, ptFuture()))
	ptWant(t, "update with a string for an integer", res, PushStatusRejectedTerminal, reasonInvalidData)
	ptWant(t, "update with converted values", p.one("alice", "c1", ptUpdate("typed_values", good,
		`{"b":1,"raw":"AQL/","tstz":"2026-12-02 04:20:23","i8":"9007199254740993"}`, ptFuture())), PushStatusApplied, "")
	for col, want := range map[string]string{"b": "true", "raw": "0102ff", "tstz": "2026-12-02 04:20:23", "i8": "9007199254740993", "s": "fine"} {
		if got := tvRead(t, p, col, good); got == nil || *got != want {
			t.Errorf("after the update, %s = %v, want %q", col, ptStr(got), want)
		}
	}
}

// ptStr prints a nullable text.
func ptStr(s *string) string {
	if s == nil {
		return "NULL"
	}
	return fmt.Sprintf("%q", *s)
}

// TestPushTypedValuesRoundTrip pushes a row in the forms a device sends
// (base64 bytes, SQLite's timestamps, 1 for true, a bigint as a string, an
// array as JSON text), then pushes back, as an update of the whole row,
// the row the server delivers (push's server_version, byte for byte what
// pull delivers): it is applied and changes no value.
func TestPushTypedValuesRoundTrip(t *testing.T) {
	t.Parallel()
	p := tvEnv(t)
	id := ptID()
	device := `{"s":"x","u":"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11","mood":"happy","span":"01:00:00","i2":1,"i4":2,"i8":"9007199254740993","pos":3,
		"f4":1.5,"f8":0.1,"num":"12345678901234567890.0123456789","money2":12.5,"b":1,"req":"r","j":{"k":[1]},"jb":{"k":[1]},
		"raw":"AQL/","d":"2024-02-29","t":"12:30","ttz":"12:30:00","ts":"2024-02-29 12:34:56","tstz":"2026-12-02 04:20:23.123",
		"ia":"[1,2]","ta":["a","b"],"ba":["AQL/"],"tsa":["2026-12-02 04:20:23"],"ma":["sad"],"jba":[{"a":1}]}`
	ptWant(t, "create", p.one("alice", "c1", ptCreate("typed_values", id, device)), PushStatusApplied, "")
	snapshot := func() string {
		var row string
		pgtest.QueryRow(t, p.db.Super, `SELECT (to_jsonb(x) - 'updated_at')::text FROM typed_values x WHERE id = $1::uuid`, id).Scan(&row)
		return row
	}
	before := snapshot()

	res := p.one("alice", "c1", ptCreate("typed_values", id, `{}`))
	ptWant(t, "create of the existing row", res, PushStatusConflict, reasonRecordExists)
	if res.ServerVersion == nil {
		t.Fatal("no server_version")
	}
	var server map[string]json.RawMessage
	if err := json.Unmarshal(res.ServerVersion.Data, &server); err != nil {
		t.Fatal(err)
	}
	for col, want := range map[string]string{"raw": `"\\x0102ff"`, "i8": `9007199254740993`, "b": `true`} {
		if string(server[col]) != want {
			t.Errorf("server_version %s = %s, want %s", col, server[col], want)
		}
	}
	var ts time.Time
	pgtest.QueryRow(t, p.db.Super, `SELECT updated_at FROM typed_values WHERE id = $1::uuid`, id).Scan(&ts)
	back := ptUpdate("typed_values", id, string(res.ServerVersion.Data), ptFuture())
	back.BaseUpdatedAt = &ts
	ptWant(t, "the delivered row pushed back", p.one("alice", "c1", back), PushStatusApplied, "")
	if after := snapshot(); after != before {
		t.Errorf("pushing the delivered row back changed it:\nbefore %s\n after %s", before, after)
	}
	for col, want := range map[string]string{"raw": "0102ff", "tstz": "2026-12-02 04:20:23.123", "b": "true", "ia": "{1,2}", "ba": "{0102ff}"} {
		if got := tvRead(t, p, col, id); got == nil || *got != want {
			t.Errorf("%s = %v, want %q", col, ptStr(got), want)
		}
	}
}

// TestPushProtectedTypedValues: a protected column repeated unchanged in
// an update, in another form of the same value (1 for true, base64 for the
// stored bytes, SQLite's text for the stored instant, a bigint as a
// string), is accepted; a changed value or a malformed one is not.
func TestPushProtectedTypedValues(t *testing.T) {
	t.Parallel()
	db := pgtest.NewMigratedDatabase(t)
	pgtest.Exec(t, db.Super, `CREATE TABLE guarded (id text PRIMARY KEY, user_id text NOT NULL, label text,
		flag boolean, blob bytea, checked_at timestamptz, day date, big bigint, updated_at timestamptz NOT NULL DEFAULT now())`)
	reg := NewRegistry()
	protected := []string{"flag", "blob", "checked_at", "day", "big"}
	reg.Register(&TableConfig{TableName: "guarded", OwnerColumn: "user_id", ProtectedColumns: protected})
	p := ptEngine(t, db, db.Super, reg, nil)
	p.register("alice", "c1")
	ptWant(t, "create", p.one("alice", "c1", ptCreate("guarded", "g1", `{"label":"a"}`)), PushStatusApplied, "")
	pgtest.Exec(t, db.Super, `SET TIME ZONE 'Europe/Paris'; UPDATE guarded SET flag = true, blob = '\x0102ff', checked_at = '2026-01-02 03:04:05.678+00',
		day = '2026-01-02', big = 9007199254740993 WHERE id = 'g1'; RESET TIME ZONE`)

	same := map[string][]string{
		"flag":       {`true`, `1`, `1.0`},
		"blob":       {`"\\x0102ff"`, `"\\x0102FF"`, `"AQL/"`},
		"checked_at": {`"2026-01-02T03:04:05.678Z"`, `"2026-01-02 03:04:05.678"`, `"2026-01-02T04:04:05.678+01:00"`},
		"day":        {`"2026-01-02"`},
		"big":        {`9007199254740993`, `"9007199254740993"`},
	}
	for _, col := range slices.Sorted(maps.Keys(same)) {
		for _, v := range same[col] {
			ptWant(t, col+" = "+v, p.one("alice", "c1", ptUpdate("guarded", "g1", `{"label":"b","`+col+`":`+v+`}`, ptFuture())), PushStatusApplied, "")
		}
	}
	for _, c := range []struct{ col, value, msg string }{
		{"flag", `0`, "is managed by the server"},
		{"flag", `"true"`, "expects true, false, 0 or 1"},
		{"blob", `"AQL+"`, "is managed by the server"},
		{"blob", `12`, "expects bytes"},
		{"checked_at", `"2026-01-02 03:04:05"`, "is managed by the server"},
		{"checked_at", `"soon"`, "expects a timestamp"},
		{"day", `"2026-01-03"`, "is managed by the server"},
		{"big", `9007199254740992`, "is managed by the server"},
	} {
		res := p.one("alice", "c1", ptUpdate("guarded", "g1", `{"label":"c","`+c.col+`":`+c.value+`}`, ptFuture()))
		if res.Status != PushStatusRejectedTerminal || res.ReasonCode != reasonInvalidData || !strings.Contains(res.Message, c.col) || !strings.Contains(res.Message, c.msg) {
			t.Errorf("%s = %s: %s/%s %q, want invalid_data naming the column and %q", c.col, c.value, res.Status, res.ReasonCode, res.Message, c.msg)
		}
	}
}

// TestPushProtectedArrays: protected array columns with defaults. A
// create may give a protected column its default as the contract gives it
// (JSON text, as a string or as the array) or as PostgreSQL's array text,
// which devices that built their tables from an earlier contract hold; an
// update may repeat the stored array in any of these forms (the text read
// by PostgreSQL). Before, the text was refused as invalid_data, and a
// device's create or edit of such a row was dropped for good.
func TestPushProtectedArrays(t *testing.T) {
	t.Parallel()
	db := pgtest.NewMigratedDatabase(t)
	pgtest.Exec(t, db.Super, `CREATE DOMAIN nonempty AS text[] CHECK (cardinality(VALUE) > 0);
		CREATE TABLE shelves (id text PRIMARY KEY, user_id text NOT NULL, label text,
		tags text[] NOT NULL DEFAULT '{}', ranks int[] DEFAULT '{1,2}', kept nonempty DEFAULT '{a}',
		updated_at timestamptz NOT NULL DEFAULT now())`)
	reg := NewRegistry()
	reg.Register(&TableConfig{TableName: "shelves", OwnerColumn: "user_id", ProtectedColumns: []string{"tags", "ranks", "kept"}})
	p := ptEngine(t, db, db.Super, reg, nil)
	p.register("alice", "c1")

	for id, data := range map[string]string{
		"old-sdk": `{"label":"a","tags":"{}","ranks":"{1,2}"}`,
		"sdk":     `{"label":"a","tags":"[]","ranks":"[1,2]"}`,
		"go":      `{"label":"a","tags":[],"ranks":[1,2]}`,
	} {
		ptWant(t, "create "+id, p.one("alice", "c1", ptCreate("shelves", id, data)), PushStatusApplied, "")
	}
	for _, c := range []struct{ data, msg string }{
		{`{"tags":"{x}"}`, `column "tags" is managed by the server`},
		{`{"ranks":"{2,1}"}`, `column "ranks" is managed by the server`},
		{`{"ranks":[2,1]}`, `column "ranks" is managed by the server`},
	} {
		res := p.one("alice", "c1", ptCreate("shelves", ptID(), c.data))
		if res.Status != PushStatusRejectedTerminal || res.ReasonCode != reasonInvalidData || !strings.Contains(res.Message, c.msg) {
			t.Errorf("create %s: %s/%s %q, want invalid_data %q", c.data, res.Status, res.ReasonCode, res.Message, c.msg)
		}
	}

	pgtest.Exec(t, db.Super, `UPDATE shelves SET tags = '{"a b",NULL}' WHERE id = 'old-sdk'`)
	for _, v := range []string{`"{\"a b\",NULL}"`, `" { \"a b\" , null } "`, `"[\"a b\",null]"`, `["a b",null]`} {
		ptWant(t, "tags = "+v, p.one("alice", "c1", ptUpdate("shelves", "old-sdk", `{"label":"b","tags":`+v+`,"ranks":"{1,2}"}`, ptFuture())), PushStatusApplied, "")
	}
	for _, c := range []struct{ value, msg string }{
		{`"{\"a b\"}"`, `column "tags" is managed by the server`},
		{`"{a,b}"`, `column "tags" is managed by the server`},
		{`"{\"a b\",NULL"`, `column "tags" expects a JSON array (or a string holding one, as JSON or as PostgreSQL's array text) of JSON strings, got "{\"a b\",NULL" (malformed array text: a missing "}")`},
	} {
		res := p.one("alice", "c1", ptUpdate("shelves", "old-sdk", `{"label":"c","tags":`+c.value+`}`, ptFuture()))
		if res.Status != PushStatusRejectedTerminal || res.ReasonCode != reasonInvalidData || !strings.Contains(res.Message, c.msg) {
			t.Errorf("tags = %s: %s/%s %q, want invalid_data %q", c.value, res.Status, res.ReasonCode, res.Message, c.msg)
		}
	}
	// Text the column's domain refuses is not the stored value either (it
	// was answered internal_error: review).
	res := p.one("alice", "c1", ptUpdate("shelves", "old-sdk", `{"label":"c","kept":"{}"}`, ptFuture()))
	if res.Status != PushStatusRejectedTerminal || res.ReasonCode != reasonInvalidData || !strings.Contains(res.Message, `column "kept" is managed by the server`) {
		t.Errorf(`kept = "{}": %s/%s %q, want invalid_data, managed by the server`, res.Status, res.ReasonCode, res.Message)
	}
	res = p.one("alice", "c1", ptUpdate("shelves", "old-sdk", `{"label":"c","ranks":"{1,x}"}`, ptFuture()))
	if res.Status != PushStatusRejectedTerminal || res.ReasonCode != reasonInvalidData || !strings.Contains(res.Message, `column "ranks" is managed by the server`) {
		t.Errorf(`ranks = "{1,x}": %s/%s %q, want invalid_data, managed by the server`, res.Status, res.ReasonCode, res.Message)
	}
	var label, tags, ranks string
	pgtest.QueryRow(t, db.Super, `SELECT label, tags::text, ranks::text FROM shelves WHERE id = 'old-sdk'`).Scan(&label, &tags, &ranks)
	if label != "b" || tags != `{"a b",NULL}` || ranks != "{1,2}" {
		t.Errorf("after the pushes, the row holds label %q, tags %s, ranks %s; want b, {\"a b\",NULL}, {1,2}", label, tags, ranks)
	}
}

// TestByteaOutputEscape: with bytea_output=escape on the database, the rows
// a device receives (a conflict's server_version; a snapshot's or a pull's
// rows, read in transactions that start with readContextSQL) still carry
// bytes in hex, the form push reads back as bytes.
func TestByteaOutputEscape(t *testing.T) {
	t.Parallel()
	p := tvEnv(t)
	var name string
	pgtest.QueryRow(t, p.db.Super, `SELECT current_database()`).Scan(&name)
	pgtest.Exec(t, p.db.Super, `ALTER DATABASE `+pgx.Identifier{name}.Sanitize()+` SET bytea_output = 'escape'`)
	p.db.Super.SetMaxIdleConns(0) // new connections take the setting
	p.db.Super.SetMaxIdleConns(2)
	var out string
	pgtest.QueryRow(t, p.db.Super, `SELECT current_setting('bytea_output')`).Scan(&out)
	if out != "escape" {
		t.Fatalf("bytea_output %q on a new connection", out)
	}
	id := ptID()
	ptWant(t, "create", p.one("alice", "c1", ptCreate("typed_values", id, `{"s":"x","req":"r","raw":"YWJjZA=="}`)), PushStatusApplied, "")
	res := p.one("alice", "c1", ptCreate("typed_values", id, `{}`))
	if res.ServerVersion == nil || !strings.Contains(string(res.ServerVersion.Data), `"raw":"\\x61626364"`) {
		t.Errorf("conflict server_version under bytea_output=escape: %+v", res.ServerVersion)
	}
	// Snapshots and pulls read rows in transactions that start with
	// readContextSQL.
	tx, err := p.db.Super.BeginTx(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback() }()
	var dummy any
	cols := strings.Count(readContextSQL, "set_config(")
	dest := make([]any, cols)
	for i := range dest {
		dest[i] = &dummy
	}
	if err := tx.QueryRow(readContextSQL, "alice").Scan(dest...); err != nil {
		t.Fatal(err)
	}
	var text string
	if err := tx.QueryRow(`SELECT raw::text FROM typed_values WHERE id = $1::uuid`, id).Scan(&text); err != nil || text != `\x61626364` {
		t.Errorf("a read transaction reads bytea as %q (%v), want hex", text, err)
	}
}

// TestIntrospectReadsEncoding: the value specs of a table's columns know
// whether the database's encoding is UTF8 (see valueSpec.serverUTF8).
func TestIntrospectReadsEncoding(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDatabase(t)
	pgtest.Exec(t, db.Super, `CREATE TABLE docs (id text PRIMARY KEY, meta jsonb)`)
	reg := NewRegistry()
	reg.Register(&TableConfig{TableName: "docs"})
	snap, err := introspect(t.Context(), db.Super, reg)
	if err != nil {
		t.Fatal(err)
	}
	if c := snap.info["docs"].column("meta"); c == nil || !c.value.serverUTF8 {
		t.Errorf("meta's spec in a UTF8 database: %+v, want serverUTF8", c)
	}
}
