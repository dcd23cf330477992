package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/synchrosync/synchro"
	"github.com/synchrosync/synchro/client/internal/local"
)

// maxRepairs bounds the repairs (a new contract, a new registration) one
// round makes before it gives up.
const maxRepairs = 3

// Sync makes one round of sync: it registers the client and builds or
// moves the local tables to the server's contract when needed, takes a
// snapshot when one is needed (resuming one under way), pushes every
// pending local change in batches, and pulls until the server has nothing
// more. It returns the first error; what was applied before it stays
// applied. Rounds of concurrent calls take turns.
func (c *Client) Sync(ctx context.Context) error {
	ctx, done, err := c.enter(ctx)
	if err != nil {
		return err
	}
	defer done()
	defer c.flush()
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.round(ctx)
}

// round is Sync with c.mu held.
func (c *Client) round(ctx context.Context) error {
	prev := c.Status()
	c.setStatus(Status{State: StateSyncing, LastSync: prev.LastSync})
	var err error
	for repairs := 0; ; repairs++ {
		if err = c.roundOnce(ctx); err == nil {
			c.setStatus(Status{State: StateIdle, LastSync: time.Now()})
			return nil
		}
		if ctx.Err() != nil || repairs == maxRepairs || !c.repair(ctx, &err) {
			break
		}
	}
	if ctx.Err() != nil {
		c.setStatus(prev)
		return ctx.Err()
	}
	c.failed(err, time.Time{})
	return err
}

// repair mends what err tells of: a schema mismatch (the server's
// contract changed: the local tables follow it) or an unknown client
// (registered again). It reports whether the round may be tried again;
// when the repair itself fails, *err becomes its error.
func (c *Client) repair(ctx context.Context, err *error) bool {
	status, code := serverCode(*err)
	switch {
	case status == http.StatusConflict: // schema_mismatch, the only 409
		if rerr := c.refreshSchema(ctx); rerr != nil {
			*err = rerr
			return false
		}
		return true
	case code == "client_not_registered":
		c.registered = false
		return true
	}
	return false
}

// roundOnce registers when needed, snapshots when needed, pushes, pulls.
// A snapshot a pull asked for is followed by another push and pull, so
// that changes kept across it are sent in the same round.
func (c *Client) roundOnce(ctx context.Context) error {
	if !c.registered {
		if err := c.register(ctx); err != nil {
			return err
		}
	}
	if err := c.snapshotIfNeeded(ctx); err != nil {
		return err
	}
	for range 3 {
		if err := c.pushAll(ctx); err != nil {
			return err
		}
		snapshotted, err := c.pullAll(ctx)
		if err != nil || !snapshotted {
			return err
		}
	}
	return nil
}

// register reads the server's contract, builds or moves the local tables
// to it, and registers the client.
func (c *Client) register(ctx context.Context) error {
	if err := c.refreshSchema(ctx); err != nil {
		return err
	}
	s := c.schema.Load()
	req := &synchro.RegisterRequest{
		ClientID: c.clientID, Platform: c.cfg.Platform, AppVersion: c.cfg.AppVersion,
		SchemaVersion: s.Contract.SchemaVersion, SchemaHash: s.Contract.SchemaHash,
	}
	if c.cfg.ClientName != "" {
		req.ClientName = &c.cfg.ClientName
	}
	var resp synchro.RegisterResponse
	if err := c.api.call(ctx, http.MethodPost, "/sync/register", 0, req, &resp); err != nil {
		return err
	}
	c.registered = true
	return nil
}

// refreshSchema reads the server's contract and moves the local tables to
// it when it differs from theirs.
func (c *Client) refreshSchema(ctx context.Context) error {
	var contract synchro.SchemaResponse
	if err := c.api.call(ctx, http.MethodGet, "/sync/schema", 0, nil, &contract); err != nil {
		return err
	}
	next, err := local.NewSchema(contract)
	if err != nil {
		return fmt.Errorf("synchro client: the server's %w", err)
	}
	cur := c.schema.Load()
	if cur == nil {
		if err := c.store.Install(ctx, next); err != nil {
			return fmt.Errorf("synchro client: creating the local tables: %w", err)
		}
		c.schema.Store(next)
		return nil
	}
	if cur.Contract.SchemaVersion == next.Contract.SchemaVersion && cur.Contract.SchemaHash == next.Contract.SchemaHash {
		return nil
	}
	m, err := c.store.Migrate(ctx, cur, next, time.Now())
	if err != nil {
		return fmt.Errorf("synchro client: moving the local tables to schema version %d: %w", next.Contract.SchemaVersion, err)
	}
	c.schema.Store(next)
	how := "rebuilt"
	if m.InPlace {
		how = "in_place"
	}
	c.logger.InfoContext(ctx, "synchro client: the server's schema changed", "version", next.Contract.SchemaVersion, "how", how,
		"rejected", len(m.Rejected))
	c.emit(Event{Kind: EventSchemaChanged, Reason: how})
	c.emitRejections(m.Rejected)
	return nil
}

// snapshotIfNeeded takes a snapshot when the file has none, one is under
// way, or one is needed.
func (c *Client) snapshotIfNeeded(ctx context.Context) error {
	st, err := c.store.State(ctx)
	if err != nil {
		return fmt.Errorf("synchro client: %w", err)
	}
	switch {
	case st.SnapshotNeeded != "":
		return c.snapshot(ctx, st.SnapshotNeeded, false)
	case st.SnapshotRunning:
		return c.snapshot(ctx, "", true)
	case !st.SnapshotDone:
		return c.snapshot(ctx, "initial", false)
	}
	return nil
}

// snapshot pages through a snapshot into the local tables, each page with
// its cursor (the last with the checkpoint) in one transaction, so that a
// snapshot cut short resumes at its next page. resume continues the one
// under way; otherwise a new one starts, for reason. A cursor the server
// no longer takes (another snapshot of the client started since) starts
// it again. The next page is fetched while a page is written.
func (c *Client) snapshot(ctx context.Context, reason string, resume bool) error {
	schema := c.schema.Load()
	var cursor *synchro.SnapshotCursor
	if resume {
		st, err := c.store.State(ctx)
		if err != nil {
			return fmt.Errorf("synchro client: %w", err)
		}
		cursor = st.Cursor
	} else if err := c.beginSnapshot(ctx, schema, reason); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	var inflight <-chan snapshotPage
	defer func() {
		cancel()
		if inflight != nil {
			<-inflight
		}
	}()
	inflight = c.fetchSnapshot(ctx, schema, cursor)
	restarted := false
	for {
		got := <-inflight
		inflight = nil
		if status, _ := serverCode(got.err); status == http.StatusBadRequest && cursor != nil && !restarted {
			c.logger.InfoContext(ctx, "synchro client: the server refused the snapshot cursor: starting the snapshot again", "error", got.err)
			if err := c.beginSnapshot(ctx, schema, "restarted"); err != nil {
				return err
			}
			cursor, restarted = nil, true
			inflight = c.fetchSnapshot(ctx, schema, nil)
			continue
		}
		if got.err != nil {
			return got.err
		}
		page := got.page
		if page.HasMore && page.Cursor != nil {
			inflight = c.fetchSnapshot(ctx, schema, page.Cursor)
		}
		applied, err := c.store.ApplySnapshotPage(ctx, schema, cursor, page)
		if err != nil {
			return fmt.Errorf("synchro client: applying a snapshot page: %w", err)
		}
		c.received(ctx, applied)
		if !page.HasMore {
			return nil
		}
		cursor = page.Cursor
	}
}

// snapshotPage is the outcome of a snapshot request.
type snapshotPage struct {
	page *synchro.SnapshotResponse
	err  error
}

// fetchSnapshot asks for the snapshot page at cursor in a goroutine of its
// own; the channel gives the outcome (the caller receives it, always).
func (c *Client) fetchSnapshot(ctx context.Context, schema *local.Schema, cursor *synchro.SnapshotCursor) <-chan snapshotPage {
	out := make(chan snapshotPage, 1)
	req := &synchro.SnapshotRequest{ClientID: c.clientID, Cursor: cursor, Limit: c.cfg.SnapshotLimit,
		SchemaVersion: schema.Contract.SchemaVersion, SchemaHash: schema.Contract.SchemaHash}
	go func() {
		page := &synchro.SnapshotResponse{}
		err := c.api.call(ctx, http.MethodPost, "/sync/snapshot", 0, req, page)
		out <- snapshotPage{page, err}
	}()
	return out
}

func (c *Client) beginSnapshot(ctx context.Context, schema *local.Schema, reason string) error {
	if err := c.store.BeginSnapshot(ctx, schema); err != nil {
		return fmt.Errorf("synchro client: starting a snapshot: %w", err)
	}
	c.logger.InfoContext(ctx, "synchro client: snapshot", "reason", reason)
	c.emit(Event{Kind: EventSnapshot, Reason: reason})
	return nil
}

// received reports what a page wrote.
func (c *Client) received(ctx context.Context, a *local.Applied) {
	if a.Unknown > 0 {
		c.logger.WarnContext(ctx, "synchro client: skipped records of tables the contract lacks", "records", a.Unknown)
	}
	if len(a.Tables) > 0 {
		c.emit(Event{Kind: EventReceived, Tables: a.Tables})
	}
}

// maxPushBatches bounds the pushes of one round, so that an application
// writing faster than the server takes its changes still sees rounds end.
const maxPushBatches = 1000

// pushAll pushes the outbox in batches until it is empty, or a batch kept
// changes for a retry (rejected_retryable: the next round tries them
// again, after a pull that may bring what they wait for).
func (c *Client) pushAll(ctx context.Context) error {
	schema := c.schema.Load()
	c.retryAfter.Store(false)
	for range maxPushBatches {
		changes, err := c.store.Changes(ctx)
		if err != nil {
			return fmt.Errorf("synchro client: %w", err)
		}
		c.changes.Store(changes)
		batch, rejected, err := c.store.NextBatch(ctx, schema, c.cfg.PushBatch, c.logger)
		if err != nil {
			return fmt.Errorf("synchro client: %w", err)
		}
		c.emitRejections(rejected)
		if len(batch) == 0 {
			return nil
		}
		req := &synchro.PushRequest{ClientID: c.clientID, Changes: make([]synchro.PushRecord, len(batch)),
			SchemaVersion: schema.Contract.SchemaVersion, SchemaHash: schema.Contract.SchemaHash}
		for i, e := range batch {
			req.Changes[i] = e.Record()
		}
		var resp synchro.PushResponse
		if err := c.api.call(ctx, http.MethodPost, "/sync/push", 0, req, &resp); err != nil {
			return err
		}
		settled, err := c.store.Settle(ctx, schema, batch, &resp)
		if err != nil {
			return fmt.Errorf("synchro client: settling a push: %w", err)
		}
		c.emitRejections(settled.Rejected)
		if len(settled.Tables) > 0 {
			c.emit(Event{Kind: EventReceived, Tables: settled.Tables})
		}
		if settled.Retry > 0 {
			c.retryAfter.Store(true)
			c.logger.DebugContext(ctx, "synchro client: changes kept for a later push", "count", settled.Retry, "stale_client", settled.StaleClient)
			return nil
		}
	}
	return nil
}

// pullAll pulls until the server has nothing more, each page with its
// checkpoint in one transaction. A snapshot the server asks for is taken
// (snapshotted true) and the pulls go on after it.
func (c *Client) pullAll(ctx context.Context) (snapshotted bool, err error) {
	idle := 0
	for {
		f, err := c.fetchPull(ctx, 0)
		if err != nil {
			return snapshotted, err
		}
		more, snap, err := c.applyPull(ctx, f)
		snapshotted = snapshotted || snap
		if err != nil || !more {
			return snapshotted, err
		}
		// A server that keeps saying has_more without moving the
		// checkpoint or sending anything must not keep the round going.
		if f.page.Checkpoint == f.from && len(f.page.Changes)+len(f.page.Deletes) == 0 && !snap {
			if idle++; idle == 3 {
				c.logger.WarnContext(ctx, "synchro client: the server says it has more but sends nothing; pulling again next round", "checkpoint", f.from)
				return snapshotted, nil
			}
		} else {
			idle = 0
		}
	}
}

// fetched is a pull page with what it was asked from.
type fetched struct {
	schema *local.Schema
	from   int64
	page   synchro.PullResponse
}

// fetchPull asks for the pull page after the stored checkpoint.
func (c *Client) fetchPull(ctx context.Context, wait time.Duration) (*fetched, error) {
	schema := c.schema.Load()
	st, err := c.store.State(ctx)
	if err != nil {
		return nil, fmt.Errorf("synchro client: %w", err)
	}
	f := &fetched{schema: schema, from: st.Checkpoint}
	req := &synchro.PullRequest{ClientID: c.clientID, Checkpoint: st.Checkpoint, Limit: c.cfg.PullLimit,
		SchemaVersion: schema.Contract.SchemaVersion, SchemaHash: schema.Contract.SchemaHash}
	if err := c.api.call(ctx, http.MethodPost, "/sync/pull", wait, req, &f.page); err != nil {
		return nil, err
	}
	return f, nil
}

// applyPull applies a fetched page (c.mu held). A page fetched before the
// local state moved (another round applied pages, or the contract
// changed) is dropped: more is then true, so that it is asked again.
func (c *Client) applyPull(ctx context.Context, f *fetched) (more, snapshotted bool, err error) {
	if c.schema.Load() != f.schema {
		return true, false, nil
	}
	if f.page.SnapshotRequired {
		reason := f.page.SnapshotReason
		if reason == "" {
			reason = "snapshot_required"
		}
		if err := c.snapshot(ctx, reason, false); err != nil {
			return false, true, err
		}
		return true, true, nil
	}
	applied, err := c.store.ApplyPull(ctx, f.schema, f.from, &f.page)
	if errors.Is(err, local.ErrMoved) {
		return true, false, nil
	}
	if err != nil {
		return false, false, fmt.Errorf("synchro client: applying a pull page: %w", err)
	}
	c.received(ctx, applied)
	return f.page.HasMore, false, nil
}
