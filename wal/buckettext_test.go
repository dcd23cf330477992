package wal

import (
	"testing"

	"github.com/synchrosync/synchro/internal/bucket"
	"github.com/synchrosync/synchro/internal/pgtest"
)

// bucketTextCase is one column value as each path sees it. The change
// capture decodes the text pgoutput sends (wire, the type's output
// function) into a typed value (decodeText), or reads a row through
// row_to_json (the backfill, a rule-failure replay, the children of a
// moved parent), which the engine's pull does too for a custom
// OwnershipResolver; the engine reads ownership and parent key columns as
// column::text (text), and the read path compares bucket ids with
// prefix || column::text. bucket.Text must turn every form into text.
type bucketTextCase struct {
	typ  string // the SQL type
	oid  uint32 // its type OID, as pgoutput's Relation message gives it
	wire string // the output function's text, as pgoutput sends it
	text string // column::text
	json string // to_json(column), as row_to_json embeds it

	// stream and rowJSON, when set, are what the change capture's
	// typed value and the row_to_json value give instead of text: known
	// differences, each explained by why.
	stream, rowJSON, why string
}

// bucketTextCases covers every Go type the decoder produces (string,
// int64, bool, json.Number, float64, json.RawMessage) and the forms
// row_to_json gives (string, json.Number, bool, nested values).
// TestBucketTextCasesArePostgres checks the texts against the server.
var bucketTextCases = []bucketTextCase{
	{typ: "text", oid: 25, wire: "héllo", text: "héllo", json: `"héllo"`},
	{typ: "text", oid: 25, wire: "", text: "", json: `""`},
	{typ: "uuid", oid: 2950, wire: "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", text: "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", json: `"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"`},
	{typ: "smallint", oid: oidInt2, wire: "7", text: "7", json: "7"},
	{typ: "integer", oid: oidInt4, wire: "-42", text: "-42", json: "-42"},
	{typ: "bigint", oid: oidInt8, wire: "-9223372036854775808", text: "-9223372036854775808", json: "-9223372036854775808"},
	{typ: "boolean", oid: oidBool, wire: "t", text: "true", json: "true"},
	{typ: "boolean", oid: oidBool, wire: "f", text: "false", json: "false"},
	{typ: "numeric", oid: oidNumeric, wire: "1.50", text: "1.50", json: "1.50"},
	{typ: "numeric", oid: oidNumeric, wire: "12345678901234567890.1234567890", text: "12345678901234567890.1234567890", json: "12345678901234567890.1234567890"},
	{typ: "numeric", oid: oidNumeric, wire: "NaN", text: "NaN", json: `"NaN"`},
	{typ: "double precision", oid: oidFloat8, wire: "1.5", text: "1.5", json: "1.5"},
	{typ: "double precision", oid: oidFloat8, wire: "1234567", text: "1234567", json: "1234567"},
	{typ: "double precision", oid: oidFloat8, wire: "123456789012345", text: "123456789012345", json: "123456789012345"},
	{typ: "double precision", oid: oidFloat8, wire: "1e+15", text: "1e+15", json: "1e+15"},
	{typ: "double precision", oid: oidFloat8, wire: "1.234567890123456e+15", text: "1.234567890123456e+15", json: "1.234567890123456e+15"},
	{typ: "double precision", oid: oidFloat8, wire: "0.0001", text: "0.0001", json: "0.0001"},
	{typ: "double precision", oid: oidFloat8, wire: "1e-05", text: "1e-05", json: "1e-05"},
	{typ: "double precision", oid: oidFloat8, wire: "-0", text: "-0", json: "-0"},
	{typ: "double precision", oid: oidFloat8, wire: "Infinity", text: "Infinity", json: `"Infinity"`},
	{typ: "double precision", oid: oidFloat8, wire: "NaN", text: "NaN", json: `"NaN"`},
	{typ: "real", oid: oidFloat4, wire: "0.1", text: "0.1", json: "0.1"},
	{typ: "real", oid: oidFloat4, wire: "123456", text: "123456", json: "123456"},
	{typ: "real", oid: oidFloat4, wire: "1.5e-05", text: "1.5e-05", json: "1.5e-05"},
	{typ: "real", oid: oidFloat4, wire: "1e+06", text: "1e+06", json: "1e+06", stream: "1000000",
		why: "the decoder gives real as float64, printed as double precision prints it"},
	{typ: "jsonb", oid: oidJSONB, wire: `{"a": [1, 2.50]}`, text: `{"a": [1, 2.50]}`, json: `{"a": [1, 2.50]}`, rowJSON: "map[a:[1 2.50]]",
		why: "row_to_json embeds the document, which decodes to a map"},
	{typ: "json", oid: oidJSON, wire: ` 5 `, text: ` 5 `, json: ` 5 `, rowJSON: "5",
		why: "row_to_json embeds the document, which decodes to its number"},
	{typ: "bytea", oid: 17, wire: `\x0102`, text: `\x0102`, json: `"\\x0102"`},
	{typ: "date", oid: 1082, wire: "2024-01-02", text: "2024-01-02", json: `"2024-01-02"`},
	{typ: "timestamp with time zone", oid: 1184, wire: "2024-01-02 03:04:05.5+00", text: "2024-01-02 03:04:05.5+00", json: `"2024-01-02T03:04:05.5+00:00"`,
		rowJSON: "2024-01-02T03:04:05.5+00:00", why: "row_to_json writes timestamps in ISO 8601"},
}

// TestBucketTextPaths checks that the change capture and the engine turn
// the same column value into the same bucket-id text, whichever form they
// hold it in.
func TestBucketTextPaths(t *testing.T) {
	t.Parallel()
	for _, c := range bucketTextCases {
		name := c.typ + " " + c.text
		// The engine: the column read as text, or received as text.
		if got, ok := bucket.Text(c.text); got != c.text || ok != (c.text != "") {
			t.Errorf("%s: engine text %q gives %q, %v", name, c.text, got, ok)
		}
		// The change capture's stream: the decoded value.
		v, err := decodeText(c.oid, []byte(c.wire), c.wire)
		if err != nil {
			t.Errorf("%s: decodeText(%d, %q): %v", name, c.oid, c.wire, err)
			continue
		}
		want := c.text
		if c.stream != "" {
			want = c.stream
		}
		if got, _ := bucket.Text(v); got != want {
			t.Errorf("%s: decoded %T(%v) gives %q, want %q", name, v, v, got, want)
		}
		// Rows read through row_to_json (the change capture's backfill and
		// replay, the engine's pull for a custom OwnershipResolver).
		row, err := decodeRow(`{"v": ` + c.json + `}`)
		if err != nil {
			t.Errorf("%s: decoding %s: %v", name, c.json, err)
			continue
		}
		want = c.text
		if c.rowJSON != "" {
			want = c.rowJSON
		}
		if got, _ := bucket.Text(row["v"]); got != want {
			t.Errorf("%s: row_to_json value %T(%v) gives %q, want %q", name, row["v"], row["v"], got, want)
		}
	}
}

// TestBucketTextCasesArePostgres checks bucketTextCases against the
// server: each value's output text, ::text, to_json and type OID.
func TestBucketTextCasesArePostgres(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDatabase(t)
	for _, c := range bucketTextCases {
		var wire, text, js string
		var oid uint32
		q := `SELECT format('%s', v), v::text, to_json(v)::text, pg_typeof(v)::oid FROM (SELECT CAST($1::text AS ` + c.typ + `) AS v) AS s`
		if err := db.Super.QueryRowContext(t.Context(), q, c.wire).Scan(&wire, &text, &js, &oid); err != nil {
			t.Fatalf("%s %q: %v", c.typ, c.wire, err)
		}
		if wire != c.wire || text != c.text || js != c.json || oid != c.oid {
			t.Errorf("%s %q: server gives output %q, ::text %q, to_json %s, OID %d; the case says %q, %q, %s, %d",
				c.typ, c.wire, wire, text, js, oid, c.wire, c.text, c.json, c.oid)
		}
	}
}
