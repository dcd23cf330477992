package wal

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/synchrosync/synchro"
	"github.com/synchrosync/synchro/internal/bucket"
	"github.com/synchrosync/synchro/internal/changenote"
	"github.com/synchrosync/synchro/internal/locks"
	"github.com/synchrosync/synchro/internal/pgcatalog"
	"github.com/synchrosync/synchro/internal/pgerr"
	"github.com/synchrosync/synchro/internal/pgident"
	"github.com/synchrosync/synchro/internal/store"
)

// This file turns decoded transactions into changelog rows and bucket edge
// changes, written in one database transaction per batch.

// applyLockKey is the transaction-level advisory lock every changelog write
// of a slot takes (together with a hash of the slot name), so that the
// stream and a rule-failure replay never interleave their edge updates; see
// package locks.
const applyLockKey = locks.Apply

// lock takes the slot's changelog lock (applyLockKey) for the transaction
// tx and turns JIT compilation off for the rest of it, in one statement.
// Every changelog transaction takes it first: a batch, a replay of rule
// failures, a backfill.
//
// A batch's statements look records up by key, one index probe each, and
// PostgreSQL costs them by the number of keys: past about 11,800 keys
// (LoadEdges, DeleteEdges, a parent lookup), which a batch of
// DefaultMaxBatchEvents reaches with the parents of child rows or key
// changes and a larger MaxBatchEvents reaches at once, the estimate
// crosses jit_above_cost (100,000 by default) and PostgreSQL compiles the
// statement, tens to hundreds of milliseconds for a lookup that runs in a
// few. The engine's read transactions turn JIT off for the same reason.
func (a *applier) lock(ctx context.Context, tx *sql.Tx) error {
	_, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1, hashtext($2)), set_config('jit', 'off', true)`, applyLockKey, a.slot)
	return err
}

// beginLocked begins a changelog transaction (begin) and takes the slot's
// lock in it (lock), as every changelog transaction does first. The caller
// closes conn and rolls tx back when done; on an error nothing is left
// open.
func (a *applier) beginLocked(ctx context.Context) (conn *sql.Conn, tx *sql.Tx, err error) {
	conn, tx, err = a.begin(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("beginning changelog transaction: %w", err)
	}
	if err := a.lock(ctx, tx); err != nil {
		_ = tx.Rollback()
		_ = conn.Close()
		return nil, nil, fmt.Errorf("locking the changelog of slot %s: %w", a.slot, err)
	}
	return conn, tx, nil
}

// recKey identifies a record.
type recKey struct{ table, id string }

// clRow is one changelog row to write.
type clRow struct {
	bucket string
	key    recKey
	op     synchro.Operation
}

// ruleFailure is a change whose buckets could not be decided.
type ruleFailure struct {
	key     recKey
	op      synchro.Operation
	err     string
	payload []byte
	lsn     pglogrepl.LSN
}

// applier writes batches of transactions for one slot.
type applier struct {
	reg      *synchro.Registry
	assigner BucketAssigner
	// join is set when the assigner is the registry's JoinResolver: child
	// tables then take their parent row's recorded buckets.
	join bool
	// tables holds the registered configurations by name.
	tables map[string]*synchro.TableConfig
	db     *sql.DB
	slot   string
	logger *slog.Logger
	// columnTypes caches the SQL type of key columns.
	columnTypes pgcatalog.ColumnTypes
	// keyTypes caches the cast types of primary keys, which decide how a
	// key read from a table is printed as its record id (recordID).
	keyTypes pgcatalog.CastTypes
	// metrics records what is written; nil without a MeterProvider.
	metrics *captureMetrics
	// signals are the consumer's, for tests (testsignal.go).
	signals *consumerSignals
	// marks holds, by table, where the records of tables added to the
	// streaming slot stand in the stream: apply skips the changes they
	// show (backfillMark). Set by a session before it streams.
	marks atomic.Pointer[map[string]backfillMark]
	// insertOnly is set once a changelog transaction met a connection of
	// another driver than pgx's, or row-level security on the synchro
	// tables that COPY would meet: bulk writes then use INSERT (bulk.go).
	// Tests set it to take that path.
	insertOnly atomic.Bool
	// copyChecked is set once a changelog transaction asked whether
	// row-level security applies to the synchro tables (bulk.go).
	copyChecked atomic.Bool
	// backfillPart is how many rows a record of existing rows reads
	// before it writes them and forgets them (batch.flushPart).
	backfillPart int
	// judgePayload is judgePayload (failpayload.go); tests replace it.
	judgePayload func([]byte) int16
	// payloadsAsStrings is set once PostgreSQL refused a payload that
	// judgePayload passed: rule failures then keep every payload as a
	// JSON string (batch.insertFailures).
	payloadsAsStrings atomic.Bool
}

func newApplier(cfg ConsumerConfig) *applier {
	_, join := cfg.Assigner.(*synchro.JoinResolver)
	a := &applier{reg: cfg.Registry, assigner: cfg.Assigner, join: join, tables: map[string]*synchro.TableConfig{},
		db: cfg.ChangelogDB, slot: cfg.SlotName, logger: cfg.Logger, signals: new(consumerSignals),
		backfillPart: cmp.Or(cfg.backfillPart, cfg.MaxBatchEvents, DefaultMaxBatchEvents),
		judgePayload: judgePayload}
	if cfg.judgePayload != nil {
		a.judgePayload = cfg.judgePayload
	}
	for _, t := range cfg.Registry.All() {
		a.tables[t.TableName] = t
	}
	return a
}

// batch is the state of one changelog transaction: the current buckets of
// every record it touched, and what it will write.
type batch struct {
	a  *applier
	tx *sql.Tx
	// conn is tx's connection, for bulk writes by COPY (copyInto).
	conn *sql.Conn
	ctx  context.Context
	// recs holds the state of every record the batch touched, one map
	// entry each: a batch looks a record up a few times per change, and
	// one lookup of a pointer costs less than one per kind of state.
	recs map[recKey]*record
	// spare holds records allocated together, handed out by rec.
	spare []record
	// dirty lists the records whose buckets changed, in first-change order.
	dirty    []*record
	rows     []clRow
	failures []ruleFailure
	lsn      pglogrepl.LSN
	// rowsConn, set by a backfill, is the connection it reads the rows on,
	// in its snapshot, holding the tables it read: children are read on it
	// too. Read on another connection, a child table that a transaction
	// locked before asking for a table the backfill holds would wait for
	// that transaction, which waits for the backfill's connection, which
	// waits for the read: a deadlock PostgreSQL does not see (found by a
	// review).
	rowsConn *pgconn.PgConn
	// backfilled names the tables a backfill records from their rows: a
	// parent's move does not move their rows, which get their buckets
	// from their own rows in the same batch.
	backfilled map[string]bool
	// written holds what the parts written before (flushPart) leave to
	// the end of the transaction: whether changelog rows wait in its
	// temporary table (store.CreateBackfillStash), which flush writes
	// first; their buckets, announced with the last part's (notify), all
	// of them once more than maxWrittenBuckets; and the number of rule
	// failures of each table, for the metrics after the commit.
	written struct {
		// stashed is set while changelog rows wait in the temporary
		// table; direct is set when the role may not create one (the
		// parts then write synchro.changelog, holding its lock).
		stashed  bool
		direct   bool
		buckets  map[string]struct{}
		all      bool
		failures map[string]int64
	}
}

// maxWrittenBuckets bounds the buckets a backfill's parts keep for the
// notification at its end: past it, the note says "all".
const maxWrittenBuckets = 1 << 14

// record is a batch's state of one record.
type record struct {
	key recKey
	// edges holds the record's current buckets, sorted, once loaded is
	// set; a record without buckets has an empty (non-nil) slice.
	edges  []string
	loaded bool
	// stored holds the buckets synchro.bucket_edges holds for the record
	// (sorted), read with edges, which flush compares edges with: only the
	// edges that differ are deleted or inserted. A loaded record with none
	// here has none stored (the backfill sets the edges of records whose
	// stored ones it has deleted).
	stored []string
	// queued is set once preload listed the record for reading.
	queued bool
	// dirty is set once the record is in batch.dirty.
	dirty bool
	// upcoming counts the events of this batch for the record not yet
	// applied: a child with one of its own is placed by it, not moved with
	// its parent.
	upcoming int
}

// newBatch starts the state of one changelog transaction, tx on conn (see
// begin), of about size row changes (a hint for the sizes of its maps).
func (a *applier) newBatch(ctx context.Context, conn *sql.Conn, tx *sql.Tx, size int) *batch {
	return &batch{a: a, tx: tx, conn: conn, ctx: ctx,
		recs: make(map[recKey]*record, size), spare: make([]record, 0, size),
		dirty: make([]*record, 0, size), rows: make([]clRow, 0, size)}
}

// rec returns the state of record k, adding it when the batch has none.
func (b *batch) rec(k recKey) *record {
	if r := b.recs[k]; r != nil {
		return r
	}
	var r *record
	if len(b.spare) < cap(b.spare) {
		b.spare = b.spare[:len(b.spare)+1]
		r = &b.spare[len(b.spare)-1]
	} else {
		r = new(record)
	}
	r.key = k
	b.recs[k] = r
	return r
}

// setEdges records buckets as the current ones of r, listing r as dirty.
func (b *batch) setEdges(r *record, buckets []string) {
	r.edges, r.loaded = buckets, true
	if !r.dirty {
		r.dirty = true
		b.dirty = append(b.dirty, r)
	}
}

// apply writes the changes of txns, and the position after the last one,
// in one database transaction. Transactions below the recorded position
// are skipped: another consumer of the slot wrote them already (it may have
// lost its connection before confirming them to the server).
func (a *applier) apply(ctx context.Context, txns []*txn) (err error) {
	if len(txns) == 0 {
		return nil
	}
	defer a.metrics.batchDone(ctx, a.metrics.start(), &err)
	conn, tx, err := a.beginLocked(ctx)
	if err != nil {
		return fmt.Errorf("wal: %w", err)
	}
	defer func() { _ = conn.Close() }()
	defer func() { _ = tx.Rollback() }()
	// Read after the lock, in a statement of its own: its snapshot then
	// sees what the previous holder of the lock committed. No position
	// recorded yet is 0.
	var recorded int64
	if err := tx.QueryRowContext(ctx, store.SlotPosition, a.slot).Scan(&recorded); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("wal: reading the position of slot %s: %w", a.slot, err)
	}
	txns = slices.DeleteFunc(slices.Clone(txns), func(t *txn) bool { return t.finalLSN < pglogrepl.LSN(recorded) })
	if len(txns) == 0 {
		return nil
	}
	if marks := a.marks.Load(); marks != nil {
		txns = withoutShown(txns, *marks)
	}
	size := 0
	for _, t := range txns {
		size += len(t.events)
	}
	b := a.newBatch(ctx, conn, tx, size)
	if err := b.preload(txns, size); err != nil {
		return err
	}
	for _, t := range txns {
		b.lsn = t.finalLSN
		for i := range t.events {
			ev := &t.events[i]
			if ev.kind != evTruncate {
				b.rec(recKey{ev.table, ev.id}).upcoming--
			}
			if err := b.event(ev); err != nil {
				return err
			}
		}
	}
	if err := b.flush(txns[len(txns)-1].endLSN); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("wal: committing changelog transaction: %w", err)
	}
	a.metrics.applied(ctx, txns, b)
	return nil
}

// preload reads, in one statement, the recorded buckets of every record the
// batch touches and of the parents child rows point to, and counts the
// events of each record (upcoming). size is the number of events.
func (b *batch) preload(txns []*txn, size int) error {
	list := make([]*record, 0, size)
	add := func(k recKey) *record {
		r := b.rec(k)
		if !r.queued {
			r.queued = true
			list = append(list, r)
		}
		return r
	}
	for _, t := range txns {
		for i := range t.events {
			ev := &t.events[i]
			if ev.kind == evTruncate {
				continue
			}
			add(recKey{ev.table, ev.id}).upcoming++
			if ev.keyChanged {
				add(recKey{ev.table, ev.oldID})
			}
			if cfg := b.a.tables[ev.table]; cfg != nil && b.parentDerived(cfg) {
				if fk, ok := bucket.Text(ev.newRow[cfg.ParentFKCol]); ok {
					add(recKey{cfg.ParentTable, fk})
				}
			}
		}
	}
	return b.load(list)
}

// childrenOutside reports whether a registered table other than those the
// batch records from their rows (backfilled) has table as its parent: the
// tables whose rows moveChildren moves.
func (b *batch) childrenOutside(table string) bool {
	for _, child := range b.a.tables {
		if child.ParentTable == table && !b.backfilled[child.TableName] {
			return true
		}
	}
	return false
}

// loadParents reads, in one statement, the recorded buckets of the parent
// records of n rows of cfg (row(i) the i-th) that the batch does not hold,
// when cfg's buckets are its parent's (parentDerived): a backfill's part
// of a child table, whose parents an earlier part may have written and
// forgotten (flushPart), would otherwise read them one by one.
func (b *batch) loadParents(cfg *synchro.TableConfig, n int, row func(int) rowValues) error {
	if !b.parentDerived(cfg) {
		return nil
	}
	var list []*record
	for i := range n {
		if fk, ok := bucket.Text(row(i)[cfg.ParentFKCol]); ok {
			if r := b.rec(recKey{cfg.ParentTable, fk}); !r.loaded {
				list = append(list, r)
			}
		}
	}
	return b.load(list)
}

// load reads the recorded buckets of the given records that are not loaded
// yet; each gets its edges, empty when it has none.
func (b *batch) load(recs []*record) error {
	var tables, ids []string
	fresh := make([]*record, 0, len(recs))
	for _, r := range recs {
		if r.loaded {
			continue // already known: do not overwrite with stored state
		}
		r.loaded, r.edges = true, []string{}
		fresh = append(fresh, r)
		tables, ids = append(tables, r.key.table), append(ids, r.key.id)
	}
	if len(fresh) == 0 {
		return nil
	}
	rows, err := b.tx.QueryContext(b.ctx, store.LoadEdges, tables, ids)
	if err != nil {
		return fmt.Errorf("wal: reading bucket edges: %w", err)
	}
	defer rows.Close()
	var k recKey
	var r *record
	for rows.Next() {
		var table, id, bucket string
		if err := rows.Scan(&table, &id, &bucket); err != nil {
			return fmt.Errorf("wal: reading bucket edges: %w", err)
		}
		if r == nil || k.table != table || k.id != id {
			k = recKey{table, id}
			r = b.recs[k]
			if r == nil {
				return fmt.Errorf("wal: reading bucket edges: got those of %s %q, not asked for", table, id)
			}
		}
		r.edges = append(r.edges, bucket)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("wal: reading bucket edges: %w", err)
	}
	for _, r := range fresh {
		slices.Sort(r.edges)
		r.stored = r.edges
	}
	return nil
}

// current returns the recorded buckets of a record, loading them if needed.
func (b *batch) current(k recKey) ([]string, error) {
	r := b.rec(k)
	if !r.loaded {
		if err := b.load([]*record{r}); err != nil {
			return nil, err
		}
	}
	return r.edges, nil
}

// parentDerived reports whether a table's buckets are its parent row's:
// with the JoinResolver, a child table without an owner or bucket column of
// its own.
func (b *batch) parentDerived(cfg *synchro.TableConfig) bool {
	return b.a.join && cfg.ParentTable != "" && cfg.OwnerColumn == "" && cfg.BucketByColumn == ""
}

// event applies one row change.
func (b *batch) event(ev *event) error {
	if ev.kind == evTruncate {
		return b.truncate(ev.tables)
	}
	cfg := b.a.tables[ev.table]
	if cfg == nil {
		return nil
	}
	k := recKey{ev.table, ev.id}
	switch ev.kind {
	case evDelete:
		return b.move(cfg, k, nil, synchro.OpDelete)
	case evUpdate:
		if ev.keyChanged {
			// A primary key change: the old record is gone, a new one appears.
			if err := b.move(cfg, recKey{ev.table, ev.oldID}, nil, synchro.OpDelete); err != nil {
				return err
			}
			return b.assignAndMove(cfg, k, ev, synchro.OpInsert)
		}
		return b.assignAndMove(cfg, k, ev, synchro.OpUpdate)
	default:
		return b.assignAndMove(cfg, k, ev, synchro.OpInsert)
	}
}

// assignAndMove decides the buckets of an inserted or updated row and moves
// the record there.
func (b *batch) assignAndMove(cfg *synchro.TableConfig, k recKey, ev *event, op synchro.Operation) error {
	buckets, ok, err := b.assign(cfg, k, ev, op)
	if err != nil || !ok {
		return err
	}
	if deleted(cfg, ev.newRow) {
		// A soft delete, or a row inserted already deleted: clients drop it,
		// the record keeps its buckets so that a resurrection finds them.
		return b.setBuckets(k, buckets, op, func(string, bool) synchro.Operation { return synchro.OpDelete })
	}
	return b.move(cfg, k, buckets, op)
}

// assign decides a row's buckets. It reports false, after recording a rule
// failure, when they cannot be decided; the record then keeps its buckets.
func (b *batch) assign(cfg *synchro.TableConfig, k recKey, ev *event, op synchro.Operation) ([]string, bool, error) {
	if b.parentDerived(cfg) {
		fk, present := ev.newRow[cfg.ParentFKCol]
		if !present {
			// An unchanged TOAST value: the parent did not change.
			cur, err := b.current(k)
			return cur, err == nil, err
		}
		s, ok := bucket.Text(fk)
		if !ok {
			return []string{}, true, nil
		}
		parent, err := b.current(recKey{cfg.ParentTable, s})
		return parent, err == nil, err
	}
	if b.a.join && !bucketColumnsPresent(cfg, ev.newRow) {
		cur, err := b.current(k)
		return cur, err == nil, err
	}
	ctx := b.ctx
	if ev.oldRow != nil {
		ctx = bucket.WithOldRow(ctx, ev.oldRow) // a context per change only where there is an old row to carry
	}
	buckets, err := b.a.assignBuckets(ctx, cfg.TableName, k.id, op, ev.newRow)
	if err == nil {
		buckets = bucket.Normalize(buckets)
		err = checkBucketIDs(buckets)
	}
	if err != nil {
		payload, mErr := json.Marshal(map[string]any{"new_row": ev.newRow, "old_row": ev.oldRow})
		if mErr != nil {
			payload = nil // recorded without its payload rather than not at all
		}
		b.fail(k, op, err, payload)
		return nil, false, nil
	}
	return buckets, true, nil
}

// assignBuckets asks the assigner, turning a panic of its into an error:
// the change is then a rule failure like any other. Unrecovered, the panic
// would end the process, and the same change would end it again at every
// restart.
func (a *applier) assignBuckets(ctx context.Context, table, id string, op synchro.Operation, row rowValues) (buckets []string, err error) {
	defer func() {
		if p := recover(); p != nil {
			buckets = nil
			err = fmt.Errorf("the assigner panicked: %v", p)
			a.logger.ErrorContext(ctx, "wal: the bucket assigner panicked; the change is recorded in synchro.rule_failures",
				"table", table, "id", id, "panic", p, "stack", string(debug.Stack()))
		}
	}()
	return a.assigner.AssignBuckets(ctx, table, id, op, row)
}

// fail records that the buckets of k's change op could not be decided, for
// err; payload (the row, as JSON) may be nil. The record keeps its buckets.
func (b *batch) fail(k recKey, op synchro.Operation, err error, payload []byte) {
	b.failures = append(b.failures, ruleFailure{key: k, op: op, err: storableText(err.Error()), payload: payload, lsn: b.lsn})
	b.a.logger.WarnContext(b.ctx, "wal: bucket resolution failed; recorded in synchro.rule_failures",
		"table", k.table, "id", k.id, "error", err)
}

// checkBucketIDs refuses the bucket ids of an assigner that PostgreSQL
// could not store, or that the library keeps for itself
// (bucket.CheckStorable): written, the first would fail the changelog
// transaction each time capture tried it again, stopping capture for
// everyone. The change is recorded as a rule failure instead, like an
// assigner's error. The ids' length is checked with the record's key, by
// setBuckets (checkKeySizes).
func checkBucketIDs(ids []string) error {
	for _, id := range ids {
		if err := bucket.CheckStorable(id); err != nil {
			return fmt.Errorf("the assigner returned an invalid bucket id: %w", err)
		}
	}
	return nil
}

// maxIndexedKey bounds len(table) + len(record id) + len(bucket id) of a
// changelog row or a bucket edge: the btree indexes on (table_name,
// record_id, bucket_id[, seq]) refuse an entry over 2704 bytes, headers
// and the seq included (PostgreSQL compresses long entries, so some longer
// ones would fit; none under this bound fails).
const maxIndexedKey = 2600

// checkKeySizes refuses buckets whose changelog rows or edges for k the
// indexes could not hold (maxIndexedKey): written, they would fail the
// changelog transaction each time capture tried it again.
func checkKeySizes(k recKey, buckets []string) error {
	for _, id := range buckets {
		if n := len(k.table) + len(k.id) + len(id); n > maxIndexedKey {
			return fmt.Errorf("bucket id %s of %d bytes for a record id of %d bytes: with the table name, %d bytes, more than the %d an index entry of synchro.changelog and synchro.bucket_edges holds",
				bucket.QuoteID(id), len(id), len(k.id), n, maxIndexedKey)
		}
	}
	return nil
}

// storableText returns s as text PostgreSQL can store: each run of bytes
// that is not valid UTF-8, and each NUL, becomes U+FFFD. An assigner's error may
// carry raw bytes; stored as they are, they would fail the changelog
// transaction each time capture tried it again.
func storableText(s string) string {
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
}

// bucketColumnsPresent reports whether the columns the JoinResolver reads
// were sent (an unchanged TOAST value is not).
func bucketColumnsPresent(cfg *synchro.TableConfig, row rowValues) bool {
	for _, col := range []string{cfg.BucketByColumn, cfg.OwnerColumn, cfg.ParentFKCol} {
		if col == "" {
			continue
		}
		if _, ok := row[col]; !ok {
			return false
		}
	}
	return true
}

// deleted reports whether a row is soft-deleted.
func deleted(cfg *synchro.TableConfig, row rowValues) bool {
	v, ok := row[cfg.DeletedAtColumn]
	return ok && v != nil
}

// move sets a record's buckets to next (nil: none, the record is gone) and
// writes the changelog rows of the move: a delete in every bucket it leaves,
// then op in the buckets it stays in and an insert in the buckets it enters.
// Leaving comes first, so a client following both the old and the new
// bucket ends with the row. Children of the record follow its buckets.
func (b *batch) move(cfg *synchro.TableConfig, k recKey, next []string, op synchro.Operation) error {
	return b.setBuckets(k, next, op, func(bucket string, stayed bool) synchro.Operation {
		if op == synchro.OpDelete {
			return synchro.OpDelete
		}
		if stayed {
			return op
		}
		return synchro.OpInsert
	})
}

// setBuckets records next as the buckets of k, emitting the changelog rows
// opFor gives for each bucket of next (stayed tells whether k was already
// in it) and a delete for each bucket k leaves. When the set changed, the
// children of k move too. When a bucket of next cannot be stored with k's
// key (checkKeySizes), the change, op, is a rule failure and k keeps its
// buckets: this is the one place every new bucket of a record goes through
// (an assigner's answer, a parent's buckets, a parent's move).
func (b *batch) setBuckets(k recKey, next []string, op synchro.Operation, opFor func(bucket string, stayed bool) synchro.Operation) error {
	if err := checkKeySizes(k, next); err != nil {
		b.fail(k, op, err, nil)
		return nil
	}
	prev, err := b.current(k)
	if err != nil {
		return err
	}
	if next == nil {
		next = []string{}
	}
	for _, bucket := range prev {
		if !slices.Contains(next, bucket) {
			b.rows = append(b.rows, clRow{bucket, k, synchro.OpDelete})
		}
	}
	for _, bucket := range next {
		b.rows = append(b.rows, clRow{bucket, k, opFor(bucket, slices.Contains(prev, bucket))})
	}
	if slices.Equal(prev, next) {
		return nil
	}
	b.setEdges(b.recs[k], next)
	return b.moveChildren(k, next)
}

// moveChildren gives the rows of parent-derived child tables that point to
// parent the parent's new buckets, recursively. A soft-deleted child moves
// too, as a delete in every bucket.
func (b *batch) moveChildren(parent recKey, buckets []string) error {
	for _, child := range b.a.tables {
		if child.ParentTable != parent.table || b.backfilled[child.TableName] {
			continue
		}
		if parent.id == "" && b.parentDerived(child) {
			// A parent key of '' names no parent (bucket.Text): such
			// children have no buckets, whatever the record of key ''
			// does.
			continue
		}
		kids, err := b.children(child, parent.id)
		if err != nil {
			return err
		}
		for _, kid := range kids {
			k := recKey{child.TableName, kid.id}
			if r := b.recs[k]; r != nil && r.upcoming > 0 {
				continue // its own event, later in this batch, places it
			}
			if !b.parentDerived(child) {
				// Another assigner decides the child's buckets: ask it
				// again, with the child's row as it is now.
				ev := &event{kind: evUpdate, table: child.TableName, id: kid.id, newRow: kid.row}
				err = b.assignAndMove(child, k, ev, synchro.OpUpdate)
			} else if kid.deleted {
				err = b.setBuckets(k, slices.Clone(buckets), synchro.OpUpdate, func(string, bool) synchro.Operation { return synchro.OpDelete })
			} else {
				err = b.move(child, k, slices.Clone(buckets), synchro.OpUpdate)
			}
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// childRow is a child found by children.
type childRow struct {
	id      string
	deleted bool
	row     rowValues
}

// children lists the rows of child whose parent key is parentID, as the
// table is now, and whether each is soft-deleted.
func (b *batch) children(child *synchro.TableConfig, parentID string) ([]childRow, error) {
	typ, err := b.a.columnType(b.ctx, b.tx, child.TableName, child.ParentFKCol)
	if err != nil {
		return nil, err
	}
	// The deleted-at column is read through row_to_json, which works whether
	// or not the table has it (json, unlike jsonb, accepts every value).
	id, err := b.a.recordID(b.ctx, b.tx, child, "c")
	if err != nil {
		return nil, err
	}
	q := fmt.Sprintf(`SELECT %s, coalesce(json_typeof(row_to_json(c) -> $2::text) NOT IN ('null'), false), row_to_json(c)::text
FROM %s AS c WHERE c.%s = CAST($1::text AS %s)`,
		id, pgident.QuoteQualified(child.TableName), pgident.Quote(child.ParentFKCol), typ)
	if b.rowsConn != nil {
		found, err := exec(b.ctx, b.rowsConn, q, parentID, child.DeletedAtColumn)
		if err != nil {
			return nil, fmt.Errorf("wal: finding the children of %s %q in %s: %w", child.ParentTable, parentID, child.TableName, err)
		}
		out := make([]childRow, 0, len(found))
		for _, f := range found {
			r := childRow{id: string(f[0]), deleted: string(f[1]) == "t"}
			if r.row, err = decodeRow(string(f[2])); err != nil {
				return nil, fmt.Errorf("wal: decoding a child row of %s: %w", child.TableName, err)
			}
			out = append(out, r)
		}
		return out, nil
	}
	rows, err := b.tx.QueryContext(b.ctx, q, parentID, child.DeletedAtColumn)
	if err != nil {
		return nil, fmt.Errorf("wal: finding the children of %s %q in %s: %w", child.ParentTable, parentID, child.TableName, err)
	}
	defer rows.Close()
	var out []childRow
	for rows.Next() {
		var (
			r   childRow
			doc string
		)
		if err := rows.Scan(&r.id, &r.deleted, &doc); err != nil {
			return nil, fmt.Errorf("wal: finding children in %s: %w", child.TableName, err)
		}
		if r.row, err = decodeRow(doc); err != nil {
			return nil, fmt.Errorf("wal: decoding a child row of %s: %w", child.TableName, err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// recordID returns the SQL text of the record id of the row alias of
// table cfg: its key as PostgreSQL prints it, as decoded changes carry it
// (see pgcatalog.RecordID; a char(n) key is padded, its ::text is not).
func (a *applier) recordID(ctx context.Context, db synchro.DB, cfg *synchro.TableConfig, alias string) (string, error) {
	t, err := a.keyTypes.Get(ctx, db, cfg.TableName, cfg.IDColumn)
	if err != nil {
		return "", fmt.Errorf("wal: reading the key type of %s: %w", cfg.TableName, err)
	}
	return pgcatalog.RecordID(alias+"."+pgident.Quote(cfg.IDColumn), t), nil
}

// columnType returns a column's SQL type as format_type prints it, read
// from the catalog once per session.
func (a *applier) columnType(ctx context.Context, db synchro.DB, table, column string) (string, error) {
	t, err := a.columnTypes.Get(ctx, db, table, column)
	if err != nil {
		return "", fmt.Errorf("wal: reading the type of %s.%s: %w", table, column, err)
	}
	return t, nil
}

// decodeRow parses a row read as JSON (row_to_json), keeping numbers exact.
func decodeRow(doc string) (rowValues, error) {
	var row rowValues
	dec := json.NewDecoder(strings.NewReader(doc))
	dec.UseNumber()
	if err := dec.Decode(&row); err != nil {
		return nil, err
	}
	return row, nil
}

// truncate deletes every record of the tables from every bucket.
func (b *batch) truncate(tables []string) error {
	for _, table := range tables {
		rows, err := b.tx.QueryContext(b.ctx, store.TableRecords, table)
		if err != nil {
			return fmt.Errorf("wal: reading the records of truncated table %s: %w", table, err)
		}
		var ids []string
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return fmt.Errorf("wal: reading the records of truncated table %s: %w", table, err)
			}
			ids = append(ids, id)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("wal: reading the records of truncated table %s: %w", table, err)
		}
		// Records of this batch that are not stored yet count too.
		for k, r := range b.recs {
			if r.loaded && k.table == table && !slices.Contains(ids, k.id) {
				ids = append(ids, k.id)
			}
		}
		slices.Sort(ids)
		recs := make([]*record, len(ids))
		for i, id := range ids {
			recs[i] = b.rec(recKey{table, id})
		}
		if err := b.load(recs); err != nil {
			return err
		}
		cfg := b.a.tables[table]
		for _, id := range ids {
			if err := b.move(cfg, recKey{table, id}, nil, synchro.OpDelete); err != nil {
				return err
			}
		}
	}
	return nil
}

// flush writes the batch's changelog rows, edge changes, rule failures and
// the position end, and announces the buckets written.
func (b *batch) flush(end pglogrepl.LSN) error {
	if err := b.write(false); err != nil {
		return err
	}
	if err := b.notify(); err != nil {
		return err
	}
	if end != 0 {
		if _, err := b.tx.ExecContext(b.ctx, store.RecordPosition, b.a.slot, int64(end)); err != nil {
			return fmt.Errorf("wal: recording the position: %w", err)
		}
	}
	return nil
}

// flushPart writes what a backfill's batch holds (its edge changes and
// rule failures; its changelog rows go to the transaction's temporary
// table, see store.CreateBackfillStash), keeps what the end of the
// transaction needs of it (batch.written), and forgets the rest: its
// records, whose edges a later lookup reads back from bucket_edges in the
// same transaction. A record of existing rows then holds about one part,
// not every row of its tables (about 450 bytes a row; BenchmarkBackfill).
func (b *batch) flushPart() error {
	if err := b.write(true); err != nil {
		return err
	}
	w := &b.written
	for _, r := range b.rows {
		if w.all {
			break
		}
		if w.buckets == nil {
			w.buckets = map[string]struct{}{}
		}
		w.buckets[r.bucket] = struct{}{}
		w.all = len(w.buckets) > maxWrittenBuckets
	}
	if w.all {
		w.buckets = nil
	}
	for _, f := range b.failures {
		if w.failures == nil {
			w.failures = map[string]int64{}
		}
		w.failures[f.key.table]++
	}
	b.rows, b.failures, b.dirty = b.rows[:0], nil, b.dirty[:0]
	clear(b.recs)
	b.spare = nil // handed out again, its records would keep their state
	return nil
}

// write writes the batch's changelog rows, edge changes and rule failures.
// A part of a backfill (flushPart) stashes its changelog rows instead, and
// inserts its edges without a savepoint: one per part would make a
// subtransaction each, and past 64 of them in one transaction every
// snapshot taken on the server while it lasts costs more (the
// subtransaction cache overflows). An edge stored meanwhile by a writer
// that does not take the slot's lock is then left as it is
// (store.InsertMissingEdges).
func (b *batch) write(part bool) error {
	if w := &b.written; w.stashed && !part {
		var end int64 // the last key; identity values may skip some
		if err := b.tx.QueryRowContext(b.ctx, store.StashEnd).Scan(&end); err != nil {
			return fmt.Errorf("wal: writing the stashed changelog rows: %w", err)
		}
		for first := int64(1); first <= end; first += int64(b.a.backfillPart) {
			last := min(first+int64(b.a.backfillPart)-1, end)
			if _, err := b.tx.ExecContext(b.ctx, store.WriteStashedRows, first, last); err != nil {
				return fmt.Errorf("wal: writing the stashed changelog rows: %w", err)
			}
		}
		w.stashed = false // written; a later part would make the table again
	}
	if len(b.rows) > 0 {
		write := b.insertRows
		if part && !b.written.direct {
			write = b.stashRows
		}
		if err := write(); err != nil {
			return fmt.Errorf("wal: writing %d changelog rows: %w", len(b.rows), err)
		}
	}
	gone, added := b.edgeChanges()
	if len(gone.tables) > 0 {
		if _, err := b.tx.ExecContext(b.ctx, store.DeleteEdges, gone.tables, gone.ids, gone.buckets); err != nil {
			return fmt.Errorf("wal: deleting %d bucket edges: %w", len(gone.tables), err)
		}
	}
	if len(added.tables) > 0 {
		var err error
		if part {
			_, err = b.tx.ExecContext(b.ctx, store.InsertMissingEdges, added.tables, added.ids, added.buckets)
		} else {
			err = b.insertEdges(added)
		}
		if err != nil {
			return fmt.Errorf("wal: inserting %d bucket edges: %w", len(added.tables), err)
		}
	}
	if err := b.insertFailures(); err != nil {
		return fmt.Errorf("wal: recording %d rule failures: %w", len(b.failures), err)
	}
	return nil
}

// stashRows writes the batch's changelog rows, in their order, into the
// transaction's temporary table (created at the first part that has some),
// from which the last write moves them into synchro.changelog. A role that
// may not create temporary tables writes them into synchro.changelog at
// once instead: right, but holding its lock from then on (see
// store.CreateBackfillStash).
func (b *batch) stashRows() error {
	w := &b.written
	if !w.stashed {
		var may bool
		if err := b.tx.QueryRowContext(b.ctx, store.CanStash).Scan(&may); err != nil {
			return err
		}
		if !may {
			w.direct = true
			b.a.logger.InfoContext(b.ctx, "wal: the role may not create temporary tables (TEMPORARY on the database): a record of existing rows writes synchro.changelog as it goes, and snapshot starts and resubscriptions wait for it to end")
			return b.insertRows()
		}
		if _, err := b.tx.ExecContext(b.ctx, store.DropBackfillStash); err != nil {
			return err
		}
		if _, err := b.tx.ExecContext(b.ctx, store.CreateBackfillStash); err != nil {
			return err
		}
	}
	buckets, tables, ids, ops := b.rowColumns()
	if _, err := b.tx.ExecContext(b.ctx, store.StashChangelogRows, buckets, tables, ids, ops); err != nil {
		return err
	}
	w.stashed = true
	return nil
}

// rowColumns returns the batch's changelog rows as the arrays of
// store.InsertChangelogRows.
func (b *batch) rowColumns() (buckets, tables, ids []string, ops []int16) {
	buckets, tables, ids = make([]string, len(b.rows)), make([]string, len(b.rows)), make([]string, len(b.rows))
	ops = make([]int16, len(b.rows))
	for i, r := range b.rows {
		buckets[i], tables[i], ids[i], ops[i] = r.bucket, r.key.table, r.key.id, int16(r.op)
	}
	return buckets, tables, ids, ops
}

// insertRows writes the batch's changelog rows in their order, which
// their seqs follow.
func (b *batch) insertRows() error {
	copied, err := b.copyInto("changelog", store.ChangelogCopyColumns, len(b.rows),
		func(i int, w *copyText) {
			r := &b.rows[i]
			w.text(r.bucket)
			w.text(r.key.table)
			w.text(r.key.id)
			w.int(int64(r.op))
		})
	if copied || err != nil {
		return err
	}
	buckets, tables, ids, ops := b.rowColumns()
	_, err = b.tx.ExecContext(b.ctx, store.InsertChangelogRows, buckets, tables, ids, ops)
	return err
}

// notify announces the buckets of the batch's changelog rows on
// synchro.ChangesChannel (see package changenote). PostgreSQL delivers the
// notifications when the transaction commits, so a pull they wake sees the
// rows; a rolled-back batch announces nothing.
//
// A NOTIFY fails when PostgreSQL's notification queue (8 GB) is full, which
// happens only when a listening session stops reading; the batch would then
// fail and capture would stall. Past 90% of the queue the notes are skipped
// instead: waiting pulls then find the changes at their next re-check.
func (b *batch) notify() error {
	w := &b.written
	if len(b.rows) == 0 && len(w.buckets) == 0 && !w.all {
		return nil
	}
	seen := make(map[string]bool, 8)
	var buckets []string
	for _, r := range b.rows {
		if !seen[r.bucket] {
			seen[r.bucket] = true
			buckets = append(buckets, r.bucket)
		}
	}
	for bucket := range w.buckets { // a backfill's earlier parts
		if !seen[bucket] {
			seen[bucket] = true
			buckets = append(buckets, bucket)
		}
	}
	notes := changenote.Encode(buckets)
	if w.all {
		notes = changenote.EncodeAll()
	}
	if _, err := b.tx.ExecContext(b.ctx, store.NotifyChanges, synchro.ChangesChannel, notes); err != nil {
		return fmt.Errorf("wal: notifying the changes of %d buckets: %w", len(buckets), err)
	}
	return nil
}

// insertFailures records the batch's rule failures without a savepoint:
// judgePayload decides which payloads jsonb surely takes, and the others
// are kept as JSON strings of their text (failpayload.go). They go in
// statements of at most maxFailureBytes of payloads each (a message to
// PostgreSQL holds at most 1 GB). Should PostgreSQL refuse a payload all
// the same, the statement fails the transaction, which capture tries
// again; the applier then keeps every payload as a string, which cannot
// fail.
func (b *batch) insertFailures() error {
	asStrings := b.a.payloadsAsStrings.Load()
	for _, fs := range failureGroups(b.failures, maxFailureBytes) {
		if err := b.insertFailureRows(fs, asStrings); err != nil {
			return err
		}
	}
	return nil
}

// maxFailureBytes bounds the payloads of one statement of insertFailures.
const maxFailureBytes = 64 << 20

// failureGroups splits fs, in order, into groups whose payloads add up to
// at most max bytes, or of one failure whose payload alone is larger.
func failureGroups(fs []ruleFailure, max int) [][]ruleFailure {
	var groups [][]ruleFailure
	for len(fs) > 0 {
		n, size := 1, len(fs[0].payload)
		for n < len(fs) && size+len(fs[n].payload) <= max {
			size += len(fs[n].payload)
			n++
		}
		groups = append(groups, fs[:n])
		fs = fs[n:]
	}
	return groups
}

// insertFailureRows records fs in one statement (see insertFailures).
func (b *batch) insertFailureRows(fs []ruleFailure, asStrings bool) error {
	n := len(fs)
	tables, ids, errs, payloads := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	ops, hows, lsns := make([]int16, n), make([]int16, n), make([]int64, n)
	for i, f := range fs {
		tables[i], ids[i], ops[i], errs[i], lsns[i] = f.key.table, f.key.id, int16(f.op), f.err, int64(f.lsn)
		hows[i] = b.a.judgePayload(f.payload)
		if hows[i] != payloadNone {
			payloads[i] = string(f.payload)
			if asStrings {
				hows[i] = payloadAsString
			}
		}
	}
	_, err := b.tx.ExecContext(b.ctx, store.InsertRuleFailures, tables, ids, ops, errs, payloads, hows, lsns)
	if class := pgerr.Class(pgerr.Code(err)); err != nil && !asStrings &&
		(class == pgerr.ClassDataException || class == pgerr.ClassProgramLimitExceeded) &&
		!b.a.payloadsAsStrings.Swap(true) {
		b.a.logger.WarnContext(b.ctx, "wal: PostgreSQL refused a rule failure's payload as jsonb; payloads are kept as JSON strings of their text from now on", "error", err)
	}
	return err
}

// edgeList is a list of bucket edges as three parallel arrays, the
// parameters of store.DeleteEdges and store.InsertEdges.
type edgeList struct{ tables, ids, buckets []string }

func (l *edgeList) add(k recKey, bucket string) {
	l.tables, l.ids, l.buckets = append(l.tables, k.table), append(l.ids, k.id), append(l.buckets, bucket)
}

// edgeChanges compares the buckets of each record whose buckets changed in
// the batch with those stored: gone lists the stored edges it no longer
// has, added the edges not stored yet. A record that moved and came back
// changes nothing; the edges a record keeps are not rewritten.
func (b *batch) edgeChanges() (gone, added edgeList) {
	n := len(b.dirty)
	added = edgeList{make([]string, 0, n), make([]string, 0, n), make([]string, 0, n)}
	for _, r := range b.dirty {
		k, stored, now := r.key, r.stored, r.edges
		for _, bucket := range stored {
			if _, found := slices.BinarySearch(now, bucket); !found {
				gone.add(k, bucket)
			}
		}
		for _, bucket := range now {
			if _, found := slices.BinarySearch(stored, bucket); !found {
				added.add(k, bucket)
			}
		}
	}
	return gone, added
}

// insertEdges inserts edges that are not stored: the batch read the stored
// ones under the slot's lock, and only the batch's writer adds edges under
// it. The plain insert (by COPY, or store.InsertEdges) costs about 40%
// less than store.InsertMissingEdges, which checks every edge before
// inserting it.
// Should an edge be there all the same (written by a writer that does not take
// the lock, such as a consumer of another slot capturing the same table),
// the insert is undone to a savepoint and done again leaving such edges as
// they are, rather than failing the batch, which would stop capture.
func (b *batch) insertEdges(l edgeList) error {
	if _, err := b.tx.ExecContext(b.ctx, `SAVEPOINT synchro_edges`); err != nil {
		return err
	}
	copied, err := b.copyInto("bucket_edges", store.EdgesCopyColumns, len(l.ids),
		func(i int, w *copyText) { w.text(l.tables[i]); w.text(l.ids[i]); w.text(l.buckets[i]) })
	if !copied && err == nil {
		_, err = b.tx.ExecContext(b.ctx, store.InsertEdges, l.tables, l.ids, l.buckets)
	}
	if pgerr.Code(err) != pgerr.UniqueViolation {
		return err
	}
	b.a.logger.DebugContext(b.ctx, "wal: some bucket edges were stored meanwhile; inserting the others", "error", err)
	b.a.signals.edgesRaced.signal(struct{}{})
	if _, err := b.tx.ExecContext(b.ctx, `ROLLBACK TO SAVEPOINT synchro_edges`); err != nil {
		return err
	}
	_, err = b.tx.ExecContext(b.ctx, store.InsertMissingEdges, l.tables, l.ids, l.buckets)
	return err
}
