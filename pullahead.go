package synchro

import (
	"context"
	"slices"
	"sync"

	"github.com/jackc/pgx/v5"

	"github.com/synchrosync/synchro/internal/bucket"
	"github.com/synchrosync/synchro/internal/store"
)

// This file reads the next page of a client that is catching up, page
// after page, in the round trip that reads its client row, instead of in
// a round trip of its own after it: one of a page's three round trips (the
// pending check, the page, the commit with the recording) on pgx's
// connection. See docs/benchmarks.md, issue 14 item 4.

// maxPullHints bounds pullHints: past it, the hints are forgotten at once
// (those clients' next pulls go the usual way, and hint again).
const maxPullHints = 4096

// pullHints remembers, for the clients whose last pull on this engine had
// more to deliver, what their next pull reads ahead with.
type pullHints struct {
	mu    sync.Mutex
	hints map[[2]string]pullHint
}

// pullHint is what pullHints remembers of a client.
type pullHint struct {
	// rowID is the id of the client row, which names the private bucket
	// the next page reads.
	rowID string
	// tables are the tables whose rows the client's last page delivered
	// (puller.tables): the page read ahead reads the rows of those.
	tables []string
	// off is set when a page read ahead was read again by run (short, or
	// with records of another table): the client's pages are read the
	// usual way until it has caught up, instead of twice each.
	off bool
}

// get returns the hint for the user's client, unless it has none or it
// is off.
func (h *pullHints) get(userID, clientID string) (pullHint, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	hint, ok := h.hints[[2]string{userID, clientID}]
	return hint, ok && !hint.off
}

// note records, after a pull, the hint for the client's next pull: next,
// nil when it does not read ahead. A hint that is off stays off for the
// same client row.
func (h *pullHints) note(userID, clientID string, next *pullHint) {
	k := [2]string{userID, clientID}
	h.mu.Lock()
	defer h.mu.Unlock()
	old, ok := h.hints[k]
	if next == nil {
		if ok {
			delete(h.hints, k)
		}
		return
	}
	if !ok && len(h.hints) >= maxPullHints {
		h.hints = nil
	}
	if h.hints == nil {
		h.hints = map[[2]string]pullHint{}
	}
	hint := *next
	hint.off = hint.off || (old.off && old.rowID == hint.rowID)
	h.hints[k] = hint
}

// forget drops the client's hint.
func (h *pullHints) forget(userID, clientID string) {
	h.note(userID, clientID, nil)
}

// canReadAhead reports whether pulls of this engine may read ahead: pgx's
// own transaction reads the page statement with rows, which the default
// rules need (see inPullTx).
func (e *Engine) canReadAhead() bool {
	_, sqlRules := e.ownership.(*JoinResolver)
	return sqlRules && !e.pullViaSQL && !e.notPgx.Load()
}

// aheadRead is what readAhead read in one snapshot: pullState's client row,
// compaction boundary and pending check, and the page after the checkpoint
// for the client row rowID.
type aheadRead struct {
	client   *clientRow
	boundary int64
	pending  bool
	// page was read with the buckets of the subscriptions and of the
	// private bucket of rowID, perBucket entries of each at most; nil when
	// it must be read again (see readAheadIn).
	page      *changelogPage
	rowID     string
	perBucket int
	// tables are the tables whose rows the page delivers (noteTables).
	tables []string
}

// readAhead reads, in one round trip, what pullState reads and the page a
// pull from checkpoint delivers when the client row is the hinted one
// (hinted by the client's previous pull, see pullHints): BEGIN, the
// settings, store.PullState, the page statement with the rows of the
// hinted tables, and COMMIT, in one batch. It returns nil when it could
// not: with another driver or a custom OwnershipResolver, with tables that
// no page statement reads together (see Engine.pullPage), or when any of
// those statements failed (the pull then reads as usual, and meets the
// error again there).
//
// The pull decides from the client row as it does from pullState's, and
// delivers the page only when that row is rowID, no resubscription wrote
// to the changelog after the page was read, and run would have delivered
// the page as read (deliverAhead).
func (e *Engine) readAhead(ctx context.Context, m *manifest, userID, clientID string, subs []string, hint pullHint, checkpoint int64, limit int) *aheadRead {
	if !e.canReadAhead() {
		return nil
	}
	ps := e.pullPage(m, hint.tables)
	if ps == nil {
		return nil
	}
	var ahead *aheadRead
	_ = e.inPullTx(ctx, true, func(tx pullTx) error {
		if t, ok := tx.(*pgxPullTx); ok {
			ahead = e.readAheadIn(ctx, t, m, ps, userID, clientID, subs, hint.rowID, checkpoint, limit)
		} else {
			e.notPgx.Store(true) // the pool's driver is another's
		}
		return nil
	})
	return ahead
}

// readAheadIn is readAhead in tx, not begun yet, with ps the page
// statement.
func (e *Engine) readAheadIn(ctx context.Context, tx *pgxPullTx, m *manifest, ps *pullPageStatements, userID, clientID string, subs []string, rowID string, checkpoint int64, limit int) *aheadRead {
	tx.commitAfter = true
	a := &aheadRead{rowID: rowID}
	if err := tx.exec(ctx, pullPageSettingsSQL, userID); err != nil { // queued
		return nil
	}
	tx.queueRow(store.PullState, func(row pgx.Row) error {
		c, err := scanClient(row, &a.boundary, &a.pending)
		a.client = c
		return err
	}, userID, clientID, subs, checkpoint, bucket.ClientPrefix)
	p := &puller{e: e, m: m, userID: userID, subs: subs, limit: limit}
	buckets := append(slices.Clone(subs), bucket.Client(rowID))
	a.perBucket = bucketReadCap(limit, len(buckets))
	utc := isUTCZone(tx.conn.PgConn().ParameterStatus("TimeZone"))
	page, err := tx.readPageIn(ctx, p, ps, buckets, checkpoint, a.perBucket, utc)
	if err != nil || a.client == nil {
		return nil
	}
	p.noteTables(page)
	a.tables = p.tables
	e.aheadReads.Add(1)
	// A time zone reloaded since the last statement applied to this batch
	// (see readPageHydrated): the page's timestamptz values were written
	// in the wrong offset, and are read again by run.
	if !utc || isUTCZone(tx.conn.PgConn().ParameterStatus("TimeZone")) {
		a.page = page
	}
	return a
}

// deliverAhead delivers the page read ahead from checkpoint (readAhead),
// as run would have, and returns the compaction boundary read with it; or
// it delivers nothing, and reports false, when run must read the page
// instead: a bucket's reads ran out before the page was full (run reads
// each bucket as far as the page could reach), or records of the page
// were not looked up with it (a table the page statement did not read).
// When compaction passed the checkpoint, the boundary says so and nothing
// is delivered.
func (p *puller) deliverAhead(ahead *aheadRead, checkpoint int64) (int64, bool) {
	page := ahead.page
	if p.cutShort(page, ahead.perBucket, checkpoint) {
		return 0, false
	}
	if checkpoint < page.boundary { // compaction passed it
		return page.boundary, true
	}
	for _, en := range page.entries {
		if en.op != OpDelete && !en.hydrated {
			return 0, false
		}
	}
	p.tables = ahead.tables
	p.deliver(page, page.delivered(checkpoint))
	p.e.aheadPages.Add(1)
	return page.boundary, true
}
