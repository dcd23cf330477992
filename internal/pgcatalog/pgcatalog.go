// Package pgcatalog reads facts about the application's tables from the
// PostgreSQL catalog, for the code paths that do not have the engine's
// introspected schema at hand (bucket resolution and change capture).
package pgcatalog

import (
	"context"
	"database/sql"
	"sync"

	"github.com/synchrosync/synchro/internal/pgident"
)

// Querier runs a query returning one row; *sql.DB, *sql.Tx and *sql.Conn
// satisfy it.
type Querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// columnTypeQuery reads a column's type as format_type prints it, with its
// modifier: $1 is the quoted, possibly schema-qualified table, $2 the column.
const columnTypeQuery = `
SELECT format_type(a.atttypid, a.atttypmod)
  FROM pg_attribute a
 WHERE a.attrelid = to_regclass($1) AND a.attname = $2 AND NOT a.attisdropped`

// castTypeQuery reads the type a column's values are cast to from text
// (CastTypeSQL of its base type, after following any chain of domains). $1
// and $2 as in columnTypeQuery.
var castTypeQuery = `
WITH RECURSIVE dom(cur) AS (
	SELECT a.atttypid
	  FROM pg_attribute a
	 WHERE a.attrelid = to_regclass($1) AND a.attname = $2 AND NOT a.attisdropped
	UNION ALL
	SELECT t.typbasetype FROM dom JOIN pg_type t ON t.oid = dom.cur WHERE t.typtype = 'd'
)
SELECT ` + CastTypeSQL("t.oid") + `
  FROM dom JOIN pg_type t ON t.oid = dom.cur WHERE t.typtype <> 'd'`

// CastTypeSQL is the SQL expression of the type a key given as text is
// cast to, for oid (an SQL expression of a base type's oid): the type as
// format_type prints it without a modifier, so that the cast never cuts
// or rounds the key into another row's. Two types mean a length of one
// without a modifier: "character" is char(1) and "bit" is bit(1); they are
// cast to bpchar (BpcharCastType: any length, compared as char is) and to
// "bit" quoted (the type without a length limit; not varbit, whose
// comparison with a bit column cannot use the column's index).
func CastTypeSQL(oid string) string {
	return `CASE ` + oid + `
           WHEN 'pg_catalog.bpchar'::pg_catalog.regtype THEN '` + BpcharCastType + `'
           WHEN 'pg_catalog.bit'::pg_catalog.regtype THEN 'pg_catalog."bit"'
           ELSE pg_catalog.format_type(` + oid + `, NULL) END`
}

// typeCache caches the answer of one of the queries above per table and
// column. The zero value is ready.
type typeCache struct {
	m sync.Map // table + "\x00" + column -> string
}

func (c *typeCache) get(ctx context.Context, db Querier, query, table, column string) (string, error) {
	key := table + "\x00" + column
	if t, ok := c.m.Load(key); ok {
		return t.(string), nil
	}
	var t string
	if err := db.QueryRowContext(ctx, query, pgident.QuoteQualified(table), column).Scan(&t); err != nil {
		return "", err
	}
	c.m.Store(key, t)
	return t, nil
}

// ColumnTypes caches column types as format_type prints them ("uuid",
// "bigint", "character varying(36)"), so that a text parameter can be cast
// to a column's own type and its index used. It is safe for concurrent use;
// the zero value is ready.
//
// The type keeps its modifier, and a domain is named as such: an explicit
// cast to it truncates or rounds ('abcdef' to varchar(3) is 'abc'). A value
// that need not be one of the column's own is cast to a type of CastTypes.
type ColumnTypes struct {
	c typeCache
}

// Get returns the type of column in table (a possibly schema-qualified
// registered name), reading the catalog on the first call for that column.
func (c *ColumnTypes) Get(ctx context.Context, db Querier, table, column string) (string, error) {
	return c.c.get(ctx, db, columnTypeQuery, table, column)
}

// Reset forgets every cached type, so that the next Get reads the catalog
// again (after a table may have changed).
func (c *ColumnTypes) Reset() {
	c.c.m.Clear()
}

// CastTypes caches the types that a key given as text is cast to, for a
// lookup by a column: the column's base type, after looking through
// domains, without a modifier ("character varying", "numeric", "uuid"), as
// format_type prints it. A cast to it never truncates or rounds the key
// into another row's, as one to varchar(3), numeric(5,2) or a domain over
// them would, and the column's index is still used. It is safe for
// concurrent use; the zero value is ready.
type CastTypes struct {
	c typeCache
}

// Get returns the cast type of column in table (a possibly
// schema-qualified registered name), reading the catalog on the first call
// for that column.
func (c *CastTypes) Get(ctx context.Context, db Querier, table, column string) (string, error) {
	return c.c.get(ctx, db, castTypeQuery, table, column)
}

// Reset forgets every cached type, so that the next Get reads the catalog
// again (after a table may have changed).
func (c *CastTypes) Reset() {
	c.c.m.Clear()
}

// BpcharCastType is the cast type (see CastTypes) of a char(n) column and of
// a domain over char: its values print padded to n characters ("a   " for
// 'a' in a char(4)), while their cast to text drops the padding ("a").
const BpcharCastType = "pg_catalog.bpchar"

// RecordID returns the SQL text of the record id of key, an expression of
// a key column whose cast type (see CastTypes) is castType: the key as
// PostgreSQL's output function prints it, the form change capture decodes
// and records in the changelog and the bucket edges. That is key::text for
// every type but three whose cast to text differs from their output:
// char(n), whose cast drops the padding, inet, whose cast adds the netmask
// ("10.0.0.1/32" for 10.0.0.1), and boolean ("true" for t); their id is
// format('%s', key), which prints the value with its type's output
// function.
func RecordID(key, castType string) string {
	if castType == BpcharCastType || castType == "inet" || castType == "boolean" {
		return "format('%s', " + key + ")"
	}
	return key + "::text"
}
