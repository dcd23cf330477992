package synchro

import (
	"encoding/binary"
	"math"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
)

// TestPagePrefixDecode checks pagePrefix.decode against pgx's own scanning
// of the same wire values (no database): NULLs, the extremes of int8 and
// int2, both booleans, timestamps before and after 2000, fractions, and
// the infinities.
func TestPagePrefixDecode(t *testing.T) {
	t.Parallel()
	m := pgtype.NewMap()
	i8 := func(v int64) []byte { return binary.BigEndian.AppendUint64(nil, uint64(v)) }
	i2 := func(v int16) []byte { return binary.BigEndian.AppendUint16(nil, uint16(v)) }
	// us gives t as PostgreSQL sends a timestamptz: microseconds since
	// 2000-01-01 UTC (computed from seconds: UnixMicro overflows in the
	// year 294247, before PostgreSQL's last year).
	us := func(t time.Time) []byte {
		return i8((t.Unix()-pgEpochSeconds)*1_000_000 + int64(t.Nanosecond()/1000))
	}
	rows := [][][]byte{
		{i8(0), nil, i8(1), []byte("items"), []byte("1"), i2(1), []byte{1}, us(time.Date(2024, 3, 4, 5, 6, 7, 891_000, time.UTC))},
		{i8(math.MaxInt64), i8(math.MinInt64), i8(-5), []byte("items"), []byte("é\x00x"), i2(math.MinInt16), []byte{0}, us(time.Date(1850, 1, 1, 0, 0, 0, 1_000, time.UTC))},
		{i8(7), i8(8), nil, nil, nil, nil, nil, nil},
		{i8(7), i8(8), i8(9), []byte("other"), []byte(""), i2(math.MaxInt16), []byte{1}, i8(math.MaxInt64)},
		{i8(7), i8(8), i8(9), []byte("other"), []byte("2"), i2(3), []byte{1}, i8(math.MinInt64)},
		{i8(7), i8(8), i8(9), []byte("other"), []byte("3"), i2(3), []byte{1}, us(time.Date(-4712, 1, 1, 0, 0, 0, 0, time.UTC))},
		{i8(7), i8(8), i8(9), []byte("other"), []byte("4"), i2(3), []byte{1}, us(time.Date(294270, 6, 1, 12, 0, 0, 123_000, time.UTC))},
		{i8(7), i8(8), i8(9), []byte("other"), []byte("5"), i2(3), []byte{1}, us(time.Date(1999, 12, 31, 23, 59, 59, 999_999_000, time.UTC))},
	}
	fields := make([]pgconn.FieldDescription, len(pagePrefixWire))
	for i, w := range pagePrefixWire {
		fields[i] = pgconn.FieldDescription{DataTypeOID: w.oid, Format: w.format}
	}
	if !pagePrefixInPlace(fields) {
		t.Fatal("pagePrefixInPlace refuses the formats it decodes")
	}
	fields[7].Format = pgtype.TextFormatCode
	if pagePrefixInPlace(fields) {
		t.Error("pagePrefixInPlace accepts a timestamptz in text")
	}
	var got pagePrefix
	for n, raw := range rows {
		if err := got.decode(raw); err != nil {
			t.Fatalf("row %d: %v", n, err)
		}
		var want pagePrefix
		for i, dst := range []any{&want.boundary, &want.cut, &want.seq, &want.table, &want.id, &want.op, &want.found, &want.updated} {
			w := pagePrefixWire[i]
			if err := m.Scan(w.oid, w.format, raw[i], dst); err != nil {
				t.Fatalf("row %d column %d: pgx: %v", n, i, err)
			}
		}
		// Times compare by instant: pgx and decode may differ in the
		// location pointer of UTC.
		if !got.updated.Time.Equal(want.updated.Time) {
			t.Errorf("row %d: updated %v, pgx %v", n, got.updated.Time, want.updated.Time)
		}
		got.updated.Time, want.updated.Time = time.Time{}, time.Time{}
		if got != want {
			t.Errorf("row %d: decoded %+v, pgx %+v", n, got, want)
		}
	}
	if err := got.decode([][]byte{i8(1), nil, []byte{1, 2}, nil, nil, nil, nil, nil}); err == nil {
		t.Error("an int8 of 2 bytes decoded")
	}
}
