package synchro

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/synchrosync/synchro/internal/pgerr"
	"github.com/synchrosync/synchro/internal/store"
)

// maxPushRecords is the most records one push may carry. A larger push is
// refused as a whole before anything is applied; the client splits it.
const maxPushRecords = 1000

// maxRecordIDLen bounds a pushed record id.
const maxRecordIDLen = 1024

// Reason codes of PushResult.ReasonCode.
const (
	reasonAlreadyDeleted     = "already_deleted"
	reasonRecordExists       = "record_exists"
	reasonRecordDeleted      = "record_deleted"
	reasonServerWon          = "server_won_conflict"
	reasonTableNotRegistered = "table_not_registered"
	reasonTableReadOnly      = "table_read_only"
	reasonInvalidOperation   = "invalid_operation"
	reasonInvalidData        = "invalid_data"
	reasonRecordNotFound     = "record_not_found"
	reasonOwnershipViolation = "ownership_violation"
	reasonParentNotFound     = "parent_not_found"
	reasonParentDeleted      = "parent_deleted"
	reasonParentNeverArrived = "parent_never_arrived"
	reasonCreateFailed       = "create_failed"
	reasonUpdateFailed       = "update_failed"
	reasonDeleteFailed       = "delete_failed"
	reasonResurrectionFailed = "resurrection_failed"
	reasonInternalError      = "internal_error"
)

// Push processes client changes within a transaction.
//
// The request runs in one transaction, with the caller's user id set for
// row-level security (SetAuthContext). Each record gets its own outcome: a
// failing record never changes another record's outcome, and records listed
// as accepted are committed when Push returns. Records are applied in request
// order, except the creates retried for a missing parent (below).
//
// Per record, in order: the table must be registered (table_not_registered)
// and pushable (table_read_only); the operation must be "create", "update" or
// "delete" (invalid_operation); the id must be non-empty, and a create's id
// in a table keyed by char(n) must be the key as PostgreSQL prints it,
// padded to n characters (see "Pushed values" in the package
// documentation); data must be a JSON object (invalid_data).
//
// Data may be the whole row, as the device SDKs send it. Keys naming the
// server-managed timestamp columns (the configured UpdatedAtColumn and
// DeletedAtColumn, also when the table lacks them and the schema contract
// made them up, and created_at, updated_at and deleted_at) are accepted and
// their values ignored: the server sets them. The primary key may appear
// when it equals the record id. The owner column and the parent foreign key
// may be set by a create (the owner only to the caller) and repeated
// unchanged by an update. A column of the application's ProtectedColumns may
// appear on a create only as null or as the default the schema contract
// gives devices (for an array, PostgreSQL's text of the default, or the
// array in JSON), and on an update only with its stored
// value (compared as JSON values: numbers by value, timestamps as
// instants, an array given as PostgreSQL's text as the array PostgreSQL
// reads from it); both are then
// ignored. On an update whose base_updated_at names an older version than
// the stored row (the device's copy is stale: the server changed the row
// since), a differing owner, parent or protected value is the device's old
// copy, not a change: it is ignored too. Every other key must be a synced column of the
// table: an unknown column, a column outside SyncColumns, or a changed
// protected, owner or parent column is refused as invalid_data naming the
// column.
//
// The row is then locked (FOR UPDATE) and the engine checks that the caller
// owns it: the configured OwnershipResolver must place it in the caller's
// bucket "user:<id>" (ownership_violation otherwise), whatever row-level
// security the database role is subject to. With the default JoinResolver
// that is the owner column, or the owner of the root of the parent chain;
// a table that buckets by another column (BucketByColumn other than
// OwnerColumn, or a BucketFunction) needs an OwnershipResolver that returns
// "user:<id>" for the records that user may write. A create of an existing live row
// is a conflict (record_exists); a create of a soft-deleted row brings it
// back (resurrection); an update of a soft-deleted row is a conflict
// (record_deleted). Updates and resurrections go through the
// ConflictResolver, with the row's updated-at as the server time; when the
// server wins, the record is a conflict (server_won_conflict) carrying the
// server's row. A table without an updated-at column has no conflict
// resolution: the last push wins. Deletes always win; they are soft when the
// table has a deleted-at column and hard otherwise.
//
// The updated-at column is the row's version, and the engine writes it;
// clients never do. A write through Push sets it to the record's edit time
// (client_updated_at, capped at the database clock at the start of the push
// plus Config.ClockSkewTolerance, or less, see there; the start of the push
// when the record has none), or to just after the current version when that
// is not earlier, so that a row's versions only move forward and each names
// one state of the row: a device sends the updated_at of its copy as
// base_updated_at, and the result's server_updated_at is the new version. A
// soft delete sets deleted-at and updated-at to its version; a table without
// an updated-at column gets deleted-at from the database clock. Conflicts
// are thus decided by edit time, whatever the order the edits arrive in (see
// LWWResolver and Conflict), and within one push a record of a row that an
// earlier record of the push wrote is taken as made on that write.
//
// Each value must be in one of the JSON forms its column's type accepts
// (see "Pushed values" in the package documentation): any other is refused
// as invalid_data naming the column and the form it expects. Accepted
// values keep their exact values: integers beyond 2^53, numerics, JSON,
// arrays, bytes, enums and timestamps.
//
// A create whose parent row (ParentFKCol) the caller cannot read is
// retried after the other records of the push, so a parent that comes
// later in the same request is found; so is a create or update that a
// single-column foreign key refuses when the key refers to the primary key
// of a registered table clients push to (the row may come from the device;
// a key to any other table is refused for good: create_failed or
// update_failed, terminal). If the row is still missing: parent_deleted
// (rejected_terminal) when the changelog of the client's buckets records
// its deletion, or when the client's acknowledged checkpoint is below the
// compaction boundary (it must snapshot again, which starts its queue
// afresh); otherwise parent_not_found (rejected_retryable), since the
// device may push it later. A parent of another user that row-level
// security hides is answered like a missing one, so that a push never
// tells whether another user's row exists (with a role that bypasses RLS
// the engine sees it: ownership_violation). A record that has waited for
// its parent through 10 pushes of its client that applied nothing at all,
// over at least 10 minutes, is answered parent_never_arrived
// (rejected_terminal): the device's queue evidently never delivers the
// parent (the SDKs resend the same batch after a retryable answer), and it
// must not stay stuck. Pushes that apply anything do not count, so a
// draining backlog is never cut short.
//
// rejected_terminal means the record can never succeed as sent (devices
// drop it): constraint violations, bad values and row-level security
// refusals. rejected_retryable means it may succeed later: serialization
// failures, deadlocks, lock timeouts and the like, a parent not there yet,
// a resolver or ownership resolver that failed. The synchrohttp package
// documents every reason code with its status and the device's way out.
//
// The response's Checkpoint is the checkpoint the client last acknowledged
// (sent in a pull, or reached by a completed snapshot), 0 when none: never a
// page that was only delivered, since the client may have lost it.
//
// A request with more than 1000 records is refused whole. The user id is
// first spelled as PostgreSQL prints the owner columns' type (see
// Config's package documentation on owner ids). ErrClientNotRegistered, ErrStaleClient and
// ErrSchemaMismatch refuse the whole request; a database failure that breaks
// the transaction fails the request with nothing applied. A client that
// compaction marked inactive may still push.
//
// Hooks.OnConflict is called after each consultation of the resolver whose
// record was decided (a write that then fails still counts), and
// Hooks.OnPushAccepted inside the transaction before it commits; its error
// rolls the whole push back.
//
// Consecutive records that do not depend on each other are processed
// together: their rows are locked with one statement per table and written
// with one statement per table and column set. When such a statement fails,
// those records are redone one at a time, each under its own savepoint, so
// the outcome is the same as processing them one by one.
//
// Lock order: concurrent pushes do not deadlock one another, whatever the
// order of their records. Before its first record, a push locks (FOR
// UPDATE) the rows it may lock later: the row of each record, and the row
// a create names through its parent key (ParentFKCol) or through a
// single-column foreign key to a table clients push to (or to the parent
// table of one). It takes them in one order, the same for every push:
// table by table in the registry's dependency order (a table after its
// ParentTable and Dependencies, ties by name), the rows of a table by
// primary key, one statement per table. Pushes then wait for one another
// only there, in that order, never in a cycle. Rows the caller cannot see
// under row-level security are not locked, and ids that are not valid keys
// are left out; if PostgreSQL refuses the statement all the same (an id of
// another key type, a lock timeout), the push goes on without it, each
// record locking its own rows as before, so the lock ahead never changes an
// outcome. A create locks its parent row for the rest of the push, so
// pushes creating children under one parent take turns. Not covered: the
// row a foreign key other than the parent key names after an update changes
// it, the child rows PostgreSQL's checks lock when a row with children is
// hard-deleted, two pushes creating the same new ids in opposite orders,
// and whatever triggers, hooks and resolvers lock.
func (e *Engine) Push(ctx context.Context, userID string, req *PushRequest) (*PushResponse, error) {
	start := e.metrics.start()
	resp, err := e.push(ctx, userID, req)
	e.metrics.pushed(ctx, start, resp, err)
	return resp, err
}

// push is Push without its metrics.
func (e *Engine) push(ctx context.Context, userID string, req *PushRequest) (*PushResponse, error) {
	if req == nil {
		return nil, badRequest("synchro: nil PushRequest")
	}
	if err := checkIdentity(userID, req.ClientID); err != nil {
		return nil, err
	}
	if len(req.Changes) > maxPushRecords {
		return nil, badRequest("synchro: push of %d records exceeds the limit of %d per request", len(req.Changes), maxPushRecords)
	}
	m, err := e.schema.get(ctx)
	if err != nil {
		return nil, err
	}
	if err := m.check(req.SchemaVersion, req.SchemaHash, false); err != nil {
		return nil, err
	}
	userID = m.userID(userID)

	tx, err := e.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("synchro: push: %w", err)
	}
	defer func() { _ = tx.Rollback() }()

	client, err := lockClientForPush(ctx, tx, userID, req.ClientID)
	if err != nil {
		return nil, err
	}
	if err := e.staleCheck(ctx, client.clientRow); err != nil {
		return nil, err
	}
	if err := SetAuthContext(ctx, tx, userID); err != nil {
		return nil, err
	}
	if err := touchClientPush(ctx, tx, client.ID); err != nil {
		return nil, err
	}
	if _, err := tx.ExecContext(ctx, "SAVEPOINT "+recordSavepoint); err != nil {
		return nil, fmt.Errorf("synchro: push: %w", err)
	}

	p := &pusher{e: e, tx: tx, m: m, userID: userID, clientID: req.ClientID, client: client, written: map[parentKey][]time.Time{}}
	items := make([]*pushItem, len(req.Changes))
	for i := range req.Changes {
		items[i] = p.prepare(&req.Changes[i])
	}
	p.checkCharIDs(items)
	if err := p.lockAhead(ctx, items); err != nil {
		return nil, fmt.Errorf("synchro: push: %w", err)
	}
	for start := 0; start < len(items); {
		end := segmentEnd(items, start)
		if err := p.runSegment(ctx, items[start:end]); err != nil {
			return nil, fmt.Errorf("synchro: push: %w", err)
		}
		start = end
	}
	if err := p.retryDeferred(ctx, items); err != nil {
		return nil, fmt.Errorf("synchro: push: %w", err)
	}
	if err := p.boundParentWait(ctx, items); err != nil {
		return nil, err
	}

	resp := &PushResponse{Accepted: []PushResult{}, Rejected: []PushResult{}}
	var accepted []AcceptedRecord
	for _, it := range items {
		if it.res.Status == PushStatusApplied {
			resp.Accepted = append(resp.Accepted, it.res)
			accepted = append(accepted, AcceptedRecord{ID: it.rec.ID, TableName: it.rec.TableName, Operation: it.op})
		} else {
			resp.Rejected = append(resp.Rejected, it.res)
		}
	}
	if len(accepted) > 0 && e.hooks.OnPushAccepted != nil {
		if err := e.hooks.OnPushAccepted(ctx, tx, accepted); err != nil {
			return nil, fmt.Errorf("synchro: OnPushAccepted hook: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("synchro: committing push: %w", err)
	}
	if client.ackedSeq != nil {
		// What the client acknowledged, never what was only delivered: a
		// client that lost its last pull's answer must not skip it.
		resp.Checkpoint = *client.ackedSeq
	}
	resp.ServerTime = time.Now().UTC()
	resp.SchemaVersion, resp.SchemaHash = m.version, m.hash
	return resp, nil
}

// pusher applies the records of one push inside its transaction.
type pusher struct {
	e        *Engine
	tx       *sql.Tx
	m        *manifest
	userID   string
	clientID string
	// client is the pushing client's row, locked for the push.
	client *pushClient
	// dirty means a write succeeded since the savepoint was set, so the
	// savepoint must be moved forward before the next statement that may
	// have to be undone on its own.
	dirty bool
	// conflicts are the resolver consultations of the current attempt,
	// reported to Hooks.OnConflict once the attempt stands.
	conflicts []conflictEvent
	// owners caches, while runTogether decides, the owner a parent chain
	// leads to, per table and parent key: all of a segment's decisions see
	// the rows as they were before its writes, so one lookup per parent
	// serves every record under it. Nil outside of those decisions.
	owners map[parentKey]chainOwner
	// written holds the versions this push gave each row it wrote (see
	// baseVersion), by rowKey.
	written map[parentKey][]time.Time
}

// parentKey names a parent row as a child table refers to it.
type parentKey struct{ table, fk string }

// chainOwner is what JoinResolver.ownerOf answered for a parent key.
type chainOwner struct {
	owner string
	ok    bool
}

type conflictEvent struct {
	c   Conflict
	res Resolution
}

// writeKind is what a decided record does to its row.
type writeKind int

const (
	writeNone      writeKind = iota // decided without a write: res is final
	writeInsert                     // insert a new row
	writeUpdate                     // update a live row
	writeResurrect                  // update a soft-deleted row and clear its deleted-at
	writeDelete                     // soft or hard delete
)

// pushItem is one pushed record on its way through the push.
type pushItem struct {
	rec    *PushRecord
	info   *tableInfo // nil when the record was rejected before any lookup
	op     Operation
	fields map[string]json.RawMessage // validated data (nil for deletes)
	// protected holds the pushed values of the application's
	// ProtectedColumns on an update: accepted only when they equal the
	// stored ones.
	protected map[string]json.RawMessage
	res       PushResult
	// final is set once res is the record's outcome.
	final bool
	// deferrable means the record failed for want of its parent row (or
	// the row a foreign key refers to), named by awaits, which a later
	// record of the same push may create: it is tried again after the
	// others.
	deferrable bool
	awaits     parentKey

	// Set by decide for a record that writes.
	kind writeKind
	cols []string // the written columns, sorted (inserts and updates)
}

// recordFailure reports that a statement of a record failed in the
// database: the record's outcome has been decided, the push goes on.
type recordFailure struct {
	status, reason, message string
	// fromDatabase means a statement failed: the transaction must be
	// rolled back to the savepoint before anything else runs.
	fromDatabase bool
	// code is the SQLSTATE of a database failure, and constraint the name
	// of the constraint it names, if any.
	code, constraint string
	// awaits is the row a parent_not_found record waits for.
	awaits parentKey
}

func terminal(reason, format string, args ...any) *recordFailure {
	return &recordFailure{status: PushStatusRejectedTerminal, reason: reason, message: fmt.Sprintf(format, args...)}
}

func (it *pushItem) fail(f *recordFailure) {
	it.res.Status, it.res.ReasonCode, it.res.Message = f.status, f.reason, f.message
	it.final, it.kind = true, writeNone
	it.deferrable = f.reason == reasonParentNotFound
	it.awaits = f.awaits
}

// A record may wait for its parent (parent_not_found) through
// parentWaitStalls pushes of its client that apply nothing at all, over at
// least parentWaitTime; the next push of it is answered parent_never_arrived
// (terminal). The SDKs resend the same batch after a retryable answer
// before anything else, so a record whose parent is beyond that batch, or
// was dropped on the device, would otherwise stop the device for good. A
// push that applies anything (the device's queue moves) does not count, so
// a backlog that drains is never cut short.
const (
	parentWaitStalls = 10
	parentWaitTime   = 10 * time.Minute
)

// boundParentWait gives up on the records still waiting for their parent
// that have waited long enough, and records on the client row which records
// wait, through how many stalled pushes, since when.
func (p *pusher) boundParentWait(ctx context.Context, items []*pushItem) error {
	c := p.client
	stalled := true
	for _, it := range items {
		if it.res.Status == PushStatusApplied {
			stalled = false
			break
		}
	}
	before := map[parentKey]parentWait{}
	for _, w := range c.waits {
		before[p.rowKey(w.Table, w.ID)] = w
	}
	var after []parentWait
	for _, it := range items {
		if it.res.Status != PushStatusRejectedRetryable || it.res.ReasonCode != reasonParentNotFound {
			continue
		}
		w, seen := before[p.rowKey(it.info.cfg.TableName, it.rec.ID)]
		if !seen {
			w = parentWait{Table: it.info.cfg.TableName, ID: it.rec.ID, Since: c.now}
		}
		if stalled {
			w.Stalled++
		}
		if w.Stalled >= parentWaitStalls && c.now.Sub(w.Since) >= parentWaitTime {
			it.res.Status, it.res.ReasonCode = PushStatusRejectedTerminal, reasonParentNeverArrived
			it.res.Message = fmt.Sprintf("%s; it has waited since %s, through %d pushes that applied nothing: given up",
				it.res.Message, w.Since.UTC().Format(time.RFC3339), w.Stalled)
			continue
		}
		after = append(after, w)
	}
	if len(after) == 0 && len(c.waits) == 0 {
		return nil
	}
	if after == nil {
		after = []parentWait{}
	}
	doc, err := json.Marshal(after)
	if err != nil {
		return fmt.Errorf("synchro: push: encoding the parent waits: %w", err)
	}
	if _, err := p.tx.ExecContext(ctx, store.RecordParentWaits, c.ID, string(doc)); err != nil {
		return fmt.Errorf("synchro: push: recording the parent waits: %w", err)
	}
	return nil
}

// retryDeferred tries the records that failed for want of their parent row
// (or the row a foreign key refers to) again, after every other record of
// the push: a device's queue may hold a child before its parent (the SDKs
// order it by edit time, and editing a parent after creating its child
// moves the parent behind). Each such record is tried once more in request
// order, then again only when the row it waits for has been applied, so
// chains of any depth settle in work linear in the records. A record whose
// row another record of the push also names is not retried, so no record's
// outcome depends on being moved behind a record of the same row.
func (p *pusher) retryDeferred(ctx context.Context, items []*pushItem) error {
	named := map[parentKey]int{}
	for _, it := range items {
		if it.info != nil {
			named[p.rowKey(it.info.cfg.TableName, it.rec.ID)]++
		}
	}
	eligible := func(it *pushItem) bool {
		return it.deferrable && named[p.rowKey(it.info.cfg.TableName, it.rec.ID)] == 1
	}
	var queue []*pushItem
	for _, it := range items {
		if eligible(it) {
			queue = append(queue, it)
		}
	}
	waiters := map[parentKey][]*pushItem{}
	for len(queue) > 0 {
		it := queue[0]
		queue = queue[1:]
		it.reset()
		if err := p.runOne(ctx, it); err != nil {
			return fmt.Errorf("record %s %q: %w", it.rec.TableName, it.rec.ID, err)
		}
		switch {
		case it.res.Status == PushStatusApplied:
			k := p.rowKey(it.info.cfg.TableName, it.rec.ID)
			queue = append(queue, waiters[k]...)
			delete(waiters, k)
		case eligible(it):
			k := p.rowKey(it.awaits.table, it.awaits.fk)
			waiters[k] = append(waiters[k], it)
		}
	}
	return nil
}

// rowKey names a row of a registered table by its key in the text form
// PostgreSQL prints it in, so that two spellings of one key (an upper-case
// UUID) meet.
func (p *pusher) rowKey(table, id string) parentKey {
	if t := p.m.table(table); t != nil {
		id = formOfColumn(t.column(t.pk)).canonical(id)
		if n := t.charKeyLength(); n > 0 {
			id, _ = charKey(id, n) // a longer id names no row: kept as it is
		}
	}
	return parentKey{table: table, fk: id}
}

// prepare runs the checks that need no database.
func (p *pusher) prepare(rec *PushRecord) *pushItem {
	it := &pushItem{rec: rec, res: PushResult{ID: rec.ID, TableName: rec.TableName, Operation: rec.Operation}}
	info := p.m.table(rec.TableName)
	if info == nil {
		it.fail(terminal(reasonTableNotRegistered, "table %q is not registered", rec.TableName))
		return it
	}
	if info.cfg.PushPolicy != PushPolicyOwnerOnly {
		it.fail(terminal(reasonTableReadOnly, "table %q is read-only", rec.TableName))
		return it
	}
	op, ok := ParseOperation(rec.Operation)
	if !ok {
		it.fail(terminal(reasonInvalidOperation, "unknown operation %q (want create, update or delete)", rec.Operation))
		return it
	}
	it.info, it.op = info, op
	if rec.ID == "" || len(rec.ID) > maxRecordIDLen || !utf8.ValidString(rec.ID) {
		it.fail(terminal(reasonInvalidData, "record id must be non-empty valid UTF-8 of at most %d bytes", maxRecordIDLen))
		return it
	}
	if op != OpDelete {
		fields, err := decodeData(rec.Data)
		var protected map[string]json.RawMessage
		if err == nil {
			protected, err = checkColumns(info, rec.ID, op, fields)
		}
		if err == nil {
			err = convertFields(info, fields, protected)
		}
		if err != nil {
			it.fail(terminal(reasonInvalidData, "%v", err))
			return it
		}
		it.fields, it.protected = fields, protected
	}
	return it
}

// checkCharIDs refuses the creates of rows keyed by a char(n) whose id is
// not the key as PostgreSQL prints it, padded to n characters (charKey):
// every later delivery of the row (pull, snapshot) names it so, and a
// device that kept its own spelling ("a" for "a   ") would hold the row
// under two ids. Updates and deletes are not checked, since they find the
// row by key whatever its spelling.
func (p *pusher) checkCharIDs(items []*pushItem) {
	for _, it := range items {
		if it.final || it.op != OpInsert { // a final record may have no table (it.info nil)
			continue
		}
		n := it.info.charKeyLength()
		if n == 0 {
			continue
		}
		switch want, ok := charKey(it.rec.ID, n); {
		case !ok:
			it.fail(terminal(reasonInvalidData, "record id %q is longer than key %q (character(%d)): at most %d characters", it.rec.ID, it.info.pk, n, n))
		case want != it.rec.ID:
			it.fail(terminal(reasonInvalidData, "record id %q is not key %q (character(%d)) as PostgreSQL prints it: send the id padded with spaces to %d characters, %q",
				it.rec.ID, it.info.pk, n, n, want))
		}
	}
}

// segmentEnd returns the end of the run of records starting at start that
// can be decided together: no record in it depends on an earlier one in the
// run (the same row twice, or a row whose table has an ancestor table with
// an earlier record in the run, since ownership is decided through the
// parents).
func segmentEnd(items []*pushItem, start int) int {
	type key struct{ table, id string }
	seenRows := map[key]bool{}
	seenTables := map[string]bool{}
	for i := start; i < len(items); i++ {
		it := items[i]
		if it.final {
			continue
		}
		k := key{it.info.cfg.TableName, it.rec.ID}
		if i > start && (seenRows[k] || slices.ContainsFunc(it.info.chain.ancestors(), func(a *TableConfig) bool { return seenTables[a.TableName] })) {
			return i
		}
		seenRows[k] = true
		seenTables[k.table] = true
	}
	return len(items)
}

// runSegment processes records that do not depend on each other: first all
// together, and when a statement fails, one at a time.
func (p *pusher) runSegment(ctx context.Context, items []*pushItem) error {
	var open []*pushItem
	for _, it := range items {
		if !it.final {
			open = append(open, it)
		}
	}
	if len(open) == 0 {
		return nil
	}
	if err := p.freshSavepoint(ctx); err != nil {
		return err
	}
	if len(open) > 1 {
		ok, err := p.runTogether(ctx, open)
		if err != nil || ok {
			return err
		}
		// A statement failed: everything since the savepoint is undone.
		if _, err := p.tx.ExecContext(ctx, "ROLLBACK TO SAVEPOINT "+recordSavepoint); err != nil {
			return fmt.Errorf("rolling back to savepoint: %w", err)
		}
		for _, it := range open {
			it.reset()
		}
	}
	for _, it := range open {
		if err := p.runOne(ctx, it); err != nil {
			return fmt.Errorf("record %s %q: %w", it.rec.TableName, it.rec.ID, err)
		}
	}
	return nil
}

// reset returns an item to its prepared state, for a second attempt.
func (it *pushItem) reset() {
	it.res = PushResult{ID: it.rec.ID, TableName: it.rec.TableName, Operation: it.rec.Operation}
	it.final, it.kind, it.cols, it.deferrable, it.awaits = false, writeNone, nil, false, parentKey{}
}

// freshSavepoint makes sure the standing savepoint sits after the last
// successful write, so that rolling back to it undoes only what follows.
func (p *pusher) freshSavepoint(ctx context.Context) error {
	if !p.dirty {
		return nil
	}
	if _, err := p.tx.ExecContext(ctx, "RELEASE SAVEPOINT "+recordSavepoint+"; SAVEPOINT "+recordSavepoint); err != nil {
		return fmt.Errorf("moving savepoint: %w", err)
	}
	p.dirty = false
	return nil
}

// recordSavepoint is the savepoint each record (or group of records) can be
// rolled back to without losing the records before it.
const recordSavepoint = "synchro_record"

// flushConflicts reports the resolver consultations of an attempt that
// stands.
func (p *pusher) flushConflicts(ctx context.Context) {
	if p.e.hooks.OnConflict != nil {
		for _, ev := range p.conflicts {
			p.e.hooks.OnConflict(ctx, ev.c, ev.res)
		}
	}
	p.conflicts = p.conflicts[:0]
}

// runOne processes one record under the savepoint.
func (p *pusher) runOne(ctx context.Context, it *pushItem) error {
	if err := p.freshSavepoint(ctx); err != nil {
		return err
	}
	p.conflicts = p.conflicts[:0]
	fail, err := p.runOneAttempt(ctx, it, true)
	if err != nil {
		return err
	}
	if fail != nil {
		if _, err := p.tx.ExecContext(ctx, "ROLLBACK TO SAVEPOINT "+recordSavepoint); err != nil {
			return fmt.Errorf("rolling back to savepoint: %w", err)
		}
		if fail.code == pgerr.ForeignKeyViolation && it.kind != writeDelete {
			// The row the key refers to may still come.
			ref, err := p.missingReference(ctx, it, fail.constraint)
			if err != nil {
				return err
			}
			if ref != nil && ref.fromDatabase {
				if _, err := p.tx.ExecContext(ctx, "ROLLBACK TO SAVEPOINT "+recordSavepoint); err != nil {
					return fmt.Errorf("rolling back to savepoint: %w", err)
				}
			}
			if ref != nil {
				fail = ref
			}
		}
		it.fail(fail)
	}
	p.flushConflicts(ctx)
	return nil
}

// runOneAttempt locks, decides and writes one record. When its insert loses
// a race with a concurrent create of the same row and retry is set, it runs
// once more and reports the row that won.
func (p *pusher) runOneAttempt(ctx context.Context, it *pushItem, retry bool) (*recordFailure, error) {
	rows, fail, err := p.lockRows(ctx, it.info, []string{it.rec.ID})
	if fail != nil || err != nil {
		return fail, err
	}
	if fail, err := p.decide(ctx, it, rows[it.rec.ID]); fail != nil || err != nil {
		return fail, err
	}
	if it.kind == writeNone {
		return nil, nil
	}
	fail, err = p.write(ctx, []*pushItem{it})
	if retry && fail != nil && it.kind == writeInsert && fail.uniqueViolation() {
		// A concurrent push created the same record first: report what is
		// there now, as for any create of an existing record.
		if _, err := p.tx.ExecContext(ctx, "ROLLBACK TO SAVEPOINT "+recordSavepoint); err != nil {
			return nil, fmt.Errorf("rolling back to savepoint: %w", err)
		}
		it.reset()
		p.conflicts = p.conflicts[:0]
		return p.runOneAttempt(ctx, it, false)
	}
	return fail, err
}

// runTogether locks, decides and writes records that do not depend on each
// other with as few statements as possible. It reports false when a
// statement failed in the database; the caller then rolls back and redoes
// the records one at a time.
func (p *pusher) runTogether(ctx context.Context, items []*pushItem) (bool, error) {
	p.conflicts = p.conflicts[:0]
	var tables []*tableInfo
	ids := map[*tableInfo][]string{}
	for _, it := range items {
		if _, seen := ids[it.info]; !seen {
			tables = append(tables, it.info)
		}
		ids[it.info] = append(ids[it.info], it.rec.ID)
	}
	for _, info := range tables {
		if info.textKey() || len(ids[info]) < 2 {
			continue
		}
		// Two spellings of one key ('042' and '42') are one row: such
		// records depend on each other and go one at a time.
		var distinct int
		if err := p.tx.QueryRowContext(ctx, info.distinctKeysSQL(), ids[info]).Scan(&distinct); err != nil {
			var pgErr *pgconn.PgError
			if errors.As(err, &pgErr) {
				return false, nil // e.g. an id that is not a valid key
			}
			return false, err
		}
		if distinct < len(ids[info]) {
			return false, nil
		}
	}
	rows := map[*tableInfo]map[string]*lockedRow{}
	for _, info := range tables {
		r, fail, err := p.lockRows(ctx, info, ids[info])
		if err != nil || fail != nil {
			return false, err
		}
		rows[info] = r
	}
	p.owners = map[parentKey]chainOwner{}
	defer func() { p.owners = nil }()
	for _, it := range items {
		fail, err := p.decide(ctx, it, rows[it.info][it.rec.ID])
		if err != nil {
			return false, err
		}
		if fail != nil {
			if fail.fromDatabase {
				return false, nil // the transaction is aborted: redo one at a time
			}
			it.fail(fail)
		}
	}
	// Consecutive writes of one table, kind and column set go in one
	// statement; the statements run in record order, so that a record may
	// refer to an earlier one (a foreign key) exactly as one by one.
	var group []*pushItem
	flush := func() (bool, error) {
		if len(group) == 0 {
			return true, nil
		}
		fail, err := p.write(ctx, group)
		group = group[:0]
		return fail == nil && err == nil, err
	}
	for _, it := range items {
		if it.kind == writeNone {
			continue
		}
		if len(group) > 0 {
			last := group[len(group)-1]
			if last.info != it.info || last.kind != it.kind || !slices.Equal(last.cols, it.cols) {
				if ok, err := flush(); !ok || err != nil {
					return false, err
				}
			}
		}
		group = append(group, it)
	}
	if ok, err := flush(); !ok || err != nil {
		return false, err
	}
	p.flushConflicts(ctx)
	return true, nil
}

// decodeData parses a record's data as a JSON object, keeping every value's
// text exactly as sent (so numbers keep their precision).
func decodeData(raw json.RawMessage) (map[string]json.RawMessage, error) {
	trimmed := bytes.TrimSpace(raw)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return nil, errors.New("data must be a JSON object")
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(trimmed, &fields); err != nil {
		return nil, fmt.Errorf("data is not a valid JSON object: %v", err)
	}
	return fields, nil
}

// checkColumns enforces the column allow-list and drops the values the
// server sets itself, since the SDKs push whole rows.
//
// Keys naming a server-managed timestamp column (the configured updated-at
// and deleted-at columns, whether the table has them or the schema contract
// made them up, and created_at, updated_at and deleted_at) are removed: the
// server sets those. Every other key must be a synced column of the table.
// The primary key may appear with the record id as its value; the owner and
// parent columns are checked later against the caller and the stored row.
// A column of the application's ProtectedColumns is refused on a create
// unless its value is null or the column's default as the schema contract
// gives it to devices (so a row made on a device with the contract's
// defaults passes), and kept aside in protected (and removed from
// fields) on an update, where decideWrite accepts it only unchanged.
func checkColumns(info *tableInfo, id string, op Operation, fields map[string]json.RawMessage) (protected map[string]json.RawMessage, err error) {
	cfg := info.cfg
	for _, key := range slices.Sorted(maps.Keys(fields)) {
		if managedTimestamp(cfg, key, info.column(key) != nil) {
			delete(fields, key)
			continue
		}
		if info.column(key) == nil {
			return nil, fmt.Errorf("unknown column %q", key)
		}
		if !slices.Contains(info.syncColumns, key) {
			return nil, fmt.Errorf("column %q is not synced", key)
		}
		switch {
		case key == info.pk:
			if v, ok := rawText(fields[key]); !ok || v != id {
				return nil, fmt.Errorf("column %q must equal the record id %q", key, id)
			}
		case key == cfg.OwnerColumn || key == cfg.ParentFKCol:
		case cfg.IsProtected(key):
			if op == OpInsert {
				if !isJSONNull(fields[key]) && !isColumnDefault(info.column(key), fields[key]) {
					return nil, fmt.Errorf("column %q is managed by the server and cannot be written", key)
				}
			} else {
				if protected == nil {
					protected = map[string]json.RawMessage{}
				}
				protected[key] = fields[key]
			}
			delete(fields, key)
		}
	}
	return protected, nil
}

// managedTimestamp reports whether a pushed key names a timestamp column the
// server sets: the configured updated-at or deleted-at column (present in
// the table or made up by the schema contract), or a real column named
// created_at, updated_at or deleted_at.
func managedTimestamp(cfg *TableConfig, key string, real bool) bool {
	switch key {
	case cfg.UpdatedAtColumn, cfg.DeletedAtColumn:
		return key != ""
	case defaultCreatedAtColumn, defaultUpdatedAtColumn, defaultDeletedAtColumn:
		return real
	}
	return false
}

// isJSONNull reports whether raw is the JSON null.
func isJSONNull(raw json.RawMessage) bool {
	return string(bytes.TrimSpace(raw)) == "null"
}

// rawText returns the text form of a scalar JSON value as PostgreSQL reads
// it into a text column: a string unquoted, a number or boolean as written.
// It reports false for null, objects and arrays.
func rawText(raw json.RawMessage) (string, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "", false
	}
	switch raw[0] {
	case '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", false
		}
		return s, true
	case 'n', '{', '[':
		return "", false
	default:
		return string(raw), true
	}
}
