package wal

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/synchrosync/synchro/internal/pgtest"
)

// The tests in this file build pgoutput protocol version 1 messages by hand
// (see "Logical Replication Message Formats" in the PostgreSQL docs) and need
// no database. TestDecodeRealStream checks the decoder against a server.

// msg appends the big-endian fields of a pgoutput message.
type msg []byte

func (m msg) u8(v byte) msg       { return append(m, v) }
func (m msg) u16(v uint16) msg    { return binary.BigEndian.AppendUint16(m, v) }
func (m msg) u32(v uint32) msg    { return binary.BigEndian.AppendUint32(m, v) }
func (m msg) u64(v uint64) msg    { return binary.BigEndian.AppendUint64(m, v) }
func (m msg) str(s string) msg    { return append(append(m, s...), 0) }
func (m msg) raw(b []byte) msg    { return append(m, b...) }
func pgMicros(t time.Time) uint64 { return uint64(t.UnixMicro() - pgEpochMicros) }

func beginMsg(finalLSN uint64, commitTime time.Time, xid uint32) []byte {
	return msg{'B'}.u64(finalLSN).u64(pgMicros(commitTime)).u32(xid)
}

func commitMsg(commitLSN, endLSN uint64, commitTime time.Time) []byte {
	return msg{'C'}.u8(0).u64(commitLSN).u64(endLSN).u64(pgMicros(commitTime))
}

// col describes a column of a test Relation message.
type col struct {
	name string
	typ  uint32
	key  bool
}

func relationMsg(oid uint32, schema, name string, cols ...col) []byte {
	m := msg{'R'}.u32(oid).str(schema).str(name).u8('d').u16(uint16(len(cols)))
	for _, c := range cols {
		var flags byte
		if c.key {
			flags = 1
		}
		m = m.u8(flags).str(c.name).u32(c.typ).u32(0xFFFFFFFF) // typmod -1
	}
	return m
}

// val is one column of a test tuple.
type val struct {
	kind byte
	data string
}

func text(s string) val { return val{'t', s} }

var (
	null      = val{kind: 'n'}
	unchanged = val{kind: 'u'}
)

func tupleData(vals ...val) []byte {
	m := msg{}.u16(uint16(len(vals)))
	for _, v := range vals {
		m = m.u8(v.kind)
		if v.kind == 't' || v.kind == 'b' {
			m = m.u32(uint32(len(v.data))).str(v.data)
			m = m[:len(m)-1] // not NUL-terminated
		}
	}
	return m
}

func insertMsg(oid uint32, vals ...val) []byte {
	return msg{'I'}.u32(oid).u8('N').raw(tupleData(vals...))
}

// updateMsg builds an Update; oldKind 0 sends no old tuple.
func updateMsg(oid uint32, oldKind byte, old []val, nw []val) []byte {
	m := msg{'U'}.u32(oid)
	if oldKind != 0 {
		m = m.u8(oldKind).raw(tupleData(old...))
	}
	return m.u8('N').raw(tupleData(nw...))
}

func deleteMsg(oid uint32, kind byte, old ...val) []byte {
	return msg{'D'}.u32(oid).u8(kind).raw(tupleData(old...))
}

func truncateMsg(options byte, oids ...uint32) []byte {
	m := msg{'T'}.u32(uint32(len(oids))).u8(options)
	for _, oid := range oids {
		m = m.u32(oid)
	}
	return m
}

func originMsg(name string) []byte { return msg{'O'}.u64(0x1000).str(name) }

func typeMsg(oid uint32, schema, name string) []byte {
	return msg{'Y'}.u32(oid).str(schema).str(name)
}

func logicalMsg(transactional bool, prefix, content string) []byte {
	var flags byte
	if transactional {
		flags = 1
	}
	return msg{'M'}.u8(flags).u64(0x2000).str(prefix).u32(uint32(len(content))).raw([]byte(content))
}

// Type OIDs used by the tests besides the decoder's own constants.
const (
	oidText        = 25
	oidUUID        = 2950
	oidTimestamptz = 1184
)

// OIDs of the test relations.
const (
	oidItems  = 100 // public.items, registered as "items", key id bigint
	oidOrders = 101 // public.orders, registered as "orders", key order_id text
	oidAudit  = 102 // public.audit, not registered
	oidSync   = 103 // synchro.changelog, in the library's schema
)

// itemsCols are the columns of public.items: one of every decoded kind.
var itemsCols = []col{
	{"id", oidInt8, true},
	{"title", oidText, false},
	{"price", oidNumeric, false},
	{"payload", oidJSONB, false},
	{"active", oidBool, false},
	{"ratio", oidFloat8, false},
	{"small", oidInt2, false},
	{"qty", oidInt4, false},
	{"ref", oidUUID, false},
	{"body", oidText, false},
	{"notes", oidText, false},
	{"f4", oidFloat4, false},
	{"doc", oidJSON, false},
	{"at", oidTimestamptz, false},
	{"nan", oidNumeric, false},
	{"inf", oidFloat8, false},
}

var (
	relItems  = relationMsg(oidItems, "public", "items", itemsCols...)
	relOrders = relationMsg(oidOrders, "public", "orders",
		col{"order_id", oidText, true}, col{"item_id", oidInt8, false}, col{"note", oidText, false})
	relAudit = relationMsg(oidAudit, "public", "audit", col{"id", oidInt4, true}, col{"what", oidText, false})
	relSync  = relationMsg(oidSync, "synchro", "changelog", col{"seq", oidInt8, true}, col{"payload", oidText, false})
)

var (
	testTime = time.Date(2024, 5, 6, 7, 8, 9, 123456000, time.UTC)
	begin1   = beginMsg(0x16B3748, testTime, 731)
	commit1  = commitMsg(0x16B3748, 0x16B3778, testTime)
)

// newTestDecoder returns a decoder for the registered tables items and
// orders. synchro.changelog is mapped too, to show that the library's
// schema is ignored whatever the mapping says, and public.nokey is
// registered without a primary key column.
func newTestDecoder() *decoder {
	return newDecoder(map[relKey]string{
		{"public", "items"}:      "items",
		{"public", "orders"}:     "orders",
		{"public", "nokey"}:      "nokey",
		{"synchro", "changelog"}: "changelog",
	}, map[string]string{"items": "id", "orders": "order_id", "changelog": "seq"})
}

// decodeAll feeds msgs to d, failing the test on an error, and returns the
// transactions they completed.
func decodeAll(t *testing.T, d *decoder, msgs ...[]byte) []*txn {
	t.Helper()
	var txns []*txn
	for i, m := range msgs {
		tx, err := d.decode(m)
		if err != nil {
			t.Fatalf("message %d (%q): %v", i, m[:1], err)
		}
		if tx != nil {
			txns = append(txns, tx)
		}
	}
	return txns
}

// decodeTxn feeds msgs, which must complete exactly one transaction with
// their last message, and returns it.
func decodeTxn(t *testing.T, d *decoder, msgs ...[]byte) *txn {
	t.Helper()
	txns := decodeAll(t, d, msgs...)
	if len(txns) != 1 {
		t.Fatalf("got %d transactions, want 1", len(txns))
	}
	return txns[0]
}

// itemRow returns the values of an items tuple holding only an id and a
// title; the other columns are NULL.
func itemVals(id, title string) []val {
	v := []val{text(id), text(title)}
	for range len(itemsCols) - 2 {
		v = append(v, null)
	}
	return v
}

func itemRow(id int64, title string) rowValues {
	r := rowValues{"id": id, "title": title}
	for _, c := range itemsCols[2:] {
		r[c.name] = nil
	}
	return r
}

func checkEvents(t *testing.T, got, want []event) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d events, want %d:\n got %s\nwant %s", len(got), len(want), fmtEvents(got), fmtEvents(want))
	}
	for i := range got {
		if !reflect.DeepEqual(got[i], want[i]) {
			t.Errorf("event %d:\n got %s\nwant %s", i, fmtEvent(got[i]), fmtEvent(want[i]))
		}
	}
}

func fmtEvents(evs []event) string {
	var b strings.Builder
	for _, e := range evs {
		b.WriteString("\n  " + fmtEvent(e))
	}
	return b.String()
}

func fmtEvent(e event) string {
	return fmt.Sprintf("{kind:%d table:%q id:%q oldID:%q keyChanged:%v tables:%q\n    newRow:%s\n    oldRow:%s}",
		e.kind, e.table, e.id, e.oldID, e.keyChanged, e.tables, fmtRow(e.newRow), fmtRow(e.oldRow))
}

// fmtRow prints a row with each value's dynamic type.
func fmtRow(r rowValues) string {
	if r == nil {
		return "nil"
	}
	var b strings.Builder
	b.WriteString("{")
	for _, c := range itemsCols {
		if v, ok := r[c.name]; ok {
			fmt.Fprintf(&b, "%s:%T(%v) ", c.name, v, v)
		}
	}
	for k, v := range r {
		if !isItemsCol(k) {
			fmt.Fprintf(&b, "%s:%T(%v) ", k, v, v)
		}
	}
	b.WriteString("}")
	return b.String()
}

func isItemsCol(name string) bool {
	for _, c := range itemsCols {
		if c.name == name {
			return true
		}
	}
	return false
}

func TestDecodeInsertTypedValues(t *testing.T) {
	d := newTestDecoder()
	const (
		bigID   = "9007199254740993" // 2^53+1: not representable as a float64
		price   = "12345678901234567890.1234567890"
		payload = `{"a": [1, 2.50, {"b": null}], "c": "d"}`
		ref     = "5f0c6a8e-1b2f-4c3d-9e4f-0a1b2c3d4e5f"
		at      = "2024-01-02 03:04:05.123456+00"
	)
	tx := decodeTxn(t, d, relItems, begin1, insertMsg(oidItems,
		text(bigID),        // id
		text("héllo, 世界"),  // title
		text(price),        // price
		text(payload),      // payload
		text("t"),          // active
		text("0.1"),        // ratio
		text("-32768"),     // small
		text("2147483647"), // qty
		text(ref),          // ref
		unchanged,          // body
		null,               // notes
		text("1.5"),        // f4
		text("[1, 2]"),     // doc
		text(at),           // at
		text("NaN"),        // nan
		text("-Infinity"),  // inf
	), commit1)

	checkEvents(t, tx.events, []event{{
		kind:  evInsert,
		table: "items",
		id:    bigID,
		newRow: rowValues{
			"id":      int64(9007199254740993),
			"title":   "héllo, 世界",
			"price":   json.Number(price),
			"payload": json.RawMessage(payload),
			"active":  true,
			"ratio":   0.1,
			"small":   int64(-32768),
			"qty":     int64(2147483647),
			"ref":     ref,
			"notes":   nil,
			"f4":      1.5,
			"doc":     json.RawMessage("[1, 2]"),
			"at":      at,
			"nan":     "NaN",
			"inf":     "-Infinity",
		},
	}})
	row := tx.events[0].newRow
	if v, ok := row["body"]; ok {
		t.Errorf("unchanged TOAST column body is present (%v), want absent", v)
	}
	if v, ok := row["notes"]; !ok || v != nil {
		t.Errorf("NULL column notes = %v, %v; want present and nil", v, ok)
	}
	if n := row["price"].(json.Number); len(strings.ReplaceAll(n.String(), ".", "")) != 30 {
		t.Errorf("price %s does not keep its 30 digits", n)
	}
}

func TestDecodeTextFallbacks(t *testing.T) {
	// Values the server never sends for these types, or that JSON cannot
	// hold, are kept as their text.
	for _, tc := range []struct {
		typ  uint32
		text string
		want any
	}{
		{oidJSONB, "not json", "not json"},
		{oidJSON, `{"a":`, `{"a":`},
		{oidNumeric, "Infinity", "Infinity"},
		{oidNumeric, "-Infinity", "-Infinity"},
		{oidNumeric, "-0.000", json.Number("-0.000")},
		{oidNumeric, "1e5", json.Number("1e5")},
		{oidNumeric, ".5", ".5"},
		{oidFloat8, "NaN", "NaN"},
		{oidFloat8, "Infinity", "Infinity"},
		{oidFloat8, "1e400", "1e400"},
		{oidFloat8, "1.7976931348623157e+308", 1.7976931348623157e+308},
		{oidFloat4, "-0", 0.0},
		{oidBool, "f", false},
		{oidInt8, "-9223372036854775808", int64(-9223372036854775808)},
		{oidText, "", ""},
		{oidUUID, "not checked", "not checked"},
	} {
		got, err := decodeText(tc.typ, []byte(tc.text), tc.text)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("decodeText(%d, %q) = %T(%v), %v; want %T(%v)", tc.typ, tc.text, got, got, err, tc.want, tc.want)
		}
	}
}

func TestIsJSONNumber(t *testing.T) {
	for s, want := range map[string]bool{
		"0": true, "-0": true, "12": true, "1.25": true, "-1.5e10": true, "1E+2": true, "2e-3": true,
		"": false, "-": false, "01": false, "1.": false, ".1": false, "1e": false, "1e+": false,
		"+1": false, "NaN": false, "Infinity": false, "1 ": false, "0x10": false,
	} {
		if got := isJSONNumber([]byte(s)); got != want {
			t.Errorf("isJSONNumber(%q) = %v, want %v", s, got, want)
		}
	}
}

func TestDecodeUpdateWithoutOldTuple(t *testing.T) {
	d := newTestDecoder()
	nw := itemVals("7", "new title")
	nw[9] = unchanged // body
	tx := decodeTxn(t, d, relItems, begin1, updateMsg(oidItems, 0, nil, nw), commit1)
	want := itemRow(7, "new title")
	delete(want, "body")
	checkEvents(t, tx.events, []event{{kind: evUpdate, table: "items", id: "7", newRow: want}})
}

func TestDecodeUpdateKeyChange(t *testing.T) {
	d := newTestDecoder()
	// Under the default replica identity the key tuple carries the old key;
	// the other columns are sent as NULLs that are not values.
	old := make([]val, len(itemsCols))
	for i := range old {
		old[i] = null
	}
	old[0] = text("41")
	tx := decodeTxn(t, d, relItems, begin1,
		updateMsg(oidItems, 'K', old, itemVals("42", "moved")), commit1)
	checkEvents(t, tx.events, []event{{
		kind: evUpdate, table: "items", id: "42", oldID: "41", keyChanged: true,
		newRow: itemRow(42, "moved"),
		oldRow: rowValues{"id": int64(41)},
	}})
}

func TestDecodeUpdateReplicaIdentityFull(t *testing.T) {
	d := newTestDecoder()
	// Under REPLICA IDENTITY FULL every column is flagged as key and the
	// whole old row is sent.
	var full []col
	for _, c := range itemsCols {
		c.key = true
		full = append(full, c)
	}
	rel := relationMsg(oidItems, "public", "items", full...)
	tx := decodeTxn(t, d, rel, begin1,
		updateMsg(oidItems, 'O', itemVals("5", "before"), itemVals("5", "after")), commit1)
	checkEvents(t, tx.events, []event{{
		kind: evUpdate, table: "items", id: "5",
		newRow: itemRow(5, "after"),
		oldRow: itemRow(5, "before"),
	}})
}

func TestDecodeUpdateUnchangedKeyUsesOldKey(t *testing.T) {
	// A key is never TOASTed, but a new tuple that does not send it must
	// still give the event an id: the old tuple's.
	d := newTestDecoder()
	nw := itemVals("", "t")
	nw[0] = unchanged
	tx := decodeTxn(t, d, relItems, begin1, updateMsg(oidItems, 'O', itemVals("9", "t"), nw), commit1)
	newRow := itemRow(0, "t")
	delete(newRow, "id")
	checkEvents(t, tx.events, []event{{
		kind: evUpdate, table: "items", id: "9", newRow: newRow, oldRow: itemRow(9, "t"),
	}})
}

func TestDecodeDelete(t *testing.T) {
	d := newTestDecoder()
	tx := decodeTxn(t, d, relItems, relOrders, begin1,
		deleteMsg(oidItems, 'K', append([]val{text("3")}, itemVals("", "")[1:]...)...),
		deleteMsg(oidOrders, 'O', text("A-1"), text("3"), null),
		commit1)
	checkEvents(t, tx.events, []event{
		{kind: evDelete, table: "items", id: "3", oldRow: rowValues{"id": int64(3)}},
		{kind: evDelete, table: "orders", id: "A-1", oldRow: rowValues{"order_id": "A-1", "item_id": int64(3), "note": nil}},
	})
}

func TestDecodeTruncate(t *testing.T) {
	d := newTestDecoder()
	tx := decodeTxn(t, d, relItems, relAudit, relOrders, relSync, begin1,
		truncateMsg(1, oidItems, oidAudit, oidOrders),
		truncateMsg(0, oidAudit),           // only unregistered: no event
		truncateMsg(0, oidSync),            // the library's own table: no event
		truncateMsg(0, oidItems, oidItems), // listed twice: once
		commit1)
	checkEvents(t, tx.events, []event{
		{kind: evTruncate, tables: []string{"items", "orders"}},
		{kind: evTruncate, tables: []string{"items"}},
	})
}

func TestDecodeIgnoredRelations(t *testing.T) {
	d := newTestDecoder()
	tx := decodeTxn(t, d, relAudit, relSync, begin1,
		insertMsg(oidAudit, text("1"), text("x")),
		updateMsg(oidAudit, 'K', []val{text("1"), null}, []val{text("2"), unchanged}),
		deleteMsg(oidAudit, 'K', text("2"), null),
		insertMsg(oidSync, text("10"), text("p")),
		updateMsg(oidSync, 0, nil, []val{text("10"), text("q")}),
		deleteMsg(oidSync, 'O', text("10"), text("q")),
		// An ignored relation's row needs no key at all.
		insertMsg(oidAudit, null, null),
		truncateMsg(0, oidAudit, oidSync),
		commit1)
	if len(tx.events) != 0 {
		t.Errorf("changes to unregistered and synchro relations gave events:%s", fmtEvents(tx.events))
	}
}

func TestDecodeRelationResentAfterAlter(t *testing.T) {
	d := newTestDecoder()
	cols := []col{{"order_id", oidText, true}, {"item_id", oidInt8, false}}
	tx1 := decodeTxn(t, d, relationMsg(oidOrders, "public", "orders", cols...), begin1,
		insertMsg(oidOrders, text("A"), text("1")), commit1)
	checkEvents(t, tx1.events, []event{{kind: evInsert, table: "orders", id: "A",
		newRow: rowValues{"order_id": "A", "item_id": int64(1)}}})

	// ALTER TABLE orders ADD COLUMN paid boolean: the server describes the
	// relation again before its next change.
	cols = append(cols, col{"paid", oidBool, false})
	tx2 := decodeTxn(t, d, beginMsg(0x2000, testTime, 732), relationMsg(oidOrders, "public", "orders", cols...),
		insertMsg(oidOrders, text("B"), text("2"), text("t")), commitMsg(0x2000, 0x2030, testTime))
	checkEvents(t, tx2.events, []event{{kind: evInsert, table: "orders", id: "B",
		newRow: rowValues{"order_id": "B", "item_id": int64(2), "paid": true}}})

	// ALTER TABLE orders RENAME TO orders_old: the relation is no longer
	// the registered one.
	tx3 := decodeTxn(t, d, beginMsg(0x3000, testTime, 733), relationMsg(oidOrders, "public", "orders_old", cols...),
		insertMsg(oidOrders, text("C"), text("3"), text("f")), commitMsg(0x3000, 0x3030, testTime))
	checkEvents(t, tx3.events, nil)
}

func TestDecodeSchemaQualifiedMapping(t *testing.T) {
	d := newDecoder(map[relKey]string{{"app", "items"}: "app_items"}, map[string]string{"app_items": "id"})
	cols := []col{{"id", oidText, true}, {"v", oidInt4, false}}
	tx := decodeTxn(t, d,
		relationMsg(200, "public", "items", cols...),
		relationMsg(201, "app", "items", cols...),
		begin1,
		insertMsg(200, text("p"), text("1")),
		insertMsg(201, text("a"), text("2")),
		truncateMsg(0, 200, 201),
		commit1)
	checkEvents(t, tx.events, []event{
		{kind: evInsert, table: "app_items", id: "a", newRow: rowValues{"id": "a", "v": int64(2)}},
		{kind: evTruncate, tables: []string{"app_items"}},
	})
}

func TestDecodeEmptyTransaction(t *testing.T) {
	d := newTestDecoder()
	// 2024-01-01T00:00:00.000001Z is 757382400000001 µs after 2000-01-01.
	begin := msg{'B'}.u64(0x0123456789ABCDEF).u64(757382400000001).u32(4242)
	commit := msg{'C'}.u8(0).u64(0x0123456789ABCDEF).u64(0x0123456789ABCE20).u64(757382400000001)
	txns := decodeAll(t, d,
		relAudit, // a Relation outside a transaction
		typeMsg(16500, "public", "mood"),
		logicalMsg(false, "outside", "x"),
		begin,
		originMsg("upstream"),
		typeMsg(16501, "public", "color"),
		logicalMsg(true, "inside", "payload"),
		insertMsg(oidAudit, text("1"), text("x")),
		commit)
	if len(txns) != 1 {
		t.Fatalf("got %d transactions, want 1", len(txns))
	}
	tx := txns[0]
	want := time.Date(2024, 1, 1, 0, 0, 0, 1000, time.UTC)
	if tx.xid != 4242 || tx.finalLSN != 0x0123456789ABCDEF || tx.endLSN != 0x0123456789ABCE20 ||
		!tx.commitTime.Equal(want) || tx.commitTime.Location() != time.UTC || len(tx.events) != 0 {
		t.Errorf("got txn{xid:%d finalLSN:%s endLSN:%s commitTime:%v events:%d}, want {4242 %s %s %v 0}",
			tx.xid, tx.finalLSN, tx.endLSN, tx.commitTime, len(tx.events),
			pglogrepl.LSN(0x0123456789ABCDEF), pglogrepl.LSN(0x0123456789ABCE20), want)
	}
	if d.inTransaction() {
		t.Error("inTransaction after Commit")
	}

	// The PostgreSQL epoch itself.
	tx = decodeTxn(t, d, msg{'B'}.u64(1).u64(0).u32(1), msg{'C'}.u8(0).u64(1).u64(2).u64(0))
	if want := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC); !tx.commitTime.Equal(want) {
		t.Errorf("commit time 0 = %v, want %v", tx.commitTime, want)
	}
}

func TestDecodeConsecutiveTransactions(t *testing.T) {
	d := newTestDecoder()
	txns := decodeAll(t, d, relItems, relOrders,
		begin1, insertMsg(oidItems, itemVals("1", "a")...), commit1,
		beginMsg(0x5000, testTime, 800), insertMsg(oidOrders, text("X"), null, null),
		deleteMsg(oidItems, 'K', append([]val{text("1")}, itemVals("", "")[1:]...)...),
		commitMsg(0x5000, 0x5040, testTime))
	if len(txns) != 2 {
		t.Fatalf("got %d transactions, want 2", len(txns))
	}
	if d.inTransaction() {
		t.Error("inTransaction after the last Commit")
	}
	checkEvents(t, txns[0].events, []event{{kind: evInsert, table: "items", id: "1", newRow: itemRow(1, "a")}})
	checkEvents(t, txns[1].events, []event{
		{kind: evInsert, table: "orders", id: "X", newRow: rowValues{"order_id": "X", "item_id": nil, "note": nil}},
		{kind: evDelete, table: "items", id: "1", oldRow: rowValues{"id": int64(1)}},
	})
	if txns[1].xid != 800 || txns[1].finalLSN != 0x5000 || txns[1].endLSN != 0x5040 {
		t.Errorf("second txn = {xid:%d finalLSN:%s endLSN:%s}", txns[1].xid, txns[1].finalLSN, txns[1].endLSN)
	}
}

func TestDecodeDoesNotRetainInput(t *testing.T) {
	d := newTestDecoder()
	rel := bytes.Clone(relItems)
	insertDoc := insertMsg(oidItems, text("13"), null, null, text(`{"k":1}`), null, null, null, null, null, null, null, null, null, null, null, null)
	if _, err := d.decode(rel); err != nil {
		t.Fatal(err)
	}
	tx := decodeTxn(t, d, begin1, insertDoc, commit1)
	for i := range rel {
		rel[i] = 0xFF
	}
	for i := range insertDoc {
		insertDoc[i] = 0xFF
	}
	ev := tx.events[0]
	if ev.id != "13" || !reflect.DeepEqual(ev.newRow["payload"], json.RawMessage(`{"k":1}`)) {
		t.Errorf("event changed with its input: id %q payload %s", ev.id, ev.newRow["payload"])
	}
	if _, ok := ev.newRow["title"]; !ok || d.rels[oidItems].cols[1].name != "title" {
		t.Error("relation cache changed with its input")
	}
}

// errCase is a sequence of messages whose last one must fail.
type errCase struct {
	name string
	msgs [][]byte
	want string
}

func errCases() []errCase {
	keyTuple := func(id val) []val {
		v := make([]val, len(itemsCols))
		for i := range v {
			v[i] = null
		}
		v[0] = id
		return v
	}
	noKeyOrders := relationMsg(oidOrders, "public", "orders",
		col{"order_id", oidText, false}, col{"item_id", oidInt8, true}, col{"note", oidText, false})
	keyLastOrders := relationMsg(oidOrders, "public", "orders",
		col{"item_id", oidInt8, false}, col{"note", oidText, false}, col{"order_id", oidText, true})
	return []errCase{
		{"empty message", [][]byte{{}}, "no message type byte"},
		{"unknown message type", [][]byte{{'S', 0, 0, 0, 1, 0}}, "unsupported message type"},
		{"insert for unknown relation", [][]byte{begin1, insertMsg(999, text("1"))},
			"relation OID 999 was not described by a Relation message"},
		{"update for unknown relation", [][]byte{begin1, updateMsg(999, 0, nil, []val{text("1")})},
			"relation OID 999 was not described"},
		{"delete for unknown relation", [][]byte{begin1, deleteMsg(999, 'K', text("1"))},
			"relation OID 999 was not described"},
		{"truncate of unknown relation", [][]byte{relItems, begin1, truncateMsg(0, oidItems, 999)},
			"relation OID 999 was not described"},
		{"commit without begin", [][]byte{commit1}, "commit message without a begin message"},
		{"second commit", [][]byte{begin1, commit1, commit1}, "commit message without a begin message"},
		{"nested begin", [][]byte{begin1, beginMsg(0x9000, testTime, 999)},
			"transaction 999 begins while transaction 731 is still open"},
		{"insert outside a transaction", [][]byte{relItems, insertMsg(oidItems, itemVals("1", "x")...)},
			"outside a transaction"},
		{"truncate outside a transaction", [][]byte{relItems, truncateMsg(0, oidItems)}, "TRUNCATE outside a transaction"},
		{"binary data", [][]byte{relOrders, begin1, insertMsg(oidOrders, text("A"), val{'b', "\x00\x00\x00\x00\x00\x00\x00\x01"}, null)},
			`column 1 ("item_id"): binary tuple data is not supported (start replication without binary)`},
		{"binary data of an ignored relation", [][]byte{relAudit, begin1, insertMsg(oidAudit, val{'b', "\x00\x00\x00\x01"}, null)},
			"binary tuple data is not supported"},
		{"unknown column kind", [][]byte{relOrders, begin1, insertMsg(oidOrders, text("A"), val{kind: 'x'}, null)},
			`column 1 ("item_id"): unknown column kind 'x'`},
		{"more columns than the relation", [][]byte{relOrders, begin1, insertMsg(oidOrders, text("A"), null, null, null)},
			"4 columns, but the relation has 3"},
		{"more columns than the relation (ignored)", [][]byte{relAudit, begin1, insertMsg(oidAudit, null, null, null)},
			"3 columns, but the relation has 2"},
		{"insert whose tuple stops before the key", [][]byte{keyLastOrders, begin1, insertMsg(oidOrders, text("1"), null)},
			`no value for primary key column "order_id": the tuple has too few columns`},
		{"insert with a NULL key", [][]byte{relItems, begin1, insertMsg(oidItems, append([]val{null}, itemVals("", "x")[1:]...)...)},
			`no value for primary key column "id": it is NULL`},
		{"update with an unchanged key and no old tuple", [][]byte{relOrders, begin1, updateMsg(oidOrders, 0, nil, []val{unchanged, null, null})},
			`no value for primary key column "order_id": it was not sent (unchanged TOAST value)`},
		{"delete whose key tuple lacks the primary key", [][]byte{noKeyOrders, begin1, deleteMsg(oidOrders, 'K', null, text("1"), null)},
			`no value for primary key column "order_id": it is not part of the replica identity`},
		{"delete with a NULL key", [][]byte{relItems, begin1, deleteMsg(oidItems, 'K', keyTuple(null)...)},
			`no value for primary key column "id": it is NULL`},
		{"relation without the primary key column", [][]byte{relationMsg(oidItems, "public", "items", col{"uid", oidText, true}), begin1, insertMsg(oidItems, text("x"))},
			`no value for primary key column "id": the relation has no such column`},
		{"table without a configured primary key", [][]byte{relationMsg(7, "public", "nokey", col{"id", oidText, true}), begin1, insertMsg(7, text("x"))},
			`no primary key column is configured for table "nokey"`},
		{"insert with an old tuple", [][]byte{relItems, begin1, msg{'I'}.u32(oidItems).u8('K').raw(tupleData(keyTuple(text("1"))...))},
			"tuple type 'K', want 'N'"},
		{"update without a new tuple", [][]byte{relOrders, begin1, msg{'U'}.u32(oidOrders).u8('K').raw(tupleData(text("A"), null, null)).u8('K')},
			"tuple type 'K' after the old tuple, want 'N'"},
		{"update with an unknown tuple type", [][]byte{relOrders, begin1, msg{'U'}.u32(oidOrders).u8('X')},
			"tuple type 'X', want 'K' (key), 'O' (old tuple) or 'N'"},
		{"delete with a new tuple", [][]byte{relOrders, begin1, deleteMsg(oidOrders, 'N', text("A"), null, null)},
			"tuple type 'N', want 'K' (key) or 'O' (old tuple)"},
		{"invalid boolean", [][]byte{relItems, begin1, insertMsg(oidItems, text("1"), null, null, null, text("yes"))},
			`column 4 ("active"): invalid boolean "yes"`},
		{"invalid integer", [][]byte{relItems, begin1, insertMsg(oidItems, text("1e3"))},
			`column 0 ("id"): invalid integer "1e3"`},
		{"integer out of range", [][]byte{relItems, begin1, insertMsg(oidItems, text("9223372036854775808"))},
			`invalid integer "9223372036854775808"`},
		{"invalid float", [][]byte{relItems, begin1, insertMsg(oidItems, text("1"), null, null, null, null, text("half"))},
			`column 5 ("ratio"): invalid floating-point number "half"`},
		{"trailing bytes", [][]byte{relOrders, begin1, append(insertMsg(oidOrders, text("A"), null, null), 0)},
			"1 unexpected bytes at the end of the message"},
		{"value longer than the message", [][]byte{relOrders, begin1, msg{'I'}.u32(oidOrders).u8('N').u16(1).u8('t').u32(0xFFFFFFFF).raw([]byte("A"))},
			"value: message truncated: need 4294967295 bytes"},
		{"huge column count", [][]byte{msg{'R'}.u32(1).str("public").str("x").u8('d').u16(0xFFFF).u8(0)},
			"message truncated: 65535 columns need at least 655350 bytes"},
		{"huge truncate count", [][]byte{relItems, begin1, msg{'T'}.u32(0xFFFFFFFF).u8(0).u32(oidItems)},
			"4294967295 relations need 17179869180 bytes of OIDs"},
	}
}

func TestDecodeErrors(t *testing.T) {
	for _, tc := range errCases() {
		t.Run(tc.name, func(t *testing.T) {
			d := newTestDecoder()
			decodeAll(t, d, tc.msgs[:len(tc.msgs)-1]...)
			tx, err := d.decode(tc.msgs[len(tc.msgs)-1])
			if err == nil {
				t.Fatalf("no error (txn %v), want one containing %q", tx, tc.want)
			}
			if tx != nil {
				t.Errorf("a transaction was returned with the error")
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "wal: pgoutput ") {
				t.Errorf("error %q\nwant it to start with \"wal: pgoutput \" and contain %q", err, tc.want)
			}
			if errors.Is(err, errDecoderPanic) {
				t.Errorf("decoder panicked: %v", err)
			}
			if d.inTransaction() {
				t.Error("inTransaction after an error")
			}
		})
	}
}

func TestDecodeErrorNamesTheRelation(t *testing.T) {
	d := newTestDecoder()
	decodeAll(t, d, relOrders, begin1)
	_, err := d.decode(insertMsg(oidOrders, null, null, null))
	want := `wal: pgoutput Insert message: relation "public"."orders" (OID 101): new tuple: no value for primary key column "order_id": it is NULL`
	if err == nil || err.Error() != want {
		t.Errorf("error %v\nwant %s", err, want)
	}
}

// validMessages returns messages that each decode without error after
// prelude(), with the message that completes a transaction last. The fuzz
// test seeds its corpus with them.
func validMessages() [][]byte {
	keyTuple := make([]val, len(itemsCols))
	for i := range keyTuple {
		keyTuple[i] = null
	}
	keyTuple[0] = text("1")
	full := itemVals("2", "full")
	full[2], full[3], full[4], full[5] = text("1.50"), text(`{"x": [true]}`), text("f"), text("2.5e-3")
	return [][]byte{
		insertMsg(oidItems, itemVals("1", "a")...),
		insertMsg(oidItems, full...),
		insertMsg(oidAudit, text("1"), unchanged),
		insertMsg(oidOrders, text("A"), text("1"), text("note")),
		updateMsg(oidItems, 0, nil, itemVals("1", "b")),
		updateMsg(oidItems, 'K', keyTuple, itemVals("2", "b")),
		updateMsg(oidOrders, 'O', []val{text("A"), text("1"), text("x")}, []val{text("A"), text("2"), unchanged}),
		deleteMsg(oidItems, 'K', keyTuple...),
		deleteMsg(oidOrders, 'O', text("A"), text("2"), null),
		deleteMsg(oidSync, 'K', text("1"), null),
		truncateMsg(3, oidItems, oidAudit, oidOrders),
		relationMsg(oidOrders, "public", "orders", col{"order_id", oidText, true}, col{"paid", oidBool, false}),
		relationMsg(300, "other", "t"),
		originMsg("node1"),
		typeMsg(17000, "public", "mood"),
		logicalMsg(true, "p", "content"),
		commit1,
	}
}

// prelude returns the messages that put a fresh decoder in a transaction
// with the test relations described.
func prelude() [][]byte { return [][]byte{relItems, relOrders, relAudit, relSync, begin1} }

func TestDecodeValidMessages(t *testing.T) {
	for i, m := range validMessages() {
		d := newTestDecoder()
		decodeAll(t, d, prelude()...)
		if _, err := d.decode(m); err != nil {
			t.Errorf("message %d: %v", i, err)
		}
	}
}

func TestDecodeTruncatedMessages(t *testing.T) {
	// Every strict prefix of a valid message is malformed: the error says so
	// and nothing panics.
	msgs := append(validMessages(), prelude()...)
	for i, m := range msgs {
		for n := range len(m) {
			d := newTestDecoder()
			decodeAll(t, d, prelude()...)
			if m[0] == 'B' {
				decodeAll(t, d, commit1) // a Begin needs no open transaction
			}
			_, err := d.decode(m[:n])
			if err == nil {
				t.Errorf("message %d (%q) cut to %d of %d bytes: no error", i, m[:1], n, len(m))
				continue
			}
			want := "truncated"
			if n == 0 {
				want = "no message type byte"
			}
			if !strings.Contains(err.Error(), want) || errors.Is(err, errDecoderPanic) {
				t.Errorf("message %d (%q) cut to %d of %d bytes: error %q, want one containing %q", i, m[:1], n, len(m), err, want)
			}
		}
	}
}

func TestDecodeStopsAfterAnError(t *testing.T) {
	d := newTestDecoder()
	decodeAll(t, d, relItems, begin1, insertMsg(oidItems, itemVals("1", "a")...))
	if _, err := d.decode(insertMsg(999)); err == nil {
		t.Fatal("no error for an unknown relation")
	}
	// The transaction lost a change: its Commit must not complete it, and
	// later transactions must not be decoded as if nothing happened.
	for _, m := range [][]byte{commit1, beginMsg(0x9000, testTime, 2), relItems} {
		tx, err := d.decode(m)
		if err == nil || tx != nil || !strings.Contains(err.Error(), "stopped by an earlier error") ||
			!strings.Contains(err.Error(), "relation OID 999") {
			t.Errorf("decode(%q) after an error = %v, %v; want the earlier error", m[:1], tx, err)
		}
	}
}

func TestDecodeAllocations(t *testing.T) {
	d := newTestDecoder()
	decodeAll(t, d, relOrders, begin1)
	ins := insertMsg(oidOrders, text("order-123456"), text("42"), text("some note"))
	allocs := testing.AllocsPerRun(1000, func() {
		if _, err := d.decode(ins); err != nil {
			t.Fatal(err)
		}
		d.cur.events = d.cur.events[:0]
	})
	// The message's string, the row map, and boxing the two strings; the
	// small integer 42 needs no allocation.
	if allocs > 5 {
		t.Errorf("an insert of three columns costs %.0f allocations, want at most 5", allocs)
	}
}

func BenchmarkDecodeInsert(b *testing.B) {
	d := newTestDecoder()
	for _, m := range [][]byte{relItems, begin1} {
		if _, err := d.decode(m); err != nil {
			b.Fatal(err)
		}
	}
	full := itemVals("123456", "a title of some length")
	full[2], full[3], full[4], full[5], full[8] = text("1234.50"), text(`{"x": [true, 1]}`), text("t"), text("0.25"), text("5f0c6a8e-1b2f-4c3d-9e4f-0a1b2c3d4e5f")
	ins := insertMsg(oidItems, full...)
	b.SetBytes(int64(len(ins)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := d.decode(ins); err != nil {
			b.Fatal(err)
		}
		d.cur.events = d.cur.events[:0]
	}
}

// TestDecodeRealStream decodes what a PostgreSQL server's pgoutput plugin
// sends for a series of changes.
func TestDecodeRealStream(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDatabase(t)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()

	exec := func(sql string) {
		t.Helper()
		if _, err := db.Super.ExecContext(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	exec(`CREATE SCHEMA app`)
	exec(`CREATE TABLE public.items (id bigint PRIMARY KEY, title text, price numeric, payload jsonb,
		active boolean, ratio double precision, body text)`)
	exec(`ALTER TABLE public.items ALTER COLUMN body SET STORAGE EXTERNAL`) // stored out of line, uncompressed
	exec(`CREATE TABLE app.items (id text PRIMARY KEY, v integer)`)
	exec(`CREATE TABLE public.other (id integer PRIMARY KEY)`)
	exec(`CREATE TABLE public.full_t (id integer PRIMARY KEY, v text)`)
	exec(`ALTER TABLE public.full_t REPLICA IDENTITY FULL`)
	exec(`CREATE PUBLICATION decode_pub FOR TABLE public.items, app.items, public.other, public.full_t`)
	t.Cleanup(func() {
		if _, err := db.Super.ExecContext(context.Background(), `DROP PUBLICATION IF EXISTS decode_pub`); err != nil {
			t.Errorf("dropping the publication: %v", err)
		}
	})

	conn, err := pgconn.Connect(ctx, db.ReplicationDSN)
	if err != nil {
		t.Fatal(err)
	}
	// The slot is temporary: closing the connection drops it.
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	slot, err := pglogrepl.CreateReplicationSlot(ctx, conn, "decode_test", "pgoutput",
		pglogrepl.CreateReplicationSlotOptions{Temporary: true})
	if err != nil {
		t.Fatalf("creating the slot: %v", err)
	}
	start, err := pglogrepl.ParseLSN(slot.ConsistentPoint)
	if err != nil {
		t.Fatal(err)
	}

	before := time.Now()
	exec(`INSERT INTO public.items VALUES (9007199254740993, 'a', 12345678901234567890.1234567890,
		'{"k": [1, 2.50], "s": "x"}', true, 0.5, repeat('x', 5000))`)
	exec(`UPDATE public.items SET title = 'b'`)
	exec(`UPDATE public.items SET id = 2`)
	exec(`DELETE FROM public.items`)
	exec(`INSERT INTO app.items VALUES ('k1', 1)`)
	exec(`INSERT INTO public.other VALUES (1)`) // published, not registered: an empty transaction
	exec(`INSERT INTO public.full_t VALUES (1, 'x')`)
	exec(`UPDATE public.full_t SET v = 'y'`)
	exec(`DELETE FROM public.full_t`)
	exec(`ALTER TABLE app.items ADD COLUMN w boolean`)
	exec(`INSERT INTO app.items VALUES ('k2', 2, true)`)
	exec(`TRUNCATE public.items, public.other, app.items`)

	if err := pglogrepl.StartReplication(ctx, conn, "decode_test", start, pglogrepl.StartReplicationOptions{
		PluginArgs: []string{"proto_version '1'", "publication_names 'decode_pub'"},
	}); err != nil {
		t.Fatalf("starting replication: %v", err)
	}
	d := newDecoder(map[relKey]string{
		{"public", "items"}:  "items",
		{"app", "items"}:     "app_items",
		{"public", "full_t"}: "full_t",
	}, map[string]string{"items": "id", "app_items": "id", "full_t": "id"})

	var txns []*txn
	var events []event
	for len(events) == 0 || events[len(events)-1].kind != evTruncate {
		msg, err := conn.ReceiveMessage(ctx)
		if err != nil {
			t.Fatalf("receiving (after %d events): %v", len(events), err)
		}
		cd, ok := msg.(*pgproto3.CopyData)
		if !ok {
			t.Fatalf("unexpected message %T", msg)
		}
		switch cd.Data[0] {
		case pglogrepl.PrimaryKeepaliveMessageByteID:
			ka, err := pglogrepl.ParsePrimaryKeepaliveMessage(cd.Data[1:])
			if err != nil {
				t.Fatal(err)
			}
			if ka.ReplyRequested {
				if err := pglogrepl.SendStandbyStatusUpdate(ctx, conn, pglogrepl.StandbyStatusUpdate{WALWritePosition: start}); err != nil {
					t.Fatal(err)
				}
			}
		case pglogrepl.XLogDataByteID:
			xld, err := pglogrepl.ParseXLogData(cd.Data[1:])
			if err != nil {
				t.Fatal(err)
			}
			tx, err := d.decode(xld.WALData)
			if err != nil {
				t.Fatalf("decoding %q at %s: %v", xld.WALData, xld.WALStart, err)
			}
			if tx != nil {
				txns = append(txns, tx)
				events = append(events, tx.events...)
			}
		}
	}

	big := int64(9007199254740993)
	body := strings.Repeat("x", 5000)
	itemsRow := rowValues{"id": big, "title": "a", "price": json.Number("12345678901234567890.1234567890"),
		"payload": json.RawMessage(`{"k": [1, 2.50], "s": "x"}`), "active": true, "ratio": 0.5, "body": body}
	// The updates do not change body, stored out of line: it is not sent.
	updated := rowValues{"id": big, "title": "b", "price": itemsRow["price"], "payload": itemsRow["payload"],
		"active": true, "ratio": 0.5}
	moved := maps.Clone(updated)
	moved["id"] = int64(2)
	want := []event{
		{kind: evInsert, table: "items", id: "9007199254740993", newRow: itemsRow},
		{kind: evUpdate, table: "items", id: "9007199254740993", newRow: updated},
		{kind: evUpdate, table: "items", id: "2", oldID: "9007199254740993", keyChanged: true, newRow: moved,
			oldRow: rowValues{"id": big}},
		{kind: evDelete, table: "items", id: "2", oldRow: rowValues{"id": int64(2)}},
		{kind: evInsert, table: "app_items", id: "k1", newRow: rowValues{"id": "k1", "v": int64(1)}},
		{kind: evInsert, table: "full_t", id: "1", newRow: rowValues{"id": int64(1), "v": "x"}},
		{kind: evUpdate, table: "full_t", id: "1", newRow: rowValues{"id": int64(1), "v": "y"},
			oldRow: rowValues{"id": int64(1), "v": "x"}},
		{kind: evDelete, table: "full_t", id: "1", oldRow: rowValues{"id": int64(1), "v": "y"}},
		{kind: evInsert, table: "app_items", id: "k2", newRow: rowValues{"id": "k2", "v": int64(2), "w": true}},
		{kind: evTruncate, tables: []string{"app_items", "items"}},
	}
	slices.Sort(events[len(events)-1].tables)
	checkEvents(t, events, want)

	empty := 0
	var prevEnd pglogrepl.LSN
	for i, tx := range txns {
		if len(tx.events) == 0 {
			empty++
		}
		if tx.finalLSN < start || tx.endLSN <= tx.finalLSN || tx.finalLSN < prevEnd {
			t.Errorf("txn %d: finalLSN %s endLSN %s after previous end %s (slot start %s)",
				i, tx.finalLSN, tx.endLSN, prevEnd, start)
		}
		prevEnd = tx.endLSN
		if tx.commitTime.Before(before.Add(-time.Minute)) || tx.commitTime.After(time.Now().Add(time.Minute)) {
			t.Errorf("txn %d: commit time %v, want about %v", i, tx.commitTime, before)
		}
	}
	if empty == 0 {
		t.Error("the transaction that changed only public.other was not returned")
	}
}
