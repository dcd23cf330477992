package local

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/synchrosync/synchro"
)

// Entry is an outbox entry on its way to the server.
type Entry struct {
	Table, ID, Operation string
	// Base is the server version the change was made on ("" for none),
	// as stored; ClientUpdatedAt the time of the latest change.
	Base, ClientUpdatedAt string
	// Version is the entry's version when it was read for the push.
	Version int64
	// SentBefore reports whether an earlier push sent the entry (its
	// answer never came back, or was retryable).
	SentBefore bool
	// Row is the whole local row (nil for a delete), Data the same as the
	// push sends it.
	Row  map[string]any
	Data json.RawMessage
}

// Record is the entry as a push record.
func (e *Entry) Record() synchro.PushRecord {
	r := synchro.PushRecord{ID: e.ID, TableName: e.Table, Operation: e.Operation, Data: e.Data}
	if t, ok := ParseTime(e.ClientUpdatedAt); ok {
		r.ClientUpdatedAt = t.UTC()
	}
	if t, ok := ParseTime(e.Base); ok {
		t = t.UTC()
		r.BaseUpdatedAt = &t
	}
	return r
}

// NextBatch reads the oldest n outbox entries (in the order of their
// records' first change) with their rows, and marks them sent. The
// pending create of an entry's parent row (the contract's parent_table,
// by parent_fk_col), and of its parent in turn, goes in the same batch
// before it, whatever the order they were written in: the server answers
// a child without its parent parent_not_found, and a batch of such
// children alone would be answered so again at every push, until the
// server gives up on them (parent_never_arrived). Entries of tables the
// contract lacks leave the outbox as rejections (see
// ReasonSchemaChanged); an entry whose row is gone (which the triggers
// never leave) is dropped with a warning.
func (s *Store) NextBatch(ctx context.Context, schema *Schema, n int, logger *slog.Logger) ([]*Entry, []Rejection, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	var (
		out      []*Entry
		rejected []Rejection
	)
	err := s.Write(ctx, func(tx *sql.Tx) error {
		out, rejected = nil, nil
		oldest, err := readEntries(ctx, tx, `ORDER BY seq LIMIT ?`, n)
		if err != nil {
			return err
		}
		type key struct{ table, id string }
		taken := map[key]bool{}
		// take adds e to the batch, after its pending parents.
		var take func(e *Entry) error
		take = func(e *Entry) error {
			if taken[key{e.Table, e.ID}] {
				return nil
			}
			taken[key{e.Table, e.ID}] = true
			t := schema.Table(e.Table)
			drop := ""
			switch {
			case t == nil:
				rej := Rejection{Table: e.Table, ID: e.ID, Operation: e.Operation, Status: synchro.PushStatusRejectedTerminal,
					ReasonCode: ReasonSchemaChanged, Message: fmt.Sprintf("the server's schema changed: table %s is no longer synced", e.Table),
					ClientUpdatedAt: e.ClientUpdatedAt, RejectedAt: time.Now().UTC().Format(TimeLayout)}
				if err := insertRejection(ctx, tx, &rej); err != nil {
					return err
				}
				rejected = append(rejected, rej)
				drop = "rejected"
			case e.Operation != "delete":
				if e.Row, err = readRow(ctx, tx, t.TableName, t, e.ID); err != nil {
					return err
				}
				if e.Row == nil {
					logger.WarnContext(ctx, "synchro client: dropping an outbox entry whose row is gone", "table", e.Table, "id", e.ID, "operation", e.Operation)
					drop = "gone"
				} else {
					e.Data = rowJSON(t, e.Row)
				}
			}
			if drop != "" {
				_, err := tx.ExecContext(ctx, `DELETE FROM _synchro_outbox WHERE table_name = ? AND record_id = ?`, e.Table, e.ID)
				return err
			}
			if parent, id, ok := parentRef(schema, t, e.Row); ok {
				pending, err := readEntries(ctx, tx, `WHERE table_name = ? AND record_id = ? AND operation = 'create'`, parent.TableName, id)
				if err != nil {
					return err
				}
				for _, p := range pending {
					if err := take(p); err != nil {
						return err
					}
				}
			}
			out = append(out, e)
			return nil
		}
		for _, e := range oldest {
			if len(out) >= n {
				break
			}
			if err := take(e); err != nil {
				return err
			}
		}
		// Parents taken may have pushed the last entries beyond n: they
		// go in the next batch.
		out = out[:min(len(out), n)]
		for _, e := range out {
			if _, err := tx.ExecContext(ctx, `UPDATE _synchro_outbox SET sent_version = version WHERE table_name = ? AND record_id = ?`, e.Table, e.ID); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("reading the outbox: %w", err)
	}
	return out, rejected, nil
}

// readEntries reads the outbox entries that where (a WHERE, ORDER BY or
// LIMIT clause, with its args) selects, without their rows.
func readEntries(ctx context.Context, tx *sql.Tx, where string, args ...any) ([]*Entry, error) {
	rows, err := tx.QueryContext(ctx, `SELECT table_name, record_id, operation, coalesce(base_updated_at, ''),
		client_updated_at, version, sent_version IS NOT NULL FROM _synchro_outbox `+where, args...)
	if err != nil {
		return nil, err
	}
	var out []*Entry
	for rows.Next() {
		e := &Entry{}
		if err := rows.Scan(&e.Table, &e.ID, &e.Operation, &e.Base, &e.ClientUpdatedAt, &e.Version, &e.SentBefore); err != nil {
			_ = rows.Close()
			return nil, err
		}
		out = append(out, e)
	}
	return out, errors.Join(rows.Err(), rows.Close())
}

// parentRef returns the parent table of t (the contract's parent_table)
// and the key of the parent of row, a row of t; false when t has no
// parent in the contract or row refers to none.
func parentRef(schema *Schema, t *Table, row map[string]any) (*Table, string, bool) {
	if t == nil || t.ParentTable == "" || t.ParentFKCol == "" || row == nil {
		return nil, "", false
	}
	parent := schema.Table(t.ParentTable)
	ref, ok := row[t.ParentFKCol]
	if parent == nil || !ok || ref == nil {
		return nil, "", false
	}
	if b, ok := ref.([]byte); ok {
		return parent, string(b), true
	}
	return parent, fmt.Sprint(ref), true
}

// Settled tells what a push's answer did to the outbox.
type Settled struct {
	// Accepted counts the entries the server applied (or had applied,
	// when an earlier answer was lost).
	Accepted int
	// Rejected lists the changes the server refused or lost a conflict
	// with, recorded in _synchro_rejections.
	Rejected []Rejection
	// Retry counts the entries kept for a later push: answered
	// retryable, not answered, or answered stale_client.
	Retry int
	// Requeued counts the creates the server already had (from a push
	// whose answer was lost) that stay queued as updates: the next push
	// sends them.
	Requeued int
	// StaleClient reports a stale_client answer: the client must snapshot
	// again before its changes are taken.
	StaleClient bool
	// Tables counts the rows written locally from the server's answers.
	Tables map[string]int
}

// Reasons of push answers the settlement treats apart.
const (
	reasonRecordExists   = "record_exists"
	reasonRecordNotFound = "record_not_found"
	reasonStaleClient    = "stale_client"
	reasonParentNotFound = "parent_not_found"
)

// ReasonParentMissing is the reason code of a create the client gave up:
// the server answered parent_not_found to it parentMissingAttempts times,
// and its parent row (the contract's parent_table, by parent_fk_col) is
// neither in the local table nor pending: the application deleted the
// parent before it was ever pushed, or the server refused the parent's
// create, so no push of this device will bring it. The client decides
// it, not the server (which would give up after its own, longer bound:
// parent_never_arrived).
const ReasonParentMissing = "parent_missing"

// parentMissingAttempts is how many parent_not_found answers a create
// gets before the client checks for its parent (see ReasonParentMissing).
const parentMissingAttempts = 3

// Settle applies the server's answer to the entries sent, in one
// transaction with capture off. Per entry, by its result:
//
//   - applied: the entry leaves the outbox and the row takes the server's
//     version (server_updated_at) as its updated-at; a delete leaves the
//     row deleted. So does a delete answered record_not_found (the server
//     has no such row: what the delete wanted), and a conflict whose
//     server version is the row that was sent (the answer to an earlier
//     push of it was lost, and this is its echo).
//   - a create answered record_exists after an earlier push of it whose
//     answer was lost: the earlier push made the row; the entry stays, as
//     an update of the server's version.
//   - conflict: recorded as a rejection with the server's row, which
//     replaces the local row (or deletes it, when the server's is
//     deleted); the entry leaves the outbox.
//   - rejected_terminal: recorded as a rejection; the row goes back to
//     the server's (its base row), or is deleted when the server has none;
//     the entry leaves the outbox.
//   - rejected_retryable, stale_client, or no answer: the entry stays,
//     with the reason in last_error.
//
// An entry changed locally while its push was under way keeps its newer
// change queued: the answer settles only what was sent, so nothing is
// reverted or overwritten; its base becomes the server's version when the
// server applied the older change.
func (s *Store) Settle(ctx context.Context, schema *Schema, sent []*Entry, resp *synchro.PushResponse) (*Settled, error) {
	type key struct{ table, id string }
	results := map[key]*synchro.PushResult{}
	for _, list := range [][]synchro.PushResult{resp.Accepted, resp.Rejected} {
		for i := range list {
			results[key{list[i].TableName, list[i].ID}] = &list[i]
		}
	}
	out := &Settled{}
	err := s.Apply(ctx, func(tx *sql.Tx) error {
		*out = Settled{Tables: map[string]int{}}
		a, err := newApplier(ctx, tx, schema)
		if err != nil {
			return err
		}
		defer a.close()
		for _, e := range sent {
			t := schema.Table(e.Table)
			res := results[key{e.Table, e.ID}]
			if t == nil || res == nil {
				out.Retry++
				continue
			}
			st := &settler{ctx: ctx, tx: tx, a: a, t: t, e: e, res: res, out: out}
			if err := st.settle(); err != nil {
				return fmt.Errorf("settling %s %s: %w", e.Table, e.ID, err)
			}
		}
		return nil
	})
	return out, err
}

// settler settles one entry.
type settler struct {
	ctx context.Context
	tx  *sql.Tx
	a   *applier
	t   *Table
	e   *Entry
	res *synchro.PushResult
	out *Settled
	// the entry as it is now
	curOp      string
	curVersion int64
}

func (st *settler) settle() error {
	err := st.tx.QueryRowContext(st.ctx, `SELECT operation, version FROM _synchro_outbox WHERE table_name = ? AND record_id = ?`,
		st.e.Table, st.e.ID).Scan(&st.curOp, &st.curVersion)
	if errors.Is(err, sql.ErrNoRows) {
		return nil // settled already
	}
	if err != nil {
		return err
	}
	res, e := st.res, st.e
	sv := res.ServerVersion
	switch res.Status {
	case synchro.PushStatusApplied:
		return st.accept(res.ServerUpdatedAt)
	case synchro.PushStatusConflict:
		switch {
		case e.Operation == "delete" && (sv == nil || sv.DeletedAt != nil):
			return st.accept(nil)
		case e.Operation != "delete" && sv != nil && sv.DeletedAt == nil && st.isEcho(sv.Data):
			return st.accept(&sv.UpdatedAt)
		case res.ReasonCode == reasonRecordExists && e.SentBefore && sv != nil && sv.DeletedAt == nil:
			return st.retryAsUpdate(sv)
		}
		return st.lose()
	case synchro.PushStatusRejectedTerminal:
		switch {
		case e.Operation == "delete" && res.ReasonCode == reasonRecordNotFound:
			return st.accept(nil)
		case res.ReasonCode == reasonStaleClient:
			st.out.StaleClient = true
			return st.retry()
		}
		return st.reject()
	case synchro.PushStatusRejectedRetryable:
		if res.ReasonCode == reasonParentNotFound {
			missing, err := st.parentMissing()
			if err != nil {
				return err
			}
			if missing {
				return st.giveUp()
			}
		}
	}
	return st.retry()
}

// parentMissing reports whether a create answered parent_not_found has
// had enough of those answers, and its parent is neither a local row nor
// a pending change (see ReasonParentMissing).
func (st *settler) parentMissing() (bool, error) {
	t := st.t
	if st.e.Operation != "create" || t.ParentTable == "" || t.ParentFKCol == "" || !st.unchanged() {
		return false, nil
	}
	var attempts int
	if err := st.tx.QueryRowContext(st.ctx, `SELECT attempts FROM _synchro_outbox WHERE table_name = ? AND record_id = ?`,
		st.e.Table, st.e.ID).Scan(&attempts); err != nil {
		return false, err
	}
	parent, refID, ok := parentRef(st.a.schema, t, st.e.Row)
	if attempts+1 < parentMissingAttempts || !ok {
		return false, nil
	}
	var exists bool
	err := st.tx.QueryRowContext(st.ctx, `SELECT EXISTS (SELECT 1 FROM `+quoteIdent(parent.TableName)+` WHERE `+quoteIdent(parent.PK)+` = ?)
		OR EXISTS (SELECT 1 FROM _synchro_outbox WHERE table_name = ? AND record_id = ?)`, refID, parent.TableName, refID).Scan(&exists)
	return !exists, err
}

// giveUp settles a create whose parent will never come from this device
// as the server would a terminal refusal (see ReasonParentMissing).
func (st *settler) giveUp() error {
	st.res = &synchro.PushResult{ID: st.e.ID, TableName: st.e.Table, Operation: st.e.Operation, Status: synchro.PushStatusRejectedTerminal,
		ReasonCode: ReasonParentMissing, Message: fmt.Sprintf("the parent row %s %v is neither on the server nor on this device (deleted before it was pushed, or refused); the server said: %s",
			st.t.ParentTable, st.e.Row[st.t.ParentFKCol], st.res.Message)}
	return st.reject()
}

// unchanged reports whether the entry is still what was sent.
func (st *settler) unchanged() bool { return st.curVersion == st.e.Version }

func (st *settler) exec(query string, args ...any) error {
	_, err := st.tx.ExecContext(st.ctx, query, args...)
	return err
}

func (st *settler) dropEntry() error {
	if err := st.exec(`DELETE FROM _synchro_outbox WHERE table_name = ? AND record_id = ?`, st.e.Table, st.e.ID); err != nil {
		return err
	}
	return st.a.deleteRow(st.t, st.e.ID, true)
}

// setUpdatedAt sets the local row's updated-at to the server's version.
func (st *settler) setUpdatedAt(at *time.Time) error {
	if at == nil {
		return nil
	}
	return st.exec(`UPDATE `+quoteIdent(st.t.TableName)+` SET `+quoteIdent(st.t.UpdatedAtColumn)+` = ? WHERE `+quoteIdent(st.t.PK)+` = ?`,
		at.UTC().Format(TimeLayout), st.e.ID)
}

// accept settles a change the server applied, whose new version is at
// (nil when the answer tells none).
func (st *settler) accept(at *time.Time) error {
	st.out.Accepted++
	e := st.e
	if st.unchanged() {
		if err := st.dropEntry(); err != nil {
			return err
		}
		if e.Operation == "delete" {
			return st.a.deleteRow(st.t, e.ID, false)
		}
		return st.setUpdatedAt(at)
	}
	// Changed since it was sent: the newer change stays queued, made on
	// what the server now has.
	if e.Operation == "delete" {
		if st.curOp == "delete" {
			return st.dropEntry()
		}
		if err := st.exec(`UPDATE _synchro_outbox SET operation = 'create', base_updated_at = NULL WHERE table_name = ? AND record_id = ?`,
			e.Table, e.ID); err != nil {
			return err
		}
		return st.a.deleteRow(st.t, e.ID, true)
	}
	op := "update"
	if st.curOp == "delete" {
		op = "delete"
	}
	var base any
	if at != nil {
		base = at.UTC().Format(TimeLayout)
	}
	if err := st.exec(`UPDATE _synchro_outbox SET operation = ?, base_updated_at = coalesce(?, base_updated_at) WHERE table_name = ? AND record_id = ?`,
		op, base, e.Table, e.ID); err != nil {
		return err
	}
	row := copyRow(e.Row)
	if base != nil {
		row[st.t.UpdatedAtColumn] = base
	}
	row[st.t.DeletedAtColumn] = nil
	if err := writeValues(st.ctx, st.tx, baseTable(st.t.TableName), st.t, row); err != nil {
		return err
	}
	return st.setUpdatedAt(at)
}

// retryAsUpdate turns a create the server already has into an update of
// the server's version sv.
func (st *settler) retryAsUpdate(sv *synchro.Record) error {
	st.out.Requeued++
	if err := st.exec(`UPDATE _synchro_outbox SET operation = 'update', base_updated_at = ? WHERE table_name = ? AND record_id = ? AND operation = 'create'`,
		sv.UpdatedAt.UTC().Format(TimeLayout), st.e.Table, st.e.ID); err != nil {
		return err
	}
	return st.a.upsert(&synchro.Record{ID: st.e.ID, TableName: st.e.Table, Data: sv.Data, UpdatedAt: sv.UpdatedAt})
}

// lose settles a conflict the server won: its row replaces the local one.
func (st *settler) lose() error {
	if err := st.record(); err != nil {
		return err
	}
	sv := st.res.ServerVersion
	if st.unchanged() {
		if err := st.dropEntry(); err != nil {
			return err
		}
		if sv == nil || sv.DeletedAt != nil {
			return st.a.deleteRow(st.t, st.e.ID, false)
		}
		return st.a.upsert(&synchro.Record{ID: st.e.ID, TableName: st.e.Table, Data: sv.Data, UpdatedAt: sv.UpdatedAt})
	}
	// A newer local change stays queued; the server's row is its base.
	if sv == nil || sv.DeletedAt != nil {
		return st.a.deleteRow(st.t, st.e.ID, true)
	}
	return st.a.upsert(&synchro.Record{ID: st.e.ID, TableName: st.e.Table, Data: sv.Data, UpdatedAt: sv.UpdatedAt})
}

// reject settles a change the server refused for good: the row goes back
// to the server's.
func (st *settler) reject() error {
	if err := st.record(); err != nil {
		return err
	}
	if !st.unchanged() {
		return nil // the newer change is tried next
	}
	base, err := readRow(st.ctx, st.tx, baseTable(st.t.TableName), st.t, st.e.ID)
	if err != nil {
		return err
	}
	if err := st.dropEntry(); err != nil {
		return err
	}
	if base == nil {
		return st.a.deleteRow(st.t, st.e.ID, false)
	}
	st.out.Tables[st.t.TableName]++
	return writeValues(st.ctx, st.tx, st.t.TableName, st.t, base)
}

// retry keeps the entry for a later push.
func (st *settler) retry() error {
	st.out.Retry++
	msg := st.res.ReasonCode
	if st.res.Message != "" {
		msg += ": " + st.res.Message
	}
	return st.exec(`UPDATE _synchro_outbox SET attempts = attempts + 1, last_error = ? WHERE table_name = ? AND record_id = ?`,
		msg, st.e.Table, st.e.ID)
}

// record keeps the refused change in _synchro_rejections.
func (st *settler) record() error {
	res, e := st.res, st.e
	rej := Rejection{Table: e.Table, ID: e.ID, Operation: e.Operation, Status: res.Status, ReasonCode: res.ReasonCode,
		Message: res.Message, Data: e.Data, ClientUpdatedAt: e.ClientUpdatedAt, RejectedAt: time.Now().UTC().Format(TimeLayout)}
	if sv := res.ServerVersion; sv != nil {
		rej.ServerData, rej.ServerDeleted = sv.Data, sv.DeletedAt != nil
	}
	if err := insertRejection(st.ctx, st.tx, &rej); err != nil {
		return err
	}
	st.out.Rejected = append(st.out.Rejected, rej)
	return nil
}

// isEcho reports whether the server's row data holds the values that were
// sent, but for the key and the columns the server sets.
func (st *settler) isEcho(data json.RawMessage) bool {
	var fields map[string]json.RawMessage
	if json.Unmarshal(data, &fields) != nil || fields == nil {
		return false
	}
	for _, c := range st.t.Columns {
		if c.Name == st.t.PK || st.t.managed(c.Name) {
			continue
		}
		raw, ok := fields[c.Name]
		if !ok {
			continue
		}
		v, err := fromJSON(c.LogicalType, raw)
		if err != nil || !sameValue(c.LogicalType, v, st.e.Row[c.Name]) {
			return false
		}
	}
	return true
}

func copyRow(row map[string]any) map[string]any {
	out := make(map[string]any, len(row))
	for k, v := range row {
		out[k] = v
	}
	return out
}

// Rejection is a local change the server did not take as it was sent.
type Rejection struct {
	// Seq numbers the rejection in _synchro_rejections (0 before it is
	// stored).
	Seq                           int64
	Table, ID                     string
	Operation, Status, ReasonCode string
	Message                       string
	// Data is the row as sent (nil for a delete); ServerData the server's
	// row when it sent one, ServerDeleted whether that row is deleted.
	Data, ServerData            json.RawMessage
	ServerDeleted               bool
	ClientUpdatedAt, RejectedAt string
}

// insertRejection stores rej and sets its Seq.
func insertRejection(ctx context.Context, tx *sql.Tx, rej *Rejection) error {
	res, err := tx.ExecContext(ctx, `INSERT INTO _synchro_rejections (table_name, record_id, operation, status, reason_code, message,
		data, server_data, server_deleted, client_updated_at, rejected_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		rej.Table, rej.ID, rej.Operation, rej.Status, rej.ReasonCode, rej.Message,
		nullJSON(rej.Data), nullJSON(rej.ServerData), rej.ServerDeleted, rej.ClientUpdatedAt, rej.RejectedAt)
	if err != nil {
		return fmt.Errorf("recording a rejection: %w", err)
	}
	rej.Seq, err = res.LastInsertId()
	return err
}

func nullJSON(b json.RawMessage) any {
	if len(b) == 0 {
		return nil
	}
	return string(b)
}

// Rejections lists the recorded rejections, oldest first.
func (s *Store) Rejections(ctx context.Context) ([]Rejection, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, table_name, record_id, operation, status, reason_code, message,
		data, server_data, server_deleted, client_updated_at, rejected_at FROM _synchro_rejections ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("reading the rejections: %w", err)
	}
	defer func() { _ = rows.Close() }()
	var out []Rejection
	for rows.Next() {
		var r Rejection
		var data, server sql.NullString
		if err := rows.Scan(&r.Seq, &r.Table, &r.ID, &r.Operation, &r.Status, &r.ReasonCode, &r.Message,
			&data, &server, &r.ServerDeleted, &r.ClientUpdatedAt, &r.RejectedAt); err != nil {
			return nil, fmt.Errorf("reading the rejections: %w", err)
		}
		if data.Valid {
			r.Data = json.RawMessage(data.String)
		}
		if server.Valid {
			r.ServerData = json.RawMessage(server.String)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// DeleteRejections removes the rejections numbered seqs; none given:
// every one.
func (s *Store) DeleteRejections(ctx context.Context, seqs ...int64) error {
	if len(seqs) == 0 {
		_, err := s.db.ExecContext(ctx, `DELETE FROM _synchro_rejections`)
		return err
	}
	return s.Write(ctx, func(tx *sql.Tx) error {
		for _, seq := range seqs {
			if _, err := tx.ExecContext(ctx, `DELETE FROM _synchro_rejections WHERE id = ?`, seq); err != nil {
				return err
			}
		}
		return nil
	})
}

// Pending is an outbox entry as the application sees it.
type Pending struct {
	Table, ID, Operation  string
	Base, ClientUpdatedAt string
	Sent                  bool
	Attempts              int
	LastError             string
}

// Pending lists the outbox, in push order.
func (s *Store) Pending(ctx context.Context) ([]Pending, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT table_name, record_id, operation, coalesce(base_updated_at, ''), client_updated_at,
		sent_version IS NOT NULL, attempts, coalesce(last_error, '') FROM _synchro_outbox ORDER BY seq`)
	if err != nil {
		return nil, fmt.Errorf("reading the outbox: %w", err)
	}
	defer func() { _ = rows.Close() }()
	var out []Pending
	for rows.Next() {
		var p Pending
		if err := rows.Scan(&p.Table, &p.ID, &p.Operation, &p.Base, &p.ClientUpdatedAt, &p.Sent, &p.Attempts, &p.LastError); err != nil {
			return nil, fmt.Errorf("reading the outbox: %w", err)
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// PendingCount counts the outbox entries.
func (s *Store) PendingCount(ctx context.Context) (int, error) {
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM _synchro_outbox`).Scan(&n)
	return n, err
}
