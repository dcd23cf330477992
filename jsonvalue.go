package synchro

import (
	"bytes"
	"encoding/json"
	"math/big"
	"strconv"
	"strings"
	"time"
)

// sameJSONValue reports whether two JSON values hold the same value: the
// same literal, numbers of equal value however written (1, 1.0, 1e0),
// strings that are equal or that both read as the same instant in RFC 3339
// (PostgreSQL's "+00:00" against a device's "Z"), and arrays and objects of
// such values. A missing value (nil) equals only null.
func sameJSONValue(a, b json.RawMessage) bool {
	va, okA := decodeJSONValue(a)
	vb, okB := decodeJSONValue(b)
	return okA && okB && sameDecoded(va, vb)
}

func decodeJSONValue(raw json.RawMessage) (any, bool) {
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil, true
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, false
	}
	return v, true
}

// maxExponent bounds the exponent of a number compared by value: a client
// could otherwise make big.Rat build 10^(10^9).
const maxExponent = 1000

// ratOf reads a JSON number exactly, refusing exponents beyond maxExponent.
func ratOf(n json.Number) (*big.Rat, bool) {
	s := string(n)
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		exp, err := strconv.Atoi(s[i+1:])
		if err != nil || exp > maxExponent || exp < -maxExponent {
			return nil, false
		}
	}
	return new(big.Rat).SetString(s)
}

func sameDecoded(a, b any) bool {
	switch x := a.(type) {
	case nil:
		return b == nil
	case bool:
		y, ok := b.(bool)
		return ok && x == y
	case json.Number:
		y, ok := b.(json.Number)
		if !ok {
			return false
		}
		if x == y {
			return true
		}
		rx, okX := ratOf(x)
		ry, okY := ratOf(y)
		return okX && okY && rx.Cmp(ry) == 0
	case string:
		y, ok := b.(string)
		if !ok {
			return false
		}
		if x == y {
			return true
		}
		tx, errX := time.Parse(time.RFC3339Nano, x)
		ty, errY := time.Parse(time.RFC3339Nano, y)
		return errX == nil && errY == nil && tx.Equal(ty)
	}
	equal, _ := sameContainer(a, b, sameDecoded)
	return equal
}

// sameContainer compares a and b, decoded JSON, when a is an array or an
// object: member by member, with same. ok is false when a is neither.
func sameContainer(a, b any, same func(x, y any) bool) (equal, ok bool) {
	switch x := a.(type) {
	case []any:
		y, isArray := b.([]any)
		if !isArray || len(x) != len(y) {
			return false, true
		}
		for i := range x {
			if !same(x[i], y[i]) {
				return false, true
			}
		}
		return true, true
	case map[string]any:
		y, isObject := b.(map[string]any)
		if !isObject || len(x) != len(y) {
			return false, true
		}
		for k, vx := range x {
			vy, found := y[k]
			if !found || !same(vx, vy) {
				return false, true
			}
		}
		return true, true
	}
	return false, false
}

// isColumnDefault reports whether a pushed value is what a device that
// built its table from the schema contract gets from the column's portable
// default (SchemaColumn.SQLiteDefaultSQL): the literal itself (booleans as
// true/false or 1/0), or, for a current-time default, any string, since
// the device's clock made it. For an array column, whose default the
// contract gives as PostgreSQL's text of the array, that text is taken as
// a string (what the SDKs and the Go client push), and so is the array in
// JSON, or a string holding its JSON text (pgArrayJSON).
func isColumnDefault(col *columnInfo, raw json.RawMessage) bool {
	if col == nil {
		return false
	}
	if col.value.array {
		if text, ok := stringLiteralText(normalizeDefault(col.defaultSQL)); ok {
			if sameJSONValue(raw, jsonString(text)) {
				return true
			}
			if j, ok := pgArrayJSON(col.value, text); ok && (sameJSONValue(raw, json.RawMessage(j)) || sameJSONValue(raw, jsonString(j))) {
				return true
			}
		}
	}
	if col.defaultKind != DefaultKindPortable {
		return false
	}
	d := col.sqliteDflt
	switch {
	case d == sqliteNowRFC3339 || d == "CURRENT_TIMESTAMP" || d == "CURRENT_DATE" || d == "CURRENT_TIME":
		v, ok := decodeJSONValue(raw)
		_, isString := v.(string)
		return ok && isString
	case d == "NULL":
		return isJSONNull(raw)
	case col.logicalType == "boolean" && (d == "1" || d == "0"):
		return sameJSONValue(raw, json.RawMessage(d)) || sameJSONValue(raw, json.RawMessage(map[string]string{"1": "true", "0": "false"}[d]))
	case strings.HasPrefix(d, "'") && strings.HasSuffix(d, "'") && len(d) >= 2:
		text := strings.ReplaceAll(d[1:len(d)-1], "''", "'")
		if col.value.array && sameJSONValue(raw, json.RawMessage(text)) {
			return true
		}
		lit, err := json.Marshal(text)
		return err == nil && sameJSONValue(raw, lit)
	}
	return sameJSONValue(raw, json.RawMessage(d))
}
