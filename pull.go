package synchro

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/synchrosync/synchro/internal/bucket"
	"github.com/synchrosync/synchro/internal/pgident"
	"github.com/synchrosync/synchro/internal/store"
)

// Pull limits.
const (
	// maxKnownBuckets bounds PullRequest.KnownBuckets.
	maxKnownBuckets = maxSubscriptions
)

// Pull retrieves changes for a client since their checkpoint.
//
// # Flow
//
// The request's schema version and hash must equal the server's
// (ErrSchemaMismatch otherwise; the bootstrap pair is not accepted). The
// client must be registered (ErrClientNotRegistered); a client that was
// deactivated or has not synced within the stale threshold is let through
// only when Hooks.OnStaleClient allows it (ErrStaleClient otherwise).
//
// A client that never completed a Snapshot gets SnapshotRequired with reason
// SnapshotReasonInitialSyncRequired. A client whose checkpoint is below the
// compaction boundary (the highest compacted seq) gets SnapshotRequired with
// reason SnapshotReasonCheckpointBeforeLimit; at or past the boundary it
// never does, and checkpoint 0 is no exception. A client whose checkpoint
// is above every checkpoint the server has handed out (the newest changelog
// seq, the boundary, the client's latest snapshot checkpoint) gets
// SnapshotRequired with reason "checkpoint_ahead_of_server": the server's
// changelog went back (a database restored from a backup, a failover to a
// replica that lagged, a truncated changelog) or the client made the
// checkpoint up; pulling on from it would silently skip every change up to
// it. The engine logs a warning for it. All three fire
// Hooks.OnSnapshotRequired, with the boundary as minSeq, and return the
// request's checkpoint unchanged.
//
// # Subscriptions
//
// The client follows the buckets Config.Subscriptions decides, by default
// "user:<userID>" and "global", evaluated on every pull. When they differ
// from the buckets recorded for the client, the client receives the current
// rows of each bucket it gained and a delete for each row it held only
// through a bucket it lost, as ordinary changes of the following pages (no
// snapshot needed). When req.KnownBuckets is not empty, BucketUpdates lists
// the buckets added and removed relative to it.
//
// # The page
//
// Within one read-only snapshot: the retention check, then the changelog of
// the subscribed buckets after the checkpoint in seq order, at most
// req.Limit entries (default DefaultPullLimit, at most MaxPullLimit), with
// HasMore when more follow. A client that follows more than 8 buckets may get
// a page somewhat shorter than the limit while HasMore is set (each bucket
// is read only as far as its share of a page; see bucketReadCap): clients
// loop on HasMore, not on the page's size. Entries of one record are merged, keeping its
// position of first appearance and its last operation. Records whose last
// operation is a delete, and records that are no longer in one of the
// client's buckets, gone, or soft-deleted, come in Deletes; the others come
// in Changes with their current contents (their sync columns), each list in
// changelog order, so a parent created before its children usually precedes
// them; compaction removes superseded rows, which can put a child's row
// before its parent's latest one, so clients should apply a page in one
// transaction with foreign keys deferred.
// Reading a table fails the whole pull; the checkpoint never passes a change
// that was not delivered. The new checkpoint (the seq of the page's last
// entry), the time of the pull and the client's liveness are recorded in one
// statement, and Hooks.OnPullComplete receives the checkpoint and the number
// of changes plus deletes.
//
// # Tables filter
//
// With req.Tables, the page stops before the first change of a table not in
// the list: the changes of the listed tables before it are delivered, the
// checkpoint stops just before it, and HasMore reports only whether the same
// filtered request would deliver more (false when that change blocks it).
// A filtered pull therefore never skips changes of other tables; a pull
// without the filter continues past them.
func (e *Engine) Pull(ctx context.Context, userID string, req *PullRequest) (*PullResponse, error) {
	return e.pullMetered(ctx, userID, req, nil)
}

// pullMetered is pull with its metrics: Pull, and each read of PullWait.
func (e *Engine) pullMetered(ctx context.Context, userID string, req *PullRequest, watch *[]string) (*PullResponse, error) {
	start := e.metrics.start()
	resp, err := e.pull(ctx, userID, req, watch)
	e.metrics.pulled(ctx, start, resp, err)
	return resp, err
}

// pull is Pull without its metrics. When watch is not nil and the client's
// buckets were read, it receives them (its subscriptions and its private
// bucket): the buckets whose changes concern a waiting pull.
func (e *Engine) pull(ctx context.Context, userID string, req *PullRequest, watch *[]string) (*PullResponse, error) {
	if req == nil {
		return nil, badRequest("synchro: nil PullRequest")
	}
	if err := checkIdentity(userID, req.ClientID); err != nil {
		return nil, err
	}
	if req.Checkpoint < 0 {
		return nil, badRequest("synchro: checkpoint must not be negative, got %d", req.Checkpoint)
	}
	filter, err := e.tableFilter(req.Tables)
	if err != nil {
		return nil, err
	}
	if len(req.KnownBuckets) > maxKnownBuckets {
		return nil, badRequest("synchro: known_buckets has %d entries, at most %d are allowed", len(req.KnownBuckets), maxKnownBuckets)
	}
	for _, b := range req.KnownBuckets {
		if !utf8.ValidString(b) || len(b) > bucket.MaxIDLen {
			return nil, badRequest("synchro: known_buckets entries must be valid UTF-8 of at most %d bytes", bucket.MaxIDLen)
		}
	}
	limit := clampLimit(req.Limit, DefaultPullLimit, MaxPullLimit)

	m, err := e.schema.get(ctx)
	if err != nil {
		return nil, err
	}
	if err := m.check(req.SchemaVersion, req.SchemaHash, false); err != nil {
		return nil, err
	}
	userID = m.userID(userID)
	subs, err := e.subscriptions(ctx, userID, req.ClientID)
	if err != nil {
		return nil, err
	}
	var ahead *aheadRead
	if filter == nil {
		if hint, ok := e.pullHints.get(userID, req.ClientID); ok {
			if ahead = e.readAhead(ctx, m, userID, req.ClientID, subs, hint, req.Checkpoint, limit); ahead == nil {
				// Not again before a pull has more (a client that is gone
				// would otherwise have every request read a page).
				e.pullHints.forget(userID, req.ClientID)
			}
		}
	}
	var (
		c        *clientRow
		boundary int64
		pending  bool
	)
	if ahead != nil {
		c, boundary, pending = ahead.client, ahead.boundary, ahead.pending
	} else if c, boundary, pending, err = e.pullState(ctx, userID, req.ClientID, subs, req.Checkpoint); err != nil {
		return nil, err
	}
	// A client that has more to pull after this page reads its next page
	// ahead (pullahead.go).
	var next *pullHint // the next pull's, when it reads ahead
	defer func() { e.pullHints.note(userID, req.ClientID, next) }()
	if watch != nil {
		*watch = append(slices.Clone(subs), bucket.Client(c.ID))
	}
	if err := e.staleCheck(ctx, c); err != nil {
		return nil, err
	}
	resp := &PullResponse{Changes: []Record{}, Deletes: []DeleteEntry{}, Checkpoint: req.Checkpoint,
		SchemaVersion: m.version, SchemaHash: m.hash}
	if c.snapshotCompletedAt == nil {
		e.snapshotRequired(ctx, resp, c.ClientID, boundary, SnapshotReasonInitialSyncRequired)
		return resp, nil
	}
	if req.Checkpoint < boundary {
		e.snapshotRequired(ctx, resp, c.ClientID, boundary, SnapshotReasonCheckpointBeforeLimit)
		return resp, nil
	}
	if ahead, newest, err := e.checkpointAhead(ctx, c, req.Checkpoint, boundary, pending); err != nil {
		return nil, err
	} else if ahead {
		e.logger.WarnContext(ctx, "synchro: pull checkpoint ahead of the server's changelog: asking for a snapshot",
			"client_id", c.ClientID, "checkpoint", req.Checkpoint, "newest", newest)
		e.snapshotRequired(ctx, resp, c.ClientID, boundary, snapshotReasonCheckpointAhead)
		return resp, nil
	}
	resp.BucketUpdates = bucketDiff(req.KnownBuckets, subs)
	if !slices.Equal(subs, bucket.Normalize(c.BucketSubs)) {
		if err := e.resubscribe(ctx, c, subs, req.Checkpoint); err != nil {
			return nil, err
		}
		pending = true
		ahead = nil // read before the resubscription's changelog rows
	}

	recorded, off := false, false
	var tables []string
	if pending {
		p := &puller{e: e, m: m, userID: userID, subs: subs, filter: filter, limit: limit, resp: resp, client: c}
		delivered := false
		if ahead != nil && ahead.page != nil && ahead.rowID == c.ID {
			boundary, delivered = p.deliverAhead(ahead, req.Checkpoint)
			// A page read ahead that run reads again: not the next one.
			off = !delivered
		}
		if !delivered {
			if boundary, recorded, err = p.run(ctx, append(slices.Clone(subs), bucket.Client(c.ID)), req.Checkpoint); err != nil {
				return nil, err
			}
		}
		if req.Checkpoint < boundary { // compaction passed it meanwhile
			e.snapshotRequired(ctx, resp, c.ClientID, boundary, SnapshotReasonCheckpointBeforeLimit)
			return resp, nil
		}
		tables = p.tables
	}
	if !recorded {
		if err := e.recordPull(ctx, c, req.Checkpoint, resp.Checkpoint); err != nil {
			return nil, err
		}
	}
	if e.hooks.OnPullComplete != nil {
		e.hooks.OnPullComplete(ctx, c.ClientID, resp.Checkpoint, len(resp.Changes)+len(resp.Deletes))
	}
	if resp.HasMore && filter == nil && len(tables) > 0 && e.canReadAhead() {
		next = &pullHint{rowID: c.ID, tables: tables, off: off}
	}
	return resp, nil
}

// pullState reads, in one statement (one snapshot), the client, the
// compaction boundary, and whether the changelog holds anything after
// checkpoint in the buckets subs or the client's private bucket. A missing
// client is ErrClientNotRegistered.
func (e *Engine) pullState(ctx context.Context, userID, clientID string, subs []string, checkpoint int64) (*clientRow, int64, bool, error) {
	var boundary int64
	var pending bool
	c, err := findClient(ctx, e.db, clientID, store.PullState,
		[]any{userID, clientID, subs, checkpoint, bucket.ClientPrefix}, &boundary, &pending)
	if err != nil {
		return nil, 0, false, err
	}
	return c, boundary, pending, nil
}

// checkpointAhead reports whether checkpoint is above every checkpoint the
// server has handed out (see snapshotReasonCheckpointAhead), and the highest
// of those it found. pending and boundary are pullState's.
//
// Most pulls need no lookup: a pending change is above the checkpoint, and
// a checkpoint at most one recorded on the client row (the last delivered,
// the last acknowledged, the latest snapshot's) was handed out; polling
// devices resend their recorded checkpoint. Only the others read the newest
// changelog seq, in a statement of its own: inside pullState's, the unused
// subquery alone cost empty pulls 5% (BenchmarkEmptyPull).
func (e *Engine) checkpointAhead(ctx context.Context, c *clientRow, checkpoint, boundary int64, pending bool) (bool, int64, error) {
	if pending {
		return false, 0, nil
	}
	bound := boundary
	for _, v := range []*int64{c.LastPullSeq, c.ackedSeq, c.snapshotSeq} {
		if v != nil {
			bound = max(bound, *v)
		}
	}
	if checkpoint <= bound {
		return false, bound, nil
	}
	var newest int64
	if err := e.db.QueryRowContext(ctx, store.NewestSeq).Scan(&newest); err != nil {
		return false, 0, fmt.Errorf("synchro: pull: reading the newest changelog seq: %w", err)
	}
	bound = max(bound, newest)
	return checkpoint > bound, bound, nil
}

// snapshotReasonCheckpointAhead is the SnapshotReason of a pull whose
// checkpoint is above any the server handed out (see Pull).
//
// Every checkpoint a client holds is a changelog seq a pull delivered, a
// snapshot's checkpoint, or 0. Compaction deletes a row only at or below
// the boundary, or when a newer row of the same record and bucket exists,
// so the highest of the newest seq and the boundary never goes below a seq
// once delivered; a snapshot's checkpoint is at most that highest value when
// taken, or drawn from the sequence and kept as the client's snapshot_seq,
// which only grows. A checkpoint above all three was not handed out by
// this changelog.
const snapshotReasonCheckpointAhead = "checkpoint_ahead_of_server"

// snapshotRequired turns resp into a snapshot-required answer.
func (e *Engine) snapshotRequired(ctx context.Context, resp *PullResponse, clientID string, boundary int64, reason string) {
	resp.SnapshotRequired, resp.SnapshotReason = true, reason
	resp.Changes, resp.Deletes, resp.HasMore = []Record{}, []DeleteEntry{}, false
	if e.hooks.OnSnapshotRequired != nil {
		e.hooks.OnSnapshotRequired(ctx, clientID, resp.Checkpoint, boundary, reason)
	}
}

// clampLimit applies a request limit's default and maximum.
func clampLimit(limit, def, max int) int {
	switch {
	case limit <= 0:
		return def
	case limit > max:
		return max
	}
	return limit
}

// tableFilter validates a pull's tables filter; nil when there is none.
func (e *Engine) tableFilter(tables []string) (map[string]bool, error) {
	if len(tables) == 0 {
		return nil, nil
	}
	if len(tables) > maxTablesFilter {
		return nil, badRequest("synchro: tables lists %d names, at most %d are allowed", len(tables), maxTablesFilter)
	}
	filter := make(map[string]bool, len(tables))
	for _, t := range tables {
		if e.registry.get(t) == nil {
			if !utf8.ValidString(t) || len(t) > pgident.MaxLen*2+1 {
				return nil, badRequestWrap(ErrTableNotRegistered, "synchro: tables: invalid table name")
			}
			return nil, badRequestWrap(ErrTableNotRegistered, "synchro: tables: %q", t)
		}
		filter[t] = true
	}
	return filter, nil
}

// maxTablesFilter bounds PullRequest.Tables.
const maxTablesFilter = 1000

// pullTouchInterval is how often a client that keeps pulling with nothing
// new has its last_pull_at and last_sync_at refreshed: an empty pull that
// changes nothing else writes nothing more often than this.
const pullTouchInterval = 10 * time.Second

// touchInterval is how long an unchanged client row may go without its
// times refreshed: pullTouchInterval, or a tenth of the stale threshold when
// that is shorter, so that a client pulling regularly is never stale.
func (e *Engine) touchInterval() time.Duration {
	return min(pullTouchInterval, e.stale/10)
}

// recordPull stores a pull's outcome on the client row in one statement:
// the checkpoint delivered, the one the client acknowledged by sending it,
// the time, and that the client is active. When none of that would change
// but the time, and the time was recorded recently (see touchInterval),
// nothing is written.
//
// A pull that read a page on pgx's connection has it recorded there
// instead, sent with its read transaction's COMMIT (see pgxPullTx.commit):
// the same statement, after the commit, as a transaction of its own.
func (e *Engine) recordPull(ctx context.Context, c *clientRow, acked, delivered int64) error {
	rec := e.pullRecord(c, acked, delivered)
	if rec == nil {
		return nil
	}
	_, err := e.db.ExecContext(ctx, store.RecordPull, rec.id, rec.delivered, rec.acked)
	if err != nil {
		return fmt.Errorf("synchro: recording the pull: %w", err)
	}
	return nil
}

// pullRecord is what recordPull writes: store.RecordPull's parameters.
type pullRecord struct {
	id               string
	delivered, acked int64
}

// pullRecord returns what recordPull writes for the client c, nil when
// nothing needs writing.
func (e *Engine) pullRecord(c *clientRow, acked, delivered int64) *pullRecord {
	if c.IsActive && c.ackedSeq != nil && *c.ackedSeq == acked && c.LastPullSeq != nil && *c.LastPullSeq == delivered &&
		c.LastPullAt != nil && c.LastSyncAt != nil && time.Since(*c.LastSyncAt) < e.touchInterval() {
		return nil
	}
	return &pullRecord{id: c.ID, delivered: delivered, acked: acked}
}

// puller builds one pull page.
type puller struct {
	e      *Engine
	m      *manifest
	userID string
	subs   []string
	filter map[string]bool
	limit  int
	resp   *PullResponse
	// client is the client's row, for recording the pull (recordPull).
	client *clientRow
	// tables are the tables whose rows the page read delivers, when it
	// was read with them (noteTables): the client's next page is read
	// ahead with those (pullHints).
	tables []string
}

// pageEntry is one record of a page after merging its changelog entries.
type pageEntry struct {
	table, id string
	op        Operation
	// record is the hydrated row; nil until hydrated, and when the record
	// must be deleted on the client.
	record *Record
	// hydrated is set when the page statement looked the row up already
	// (readPageHydrated): record is final.
	hydrated bool
}

// run reads and hydrates the page in one read-only transaction and returns
// the compaction boundary read in it, and whether the pull was recorded
// with the transaction's commit (see recordPull). buckets are the buckets
// to read the changelog of (the subscriptions and the client's private
// bucket).
func (p *puller) run(ctx context.Context, buckets []string, checkpoint int64) (int64, bool, error) {
	_, sqlRules := p.e.ownership.(*JoinResolver)
	var (
		boundary int64
		recorded bool
	)
	err := p.e.inPullTx(ctx, sqlRules, func(tx pullTx) error {
		var err error
		boundary, recorded, err = p.runIn(ctx, tx, buckets, checkpoint)
		return err
	})
	return boundary, recorded, err
}

// runIn is run in the transaction tx.
func (p *puller) runIn(ctx context.Context, tx pullTx, buckets []string, checkpoint int64) (int64, bool, error) {
	settings := pullSettingsSQL
	if _, ok := tx.(*pgxPullTx); ok { // the page statement may be read (readPageHydrated)
		settings = pullPageSettingsSQL
	}
	if err := tx.exec(ctx, settings, p.userID); err != nil {
		return 0, false, fmt.Errorf("synchro: pull: %w", err)
	}
	perBucket := bucketReadCap(p.limit, len(buckets))
	page, err := p.readPage(ctx, tx, buckets, checkpoint, perBucket)
	if err != nil {
		return 0, false, err
	}
	if p.cutShort(page, perBucket, checkpoint) {
		// One bucket holds most of what follows: read each bucket as far
		// as a whole page could reach.
		if page, err = p.readPage(ctx, tx, buckets, checkpoint, p.limit); err != nil {
			return 0, false, err
		}
	}
	if checkpoint < page.boundary {
		return page.boundary, false, nil
	}
	if err := p.hydrate(ctx, tx, page.entries); err != nil {
		return 0, false, err
	}
	delivered := page.delivered(checkpoint)
	recorded, err := tx.commit(ctx, p.e.pullRecord(p.client, checkpoint, delivered))
	if err != nil {
		return 0, false, err
	}
	p.deliver(page, delivered)
	return page.boundary, recorded, nil
}

// cutShort reports whether page, read from checkpoint with at most
// perBucket entries of each bucket, stopped short because a bucket's reads
// ran out (see bucketReadCap): it is then read again, each bucket as far
// as a whole page could reach.
func (p *puller) cutShort(page *changelogPage, perBucket int, checkpoint int64) bool {
	return page.short && perBucket < p.limit && checkpoint >= page.boundary
}

// deliver puts page in the response, with the checkpoint delivered.
func (p *puller) deliver(page *changelogPage, delivered int64) {
	p.resp.HasMore = page.hasMore
	p.resp.Checkpoint = delivered
	changes := 0
	for _, en := range page.entries {
		if en.record != nil {
			changes++
		}
	}
	p.resp.Changes = slices.Grow(p.resp.Changes, changes)
	for _, en := range page.entries {
		if en.record != nil {
			p.resp.Changes = append(p.resp.Changes, *en.record)
		} else {
			p.resp.Deletes = append(p.resp.Deletes, DeleteEntry{ID: en.id, TableName: en.table})
		}
	}
}

// bucketReadCap is how many changelog entries a page reads from each of n
// buckets at first: a page of limit entries needs at most limit from any
// one bucket, but reading limit from each of many full buckets reads n
// times the page (1000 buckets: a million index entries for a page of
// 1000). With more than 8 buckets, a page first reads twice each bucket's
// even share (at least 16), which fills it when the buckets grow at similar
// rates; when one bucket holds most of what follows, the page comes out
// short (under half the limit) and is read again with the full limit (see
// run). Such a page may also end a little before the limit while has_more
// is set. With 8 buckets or fewer, the usual case (the user's, "global",
// the client's own), every bucket is read as far as a page could reach.
func bucketReadCap(limit, n int) int {
	if n <= 8 {
		return limit
	}
	return min(limit, max(16, (2*limit+n-1)/n))
}

// pullSettingsSQL is the first statement of a pull's read transaction: it
// sets the auth context ($1) and turns JIT off (see setReadContext), and
// rules out, for the rest of the transaction, the plans whose work is not
// bounded by the page. Settings made in a statement apply to the
// statements planned after it, hence a statement of its own.
//
//   - enable_bitmapscan off: a bucket's part of the page is its first
//     entries after the checkpoint in (bucket_id, seq) order, which an
//     index scan of changelog_bucket_seq_idx reads and stops at the LIMIT.
//     When the statistics are missing or behind (a bulk import not yet
//     analysed) the planner can believe the bucket holds few entries and
//     read them all with a bitmap scan, then sort them: every entry of the
//     bucket after the checkpoint, a million for a client that far behind.
//   - enable_seqscan off: the same for a sequential scan of the changelog
//     or of a synced table, which no pull statement needs.
//   - enable_hashjoin and enable_mergejoin off (pullPageSettingsSQL, on
//     pgx's connection only): the page statement joins each table to the
//     page by key; as a hash join it would read the table whole.
//   - DateStyle ISO: the hydration reads dates and timestamps as their
//     text output and writes their JSON form from it (see pullColumns),
//     whatever the server's or the role's DateStyle. Only the output
//     style is set; the order of day and month for input is kept.
//
// The statements keep their shape besides: the page is driven by the
// client's buckets (at most maxSubscriptions, plus its own) with LIMIT
// inside each bucket's subquery, and hydration by the page's ids (see
// readStatements.pull). TestPullPlansWithoutStatistics checks the plans on
// tables bulk loaded without ANALYZE.
const pullSettingsSQL = readContextSQL + `, ` + indexWalk + `, set_config('DateStyle', 'ISO', true)`

// pullPageSettingsSQL is pullSettingsSQL for a transaction that may read
// the page statement with rows (pgx's, with the default rules): it also
// rules out hash and merge joins, so that the statement's outer joins of
// the tables to the page (pullPageStatements.build) are nested loops of
// primary key probes whatever the statistics. Only there: with a custom
// OwnershipResolver, the application's own statements run in the pull's
// transaction, and keep their join methods.
const pullPageSettingsSQL = pullSettingsSQL + `, set_config('enable_hashjoin', 'off', true), set_config('enable_mergejoin', 'off', true)`

// changelogPage is a page of the changelog as read, merged per record.
type changelogPage struct {
	boundary int64
	entries  []*pageEntry
	n        int   // changelog entries in the page
	last     int64 // seq of the page's last entry
	hasMore  bool
	// short is set when the page stopped before limit entries because a
	// bucket's reads ran out, not because the changelog did.
	short bool
	// hydrated is set when the page was read with the current rows of its
	// records (pgxPullTx.readPageHydrated): it needs no hydration.
	hydrated bool
}

// delivered is the checkpoint a pull from checkpoint delivers with the
// page: its last entry's seq, or checkpoint when it has none.
func (page *changelogPage) delivered(checkpoint int64) int64 {
	if page.n > 0 {
		return page.last
	}
	return checkpoint
}

// readPage reads the boundary and a page of the changelog after
// checkpoint: the first p.limit entries, in seq order, of the buckets,
// reading at most perBucket+1 entries of each.
//
// With perBucket below the limit, a bucket that had more entries than that
// ("capped") is complete only up to its perBucket-th entry; the lowest such
// seq over the capped buckets is the cut, and every entry of every bucket
// up to the cut has been read. The entries up to the cut are the start of
// the changelog after checkpoint, and the first entry read after the cut is
// the one that follows them, so the page ends at the cut (at the latest)
// and that entry, when it is of a table the request wants, says there is
// more.
func (p *puller) readPage(ctx context.Context, tx pullTx, buckets []string, checkpoint int64, perBucket int) (page *changelogPage, err error) {
	if t, ok := tx.(*pgxPullTx); ok && p.filter == nil {
		// The page and the rows of the tables the previous page
		// delivered (see Engine.pullPage).
		cache := &p.m.snap.pullPageCache
		if names := cache.recent.Load(); names != nil {
			if ps := p.e.pullPage(p.m, *names); ps != nil {
				page, err := t.readPageHydrated(ctx, p, ps, buckets, checkpoint, perBucket)
				if err == nil {
					p.noteTables(page)
				} else {
					// The next page is read without rows first: a
					// statement that fails does not stop every pull.
					cache.recent.Store(nil)
				}
				return page, err
			}
		}
		defer func() {
			if page != nil {
				p.noteTables(page)
			}
		}()
	}
	// One statement reads the boundary and the changelog page; with a
	// per-bucket cap below the limit, also the cut (NULL otherwise).
	rows, err := tx.query(ctx, p.pageSQL(len(buckets), perBucket), buckets, checkpoint, p.limit+1, perBucket)
	if err != nil {
		return nil, fmt.Errorf("synchro: reading the changelog: %w", err)
	}
	defer rows.Close()
	b := newPageBuilder(p)
	// pgtype's types: pgx reads them without the detour through
	// driver.Value that sql.Null* take; database/sql scans them too.
	var (
		boundary, cut, seq pgtype.Int8
		table, id          pgtype.Text
		op                 pgtype.Int2
	)
	for rows.Next() {
		if err := rows.Scan(&boundary, &cut, &seq, &table, &id, &op); err != nil {
			return nil, fmt.Errorf("synchro: reading the changelog: %w", err)
		}
		b.add(boundary.Int64, cut, seq, table, id, op)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("synchro: reading the changelog: %w", err)
	}
	return b.page, nil
}

// pageSQL is the statement that reads a page of n buckets, reading at
// most perBucket+1 entries of each: the capped page when perBucket is
// below the limit, the full page otherwise (merged for a few buckets).
func (p *puller) pageSQL(n, perBucket int) string {
	if perBucket < p.limit {
		return store.PullCappedPage
	}
	return store.PullFullPageFor(n)
}

// noteTables records the tables whose rows page delivers (at most
// maxPullPageTables, none otherwise) for the engine's next page.
func (p *puller) noteTables(page *changelogPage) {
	names := pageTables(p.e.tableOrder, page)
	p.tables = names
	recent := &p.m.snap.pullPageCache.recent
	switch old := recent.Load(); {
	case len(names) == 0:
		if old != nil {
			recent.Store(nil)
		}
	case old == nil || !slices.Equal(*old, names):
		recent.Store(&names)
	}
}

// pageBuilder merges the rows of a page statement into a changelogPage.
type pageBuilder struct {
	p       *puller
	page    *changelogPage
	byKey   map[[2]string]*pageEntry
	pool    []pageEntry // one allocation for the page's entries
	blocked bool
}

func newPageBuilder(p *puller) *pageBuilder {
	return &pageBuilder{p: p, page: &changelogPage{entries: make([]*pageEntry, 0, p.limit)},
		byKey: make(map[[2]string]*pageEntry, p.limit), pool: make([]pageEntry, 0, p.limit)}
}

// add takes one row of the page statement: the boundary, the cut, and an
// entry (seq NULL for none). It returns the entry's record when the entry
// is in the page, nil otherwise.
func (b *pageBuilder) add(boundary int64, cut, seq pgtype.Int8, table, id pgtype.Text, op pgtype.Int2) *pageEntry {
	page := b.page
	page.boundary = boundary
	if !seq.Valid || b.blocked || page.hasMore {
		return nil
	}
	if b.p.filter != nil && !b.p.filter[table.String] {
		b.blocked = true // the checkpoint must not pass it
		return nil
	}
	if page.n == b.p.limit || (cut.Valid && seq.Int64 > cut.Int64) {
		page.hasMore = true
		page.short = page.n < b.p.limit/2
		return nil
	}
	page.n++
	page.last = seq.Int64
	k := [2]string{table.String, id.String}
	if en := b.byKey[k]; en != nil {
		en.op = Operation(op.Int16)
		return en
	}
	b.pool = append(b.pool, pageEntry{table: table.String, id: id.String, op: Operation(op.Int16)})
	en := &b.pool[len(b.pool)-1]
	b.byKey[k] = en
	page.entries = append(page.entries, en)
	return en
}

// hydrate reads the current rows of the page's records that are not
// deletes, one query per table, in table dependency order.
func (p *puller) hydrate(ctx context.Context, tx pullTx, entries []*pageEntry) error {
	n := 0
	for _, en := range entries {
		if en.op != OpDelete && !en.hydrated {
			n++
		}
	}
	if n == 0 { // the page statement read them all (readPageHydrated)
		return nil
	}
	ids := map[string][]string{}
	want := make(map[[2]string]*pageEntry, n)
	for _, en := range entries {
		if en.op == OpDelete || en.hydrated {
			continue
		}
		ids[en.table] = append(ids[en.table], en.id)
		want[[2]string{en.table, en.id}] = en
	}
	_, sqlRules := p.e.ownership.(*JoinResolver)
	for _, table := range p.e.tableOrder {
		if len(ids[table]) == 0 {
			continue
		}
		info := p.m.table(table)
		if info == nil {
			return fmt.Errorf("synchro: pull: table %q is registered but missing from the schema", table)
		}
		if st, err := info.readSQL(p.e.registry, sqlRules); err != nil {
			return fmt.Errorf("synchro: pull: reading %s: %w", table, err)
		} else if st.pull != nil {
			recs, err := tx.hydrate(ctx, info, st.pull, ids[table], p.subs)
			if err != nil {
				return fmt.Errorf("synchro: pull: reading %s: %w", table, err)
			}
			for _, r := range recs {
				if en := want[[2]string{table, r.ID}]; en != nil {
					en.record = r
				}
			}
			continue
		}
		// A custom OwnershipResolver decides (inPullTx then gave a
		// database/sql transaction).
		sqlTx := tx.(sqlPullTx).tx
		got, err := p.e.readRows(ctx, sqlTx, info, p.subs, func(st *readStatements) (*sql.Rows, error) {
			return sqlTx.QueryContext(ctx, st.hydrate, ids[table], p.subs)
		})
		if err != nil {
			return fmt.Errorf("synchro: pull: reading %s: %w", table, err)
		}
		for _, r := range got {
			if en := want[[2]string{table, r.rec.ID}]; en != nil && r.ok {
				en.record = r.rec
			}
		}
	}
	return nil
}
