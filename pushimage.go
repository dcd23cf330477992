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
// SQLite table pushes back for it: for a json column, the same value, or
// a string holding its text; for a numeric, a number that is the same
// float64. Other kinds, and arrays, are compared by sameColumnValue.
func sameAsHeld(col *columnInfo, pushed, stored json.RawMessage) bool {
	if col == nil || col.value.array || len(stored) == 0 {
		return false
	}
	switch col.value.kind {
	case valueJSON:
		p, okP := decodeJSONValue(pushed)
		s, okS := decodeJSONValue(stored)
		return okP && okS && sameHeld(heldImage(p), heldImage(s))
	case valueNumeric:
		p, okP := floatOfJSON(pushed)
		s, okS := floatOfJSON(stored)
		return okP && okS && p == s
	}
	return false
}

// heldImage is what a device keeps in a SQLite TEXT column for the JSON
// value v: a string's text, a number's text, 1 or 0 for a boolean, an
// object's or array's JSON text (decoded again here, to be compared as a
// value); nil for null.
func heldImage(v any) any {
	switch v := v.(type) {
	case string:
		if w, ok := decodeJSONValue(json.RawMessage(v)); ok {
			switch w.(type) {
			case map[string]any, []any, json.Number:
				return w // text that is an object, array or number
			}
		}
		return v
	case bool:
		if v {
			return json.Number("1")
		}
		return json.Number("0")
	}
	return v
}

// sameHeld compares two held images: numbers as the SDKs' decoders read
// them (64-bit floats), the rest as sameDecoded does.
func sameHeld(a, b any) bool {
	switch x := a.(type) {
	case json.Number:
		y, ok := b.(json.Number)
		if !ok {
			return false
		}
		fx, errX := strconv.ParseFloat(string(x), 64)
		fy, errY := strconv.ParseFloat(string(y), 64)
		return errX == nil && errY == nil && fx == fy
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !sameHeld(x[i], y[i]) {
				return false
			}
		}
		return true
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, vx := range x {
			vy, ok := y[k]
			if !ok || !sameHeld(vx, vy) {
				return false
			}
		}
		return true
	}
	return sameDecoded(a, b)
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
