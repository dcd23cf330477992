package bucket

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// This file turns a column value into the text a bucket id or a record key
// is made of.

// Text returns the text of a column value as it goes into a bucket id
// (prefix + text) or names a record (a parent key), and false for NULL
// (nil), a missing value or an empty text.
//
// The text is the one PostgreSQL prints for the value (column::text). The
// read path decides membership in SQL by comparing bucket ids with
// prefix || column::text, the engine reads ownership and parent key
// columns as text, and record ids are primary keys as text. The change
// capture gets the same columns decoded from pgoutput into typed values
// (see wal's rowValues), so each type it decodes must come back to
// PostgreSQL's text here, or the ids it records would name other buckets
// than the engine's:
//
//   - string: itself (text, uuid, timestamps, enums, and every value the
//     engine reads as text or receives in a push);
//   - int64 and the other integers, bool: their decimal digits, true or
//     false;
//   - json.Number (numeric, and every number read through row_to_json):
//     its digits, exact;
//   - json.RawMessage (json, jsonb): the document as sent, whitespace
//     included, as json's text keeps it;
//   - float64 (double precision) and float32 (real): the shortest digits
//     that read back as the value, positional when the decimal exponent is
//     at least -4 and below 15 (6 for float32), else with an exponent of
//     at least two digits (1e+15, 1e-05); NaN, Infinity, -Infinity. The
//     decoder gives a real column's value as a float64, printed here as
//     double precision prints it: the two differ for exponents from 6 to
//     14 (real 1e+06 becomes "1000000");
//   - []byte: its bytes as text (the form database/sql drivers hand text
//     over in);
//   - a fmt.Stringer: its String(); anything else: fmt.Sprint.
func Text(v any) (string, bool) {
	var s string
	switch x := v.(type) {
	case nil:
		return "", false
	case string:
		s = x
	case int64:
		s = strconv.FormatInt(x, 10)
	case bool:
		s = strconv.FormatBool(x)
	case json.Number:
		s = x.String()
	case json.RawMessage:
		s = string(x)
	case []byte:
		s = string(x)
	case float64:
		s = floatText(x, 64)
	case float32:
		s = floatText(float64(x), 32)
	case fmt.Stringer:
		s = x.String()
	default:
		s = fmt.Sprint(x)
	}
	return s, s != ""
}

// floatText formats f (of bitSize 64 or 32) as PostgreSQL's float8out and
// float4out do with extra_float_digits above 0, the default since
// PostgreSQL 12: the shortest exact digits, positional for a decimal
// exponent in [-4, 15) (float8, DBL_DIG) or [-4, 6) (float4, FLT_DIG).
// Go's %e form has the same shape as PostgreSQL's: a sign and at least two
// exponent digits.
func floatText(f float64, bitSize int) string {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	}
	e := strconv.FormatFloat(f, 'e', -1, bitSize)
	exp, _ := strconv.Atoi(e[strings.LastIndexByte(e, 'e')+1:])
	digits := 15
	if bitSize == 32 {
		digits = 6
	}
	if exp < -4 || exp >= digits {
		return e
	}
	return strconv.FormatFloat(f, 'f', -1, bitSize)
}
