package synchro

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/synchrosync/synchro/internal/pgident"
	"github.com/synchrosync/synchro/internal/pgxconn"
	"github.com/synchrosync/synchro/internal/store"
)

// This file holds pull's hydration with the default ownership rules: the
// statement returns each delivered column on its own, in a form the engine
// turns into the row's JSON object itself, byte for byte what
// row_to_json gives (TestPullRowJSONMatchesRowToJSON).
//
// Why: row_to_json looks up the JSON category of every column's type for
// every row, and formats and escapes in the backend; on a 12-column table
// that was 2.9 ms of the 4.5 ms of hydrating a page of 1000 rows, against
// 1.3 ms for the columns' text output (docs/benchmarks.md, issue 14 item
// 4). The engine escapes a string and copies a number in a fraction of
// that, while PostgreSQL is already producing the next rows.

// pullColumnKind says how the engine writes one delivered column's value
// into the row's JSON object.
type pullColumnKind uint8

const (
	// pullNull: a made-up timestamp column (see tableInfo.delivered),
	// always null; the statement does not return it.
	pullNull pullColumnKind = iota
	// pullRaw: the value's text is its JSON (integers, json, jsonb, and
	// whatever to_json made); an integer may come in binary (wireInt8).
	pullRaw
	// pullNumber: a number's text, written as is when it is a JSON number
	// and as a string otherwise (NaN, Infinity), as row_to_json does.
	pullNumber
	// pullNumbers: JSON (an array of numbers, from to_json) whose numbers
	// are written in the delivered form (appendWideNumbers).
	pullNumbers
	// pullString: the text output, written as a JSON string.
	pullString
	// pullTimestamp: the text output of a timestamp or timestamptz under
	// DateStyle ISO (which pullSettingsSQL sets), written as to_json
	// writes it (see appendPGTimestampJSON).
	pullTimestamp
	// pullBool: a boolean, whose text is true or false (cast to text) or
	// t or f (the type's own text output), written as true or false.
	pullBool
)

// pullForm is the form in which a hydration statement returns the
// delivered columns (see pullColumns).
type pullForm uint8

const (
	// pullFormText returns every column as text: what database/sql and
	// the hydration statements read.
	pullFormText pullForm = iota
	// pullFormTyped returns integers (as int8), numerics, booleans and
	// timestamps without time zone as their own types, which pgx receives in
	// binary, cheaper for PostgreSQL to send than their text output
	// (about a fifth of the columns' output on the benchmark's table,
	// docs/benchmarks.md, issue 14 item 4); timestamptz as text.
	pullFormTyped
	// pullFormTypedUTC is pullFormTyped with timestamptz as its own type
	// too: for a session whose time zone is UTC, the only one in which
	// the engine writes a timestamptz from its binary form (elsewhere its
	// offset would depend on time zone rules the engine does not read).
	pullFormTypedUTC
)

// pullColumn is one delivered column of a pull hydration.
type pullColumn struct {
	// key is the column's `"name":` with the separator before it, as
	// row_to_json writes it.
	key  string
	kind pullColumnKind
}

// Type OIDs the hydration writes without to_json (pg_type.h).
const (
	oidBool        = 16
	oidInt8        = 20
	oidInt2        = 21
	oidInt4        = 23
	oidText        = 25
	oidJSON        = 114
	oidFloat4      = 700
	oidFloat8      = 701
	oidVarchar     = 1043
	oidNumeric     = 1700
	oidUUID        = 2950
	oidJSONB       = 3802
	oidDate        = 1082
	oidTimestamp   = 1114
	oidTimestampTZ = 1184
)

// pullColumns returns, for the delivered columns of t over the row alias
// x, how each is written and the select list expressions of the returned
// ones (all but the pullNull columns), in order, each of type
// text (drivers hand text over as it is) in pullFormText, some of their
// own types in the other forms (see pullForm). Each expression first casts the
// column to what its kind expects, so that a column whose type
// changed after the schema was read fails the statement or still gives
// valid JSON, never a malformed object. Dates and timestamps come as
// their text output under DateStyle ISO (set by pullSettingsSQL), from
// which the engine writes their JSON form (appendPGTimestampJSON). Types
// other than these and the common built-in ones (times, intervals,
// domains, arrays, enums, composites) come through to_json, which gives
// exactly what row_to_json gives for the column.
//
// form says which columns keep their own type instead (see pullForm);
// the kinds are the same in every form, and the writer reads a typed
// column in either wire format (see pullWires).
func pullColumns(t *tableInfo, x string, form pullForm) ([]pullColumn, []string) {
	typed := form != pullFormText
	cols := make([]pullColumn, len(t.delivered))
	var sel []string
	for i, c := range t.delivered {
		var key strings.Builder
		if i == 0 {
			key.WriteByte('{')
		} else {
			key.WriteByte(',')
		}
		key.Write(appendPGJSONString(nil, c.name))
		key.WriteByte(':')
		cols[i].key = key.String()
		if c.madeUp {
			cols[i].kind = pullNull
			continue
		}
		col := x + "." + pgident.Quote(c.name)
		if deepNumbers(c) {
			// Arrays of numbers, of any dimension, and arrays of types
			// that are not built in, as to_json writes them, as
			// row_to_json does: with the numbers in them in the
			// delivered form (numberform.go).
			cols[i].kind, col = pullNumbers, "to_json("+col+")::text"
			sel = append(sel, col)
			continue
		}
		switch numberOID(c) {
		case oidInt2, oidInt4, oidInt8:
			cols[i].kind, col = pullRaw, col+"::int8"
			if !typed {
				col += "::text"
			}
		case oidBool:
			cols[i].kind, col = pullBool, col+"::bool"
			if !typed {
				col += "::text" // true or false
			}
		case oidFloat4, oidFloat8:
			cols[i].kind, col = pullNumber, col+"::text"
		case oidNumeric:
			cols[i].kind, col = pullNumber, col+"::numeric"
			if !typed {
				col += "::text"
			}
		case oidText, oidVarchar, oidUUID:
			cols[i].kind, col = pullString, col+"::text"
		case oidJSON:
			cols[i].kind, col = pullRaw, col+"::json::text"
		case oidJSONB:
			cols[i].kind, col = pullRaw, col+"::jsonb::text"
		case oidDate:
			// Under DateStyle ISO its text output is its JSON form:
			// 2024-03-04, 0044-03-15 BC, infinity.
			cols[i].kind, col = pullString, col+"::date::text"
		case oidTimestamp:
			cols[i].kind, col = pullTimestamp, col+"::timestamp"
			if !typed {
				col += "::text"
			}
		case oidTimestampTZ:
			cols[i].kind, col = pullTimestamp, col+"::timestamptz"
			if form != pullFormTypedUTC {
				col += "::text"
			}
		default:
			cols[i].kind, col = pullRaw, "to_json("+col+")::text"
		}
		sel = append(sel, col)
	}
	return cols, sel
}

// numberOID is the type of c as pullColumns reads it: a domain over a
// float or a numeric as its base type, so that its values are written in
// the delivered form (numberform.go); c's own type otherwise.
func numberOID(c columnInfo) uint32 {
	if !c.value.array {
		switch c.value.kind {
		case valueFloat4:
			return oidFloat4
		case valueFloat8:
			return oidFloat8
		case valueNumeric:
			return oidNumeric
		}
	}
	return c.typeOID
}

// pullRowWriter turns the values of pull hydration rows into JSON objects.
// The objects of a page share large buffers instead of one allocation each;
// each object is a slice capped at its end, so that appending to one never
// writes into the next.
type pullRowWriter struct {
	cols []pullColumn
	// wire says how each returned column arrived (see pullWires); nil
	// when every one is text.
	wire    []pullWire
	scratch []byte
	chunk   []byte
}

// pullWire is how the value of one returned column arrives: as text (its
// text output, or text cast), or in the binary form of its type.
type pullWire uint8

const (
	wireText pullWire = iota
	// wireInt8: an int8, 8 bytes big-endian.
	wireInt8
	// wireBool: a bool, one byte.
	wireBool
	// wireTimestamp: a timestamp without time zone, microseconds since
	// 2000-01-01 as 8 bytes big-endian; the extremes are the infinities.
	wireTimestamp
	// wireTimestampUTC: a timestamptz in the same form, written with the
	// offset +00:00 (the session's time zone being UTC).
	wireTimestampUTC
	// wireNumeric: a numeric, in base 10000 digits (see
	// appendPGNumericJSON).
	wireNumeric
)

// pullWires returns how the returned columns cols (of a pullForm
// statement) arrive, by their fields' types and formats: nil when all of
// them come as text. A column in binary that the writer cannot write (a
// type it does not read in binary, or a timestamptz when the session's
// time zone is not UTC) is an error.
func pullWires(fields []pgconn.FieldDescription, cols []pullColumn, utc bool) ([]pullWire, error) {
	var wires []pullWire
	j := 0
	for _, c := range cols {
		if c.kind == pullNull {
			continue
		}
		if j >= len(fields) {
			return nil, fmt.Errorf("%d columns, want %d", len(fields), j+1)
		}
		f := fields[j]
		w := wireText
		if f.Format == pgtype.BinaryFormatCode {
			switch {
			case f.DataTypeOID == oidText || f.DataTypeOID == oidVarchar:
				// The binary form of text is the text.
			case f.DataTypeOID == oidInt8 && c.kind == pullRaw:
				w = wireInt8
			case f.DataTypeOID == oidBool && c.kind == pullBool:
				w = wireBool
			case f.DataTypeOID == oidTimestamp && c.kind == pullTimestamp:
				w = wireTimestamp
			case f.DataTypeOID == oidTimestampTZ && c.kind == pullTimestamp && utc:
				w = wireTimestampUTC
			case f.DataTypeOID == oidNumeric && c.kind == pullNumber:
				w = wireNumeric
			default:
				return nil, fmt.Errorf("column %q came in binary as type %d", f.Name, f.DataTypeOID)
			}
		}
		if w != wireText && wires == nil {
			wires = make([]pullWire, len(fields))
		}
		if wires != nil {
			wires[j] = w
		}
		j++
	}
	return wires, nil
}

// utcZones are the values of the TimeZone setting that are UTC at every
// time (as PostgreSQL reports them, ignoring case).
var utcZones = []string{"UTC", "Etc/UTC", "UCT", "Etc/UCT", "GMT", "Etc/GMT", "Universal", "Etc/Universal", "Zulu", "Etc/Zulu"}

// isUTCZone reports whether the TimeZone setting tz is one of utcZones.
func isUTCZone(tz string) bool {
	for _, z := range utcZones {
		if strings.EqualFold(tz, z) {
			return true
		}
	}
	return false
}

// pullChunkSize is the size of the buffers the JSON objects of a page are
// copied into.
const pullChunkSize = 64 << 10

// object writes the JSON object of one row; vals are the values of the
// columns that the statement returns (every column but the null ones), nil
// for SQL NULL, in the forms w.wire gives. The result stays valid after
// vals are reused.
//
// The object is written in place at the end of the current buffer when
// the buffer has room for the longest it could be (every byte of every
// value escaped, a binary value at its longest written form); rows too
// long for that are written aside and copied.
func (w *pullRowWriter) object(vals [][]byte) ([]byte, error) {
	most := 1
	for _, c := range w.cols {
		most += len(c.key) + len("null")
	}
	for i, v := range vals {
		n := 6 * len(v)
		if w.wire != nil && w.wire[i] == wireNumeric {
			n = numericJSONLen(v)
		}
		most += max(n, maxBinaryJSON) + len(`"":00 BC`)
	}
	if most > pullChunkSize/4 {
		b, err := w.write(w.scratch[:0], vals)
		if err != nil {
			return nil, err
		}
		w.scratch = b
		if len(w.chunk)+len(b) > cap(w.chunk) {
			w.chunk = make([]byte, 0, max(pullChunkSize, len(b)))
		}
		start := len(w.chunk)
		w.chunk = append(w.chunk, b...)
		return w.chunk[start:len(w.chunk):len(w.chunk)], nil
	}
	if len(w.chunk)+most > cap(w.chunk) {
		w.chunk = make([]byte, 0, pullChunkSize)
	}
	start := len(w.chunk)
	b, err := w.write(w.chunk, vals) // stays within the buffer
	if err != nil {
		return nil, err
	}
	w.chunk = b
	return w.chunk[start:len(w.chunk):len(w.chunk)], nil
}

// numericJSONLen is at least the length of the JSON appendPGNumericJSON
// writes for v: a numeric's text is longer than its binary form when its
// weight or display scale reaches past its digits (1e100: 10 bytes, 101
// digits).
func numericJSONLen(v []byte) int {
	if len(v) < 8 {
		return 0
	}
	weight := int(int16(binary.BigEndian.Uint16(v[2:])))
	dscale := int(binary.BigEndian.Uint16(v[6:]))
	return len("-.0") + 4*max(weight+1, 1) + dscale
}

// maxBinaryJSON is the longest JSON a binary value of 8 bytes or fewer is
// written as: a timestamptz of year 294276 with microseconds and its
// offset, quoted, "294276-12-31T23:59:59.999999+00:00" (an int8 is at most
// 20 characters).
const maxBinaryJSON = 40

// write appends the JSON object of one row (see object) to b.
func (w *pullRowWriter) write(b []byte, vals [][]byte) ([]byte, error) {
	v := 0
	for _, c := range w.cols {
		b = append(b, c.key...)
		if c.kind == pullNull {
			b = append(b, "null"...)
			continue
		}
		val := vals[v]
		wire := wireText
		if w.wire != nil {
			wire = w.wire[v]
		}
		v++
		switch {
		case val == nil:
			b = append(b, "null"...)
		case wire != wireText:
			var ok bool
			if b, ok = appendBinaryJSON(b, wire, val); !ok {
				return nil, fmt.Errorf("column %d: a binary value of %d bytes", v, len(val))
			}
		case c.kind == pullBool:
			if val[0] == 't' {
				b = append(b, "true"...)
			} else {
				b = append(b, "false"...)
			}
		case c.kind == pullRaw:
			b = append(b, val...)
		case c.kind == pullNumbers:
			b = appendWideNumbers(b, val)
		case c.kind == pullNumber && isJSONNumber(val):
			b = appendWideNumber(b, val) // numberform.go
		case c.kind == pullTimestamp:
			b = appendPGTimestampJSON(b, val)
		default:
			b = appendPGJSONString(b, val)
		}
	}
	return append(b, '}'), nil
}

// appendBinaryJSON appends the JSON of val, the binary form of a value as
// wire says, the way row_to_json writes the type; false when val has not
// the length of that form.
func appendBinaryJSON(b []byte, wire pullWire, val []byte) ([]byte, bool) {
	switch wire {
	case wireBool:
		if len(val) != 1 {
			return b, false
		}
		if val[0] != 0 {
			return append(b, "true"...), true
		}
		return append(b, "false"...), true
	case wireNumeric:
		return appendPGNumericJSON(b, val)
	case wireInt8, wireTimestamp, wireTimestampUTC:
		if len(val) != 8 {
			return b, false
		}
		n := int64(binary.BigEndian.Uint64(val))
		if wire == wireInt8 {
			return strconv.AppendInt(b, n, 10), true
		}
		return appendPGTimestampBinaryJSON(b, n, wire == wireTimestampUTC), true
	}
	return b, false
}

// appendPGNumericJSON appends the numeric whose binary form is v (int16
// number of digits, int16 weight of the first, uint16 sign, uint16 display
// scale, then the digits, each of four decimal digits, base 10000) as
// row_to_json writes it: the text numeric_out gives (the integer part
// without leading zeros, then exactly the display scale's decimals), a
// JSON number, with ".0" after an integer past int64's range
// (numberform.go); NaN and the infinities as strings. False when v is not
// such a form.
func appendPGNumericJSON(b, v []byte) ([]byte, bool) {
	if len(v) < 8 {
		return b, false
	}
	start := len(b)
	ndigits := int(int16(binary.BigEndian.Uint16(v)))
	weight := int(int16(binary.BigEndian.Uint16(v[2:])))
	sign := binary.BigEndian.Uint16(v[4:])
	dscale := int(binary.BigEndian.Uint16(v[6:]))
	if ndigits < 0 || len(v) != 8+2*ndigits || dscale > 0x3fff {
		return b, false
	}
	switch sign {
	case 0xC000:
		return append(b, `"NaN"`...), true
	case 0xD000:
		return append(b, `"Infinity"`...), true
	case 0xF000:
		return append(b, `"-Infinity"`...), true
	case 0x4000:
		b = append(b, '-')
	case 0x0000:
	default:
		return b, false
	}
	digit := func(i int) int {
		if i < 0 || i >= ndigits {
			return 0
		}
		return int(binary.BigEndian.Uint16(v[8+2*i:]))
	}
	for i := range ndigits {
		if digit(i) > 9999 {
			return b, false
		}
	}
	if weight < 0 {
		b = append(b, '0')
	} else {
		b = strconv.AppendInt(b, int64(digit(0)), 10)
		for i := 1; i <= weight; i++ {
			b = appendDigits(b, digit(i), 4)
		}
	}
	if dscale > 0 {
		b = append(b, '.')
		for i, n := weight+1, 0; n < dscale; i++ {
			d := digit(i)
			for p := 1000; p > 0 && n < dscale; p /= 10 {
				b = append(b, byte('0'+d/p%10))
				n++
			}
		}
	} else if !fitsInt64(b[start:]) {
		b = append(b, ".0"...) // numberform.go
	}
	return b, true
}

// appendPGTimestampBinaryJSON appends, as a JSON string, the timestamp of
// us microseconds since 2000-01-01 00:00:00 (UTC for a timestamptz, utc
// set) the way to_json writes it (PostgreSQL's XSD style): the year with at
// least four digits, 1 - year with " BC" after the rest for years before
// 1 (PostgreSQL's calendar, like Go's, is the proleptic Gregorian one),
// the date and time joined by T, the fraction of a second without its
// trailing zeros, and for a timestamptz the offset +00:00. The extremes of
// int64 are infinity and -infinity.
func appendPGTimestampBinaryJSON(b []byte, us int64, utc bool) []byte {
	switch us {
	case math.MaxInt64:
		return append(b, `"infinity"`...)
	case math.MinInt64:
		return append(b, `"-infinity"`...)
	}
	t := pgTime(us)
	frac := t.Nanosecond() / 1000
	year, month, day := t.Date()
	hour, minute, second := t.Clock()
	bc := year <= 0
	if bc {
		year = 1 - year
	}
	b = append(b, '"')
	if year < 10000 {
		b = appendDigits(b, year, 4)
	} else {
		b = strconv.AppendInt(b, int64(year), 10)
	}
	b = append(b, '-')
	b = appendDigits(b, int(month), 2)
	b = append(b, '-')
	b = appendDigits(b, day, 2)
	b = append(b, 'T')
	b = appendDigits(b, hour, 2)
	b = append(b, ':')
	b = appendDigits(b, minute, 2)
	b = append(b, ':')
	b = appendDigits(b, second, 2)
	if frac != 0 {
		digits := 6
		for frac%10 == 0 {
			frac /= 10
			digits--
		}
		b = append(b, '.')
		b = appendDigits(b, frac, digits)
	}
	if utc {
		b = append(b, "+00:00"...)
	}
	if bc {
		b = append(b, " BC"...)
	}
	return append(b, '"')
}

// appendDigits appends the last width (at most 6) decimal digits of n (not
// negative), with zeros before them. It writes the digits in place: a page
// of 1000 rows writes thousands of timestamps, and strconv's detour through
// a buffer took a third of the page's JSON writing.
func appendDigits(b []byte, n, width int) []byte {
	b = append(b, "000000"[:width]...)
	for i := len(b) - 1; i >= len(b)-width; i-- {
		b[i] = byte('0' + n%10)
		n /= 10
	}
	return b
}

// appendPGJSONString appends s as a JSON string the way PostgreSQL's
// escape_json writes it: the two-character escapes for \b \f \n \r \t " and
// \, \u00XX (lowercase hex) for the other control characters, every other
// byte as it is.
func appendPGJSONString[S ~string | ~[]byte](b []byte, s S) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '\b':
			b = append(b, '\\', 'b')
		case '\f':
			b = append(b, '\\', 'f')
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		case '"':
			b = append(b, '\\', '"')
		case '\\':
			b = append(b, '\\', '\\')
		default:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		}
		start = i + 1
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// appendPGTimestampJSON appends, as a JSON string, the timestamp or
// timestamptz whose text output under DateStyle ISO is s, the way to_json
// writes it (PostgreSQL's XSD style): the date and the time joined by T
// instead of a space, and a time zone offset of whole hours written with
// its minutes (+05 becomes +05:00; +05:30 and the +00:19:32 of local mean
// times stay as they are). The rest is the same in both: the fraction of
// a second, a year beyond 9999, the " BC" suffix, infinity and -infinity.
func appendPGTimestampJSON(b, s []byte) []byte {
	sp := bytes.IndexByte(s, ' ')
	if len(s) == 0 || s[0] < '0' || s[0] > '9' || sp < 0 {
		return appendPGJSONString(b, s) // infinity, -infinity
	}
	bc := bytes.HasSuffix(s, []byte(" BC"))
	if bc {
		s = s[:len(s)-3]
	}
	b = append(b, '"')
	b = append(b, s[:sp]...)
	b = append(b, 'T')
	rest := s[sp+1:]
	b = append(b, rest...)
	if i := lastSign(rest); i >= 0 && bytes.IndexByte(rest[i:], ':') < 0 {
		b = append(b, ":00"...)
	}
	if bc {
		b = append(b, " BC"...)
	}
	return append(b, '"')
}

// lastSign is the index of the last + or - of s, -1 when there is none
// (bytes.LastIndexAny, without building its set of bytes on every call).
func lastSign(s []byte) int {
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == '+' || s[i] == '-' {
			return i
		}
	}
	return -1
}

// isJSONNumber reports whether b is a number by the JSON grammar:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func isJSONNumber(b []byte) bool {
	i, n := 0, len(b)
	digits := func() bool {
		start := i
		for i < n && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		return i > start
	}
	if i < n && b[i] == '-' {
		i++
	}
	switch {
	case i < n && b[i] == '0':
		i++
	case !digits():
		return false
	}
	if i < n && b[i] == '.' {
		i++
		if !digits() {
			return false
		}
	}
	if i < n && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < n && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if !digits() {
			return false
		}
	}
	return i == n
}

// hydrateRows runs the pull hydration of info (st.pull) for ids and
// returns the records it read: the rows of ids that exist, are not
// deleted, and are in one of subs by the ownership rules.
func hydrateRows(ctx context.Context, tx *sql.Tx, info *tableInfo, st *pullHydration, ids, subs []string) ([]*Record, error) {
	rows, err := tx.QueryContext(ctx, st.sql, ids, subs)
	if err != nil {
		return nil, err
	}
	defer func() { _ = rows.Close() }()
	n := st.returned()
	var (
		id      string
		updated pgtype.Timestamptz
		vals    = make([]sql.RawBytes, n)
		view    = make([][]byte, n)
		dest    = make([]any, 0, n+2)
		w       = pullRowWriter{cols: st.cols}
		out     = make([]*Record, 0, len(ids))
		recs    = make([]Record, len(ids)) // one allocation for the page's records
	)
	dest = append(dest, &id, &updated)
	for i := range vals {
		dest = append(dest, &vals[i])
	}
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return nil, err
		}
		if len(out) == len(recs) {
			return nil, fmt.Errorf("more rows than the %d ids asked for", len(ids))
		}
		for i, v := range vals {
			view[i] = v
		}
		data, err := w.object(view)
		if err != nil {
			return nil, err
		}
		r := &recs[len(out)]
		r.ID, r.TableName, r.Data = id, info.cfg.TableName, data
		r.UpdatedAt = finiteTime(updated)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// finiteTime is the UTC time of a timestamptz, or the zero time for NULL
// and ±infinity (an updated-at of infinity is no version: both ways of
// reading a pull treat it alike).
func finiteTime(t pgtype.Timestamptz) time.Time {
	if p := finiteTimePtr(t); p != nil {
		return *p
	}
	return time.Time{}
}

// finiteTimePtr is finiteTime as a pointer: nil for NULL and for an
// infinite time.
func finiteTimePtr(t pgtype.Timestamptz) *time.Time {
	if !t.Valid || t.InfinityModifier != pgtype.Finite {
		return nil
	}
	u := t.Time.UTC()
	return &u
}

// returned is the number of delivered columns the statement returns (all
// but the made-up ones, which are always null).
func (st *pullHydration) returned() int {
	n := 0
	for _, c := range st.cols {
		if c.kind != pullNull {
			n++
		}
	}
	return n
}

// pullHydration is the statement of a pull hydration and how to write its
// rows as JSON (see pullColumns): $1 text[] of ids, $2 text[] of the
// client's buckets; it returns the id as the changelog gave it, the
// updated-at (NULL without the column), then the delivered columns but
// the null ones.
type pullHydration struct {
	sql  string
	cols []pullColumn
	// joinFrom is the table's side of the page statement's outer join
	// (see pullPageStatements.build): the key (k), true (f), the
	// updated-at (u) and the returned columns (c0, c1, ...) of the rows
	// that may be delivered, in the forms pullFormTyped and
	// pullFormTypedUTC; keyType is the type the record ids are cast to.
	joinFrom [2]string
	keyType  string
}

// pullTx is the read transaction of a pull: database/sql's, or, when the
// pool's driver is pgx's (the engine owns the connection for the length of
// the transaction), pgx's own, which reads the hydrated values where they
// arrived instead of converting each to a driver.Value and then to the scan
// target (two copies and an interface per column: 2 ms of a page of 1000
// rows of 12 columns in BenchmarkPullThroughput, see docs/benchmarks.md).
type pullTx interface {
	exec(ctx context.Context, query string, args ...any) error
	query(ctx context.Context, query string, args ...any) (pullRows, error)
	// hydrate runs st for ids and subs (see hydrateRows).
	hydrate(ctx context.Context, info *tableInfo, st *pullHydration, ids, subs []string) ([]*Record, error)
	// commit commits the transaction and reports whether it recorded the
	// pull rec (see Engine.recordPull) too; when it did not, the caller
	// records it. Its errors are wrapped for Pull to return.
	commit(ctx context.Context, rec *pullRecord) (bool, error)
}

// pullRows are the rows of a pullTx query.
type pullRows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
	Close()
}

// sqlPullTx is a pullTx of database/sql.
type sqlPullTx struct{ tx *sql.Tx }

// sqlPullRows adapts *sql.Rows to pullRows.
type sqlPullRows struct{ *sql.Rows }

func (r sqlPullRows) Close() { _ = r.Rows.Close() }

func (t sqlPullTx) exec(ctx context.Context, query string, args ...any) error {
	_, err := t.tx.ExecContext(ctx, query, args...)
	return err
}

func (t sqlPullTx) query(ctx context.Context, query string, args ...any) (pullRows, error) {
	rows, err := t.tx.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	return sqlPullRows{rows}, nil
}

func (t sqlPullTx) hydrate(ctx context.Context, info *tableInfo, st *pullHydration, ids, subs []string) ([]*Record, error) {
	return hydrateRows(ctx, t.tx, info, st, ids, subs)
}

// commit commits; the pull is recorded afterwards, by the caller.
func (t sqlPullTx) commit(context.Context, *pullRecord) (bool, error) {
	if err := t.tx.Commit(); err != nil {
		return false, fmt.Errorf("synchro: pull: %w", err)
	}
	return false, nil
}

// pgxPullTx is a pullTx of pgx, on the connection of the pool's driver.
//
// It saves round trips: the transaction's BEGIN and the statements run
// with exec before its first query (pullSettingsSQL) are not sent on their
// own but queued, and go with that query in one pipeline (a pgx batch);
// commit sends COMMIT with the recording of the pull in another. A read
// of a page of 1000 then takes two round trips instead of four, and the
// recording none of its own (docs/benchmarks.md, issue 14 item 4, third
// round). PostgreSQL runs the pipeline's statements one after the other,
// as if each had been sent alone: the settings apply to the query, which
// is planned after they ran, and the transaction's snapshot is taken by
// the first statement after BEGIN, as before. A client catching up has
// its next page read ahead in one round trip (readAhead): the client row
// is read in the prologue too (queueRow), and COMMIT goes after the page
// (commitAfter).
type pgxPullTx struct {
	conn *pgx.Conn
	// prologue holds BEGIN and the statements queued by exec until the
	// first query sends them; nil once sent.
	prologue *pgx.Batch
	// scans holds, for statements of the prologue queued by queueRow, by
	// their place in it, what reads their one row.
	scans map[int]func(pgx.Row) error
	// commitAfter sends COMMIT behind the first query, in its batch: the
	// transaction ends when that query's rows are read (readAhead).
	commitAfter bool
}

// pullBeginSQL begins a pull's read transaction (readTxOptions).
const pullBeginSQL = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"

// newPgxPullTx returns the transaction of a pull on conn, not begun yet:
// BEGIN goes with the first query.
func newPgxPullTx(conn *pgx.Conn) *pgxPullTx {
	b := &pgx.Batch{}
	b.Queue(pullBeginSQL)
	return &pgxPullTx{conn: conn, prologue: b}
}

func (t *pgxPullTx) exec(ctx context.Context, query string, args ...any) error {
	if t.prologue != nil {
		t.prologue.Queue(query, args...)
		return nil
	}
	_, err := t.conn.Exec(ctx, query, args...)
	return err
}

// queueRow queues query in the prologue (which must not have been sent):
// scan reads its one row when the first query sends the prologue, and an
// error it returns fails that query.
func (t *pgxPullTx) queueRow(query string, scan func(pgx.Row) error, args ...any) {
	if t.scans == nil {
		t.scans = map[int]func(pgx.Row) error{}
	}
	t.scans[t.prologue.Len()] = scan
	t.prologue.Queue(query, args...)
}

func (t *pgxPullTx) query(ctx context.Context, query string, args ...any) (pullRows, error) {
	return t.rows(ctx, query, args...)
}

// rows runs query, with the prologue before it when it has not been sent.
func (t *pgxPullTx) rows(ctx context.Context, query string, args ...any) (pgx.Rows, error) {
	b := t.prologue
	if b == nil {
		return t.conn.Query(ctx, query, args...)
	}
	t.prologue = nil
	n := b.Len()
	b.Queue(query, args...)
	if t.commitAfter {
		b.Queue("COMMIT")
	}
	br := t.conn.SendBatch(ctx, b)
	for i := range n {
		var err error
		if scan := t.scans[i]; scan != nil {
			err = scan(br.QueryRow())
		} else {
			_, err = br.Exec()
		}
		if err != nil {
			_ = br.Close()
			return nil, err
		}
	}
	rows, err := br.Query()
	if err != nil {
		_ = br.Close()
		return nil, err
	}
	return &batchRows{Rows: rows, br: br}, nil
}

// batchRows are the rows of the last query of a batch: when they are done
// or closed, the batch is read to its end, and Err reports its error.
type batchRows struct {
	pgx.Rows
	br     pgx.BatchResults
	closed bool
	err    error
}

func (r *batchRows) Next() bool {
	if r.Rows.Next() {
		return true
	}
	r.Close()
	return false
}

func (r *batchRows) Close() {
	if r.closed {
		return
	}
	r.closed = true
	r.Rows.Close()
	r.err = r.br.Close()
}

func (r *batchRows) Err() error {
	if err := r.Rows.Err(); err != nil {
		return err
	}
	return r.err
}

// commit commits the transaction, and when rec is not nil records the pull
// in the same round trip, after the commit, as a statement of its own.
func (t *pgxPullTx) commit(ctx context.Context, rec *pullRecord) (bool, error) {
	if t.prologue != nil { // nothing was sent: there is no transaction
		t.prologue = nil
		return false, nil
	}
	if rec == nil {
		tag, err := t.conn.Exec(ctx, "COMMIT")
		return false, committed(tag, err)
	}
	b := &pgx.Batch{}
	b.Queue("COMMIT")
	b.Queue(store.RecordPull, rec.id, rec.delivered, rec.acked)
	br := t.conn.SendBatch(ctx, b)
	defer func() { _ = br.Close() }()
	if err := committed(br.Exec()); err != nil {
		return false, err
	}
	if _, err := br.Exec(); err != nil {
		return false, fmt.Errorf("synchro: recording the pull: %w", err)
	}
	if err := br.Close(); err != nil {
		return false, fmt.Errorf("synchro: recording the pull: %w", err)
	}
	return true, nil
}

// committed turns COMMIT's answer into the pull's error: PostgreSQL answers
// a COMMIT of a failed transaction with ROLLBACK, which pgx's Tx.Commit
// reports as pgx.ErrTxCommitRollback and a bare COMMIT does not. (A failed
// statement has already ended the pull by then; this keeps that true.)
func committed(tag pgconn.CommandTag, err error) error {
	switch {
	case err != nil:
		return fmt.Errorf("synchro: pull: %w", err)
	case tag.String() == "ROLLBACK":
		return fmt.Errorf("synchro: pull: %w", pgx.ErrTxCommitRollback)
	}
	return nil
}

// rollback ends the transaction when it is open or failed; errors are
// ignored (a connection that broke is closed, and the pool drops it).
func (t *pgxPullTx) rollback(ctx context.Context) {
	if t.conn.IsClosed() || t.conn.PgConn().TxStatus() == 'I' {
		return
	}
	_, _ = t.conn.Exec(ctx, "ROLLBACK")
}

// hydrate is hydrateRows reading the values pgx received in place: the id
// and every delivered column are text, whose wire form in either format is
// the text itself.
func (t *pgxPullTx) hydrate(ctx context.Context, info *tableInfo, st *pullHydration, ids, subs []string) ([]*Record, error) {
	rows, err := t.rows(ctx, st.sql, ids, subs)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	// Sized from the statement, not from rows.FieldDescriptions(), which
	// is empty when the statement failed before its first row (a canceled
	// request, a bad id): the failure is then reported by rows.Err().
	n := st.returned()
	var (
		updated pgtype.Timestamptz
		dest    = make([]any, n+2)
		w       = pullRowWriter{cols: st.cols}
		out     = make([]*Record, 0, len(ids))
		recs    = make([]Record, len(ids))
	)
	dest[1] = &updated // the others are read in place (nil: not scanned)
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return nil, err
		}
		raw := rows.RawValues()
		if len(out) == len(recs) {
			return nil, fmt.Errorf("more rows than the %d ids asked for", len(ids))
		}
		if len(raw) != n+2 {
			return nil, fmt.Errorf("hydration returned %d columns, want %d", len(raw), n+2)
		}
		data, err := w.object(raw[2:])
		if err != nil {
			return nil, err
		}
		r := &recs[len(out)]
		r.ID, r.TableName, r.Data = string(raw[0]), info.cfg.TableName, data
		r.UpdatedAt = finiteTime(updated)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// inPullTx runs f in a read-only repeatable read transaction on a
// connection of e.db: pgx's own when sqlRules and the driver is pgx's
// (unless e.pullViaSQL), database/sql's otherwise. f's transaction is
// rolled back unless f committed it.
func (e *Engine) inPullTx(ctx context.Context, sqlRules bool, f func(pullTx) error) error {
	conn, err := e.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("synchro: pull: %w", err)
	}
	defer func() { _ = conn.Close() }()
	if sqlRules && !e.pullViaSQL {
		native, err := pgxconn.Raw(conn, func(c *pgx.Conn) error {
			tx := newPgxPullTx(c)
			defer tx.rollback(context.WithoutCancel(ctx))
			return f(tx)
		})
		if native || err != nil {
			return err
		}
	}
	tx, err := conn.BeginTx(ctx, readTxOptions)
	if err != nil {
		return fmt.Errorf("synchro: pull: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	return f(sqlPullTx{tx})
}
