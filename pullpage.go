package synchro

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/synchrosync/synchro/internal/pgident"
	"github.com/synchrosync/synchro/internal/store"
)

// This file holds pull's page read in one statement: the changelog page
// and the current rows of its records, in one round trip. It serves pulls
// with the default ownership rules on pgx's connection and without a
// tables filter, for the rows of a few tables (see Engine.pullPage); the
// other pulls, and the other tables' entries, read the page and then
// hydrate each table (puller.readPage, puller.hydrate).
//
// Why: the hydration was a statement of its own per table, with the page's
// ids sent back to the server, unnested and cast (a round trip and about
// 1 ms of a page of 1000 in BenchmarkPullThroughput, docs/benchmarks.md,
// issue 14 item 4). Here each page entry is looked up where it is read.

// pullPageAlias is the alias of the changelog page in the page statement
// (pullPageStatements.build), which each table's lookup refers to.
const pullPageAlias = "synchro_page"

// pullPageStatements are the page statements of one schema and set of
// tables: the page of store.PullFullPage or store.PullCappedPage, each
// entry of those tables with the current row of its record when the page
// delivers it.
type pullPageStatements struct {
	// wrapped holds, by the page statement it wraps (store.PullFullPage,
	// store.PullMergedPage, store.PullCappedPage: see puller.pageSQL),
	// the statements with the row columns in the forms pullFormTyped
	// ([0]) and pullFormTypedUTC ([1], for sessions whose time zone is
	// UTC).
	wrapped map[string][2]string
	// tables are the hydrations of the tables read, by name.
	tables map[string]*pullHydration
	// offset is where the row columns of each table start, after f and u.
	offset map[string]int
	// width is the number of row columns the statements return after f
	// and u: those of every table, one after the other.
	width int
}

// build wraps the page statement page (store.PullFullPage or
// store.PullCappedPage, parameters $1 to $4) so that each of its entries
// comes with the current row of its record ($5 the client's buckets, for
// the ownership rules): the entry's columns, then f (true when the row was
// found and may be delivered, NULL otherwise), u (its updated-at) and the
// returned columns of each table (see pullColumns) in the form form (index
// of joinFrom), NULL but in the table of the entry's record.
//
// Each table of names is outer joined to the page by its key, compared
// with a column the page gets for that table (k0, k1, ...): the record id
// cast to the key type for the entries to look up in the table (of the
// table, not deletes, not after the cut: entries after it are read only to
// tell that more follow), NULL for the others, which match nothing. The
// page with these columns is a subquery kept apart (OFFSET 0): flattened
// into the statement, under row-level security, the comparison was not
// made an index condition, and PostgreSQL read the table whole and
// compared every entry with every row. Its ORDER BY costs no sort (the
// page comes sorted) and keeps the order known outside. The pull's
// settings (pullPageSettingsSQL) leave PostgreSQL no join but a nested
// loop and no scan of the table but by index: whatever the statistics, the
// plan is the page's plan followed by one primary key probe per entry and
// table (TestPullPlansWithoutStatistics; under row-level security, for key
// types whose equality is leakproof, see readStatements.pull), and the
// page keeps its seq order through the nested loops, so the final ORDER
// BY costs no sort. (A
// LATERAL subquery with LIMIT 1 per table gets the same plan with two more
// nodes run per entry: about 10% of the statement's time.) Each table's
// columns are its own, not shared with the other tables' (whose types
// differ): a NULL costs four bytes.
//
// An entry of a record that appears more than once in the page is looked
// up at each appearance that is not a delete (the same row, in the same
// snapshot); the engine keeps the first found and applies the merge rules
// (last operation wins) as for the two-statement read.
func (ps *pullPageStatements) build(page string, names []string, form int) string {
	var q, cols, keys strings.Builder
	fmt.Fprintf(&cols, "coalesce(%s)", ps.coalesced(names, func(i int, _ *pullHydration) string { return fmt.Sprintf("h%d.f", i) }))
	fmt.Fprintf(&cols, ", coalesce(%s)", ps.coalesced(names, func(i int, _ *pullHydration) string { return fmt.Sprintf("h%d.u", i) }))
	for i, name := range names {
		h := ps.tables[name]
		for c := range h.returned() {
			fmt.Fprintf(&cols, ", h%d.c%d", i, c)
		}
		fmt.Fprintf(&keys, `,
               CASE WHEN p.table_name = %[1]s AND p.operation <> %[2]d AND (p.cut IS NULL OR p.seq <= p.cut)
                    THEN CAST(p.record_id AS %[3]s) END AS k%[4]d`, pgident.QuoteLiteral(name), OpDelete, h.keyType, i)
	}
	fmt.Fprintf(&q, `SELECT %[1]s.boundary, %[1]s.cut, %[1]s.seq, %[1]s.table_name, %[1]s.record_id, %[1]s.operation, %[2]s
  FROM (SELECT p.*%[3]s
          FROM (%[4]s) AS p(boundary, cut, seq, table_name, record_id, operation)
         ORDER BY p.seq OFFSET 0) AS %[1]s`, pullPageAlias, cols.String(), keys.String(), page)
	for i, name := range names {
		fmt.Fprintf(&q, "\n  LEFT JOIN (%[1]s) AS h%[2]d ON h%[2]d.k = %[3]s.k%[2]d", ps.tables[name].joinFrom[form], i, pullPageAlias)
	}
	fmt.Fprintf(&q, "\n ORDER BY %s.seq", pullPageAlias)
	return q.String()
}

// coalesced lists the non-empty f(i, table) for the tables names, comma
// separated.
func (ps *pullPageStatements) coalesced(names []string, f func(int, *pullHydration) string) string {
	var parts []string
	for i, name := range names {
		if s := f(i, ps.tables[name]); s != "" {
			parts = append(parts, s)
		}
	}
	return strings.Join(parts, ", ")
}

// pullPage returns the page statements of m that read the rows of the
// tables names (in the engine's table order), nil when one cannot be read
// that way (missing from the schema, or its statements fail to build: the
// two-statement read then reports it).
//
// A statement reads the rows of a few tables only, whose columns fit in
// one select list: each table's lookup costs every entry of the page
// something (a key probe with a NULL key when the entry is of another
// table; with the LATERAL lookups of an earlier version, about 0.3 µs an
// entry and table: 6 ms a page of 1000 with 21 tables).
// The tables are those of the previous page the engine read
// (pullPageCache.recent), which a client catching up on a run of changes
// keeps finding; the entries of other tables are hydrated by their own
// statements after the page (puller.hydrate).
func (e *Engine) pullPage(m *manifest, names []string) *pullPageStatements {
	c := &m.snap.pullPageCache
	key := strings.Join(names, "\x00")
	c.mu.Lock()
	defer c.mu.Unlock()
	if ps, ok := c.statements[key]; ok {
		return ps
	}
	var ps *pullPageStatements
	defer func() {
		if c.statements == nil || len(c.statements) >= maxPullPageStatements {
			c.statements = map[string]*pullPageStatements{}
		}
		c.statements[key] = ps
	}()
	built := &pullPageStatements{tables: make(map[string]*pullHydration, len(names)), offset: make(map[string]int, len(names))}
	for _, name := range names {
		info := m.table(name)
		if info == nil {
			return nil
		}
		st, err := info.readSQL(e.registry, true)
		if err != nil || st.pull == nil {
			return nil
		}
		built.tables[name] = st.pull
		built.offset[name] = built.width
		built.width += st.pull.returned()
	}
	if len(built.tables) == 0 || 8+built.width > maxSelectList {
		// Tables too wide to share a statement are hydrated by their own.
		return nil
	}
	built.wrapped = make(map[string][2]string, 3)
	for _, page := range []string{store.PullFullPage, store.PullMergedPage, store.PullCappedPage} {
		var forms [2]string
		for form := range forms {
			forms[form] = built.build(page, names, form)
		}
		built.wrapped[page] = forms
	}
	ps = built
	return ps
}

// Bounds of the page statements with rows.
const (
	// maxPullPageTables is the most tables whose rows one page statement
	// reads.
	maxPullPageTables = 3
	// maxPullPageStatements is the most page statements kept per schema
	// (each set of tables has its own); past it the cache starts over.
	maxPullPageStatements = 64
	// maxSelectList is the most entries PostgreSQL allows in a select
	// list (MaxTupleAttributeNumber).
	maxSelectList = 1664
)

// pullPageCache holds the page statements with rows of a schema, by the
// set of tables whose rows they read, and that set for the next page.
type pullPageCache struct {
	mu         sync.Mutex
	statements map[string]*pullPageStatements
	// recent are the tables (at most maxPullPageTables, in the engine's
	// table order) whose rows the last page read by the engine delivered.
	recent atomic.Pointer[[]string]
}

// pageTables returns the tables of the entries of page that are not deletes,
// in order, when there are at most maxPullPageTables of them; nil
// otherwise.
func pageTables(order []string, page *changelogPage) []string {
	seen := make(map[string]bool, maxPullPageTables+1)
	for _, en := range page.entries {
		if en.op != OpDelete && !seen[en.table] {
			if seen[en.table] = true; len(seen) > maxPullPageTables {
				return nil
			}
		}
	}
	var out []string
	for _, t := range order {
		if seen[t] {
			out = append(out, t)
		}
	}
	return out
}

// readPageHydrated reads the page as puller.readPage does, with the current
// rows of its records (ps's statement): the entries that are not deletes
// come with their record when the row was found and may be delivered.
//
// The session's time zone decides whether timestamptz columns come typed
// (see pullForm), as pgx last heard it from the server. A server whose
// time zone was changed and reloaded since applies the new one at the
// first statement of the batch and reports it only at the batch's end:
// the page is then read again, in text form, in the same snapshot.
func (t *pgxPullTx) readPageHydrated(ctx context.Context, p *puller, ps *pullPageStatements, buckets []string, checkpoint int64, perBucket int) (*changelogPage, error) {
	utc := isUTCZone(t.conn.PgConn().ParameterStatus("TimeZone"))
	page, err := t.readPageIn(ctx, p, ps, buckets, checkpoint, perBucket, utc)
	if err == nil && utc && !isUTCZone(t.conn.PgConn().ParameterStatus("TimeZone")) {
		return t.readPageIn(ctx, p, ps, buckets, checkpoint, perBucket, false)
	}
	return page, err
}

// readPageIn is readPageHydrated with timestamptz columns typed when utc.
func (t *pgxPullTx) readPageIn(ctx context.Context, p *puller, ps *pullPageStatements, buckets []string, checkpoint int64, perBucket int, utc bool) (*changelogPage, error) {
	form := 0
	if utc {
		form = 1
	}
	query := ps.wrapped[p.pageSQL(len(buckets), perBucket)][form]
	rows, err := t.rows(ctx, query, buckets, checkpoint, p.limit+1, perBucket, p.subs)
	if err != nil {
		return nil, fmt.Errorf("synchro: reading the changelog: %w", err)
	}
	defer rows.Close()
	b := newPageBuilder(p)
	var (
		pre     pagePrefix
		dest    = make([]any, 8+ps.width)
		writers = make(map[string]*pullRowWriter, len(ps.tables))
		recs    = make([]Record, 0, p.limit)
		inPlace bool // the prefix is decoded from its wire form (pagePrefix.decode)
		first   = true
	)
	dest[0], dest[1], dest[2], dest[3], dest[4], dest[5], dest[6], dest[7] = &pre.boundary, &pre.cut, &pre.seq, &pre.table, &pre.id, &pre.op, &pre.found, &pre.updated
	for rows.Next() {
		raw := rows.RawValues()
		if len(raw) != len(dest) {
			return nil, fmt.Errorf("synchro: reading the changelog: %d columns, want %d", len(raw), len(dest))
		}
		if first {
			fields := rows.FieldDescriptions()
			if len(fields) != len(dest) {
				return nil, fmt.Errorf("synchro: reading the changelog: %d columns described, want %d", len(fields), len(dest))
			}
			first, inPlace = false, pagePrefixInPlace(fields)
			for name, h := range ps.tables {
				off := 8 + ps.offset[name]
				wire, err := pullWires(fields[off:off+h.returned()], h.cols, utc)
				if err != nil {
					return nil, fmt.Errorf("synchro: reading the changelog: %w", err)
				}
				writers[name] = &pullRowWriter{cols: h.cols, wire: wire}
			}
		}
		if inPlace {
			if err := pre.decode(raw); err != nil {
				return nil, fmt.Errorf("synchro: reading the changelog: %w", err)
			}
		} else if err := rows.Scan(dest...); err != nil { // the row columns are read in place (nil: not scanned)
			return nil, fmt.Errorf("synchro: reading the changelog: %w", err)
		}
		en := b.add(pre.boundary.Int64, pre.cut, pre.seq, pre.table, pre.id, pre.op)
		if en == nil || !pre.found.Bool || en.record != nil {
			continue
		}
		h := ps.tables[en.table]
		if h == nil {
			return nil, fmt.Errorf("synchro: reading the changelog: a row of unknown table %q", en.table)
		}
		off := 8 + ps.offset[en.table]
		data, err := writers[en.table].object(raw[off : off+h.returned()])
		if err != nil {
			return nil, fmt.Errorf("synchro: reading the changelog: %w", err)
		}
		if len(recs) == cap(recs) {
			recs = make([]Record, 0, p.limit)
		}
		recs = append(recs, Record{ID: en.id, TableName: en.table, Data: data, UpdatedAt: finiteTime(pre.updated)})
		en.record = &recs[len(recs)-1]
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("synchro: reading the changelog: %w", err)
	}
	page := b.page
	for _, en := range page.entries {
		if en.op == OpDelete {
			en.record = nil
		}
		// Every appearance of a table of ps that is not a delete was
		// looked up; the others are hydrated after the page.
		en.hydrated = ps.tables[en.table] != nil
	}
	page.hydrated = true
	return page, nil
}

// pagePrefix holds the first columns of a row of the page statement: the
// page's (see store.PullFullPage), then f and u (see
// pullPageStatements.build).
type pagePrefix struct {
	boundary, cut, seq pgtype.Int8
	table, id          pgtype.Text
	op                 pgtype.Int2
	found              pgtype.Bool
	updated            pgtype.Timestamptz
}

// pagePrefixWire is the type and format of each column of a pagePrefix as
// pgx asks for them (its default formats: binary for these types but
// text): what pagePrefix.decode reads.
var pagePrefixWire = [8]struct {
	oid    uint32
	format int16
}{
	{oidInt8, pgtype.BinaryFormatCode}, {oidInt8, pgtype.BinaryFormatCode}, {oidInt8, pgtype.BinaryFormatCode},
	{oidText, pgtype.TextFormatCode}, {oidText, pgtype.TextFormatCode}, {oidInt2, pgtype.BinaryFormatCode},
	{oidBool, pgtype.BinaryFormatCode}, {oidTimestampTZ, pgtype.BinaryFormatCode},
}

// pagePrefixInPlace reports whether the first columns of fields come in the
// types and formats pagePrefix.decode reads; when they do not (a connection
// whose pgx settings ask for other formats), the rows are scanned.
func pagePrefixInPlace(fields []pgconn.FieldDescription) bool {
	if len(fields) < len(pagePrefixWire) {
		return false
	}
	for i, w := range pagePrefixWire {
		if fields[i].DataTypeOID != w.oid || fields[i].Format != w.format {
			return false
		}
	}
	return true
}

// decode reads the prefix from the values of a row (raw, nil for NULL) in
// the form pagePrefixWire describes, as pgx's Scan would, without its
// per-column dispatch: about a tenth of the engine's CPU on a page of 1000
// (issue 14 item 4). The table name is kept when it is the previous row's.
func (pp *pagePrefix) decode(raw [][]byte) error {
	for i, dst := range []*pgtype.Int8{&pp.boundary, &pp.cut, &pp.seq} {
		switch v := raw[i]; {
		case v == nil:
			*dst = pgtype.Int8{}
		case len(v) == 8:
			*dst = pgtype.Int8{Int64: int64(binary.BigEndian.Uint64(v)), Valid: true}
		default:
			return fmt.Errorf("column %d: an int8 of %d bytes", i+1, len(v))
		}
	}
	if v := raw[3]; v == nil {
		pp.table = pgtype.Text{}
	} else if !pp.table.Valid || string(v) != pp.table.String {
		pp.table = pgtype.Text{String: string(v), Valid: true}
	}
	if v := raw[4]; v == nil {
		pp.id = pgtype.Text{}
	} else {
		pp.id = pgtype.Text{String: string(v), Valid: true}
	}
	switch v := raw[5]; {
	case v == nil:
		pp.op = pgtype.Int2{}
	case len(v) == 2:
		pp.op = pgtype.Int2{Int16: int16(binary.BigEndian.Uint16(v)), Valid: true}
	default:
		return fmt.Errorf("column 6: an int2 of %d bytes", len(v))
	}
	switch v := raw[6]; {
	case v == nil:
		pp.found = pgtype.Bool{}
	case len(v) == 1:
		pp.found = pgtype.Bool{Bool: v[0] == 1, Valid: true}
	default:
		return fmt.Errorf("column 7: a bool of %d bytes", len(v))
	}
	switch v := raw[7]; {
	case v == nil:
		pp.updated = pgtype.Timestamptz{}
	case len(v) == 8:
		// Microseconds since 2000-01-01 UTC; the extremes are the
		// infinities.
		switch us := int64(binary.BigEndian.Uint64(v)); us {
		case math.MaxInt64:
			pp.updated = pgtype.Timestamptz{InfinityModifier: pgtype.Infinity, Valid: true}
		case math.MinInt64:
			pp.updated = pgtype.Timestamptz{InfinityModifier: pgtype.NegativeInfinity, Valid: true}
		default:
			pp.updated = pgtype.Timestamptz{Time: pgTime(us), Valid: true}
		}
	default:
		return fmt.Errorf("column 8: a timestamptz of %d bytes", len(v))
	}
	return nil
}

// pgEpochSeconds is PostgreSQL's epoch, 2000-01-01 00:00:00 UTC, in
// seconds since the Unix epoch.
const pgEpochSeconds = 946_684_800

// pgTime is the time, in UTC, of a finite timestamp's binary form: us
// microseconds since PostgreSQL's epoch. It goes through seconds and
// microseconds: us plus the epoch in microseconds would overflow for times
// within about 30 years of PostgreSQL's last (294276 AD).
func pgTime(us int64) time.Time {
	sec, frac := us/1_000_000, us%1_000_000
	if frac < 0 {
		sec, frac = sec-1, frac+1_000_000
	}
	return time.Unix(sec+pgEpochSeconds, frac*1000).UTC()
}
