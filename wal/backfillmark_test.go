package wal

import (
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pglogrepl"
)

func TestBackfillMarkShows(t *testing.T) {
	m, err := parseBackfillMark("4294967396:4294967410:4294967400,4294967405", 5000)
	if err != nil {
		t.Fatal(err)
	}
	// xmin 2^32+100, xmax 2^32+114, running 2^32+104 and 2^32+109; the
	// stream gives the low 32 bits.
	for _, c := range []struct {
		xid   uint32
		final pglogrepl.LSN
		want  bool
	}{
		{99, 100, true},         // before xmin
		{100, 100, true},        // xmin, not running
		{104, 100, false},       // running when the snapshot was taken
		{109, 100, false},       // running
		{107, 100, true},        // between, done
		{114, 100, false},       // xmax: after the snapshot
		{200, 100, false},       // later
		{107, 5000, false},      // committed at the position or after it
		{4294967295, 100, true}, // full id 2^32-1: before the epoch's start, long done
	} {
		if got := m.shows(&txn{xid: c.xid, finalLSN: c.final}); got != c.want {
			t.Errorf("xid %d at %s: shows %v, want %v", c.xid, c.final, got, c.want)
		}
	}
	for _, bad := range []string{"", "1:2", "a:2:", "3:2:", "1:5:x"} {
		if _, err := parseBackfillMark(bad, 1); err == nil {
			t.Errorf("parseBackfillMark(%q) took it", bad)
		}
	}
	if m, err := parseBackfillMark("7:9:", 1); err != nil || m.xmin != 7 || m.xmax != 9 || len(m.xip) != 0 {
		t.Errorf("parseBackfillMark without xip: %+v, %v", m, err)
	}
}

func TestWithoutShown(t *testing.T) {
	marks := map[string]backfillMark{"a": {xmin: 10, xmax: 20, until: 1000}}
	old := &txn{xid: 5, finalLSN: 10, events: []event{
		{kind: evInsert, table: "a", id: "1"},
		{kind: evInsert, table: "b", id: "2"},
		{kind: evTruncate, tables: []string{"a", "b"}},
		{kind: evTruncate, tables: []string{"a"}},
	}}
	later := &txn{xid: 25, finalLSN: 20, events: []event{{kind: evInsert, table: "a", id: "3"}}}
	in := []*txn{old, later}
	out := withoutShown(in, marks)
	if in[0] != old || len(old.events) != 4 {
		t.Fatalf("withoutShown changed its input")
	}
	var got []string
	for _, tx := range out {
		for _, ev := range tx.events {
			got = append(got, ev.table+ev.id+"/"+strings.Join(ev.tables, ","))
		}
	}
	want := []string{"b2/", "/b", "a3/"}
	if !slices.Equal(got, want) {
		t.Errorf("withoutShown: got %q, want %q", got, want)
	}
	if out[1] != later {
		t.Errorf("a transaction without shown changes was copied")
	}
	if same := withoutShown(in, nil); &same[0] != &in[0] {
		t.Errorf("without marks, the transactions were copied")
	}
}
