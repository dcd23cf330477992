// Package local is the client's local database: one SQLite file holding
// the synced tables, built from the server's schema contract, and the
// client's bookkeeping beside them. Every statement the client runs on the
// file is in this package.
//
// # Bookkeeping
//
//	_synchro_meta        key/value state: the client id, the contract, the
//	                     checkpoint, a snapshot under way and its cursor
//	_synchro_control     one row: applying (1 inside the client's own
//	                     transactions, so that the triggers capture nothing)
//	                     and changes (counts captured local changes)
//	_synchro_outbox      one entry per record with a local change not yet
//	                     settled by the server
//	_synchro_rejections  local changes the server refused or lost a
//	                     conflict with, kept for the application
//	_synchro_checkpoints recent checkpoints with the time they were reached
//	_synchro_base_<t>    for each synced table t, the server's row of each
//	                     record with a pending change (none when the server
//	                     has no row): what the row goes back to when the
//	                     server refuses the change
//
// # Capture
//
// Triggers on each synced table queue the application's writes, unless
// _synchro_control.applying is 1 (set and reset inside the client's own
// transactions, so no other connection ever sees it set):
//
//   - an INSERT queues a create;
//   - an UPDATE that changes a value queues an update, whose base version
//     is the row's updated-at before the first pending change;
//   - an UPDATE that sets the deleted-at column deletes the row, as the
//     SDKs' soft deletes do;
//   - an UPDATE of the key is a delete of the old key and a create of the
//     new one;
//   - a DELETE queues a delete.
//
// The changes of one record coalesce in one entry: a create followed by
// updates stays a create; a create deleted before it was ever sent is
// forgotten; a delete followed by an insert of the same key is an update
// when the server has the row and the delete was never sent, and a create
// otherwise (a delete sent may have been applied: a create brings the row
// back, an update of it would be refused). Each change bumps
// the entry's version, so that a push answered after a newer change
// settles only what it sent. The first change of a record that the server
// has also copies the row into the base table.
//
// A push sends each entry's whole current row. Tables the server takes no
// pushes to (push_policy disabled) refuse local writes instead, with an
// SQLite error.
//
// # Applying what the server sends
//
// Pull pages, snapshot pages and a conflict's server version are written
// with capture off, in one transaction per page with foreign keys
// deferred. A record with a pending local change is not written to the
// table: it replaces the record's base row instead, and the local change
// keeps its row until the server settles it.
package local

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"modernc.org/sqlite"

	"github.com/synchrosync/synchro"
)

// FormatVersion is the version of the bookkeeping layout this package
// writes, recorded under the meta key "format".
const FormatVersion = 1

// bookkeepingSQL creates the bookkeeping tables when they are missing.
var bookkeepingSQL = []string{
	`CREATE TABLE IF NOT EXISTS _synchro_meta (
	key   TEXT PRIMARY KEY NOT NULL,
	value TEXT NOT NULL
) WITHOUT ROWID`,
	`CREATE TABLE IF NOT EXISTS _synchro_control (
	id       INTEGER PRIMARY KEY CHECK (id = 1),
	applying INTEGER NOT NULL DEFAULT 0,
	changes  INTEGER NOT NULL DEFAULT 0
)`,
	`INSERT OR IGNORE INTO _synchro_control (id) VALUES (1)`,
	`CREATE TABLE IF NOT EXISTS _synchro_outbox (
	seq               INTEGER PRIMARY KEY AUTOINCREMENT, -- push order: the record's first change
	table_name        TEXT NOT NULL,
	record_id         TEXT NOT NULL,
	operation         TEXT NOT NULL,        -- create, update or delete
	base_updated_at   TEXT,                 -- the server version the change was made on
	client_updated_at TEXT NOT NULL,        -- the time of the latest change
	version           INTEGER NOT NULL DEFAULT 1, -- bumped by every change
	sent_version      INTEGER,              -- version sent by the latest push; null before
	attempts          INTEGER NOT NULL DEFAULT 0, -- pushes answered retryable
	last_error        TEXT,                 -- the latest retryable answer
	UNIQUE (table_name, record_id)
)`,
	`CREATE TABLE IF NOT EXISTS _synchro_rejections (
	id                INTEGER PRIMARY KEY AUTOINCREMENT,
	table_name        TEXT NOT NULL,
	record_id         TEXT NOT NULL,
	operation         TEXT NOT NULL,
	status            TEXT NOT NULL,        -- conflict or rejected_terminal
	reason_code       TEXT NOT NULL,
	message           TEXT NOT NULL,
	data              TEXT,                 -- the row as sent (JSON); null for a delete
	server_data       TEXT,                 -- the server's row (JSON), when it sent one
	server_deleted    INTEGER NOT NULL DEFAULT 0,
	client_updated_at TEXT NOT NULL,
	rejected_at       TEXT NOT NULL
)`,
	`CREATE TABLE IF NOT EXISTS _synchro_checkpoints (
	at         INTEGER NOT NULL,            -- Unix milliseconds
	checkpoint INTEGER NOT NULL
)`,
}

// Store is the local database.
type Store struct {
	db *sql.DB
}

// Open opens (creating it) the SQLite file at path and its bookkeeping
// tables. The pool runs in WAL mode, with foreign keys enforced, a busy
// timeout of ten seconds and every transaction begun IMMEDIATE, so that
// concurrent writers wait for one another instead of failing.
func Open(ctx context.Context, path string) (*Store, error) {
	if path == "" {
		return nil, errors.New("no database path")
	}
	q := url.Values{
		"_pragma":      {"busy_timeout(10000)", "journal_mode(WAL)", "synchronous(NORMAL)", "foreign_keys(1)"},
		"_txlock":      {"immediate"},
		"_time_format": {"sqlite"},
	}
	escaped := strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(path)
	db, err := sql.Open("sqlite", "file:"+escaped+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", path, err)
	}
	db.SetMaxOpenConns(4)
	s := &Store{db: db}
	if err := s.init(ctx); err != nil {
		return nil, errors.Join(fmt.Errorf("opening %s: %w", path, err), db.Close())
	}
	return s, nil
}

func (s *Store) init(ctx context.Context) error {
	return s.Write(ctx, func(tx *sql.Tx) error {
		for _, stmt := range bookkeepingSQL {
			if _, err := tx.ExecContext(ctx, stmt); err != nil {
				return err
			}
		}
		format, err := getMeta(ctx, tx, "format")
		if err != nil {
			return err
		}
		switch format {
		case "":
			return setMeta(ctx, tx, "format", strconv.Itoa(FormatVersion))
		case strconv.Itoa(FormatVersion):
			return renewTriggers(ctx, tx)
		}
		return fmt.Errorf("the file's bookkeeping has format %s; this client reads %d", format, FormatVersion)
	})
}

// renewTriggers makes the triggers of the synced tables again, as this
// version of the client writes them: the triggers are stored in the file,
// and one made by an earlier version would keep capturing as it did. A
// table the application dropped (or its base table) is left alone: Open
// still succeeds, and writing to it fails as it would have.
func renewTriggers(ctx context.Context, tx *sql.Tx) error {
	st, err := stateIn(ctx, tx)
	if err != nil || st.Schema == nil {
		return err
	}
	for _, t := range st.Schema.Tables() {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN (?, ?)`,
			t.TableName, baseTable(t.TableName)).Scan(&n); err != nil {
			return err
		}
		if n != 2 {
			continue
		}
		for _, stmt := range append(dropTriggersSQL(t.TableName), triggersSQL(t)...) {
			if _, err := tx.ExecContext(ctx, stmt); err != nil {
				return fmt.Errorf("renewing the triggers of %s: %w", t.TableName, err)
			}
		}
	}
	return nil
}

// DB returns the pool.
func (s *Store) DB() *sql.DB { return s.db }

// Close closes the pool.
func (s *Store) Close() error { return s.db.Close() }

// Write runs fn in a write transaction, committed when fn succeeds. The
// triggers capture what fn writes to the synced tables.
func (s *Store) Write(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		return errors.Join(err, tx.Rollback())
	}
	return tx.Commit()
}

// Apply runs fn in a write transaction with capture off and foreign keys
// deferred to the commit: what the client writes for the server.
func (s *Store) Apply(ctx context.Context, fn func(*sql.Tx) error) error {
	return s.Write(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `PRAGMA defer_foreign_keys = ON`); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE _synchro_control SET applying = 1 WHERE id = 1`); err != nil {
			return err
		}
		if err := fn(tx); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `UPDATE _synchro_control SET applying = 0 WHERE id = 1`)
		return err
	})
}

// querier is what both *sql.DB and *sql.Tx offer.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// Meta keys.
const (
	metaClientID       = "client_id"
	metaContract       = "contract"
	metaCheckpoint     = "checkpoint"
	metaSnapshotDone   = "snapshot_done"   // "1" once a snapshot completed
	metaSnapshotCursor = "snapshot_cursor" // JSON cursor of the next page, "null" for the first; absent when no snapshot runs
	metaSnapshotNeeded = "snapshot_needed" // a reason: a snapshot must start
)

func getMeta(ctx context.Context, q querier, key string) (string, error) {
	var v string
	err := q.QueryRowContext(ctx, `SELECT value FROM _synchro_meta WHERE key = ?`, key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("reading %s: %w", key, err)
	}
	return v, nil
}

func setMeta(ctx context.Context, q querier, key, value string) error {
	_, err := q.ExecContext(ctx, `INSERT INTO _synchro_meta (key, value) VALUES (?, ?)
		ON CONFLICT (key) DO UPDATE SET value = excluded.value`, key, value)
	if err != nil {
		return fmt.Errorf("storing %s: %w", key, err)
	}
	return nil
}

func deleteMeta(ctx context.Context, q querier, key string) error {
	if _, err := q.ExecContext(ctx, `DELETE FROM _synchro_meta WHERE key = ?`, key); err != nil {
		return fmt.Errorf("clearing %s: %w", key, err)
	}
	return nil
}

// State is the sync state the file holds.
type State struct {
	ClientID   string
	Schema     *Schema // nil before the tables exist
	Checkpoint int64
	// SnapshotDone reports whether a snapshot ever completed.
	SnapshotDone bool
	// SnapshotRunning reports whether a snapshot is under way; Cursor is
	// the cursor of its next page (nil: the first).
	SnapshotRunning bool
	Cursor          *synchro.SnapshotCursor
	// SnapshotNeeded is why a snapshot must start; empty when none must.
	SnapshotNeeded string
}

// State reads the sync state.
func (s *Store) State(ctx context.Context) (*State, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT key, value FROM _synchro_meta`)
	if err != nil {
		return nil, fmt.Errorf("reading the sync state: %w", err)
	}
	meta := map[string]string{}
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			_ = rows.Close()
			return nil, fmt.Errorf("reading the sync state: %w", err)
		}
		meta[k] = v
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return nil, fmt.Errorf("reading the sync state: %w", err)
	}
	st := &State{ClientID: meta[metaClientID], SnapshotDone: meta[metaSnapshotDone] == "1", SnapshotNeeded: meta[metaSnapshotNeeded]}
	if c := meta[metaContract]; c != "" {
		var contract synchro.SchemaResponse
		if err := json.Unmarshal([]byte(c), &contract); err != nil {
			return nil, fmt.Errorf("reading the stored schema contract: %w", err)
		}
		if st.Schema, err = NewSchema(contract); err != nil {
			return nil, err
		}
	}
	if cp := meta[metaCheckpoint]; cp != "" {
		if st.Checkpoint, err = strconv.ParseInt(cp, 10, 64); err != nil {
			return nil, fmt.Errorf("reading the checkpoint: %w", err)
		}
	}
	if cur, ok := meta[metaSnapshotCursor]; ok {
		st.SnapshotRunning = true
		if err := json.Unmarshal([]byte(cur), &st.Cursor); err != nil {
			return nil, fmt.Errorf("reading the snapshot cursor: %w", err)
		}
	}
	return st, nil
}

// SetClientID stores the client id.
func (s *Store) SetClientID(ctx context.Context, id string) error {
	return setMeta(ctx, s.db, metaClientID, id)
}

// Changes returns the count of captured local changes (see
// _synchro_control): when it moves, the application wrote.
func (s *Store) Changes(ctx context.Context) (int64, error) {
	var n int64
	err := s.db.QueryRowContext(ctx, `SELECT changes FROM _synchro_control WHERE id = 1`).Scan(&n)
	return n, err
}

// IsBusy reports whether err is SQLite's "database is locked" or "busy".
func IsBusy(err error) bool {
	var se *sqlite.Error
	if errors.As(err, &se) {
		code := se.Code() & 0xff
		return code == 5 || code == 6 // SQLITE_BUSY, SQLITE_LOCKED
	}
	return false
}
