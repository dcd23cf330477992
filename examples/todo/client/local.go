package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"strings"

	_ "modernc.org/sqlite" // the "sqlite" database/sql driver, in pure Go

	"github.com/synchrosync/synchro"
)

// This file holds the SQLite helpers of the devices: the SDK-shaped
// devices' own file (sdkdevice.go builds its tables, triggers and queue),
// and reading the rows of a synced table, which both kinds of device do.

// openLocal opens (creating it) the SQLite file at path.
func openLocal(path string) (*sql.DB, error) {
	q := url.Values{"_pragma": {"busy_timeout(5000)", "journal_mode(WAL)", "synchronous(NORMAL)"}}
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", path, err)
	}
	// One connection: the device is one writer, and it keeps SQLite's
	// locking out of the way.
	db.SetMaxOpenConns(1)
	if err := db.Ping(); err != nil {
		return nil, errors.Join(fmt.Errorf("opening %s: %w", path, err), db.Close())
	}
	return db, nil
}

// quoteIdent quotes an SQLite identifier.
func quoteIdent(name string) string {
	return `"` + strings.ReplaceAll(name, `"`, `""`) + `"`
}

// localRow is one row of a synced table, column name to SQLite value.
type localRow map[string]any

// readRow returns the row of t with key id, nil when there is none.
func readRow(ctx context.Context, q interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}, t *synchro.SchemaTable, id string) (localRow, error) {
	rows, err := selectRows(ctx, q, t, "WHERE "+quoteIdent(t.PrimaryKey[0])+" = ?", id)
	if err != nil || len(rows) == 0 {
		return nil, err
	}
	return rows[0], nil
}

// selectRows reads the rows of t matching where (may be empty), in key
// order.
func selectRows(ctx context.Context, q interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}, t *synchro.SchemaTable, where string, args ...any) ([]localRow, error) {
	names := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		names[i] = quoteIdent(c.Name)
	}
	stmt := "SELECT " + strings.Join(names, ", ") + " FROM " + quoteIdent(t.TableName) + " " + where +
		" ORDER BY " + quoteIdent(t.PrimaryKey[0])
	rows, err := q.QueryContext(ctx, stmt, args...)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", t.TableName, err)
	}
	defer func() { _ = rows.Close() }()
	var out []localRow
	for rows.Next() {
		vals := make([]any, len(t.Columns))
		ptrs := make([]any, len(t.Columns))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, fmt.Errorf("reading %s: %w", t.TableName, err)
		}
		row := localRow{}
		for i, c := range t.Columns {
			if b, ok := vals[i].([]byte); ok {
				vals[i] = string(b)
			}
			row[c.Name] = vals[i]
		}
		out = append(out, row)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading %s: %w", t.TableName, err)
	}
	return out, nil
}

// inTx runs fn in a transaction of db, committed when fn succeeds.
func inTx(ctx context.Context, db *sql.DB, fn func(*sql.Tx) error) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		return errors.Join(err, tx.Rollback())
	}
	return tx.Commit()
}
