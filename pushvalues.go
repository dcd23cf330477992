package synchro

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/synchrosync/synchro/internal/jsonbtext"
	"github.com/synchrosync/synchro/internal/textscan"
)

// This file checks the values of a pushed record against the JSON forms
// their columns accept (the table in the package documentation, "Pushed
// values") and rewrites the accepted ones into the form from which
// jsonb_populate_record builds exactly that value: integers as their
// digits, booleans as true or false, bytes as PostgreSQL's hex text,
// timestamps without a zone with "+00:00" (UTC), arrays sent as JSON text
// as the arrays themselves (arrays sent as PostgreSQL's array text stay
// that text, which PostgreSQL reads, but for arrays of dates and times).
// Anything else is refused, naming the column and the form it expects,
// before any statement runs.

// valueKind is the family of JSON forms a column (or an array's element)
// accepts.
type valueKind uint8

const (
	valueString      valueKind = iota // text, varchar, uuid, enums, citext, inet, ...: a JSON string
	valueInt2                         // smallint
	valueInt4                         // integer
	valueInt8                         // bigint
	valueFloat4                       // real
	valueFloat8                       // double precision
	valueNumeric                      // numeric
	valueBool                         // boolean
	valueJSON                         // json, jsonb: any JSON value
	valueBytes                        // bytea
	valueDate                         // date
	valueTime                         // time without time zone
	valueTimeTZ                       // time with time zone
	valueTimestamp                    // timestamp without time zone
	valueTimestampTZ                  // timestamp with time zone
	// valueAny is the element of an array whose element type is not a
	// built-in one (enums, domains, composites, extension types): any JSON
	// value but an array, left to PostgreSQL.
	valueAny
)

// valueSpec says which JSON forms a column accepts.
type valueSpec struct {
	kind valueKind
	// array: a JSON array (or a string holding one, as JSON or as
	// PostgreSQL's array text) whose elements are kind's forms or null,
	// nested for more dimensions.
	array bool
	// noInfinity: a numeric with a precision, which cannot hold
	// "Infinity".
	noInfinity bool
	// serverUTF8: the database's encoding is UTF8, so jsonb takes an
	// escape of any character (a json column's string holding an object
	// with one becomes the object: jsonFromString).
	serverUTF8 bool
}

// inDatabase is spec in a database whose encoding is UTF8, or not.
func (spec valueSpec) inDatabase(utf8 bool) valueSpec {
	spec.serverUTF8 = utf8
	return spec
}

// maxArrayDims is the most dimensions a PostgreSQL array has.
const maxArrayDims = 6

// scalarKinds maps the built-in base types (schema pg_catalog, by typname)
// whose values are not plain strings to their kind.
var scalarKinds = map[string]valueKind{
	"bool":        valueBool,
	"int2":        valueInt2,
	"int4":        valueInt4,
	"int8":        valueInt8,
	"float4":      valueFloat4,
	"float8":      valueFloat8,
	"numeric":     valueNumeric,
	"json":        valueJSON,
	"jsonb":       valueJSON,
	"bytea":       valueBytes,
	"date":        valueDate,
	"time":        valueTime,
	"timetz":      valueTimeTZ,
	"timestamp":   valueTimestamp,
	"timestamptz": valueTimestampTZ,
}

// valueSpecOf returns what a column whose type, after looking through
// domains, is t accepts. It follows mapLogicalType: arrays are arrays of
// their element's forms (a built-in element type is known by the array
// type's name, "_int4"; another one is valueAny); enums, ranges and the
// other types read from text are strings. A numeric (or numeric array)
// with a modifier, on the column or declared by a domain, holds no
// infinity.
func valueSpecOf(t catalogType) valueSpec {
	builtin := t.schema == "pg_catalog"
	spec := valueSpec{kind: valueString, noInfinity: builtin && (t.name == "numeric" || t.name == "_numeric") && t.typmod >= 0}
	if t.arrayDims > 0 || t.category == "A" || (t.elem != 0 && t.length == -1) {
		spec.array, spec.kind = true, valueAny
		if elem, ok := strings.CutPrefix(t.name, "_"); ok && builtin {
			spec.kind = valueString
			if k, ok := scalarKinds[elem]; ok {
				spec.kind = k
			}
		}
		return spec
	}
	if k, ok := scalarKinds[t.name]; ok && builtin && t.typtype == "b" {
		spec.kind = k
	}
	return spec
}

// valueError is a value a column does not accept: what it expects and what
// came, and for an array's element, which one.
type valueError struct {
	path    string // "[2]", "[0][1]": the element of an array, "" for the value itself
	expects string
	got     string
}

func (e *valueError) Error() string {
	if e.path != "" {
		return "element " + e.path + " expects " + e.expects + ", got " + e.got
	}
	return "expects " + e.expects + ", got " + e.got
}

// convertFields checks the values of a pushed create or update (fields,
// after checkColumns, and the protected values it set aside) against their
// columns and replaces each accepted value with its converted form. The
// primary key is left alone (checkColumns compared it with the record id,
// and the engine writes the id). Null passes for every column: a NOT NULL
// column refuses it in PostgreSQL (create_failed or update_failed,
// terminal), as it refuses a create that leaves the column out. The error
// names the first column refused, in name order.
func convertFields(info *tableInfo, fields, protected map[string]json.RawMessage) error {
	for _, set := range []map[string]json.RawMessage{fields, protected} {
		if len(set) == 0 {
			continue
		}
		names := slices.Collect(maps.Keys(set))
		if len(names) > 1 {
			slices.Sort(names)
		}
		for _, name := range names {
			col := info.column(name)
			if col == nil || name == info.pk {
				continue
			}
			out, err := convertValue(col.value, set[name])
			if err != nil {
				return fmt.Errorf("column %q %w", name, err)
			}
			set[name] = out
		}
	}
	return nil
}

// convertValue checks one pushed value, which must be a single valid JSON
// value (decodeData made sure), against spec and returns it in the form
// jsonb_populate_record reads as the same value: raw itself when it is
// already, a rewritten copy otherwise. Null is returned as it is (the
// caller decides on NOT NULL). It never panics, whatever raw holds.
func convertValue(spec valueSpec, raw json.RawMessage) (json.RawMessage, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return nil, &valueError{expects: spec.expects(), got: "nothing"}
	}
	if err := checkJSONText(raw); err != nil {
		return nil, err
	}
	if raw[0] == 'n' {
		return raw, nil
	}
	if spec.array {
		return convertArray(spec, raw)
	}
	return convertScalar(spec, raw)
}

// jsonFromString returns the value of a json column pushed as the JSON
// string raw: the object or array its text holds, when it holds one, and
// the string itself otherwise. The SDKs store a json column's object or
// array in SQLite as its JSON text, and push the whole row back with that
// text as a string: taken as a string, the first edit of any other column
// of the row would turn the object into a string on the server.
func jsonFromString(raw []byte, serverUTF8 bool) []byte {
	s, ok := unquoteJSON(raw)
	if !ok {
		return raw
	}
	text := bytes.Trim([]byte(s), " \t\r\n") // JSON's whitespace, no other
	if len(text) == 0 || (text[0] != '{' && text[0] != '[') || !json.Valid(text) ||
		checkJSONText(text) != nil || !takes(jsonbtext.Judge(text), serverUTF8) {
		return raw // not an object's text, or one jsonb may refuse: the string
	}
	return text
}

// takes reports whether jsonb surely takes a text Judge answered v for, in
// a database whose encoding is UTF8 or not.
func takes(v jsonbtext.Verdict, serverUTF8 bool) bool {
	return v == jsonbtext.Surely || (v == jsonbtext.IfUTF8 && serverUTF8)
}

// checkJSONText refuses text PostgreSQL cannot hold in the jsonb the values
// travel in: invalid UTF-8, the escape \u0000, and UTF-16 surrogates that
// are not a pair.
func checkJSONText(raw []byte) error {
	if !utf8.Valid(raw) {
		return errors.New("holds text that is not valid UTF-8")
	}
	for i := bytes.IndexByte(raw, '\\'); i >= 0 && i+1 < len(raw); {
		if raw[i+1] != 'u' {
			i = nextBackslash(raw, i+2)
			continue
		}
		r, ok := hex4(raw, i+2)
		switch {
		case !ok:
			return errors.New("holds a malformed \\u escape")
		case r == 0:
			return errors.New(`holds the character \u0000, which PostgreSQL cannot store`)
		case r >= 0xD800 && r <= 0xDBFF:
			lo, ok := rune(0), i+7 < len(raw) && raw[i+6] == '\\' && raw[i+7] == 'u'
			if ok {
				lo, ok = hex4(raw, i+8)
			}
			if !ok || lo < 0xDC00 || lo > 0xDFFF {
				return errors.New("holds an unpaired UTF-16 surrogate escape")
			}
			i = nextBackslash(raw, i+12)
		case r >= 0xDC00 && r <= 0xDFFF:
			return errors.New("holds an unpaired UTF-16 surrogate escape")
		default:
			i = nextBackslash(raw, i+6)
		}
	}
	return nil
}

// nextBackslash returns the index of the first '\\' of raw at or after
// from, or -1.
func nextBackslash(raw []byte, from int) int {
	if from >= len(raw) {
		return -1
	}
	if j := bytes.IndexByte(raw[from:], '\\'); j >= 0 {
		return from + j
	}
	return -1
}

// hex4 reads the four hex digits of raw at i.
func hex4(raw []byte, i int) (rune, bool) {
	if i < 0 || i+4 > len(raw) {
		return 0, false
	}
	var r rune
	for _, c := range raw[i : i+4] {
		var d byte
		switch {
		case '0' <= c && c <= '9':
			d = c - '0'
		case 'a' <= c && c <= 'f':
			d = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			d = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(d)
	}
	return r, true
}

// convertScalar checks a value that is not null against a scalar kind.
func convertScalar(spec valueSpec, raw []byte) ([]byte, error) {
	fail := func() ([]byte, error) {
		return nil, &valueError{expects: spec.expects(), got: describeJSON(raw)}
	}
	c := raw[0]
	switch spec.kind {
	case valueJSON:
		if c == '"' {
			return jsonFromString(raw, spec.serverUTF8), nil
		}
		return raw, nil
	case valueAny:
		return raw, nil
	case valueString:
		if c != '"' {
			return fail()
		}
		return raw, nil
	case valueBool:
		switch {
		case c == 't' || c == 'f':
			return raw, nil
		case isNumberStart(c):
			n, ok := parseJSONNumber(raw)
			switch {
			case ok && n.digits == "":
				return []byte("false"), nil
			case ok && n.digits == "1" && n.exp == 0 && !n.neg:
				return []byte("true"), nil
			}
		}
		return fail()
	case valueInt2, valueInt4, valueInt8:
		text := raw
		if c == '"' && spec.kind == valueInt8 {
			s, ok := unquoteJSON(raw)
			if !ok {
				return fail()
			}
			text = []byte(s)
		} else if !isNumberStart(c) {
			return fail()
		}
		return convertInteger(spec, raw, text)
	case valueFloat4, valueFloat8, valueNumeric:
		text := raw
		if c == '"' {
			s, ok := unquoteJSON(raw)
			if !ok {
				return fail()
			}
			switch {
			case s == "NaN":
				return raw, nil
			case (s == "Infinity" || s == "-Infinity") && !(spec.kind == valueNumeric && spec.noInfinity):
				return raw, nil
			}
			text = []byte(s)
		} else if !isNumberStart(c) {
			return fail()
		}
		n, ok := parseJSONNumber(text)
		if !ok {
			return nil, &valueError{expects: spec.expects(), got: describeJSON(raw)}
		}
		if !n.fits(spec.kind, text) {
			return nil, &valueError{expects: spec.rangeExpects(), got: describeJSON(raw)}
		}
		return text, nil // a JSON number: a string's text becomes one
	case valueBytes:
		if c != '"' {
			return fail()
		}
		s, ok := unquoteJSON(raw)
		if !ok {
			return fail()
		}
		out, ok := convertBytes(raw, s)
		if !ok {
			return fail()
		}
		return out, nil
	case valueDate, valueTime, valueTimeTZ, valueTimestamp, valueTimestampTZ:
		if c != '"' {
			return fail()
		}
		s, ok := unquoteJSON(raw)
		if !ok {
			return fail()
		}
		out, ok := convertTemporal(spec.kind, raw, s)
		if !ok {
			return fail()
		}
		return out, nil
	}
	return fail()
}

// convertInteger checks an integer, whose text (a JSON number, also when
// it came as a string) is text, against the column's range and returns
// its digits; raw itself when they are what was sent.
func convertInteger(spec valueSpec, raw, text []byte) ([]byte, error) {
	n, ok := parseJSONNumber(text)
	if !ok || n.exp < 0 {
		return nil, &valueError{expects: spec.expects(), got: describeJSON(raw)}
	}
	var lo, hi int64
	switch spec.kind {
	case valueInt2:
		lo, hi = math.MinInt16, math.MaxInt16
	case valueInt4:
		lo, hi = math.MinInt32, math.MaxInt32
	default:
		lo, hi = math.MinInt64, math.MaxInt64
	}
	if n.digits == "" {
		if string(raw) == "0" {
			return raw, nil
		}
		return []byte("0"), nil
	}
	v, ok := n.int64()
	if !ok || v < lo || v > hi {
		return nil, &valueError{expects: spec.rangeExpects(), got: describeJSON(raw)}
	}
	out := strconv.AppendInt(nil, v, 10)
	if bytes.Equal(out, raw) {
		return raw, nil
	}
	return out, nil
}

// convertBytes reads bytes sent as PostgreSQL's hex text ("\x0102ff", the
// form pull delivers) or as standard base64 (with or without its padding)
// and returns them as the hex text, in lower case, that bytea's input
// reads; raw itself when it already is that.
func convertBytes(raw []byte, s string) ([]byte, bool) {
	if h, ok := strings.CutPrefix(s, `\x`); ok {
		if len(h)%2 != 0 {
			return nil, false
		}
		lower := true
		for i := 0; i < len(h); i++ {
			c := h[i]
			switch {
			case '0' <= c && c <= '9', 'a' <= c && c <= 'f':
			case 'A' <= c && c <= 'F':
				lower = false
			default:
				return nil, false
			}
		}
		if lower {
			return raw, true
		}
		return hexJSON(nil, []byte(strings.ToLower(h)), true), true
	}
	enc := base64.StdEncoding.Strict()
	if len(s)%4 != 0 {
		enc = base64.RawStdEncoding.Strict()
	}
	b, err := enc.DecodeString(s)
	if err != nil {
		return nil, false
	}
	return hexJSON(nil, b, false), true
}

// hexJSON appends to dst the JSON string "\\x<hex>" of b (already hex
// digits when isHex).
func hexJSON(dst, b []byte, isHex bool) []byte {
	dst = append(dst, `"\\x`...)
	if isHex {
		dst = append(dst, b...)
	} else {
		dst = hex.AppendEncode(dst, b)
	}
	return append(dst, '"')
}

// convertArray checks an array value: a JSON array, or a JSON string
// holding one as JSON text (the SDKs keep the arrays they pull as JSON
// text in SQLite and send that text back) or as PostgreSQL's array text
// (convertArrayText).
func convertArray(spec valueSpec, raw []byte) ([]byte, error) {
	fail := func() ([]byte, error) {
		return nil, &valueError{expects: spec.expects(), got: describeJSON(raw)}
	}
	arr := raw
	if raw[0] == '"' {
		s, ok := unquoteJSON(raw)
		if !ok {
			return fail()
		}
		arr = bytes.TrimSpace([]byte(s))
		if len(arr) == 0 || arr[0] != '[' || !json.Valid(arr) {
			return convertArrayText(spec, raw, s)
		}
		if err := checkJSONText(arr); err != nil {
			return nil, err
		}
	} else if raw[0] != '[' {
		return fail()
	}
	if spec.kind == valueJSON {
		// PostgreSQL decides where the dimensions of a json[] end.
		return arr, nil
	}
	out, _, err := convertArrayLevel(spec, arr, "", 1)
	return out, err
}

// convertArrayText checks an array value pushed as a JSON string (raw)
// holding PostgreSQL's array text s, such as "{}", "{1,2}" or
// `{"a b",NULL}`: what a device whose table was built from a schema
// contract that gave an array column's default in that form (as the
// contract did before it gave JSON text) holds for a row it made.
// PostgreSQL reads the text with the column's type (jsonb_to_record gives
// a string to the type's input function), so raw is returned as it is,
// once its braces and quotes are checked here for a message that names
// the column. Arrays of dates, times and timestamps are the exception:
// PostgreSQL would read their elements by the session's TimeZone and
// DateStyle, and take words such as "now"; their elements are checked as
// the strings of a JSON array are, and that JSON array is returned.
func convertArrayText(spec valueSpec, raw []byte, s string) ([]byte, error) {
	arr, err := parsePGArray(s)
	if err != nil {
		got := describeJSON(raw)
		if t := strings.TrimLeft(s, " \t\n\r\v\f"); t != "" && t[0] == '{' {
			got += " (malformed array text: " + err.Error() + ")"
		}
		return nil, &valueError{expects: spec.expects(), got: got}
	}
	switch spec.kind {
	case valueDate, valueTime, valueTimeTZ, valueTimestamp, valueTimestampTZ:
		if arr.bounds {
			return nil, &valueError{expects: spec.expects(), got: describeJSON(raw) + " (array text with dimension bounds)"}
		}
		elems, _ := appendArrayJSON(nil, spec, arr.items) // strings and nulls: always JSON
		out, _, err := convertArrayLevel(spec, elems, "", 1)
		return out, err
	}
	return raw, nil
}

// convertArrayLevel checks one dimension of an array (depth counts from 1)
// and returns it converted and its shape (its length, then its
// sub-arrays'). The recursion is bounded by maxArrayDims.
func convertArrayLevel(spec valueSpec, arr []byte, path string, depth int) ([]byte, []int, error) {
	var elems []json.RawMessage
	if err := json.Unmarshal(arr, &elems); err != nil {
		return nil, nil, &valueError{path: path, expects: "a JSON array", got: describeJSON(arr)}
	}
	if len(elems) == 0 {
		return arr, []int{0}, nil
	}
	elemSpec := valueSpec{kind: spec.kind, noInfinity: spec.noInfinity}
	first := bytes.TrimSpace(elems[0])
	nested := len(first) > 0 && first[0] == '['
	var (
		shape   []int
		changed bool
	)
	for i, e := range elems {
		e = bytes.TrimSpace(e)
		if len(e) == 0 {
			return nil, nil, &valueError{path: path, expects: "a JSON array", got: "nothing"}
		}
		elems[i] = e
		at := path + "[" + strconv.Itoa(i) + "]"
		if isNested := e[0] == '['; isNested != nested {
			want := "a value"
			if nested {
				want = "an array, as its first element is (every sub-array of a dimension has the same length)"
			}
			return nil, nil, &valueError{path: at, expects: want, got: describeJSON(e)}
		}
		var (
			out []byte
			err error
		)
		if nested {
			if depth >= maxArrayDims {
				return nil, nil, &valueError{path: at, expects: fmt.Sprintf("a value (arrays have at most %d dimensions)", maxArrayDims), got: "an array"}
			}
			var sub []int
			out, sub, err = convertArrayLevel(spec, e, at, depth+1)
			if err != nil {
				return nil, nil, err
			}
			if i == 0 {
				shape = append([]int{len(elems)}, sub...)
			} else if !slices.Equal(sub, shape[1:]) {
				return nil, nil, &valueError{path: at, expects: fmt.Sprintf("an array of length %d, as its first sibling (every sub-array of a dimension has the same length)", shape[1]), got: fmt.Sprintf("one of length %d", sub[0])}
			}
		} else {
			if e[0] == 'n' {
				continue
			}
			out, err = convertScalar(elemSpec, e)
			if err != nil {
				var ve *valueError
				if errors.As(err, &ve) {
					ve.path = at
				}
				return nil, nil, err
			}
		}
		if !bytes.Equal(out, e) {
			elems[i], changed = out, true
		}
	}
	if shape == nil {
		shape = []int{len(elems)}
	}
	if !changed {
		return arr, shape, nil
	}
	out := append(make([]byte, 0, len(arr)+16), '[')
	for i, e := range elems {
		if i > 0 {
			out = append(out, ',')
		}
		out = append(out, e...)
	}
	return append(out, ']'), shape, nil
}

// unquoteJSON returns the text of a JSON string.
func unquoteJSON(raw []byte) (string, bool) {
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return "", false
	}
	if inner := raw[1 : len(raw)-1]; bytes.IndexByte(inner, '\\') < 0 && bytes.IndexByte(inner, '"') < 0 {
		return string(inner), true
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", false
	}
	return s, true
}

// isNumberStart reports whether c starts a JSON number.
func isNumberStart(c byte) bool { return c == '-' || ('0' <= c && c <= '9') }

// jsonNumber is a number in JSON's grammar, read exactly: its value is
// ±digits × 10^exp.
type jsonNumber struct {
	neg bool
	// digits are the significant digits, without leading or trailing
	// zeros; "" for zero.
	digits string
	// exp is the exponent, clamped to ±maxNumberExp (a number beyond it is
	// beyond every type's range anyway).
	exp int64
}

// maxNumberExp bounds the exponents read, so that no arithmetic on them
// overflows.
const maxNumberExp = 1 << 40

// parseJSONNumber reads b as a number by the JSON grammar:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func parseJSONNumber(b []byte) (jsonNumber, bool) {
	var n jsonNumber
	i := 0
	if i < len(b) && b[i] == '-' {
		n.neg = true
		i++
	}
	intStart := i
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && '1' <= b[i] && b[i] <= '9':
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
	default:
		return n, false
	}
	intPart := b[intStart:i]
	var frac []byte
	if i < len(b) && b[i] == '.' {
		i++
		start := i
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
		if i == start {
			return n, false
		}
		frac = b[start:i]
	}
	var exp int64
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		neg := false
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			neg = b[i] == '-'
			i++
		}
		start := i
		for ; i < len(b) && '0' <= b[i] && b[i] <= '9'; i++ {
			if exp < maxNumberExp {
				exp = exp*10 + int64(b[i]-'0')
			}
		}
		if i == start {
			return n, false
		}
		if neg {
			exp = -exp
		}
	}
	if i != len(b) {
		return n, false
	}
	// The significant digits of intPart and frac, and the exponent of the
	// last one.
	exp -= int64(len(frac))
	lead := 0
	for lead < len(intPart) && intPart[lead] == '0' {
		lead++
	}
	var digits string
	if lead < len(intPart) {
		digits = string(intPart[lead:]) + string(frac)
	} else {
		f := 0
		for f < len(frac) && frac[f] == '0' {
			f++
		}
		digits = string(frac[f:])
	}
	trail := len(digits)
	for trail > 0 && digits[trail-1] == '0' {
		trail--
	}
	exp += int64(len(digits) - trail)
	n.digits = digits[:trail]
	if n.digits == "" {
		n.neg, exp = false, 0
	}
	n.exp = min(max(exp, -maxNumberExp), maxNumberExp)
	return n, true
}

// int64 returns the value of an integral number, reporting false when it
// is not one or is beyond int64.
func (n jsonNumber) int64() (int64, bool) {
	if n.exp < 0 || int64(len(n.digits))+n.exp > 19 {
		return 0, false
	}
	s := n.digits + strings.Repeat("0", int(n.exp))
	if n.neg {
		s = "-" + s
	}
	v, err := strconv.ParseInt(s, 10, 64)
	return v, err == nil
}

// PostgreSQL's numeric holds up to 131072 digits before the decimal point
// and 16383 after it.
const (
	numericMaxIntDigits  = 131072
	numericMaxFracDigits = 16383
)

// fits reports whether the number n, written text, is within the range of
// a float or numeric kind: the type's range for floats (a non-zero number
// that would read as zero is out of range, as PostgreSQL has it), the
// digits numeric holds for numeric.
func (n jsonNumber) fits(kind valueKind, text []byte) bool {
	if n.digits == "" {
		return true
	}
	if kind == valueNumeric {
		return int64(len(n.digits))+n.exp <= numericMaxIntDigits && -n.exp <= numericMaxFracDigits
	}
	// Cheap bounds first, so that ParseFloat never reads an absurd
	// exponent.
	mag := int64(len(n.digits)) + n.exp // the number is below 10^mag
	if mag > 400 || mag < -400 {
		return false
	}
	bits := 64
	if kind == valueFloat4 {
		bits = 32
	}
	f, err := strconv.ParseFloat(string(text), bits)
	return err == nil && f != 0 && !math.IsInf(f, 0)
}

// Temporal values.

// temporal is a date, time or timestamp as sent, read by parseTemporal.
type temporal struct {
	hasDate, hasTime, hasZone bool
	year, month, day          int // year as written (1 and above), bc for the years before 1
	bc                        bool
	hour, minute, second      int
	frac                      string // the digits of the fraction of a second, "" for none
	offset                    int    // zone offset in seconds east of UTC
	// end is where the date and time (with the zone) end in the text: a
	// " BC" may follow.
	end int
}

// astroYear is the year in astronomical numbering (1 BC is year 0).
func (t *temporal) astroYear() int {
	if t.bc {
		return 1 - t.year
	}
	return t.year
}

// parseTemporal reads a date, a timestamp (dateFirst) or a time of day,
// in the forms of the package documentation: a date YYYY-MM-DD (four to
// seven digits of year), then a time HH:MM[:SS[.fraction]] after "T", "t"
// or a space, then a zone ("Z", "z", ±HH, ±HH:MM, ±HHMM or ±HH:MM:SS) after
// a time; a date may end in " BC", as PostgreSQL writes them. Only the
// fields are checked here (a real day of the month, hour 00-23 or
// 24:00:00, minute and second 00-59, zone below 16 hours), not which parts
// a kind allows.
func parseTemporal(s string, dateFirst bool) (temporal, bool) {
	var t temporal
	p := textscan.Scanner{S: s, OK: true}
	if dateFirst {
		start := p.I
		for p.I < len(s) && p.I-start < 8 && textscan.IsDigit(s[p.I]) {
			p.I++
		}
		if n := p.I - start; n < 4 || n > 7 {
			return t, false
		}
		t.year, _ = strconv.Atoi(s[start:p.I])
		p.Expect('-')
		t.month = p.Digits(2)
		p.Expect('-')
		t.day = p.Digits(2)
		t.hasDate = true
		if p.OK && p.I+1 < len(s) && (s[p.I] == 'T' || s[p.I] == 't' || s[p.I] == ' ') && textscan.IsDigit(s[p.I+1]) {
			p.I++
			t.hasTime = true
		}
	} else {
		t.hasTime = true
	}
	if t.hasTime {
		t.hour = p.Digits(2)
		p.Expect(':')
		t.minute = p.Digits(2)
		if p.OK && p.I < len(s) && s[p.I] == ':' {
			p.I++
			t.second = p.Digits(2)
			if p.OK && p.I < len(s) && s[p.I] == '.' {
				p.I++
				start := p.I
				for p.I < len(s) && textscan.IsDigit(s[p.I]) {
					p.I++
				}
				t.frac = s[start:p.I]
				if t.frac == "" {
					p.OK = false
				}
			}
		}
		if p.OK && p.I < len(s) {
			switch s[p.I] {
			case 'Z', 'z':
				p.I++
				t.hasZone = true
			case '+', '-':
				t.hasZone = true
				t.offset, p.OK = parseZoneOffset(&p)
			}
		}
	}
	t.end = p.I
	if p.OK && dateFirst && strings.HasSuffix(s, " BC") && p.I == len(s)-3 {
		t.bc = true
		p.I = len(s)
	}
	if !p.OK || p.I != len(s) || t.year < 0 || t.minute > 59 || t.second > 59 {
		return t, false
	}
	if t.hour > 23 && !(t.hour == 24 && t.minute == 0 && t.second == 0 && strings.Trim(t.frac, "0") == "") {
		return t, false
	}
	if dateFirst {
		if t.year < 1 || t.month < 1 || t.month > 12 || t.day < 1 || t.day > daysIn(t.month, t.astroYear()) {
			return t, false
		}
	}
	return t, true
}

// parseZoneOffset reads ±HH, ±HH:MM, ±HHMM or ±HH:MM:SS at p and returns the
// offset in seconds east of UTC; PostgreSQL takes offsets below 16 hours.
func parseZoneOffset(p *textscan.Scanner) (int, bool) {
	sign := 1
	if p.S[p.I] == '-' {
		sign = -1
	}
	p.I++
	h := p.Digits(2)
	var m, sec int
	switch {
	case p.OK && p.I < len(p.S) && p.S[p.I] == ':':
		p.I++
		m = p.Digits(2)
		if p.OK && p.I < len(p.S) && p.S[p.I] == ':' {
			p.I++
			sec = p.Digits(2)
		}
	case p.OK && p.I < len(p.S) && textscan.IsDigit(p.S[p.I]):
		m = p.Digits(2)
	}
	if !p.OK || h > 15 || m > 59 || sec > 59 {
		return 0, false
	}
	return sign * (h*3600 + m*60 + sec), true
}

// daysIn returns the number of days of a month of an astronomical year in
// the proleptic Gregorian calendar (PostgreSQL's, before 1582 too).
func daysIn(month, year int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// convertTemporal checks the text s of a date, time or timestamp value
// (raw as sent) against kind and returns the value to write: raw itself,
// or for a timestamptz or timetz without a zone the same text with
// "+00:00" (SQLite's times are UTC), and for a timestamp (without time
// zone) with a zone other than UTC its UTC wall time (PostgreSQL would
// drop the zone and keep the local time).
func convertTemporal(kind valueKind, raw []byte, s string) ([]byte, bool) {
	if s == "infinity" || s == "-infinity" {
		return raw, kind == valueDate || kind == valueTimestamp || kind == valueTimestampTZ
	}
	t, ok := parseTemporal(s, kind != valueTime && kind != valueTimeTZ)
	if !ok {
		return nil, false
	}
	switch kind {
	case valueDate:
		return raw, !t.hasTime
	case valueTime:
		return raw, !t.hasZone
	case valueTimeTZ:
		if t.hasZone {
			return raw, true
		}
		return jsonString(s + "+00:00"), true
	case valueTimestampTZ:
		if t.hour == 24 {
			return nil, false
		}
		if t.hasZone {
			return raw, true
		}
		head := s[:t.end]
		if !t.hasTime {
			head += "T00:00:00"
		}
		return jsonString(head + "+00:00" + s[t.end:]), true
	case valueTimestamp:
		if t.hour == 24 {
			return nil, false
		}
		if t.offset == 0 {
			return raw, true
		}
		return jsonString(t.utcWallTime()), true
	}
	return nil, false
}

// utcWallTime writes a timestamp with a zone as the UTC date and time it
// names, in ISO form without a zone (BC years with " BC").
func (t *temporal) utcWallTime() string {
	u := time.Date(t.astroYear(), time.Month(t.month), t.day, t.hour, t.minute, t.second, 0, time.UTC).
		Add(-time.Duration(t.offset) * time.Second)
	year, bc := u.Year(), ""
	if year < 1 {
		year, bc = 1-year, " BC"
	}
	out := fmt.Sprintf("%04d-%02d-%02dT%02d:%02d:%02d", year, int(u.Month()), u.Day(), u.Hour(), u.Minute(), u.Second())
	if t.frac != "" {
		out += "." + t.frac
	}
	return out + bc
}

// jsonString returns s as a JSON string (s holds no character that needs
// escaping but the ones json.Marshal escapes).
func jsonString(s string) []byte {
	b, _ := json.Marshal(s) // a string always marshals
	return b
}

// temporalKey is a comparable form of a date, time or timestamp text of
// kind: equal keys name the same value as PostgreSQL stores it (to the
// microsecond).
func temporalKey(kind valueKind, s string) (string, bool) {
	if s == "infinity" || s == "-infinity" {
		return s, true
	}
	t, ok := parseTemporal(s, kind != valueTime && kind != valueTimeTZ)
	if !ok {
		return "", false
	}
	micros := 0
	if t.frac != "" {
		f, err := strconv.ParseFloat("0."+t.frac, 64)
		if err != nil {
			return "", false
		}
		micros = int(math.RoundToEven(f * 1e6))
	}
	switch kind {
	case valueDate:
		return fmt.Sprintf("%d-%d-%d", t.astroYear(), t.month, t.day), true
	case valueTime, valueTimeTZ:
		return fmt.Sprintf("%d:%d:%d.%d%+d", t.hour, t.minute, t.second, micros, t.offset), true
	}
	u := time.Date(t.astroYear(), time.Month(t.month), t.day, t.hour, t.minute, t.second, micros*1000, time.UTC).
		Add(-time.Duration(t.offset) * time.Second)
	return strconv.FormatInt(u.Unix(), 10) + "." + strconv.Itoa(u.Nanosecond()), true
}

// sameColumnValue reports whether a pushed value of col, converted by
// convertValue, holds the value stored in the row (as row_to_json gives
// it): as JSON values (numbers by value), and for dates, times and
// timestamps as the values they name (a device's "2026-01-02 03:04:05"
// against PostgreSQL's "2026-01-02T04:04:05+01:00").
func sameColumnValue(col *columnInfo, pushed, stored json.RawMessage) bool {
	if sameJSONValue(pushed, stored) {
		return true
	}
	if col == nil || len(stored) == 0 {
		return false
	}
	if sameAsHeld(col, pushed, stored) {
		return true // as a device keeps it in SQLite (pushimage.go)
	}
	// The stored value in the form the push wrote it in, then compared
	// again: bytea's hex in lower case, numbers from strings.
	conv, err := convertValue(col.value, stored)
	if err != nil {
		return false
	}
	if sameJSONValue(pushed, conv) {
		return true
	}
	switch col.value.kind {
	case valueDate, valueTime, valueTimeTZ, valueTimestamp, valueTimestampTZ:
		if col.value.array {
			return false
		}
		a, okA := unquoteJSON(bytes.TrimSpace(pushed))
		b, okB := unquoteJSON(bytes.TrimSpace(conv))
		if !okA || !okB {
			return false
		}
		ka, okA := temporalKey(col.value.kind, a)
		kb, okB := temporalKey(col.value.kind, b)
		return okA && okB && ka == kb
	}
	return false
}

// describeJSON names a JSON value for a message: its kind, or the value
// itself when it is short.
func describeJSON(raw []byte) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case 'n':
		return "null"
	}
	const maxShown = 40
	if len(raw) <= maxShown {
		return string(raw)
	}
	cut := maxShown
	for cut > 0 && !utf8.RuneStart(raw[cut]) {
		cut--
	}
	if raw[0] == '"' {
		return "a string starting " + string(raw[:cut]) + "…"
	}
	return "a number starting " + string(raw[:cut]) + "…"
}

// expects describes the forms a column accepts, for messages.
func (s valueSpec) expects() string {
	if s.array {
		return "a JSON array (or a string holding one, as JSON or as PostgreSQL's array text) of " + s.kind.plural()
	}
	return s.kind.expects(s)
}

// rangeExpects describes the range of a numeric kind, for messages.
func (s valueSpec) rangeExpects() string {
	switch s.kind {
	case valueInt2:
		return "an integer from -32768 to 32767"
	case valueInt4:
		return "an integer from -2147483648 to 2147483647"
	case valueInt8:
		return "an integer from -9223372036854775808 to 9223372036854775807"
	case valueFloat4:
		return "a number within the range of real"
	case valueFloat8:
		return "a number within the range of double precision"
	}
	return "a number with at most 131072 digits before the decimal point and 16383 after it"
}

func (k valueKind) expects(s valueSpec) string {
	switch k {
	case valueString:
		return "a JSON string"
	case valueInt2, valueInt4:
		return "an integer (a JSON number without a fraction)"
	case valueInt8:
		return "an integer (a JSON number without a fraction, or a string of its digits)"
	case valueFloat4, valueFloat8:
		return `a number (a JSON number, or a string holding one, "NaN", "Infinity" or "-Infinity")`
	case valueNumeric:
		if s.noInfinity {
			return `a number (a JSON number, or a string holding one, or "NaN")`
		}
		return `a number (a JSON number, or a string holding one, "NaN", "Infinity" or "-Infinity")`
	case valueBool:
		return "true, false, 0 or 1"
	case valueBytes:
		return `bytes as a base64 string or as PostgreSQL's hex text ("\\x0102ff")`
	case valueDate:
		return `a date as a string YYYY-MM-DD (or "infinity", "-infinity")`
	case valueTime:
		return "a time of day as a string HH:MM[:SS[.ffffff]], without a zone"
	case valueTimeTZ:
		return "a time of day as a string HH:MM[:SS[.ffffff]], with a zone or in UTC"
	case valueTimestamp, valueTimestampTZ:
		return "a timestamp as a string in RFC 3339 or SQLite's form (2006-01-02T15:04:05.000Z, 2006-01-02 15:04:05)"
	}
	return "a JSON value"
}

func (k valueKind) plural() string {
	switch k {
	case valueString:
		return "JSON strings"
	case valueInt2, valueInt4, valueInt8:
		return "integers"
	case valueFloat4, valueFloat8, valueNumeric:
		return "numbers"
	case valueBool:
		return "booleans (true, false, 0 or 1)"
	case valueBytes:
		return "base64 or hex strings"
	case valueDate:
		return "dates"
	case valueTime, valueTimeTZ:
		return "times of day"
	case valueTimestamp, valueTimestampTZ:
		return "timestamps"
	}
	return "values"
}
