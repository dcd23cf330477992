package client

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/synchrosync/synchro"
	"github.com/synchrosync/synchro/client/internal/local"
	"github.com/synchrosync/synchro/client/internal/uuid"
)

// Client keeps one local SQLite file in sync with a server. Its methods
// are safe for concurrent use; rounds of sync (Sync, Run) take turns.
type Client struct {
	cfg      Config
	logger   *slog.Logger
	store    *local.Store
	api      *api
	clientID string
	schema   atomic.Pointer[local.Schema] // nil until the tables exist

	// life ends at Close; wg counts the calls under way.
	life      context.Context
	closeLife context.CancelFunc
	lifeMu    sync.Mutex
	closed    bool
	wg        sync.WaitGroup
	closeErr  error
	closeOnce sync.Once

	// mu serialises the rounds and everything they change.
	mu         sync.Mutex
	registered bool // registered with the server since Open

	// changes is _synchro_control.changes when the outbox was last read
	// for a push; retryAfter reports that the last push kept changes for a
	// retry.
	changes    atomic.Int64
	retryAfter atomic.Bool

	statusMu sync.Mutex
	status   Status

	evMu    sync.Mutex
	events  []Event
	flushMu sync.Mutex
}

// Open opens the local database at cfg.Path (creating it), with its
// tables when it has them (or cfg.Contract gives them). It does not reach
// the server: Sync and Run do.
func Open(ctx context.Context, cfg Config) (*Client, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	store, err := local.Open(ctx, cfg.Path)
	if err != nil {
		return nil, fmt.Errorf("synchro client: %w", err)
	}
	c := &Client{
		cfg:    cfg,
		logger: cfg.Logger,
		store:  store,
		api: &api{base: strings.TrimRight(cfg.ServerURL, "/"), hc: cfg.HTTPClient, token: cfg.Token,
			appVersion: cfg.AppVersion, timeout: cfg.RequestTimeout},
	}
	c.life, c.closeLife = context.WithCancel(context.Background())
	if err := c.load(ctx); err != nil {
		c.closeLife()
		return nil, errors.Join(fmt.Errorf("synchro client: %w", err), store.Close())
	}
	return c, nil
}

// load reads the file's state: the client id and the tables.
func (c *Client) load(ctx context.Context) error {
	st, err := c.store.State(ctx)
	if err != nil {
		return err
	}
	switch {
	case st.ClientID == "":
		c.clientID = c.cfg.ClientID
		if c.clientID == "" {
			c.clientID = uuid.New()
		}
		if err := c.store.SetClientID(ctx, c.clientID); err != nil {
			return err
		}
	case c.cfg.ClientID != "" && c.cfg.ClientID != st.ClientID:
		return fmt.Errorf("the file %s belongs to client %q, not to Config.ClientID %q", c.cfg.Path, st.ClientID, c.cfg.ClientID)
	default:
		c.clientID = st.ClientID
	}
	if st.Schema == nil && c.cfg.Contract != nil {
		schema, err := local.NewSchema(*c.cfg.Contract)
		if err != nil {
			return fmt.Errorf("Config.Contract: %w", err)
		}
		if err := c.store.Install(ctx, schema); err != nil {
			return err
		}
		st.Schema = schema
	}
	if st.Schema != nil {
		c.schema.Store(st.Schema)
	}
	return nil
}

// DB returns the local database, for the application's own reads and
// writes. Writes to the synced tables are captured and pushed; the
// client's bookkeeping tables (named _synchro_...) are not the
// application's to change. Transactions begin IMMEDIATE (one writer at a
// time, waiting for each other), foreign keys are enforced, and the file
// is in WAL mode. It is closed by Close.
func (c *Client) DB() *sql.DB { return c.store.DB() }

// ClientID returns the id this installation registers with.
func (c *Client) ClientID() string { return c.clientID }

// Tables returns the synced tables of the contract the local tables
// follow; nil before they exist (the first Sync creates them).
func (c *Client) Tables() []synchro.SchemaTable {
	s := c.schema.Load()
	if s == nil {
		return nil
	}
	return append([]synchro.SchemaTable(nil), s.Contract.Tables...)
}

// Status returns the client's status.
func (c *Client) Status() Status {
	c.statusMu.Lock()
	defer c.statusMu.Unlock()
	return c.status
}

// Pending lists the local changes waiting for the server, in the order
// they will be pushed.
func (c *Client) Pending(ctx context.Context) ([]Pending, error) {
	ctx, done, err := c.enter(ctx)
	if err != nil {
		return nil, err
	}
	defer done()
	list, err := c.store.Pending(ctx)
	if err != nil {
		return nil, fmt.Errorf("synchro client: %w", err)
	}
	out := make([]Pending, len(list))
	for i, p := range list {
		out[i] = Pending{Table: p.Table, ID: p.ID, Operation: p.Operation, Sent: p.Sent, Attempts: p.Attempts, LastError: p.LastError}
		out[i].BaseUpdatedAt, _ = local.ParseTime(p.Base)
		out[i].ChangedAt, _ = local.ParseTime(p.ClientUpdatedAt)
	}
	return out, nil
}

// Rejections lists the local changes the server refused or lost a
// conflict with, oldest first, until DeleteRejections removes them.
func (c *Client) Rejections(ctx context.Context) ([]Rejection, error) {
	ctx, done, err := c.enter(ctx)
	if err != nil {
		return nil, err
	}
	defer done()
	list, err := c.store.Rejections(ctx)
	if err != nil {
		return nil, fmt.Errorf("synchro client: %w", err)
	}
	out := make([]Rejection, len(list))
	for i, r := range list {
		out[i] = rejectionOf(r)
	}
	return out, nil
}

// DeleteRejections removes the rejections numbered seqs (Rejection.Seq),
// once the application has dealt with them; without seqs, every one.
func (c *Client) DeleteRejections(ctx context.Context, seqs ...int64) error {
	ctx, done, err := c.enter(ctx)
	if err != nil {
		return err
	}
	defer done()
	if err := c.store.DeleteRejections(ctx, seqs...); err != nil {
		return fmt.Errorf("synchro client: %w", err)
	}
	return nil
}

// Close stops the client's calls under way (Sync and Run return), waits
// for them, and closes the local database. Changes not yet pushed stay in
// the file for the next Open.
func (c *Client) Close() error {
	c.closeOnce.Do(func() {
		c.lifeMu.Lock()
		c.closed = true
		c.lifeMu.Unlock()
		c.closeLife()
		c.wg.Wait()
		c.closeErr = c.store.Close()
		c.setStatus(Status{State: StateClosed})
		c.flush()
	})
	return c.closeErr
}

// enter starts a call: it fails after Close, and its context ends at
// Close. done ends the call.
func (c *Client) enter(ctx context.Context) (context.Context, func(), error) {
	c.lifeMu.Lock()
	if c.closed {
		c.lifeMu.Unlock()
		return nil, nil, ErrClosed
	}
	c.wg.Add(1)
	c.lifeMu.Unlock()
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(c.life, cancel)
	return ctx, func() {
		stop()
		cancel()
		c.wg.Done()
	}, nil
}

// setStatus records the status, reporting a change of state.
func (c *Client) setStatus(s Status) {
	c.statusMu.Lock()
	prev := c.status
	if s.LastSync.IsZero() {
		s.LastSync = prev.LastSync
	}
	c.status = s
	c.statusMu.Unlock()
	if prev.State != s.State || (s.Err != nil) != (prev.Err != nil) {
		c.emit(Event{Kind: EventState, Status: s})
	}
}

// failed records the status of a round that failed with err; Run retries
// at retryAt (zero: not known yet).
func (c *Client) failed(err error, retryAt time.Time) {
	state := StateError
	if isOffline(err) {
		state = StateOffline
	}
	c.setStatus(Status{State: state, Err: err, RetryAt: retryAt})
}

// emit queues an event for flush.
func (c *Client) emit(ev Event) {
	if c.cfg.OnEvent == nil {
		return
	}
	c.evMu.Lock()
	c.events = append(c.events, ev)
	c.evMu.Unlock()
}

// flush delivers the queued events, in order, from one goroutine at a
// time; the client's locks are not held. When another goroutine (or
// OnEvent itself, calling Sync) is flushing, that one delivers them.
func (c *Client) flush() {
	if c.cfg.OnEvent == nil {
		return
	}
	for {
		if !c.flushMu.TryLock() {
			return
		}
		for {
			c.evMu.Lock()
			evs := c.events
			c.events = nil
			c.evMu.Unlock()
			if len(evs) == 0 {
				break
			}
			for _, ev := range evs {
				c.cfg.OnEvent(ev)
			}
		}
		c.flushMu.Unlock()
		// An event queued while this goroutine held the lock, by one that
		// then found it taken, is delivered here.
		c.evMu.Lock()
		more := len(c.events) > 0
		c.evMu.Unlock()
		if !more {
			return
		}
	}
}

// emitRejections reports rejections as events.
func (c *Client) emitRejections(list []local.Rejection) {
	for _, r := range list {
		rej := rejectionOf(r)
		kind := EventRejected
		if r.Status == synchro.PushStatusConflict {
			kind = EventConflict
		}
		c.emit(Event{Kind: kind, Rejection: &rej})
	}
}
