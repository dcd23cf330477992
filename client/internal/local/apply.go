package local

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/synchrosync/synchro"
)

// ErrMoved is returned when the state a page was asked from moved before
// it could be applied (a concurrent sync applied another page meanwhile):
// the page is dropped and asked again.
var ErrMoved = errors.New("the local sync state moved while the page was fetched")

// applier writes the server's rows in one transaction (capture off),
// preparing each statement once.
type applier struct {
	ctx     context.Context
	tx      *sql.Tx
	schema  *Schema
	stmts   map[string]*sql.Stmt
	pending bool // the outbox has entries: rows must be checked against it
	// Tables counts the records written, by table.
	tables map[string]int
}

func newApplier(ctx context.Context, tx *sql.Tx, schema *Schema) (*applier, error) {
	a := &applier{ctx: ctx, tx: tx, schema: schema, stmts: map[string]*sql.Stmt{}, tables: map[string]int{}}
	err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM _synchro_outbox)`).Scan(&a.pending)
	return a, err
}

func (a *applier) close() {
	for _, st := range a.stmts {
		_ = st.Close()
	}
}

func (a *applier) exec(query string, args ...any) error {
	st, ok := a.stmts[query]
	if !ok {
		var err error
		if st, err = a.tx.PrepareContext(a.ctx, query); err != nil {
			return err
		}
		a.stmts[query] = st
	}
	_, err := st.ExecContext(a.ctx, args...)
	return err
}

// hasPending reports whether record id of t has a pending local change.
func (a *applier) hasPending(t *Table, id string) (bool, error) {
	if !a.pending {
		return false, nil
	}
	var found bool
	err := a.tx.QueryRowContext(a.ctx, `SELECT EXISTS (SELECT 1 FROM _synchro_outbox WHERE table_name = ? AND record_id = ?)`,
		t.TableName, id).Scan(&found)
	return found, err
}

// rowValues decodes a record's data into the local values of t's columns,
// in column order; a column the data lacks is not set (ok false).
func rowValues(t *Table, id string, data json.RawMessage) ([]any, []bool, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(data, &fields); err != nil {
		return nil, nil, fmt.Errorf("data: %w", err)
	}
	if fields == nil {
		return nil, nil, errors.New("data is not a JSON object")
	}
	vals := make([]any, len(t.Columns))
	set := make([]bool, len(t.Columns))
	for i, c := range t.Columns {
		raw, ok := fields[c.Name]
		if !ok {
			if c.Name == t.PK {
				vals[i], set[i] = fromValue(c.LogicalType, id), true
			}
			continue
		}
		v, err := fromJSON(c.LogicalType, raw)
		if err != nil {
			return nil, nil, fmt.Errorf("column %s: %w", c.Name, err)
		}
		if c.Name == t.DeletedAtColumn {
			v = nil // a row the server sends is live
		}
		vals[i], set[i] = v, true
	}
	return vals, set, nil
}

// upsertSQL is the statement that writes the columns set of t into table
// (t's table or its base table), replacing the row with the same key.
func upsertSQL(table string, t *Table, set []bool) string {
	var cols, marks, updates []string
	for i, c := range t.Columns {
		if !set[i] {
			continue
		}
		q := quoteIdent(c.Name)
		cols, marks = append(cols, q), append(marks, "?")
		if c.Name != t.PK {
			updates = append(updates, q+" = excluded."+q)
		}
	}
	stmt := "INSERT INTO " + quoteIdent(table) + " (" + strings.Join(cols, ", ") + ") VALUES (" + strings.Join(marks, ", ") + ")"
	if len(updates) == 0 {
		return stmt + " ON CONFLICT DO NOTHING"
	}
	return stmt + " ON CONFLICT (" + quoteIdent(t.PK) + ") DO UPDATE SET " + strings.Join(updates, ", ")
}

// writeRow writes vals (the columns set) into t, or into its base table
// when base is true.
func (a *applier) writeRow(t *Table, vals []any, set []bool, base bool) error {
	args := make([]any, 0, len(vals))
	for i, v := range vals {
		if set[i] {
			args = append(args, v)
		}
	}
	var query string
	switch {
	case len(args) == len(vals) && base:
		query = t.upsertAllBase
	case len(args) == len(vals):
		query = t.upsertAll
	case base:
		query = upsertSQL(baseTable(t.TableName), t, set)
	default:
		query = upsertSQL(t.TableName, t, set)
	}
	return a.exec(query, args...)
}

// deleteRow deletes record id from t, or from its base table.
func (a *applier) deleteRow(t *Table, id string, base bool) error {
	table := t.TableName
	if base {
		table = baseTable(t.TableName)
	}
	return a.exec("DELETE FROM "+quoteIdent(table)+" WHERE "+quoteIdent(t.PK)+" = ?", id)
}

// upsert applies a row the server sent: into the table, or into the base
// table when the record has a pending local change.
func (a *applier) upsert(rec *synchro.Record) error {
	t := a.schema.Table(rec.TableName)
	if t == nil {
		return nil // not a table of the contract; Sync reports it
	}
	if rec.DeletedAt != nil {
		return a.remove(t, rec.ID)
	}
	vals, set, err := rowValues(t, rec.ID, rec.Data)
	if err != nil {
		return fmt.Errorf("%s %s: %w", rec.TableName, rec.ID, err)
	}
	pending, err := a.hasPending(t, rec.ID)
	if err != nil {
		return err
	}
	if err := a.writeRow(t, vals, set, pending); err != nil {
		return fmt.Errorf("writing %s %s: %w", rec.TableName, rec.ID, err)
	}
	a.tables[t.TableName]++
	return nil
}

// remove applies a delete the server sent.
func (a *applier) remove(t *Table, id string) error {
	pending, err := a.hasPending(t, id)
	if err != nil {
		return err
	}
	if err := a.deleteRow(t, id, pending); err != nil {
		return fmt.Errorf("deleting %s %s: %w", t.TableName, id, err)
	}
	a.tables[t.TableName]++
	return nil
}

// Applied tells what a page changed locally.
type Applied struct {
	// Tables counts the records written or deleted, by table.
	Tables map[string]int
	// Unknown counts the records of tables the contract lacks, skipped.
	Unknown int
}

// BeginSnapshot starts a snapshot: the synced tables lose every row
// without a pending local change, the base tables are emptied (the
// snapshot tells the server's rows again), and the cursor of the first
// page is stored.
func (s *Store) BeginSnapshot(ctx context.Context, schema *Schema) error {
	return s.Apply(ctx, func(tx *sql.Tx) error {
		for _, t := range schema.Tables() {
			pk := quoteIdent(t.PK)
			_, err := tx.ExecContext(ctx, `DELETE FROM `+quoteIdent(t.TableName)+` WHERE NOT EXISTS (SELECT 1 FROM _synchro_outbox AS o
				WHERE o.table_name = ? AND o.record_id = CAST(`+quoteIdent(t.TableName)+`.`+pk+` AS TEXT))`, t.TableName)
			if err != nil {
				return fmt.Errorf("clearing %s for a snapshot: %w", t.TableName, err)
			}
			if _, err := tx.ExecContext(ctx, `DELETE FROM `+quoteIdent(baseTable(t.TableName))); err != nil {
				return fmt.Errorf("clearing %s for a snapshot: %w", t.TableName, err)
			}
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM _synchro_checkpoints`); err != nil {
			return err
		}
		if err := deleteMeta(ctx, tx, metaSnapshotNeeded); err != nil {
			return err
		}
		return setMeta(ctx, tx, metaSnapshotCursor, "null")
	})
}

// ApplySnapshotPage applies a snapshot page fetched with cursor: its
// records, and the cursor of the next page or, on the last page, the
// checkpoint, in one transaction. ErrMoved: the stored cursor is no
// longer cursor.
func (s *Store) ApplySnapshotPage(ctx context.Context, schema *Schema, cursor *synchro.SnapshotCursor, page *synchro.SnapshotResponse) (*Applied, error) {
	if page.HasMore && page.Cursor == nil {
		return nil, errors.New("the server's snapshot page has more pages but no cursor")
	}
	want, err := json.Marshal(cursor)
	if err != nil {
		return nil, err
	}
	out := &Applied{}
	err = s.Apply(ctx, func(tx *sql.Tx) error {
		cur, err := getMeta(ctx, tx, metaSnapshotCursor)
		if err != nil {
			return err
		}
		if cur != string(want) {
			return ErrMoved
		}
		a, err := newApplier(ctx, tx, schema)
		if err != nil {
			return err
		}
		defer a.close()
		for i := range page.Records {
			if schema.Table(page.Records[i].TableName) == nil {
				out.Unknown++
				continue
			}
			if err := a.upsert(&page.Records[i]); err != nil {
				return err
			}
		}
		out.Tables = a.tables
		if page.HasMore {
			next, err := json.Marshal(page.Cursor)
			if err != nil {
				return err
			}
			return setMeta(ctx, tx, metaSnapshotCursor, string(next))
		}
		if err := deleteMeta(ctx, tx, metaSnapshotCursor); err != nil {
			return err
		}
		if err := setMeta(ctx, tx, metaSnapshotDone, "1"); err != nil {
			return err
		}
		return storeCheckpoint(ctx, tx, page.Checkpoint, time.Now())
	})
	return out, err
}

// ApplyPull applies a pull page asked from checkpoint from: its changes
// and deletes and its checkpoint, in one transaction. ErrMoved: the stored
// checkpoint is no longer from, or a snapshot started.
func (s *Store) ApplyPull(ctx context.Context, schema *Schema, from int64, page *synchro.PullResponse) (*Applied, error) {
	out := &Applied{}
	err := s.Apply(ctx, func(tx *sql.Tx) error {
		cur, err := getMeta(ctx, tx, metaCheckpoint)
		if err != nil {
			return err
		}
		running, err := getMeta(ctx, tx, metaSnapshotCursor)
		if err != nil {
			return err
		}
		if cur == "" {
			cur = "0"
		}
		if cur != strconv.FormatInt(from, 10) || running != "" {
			return ErrMoved
		}
		a, err := newApplier(ctx, tx, schema)
		if err != nil {
			return err
		}
		defer a.close()
		for i := range page.Changes {
			if schema.Table(page.Changes[i].TableName) == nil {
				out.Unknown++
				continue
			}
			if err := a.upsert(&page.Changes[i]); err != nil {
				return err
			}
		}
		for _, d := range page.Deletes {
			t := schema.Table(d.TableName)
			if t == nil {
				out.Unknown++
				continue
			}
			if err := a.remove(t, d.ID); err != nil {
				return err
			}
		}
		out.Tables = a.tables
		if page.Checkpoint == from {
			return nil
		}
		return storeCheckpoint(ctx, tx, page.Checkpoint, time.Now())
	})
	return out, err
}

// Checkpoint history: the checkpoints reached, one every
// checkpointLogEvery at most, kept back to the newest that is older than
// checkpointLogKeep. A schema change made in place rewinds to one of them
// (see Store.Migrate).
const (
	checkpointLogEvery = 5 * time.Second
	checkpointLogKeep  = 5 * time.Minute
)

// storeCheckpoint stores the checkpoint and logs it.
func storeCheckpoint(ctx context.Context, tx *sql.Tx, checkpoint int64, now time.Time) error {
	if err := setMeta(ctx, tx, metaCheckpoint, strconv.FormatInt(checkpoint, 10)); err != nil {
		return err
	}
	ms := now.UnixMilli()
	var last sql.NullInt64
	if err := tx.QueryRowContext(ctx, `SELECT max(at) FROM _synchro_checkpoints`).Scan(&last); err != nil {
		return err
	}
	if last.Valid && ms-last.Int64 < checkpointLogEvery.Milliseconds() && ms >= last.Int64 {
		return nil
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO _synchro_checkpoints (at, checkpoint) VALUES (?, ?)`, ms, checkpoint); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, `DELETE FROM _synchro_checkpoints
		WHERE at < (SELECT max(at) FROM _synchro_checkpoints WHERE at <= ?)`, ms-checkpointLogKeep.Milliseconds())
	return err
}

// rewindTarget returns the latest logged checkpoint reached at least age
// before now; false when there is none.
func rewindTarget(ctx context.Context, q querier, now time.Time, age time.Duration) (int64, bool, error) {
	var cp int64
	err := q.QueryRowContext(ctx, `SELECT checkpoint FROM _synchro_checkpoints WHERE at <= ? ORDER BY at DESC LIMIT 1`,
		now.Add(-age).UnixMilli()).Scan(&cp)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, nil
	}
	return cp, err == nil, err
}

// readRow reads record id of table (t's table or its base table) as
// column name to local value; nil when there is none.
func readRow(ctx context.Context, q querier, table string, t *Table, id string) (map[string]any, error) {
	rows, err := q.QueryContext(ctx, "SELECT "+strings.Join(columnNames(t), ", ")+" FROM "+quoteIdent(table)+
		" WHERE "+quoteIdent(t.PK)+" = ?", id)
	if err != nil {
		return nil, fmt.Errorf("reading %s %s: %w", t.TableName, id, err)
	}
	defer func() { _ = rows.Close() }()
	if !rows.Next() {
		return nil, rows.Err()
	}
	vals := make([]any, len(t.Columns))
	ptrs := make([]any, len(vals))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	if err := rows.Scan(ptrs...); err != nil {
		return nil, fmt.Errorf("reading %s %s: %w", t.TableName, id, err)
	}
	row := make(map[string]any, len(vals))
	for i, c := range t.Columns {
		row[c.Name] = vals[i]
	}
	return row, rows.Err()
}

// rowJSON is a local row as a push sends it: every column of the
// contract.
func rowJSON(t *Table, row map[string]any) json.RawMessage {
	var buf bytes.Buffer
	buf.WriteByte('{')
	for i, c := range t.Columns {
		if i > 0 {
			buf.WriteByte(',')
		}
		buf.Write(jsonString(c.Name))
		buf.WriteByte(':')
		v := toJSON(c.LogicalType, row[c.Name])
		if len(v) > 0 && v[0] == '{' && strings.HasSuffix(c.DBType, "[]") {
			// An array column holding PostgreSQL's array text "{}" (its
			// default as the contract gives it): pushed as that text,
			// which the server reads as the array, not as a JSON object.
			v = jsonString(textOf(row[c.Name]))
		}
		buf.Write(v)
	}
	buf.WriteByte('}')
	return buf.Bytes()
}

// textOf is a local TEXT or BLOB value as a string.
func textOf(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case []byte:
		return string(x)
	}
	return fmt.Sprint(v)
}

// writeValues writes row (column name to local value) into table (t's or
// its base table), replacing the row with the same key.
func writeValues(ctx context.Context, tx *sql.Tx, table string, t *Table, row map[string]any) error {
	set := make([]bool, len(t.Columns))
	var args []any
	for i, c := range t.Columns {
		if v, ok := row[c.Name]; ok {
			set[i] = true
			args = append(args, v)
		}
	}
	if !slices.Contains(set, true) {
		return nil
	}
	_, err := tx.ExecContext(ctx, upsertSQL(table, t, set), args...)
	return err
}
