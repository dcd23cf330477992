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
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !sameDecoded(x[i], y[i]) {
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
			if !ok || !sameDecoded(vx, vy) {
				return false
			}
		}
		return true
	}
	return false
}
