package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	_ "modernc.org/sqlite" // the "sqlite" database/sql driver, in pure Go

	"github.com/synchrosync/synchro"
)

// This file is the device's local store: one SQLite file holding a copy of
// the synced tables, created from the server's schema contract, an outbox of
// the writes not yet pushed, and the sync checkpoint.

// Tables of the client's own bookkeeping, beside the synced tables.
const localBookkeeping = `
-- The writes made offline and not yet pushed, one entry per record: a
-- later write to the same record is merged into its entry.
CREATE TABLE IF NOT EXISTS _outbox (
	table_name        TEXT NOT NULL,
	record_id         TEXT NOT NULL,
	seq               INTEGER NOT NULL,  -- push order: the first write's
	operation         TEXT NOT NULL,     -- create, update or delete
	data              TEXT,              -- JSON object of the columns written
	client_updated_at TEXT NOT NULL,     -- RFC 3339, the last write's time
	base_updated_at   TEXT,              -- the server version the write started from
	PRIMARY KEY (table_name, record_id)
);
-- Key/value state: the pull checkpoint.
CREATE TABLE IF NOT EXISTS _sync_state (
	key   TEXT PRIMARY KEY,
	value TEXT NOT NULL
);
`

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

// sqliteType maps a logical type of the schema contract to the SQLite column
// type that stores it.
func sqliteType(logical string) (string, error) {
	switch logical {
	case "int", "int64", "boolean":
		return "INTEGER", nil
	case "float":
		return "REAL", nil
	case "string", "json", "date", "time", "datetime":
		return "TEXT", nil
	case "bytes":
		// Kept as the text the server sends ("\\x...").
		return "TEXT", nil
	}
	return "", fmt.Errorf("logical type %q is unknown to this client", logical)
}

// createTableSQL is the CREATE TABLE statement of a table of the contract:
// its columns with their SQLite types, NOT NULL where the server has it,
// the portable defaults and the primary key.
func createTableSQL(t *synchro.SchemaTable) (string, error) {
	if len(t.PrimaryKey) != 1 {
		return "", fmt.Errorf("table %s: want a single-column primary key, got %v", t.TableName, t.PrimaryKey)
	}
	defs := make([]string, 0, len(t.Columns))
	for _, c := range t.Columns {
		typ, err := sqliteType(c.LogicalType)
		if err != nil {
			return "", fmt.Errorf("table %s, column %s: %w", t.TableName, c.Name, err)
		}
		def := quoteIdent(c.Name) + " " + typ
		if c.IsPrimaryKey {
			def += " PRIMARY KEY"
		}
		if !c.Nullable {
			def += " NOT NULL"
		}
		if c.SQLiteDefaultSQL != "" {
			def += " DEFAULT (" + c.SQLiteDefaultSQL + ")"
		}
		defs = append(defs, def)
	}
	return "CREATE TABLE IF NOT EXISTS " + quoteIdent(t.TableName) + " (\n\t" + strings.Join(defs, ",\n\t") + "\n)", nil
}

// quoteIdent quotes an SQLite identifier.
func quoteIdent(name string) string {
	return `"` + strings.ReplaceAll(name, `"`, `""`) + `"`
}

// decodeObject decodes a JSON object keeping numbers exact.
func decodeObject(raw []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, err
	}
	if m == nil {
		return nil, errors.New("not a JSON object")
	}
	return m, nil
}

// toSQLite converts a JSON value (decoded with UseNumber) of a column of
// logical type to the value stored in SQLite. Timestamps are normalised to
// RFC 3339 in UTC, so that the same instant is always the same text.
func toSQLite(logical string, v any) (any, error) {
	if v == nil {
		return nil, nil
	}
	switch logical {
	case "boolean":
		b, ok := v.(bool)
		if !ok {
			return nil, fmt.Errorf("want a boolean, got %T", v)
		}
		if b {
			return int64(1), nil
		}
		return int64(0), nil
	case "int", "int64":
		switch n := v.(type) {
		case json.Number:
			return n.Int64()
		case string:
			return strconv.ParseInt(n, 10, 64)
		}
		return nil, fmt.Errorf("want an integer, got %T", v)
	case "float":
		switch n := v.(type) {
		case json.Number:
			return n.Float64()
		case string:
			return strconv.ParseFloat(n, 64)
		}
		return nil, fmt.Errorf("want a number, got %T", v)
	case "json":
		b, err := json.Marshal(v)
		return string(b), err
	case "datetime":
		if s, ok := v.(string); ok {
			return normTime(s), nil
		}
	}
	switch x := v.(type) {
	case string:
		return x, nil
	case json.Number:
		return x.String(), nil
	default:
		b, err := json.Marshal(x)
		return string(b), err
	}
}

// normTime returns s, an RFC 3339 timestamp, in UTC with as many fraction
// digits as needed; s itself when it does not parse.
func normTime(s string) string {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return s
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// localRow is one row of a synced table, column name to SQLite value.
type localRow map[string]any

// upsertRecord writes a record the server sent (data: a JSON object of the
// table's columns) into table t, replacing the row with the same key. It
// returns the row as it was before (nil when there was none) and after.
func upsertRecord(ctx context.Context, tx *sql.Tx, t *synchro.SchemaTable, id string, data []byte) (before, after localRow, err error) {
	fields, err := decodeObject(data)
	if err != nil {
		return nil, nil, fmt.Errorf("%s %s: data: %w", t.TableName, id, err)
	}
	pk := t.PrimaryKey[0]
	fields[pk] = id
	after = localRow{}
	for _, c := range t.Columns {
		v, present := fields[c.Name]
		if !present {
			continue
		}
		if after[c.Name], err = toSQLite(c.LogicalType, v); err != nil {
			return nil, nil, fmt.Errorf("%s %s: column %s: %w", t.TableName, id, c.Name, err)
		}
	}
	if before, err = readRow(ctx, tx, t, id); err != nil {
		return nil, nil, err
	}
	if err := writeRow(ctx, tx, t, after); err != nil {
		return nil, nil, err
	}
	return before, after, nil
}

// writeRow inserts row into t, or updates the columns row has when a row with
// its key exists.
func writeRow(ctx context.Context, tx *sql.Tx, t *synchro.SchemaTable, row localRow) error {
	pk := t.PrimaryKey[0]
	cols := make([]string, 0, len(row))
	for name := range row {
		cols = append(cols, name)
	}
	slices.Sort(cols)
	quoted := make([]string, len(cols))
	marks := make([]string, len(cols))
	args := make([]any, len(cols))
	var sets []string
	for i, name := range cols {
		quoted[i], marks[i], args[i] = quoteIdent(name), "?", row[name]
		if name != pk {
			sets = append(sets, quoted[i]+" = excluded."+quoted[i])
		}
	}
	stmt := "INSERT INTO " + quoteIdent(t.TableName) + " (" + strings.Join(quoted, ", ") + ") VALUES (" + strings.Join(marks, ", ") + ")"
	if len(sets) > 0 {
		stmt += " ON CONFLICT (" + quoteIdent(pk) + ") DO UPDATE SET " + strings.Join(sets, ", ")
	} else {
		stmt += " ON CONFLICT DO NOTHING"
	}
	if _, err := tx.ExecContext(ctx, stmt, args...); err != nil {
		return fmt.Errorf("writing %s %v: %w", t.TableName, row[pk], err)
	}
	return nil
}

// updateRow sets the columns of cols in the row of t with key id.
func updateRow(ctx context.Context, tx *sql.Tx, t *synchro.SchemaTable, id string, cols localRow) error {
	names := slices.Sorted(maps.Keys(cols))
	sets := make([]string, len(names))
	args := make([]any, 0, len(names)+1)
	for i, name := range names {
		sets[i] = quoteIdent(name) + " = ?"
		args = append(args, cols[name])
	}
	if len(sets) == 0 {
		return nil
	}
	stmt := "UPDATE " + quoteIdent(t.TableName) + " SET " + strings.Join(sets, ", ") + " WHERE " + quoteIdent(t.PrimaryKey[0]) + " = ?"
	if _, err := tx.ExecContext(ctx, stmt, append(args, id)...); err != nil {
		return fmt.Errorf("updating %s %s: %w", t.TableName, id, err)
	}
	return nil
}

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

// deleteRow removes the row of t with key id, if any.
func deleteRow(ctx context.Context, tx *sql.Tx, t *synchro.SchemaTable, id string) (existed bool, err error) {
	res, err := tx.ExecContext(ctx, "DELETE FROM "+quoteIdent(t.TableName)+" WHERE "+quoteIdent(t.PrimaryKey[0])+" = ?", id)
	if err != nil {
		return false, fmt.Errorf("deleting %s %s: %w", t.TableName, id, err)
	}
	n, err := res.RowsAffected()
	return n > 0, err
}

// setState stores a key of _sync_state.
func setState(ctx context.Context, tx *sql.Tx, key, value string) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO _sync_state (key, value) VALUES (?, ?)
		ON CONFLICT (key) DO UPDATE SET value = excluded.value`, key, value)
	if err != nil {
		return fmt.Errorf("storing %s: %w", key, err)
	}
	return nil
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
