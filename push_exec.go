package synchro

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/synchrosync/synchro/internal/bucket"
	"github.com/synchrosync/synchro/internal/store"
)

// This file holds the decisions of push, for one record or for a group of
// records of one table, and the writes that carry them out; the statements
// themselves are built in tablesql.go.

// lockedRow is the current state of a record, read under FOR UPDATE.
type lockedRow struct {
	data json.RawMessage // the synced projection, as a JSON object
	// updatedAt is the row's version: nil for NULL and for an infinite
	// updated-at ('infinity', '-infinity'), which is no version either
	// (as pull delivers it, see finiteTime; versionSQL writes over it).
	// The LWW comparison then sees a zero Conflict.ServerTime: a client
	// change wins unless it names a base version (the server then has
	// changed since the client's copy, and wins).
	updatedAt *time.Time
	// deleted reports whether the row is soft-deleted (deleted-at is not
	// NULL); deletedAt is then its time, or nil when that is infinite.
	deleted   bool
	deletedAt *time.Time
	// owner, parentFK and bucketBy are the text forms of the columns
	// ownership is decided by; nil for NULL or when the table has none.
	owner, parentFK, bucketBy *string
}

// lockRows reads and locks the rows with the given ids (as pushed), in
// primary key order. The result maps a pushed id to its row; ids without a
// row are absent.
func (p *pusher) lockRows(ctx context.Context, info *tableInfo, ids []string) (map[string]*lockedRow, *recordFailure, error) {
	rows, err := p.tx.QueryContext(ctx, info.pushSQL().lock, ids)
	if err != nil {
		fail, err := classifyDBError(err, reasonInternalError, "reading the record")
		return nil, fail, err
	}
	defer rows.Close()
	out := make(map[string]*lockedRow, len(ids))
	for rows.Next() {
		var (
			id               string
			data             sql.NullString
			updated, deleted pgtype.Timestamptz
			r                lockedRow
		)
		if err := rows.Scan(&id, &data, &updated, &deleted, &r.owner, &r.parentFK, &r.bucketBy); err != nil {
			return nil, nil, fmt.Errorf("reading locked rows: %w", err)
		}
		r.data = json.RawMessage(data.String)
		r.updatedAt, r.deleted, r.deletedAt = finiteTimePtr(updated), deleted.Valid, finiteTimePtr(deleted)
		out[id] = &r
	}
	if err := rows.Err(); err != nil {
		fail, err := classifyDBError(err, reasonInternalError, "reading the record")
		return nil, fail, err
	}
	return out, nil, nil
}

// decide works out what a record does, given its locked row (nil when the
// row does not exist). It either finalises the result (a rejection or a
// conflict) or sets it.kind and it.cols for the write.
func (p *pusher) decide(ctx context.Context, it *pushItem, row *lockedRow) (*recordFailure, error) {
	switch it.op {
	case OpInsert:
		if row == nil {
			return p.decideInsert(ctx, it)
		}
		if fail, err := p.requireOwned(ctx, it.info, it.rec.ID, rowVals(it.info.cfg, row)); fail != nil || err != nil {
			return fail, err
		}
		if !row.deleted {
			p.conflict(it, reasonRecordExists, "the record already exists", row)
			return nil, nil
		}
		return p.decideWrite(ctx, it, row, writeResurrect)
	case OpUpdate:
		if row == nil {
			return terminal(reasonRecordNotFound, "record not found or not accessible"), nil
		}
		if fail, err := p.requireOwned(ctx, it.info, it.rec.ID, rowVals(it.info.cfg, row)); fail != nil || err != nil {
			return fail, err
		}
		if row.deleted {
			p.conflict(it, reasonRecordDeleted, "the record was deleted on the server", row)
			return nil, nil
		}
		return p.decideWrite(ctx, it, row, writeUpdate)
	default:
		if row == nil {
			return terminal(reasonRecordNotFound, "record not found or not accessible"), nil
		}
		if fail, err := p.requireOwned(ctx, it.info, it.rec.ID, rowVals(it.info.cfg, row)); fail != nil || err != nil {
			return fail, err
		}
		if row.deleted {
			it.res.Status, it.res.ReasonCode, it.final = PushStatusApplied, reasonAlreadyDeleted, true
			return nil, nil
		}
		it.kind = writeDelete
		return nil, nil
	}
}

// decideInsert handles the create of a row that does not exist: the caller
// becomes its owner, and its parent must belong to the caller.
func (p *pusher) decideInsert(ctx context.Context, it *pushItem) (*recordFailure, error) {
	cfg, info := it.info.cfg, it.info
	if cfg.OwnerColumn != "" {
		if v, present := it.fields[cfg.OwnerColumn]; present {
			f := formOfColumn(info.column(cfg.OwnerColumn))
			if s, ok := rawText(v); !ok || f.canonical(s) != f.canonical(p.userID) {
				return terminal(reasonOwnershipViolation, "column %q must be the caller's user id", cfg.OwnerColumn), nil
			}
		}
		owner, _ := json.Marshal(p.userID)
		it.fields[cfg.OwnerColumn] = owner
	}
	id, _ := json.Marshal(it.rec.ID)
	it.fields[info.pk] = id

	vals := make(map[string]any, 3)
	for _, col := range []string{cfg.OwnerColumn, cfg.ParentFKCol, cfg.BucketByColumn} {
		if col == "" {
			continue
		}
		if s, ok := rawText(it.fields[col]); ok {
			vals[col] = s
		} else {
			vals[col] = nil
		}
	}
	if fail, err := p.requireOwned(ctx, info, it.rec.ID, vals); fail != nil || err != nil {
		if fail != nil && fail.reason == reasonOwnershipViolation {
			fail.message = "the record would not belong to the caller"
			if cfg.ParentTable != "" {
				// Not owned may mean that the parent is not there (yet).
				if pf, err := p.parentAbsent(ctx, info, it.fields); pf != nil || err != nil {
					return pf, err
				}
			}
		}
		return fail, err
	}
	if cfg.OwnerColumn != "" && cfg.ParentTable != "" {
		if fail, err := p.checkParent(ctx, info, it.fields); fail != nil || err != nil {
			return fail, err
		}
	}
	it.kind = writeInsert
	it.cols = slices.Sorted(maps.Keys(it.fields))
	return nil, nil
}

// checkParent verifies that the parent a new record points to belongs to
// the caller, for tables that have both an owner column and a parent (for
// a plain child table the OwnershipResolver decides through the parent).
func (p *pusher) checkParent(ctx context.Context, info *tableInfo, fields map[string]json.RawMessage) (*recordFailure, error) {
	fk, ok := rawText(fields[info.cfg.ParentFKCol])
	if !ok {
		return nil, nil // no parent: nothing to attach to
	}
	parent := p.m.table(info.cfg.ParentTable)
	if parent == nil {
		return terminal(reasonOwnershipViolation, "parent table %q is not available", info.cfg.ParentTable), nil
	}
	row, fail, err := p.lockParent(ctx, parent, fk)
	if fail != nil || err != nil {
		return fail, err
	}
	if fail, err := p.requireOwned(ctx, parent, fk, rowVals(parent.cfg, row)); fail != nil || err != nil {
		if fail != nil && fail.reason == reasonOwnershipViolation {
			fail.message = fmt.Sprintf("parent %q in table %q belongs to another user", fk, parent.cfg.TableName)
		}
		return fail, err
	}
	return nil, nil
}

// parentAbsent returns the failure of a new record whose parent row, named
// by its parent foreign key in fields, cannot be read; nil when the record
// has no parent key or the parent row is there.
func (p *pusher) parentAbsent(ctx context.Context, info *tableInfo, fields map[string]json.RawMessage) (*recordFailure, error) {
	fk, ok := rawText(fields[info.cfg.ParentFKCol])
	parent := p.m.table(info.cfg.ParentTable)
	if !ok || parent == nil {
		return nil, nil
	}
	_, fail, err := p.lockParent(ctx, parent, fk)
	return fail, err
}

// lockParent reads and locks the parent row with key fk of table parent;
// when the caller cannot read it, it returns the failure missingParent
// decides instead.
func (p *pusher) lockParent(ctx context.Context, parent *tableInfo, fk string) (*lockedRow, *recordFailure, error) {
	rows, fail, err := p.lockRows(ctx, parent, []string{fk})
	if fail != nil || err != nil {
		return nil, fail, err
	}
	if row := rows[fk]; row != nil {
		return row, nil, nil
	}
	fail, err = p.missingParent(ctx, parent, fk)
	return nil, fail, err
}

// missingParent decides the outcome of a record whose parent row (key fk of
// table parent), or the row a foreign key of it refers to, the caller
// cannot read. It may have been deleted (the changelog of the caller's
// buckets records the delete: parent_deleted, terminal); the client's
// history may be older than the server keeps, so that a delete can no
// longer be seen (parent_deleted, terminal: the client must snapshot again,
// which starts its queue afresh); otherwise it may still come, later in the
// device's queue (parent_not_found, retryable, bounded by boundParentWait).
// A row of another user that the caller cannot read is answered the same
// way as one that does not exist, so that a push never tells whether
// another user's row exists.
func (p *pusher) missingParent(ctx context.Context, parent *tableInfo, fk string) (*recordFailure, error) {
	buckets := append([]string{bucket.User(p.userID)}, p.client.BucketSubs...)
	var (
		deleted  bool
		boundary int64
	)
	err := p.tx.QueryRowContext(ctx, store.ParentDeleted(parent.idOfSQL("$2::text")), parent.cfg.TableName, fk, buckets).Scan(&deleted, &boundary)
	if err != nil {
		return classifyDBError(err, reasonInternalError, "looking for the parent")
	}
	name := parent.cfg.TableName
	switch {
	case deleted:
		return terminal(reasonParentDeleted, "row %q of table %q, which the record refers to, was deleted", fk, name), nil
	case p.client.ackedSeq != nil && *p.client.ackedSeq < boundary:
		return terminal(reasonParentDeleted, "row %q of table %q, which the record refers to, does not exist, and this client's history is older than the server keeps: it must snapshot again", fk, name), nil
	}
	return &recordFailure{status: PushStatusRejectedRetryable, reason: reasonParentNotFound,
		message: fmt.Sprintf("row %q of table %q, which the record refers to, does not exist yet; push it first, or retry", fk, name),
		awaits:  parentKey{table: name, fk: fk}}, nil
}

// missingReference decides the outcome of a write that a foreign key
// refused (constraint, on the record's table). When the key is a single
// column referring to the primary key of a registered table that clients
// push to, the row it names may still come from the device, and
// missingParent decides; nil
// otherwise (the database's refusal stands: terminal).
func (p *pusher) missingReference(ctx context.Context, it *pushItem, constraint string) (*recordFailure, error) {
	if constraint == "" {
		return nil, nil
	}
	var col, refSchema, refName, refCol string
	err := p.tx.QueryRowContext(ctx, `SELECT a.attname, n.nspname, r.relname, ra.attname
FROM pg_constraint c
JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
JOIN pg_attribute ra ON ra.attrelid = c.confrelid AND ra.attnum = c.confkey[1]
JOIN pg_class r ON r.oid = c.confrelid
JOIN pg_namespace n ON n.oid = r.relnamespace
WHERE c.contype = 'f' AND c.conname = $1 AND c.conrelid = $2::regclass AND cardinality(c.conkey) = 1`,
		constraint, it.info.quoted).Scan(&col, &refSchema, &refName, &refCol)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return classifyDBError(err, reasonInternalError, "reading a foreign key")
	}
	fk, ok := rawText(it.fields[col])
	if !ok {
		return nil, nil
	}
	for _, ref := range p.m.snap.info {
		if ref.schemaName == refSchema && ref.relName == refName && ref.pk == refCol && ref.cfg.PushPolicy == PushPolicyOwnerOnly {
			return p.missingParent(ctx, ref, fk)
		}
	}
	return nil, nil
}

// staleCopy reports whether the device's copy of the row is older than the
// stored row: the table keeps versions (an updated-at column) and the
// record's base version (baseVersion) is not the stored one. Without a base
// version nothing is known of the device's copy: it is not stale.
func staleCopy(info *tableInfo, base *time.Time, row *lockedRow) bool {
	if !info.hasUpdatedAt || row.updatedAt == nil || base == nil {
		return false
	}
	return !base.Equal(*row.updatedAt)
}

// decideWrite resolves the conflict between the client's change and the
// stored row, and plans the update (or resurrection) when the client wins.
func (p *pusher) decideWrite(ctx context.Context, it *pushItem, row *lockedRow, kind writeKind) (*recordFailure, error) {
	cfg, info := it.info.cfg, it.info
	// The owner and parent columns, and the application's protected
	// columns, cannot change through a push: repeating the stored value is
	// accepted, and so is an older value from a device whose copy of the
	// row is older than the stored one (its base version is not the
	// current one: the server changed the column since); both are then
	// ignored. Anything else is refused.
	base := p.baseVersion(it, row)
	stale := staleCopy(info, base, row)
	for _, f := range []struct {
		col    string
		stored *string
	}{{cfg.OwnerColumn, row.owner}, {cfg.ParentFKCol, row.parentFK}} {
		if f.col == "" {
			continue
		}
		v, present := it.fields[f.col]
		if !present {
			continue
		}
		s, ok := rawText(v)
		if ok {
			s = formOfColumn(info.column(f.col)).canonical(s)
		}
		if (ok != (f.stored != nil) || (ok && s != *f.stored)) && !stale {
			return terminal(reasonInvalidData, "column %q cannot be changed", f.col), nil
		}
		delete(it.fields, f.col)
	}
	delete(it.fields, info.pk)
	var stored map[string]json.RawMessage
	if len(it.protected) > 0 || heldDiffers(info, it.fields) {
		if err := json.Unmarshal(row.data, &stored); err != nil {
			return nil, fmt.Errorf("reading the stored row of %q: %w", it.rec.ID, err)
		}
	}
	for _, col := range slices.Sorted(maps.Keys(it.protected)) {
		pushed := it.protected[col]
		if sameColumnValue(info.column(col), pushed, stored[col]) || stale {
			continue
		}
		if c := info.column(col); c != nil && c.value.array && len(pushed) > 0 && pushed[0] == '"' {
			// PostgreSQL's array text (convertArrayText): compare the
			// array PostgreSQL reads from it.
			doc, err := json.Marshal(map[string]json.RawMessage{col: pushed})
			if err != nil {
				return terminal(reasonInvalidData, "data: %v", err), nil
			}
			var read sql.NullString
			if err := p.tx.QueryRowContext(ctx, info.valueJSONSQL(col), string(doc)).Scan(&read); err != nil {
				// PostgreSQL refused the text for the column (a domain's
				// CHECK, an element out of range): not the stored value.
				f, err := classifyDBError(err, reasonInvalidData, "reading the record")
				if f != nil && f.status == PushStatusRejectedTerminal {
					f.reason, f.message = reasonInvalidData, fmt.Sprintf("column %q is managed by the server and cannot be written", col)
				}
				return f, err
			}
			if read.Valid && sameColumnValue(c, json.RawMessage(read.String), stored[col]) {
				continue
			}
		}
		return terminal(reasonInvalidData, "column %q is managed by the server and cannot be written", col), nil
	}
	// A value that is the stored one as the device keeps it in SQLite (a
	// json column's number as text, a numeric as a float) is the stored
	// one: not written (pushimage.go).
	for col, v := range it.fields {
		if c := info.column(col); heldDiffersKind(c) && sameAsHeld(c, v, stored[col]) {
			delete(it.fields, col)
		}
	}

	if info.hasUpdatedAt {
		c := Conflict{
			Table:       cfg.TableName,
			RecordID:    it.rec.ID,
			ClientID:    p.clientID,
			UserID:      p.userID,
			ClientData:  it.rec.Data,
			ServerData:  row.data,
			ClientTime:  p.clientTime(it.rec),
			BaseVersion: base,
		}
		if row.updatedAt != nil {
			c.ServerTime = *row.updatedAt
		}
		resolution, err := p.e.resolver.Resolve(ctx, c)
		if err != nil {
			p.e.logger.WarnContext(ctx, "synchro: conflict resolver failed", "table", cfg.TableName, "id", it.rec.ID, "error", err)
			return &recordFailure{status: PushStatusRejectedRetryable, reason: reasonInternalError, message: "conflict resolution failed"}, nil
		}
		p.conflicts = append(p.conflicts, conflictEvent{c, resolution})
		if resolution.Winner != winnerClient {
			p.conflict(it, reasonServerWon, resolution.Reason, row)
			return nil, nil
		}
	}
	it.cols = slices.Sorted(maps.Keys(it.fields))
	if len(it.cols) == 0 && kind == writeUpdate && !info.hasUpdatedAt {
		it.res.Status, it.final = PushStatusApplied, true // nothing to change
		return nil, nil
	}
	it.kind = kind
	return nil, nil
}

// conflict finalises a record as a conflict carrying the stored row.
func (p *pusher) conflict(it *pushItem, reason, msg string, row *lockedRow) {
	it.res.Status, it.res.ReasonCode, it.res.Message = PushStatusConflict, reason, msg
	sv := &Record{ID: it.rec.ID, TableName: it.info.cfg.TableName, Data: it.info.deliveredRow(row.data), DeletedAt: row.deletedAt}
	if row.updatedAt != nil {
		sv.UpdatedAt = *row.updatedAt
	}
	it.res.ServerVersion = sv
	it.res.ServerUpdatedAt = row.updatedAt
	it.res.ServerDeletedAt = row.deletedAt
	it.final = true
}

// requireOwned checks that the caller owns the record described by vals
// (its owner, parent key and bucket columns).
//
// With the default JoinResolver the owner is the table's owner column, or
// the owner column of the first ancestor that has one, exactly as the RLS
// write policies decide. A custom OwnershipResolver decides through the
// buckets it returns: the record must be in the caller's bucket "user:<id>".
func (p *pusher) requireOwned(ctx context.Context, info *tableInfo, id string, vals map[string]any) (*recordFailure, error) {
	var (
		owned bool
		err   error
	)
	if jr, ok := p.e.ownership.(*JoinResolver); ok {
		var owner string
		owner, owned, err = p.chainOwnerOf(ctx, jr, info.cfg, vals)
		f := p.m.ownerForm(info)
		owned = owned && f.canonical(owner) == f.canonical(p.userID)
	} else {
		var buckets []string
		buckets, err = p.e.ownership.ResolveOwner(ctx, p.tx, info.cfg.TableName, id, vals)
		owned = slices.Contains(buckets, bucket.User(p.userID))
	}
	if err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) {
			return classifyDBError(err, reasonInternalError, "resolving ownership")
		}
		p.e.logger.WarnContext(ctx, "synchro: ownership resolution failed", "table", info.cfg.TableName, "id", id, "error", err)
		return &recordFailure{status: PushStatusRejectedRetryable, reason: reasonInternalError, message: "ownership resolution failed"}, nil
	}
	if !owned {
		return terminal(reasonOwnershipViolation, "the record belongs to another user"), nil
	}
	return nil, nil
}

// chainOwnerOf is jr.ownerOf, answered from p.owners when a record of the
// same table with the same parent key was decided before in this segment.
func (p *pusher) chainOwnerOf(ctx context.Context, jr *JoinResolver, cfg *TableConfig, vals map[string]any) (string, bool, error) {
	fk, hasFK := bucket.Text(vals[cfg.ParentFKCol])
	if p.owners == nil || cfg.OwnerColumn != "" || cfg.ParentTable == "" || !hasFK {
		return jr.ownerOf(ctx, p.tx, cfg, vals)
	}
	key := parentKey{cfg.TableName, fk}
	if c, ok := p.owners[key]; ok {
		return c.owner, c.ok, nil
	}
	owner, ok, err := jr.ownerOf(ctx, p.tx, cfg, vals)
	if err == nil {
		p.owners[key] = chainOwner{owner, ok}
	}
	return owner, ok, err
}

// rowVals is the column map the OwnershipResolver sees for a stored row.
func rowVals(cfg *TableConfig, r *lockedRow) map[string]any {
	vals := make(map[string]any, 3)
	put := func(col string, v *string) {
		if col == "" {
			return
		}
		if v == nil {
			vals[col] = nil
		} else {
			vals[col] = *v
		}
	}
	put(cfg.OwnerColumn, r.owner)
	put(cfg.ParentFKCol, r.parentFK)
	put(cfg.BucketByColumn, r.bucketBy)
	return vals
}

// write carries out the planned writes of items, which share a table, a
// kind and a column set, with one statement.
func (p *pusher) write(ctx context.Context, items []*pushItem) (*recordFailure, error) {
	first := items[0]
	info := first.info
	var (
		query string
		arg   any
	)
	reason := map[writeKind]string{
		writeInsert: reasonCreateFailed, writeUpdate: reasonUpdateFailed,
		writeResurrect: reasonResurrectionFailed, writeDelete: reasonDeleteFailed,
	}[first.kind]
	switch first.kind {
	case writeDelete:
		ids := make([]string, len(items))
		for i, it := range items {
			ids[i] = it.rec.ID
		}
		query, arg = info.pushSQL().delete, ids
	default:
		objs := make([]map[string]json.RawMessage, len(items))
		for i, it := range items {
			objs[i] = it.fields
			if first.kind != writeInsert {
				id, _ := json.Marshal(it.rec.ID)
				it.fields[info.pk] = id // matches the row; not written
			}
		}
		payload, err := json.Marshal(objs)
		if err != nil {
			return terminal(reasonInvalidData, "data: %v", err), nil
		}
		if first.kind == writeInsert {
			query = info.insertSQL(first.cols)
		} else {
			query = info.updateSQL(first.cols, first.kind == writeResurrect)
		}
		arg = string(payload)
	}

	args := []any{arg}
	if info.hasUpdatedAt && (first.kind != writeDelete || info.hasDeletedAt) {
		// The statements set each row's new version from its record's
		// edit time ($2, see editTime and versionSQL).
		at := make([]time.Time, len(items))
		for i, it := range items {
			at[i] = p.editTime(it.rec)
		}
		args = append(args, at)
	}
	rows, err := p.tx.QueryContext(ctx, query, args...)
	if err != nil {
		return classifyDBError(err, reason, "writing the record")
	}
	defer rows.Close()
	seen := 0
	for rows.Next() {
		var (
			ord int
			at  pgtype.Timestamptz
		)
		if err := rows.Scan(&ord, &at); err != nil {
			return nil, fmt.Errorf("reading write results: %w", err)
		}
		// The statements write finite times; a trigger may not have.
		ts := finiteTimePtr(at)
		if ord < 1 || ord > len(items) {
			return nil, fmt.Errorf("write returned position %d of %d", ord, len(items))
		}
		it := items[ord-1]
		it.res.Status, it.final = PushStatusApplied, true
		switch {
		case it.kind == writeDelete:
			it.res.ServerDeletedAt = ts
		case info.hasUpdatedAt:
			it.res.ServerUpdatedAt = ts
		}
		if ts != nil && info.hasUpdatedAt {
			k := p.rowKey(info.cfg.TableName, it.rec.ID)
			p.written[k] = append(p.written[k], *ts)
		}
		seen++
	}
	if err := rows.Err(); err != nil {
		return classifyDBError(err, reason, "writing the record")
	}
	p.dirty = true
	if seen != len(items) {
		// A locked row cannot vanish, so this is a bug; redo one at a time.
		return &recordFailure{status: PushStatusRejectedRetryable, reason: reason, message: "the row changed during the push", fromDatabase: true}, nil
	}
	return nil, nil
}

// clientTime is the edit time of rec as the engine counts it: the device's
// client_updated_at, never later than the database clock at the start of
// the push plus Engine.clockSkew (Config.ClockSkewTolerance, or the
// LWWResolver's when that is less), to the microsecond (as
// PostgreSQL keeps it); zero when the record carries none. It is
// Conflict.ClientTime.
func (p *pusher) clientTime(rec *PushRecord) time.Time {
	at := rec.ClientUpdatedAt
	if at.IsZero() {
		return at
	}
	if limit := p.client.now.Add(p.e.clockSkew); at.After(limit) {
		at = limit
	}
	return at.Truncate(time.Microsecond)
}

// editTime is the time a write of rec stamps as the row's new version
// (versionSQL): clientTime, or the start of the push when the record
// carries no edit time.
func (p *pusher) editTime(rec *PushRecord) time.Time {
	if at := p.clientTime(rec); !at.IsZero() {
		return at
	}
	return p.client.now.Truncate(time.Microsecond)
}

// baseVersion is the version of row the device's change of it was made
// on: the record's base_updated_at, or, when an earlier record of this push
// wrote the row and the row is still as that write left it, the version
// that write gave it. A device's queue holds its edits of a row in the
// order it made them, each on top of the one before, so a later edit of the
// same push is based on the earlier one, whatever the clocks say.
func (p *pusher) baseVersion(it *pushItem, row *lockedRow) *time.Time {
	if row.updatedAt != nil {
		// Every version this push gave the row: one of them may have been
		// undone with its savepoint, and the one before it is the current.
		for _, v := range p.written[p.rowKey(it.info.cfg.TableName, it.rec.ID)] {
			if row.updatedAt.Equal(v) {
				return &v
			}
		}
	}
	return it.rec.BaseUpdatedAt
}
