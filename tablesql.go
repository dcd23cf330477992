package synchro

import (
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/synchrosync/synchro/internal/pgcatalog"
	"github.com/synchrosync/synchro/internal/pgident"
)

// This file holds the statements push builds for each registered table from
// its identifiers: the row lock, the writes and the keys' casts, built once
// per table (tableInfo.pushSQL) or per column set. The decisions that use
// them are in push_exec.go; the read statements in readsql.go.

// pushStatements are the fixed statements push runs on one table.
type pushStatements struct {
	// lock: $1 text[] of ids -> id (as pushed), data, updated_at,
	// deleted_at, owner, parent fk, bucket column, rows locked FOR UPDATE in
	// primary key order.
	lock string
	// delete: $1 text[] of ids -> position in $1, deleted_at (NULL for a
	// hard delete).
	delete string
}

// pkType is the SQL type a key given as text is cast to: the primary
// key's type, after looking through domains, without its modifier. With
// it, or with a domain that declares one, an explicit cast truncates or
// rounds ('abcdef' to varchar(3) is 'abc', '1.234' to numeric(5,2) is
// 1.23), so that an id would name another row.
func (t *tableInfo) pkType() string {
	c := t.column(t.pk)
	if c.castType != "" {
		return c.castType
	}
	return c.dbType
}

// idSQL is the SQL text of the record id of key, an expression of the
// primary key's type: the key as PostgreSQL prints it, the form change
// capture records in the changelog and the bucket edges (see
// pgcatalog.RecordID: key::text, but for a char(n) key its padded form, for
// an inet key its form without the netmask of a single host, for a boolean
// key t or f).
func (t *tableInfo) idSQL(key string) string {
	return pgcatalog.RecordID(key, t.pkType())
}

// charKeyLength returns n when the primary key is a char(n) (or a domain
// over one), whose ids PostgreSQL prints padded to n characters; 0 for
// every other key, bpchar without a length included.
func (t *tableInfo) charKeyLength() int {
	c := t.column(t.pk)
	if c.castType != pgcatalog.BpcharCastType || c.typmod < 4 {
		return 0
	}
	return c.typmod - 4 // a char(n) typmod counts the varlena header
}

// idOfSQL is the SQL text of the record id that id (SQL text, as a client
// sends a key) names: the key it spells, printed as PostgreSQL prints it
// (CAST(id AS uuid)::text for a uuid key). A char(n) key compares without
// its trailing spaces, so "a" names the row whose id is "a   " in a
// char(4); an id longer than n characters names no row and is left as
// it is (the explicit cast would cut it to another row's key).
func (t *tableInfo) idOfSQL(id string) string {
	if n := t.charKeyLength(); n > 0 {
		return fmt.Sprintf(`(CASE WHEN char_length(CAST(%[1]s AS pg_catalog.bpchar)) <= %[2]d THEN format('%%s', CAST(%[1]s AS pg_catalog.bpchar(%[2]d))) ELSE %[1]s END)`, id, n)
	}
	return t.idSQL("CAST(" + id + " AS " + t.pkType() + ")")
}

// charKey returns the char(n) key id spells, as PostgreSQL prints it: id
// without its trailing spaces, padded with spaces to n characters (n from
// charKeyLength), and true; an id of more characters, which no char(n) key
// spells, is returned as it is, with false.
func charKey(id string, n int) (string, bool) {
	k := strings.TrimRight(id, " ")
	if c := utf8.RuneCountInString(k); c <= n {
		return k + strings.Repeat(" ", n-c), true
	}
	return id, false
}

func (t *tableInfo) pushSQL() *pushStatements {
	t.pushOnce.Do(func() {
		cfg := t.cfg
		pk := pgident.Quote(t.pk)
		textCol := func(col string) string {
			if col == "" || t.column(col) == nil {
				return "NULL::text"
			}
			return "x." + pgident.Quote(col) + "::text"
		}
		tsCol := func(col string, present bool) string {
			if !present {
				return "NULL::timestamptz"
			}
			return "x." + pgident.Quote(col)
		}
		proj := t.deliveredSQL("x")
		s := &pushStatements{}
		// The ids are cast as one array, not in the join condition, so that
		// under row-level security the rows are still looked up by key (see
		// readStatements.hydrate).
		s.lock = fmt.Sprintf(`SELECT r.id, (SELECT row_to_json(s.*)::text FROM (SELECT %s) AS s), %s, %s, %s, %s, %s
FROM unnest($1::text[], CAST($1::text[] AS %s[])) AS r(id, key) JOIN %s AS x ON x.%s = r.key
ORDER BY x.%s FOR UPDATE OF x`,
			strings.Join(proj, ", "),
			tsCol(cfg.UpdatedAtColumn, t.hasUpdatedAt), tsCol(cfg.DeletedAtColumn, t.hasDeletedAt),
			textCol(cfg.OwnerColumn), textCol(cfg.ParentFKCol), textCol(cfg.BucketByColumn),
			t.pkType(), t.quoted, pk, pk)
		ids := fmt.Sprintf(`unnest(CAST($1::text[] AS %s[])) WITH ORDINALITY AS r(id, ord)`, t.pkType())
		if t.hasDeletedAt {
			// A soft delete is a new version of the row: deleted-at and
			// updated-at both take it. Without an updated-at column there
			// are no versions, and deleted-at is the database clock.
			set := pgident.Quote(cfg.DeletedAtColumn) + " = " + t.columnTime(cfg.DeletedAtColumn, "clock_timestamp()")
			if t.hasUpdatedAt {
				at := t.versionSQL("($2::timestamptz[])[r.ord]")
				deleted := at
				if t.zoneless(cfg.DeletedAtColumn) != t.zoneless(cfg.UpdatedAtColumn) {
					deleted = "(" + at + " AT TIME ZONE 'UTC')" // the same instant, in the other type
				}
				set = pgident.Quote(cfg.DeletedAtColumn) + " = " + deleted + ", " + pgident.Quote(cfg.UpdatedAtColumn) + " = " + at
			}
			s.delete = fmt.Sprintf(`UPDATE %s AS x SET %s FROM %s WHERE x.%s = r.id RETURNING r.ord, x.%s`,
				t.quoted, set, ids, pk, pgident.Quote(cfg.DeletedAtColumn))
		} else {
			s.delete = fmt.Sprintf(`DELETE FROM %s AS x USING %s WHERE x.%s = r.id RETURNING r.ord, NULL::timestamptz`,
				t.quoted, ids, pk)
		}
		t.push = s
	})
	return t.push
}

// versionSQL is the new version (updated-at) of a row of the table x that
// an edit made at the time at (SQL, a timestamptz) writes: the edit time,
// or just after the row's current version when that is not earlier, so
// that the versions of a row only move forward and each names one state of
// the row (a device's base_updated_at). The step is the column's
// precision: a microsecond, or more for a column declared with fewer
// fractional digits. An infinite current version ('infinity',
// '-infinity') is no version, as NULL is (pull delivers neither; see
// finiteTime): the write's version is the edit time, a finite one.
func (t *tableInfo) versionSQL(at string) string {
	col := "x." + pgident.Quote(t.cfg.UpdatedAtColumn)
	return fmt.Sprintf("GREATEST(CASE WHEN isfinite(%s) THEN %s + interval '%d microseconds' END, %s)",
		col, col, t.versionStep(), t.columnTime(t.cfg.UpdatedAtColumn, at))
}

// versionStep is the smallest step of the updated-at column, in
// microseconds: 10^(6-p) for a column of precision p (timestamptz(p), or a
// domain over it), 1 when the column has no declared precision.
func (t *tableInfo) versionStep() int {
	p := t.column(t.cfg.UpdatedAtColumn).typmod
	step := 1
	if p >= 0 && p < 6 {
		for range 6 - p {
			step *= 10
		}
	}
	return step
}

// zoneless reports whether the column col is a timestamp without time
// zone (possibly through a domain).
func (t *tableInfo) zoneless(col string) bool {
	c := t.column(col)
	return c != nil && c.value.kind == valueTimestamp
}

// columnTime is the value the column col (a timestamp or timestamptz
// column) stores for the instant at (SQL, a timestamptz): at itself, or
// for a timestamp without time zone its time in UTC. The wire reads a
// zoneless timestamp as UTC, and so do pull, Conflict.ServerTime and
// server_updated_at (the driver reads the column's value as a UTC time);
// an assignment would convert through the session's TimeZone instead.
func (t *tableInfo) columnTime(col, at string) string {
	if t.zoneless(col) {
		return "(" + at + " AT TIME ZONE 'UTC')"
	}
	return at
}

// recordSQL is the FROM item that reads each object of the JSON array $1
// as e(doc, o), its position o, and its values as the record r of exactly
// the columns cols, each converted to the column's type (with its
// modifier, as format_type prints it) as a column of the table would be:
// jsonb_to_record with a column definition list. Not
// jsonb_populate_record(NULL::table, ...): that also runs the input of
// every column the object leaves out, with NULL, so a column of a domain
// declared NOT NULL (or CHECK (VALUE IS NOT NULL)) fails a create that
// leaves it to its default and every update that does not set it.
func (t *tableInfo) recordSQL(cols []string) string {
	defs := make([]string, len(cols))
	for i, c := range cols {
		defs[i] = pgident.Quote(c) + " " + t.column(c).dbType
	}
	return fmt.Sprintf(`jsonb_array_elements($1::jsonb) WITH ORDINALITY AS e(doc, o), LATERAL jsonb_to_record(e.doc) AS r(%s)`,
		strings.Join(defs, ", "))
}

// valueJSONSQL reads the value of column col from the JSON object $1 as
// recordSQL does, converted to the column's type, and returns it as pull
// delivers it (to_json): the value PostgreSQL makes of a pushed value in
// a form the engine leaves to it (an array as PostgreSQL's array text).
func (t *tableInfo) valueJSONSQL(col string) string {
	q := pgident.Quote(col)
	return fmt.Sprintf(`SELECT to_json(r.%s) FROM jsonb_to_record($1::jsonb) AS r(%s %s)`, q, q, t.column(col).dbType)
}

// insertSQL inserts one row per object of the JSON array $1, setting the
// columns cols (the primary key among them) converted to their types by
// recordSQL, the other columns to their defaults, and updated-at to the
// record's edit time ($2, see pusher.editTime). It returns each row's
// position in $1 and its new updated-at. The source rows get generated
// column names (o, v1, v2, ...), so no table column can clash with an
// alias.
func (t *tableInfo) insertSQL(cols []string) string {
	var names, srcCols, picks, values []string
	pkSrc := ""
	for i, c := range cols {
		v := fmt.Sprintf("v%d", i+1)
		names = append(names, pgident.Quote(c))
		srcCols = append(srcCols, v)
		picks = append(picks, "r."+pgident.Quote(c))
		values = append(values, v)
		if c == t.pk {
			pkSrc = v
		}
	}
	returning := "NULL::timestamptz"
	if t.hasUpdatedAt {
		// A new row's first version is its edit time ($2, see editTime).
		names = append(names, pgident.Quote(t.cfg.UpdatedAtColumn))
		values = append(values, t.columnTime(t.cfg.UpdatedAtColumn, "($2::timestamptz[])[o]"))
		returning = "ins." + pgident.Quote(t.cfg.UpdatedAtColumn)
	}
	pk := pgident.Quote(t.pk)
	return fmt.Sprintf(`WITH src(o, %s) AS MATERIALIZED (
	SELECT e.o, %s FROM %s
), ins AS (
	INSERT INTO %s (%s) SELECT %s FROM src ORDER BY src.o RETURNING *
)
SELECT src.o, %s FROM ins JOIN src ON src.%s = ins.%s`,
		strings.Join(srcCols, ", "), strings.Join(picks, ", "), t.recordSQL(cols),
		t.quoted, strings.Join(names, ", "), strings.Join(values, ", "),
		returning, pkSrc, pk)
}

// updateSQL updates one row per object of the JSON array $1 (matched by
// primary key, which each object holds besides the columns cols), setting
// the columns cols (converted by recordSQL) and updated-at to the row's new
// version (versionSQL of the record's edit time, $2) and, when
// resurrecting, clearing deleted-at. It returns each row's position in $1
// and its new updated-at.
func (t *tableInfo) updateSQL(cols []string, resurrect bool) string {
	var set []string
	for _, c := range cols {
		set = append(set, pgident.Quote(c)+" = r."+pgident.Quote(c))
	}
	returning := "NULL::timestamptz"
	if t.hasUpdatedAt {
		set = append(set, pgident.Quote(t.cfg.UpdatedAtColumn)+" = "+t.versionSQL("($2::timestamptz[])[e.o]"))
		returning = "x." + pgident.Quote(t.cfg.UpdatedAtColumn)
	}
	if resurrect && t.hasDeletedAt {
		set = append(set, pgident.Quote(t.cfg.DeletedAtColumn)+" = NULL")
	}
	pk := pgident.Quote(t.pk)
	if len(set) == 0 {
		// Nothing to write: touch the key so the row is still reported.
		set = append(set, pk+" = x."+pk)
	}
	read := cols
	if !slices.Contains(cols, t.pk) {
		read = append(slices.Clip(cols), t.pk)
	}
	return fmt.Sprintf(`UPDATE %s AS x SET %s
FROM %s
WHERE x.%s = r.%s RETURNING e.o, %s`,
		t.quoted, strings.Join(set, ", "), t.recordSQL(read), pk, pk, returning)
}

// distinctKeysSQL counts the distinct primary keys the ids of $1 spell, to
// detect two spellings of one row ('0042' and '42', upper and lower case
// UUIDs).
func (t *tableInfo) distinctKeysSQL() string {
	return fmt.Sprintf(`SELECT count(DISTINCT CAST(r.id AS %s)) FROM unnest($1::text[]) AS r(id)`, t.pkType())
}

// textKey reports whether the primary key's text is the key itself, so that
// two different ids are always two different rows.
func (t *tableInfo) textKey() bool {
	ty := t.pkType()
	return ty == "text" || strings.HasPrefix(ty, "character varying")
}
