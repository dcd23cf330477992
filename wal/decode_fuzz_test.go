package wal

import (
	"encoding/binary"
	"errors"
	"testing"
)

// FuzzDecode feeds arbitrary bytes to the decoder and checks that it never
// panics (decode recovers from panics and reports errDecoderPanic, which
// fails the test) and that what it returns is consistent. Errors are fine.
//
// Each input is decoded twice, by fresh decoders that have received the
// Relation messages of the test relations and a Begin:
//   - as one message;
//   - as a sequence of messages, each prefixed by its length as a
//     big-endian uint16, until the first error, so that the fuzzer can
//     also explore sequences (relations described again, transactions
//     ending and starting).
func FuzzDecode(f *testing.F) {
	var seq []byte
	for _, m := range validMessages() {
		f.Add(m)
		f.Add(m[:len(m)/2])
		f.Add(m[:len(m)-1])
		seq = appendFrame(seq, m)
	}
	for _, tc := range errCases() {
		f.Add(tc.msgs[len(tc.msgs)-1])
	}
	f.Add(seq)
	f.Add(appendFrame(appendFrame(appendFrame(nil, commit1), begin1), relationMsg(oidItems, "public", "items", itemsCols[:3]...)))

	f.Fuzz(func(t *testing.T, data []byte) {
		d := fuzzDecoder(t)
		tx, err := d.decode(data)
		checkDecodeResult(t, data, tx, err)

		d = fuzzDecoder(t)
		for rest := data; len(rest) >= 2; {
			n := int(binary.BigEndian.Uint16(rest))
			rest = rest[2:]
			if n > len(rest) {
				n = len(rest)
			}
			m := rest[:n]
			rest = rest[n:]
			tx, err := d.decode(m)
			checkDecodeResult(t, m, tx, err)
			if err != nil {
				break
			}
		}
	})
}

func appendFrame(b, m []byte) []byte {
	return append(binary.BigEndian.AppendUint16(b, uint16(len(m))), m...)
}

// fuzzDecoder returns a test decoder inside a transaction, with the test
// relations described.
func fuzzDecoder(t *testing.T) *decoder {
	d := newTestDecoder()
	for _, m := range prelude() {
		if _, err := d.decode(m); err != nil {
			t.Fatalf("prelude: %v", err)
		}
	}
	return d
}

// checkDecodeResult checks one decode call's result for m.
func checkDecodeResult(t *testing.T, m []byte, tx *txn, err error) {
	t.Helper()
	if errors.Is(err, errDecoderPanic) {
		t.Fatalf("decode(%q) panicked: %v", m, err)
	}
	if err != nil {
		if tx != nil {
			t.Fatalf("decode(%q) returned a transaction with error %v", m, err)
		}
		return
	}
	if tx != nil && m[0] != 'C' {
		t.Fatalf("decode(%q): a %s message returned a transaction", m, messageName(m))
	}
	if tx == nil {
		return
	}
	for i, ev := range tx.events {
		switch ev.kind {
		case evInsert, evUpdate, evDelete:
			if ev.table == "" || ev.tables != nil {
				t.Fatalf("event %d: row event %+v", i, ev)
			}
			if (ev.kind == evDelete) != (ev.newRow == nil) {
				t.Fatalf("event %d: kind %d with newRow %v", i, ev.kind, ev.newRow)
			}
			if ev.keyChanged && ev.oldID == ev.id || !ev.keyChanged && ev.oldID != "" {
				t.Fatalf("event %d: oldID %q, id %q, keyChanged %v", i, ev.oldID, ev.id, ev.keyChanged)
			}
		case evTruncate:
			if len(ev.tables) == 0 {
				t.Fatalf("event %d: TRUNCATE of no table", i)
			}
		default:
			t.Fatalf("event %d: kind %d", i, ev.kind)
		}
	}
}
