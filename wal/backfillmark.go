package wal

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pglogrepl"
)

// backfillMark is where the record of a table added to a streaming slot
// stands in the stream. The record reads the table's rows as they are,
// while the stream still holds the table's changes from the slot's
// position on: those of transactions the record already shows must not be
// applied again on top of it (a change published before the table left
// the publication, say, would undo later ones that were not published),
// and the others must. The mark holds the snapshot the rows were read in
// and the WAL insert position once it was taken (until): a transaction
// committed at or after until is not in the snapshot, and one before it is
// shown when the snapshot sees it.
type backfillMark struct {
	xmin, xmax uint64
	xip        []uint64 // sorted
	until      pglogrepl.LSN
}

// parseBackfillMark reads a mark from a pg_snapshot's text
// (xmin:xmax:xip,xip,...) and the position.
func parseBackfillMark(snapshot string, until int64) (backfillMark, error) {
	parts := strings.Split(snapshot, ":")
	if len(parts) != 3 {
		return backfillMark{}, fmt.Errorf("snapshot %q: want xmin:xmax:xip", snapshot)
	}
	m := backfillMark{until: pglogrepl.LSN(until)}
	var err error
	if m.xmin, err = strconv.ParseUint(parts[0], 10, 64); err != nil {
		return backfillMark{}, fmt.Errorf("snapshot %q: xmin: %w", snapshot, err)
	}
	if m.xmax, err = strconv.ParseUint(parts[1], 10, 64); err != nil {
		return backfillMark{}, fmt.Errorf("snapshot %q: xmax: %w", snapshot, err)
	}
	if parts[2] != "" {
		for x := range strings.SplitSeq(parts[2], ",") {
			v, err := strconv.ParseUint(x, 10, 64)
			if err != nil {
				return backfillMark{}, fmt.Errorf("snapshot %q: xip: %w", snapshot, err)
			}
			m.xip = append(m.xip, v)
		}
		slices.Sort(m.xip)
	}
	if m.xmin > m.xmax {
		return backfillMark{}, fmt.Errorf("snapshot %q: xmin after xmax", snapshot)
	}
	return m, nil
}

// shows reports whether the record shows the changes of t, a committed
// transaction of the stream. The stream gives 32-bit transaction ids;
// each is taken as the full id nearest the snapshot's xmax (the stream's
// transactions are far closer to it than 2^31).
func (m backfillMark) shows(t *txn) bool {
	if t.finalLSN >= m.until {
		return false
	}
	x := uint64(int64(m.xmax) + int64(int32(t.xid-uint32(m.xmax))))
	if x < m.xmin {
		return true
	}
	if x >= m.xmax {
		return false
	}
	_, running := slices.BinarySearch(m.xip, x)
	return !running
}

// withoutShown returns txns without the changes that the records of their
// tables show (marks), copying each transaction it changes. A transaction
// left without changes stays: its position is still recorded.
func withoutShown(txns []*txn, marks map[string]backfillMark) []*txn {
	if len(marks) == 0 {
		return txns
	}
	out := txns
	copied := false
	for i, t := range txns {
		shown := func(table string) bool {
			m, ok := marks[table]
			return ok && m.shows(t)
		}
		var kept []event
		changed := false
		for j, ev := range t.events {
			keep := ev
			if ev.kind == evTruncate {
				keep.tables = slices.DeleteFunc(slices.Clone(ev.tables), shown)
				if len(keep.tables) == len(ev.tables) {
					keep = ev
				}
			}
			drop := ev.kind == evTruncate && len(keep.tables) == 0 || ev.kind != evTruncate && shown(ev.table)
			if !changed && (drop || len(keep.tables) != len(ev.tables)) {
				changed = true
				kept = slices.Clone(t.events[:j])
			}
			if changed && !drop {
				kept = append(kept, keep)
			}
		}
		if !changed {
			continue
		}
		if !copied {
			out, copied = slices.Clone(txns), true
		}
		c := *t
		c.events = kept
		out[i] = &c
	}
	return out
}
