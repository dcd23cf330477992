package local

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// This file converts values between the JSON of the wire and SQLite, by
// the logical type of the schema contract.
//
// From the server (pulls, snapshots, a conflict's server_version) to
// SQLite:
//
//	int, int64   INTEGER (a string of digits too); anything else is kept as sent
//	float        REAL; "NaN", "Infinity", ... stay text
//	boolean      INTEGER 1 or 0
//	json         TEXT holding the value's JSON (arrays, objects, strings as JSON)
//	bytes        BLOB, decoded from PostgreSQL's "\x..." hex
//	datetime     TEXT, RFC 3339 in UTC with microseconds (2026-12-02T04:20:23.123456Z),
//	             so that equal instants are equal text and text order is time order;
//	             "infinity" and other text that is not a time stay as sent
//	others       TEXT (string, date, time and the types read from text)
//
// From SQLite to a push, the other way: booleans as JSON booleans, json
// columns as the JSON they hold, blobs as base64, timestamps as RFC 3339 in
// UTC. A value the app stored in another form than its column's (text in
// an integer column, say) goes as it is, and the server decides.

// TimeLayout is the form of the timestamps the client stores: RFC 3339 in
// UTC with six fraction digits.
const TimeLayout = "2006-01-02T15:04:05.000000Z"

// sqliteType is the SQLite column type of a logical type.
func sqliteType(logical string) string {
	switch logical {
	case "int", "int64", "boolean":
		return "INTEGER"
	case "float":
		return "REAL"
	case "bytes":
		return "BLOB"
	}
	return "TEXT"
}

// fromJSON converts the JSON value raw of a column of type logical to the
// value stored in SQLite. raw must be valid JSON (as json.Unmarshal
// leaves a json.RawMessage); the common forms are read without a decoder.
func fromJSON(logical string, raw json.RawMessage) (any, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	if logical == "json" {
		var buf bytes.Buffer
		if err := json.Compact(&buf, raw); err != nil {
			return nil, err
		}
		return buf.String(), nil
	}
	switch c := raw[0]; {
	case c == '"':
		if len(raw) >= 2 && raw[len(raw)-1] == '"' && bytes.IndexByte(raw[1:len(raw)-1], '\\') < 0 && bytes.IndexByte(raw[1:len(raw)-1], '"') < 0 {
			return fromValue(logical, string(raw[1:len(raw)-1])), nil
		}
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, err
		}
		return fromValue(logical, s), nil
	case c == 't' && string(raw) == "true":
		return fromValue(logical, true), nil
	case c == 'f' && string(raw) == "false":
		return fromValue(logical, false), nil
	case c == '-' || (c >= '0' && c <= '9'):
		if !json.Valid(raw) {
			return nil, fmt.Errorf("invalid number %q", raw)
		}
		return fromValue(logical, json.Number(raw)), nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return fromValue(logical, v), nil
}

// fromValue converts a decoded JSON value (numbers as json.Number) of a
// column of type logical to the value stored in SQLite.
func fromValue(logical string, v any) any {
	switch x := v.(type) {
	case nil:
		return nil
	case bool:
		if x {
			return int64(1)
		}
		return int64(0)
	case json.Number:
		switch logical {
		case "int", "int64", "boolean":
			if i, err := x.Int64(); err == nil {
				return i
			}
		case "string", "date", "time", "datetime":
			return x.String()
		}
		if i, err := x.Int64(); err == nil && logical != "float" {
			return i
		}
		if f, err := x.Float64(); err == nil {
			return f
		}
		return x.String()
	case string:
		switch logical {
		case "int", "int64":
			if i, err := strconv.ParseInt(x, 10, 64); err == nil {
				return i
			}
		case "bytes":
			if b, ok := decodeHexBytes(x); ok {
				return b
			}
		case "datetime":
			return NormalizeTime(x)
		}
		return x
	default: // objects and arrays
		b, err := json.Marshal(x)
		if err != nil {
			return nil
		}
		return string(b)
	}
}

// decodeHexBytes decodes PostgreSQL's hex form of bytea, "\x0102ff".
func decodeHexBytes(s string) ([]byte, bool) {
	h, ok := strings.CutPrefix(s, `\x`)
	if !ok {
		return nil, false
	}
	b, err := hex.DecodeString(h)
	if err != nil {
		return nil, false
	}
	return b, true
}

// NormalizeTime returns s, a timestamp, in TimeLayout; s itself when it is
// not one (such as "infinity").
func NormalizeTime(s string) string {
	t, ok := ParseTime(s)
	if !ok {
		return s
	}
	return t.UTC().Format(TimeLayout)
}

// timeLayouts are the timestamp forms ParseTime reads: RFC 3339, and
// SQLite's and PostgreSQL's text with a space or a "T", with or without a
// zone (UTC without).
var timeLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02T15:04:05.999999999Z07",
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02 15:04:05.999999999Z07",
	"2006-01-02 15:04:05.999999999",
	"2006-01-02T15:04",
	"2006-01-02 15:04",
}

// ParseTime reads a timestamp in one of the forms servers and SQLite
// write.
func ParseTime(s string) (time.Time, bool) {
	for _, layout := range timeLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// toJSON converts a value read from SQLite (int64, float64, string, []byte
// or nil) of a column of type logical to its JSON form in a push.
func toJSON(logical string, v any) json.RawMessage {
	switch x := v.(type) {
	case nil:
		return json.RawMessage("null")
	case int64:
		if logical == "boolean" && (x == 0 || x == 1) {
			return json.RawMessage(strconv.FormatBool(x == 1))
		}
		if logical == "string" || logical == "date" || logical == "time" || logical == "datetime" {
			return jsonString(strconv.FormatInt(x, 10))
		}
		return json.RawMessage(strconv.FormatInt(x, 10))
	case float64:
		switch {
		case math.IsNaN(x):
			return jsonString("NaN")
		case math.IsInf(x, 1):
			return jsonString("Infinity")
		case math.IsInf(x, -1):
			return jsonString("-Infinity")
		}
		s := strconv.FormatFloat(x, 'g', -1, 64)
		if logical == "int" || logical == "int64" || logical == "boolean" {
			if x == math.Trunc(x) && math.Abs(x) < 1<<53 {
				s = strconv.FormatInt(int64(x), 10)
				if logical == "boolean" && (x == 0 || x == 1) {
					return json.RawMessage(strconv.FormatBool(x == 1))
				}
			}
		}
		if logical == "string" || logical == "date" || logical == "time" || logical == "datetime" {
			return jsonString(s)
		}
		return json.RawMessage(s)
	case []byte:
		if logical == "json" && json.Valid(x) {
			return compactJSON(x)
		}
		return jsonString(base64.StdEncoding.EncodeToString(x))
	case string:
		switch logical {
		case "json":
			if json.Valid([]byte(x)) {
				return compactJSON([]byte(x))
			}
		case "boolean":
			switch strings.ToLower(x) {
			case "true", "1":
				return json.RawMessage("true")
			case "false", "0":
				return json.RawMessage("false")
			}
		case "int", "int64":
			if i, err := strconv.ParseInt(strings.TrimSpace(x), 10, 64); err == nil {
				return json.RawMessage(strconv.FormatInt(i, 10))
			}
		case "datetime":
			if t, ok := ParseTime(x); ok {
				return jsonString(t.UTC().Format(time.RFC3339Nano))
			}
		}
		return jsonString(x)
	case bool:
		return json.RawMessage(strconv.FormatBool(x))
	case time.Time:
		return jsonString(x.UTC().Format(time.RFC3339Nano))
	}
	return json.RawMessage("null")
}

func jsonString(s string) json.RawMessage {
	b, _ := json.Marshal(s) // a string always encodes
	return b
}

func compactJSON(b []byte) json.RawMessage {
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		return jsonString(string(b))
	}
	return buf.Bytes()
}

// sameValue reports whether two SQLite values (as fromValue and the driver
// give them) are the same value of a column of type logical.
func sameValue(logical string, a, b any) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	switch logical {
	case "json":
		return jsonEqual(toJSON(logical, a), toJSON(logical, b))
	case "datetime":
		if ta, ok := a.(string); ok {
			if tb, ok := b.(string); ok {
				return NormalizeTime(ta) == NormalizeTime(tb)
			}
		}
	}
	return bytes.Equal(toJSON(logical, a), toJSON(logical, b))
}

// jsonEqual compares two JSON texts as values.
func jsonEqual(a, b []byte) bool {
	var va, vb any
	da, db := json.NewDecoder(bytes.NewReader(a)), json.NewDecoder(bytes.NewReader(b))
	da.UseNumber()
	db.UseNumber()
	if da.Decode(&va) != nil || db.Decode(&vb) != nil {
		return bytes.Equal(a, b)
	}
	ca, _ := json.Marshal(va) // maps marshal with sorted keys
	cb, _ := json.Marshal(vb)
	return bytes.Equal(ca, cb)
}
