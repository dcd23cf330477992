package synchro

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/synchrosync/synchro/internal/bucket"
	"github.com/synchrosync/synchro/internal/pgerr"
	"github.com/synchrosync/synchro/internal/pgident"
)

// This file holds the read machinery pull and snapshot share: the
// statements that read rows for clients (pull's hydration and snapshot
// pages), the read transaction's options, and running a read statement
// with the ownership rules (readRows).
//
// A row is sent to a client only when its current contents put it in one of
// the client's buckets by the ownership rules; this matters while the
// consumer lags behind the tables: a row that has just moved to another user
// is still recorded in the old owner's bucket, and only its current owner
// column tells. With the default JoinResolver the rules run in SQL
// (memberPredicate); a custom OwnershipResolver is asked in Go for each row
// read. Snapshot pages (and, with a custom resolver, pull's hydration too)
// also require the row to be recorded in one of the buckets by the change
// capture (synchro.bucket_edges): a snapshot reads a user's rows through
// them, and a custom resolver, which only sees the row, is checked against
// what the consumer's assigner decided. Pull's hydration with the default
// rules needs no such test: a record is hydrated only because the changelog
// put it in one of the client's buckets, and the rules decide the rest.

// readRowAlias is the alias of the table read.
const readRowAlias = "x"

// readStatements are the fixed statements that read one table for clients.
// Each returns: id (text), data (json text of the delivered columns, see
// tableInfo.delivered), updated-at
// (NULL without the column), and the whole row as json text when a custom
// OwnershipResolver must decide (NULL otherwise). Deleted rows are never
// returned.
type readStatements struct {
	// hydrate: $1 text[] of ids, $2 text[] of the client's buckets.
	hydrate string
	// first and after read a snapshot page in primary key order by
	// walking the table in key order and testing each row's edges:
	// $1 text[] buckets, $2 limit, and for after $3 the last key read.
	first, after string
	// edgesFirst and edgesAfter read the same page from the keys the
	// client's edges name, sorted; same parameters.
	edgesFirst, edgesAfter string
	// byEdges decides between them (see snapshotByEdgesSQL): $1 text[]
	// buckets, $2 the page's size.
	byEdges string
	// pull is pull's hydration with the ownership rules in SQL (nil
	// otherwise, where hydrate serves): see pullread.go.
	pull *pullHydration
}

// readSQL returns the read statements of t. sqlRules tells whether the
// ownership rules run in SQL (the default JoinResolver); it is the same for
// every call of one engine.
func (t *tableInfo) readSQL(reg *Registry, sqlRules bool) (*readStatements, error) {
	t.readOnce.Do(func() {
		t.read, t.readErr = buildReadStatements(reg, t, sqlRules)
	})
	return t.read, t.readErr
}

func buildReadStatements(reg *Registry, t *tableInfo, sqlRules bool) (*readStatements, error) {
	cfg := t.cfg
	x := readRowAlias
	pk := x + "." + pgident.Quote(t.pk)
	updated := "NULL::timestamptz"
	if t.hasUpdatedAt {
		updated = x + "." + pgident.Quote(cfg.UpdatedAtColumn)
	}
	whole := "NULL::text"
	// subsMark stands for the buckets parameter until the statement is
	// finished: identifiers and literals never hold a NUL byte.
	const subsMark = "\x00"
	// idMark stands for the record id as text: the id the changelog gave
	// when hydrating, the key as PostgreSQL prints it in a snapshot (see
	// tableInfo.idSQL).
	const idMark = "\x01"
	// The row's edges are probed row by row, by (table, record id): OFFSET
	// 0 keeps PostgreSQL from flattening the EXISTS into a semi join, which
	// without statistics on bucket_edges it ran as a nested loop reading
	// every edge of the client's buckets for every row of the table
	// (20,000 x 20,000 comparisons for a fresh import). As a subquery of its
	// own, the record id is an index condition of every plan it can get.
	edges := fmt.Sprintf(`EXISTS (SELECT 1 FROM synchro.bucket_edges AS e WHERE e.table_name = %s AND e.record_id = %s AND e.bucket_id = ANY(%s) OFFSET 0)`,
		pgident.QuoteLiteral(cfg.TableName), idMark, subsMark)
	var conds []string
	if t.hasDeletedAt {
		conds = append(conds, x+"."+pgident.Quote(cfg.DeletedAtColumn)+" IS NULL")
	}
	hydrateEdges := true
	if sqlRules {
		member, err := memberPredicate(reg, cfg, x, subsMark)
		if err != nil {
			return nil, err
		}
		conds = append(conds, member)
		hydrateEdges = false
	} else {
		whole = "row_to_json(" + x + ".*)::text"
	}
	where := func(subs, id string, withEdges bool) string {
		all := conds
		if withEdges {
			all = append([]string{edges}, conds...)
		}
		return strings.NewReplacer(subsMark, subs, idMark, id).Replace(strings.Join(all, "\n   AND "))
	}
	data := fmt.Sprintf(`(SELECT row_to_json(s.*)::text FROM (SELECT %s) AS s)`, strings.Join(t.deliveredSQL(x), ", "))
	if t.deliversWholeRow() {
		data = "row_to_json(" + x + ".*)::text" // the same object, built without a subquery
	}
	rest := fmt.Sprintf(`%s, %s, %s`, data, updated, whole)
	s := &readStatements{}
	// The ids are cast to the key type as a whole array, not row by row in
	// the join condition: a cast applied to a column is not leakproof, and
	// under row-level security PostgreSQL then may not use the condition
	// to look the rows up by the primary key (it scanned the table).
	s.hydrate = fmt.Sprintf(`SELECT r.id, %s
  FROM unnest($1::text[], CAST($1::text[] AS %s[])) AS r(id, key) JOIN %s AS %s ON %s = r.key
 WHERE %s`, rest, t.pkType(), t.quoted, x, pk, where("$2::text[]", "r.id", hydrateEdges))
	if sqlRules {
		// Driven by the page's ids (at most a page), each row looked up
		// by its key in a LATERAL subquery that LIMIT 1 keeps from being
		// flattened into a join: whatever the statistics say, the plan
		// is a nested loop over the ids with one primary key probe each,
		// never a scan of the table (TestPullPlansWithoutStatistics).
		cols, sel := pullColumns(t, x, pullFormText)
		list := pullSelectList(sel)
		s.pull = &pullHydration{cols: cols, sql: fmt.Sprintf(`SELECT r.id, h.*
  FROM unnest($1::text[], CAST($1::text[] AS %s[])) AS r(id, key)
 CROSS JOIN LATERAL (
       SELECT %s AS updated_at%s
         FROM %s AS %s
        WHERE %s = r.key
          AND %s
        LIMIT 1) AS h`, t.pkType(), updated, list, t.quoted, x, pk,
			where("$2::text[]", "r.id", false))}
		// The same lookup as the right side of an outer join in pull's
		// page statement (see pullPageStatements.build), which PostgreSQL
		// flattens: the table's rows that may be delivered (the buckets
		// are $5), with their key k, which the page entry's record id
		// cast to the key type is compared with (a value of the outer
		// row, not a function of a column of the table read, so RLS does
		// not keep it from being an index condition when the key type's
		// equality is leakproof: integers, text, uuid, char(n), dates
		// and times among others. A key of numeric or of an enum under
		// row-level security is compared after the policy's conditions,
		// over a scan of what the user may read; the LATERAL lookup this
		// replaced scanned as much for every entry.)
		// Its columns are typed (pullFormTyped), in two forms: with
		// timestamptz as text, and for sessions in UTC as timestamptz.
		for i, form := range []pullForm{pullFormTyped, pullFormTypedUTC} {
			_, sel := pullColumns(t, x, form)
			s.pull.joinFrom[i] = fmt.Sprintf(`SELECT %s AS k, true AS f, %s AS u%s FROM %s AS %s WHERE %s`,
				pk, updated, pullSelectList(sel), t.quoted, x, where("$5::text[]", "NULL", false))
		}
		s.pull.keyType = t.pkType()
	}
	// A snapshot page reads the client's rows in key order in one of two
	// ways: by walking the table in key order, testing each row's edges,
	// or from the keys the client's edges name, sorted (see
	// Engine.snapshotByEdges). Both run in a transaction that rules out
	// sequential scans (indexWalk): a page must walk the primary
	// key index and stop after $2 rows, whatever the statistics say (with
	// none, PostgreSQL estimated one row for the table and scanned and
	// sorted all of it for every page).
	keyType := t.pkType()
	// A row's record id, as capture records it in the edges and the
	// changelog and as pull delivers it: the key as PostgreSQL prints it.
	id := t.idSQL(pk)
	walk := func(after string) string {
		return fmt.Sprintf(`SELECT %[7]s, %[2]s
  FROM %[3]s AS %[4]s
 WHERE %[5]s%[6]s
 ORDER BY %[1]s LIMIT $2`, pk, rest, t.quoted, x, after, where("$1::text[]", id, true), id)
	}
	s.first = walk("")
	s.after = walk(pk + " > CAST($3::text AS " + keyType + ")\n   AND ")
	// From the edges: the client's keys of the table, distinct and in key
	// order, each looked up by key in a LATERAL subquery that OFFSET 0 keeps
	// apart, so that whatever PostgreSQL believes of either side the table
	// is never scanned: at most the keys the decision allowed (cap, at most
	// 64 pages) are read, and the rows stop at $2.
	byEdges := func(after string) string {
		return fmt.Sprintf(`SELECT r.*
  FROM (SELECT DISTINCT CAST(e.record_id AS %[3]s) AS key FROM synchro.bucket_edges AS e
         WHERE e.bucket_id = ANY($1::text[]) AND e.table_name = %[4]s%[7]s) AS k
 CROSS JOIN LATERAL (SELECT %[9]s AS id, %[2]s
                       FROM %[5]s AS %[6]s
                      WHERE %[1]s = k.key AND %[8]s
                     OFFSET 0) AS r
 ORDER BY k.key LIMIT $2`, pk, rest, keyType, pgident.QuoteLiteral(cfg.TableName), t.quoted, x,
			after, cmp.Or(where("$1::text[]", id, false), "true"), id)
	}
	s.edgesFirst = byEdges("")
	s.edgesAfter = byEdges("\n           AND CAST(e.record_id AS " + keyType + ") > CAST($3::text AS " + keyType + ")")
	s.byEdges = fmt.Sprintf(snapshotByEdgesSQL, pgident.QuoteLiteral(t.quoted), pgident.QuoteLiteral(cfg.TableName))
	return s, nil
}

// snapshotByEdgesSQL decides how a snapshot reads a table (%[1]s its quoted
// name, %[2]s its name as registered, as literals) for a client ($1 its
// buckets) by pages of $2 rows: from the keys its edges name when it has at
// most cap rows there. Reading every edge, looking each row up and sorting
// then costs at most about what a walk in key order costs, which reads about
// n·N/E rows to find n of the client's E among N. cap is sqrt(1.5·n·N), N
// from the planner's statistics, at least 4·n and at most 64·n; at most cap+1
// index entries are read.
const snapshotByEdgesSQL = `
WITH cap AS (SELECT coalesce((SELECT least(64 * $2, greatest(4 * $2, sqrt(1.5 * $2 * greatest(c.reltuples, 0))))::int8
                                FROM pg_catalog.pg_class AS c WHERE c.oid = %[1]s::regclass), 4 * $2) AS n)
SELECT count(*) <= (SELECT n FROM cap)
  FROM (SELECT 1 FROM synchro.bucket_edges AS e
         WHERE e.bucket_id = ANY($1::text[]) AND e.table_name = %[2]s
         LIMIT (SELECT n FROM cap) + 1) AS k`

// memberPredicate is the SQL condition that the row alias of table cfg is,
// by the rules of JoinResolver.ResolveOwner applied to its current
// contents, in one of the buckets of the text[] expression subs.
func memberPredicate(reg *Registry, cfg *TableConfig, alias, subs string) (string, error) {
	col := func(c string) string { return alias + "." + pgident.Quote(c) + "::text" }
	switch {
	case bucketsRoot(cfg):
		own, prefix, nullGlobal := bucketRule(cfg)
		return bucketMatch(col(own), prefix, nullGlobal, subs), nil
	case cfg.ParentTable != "":
		chain, err := reg.chain(cfg.TableName).upTo(bucketsRoot)
		if err != nil {
			return "", err
		}
		rootCol, prefix, nullGlobal := bucketRule(chain.root())
		j := chain.join(alias, alias+"."+pgident.Quote(cfg.ParentFKCol))
		value := "(SELECT " + j.rootCol(rootCol) + "::text FROM " + j.from + " WHERE " + j.on + ")"
		fk := col(cfg.ParentFKCol)
		return fmt.Sprintf("(coalesce(%s, '') <> '' AND %s)", fk, bucketMatch(value, prefix, nullGlobal, subs)), nil
	default:
		return fmt.Sprintf("%s = ANY(%s)", pgident.QuoteLiteral(bucket.Global), subs), nil
	}
}

// bucketMatch is the SQL condition that the bucket a text value gives (see
// bucketsFor) is one of subs.
func bucketMatch(value, prefix string, nullGlobal bool, subs string) string {
	empty := "false"
	if nullGlobal {
		empty = fmt.Sprintf("%s = ANY(%s)", pgident.QuoteLiteral(bucket.Global), subs)
	}
	// IN (SELECT unnest(...)) rather than = ANY(...): PostgreSQL hashes the
	// buckets once per statement instead of comparing each row with every
	// bucket (a client of 1000 buckets: a million comparisons a page).
	return fmt.Sprintf("(CASE WHEN coalesce(%s, '') = '' THEN %s ELSE %s || %s IN (SELECT unnest(%s)) END)",
		value, empty, pgident.QuoteLiteral(prefix), value, subs)
}

// readTxOptions is the transaction every page is read in: one consistent
// snapshot, no writes.
var readTxOptions = &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true}

// readRow is one row a read statement returned; ok tells whether it may
// go to the client.
type readRow struct {
	rec *Record
	ok  bool
}

// readRows runs one of info's read statements. Every row the SQL rules
// let through may go to the client; with a custom OwnershipResolver each
// row is then checked in Go against subs.
func (e *Engine) readRows(ctx context.Context, tx *sql.Tx, info *tableInfo, subs []string,
	query func(*readStatements) (*sql.Rows, error)) ([]readRow, error) {
	_, sqlRules := e.ownership.(*JoinResolver)
	st, err := info.readSQL(e.registry, sqlRules)
	if err != nil {
		return nil, err
	}
	rows, err := query(st)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []readRow
	var wholes []string
	for rows.Next() {
		var (
			id      string
			data    []byte // database/sql hands over a copy of its own
			updated sql.NullTime
			whole   sql.NullString
		)
		if err := rows.Scan(&id, &data, &updated, &whole); err != nil {
			return nil, err
		}
		r := &Record{ID: id, TableName: info.cfg.TableName, Data: json.RawMessage(info.deliveredRow(data))}
		if updated.Valid {
			r.UpdatedAt = updated.Time.UTC()
		}
		out = append(out, readRow{rec: r, ok: sqlRules})
		wholes = append(wholes, whole.String)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows.Close()
	if !sqlRules {
		for i := range out {
			if out[i].ok, err = e.resolverAllows(ctx, tx, info, out[i].rec.ID, wholes[i], subs); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// resolverAllows asks the custom OwnershipResolver whether the row (whole,
// the row as JSON) is in one of subs.
func (e *Engine) resolverAllows(ctx context.Context, tx *sql.Tx, info *tableInfo, id, whole string, subs []string) (bool, error) {
	dec := json.NewDecoder(strings.NewReader(whole))
	dec.UseNumber()
	var vals map[string]any
	if err := dec.Decode(&vals); err != nil {
		return false, fmt.Errorf("decoding row %q: %w", id, err)
	}
	buckets, err := e.ownership.ResolveOwner(ctx, tx, info.cfg.TableName, id, vals)
	if err != nil {
		return false, fmt.Errorf("resolving the buckets of %q: %w", id, err)
	}
	for _, b := range buckets {
		if _, found := slices.BinarySearch(subs, b); found {
			return true, nil
		}
	}
	return false, nil
}

// isDataError reports whether err is PostgreSQL refusing a value (SQLSTATE
// class 22: invalid text representation, out of range, ...).
func isDataError(err error) bool {
	return pgerr.Class(pgerr.Code(err)) == pgerr.ClassDataException
}

// pullSelectList is the select list of the returned columns sel of a pull
// hydration, each after a comma, named c0, c1, ...
func pullSelectList(sel []string) string {
	var b strings.Builder
	for i, c := range sel {
		fmt.Fprintf(&b, ", %s AS c%d", c, i)
	}
	return b.String()
}
