package wal

// This file decodes the pgoutput logical replication protocol, version 1,
// into transactions of events (event.go).
//
// The messages are parsed here rather than with pglogrepl.Parse: its
// decoders index their input without bounds checks (a truncated message
// panics), size allocations from untrusted counts before checking them, and
// allocate a struct and a copy of the bytes for every tuple column. This
// parser checks every read, allocates only what the events keep, and copies
// the text of a row message into one string whose substrings become the
// row's text values.

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"runtime/debug"
	"slices"
	"strconv"
	"time"

	"github.com/jackc/pglogrepl"
)

// relKey identifies a relation by namespace and name.
type relKey struct{ schema, name string }

// internalSchema is the schema of the library's own tables. Changes to its
// relations are never captured, whatever the registry says.
const internalSchema = "synchro"

// Type OIDs whose text the decoder converts (see rowValues).
const (
	oidBool    = 16
	oidInt8    = 20
	oidInt2    = 21
	oidInt4    = 23
	oidJSON    = 114
	oidFloat4  = 700
	oidFloat8  = 701
	oidNumeric = 1700
	oidJSONB   = 3802
)

// pgEpochMicros is 2000-01-01 00:00:00 UTC, the epoch of PostgreSQL
// timestamps, in microseconds since the Unix epoch.
const pgEpochMicros = 946_684_800 * 1_000_000

// Tuple column kinds of the pgoutput TupleData submessage.
const (
	tupleNull      = 'n'
	tupleUnchanged = 'u'
	tupleText      = 't'
	tupleBinary    = 'b'
)

// errDecoderPanic marks the error decode returns when decoding panicked. A
// panic is a bug in this file; decode recovers so that a bad message cannot
// take the process down, and the fuzz test fails on this error.
var errDecoderPanic = errors.New("wal: internal error: pgoutput decoder panicked")

// column is one column of a cached relation.
type column struct {
	name string
	// typ is the column's type OID.
	typ uint32
	// key reports whether the column is part of the relation's replica
	// identity (flag bit 1 of the Relation message).
	key bool
}

// relation is a relation as last described by a Relation message.
type relation struct {
	oid    uint32
	schema string
	name   string
	// table is the registered table name, or "" when the relation's changes
	// are ignored (not registered, or in the library's own schema).
	table string
	// pkIdx is the position in cols of the registered primary key column,
	// or -1 when the relation has no such column.
	pkIdx int
	// pkName is the registered primary key column (for error messages).
	pkName string
	cols   []column
}

// ignored reports whether the relation's row changes produce no events.
func (r *relation) ignored() bool { return r.table == "" }

// String names the relation for error messages.
func (r *relation) String() string {
	return fmt.Sprintf("relation %q.%q (OID %d)", r.schema, r.name, r.oid)
}

// decoder turns pgoutput v1 messages into transactions of events for
// registered tables.
//
// A decoder follows one replication stream and is not safe for concurrent
// use. Once decode has returned an error, every later call returns an error
// too: the transaction in progress cannot be completed, so the caller must
// restart streaming from its last confirmed position with a new decoder
// (the server then sends the Relation messages again). Skipping the bad
// message instead would lose changes silently.
type decoder struct {
	tables map[relKey]string
	pks    map[string]string
	// rels caches relations by OID, as described by Relation messages.
	rels map[uint32]*relation
	// cur is the transaction between Begin and Commit, nil outside one.
	cur *txn
	// err is the first error decode returned.
	err error
	// lastEvents is the number of events of the last transaction, at
	// most maxEventsHint: the room given to the next one's.
	lastEvents int
}

// maxEventsHint bounds the room a transaction's events get up front, so
// that one large transaction does not make every small one after it
// allocate as much.
const maxEventsHint = 1024

// newDecoder returns a decoder. tables maps each registered table's resolved
// (schema, relation) to its registered name; pks maps the registered name to
// its primary key column (TableConfig.IDColumn). Both maps are copied.
func newDecoder(tables map[relKey]string, pks map[string]string) *decoder {
	return &decoder{
		tables: maps.Clone(tables),
		pks:    maps.Clone(pks),
		rels:   make(map[uint32]*relation),
	}
}

// decode handles the payload of one XLogData message (pgoutput). It returns
// the completed transaction when the message is a Commit, nil otherwise; a
// transaction is returned even when it holds no events, for its position.
//
// It returns an error for malformed input, a message outside a transaction
// (other than Relation, Type, Origin and logical decoding messages), a row
// message for a relation never described by a Relation message, or a missing
// primary key value; the error names what was wrong. The decoder keeps no
// reference to data.
func (d *decoder) decode(data []byte) (t *txn, err error) {
	if d.err != nil {
		return nil, fmt.Errorf("wal: pgoutput decoder stopped by an earlier error: %w", d.err)
	}
	defer func() {
		if p := recover(); p != nil {
			t = nil
			err = fmt.Errorf("%w on a %d-byte %s message: %v\n%s", errDecoderPanic, len(data), messageName(data), p, debug.Stack())
		}
		if err != nil {
			d.err = err
			d.cur = nil
		}
	}()
	t, err = d.decodeMessage(data)
	if err != nil {
		return nil, fmt.Errorf("wal: pgoutput %s message: %w", messageName(data), err)
	}
	return t, nil
}

// inTransaction reports whether a Begin has been decoded without its Commit
// yet. It is false after an error.
func (d *decoder) inTransaction() bool { return d.cur != nil }

// messageName names the message type of data for error messages.
func messageName(data []byte) string {
	if len(data) == 0 {
		return "empty"
	}
	switch data[0] {
	case 'B':
		return "Begin"
	case 'C':
		return "Commit"
	case 'O':
		return "Origin"
	case 'R':
		return "Relation"
	case 'Y':
		return "Type"
	case 'I':
		return "Insert"
	case 'U':
		return "Update"
	case 'D':
		return "Delete"
	case 'T':
		return "Truncate"
	case 'M':
		return "logical decoding"
	default:
		return fmt.Sprintf("unknown (type %q)", data[0])
	}
}

// decodeMessage dispatches on the message type.
func (d *decoder) decodeMessage(data []byte) (*txn, error) {
	if len(data) == 0 {
		return nil, errors.New("no message type byte")
	}
	r := msgReader{b: data, off: 1}
	var err error
	switch data[0] {
	case 'B':
		err = d.begin(&r)
	case 'C':
		return d.commit(&r)
	case 'R':
		err = d.relation(&r)
	case 'I':
		err = d.insert(&r)
	case 'U':
		err = d.update(&r)
	case 'D':
		err = d.delete(&r)
	case 'T':
		err = d.truncate(&r)
	case 'O':
		err = skipOrigin(&r)
	case 'Y':
		err = skipType(&r)
	case 'M':
		err = skipLogicalMessage(&r)
	default:
		err = errors.New("unsupported message type (the stream must use pgoutput protocol version 1)")
	}
	return nil, err
}

// begin handles a Begin message: Int64 final LSN, Int64 commit time, Int32
// xid.
func (d *decoder) begin(r *msgReader) error {
	finalLSN, err := r.uint64("final LSN")
	if err != nil {
		return err
	}
	commitTime, err := r.uint64("commit time")
	if err != nil {
		return err
	}
	xid, err := r.uint32("xid")
	if err != nil {
		return err
	}
	if err := r.end(); err != nil {
		return err
	}
	if d.cur != nil {
		return fmt.Errorf("transaction %d begins while transaction %d is still open", xid, d.cur.xid)
	}
	d.cur = &txn{
		xid:        xid,
		finalLSN:   pglogrepl.LSN(finalLSN),
		commitTime: pgTime(commitTime),
		// Transactions of a stream tend to be alike: room for as many
		// events as the last one had spares growing the slice change by
		// change (a fifth of what a burst of 100-row transactions
		// allocated).
		events: make([]event, 0, d.lastEvents),
	}
	return nil
}

// commit handles a Commit message: Int8 flags, Int64 commit LSN, Int64 end
// LSN, Int64 commit time. It returns the finished transaction.
func (d *decoder) commit(r *msgReader) (*txn, error) {
	if _, err := r.uint8("flags"); err != nil {
		return nil, err
	}
	if _, err := r.uint64("commit LSN"); err != nil {
		return nil, err
	}
	endLSN, err := r.uint64("end LSN")
	if err != nil {
		return nil, err
	}
	if _, err := r.uint64("commit time"); err != nil {
		return nil, err
	}
	if err := r.end(); err != nil {
		return nil, err
	}
	if d.cur == nil {
		return nil, errors.New("commit message without a begin message")
	}
	t := d.cur
	d.cur = nil
	t.endLSN = pglogrepl.LSN(endLSN)
	d.lastEvents = min(len(t.events), maxEventsHint)
	return t, nil
}

// pgTime converts a PostgreSQL timestamp (microseconds since 2000-01-01 UTC)
// to a time in UTC. Out-of-range values wrap rather than fail: the server
// only sends real commit times.
func pgTime(micros uint64) time.Time {
	return time.UnixMicro(int64(micros) + pgEpochMicros).UTC()
}

// minColumnBytes is the smallest encoding of a Relation message column:
// flags, an empty name's terminator, type OID and type modifier.
const minColumnBytes = 1 + 1 + 4 + 4

// relation handles a Relation message: Int32 OID, String namespace, String
// name, Int8 replica identity, Int16 column count, then per column Int8 flags,
// String name, Int32 type OID, Int32 type modifier. It replaces any cached
// description of the same OID (a relation is described again after ALTER
// TABLE or a rename).
func (d *decoder) relation(r *msgReader) error {
	oid, err := r.uint32("relation OID")
	if err != nil {
		return err
	}
	schema, err := r.cstring("namespace")
	if err != nil {
		return err
	}
	name, err := r.cstring("relation name")
	if err != nil {
		return err
	}
	if _, err := r.uint8("replica identity"); err != nil {
		return err
	}
	n, err := r.uint16("column count")
	if err != nil {
		return err
	}
	if int(n) > r.remaining()/minColumnBytes {
		return fmt.Errorf("relation %q.%q: message truncated: %d columns need at least %d bytes, %d left", schema, name, n, int(n)*minColumnBytes, r.remaining())
	}
	cols := make([]column, n)
	for i := range cols {
		flags, err := r.uint8("column flags")
		if err != nil {
			return fmt.Errorf("column %d: %w", i, err)
		}
		colName, err := r.cstring("column name")
		if err != nil {
			return fmt.Errorf("column %d: %w", i, err)
		}
		typ, err := r.uint32("column type OID")
		if err != nil {
			return fmt.Errorf("column %d (%q): %w", i, colName, err)
		}
		if _, err := r.uint32("column type modifier"); err != nil {
			return fmt.Errorf("column %d (%q): %w", i, colName, err)
		}
		cols[i] = column{name: colName, typ: typ, key: flags&1 != 0}
	}
	if err := r.end(); err != nil {
		return err
	}

	rel := &relation{oid: oid, schema: schema, name: name, pkIdx: -1, cols: cols}
	if schema != internalSchema {
		if table, ok := d.tables[relKey{schema, name}]; ok {
			rel.table = table
			rel.pkName = d.pks[table]
			for i := range cols {
				if cols[i].name == rel.pkName {
					rel.pkIdx = i
					break
				}
			}
		}
	}
	d.rels[oid] = rel
	return nil
}

// rowRelation reads the relation OID that starts a row message and returns
// the cached relation.
func (d *decoder) rowRelation(r *msgReader) (*relation, error) {
	oid, err := r.uint32("relation OID")
	if err != nil {
		return nil, err
	}
	if d.cur == nil {
		return nil, fmt.Errorf("change to relation OID %d outside a transaction (no Begin)", oid)
	}
	rel := d.rels[oid]
	if rel == nil {
		return nil, fmt.Errorf("relation OID %d was not described by a Relation message", oid)
	}
	return rel, nil
}

// insert handles an Insert message: Int32 OID, Byte1 'N', TupleData.
func (d *decoder) insert(r *msgReader) error {
	rel, err := d.rowRelation(r)
	if err != nil {
		return err
	}
	if err := r.expectTupleKind('N', "new tuple"); err != nil {
		return fmt.Errorf("%s: %w", rel, err)
	}
	src := rowSource(r, rel)
	nw, err := readTuple(r, rel, src, false)
	if err != nil {
		return fmt.Errorf("%s: new tuple: %w", rel, err)
	}
	if err := r.end(); err != nil {
		return fmt.Errorf("%s: %w", rel, err)
	}
	if rel.ignored() {
		return nil
	}
	if nw.pkKind != tupleText {
		return fmt.Errorf("%s: new tuple: %w", rel, rel.missingPK(nw.pkKind, false))
	}
	d.cur.events = append(d.cur.events, event{kind: evInsert, table: rel.table, id: nw.pk, newRow: nw.row})
	return nil
}

// update handles an Update message: Int32 OID, optionally Byte1 'K' or 'O'
// and the old TupleData, then Byte1 'N' and the new TupleData.
func (d *decoder) update(r *msgReader) error {
	rel, err := d.rowRelation(r)
	if err != nil {
		return err
	}
	src := rowSource(r, rel)
	kind, err := r.uint8("tuple type")
	if err != nil {
		return fmt.Errorf("%s: %w", rel, err)
	}
	var old tuple
	hasOld := kind == 'K' || kind == 'O'
	if hasOld {
		if old, err = readTuple(r, rel, src, kind == 'K'); err != nil {
			return fmt.Errorf("%s: old tuple (%c): %w", rel, kind, err)
		}
		if kind, err = r.uint8("new tuple type"); err != nil {
			return fmt.Errorf("%s: %w", rel, err)
		}
	}
	if kind != 'N' {
		if hasOld {
			return fmt.Errorf("%s: tuple type %q after the old tuple, want 'N' (new tuple)", rel, kind)
		}
		return fmt.Errorf("%s: tuple type %q, want 'K' (key), 'O' (old tuple) or 'N' (new tuple)", rel, kind)
	}
	nw, err := readTuple(r, rel, src, false)
	if err != nil {
		return fmt.Errorf("%s: new tuple: %w", rel, err)
	}
	if err := r.end(); err != nil {
		return fmt.Errorf("%s: %w", rel, err)
	}
	if rel.ignored() {
		return nil
	}

	ev := event{kind: evUpdate, table: rel.table, newRow: nw.row}
	if hasOld {
		ev.oldRow = old.row
	}
	switch {
	case nw.pkKind == tupleText:
		ev.id = nw.pk
	case nw.pkKind == tupleUnchanged && hasOld && old.pkKind == tupleText:
		ev.id = old.pk
	default:
		return fmt.Errorf("%s: new tuple: %w", rel, rel.missingPK(nw.pkKind, false))
	}
	if hasOld && old.pkKind == tupleText && old.pk != ev.id {
		ev.oldID, ev.keyChanged = old.pk, true
	}
	d.cur.events = append(d.cur.events, ev)
	return nil
}

// delete handles a Delete message: Int32 OID, Byte1 'K' or 'O', and the old
// TupleData.
func (d *decoder) delete(r *msgReader) error {
	rel, err := d.rowRelation(r)
	if err != nil {
		return err
	}
	src := rowSource(r, rel)
	kind, err := r.uint8("tuple type")
	if err != nil {
		return fmt.Errorf("%s: %w", rel, err)
	}
	if kind != 'K' && kind != 'O' {
		return fmt.Errorf("%s: tuple type %q, want 'K' (key) or 'O' (old tuple)", rel, kind)
	}
	old, err := readTuple(r, rel, src, kind == 'K')
	if err != nil {
		return fmt.Errorf("%s: old tuple (%c): %w", rel, kind, err)
	}
	if err := r.end(); err != nil {
		return fmt.Errorf("%s: %w", rel, err)
	}
	if rel.ignored() {
		return nil
	}
	if old.pkKind != tupleText {
		return fmt.Errorf("%s: old tuple (%c): %w", rel, kind, rel.missingPK(old.pkKind, kind == 'K'))
	}
	d.cur.events = append(d.cur.events, event{kind: evDelete, table: rel.table, id: old.pk, oldRow: old.row})
	return nil
}

// truncate handles a Truncate message: Int32 relation count, Int8 options,
// then each relation's Int32 OID. The relations were all described before.
func (d *decoder) truncate(r *msgReader) error {
	n, err := r.uint32("relation count")
	if err != nil {
		return err
	}
	if _, err := r.uint8("options"); err != nil {
		return err
	}
	if d.cur == nil {
		return errors.New("TRUNCATE outside a transaction (no Begin)")
	}
	if uint64(n)*4 != uint64(r.remaining()) {
		return fmt.Errorf("message truncated or too long: %d relations need %d bytes of OIDs, %d left", n, uint64(n)*4, r.remaining())
	}
	var tables []string
	for range n {
		oid, err := r.uint32("relation OID")
		if err != nil {
			return err
		}
		rel := d.rels[oid]
		if rel == nil {
			return fmt.Errorf("relation OID %d was not described by a Relation message", oid)
		}
		if !rel.ignored() && !slices.Contains(tables, rel.table) {
			tables = append(tables, rel.table)
		}
	}
	if len(tables) > 0 {
		d.cur.events = append(d.cur.events, event{kind: evTruncate, tables: tables})
	}
	return nil
}

// skipOrigin validates an Origin message (Int64 LSN, String name), which
// carries nothing the consumer uses.
func skipOrigin(r *msgReader) error {
	if _, err := r.uint64("origin LSN"); err != nil {
		return err
	}
	if _, err := r.cstring("origin name"); err != nil {
		return err
	}
	return r.end()
}

// skipType validates a Type message (Int32 OID, String namespace, String
// name), which carries nothing the consumer uses: values are decoded from
// their text.
func skipType(r *msgReader) error {
	if _, err := r.uint32("type OID"); err != nil {
		return err
	}
	if _, err := r.cstring("namespace"); err != nil {
		return err
	}
	if _, err := r.cstring("type name"); err != nil {
		return err
	}
	return r.end()
}

// skipLogicalMessage validates a logical decoding message (Int8 flags, Int64
// LSN, String prefix, Int32 length, content), which the consumer ignores.
func skipLogicalMessage(r *msgReader) error {
	if _, err := r.uint8("flags"); err != nil {
		return err
	}
	if _, err := r.uint64("LSN"); err != nil {
		return err
	}
	if _, err := r.cstring("prefix"); err != nil {
		return err
	}
	n, err := r.uint32("content length")
	if err != nil {
		return err
	}
	if _, err := r.bytes(n, "content"); err != nil {
		return err
	}
	return r.end()
}

// rowSource returns the message as one string when the relation's row
// values will be kept, "" otherwise. Text values are substrings of it, so a
// tuple costs one copy of its bytes instead of one allocation per column.
func rowSource(r *msgReader, rel *relation) string {
	if rel.ignored() {
		return ""
	}
	return string(r.b)
}

// tuple is one decoded TupleData submessage.
type tuple struct {
	// row holds the decoded values; nil for an ignored relation.
	row rowValues
	// pk is the primary key column's text, when pkKind is tupleText.
	pk string
	// pkKind is how the primary key column was sent: tupleText,
	// tupleNull or tupleUnchanged; 0 when it was not sent (the tuple is
	// shorter, the relation has no such column, or the column is not part
	// of the replica identity in a key tuple).
	pkKind byte
}

// readTuple reads a TupleData submessage (Int16 column count, then per
// column Byte1 'n', 'u', or 't'/'b' with Int32 length and bytes) of rel.
// src is the whole message as a string (see rowSource), or "" when rel is
// ignored: then the tuple is only validated. A keyOnly tuple (Byte1 'K')
// carries the replica identity columns; the others are sent as NULLs that do
// not stand for values, so only key columns are kept.
func readTuple(r *msgReader, rel *relation, src string, keyOnly bool) (tuple, error) {
	var t tuple
	n, err := r.uint16("column count")
	if err != nil {
		return t, err
	}
	if int(n) > len(rel.cols) {
		return t, fmt.Errorf("%d columns, but the relation has %d", n, len(rel.cols))
	}
	build := !rel.ignored()
	if build {
		t.row = make(rowValues, n)
	}
	for i := range int(n) {
		col := &rel.cols[i]
		kind, err := r.uint8("column kind")
		if err != nil {
			return t, fmt.Errorf("column %d (%q): %w", i, col.name, err)
		}
		keep := build && (!keyOnly || col.key)
		switch kind {
		case tupleNull:
			if keep {
				t.row[col.name] = nil
			}
		case tupleUnchanged:
			// Absent from the row: the server did not send the value.
		case tupleText:
			length, err := r.uint32("value length")
			if err != nil {
				return t, fmt.Errorf("column %d (%q): %w", i, col.name, err)
			}
			start := r.off
			b, err := r.bytes(length, "value")
			if err != nil {
				return t, fmt.Errorf("column %d (%q): %w", i, col.name, err)
			}
			if keep {
				s := src[start : start+len(b)]
				v, err := decodeText(col.typ, b, s)
				if err != nil {
					return t, fmt.Errorf("column %d (%q): %w", i, col.name, err)
				}
				t.row[col.name] = v
				if i == rel.pkIdx {
					t.pk = s
				}
			}
		case tupleBinary:
			return t, fmt.Errorf("column %d (%q): binary tuple data is not supported (start replication without binary)", i, col.name)
		default:
			return t, fmt.Errorf("column %d (%q): unknown column kind %q", i, col.name, kind)
		}
		if i == rel.pkIdx && (!keyOnly || col.key) {
			t.pkKind = kind
		}
	}
	return t, nil
}

// missingPK describes why a tuple gave no primary key value; kind is the
// tuple's pkKind.
func (r *relation) missingPK(kind byte, keyOnly bool) error {
	if r.pkName == "" {
		return fmt.Errorf("no primary key column is configured for table %q", r.table)
	}
	var why string
	switch {
	case r.pkIdx < 0:
		why = "the relation has no such column"
	case kind == tupleNull:
		why = "it is NULL"
	case kind == tupleUnchanged:
		why = "it was not sent (unchanged TOAST value) and no old value was sent"
	case keyOnly && !r.cols[r.pkIdx].key:
		why = "it is not part of the replica identity, so the key tuple lacks it"
	default:
		why = "the tuple has too few columns"
	}
	return fmt.Errorf("no value for primary key column %q: %s", r.pkName, why)
}

// decodeText converts the text of a value of type typ (b, and the same bytes
// as s) to its rowValues representation.
func decodeText(typ uint32, b []byte, s string) (any, error) {
	switch typ {
	case oidBool:
		switch s {
		case "t":
			return true, nil
		case "f":
			return false, nil
		}
		return nil, fmt.Errorf("invalid boolean %q", s)
	case oidInt2, oidInt4, oidInt8:
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("invalid integer %q", s)
		}
		return v, nil
	case oidFloat4, oidFloat8:
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			if errors.Is(err, strconv.ErrRange) {
				return s, nil
			}
			return nil, fmt.Errorf("invalid floating-point number %q", s)
		}
		if math.IsNaN(v) || math.IsInf(v, 0) {
			// JSON has no NaN or infinities: keep PostgreSQL's spelling.
			return s, nil
		}
		return v, nil
	case oidNumeric:
		if isJSONNumber(b) {
			return json.Number(s), nil
		}
		// NaN, Infinity and -Infinity.
		return s, nil
	case oidJSON, oidJSONB:
		if json.Valid(b) {
			return json.RawMessage(s), nil
		}
		return s, nil
	default:
		return s, nil
	}
}

// isJSONNumber reports whether b is a number in JSON's grammar:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func isJSONNumber(b []byte) bool {
	i := 0
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		i = skipDigits(b, i+1)
	default:
		return false
	}
	if i < len(b) && b[i] == '.' {
		j := skipDigits(b, i+1)
		if j == i+1 {
			return false
		}
		i = j
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := skipDigits(b, i)
		if j == i {
			return false
		}
		i = j
	}
	return i == len(b)
}

// skipDigits returns the index of the first non-digit of b at or after i.
func skipDigits(b []byte, i int) int {
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	return i
}

// msgReader reads the big-endian fields of one message, checking every read
// against the message's length. Its errors name the field being read.
type msgReader struct {
	b   []byte
	off int
}

// remaining returns the number of unread bytes.
func (r *msgReader) remaining() int { return len(r.b) - r.off }

// short returns the error for a field of need bytes that does not fit.
func (r *msgReader) short(field string, need uint64) error {
	return fmt.Errorf("%s: message truncated: need %d bytes at offset %d, %d left", field, need, r.off, r.remaining())
}

func (r *msgReader) uint8(field string) (byte, error) {
	if r.remaining() < 1 {
		return 0, r.short(field, 1)
	}
	v := r.b[r.off]
	r.off++
	return v, nil
}

func (r *msgReader) uint16(field string) (uint16, error) {
	if r.remaining() < 2 {
		return 0, r.short(field, 2)
	}
	v := binary.BigEndian.Uint16(r.b[r.off:])
	r.off += 2
	return v, nil
}

func (r *msgReader) uint32(field string) (uint32, error) {
	if r.remaining() < 4 {
		return 0, r.short(field, 4)
	}
	v := binary.BigEndian.Uint32(r.b[r.off:])
	r.off += 4
	return v, nil
}

func (r *msgReader) uint64(field string) (uint64, error) {
	if r.remaining() < 8 {
		return 0, r.short(field, 8)
	}
	v := binary.BigEndian.Uint64(r.b[r.off:])
	r.off += 8
	return v, nil
}

// bytes returns the next n bytes, without copying.
func (r *msgReader) bytes(n uint32, field string) ([]byte, error) {
	if uint64(n) > uint64(r.remaining()) {
		return nil, r.short(field, uint64(n))
	}
	v := r.b[r.off : r.off+int(n)]
	r.off += int(n)
	return v, nil
}

// cstring reads a NUL-terminated string and returns a copy of it.
func (r *msgReader) cstring(field string) (string, error) {
	for i := r.off; i < len(r.b); i++ {
		if r.b[i] == 0 {
			s := string(r.b[r.off:i])
			r.off = i + 1
			return s, nil
		}
	}
	return "", fmt.Errorf("%s: message truncated: no NUL terminator after offset %d", field, r.off)
}

// expectTupleKind reads a tuple type byte that must be want.
func (r *msgReader) expectTupleKind(want byte, what string) error {
	got, err := r.uint8("tuple type")
	if err != nil {
		return err
	}
	if got != want {
		return fmt.Errorf("tuple type %q, want %q (%s)", got, want, what)
	}
	return nil
}

// end checks that the message has no bytes left.
func (r *msgReader) end() error {
	if n := r.remaining(); n > 0 {
		return fmt.Errorf("%d unexpected bytes at the end of the message (offset %d)", n, r.off)
	}
	return nil
}
