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

// ColumnTypes caches column types as format_type prints them ("uuid",
// "bigint", "character varying(36)"), so that a text parameter can be cast
// to a column's own type and its index used. It is safe for concurrent use;
// the zero value is ready.
type ColumnTypes struct {
	m sync.Map // table + "\x00" + column -> string
}

// Get returns the type of column in table (a possibly schema-qualified
// registered name), reading the catalog on the first call for that column.
func (c *ColumnTypes) Get(ctx context.Context, db Querier, table, column string) (string, error) {
	key := table + "\x00" + column
	if t, ok := c.m.Load(key); ok {
		return t.(string), nil
	}
	var t string
	err := db.QueryRowContext(ctx, `
SELECT format_type(a.atttypid, a.atttypmod)
  FROM pg_attribute a
 WHERE a.attrelid = to_regclass($1) AND a.attname = $2 AND NOT a.attisdropped`,
		pgident.QuoteQualified(table), column).Scan(&t)
	if err != nil {
		return "", err
	}
	c.m.Store(key, t)
	return t, nil
}

// Reset forgets every cached type, so that the next Get reads the catalog
// again (after a table may have changed).
func (c *ColumnTypes) Reset() {
	c.m.Clear()
}
