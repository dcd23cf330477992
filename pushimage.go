package synchro

import (
	"encoding/json"
	"math"
	"strconv"
)

// This file holds the comparison of a pushed value with the stored one as
// a device keeps it in SQLite.
//
// The SDKs push the whole local row, every column, with each value as
// their SQLite table holds it, which is not always what the server
// delivered: a json column's value is kept as text, so a number 5 comes
// back as the string "5", true (bound as 1) as "1", an object as its text
// (key order and spacing the SDK's own); a numeric is kept as REAL, so
// 12345678901234567.1234567891 comes back as 12345678901234568 and 12.50
// as 12.5. Written as pushed, the first edit of any other column of the
// row would change the type of the json value, or the digits of the
// numeric, for every device and the application. A pushed value that is
// the stored value's image in the device's SQLite (sameAsHeld) is
// therefore the stored value, unchanged: it is not written.

// sameAsHeld reports whether pushed (after convertValue) is what a device
// holding stored (the column's value as row_to_json wrote it) in its
// SQLite table pushes back for it: for a json column, the same value, a
// string of its text, or 1 or 0 for a boolean; for a numeric, a number
// that is the same float64. Other kinds, and arrays, are compared by
// sameColumnValue.
func sameAsHeld(col *columnInfo, pushed, stored json.RawMessage) bool {
	if col == nil || col.value.array || len(stored) == 0 {
		return false
	}
	switch col.value.kind {
	case valueJSON:
		p, okP := decodeJSONValue(pushed)
		s, okS := decodeJSONValue(stored)
		return okP && okS && heldAs(s, p)
	case valueNumeric:
		p, okP := floatOfJSON(pushed)
		s, okS := floatOfJSON(stored)
		return okP && okS && p == s
	}
	return false
}

// heldAs reports whether a device that received the JSON value stored,
// kept it in a SQLite TEXT column and read it back, pushes pushed for it:
//   - a string as itself, byte for byte (a string holding an object or
//     array's text, which jsonFromString made that value, as the value);
//   - a number, an object or an array as itself or a string of its text,
//     whole (its numbers as the SDKs' decoders read them: integers of 64
//     bits exactly, others as float64);
//   - true and false as themselves or "1" and "0";
//   - null as null.
func heldAs(stored, pushed any) bool {
	if t, ok := pushed.(string); ok {
		if _, isString := stored.(string); !isString {
			switch stored.(type) {
			case bool:
				return (stored == true && t == "1") || (stored == false && t == "0")
			case nil:
				return false
			}
			v, ok := wholeJSON(t)
			return ok && sameHeld(stored, v)
		}
	}
	if s, ok := stored.(string); ok {
		if t, ok := pushed.(string); ok {
			return s == t
		}
		v, ok := wholeJSON(s)
		return ok && isContainer(v) && sameHeld(v, pushed)
	}
	return sameHeld(stored, pushed)
}

// wholeJSON decodes t when all of it is one JSON value.
func wholeJSON(t string) (any, bool) {
	if !json.Valid([]byte(t)) {
		return nil, false
	}
	return decodeJSONValue(json.RawMessage(t))
}

func isContainer(v any) bool {
	switch v.(type) {
	case map[string]any, []any:
		return true
	}
	return false
}

// sameHeld compares two decoded JSON values as the SDKs read them:
// integers that fit in 64 bits exactly, other numbers as float64, strings
// byte for byte, containers member by member.
func sameHeld(a, b any) bool {
	switch x := a.(type) {
	case nil:
		return b == nil
	case bool:
		y, ok := b.(bool)
		return ok && x == y
	case string:
		y, ok := b.(string)
		return ok && x == y
	case json.Number:
		y, ok := b.(json.Number)
		if !ok {
			return false
		}
		ix, errX := strconv.ParseInt(string(x), 10, 64)
		iy, errY := strconv.ParseInt(string(y), 10, 64)
		if errX == nil && errY == nil {
			return ix == iy
		}
		if errX == nil || errY == nil {
			// One is a 64-bit integer, the other not one: equal only
			// when the other is a float of the same value (1 and 1.0).
			fx, okX := floatOfNumber(x)
			fy, okY := floatOfNumber(y)
			return okX && okY && fx == fy && math.Abs(fx) < 1<<53
		}
		fx, okX := floatOfNumber(x)
		fy, okY := floatOfNumber(y)
		return okX && okY && fx == fy
	}
	equal, _ := sameContainer(a, b, sameHeld)
	return equal
}

// floatOfNumber reads n as a finite float64.
func floatOfNumber(n json.Number) (float64, bool) {
	f, err := strconv.ParseFloat(string(n), 64)
	return f, err == nil && !math.IsInf(f, 0) && !math.IsNaN(f)
}

// floatOfJSON reads a JSON number, or a string holding one, as the 64-bit
// float a device keeps it as; false for anything else, and for values
// beyond float64's range.
func floatOfJSON(raw json.RawMessage) (float64, bool) {
	v, ok := decodeJSONValue(raw)
	if !ok {
		return 0, false
	}
	var s string
	switch v := v.(type) {
	case json.Number:
		s = string(v)
	case string:
		s = v
	default:
		return 0, false
	}
	f, err := strconv.ParseFloat(s, 64)
	return f, err == nil && !math.IsInf(f, 0) && !math.IsNaN(f)
}

// heldDiffersKind reports whether a device may keep a value of col in
// SQLite in another form than the server delivered it (see sameAsHeld).
func heldDiffersKind(col *columnInfo) bool {
	return col != nil && !col.value.array && (col.value.kind == valueJSON || col.value.kind == valueNumeric)
}

// heldDiffers reports whether any of fields is of such a column.
func heldDiffers(info *tableInfo, fields map[string]json.RawMessage) bool {
	for col := range fields {
		if heldDiffersKind(info.column(col)) {
			return true
		}
	}
	return false
}
