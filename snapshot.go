package synchro

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"

	"github.com/synchrosync/synchro/internal/bucket"
	"github.com/synchrosync/synchro/internal/locks"
	"github.com/synchrosync/synchro/internal/store"
)

// snapshotLockKey is the transaction-level advisory lock between a snapshot
// capturing its checkpoint (shared) and compaction choosing its boundary
// (exclusive); see package locks.
const snapshotLockKey = locks.Snapshot

// Snapshot performs a full snapshot for a client. Returns paginated results using a stateless cursor.
//
// Pages walk the registered tables in name order and each table's rows in
// primary key order (the key's own type and index), at most req.Limit
// records a page (default DefaultSnapshotLimit, at most MaxSnapshotLimit).
// One exception: a cursor's after_id "" means the start of a table, so a
// page never ends right after a row whose text key is the empty string; a
// page of limit 1 that reaches such a row holds the row after it too.
// Only rows in one of the client's buckets are returned (recorded there by
// the change capture and placed there by their current contents, see
// Config.Subscriptions for the buckets); soft-deleted rows are not.
//
// The first page (no cursor) captures the checkpoint, a new changelog
// sequence number above every change written so far (and so above the
// compaction boundary), before any row is read, and records it with the
// client's buckets on the client row, so that
// compaction keeps every change after it; it also reactivates a deactivated
// client. The cursor of each following page carries that checkpoint, which
// no other snapshot of the client shares; a cursor whose checkpoint is not
// the client's latest snapshot (another snapshot of the client started
// since, or a cursor the client made up), or
// whose table index or key is out of range, is refused with a bad-request
// error and changes nothing. The last page (HasMore false) records the
// checkpoint as the client's: its next Pull starts from it without
// SnapshotRequired. Rows changed while the snapshot runs are delivered by
// the pulls after it. Snapshot does not consult Hooks.OnStaleClient: a
// snapshot is how a stale or deactivated client comes back.
func (e *Engine) Snapshot(ctx context.Context, userID string, req *SnapshotRequest) (*SnapshotResponse, error) {
	start := e.metrics.start()
	resp, err := e.snapshot(ctx, userID, req)
	e.metrics.snapshotted(ctx, start, resp, err)
	return resp, err
}

// snapshot is Snapshot without its metrics.
func (e *Engine) snapshot(ctx context.Context, userID string, req *SnapshotRequest) (*SnapshotResponse, error) {
	if req == nil {
		return nil, badRequest("synchro: nil SnapshotRequest")
	}
	if err := checkIdentity(userID, req.ClientID); err != nil {
		return nil, err
	}
	limit := clampLimit(req.Limit, DefaultSnapshotLimit, MaxSnapshotLimit)
	m, err := e.schema.get(ctx)
	if err != nil {
		return nil, err
	}
	if err := m.check(req.SchemaVersion, req.SchemaHash, false); err != nil {
		return nil, err
	}
	userID = m.userID(userID)
	c, err := loadClient(ctx, e.db, userID, req.ClientID)
	if err != nil {
		return nil, err
	}

	var (
		cur  SnapshotCursor
		subs []string
	)
	if req.Cursor == nil {
		if subs, err = e.subscriptions(ctx, userID, req.ClientID); err != nil {
			return nil, err
		}
		if cur.Checkpoint, err = e.beginSnapshot(ctx, c, subs); err != nil {
			return nil, err
		}
	} else {
		cur = *req.Cursor
		if c.snapshotSeq == nil || cur.Checkpoint != *c.snapshotSeq {
			return nil, badRequest("synchro: snapshot cursor checkpoint %d is not the client's latest snapshot: start the snapshot again without a cursor", cur.Checkpoint)
		}
		if cur.TableIndex < 0 || cur.TableIndex >= len(e.tableNames) {
			return nil, badRequest("synchro: snapshot cursor table_idx %d is out of range [0, %d)", cur.TableIndex, len(e.tableNames))
		}
		subs = c.snapshotSubs
		if subs == nil {
			subs = bucket.Normalize(c.BucketSubs) // the snapshot completed: its buckets were recorded
		}
	}

	resp := &SnapshotResponse{Records: []Record{}, Checkpoint: cur.Checkpoint, SchemaVersion: m.version, SchemaHash: m.hash}
	next, err := e.snapshotPage(ctx, m, userID, c.ID, subs, cur, limit, resp)
	if err != nil {
		return nil, err
	}
	if next != nil {
		resp.HasMore, resp.Cursor = true, next
		return resp, nil
	}
	if err := e.finishSnapshot(ctx, c, cur.Checkpoint); err != nil {
		return nil, err
	}
	return resp, nil
}

// beginSnapshot captures a snapshot's checkpoint and records it, with the
// buckets, for the client, which it reactivates.
func (e *Engine) beginSnapshot(ctx context.Context, c *clientRow, subs []string) (int64, error) {
	tx, err := e.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("synchro: starting snapshot: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock_shared($1)`, snapshotLockKey); err != nil {
		return 0, fmt.Errorf("synchro: starting snapshot: %w", err)
	}
	// The checkpoint is the highest seq written (every change up to it is
	// in the changelog, since seqs are assigned in commit order), or the
	// compaction boundary when that is higher. A client's snapshots must
	// not share a checkpoint, which is what names a snapshot in a cursor:
	// when nothing was written since the client's previous snapshot, a new
	// sequence number is drawn instead, while no transaction can be
	// writing the changelog (every number below it then belongs to a
	// committed row or to none).
	var seq int64
	err = tx.QueryRowContext(ctx, store.BeginSnapshot, c.ID, subs).Scan(&seq)
	if errors.Is(err, sql.ErrNoRows) {
		if _, err := tx.ExecContext(ctx, store.LockChangelogWrites); err != nil {
			return 0, fmt.Errorf("synchro: starting snapshot: %w", err)
		}
		err = tx.QueryRowContext(ctx, store.BeginSnapshotNewSeq, c.ID, subs).Scan(&seq)
	}
	if errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("%w: client %q", ErrClientNotRegistered, c.ClientID)
	}
	if err != nil {
		return 0, fmt.Errorf("synchro: starting snapshot: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("synchro: starting snapshot: %w", err)
	}
	return seq, nil
}

// finishSnapshot records a completed snapshot: its checkpoint becomes the
// client's, its buckets the client's subscriptions. The checkpoint stays in
// snapshot_seq, so its last page can be asked again (and go on with new
// pages when rows were added meanwhile) until another snapshot starts.
func (e *Engine) finishSnapshot(ctx context.Context, c *clientRow, checkpoint int64) error {
	res, err := e.db.ExecContext(ctx, store.FinishSnapshot, c.ID, checkpoint)
	if err != nil {
		return fmt.Errorf("synchro: completing snapshot: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("synchro: completing snapshot: %w", err)
	} else if n == 0 {
		return badRequest("synchro: another snapshot of client %q started while this one ran: start again without a cursor", c.ClientID)
	}
	return nil
}

// snapshotPage fills resp with up to limit records from cur on, in one
// read-only transaction, and returns the cursor of the next page, or nil
// when the snapshot is complete.
func (e *Engine) snapshotPage(ctx context.Context, m *manifest, userID, clientRowID string, subs []string, cur SnapshotCursor, limit int, resp *SnapshotResponse) (*SnapshotCursor, error) {
	tx, err := e.db.BeginTx(ctx, readTxOptions)
	if err != nil {
		return nil, fmt.Errorf("synchro: snapshot: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	if err := setReadContext(ctx, tx, userID, indexWalk); err != nil {
		return nil, err
	}
	idx, after := cur.TableIndex, cur.AfterID
	var next *SnapshotCursor
	for idx < len(e.tableNames) {
		table := e.tableNames[idx]
		info := m.table(table)
		if info == nil {
			return nil, fmt.Errorf("synchro: snapshot: table %q is registered but missing from the schema", table)
		}
		remaining := limit - len(resp.Records)
		plan := snapshotPlanKey{client: clientRowID, checkpoint: cur.Checkpoint, table: idx}
		// One row more than needed tells whether the table goes on, and
		// one more than that serves a page that cannot end where it
		// should (below).
		got, err := e.readRows(ctx, tx, info, subs, func(st *readStatements) (*sql.Rows, error) {
			byEdges, err := e.snapshotByEdges(ctx, tx, st, plan, subs, limit)
			if err != nil {
				return nil, err
			}
			first, next := st.first, st.after
			if byEdges {
				first, next = st.edgesFirst, st.edgesAfter
			}
			if after == "" {
				return tx.QueryContext(ctx, first, subs, remaining+2)
			}
			return tx.QueryContext(ctx, next, subs, remaining+2, after)
		})
		if err != nil {
			if after != "" && isDataError(err) {
				return nil, badRequest("synchro: snapshot cursor after_id %q is not a key of table %q", after, table)
			}
			return nil, fmt.Errorf("synchro: snapshot: reading %s: %w", table, err)
		}
		cut := remaining // the rows of the table this page takes
		if len(got) > cut && got[cut-1].rec.ID == "" {
			// The empty key, the first of any text key order, cannot
			// be a cursor's after_id ("" is the start of the table):
			// end the page before the table when it holds records
			// already, else take the row after it too.
			if remaining < limit {
				next = &SnapshotCursor{Checkpoint: cur.Checkpoint, TableIndex: idx}
				break
			}
			cut++
		}
		for _, r := range got[:min(len(got), cut)] {
			if r.ok {
				resp.Records = append(resp.Records, *r.rec)
			}
		}
		if len(got) > cut {
			next = &SnapshotCursor{Checkpoint: cur.Checkpoint, TableIndex: idx, AfterID: got[cut-1].rec.ID}
			break
		}
		e.snapshotPlans.forget(plan) // the snapshot is done with the table
		idx, after = idx+1, ""
		if cut == len(got) && idx < len(e.tableNames) {
			next = &SnapshotCursor{Checkpoint: cur.Checkpoint, TableIndex: idx}
			break
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("synchro: snapshot: %w", err)
	}
	return next, nil
}

// snapshotByEdges tells whether the snapshot plan.checkpoint of the client
// (its row id) reads table plan.table from the keys the client's edges name
// rather than by walking the table in key order, for pages of n rows (see
// snapshotByEdgesSQL). The answer is decided on the first page that reads
// the table and remembered for the next ones: deciding reads up to 64·n
// index entries, which for a client holding most of the table costs a
// sizeable part of a page (16·n cost a quarter of a page of 1000 in
// BenchmarkSnapshot when decided on every page), so it is paid once.
// An engine that has not seen the earlier pages (another process, or the
// memory given back) decides again; either way every page holds the same
// rows.
func (e *Engine) snapshotByEdges(ctx context.Context, tx *sql.Tx, st *readStatements, plan snapshotPlanKey, subs []string, n int) (bool, error) {
	if byEdges, ok := e.snapshotPlans.get(plan); ok {
		return byEdges, nil
	}
	var byEdges bool
	if err := tx.QueryRowContext(ctx, st.byEdges, subs, n).Scan(&byEdges); err != nil {
		return false, err
	}
	e.snapshotPlans.put(plan, byEdges)
	return byEdges, nil
}

// snapshotPlanKey names a table of a snapshot in progress: the client's row
// id, the snapshot's checkpoint and the table's index.
type snapshotPlanKey struct {
	client     string
	checkpoint int64
	table      int
}

// maxSnapshotPlans bounds the decisions an engine remembers; past it they
// are all forgotten (and decided again).
const maxSnapshotPlans = 4096

// snapshotPlanCache remembers how snapshots in progress read their current
// table. The zero value is ready to use.
type snapshotPlanCache struct {
	mu sync.Mutex
	m  map[snapshotPlanKey]bool
}

func (c *snapshotPlanCache) get(k snapshotPlanKey) (byEdges, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	byEdges, ok = c.m[k]
	return byEdges, ok
}

func (c *snapshotPlanCache) put(k snapshotPlanKey, byEdges bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= maxSnapshotPlans {
		c.m = make(map[snapshotPlanKey]bool)
	}
	c.m[k] = byEdges
}

func (c *snapshotPlanCache) forget(k snapshotPlanKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, k)
}
