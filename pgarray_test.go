package synchro

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/synchrosync/synchro/internal/pgtest"
)

// paCases are texts for a text[] column: json is the array parsePGArray
// reads (as JSON, every element a string), or err a part of its refusal.
// lenient marks texts parsePGArray accepts and PostgreSQL refuses (the
// bounds are left to PostgreSQL), strict ones it refuses and PostgreSQL
// accepts (PostgreSQL 15 reads {{{1}},{2}} as an empty array). They seed
// FuzzParsePGArray too.
var paCases = []struct {
	text, json, err         string
	bounds, lenient, strict bool
}{
	{text: `{}`, json: `[]`},
	{text: ` { } `, json: `[]`},
	{text: `{a}`, json: `["a"]`},
	{text: `{a,b}`, json: `["a","b"]`},
	{text: `{ a , b }`, json: `["a","b"]`},
	{text: `{a b}`, json: `["a b"]`},
	{text: `{  a  b  }`, json: `["a  b"]`},
	{text: `{\ a}`, json: `[" a"]`},
	{text: `{a\ }`, json: `["a "]`},
	{text: `{a\,b}`, json: `["a,b"]`},
	{text: `{NULL,"NULL",\NULL,null, NuLl }`, json: `[null,"NULL","NULL",null,null]`},
	{text: `{"a" , b}`, json: `["a","b"]`},
	{text: `{"",""}`, json: `["",""]`},
	{text: `{ "" }`, json: `[""]`},
	{text: `{"a\"b","c\\d","{x}",",","'"}`, json: `["a\"b","c\\d","{x}",",","'"]`},
	{text: `{'a'}`, json: `["'a'"]`},
	{text: `{é,🌍}`, json: `["é","🌍"]`},
	{text: "{a\tb,\nc\n}", json: `["a\tb","c"]`},
	{text: `{{"a"}}`, json: `[["a"]]`},
	{text: `{{1,2},{3,4}}`, json: `[["1","2"],["3","4"]]`},
	{text: `{{{1}}}`, json: `[[["1"]]]`},
	{text: `{{{{{{1}}}}}}`, json: `[[[[[["1"]]]]]]`},
	{text: `{{1,NULL},{NULL,4}}`, json: `[["1",null],[null,"4"]]`},
	{text: `[1:2]={a,b}`, json: `["a","b"]`, bounds: true},
	{text: `[2]={a,b}`, json: `["a","b"]`, bounds: true},
	{text: `[0:1] = {a,b}`, json: `["a","b"]`, bounds: true},
	{text: ` [0:0][1:2]={{a,b}}`, json: `[["a","b"]]`, bounds: true},
	{text: `[1:3]={a,b}`, json: `["a","b"]`, bounds: true, lenient: true},
	{text: ``, err: `it does not start with "{"`},
	{text: `a`, err: `it does not start with "{"`},
	{text: `[1,2]`, err: "malformed dimension bounds"},
	{text: `[x]={a}`, err: "malformed dimension bounds"},
	{text: `{`, err: `a missing "}"`},
	{text: `{a`, err: `a missing "}"`},
	{text: `{a,`, err: `a missing "}"`},
	{text: `{{}}`, err: "an empty sub-array"},
	{text: `{{},{}}`, err: "an empty sub-array"},
	{text: `{{1},{}}`, err: "an empty sub-array"},
	{text: `{1,{2}}`, err: "elements and sub-arrays mixed"},
	{text: `{{1},2}`, err: "elements and sub-arrays mixed"},
	{text: `{{a,b},{c}}`, err: "sub-arrays of different lengths"},
	{text: `{{{1}},{2}}`, err: "sub-arrays of different lengths", strict: true},
	{text: `{{{{{{{1}}}}}}}`, err: "more than 6 dimensions"},
	{text: `{"a"b}`, err: `an unexpected 'b' after an element`},
	{text: `{a"b"}`, err: `an unexpected '"' in an element`},
	{text: `{a{b}}`, err: `an unexpected '{' in an element`},
	{text: `{,}`, err: "an empty element"},
	{text: `{a,}`, err: "an empty element"},
	{text: `{a,,b}`, err: "an empty element"},
	{text: `{a}x`, err: `text follows the closing "}"`},
	{text: `{a}{b}`, err: `text follows the closing "}"`},
	{text: `{a"}`, err: `an unexpected '"' in an element`},
	{text: `{"}`, err: "an unterminated quoted element"},
	{text: `{"a\`, err: "a backslash at the end"},
	{text: `{\}`, err: `a missing "}"`},
	{text: `{a\`, err: "a backslash at the end"},
}

// paJSON writes a parsed array as JSON, every element a string.
func paJSON(t *testing.T, arr pgArray) string {
	t.Helper()
	out, ok := appendArrayJSON(nil, valueSpec{kind: valueString, array: true}, arr.items)
	if !ok {
		t.Fatalf("appendArrayJSON refused %+v", arr)
	}
	return string(out)
}

// TestParsePGArray reads PostgreSQL's array text byte by byte.
func TestParsePGArray(t *testing.T) {
	t.Parallel()
	for _, c := range paCases {
		arr, err := parsePGArray(c.text)
		switch {
		case c.err != "":
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%q: %v, want refused with %q", c.text, err, c.err)
			}
		case err != nil:
			t.Errorf("%q: refused: %v", c.text, err)
		default:
			if got := paJSON(t, arr); got != c.json || arr.bounds != c.bounds {
				t.Errorf("%q: read as %s (bounds %v), want %s (bounds %v)", c.text, got, arr.bounds, c.json, c.bounds)
			}
		}
	}
}

// TestParsePGArrayAsPostgres checks parsePGArray against PostgreSQL's own
// array_in: each text is accepted by both or refused by both (but for the
// lenient and strict ones), with the same elements.
func TestParsePGArrayAsPostgres(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDatabase(t)
	for _, c := range paCases {
		var pg *string
		err := db.Super.QueryRowContext(t.Context(), `SELECT array_to_json($1::text::text[])::text`, c.text).Scan(&pg)
		switch {
		case c.strict:
		case c.err != "" || c.lenient:
			if err == nil {
				t.Errorf("%q: PostgreSQL reads it as %s; parsePGArray refuses it (%s)", c.text, *pg, c.err)
			}
		case err != nil:
			t.Errorf("%q: PostgreSQL refuses it (%v); parsePGArray reads it as %s", c.text, err, c.json)
		default:
			var want, got any
			if json.Unmarshal([]byte(*pg), &want) != nil || json.Unmarshal([]byte(c.json), &got) != nil {
				t.Fatalf("%q: unreadable JSON %s or %s", c.text, *pg, c.json)
			}
			if b1, b2 := mustMarshal(t, want), mustMarshal(t, got); b1 != b2 {
				t.Errorf("%q: PostgreSQL reads it as %s, parsePGArray as %s", c.text, b1, b2)
			}
		}
	}
}

func mustMarshal(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// FuzzParsePGArray runs parsePGArray on arbitrary text: it must never
// panic, and an array it reads must make valid JSON no deeper than
// PostgreSQL's arrays.
func FuzzParsePGArray(f *testing.F) {
	for _, c := range paCases {
		f.Add(c.text)
	}
	f.Fuzz(func(t *testing.T, text string) {
		arr, err := parsePGArray(text)
		if err != nil {
			return
		}
		out, ok := appendArrayJSON(nil, valueSpec{kind: valueString, array: true}, arr.items)
		if !ok || !json.Valid(out) {
			t.Fatalf("%q: read as %q, not JSON", text, out)
		}
		if _, err := convertValue(valueSpec{kind: valueAny, array: true}, out); err != nil && strings.Contains(err.Error(), "dimensions") {
			t.Fatalf("%q: read as %s: %v", text, out, err)
		}
	})
}
