package synchro

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/synchrosync/synchro/internal/changenote"
	"github.com/synchrosync/synchro/internal/pgident"
	"github.com/synchrosync/synchro/internal/pgxconn"
)

// This file holds live sync: pulls that wait for a change (PullWait) and
// the listener that wakes them (Listen).
//
// # How a change reaches a waiting pull
//
// Change capture (package wal) writes each batch of changelog rows in one
// transaction and, in the same transaction, sends a NOTIFY on
// ChangesChannel naming the buckets it wrote to (package changenote).
// PostgreSQL delivers it at commit to every session listening on the
// channel, in every process. Engine.Listen is such a session: it hands each
// notification to the pulls waiting in its process whose client follows one
// of the named buckets, and to no other. A waiting pull holds no database
// connection; only Listen holds one, for the whole process.
//
// A notification can be missed (the listener reconnecting, a process
// without Listen) or coalesced; that costs latency, never a change: a
// waiting pull re-reads at least every ListenConfig.Recheck, and every
// waiting pull re-reads when the listener (re)connects.

// ChangesChannel is the PostgreSQL notification channel on which change
// capture announces the buckets of each changelog transaction it commits.
const ChangesChannel = changenote.Channel

// MaxPullWait is the longest a PullWait waits; longer waits are clamped to
// it.
const MaxPullWait = 60 * time.Second

// DefaultListenRecheck is ListenConfig.Recheck's default.
const DefaultListenRecheck = 30 * time.Second

// unlistenedRecheck is how often a waiting pull re-reads while no listener
// is connected in its process: it then polls.
const unlistenedRecheck = time.Second

// ListenConfig configures Engine.Listen.
type ListenConfig struct {
	// Recheck is how often a waiting pull re-reads even when no
	// notification woke it: it bounds the delay of a change whose
	// notification was missed, and of a subscription that changed without
	// a change to the client's buckets (see PullWait). Defaults to
	// DefaultListenRecheck; must not be negative.
	Recheck time.Duration
}

// Listen receives the notifications of change capture and wakes the
// PullWait calls of this engine they concern. It blocks until ctx ends,
// then returns nil; run it in a goroutine of its own, once per engine (a
// second concurrent call fails).
//
// Listen holds one connection of Config.DB for as long as it runs, and
// needs pgx's database/sql driver (github.com/jackc/pgx/v5/stdlib); the
// connection must reach PostgreSQL directly or through a pooler in session
// mode (LISTEN does not survive transaction pooling). When the connection
// fails, Listen logs it, reconnects with backoff (up to 5 s) and, once
// listening again, wakes every waiting pull to re-read; meanwhile waiting
// pulls re-read every second.
func (e *Engine) Listen(ctx context.Context, cfg ListenConfig) error {
	if cfg.Recheck < 0 {
		return errors.New("synchro: ListenConfig.Recheck must not be negative")
	}
	if cfg.Recheck == 0 {
		cfg.Recheck = DefaultListenRecheck
	}
	h := e.live
	if !h.listening.TryLock() {
		return errors.New("synchro: Listen is already running on this engine")
	}
	defer h.listening.Unlock()
	h.setRecheck(cfg.Recheck)
	defer h.setConnected(false)

	wait, failures := 100*time.Millisecond, 0
	for ctx.Err() == nil {
		err := e.listenOnce(ctx, h)
		if ctx.Err() != nil {
			break
		}
		if errors.Is(err, errNotPgx) {
			return err
		}
		failures++
		e.logger.Log(ctx, repeatLevel(failures, slog.LevelWarn), "synchro: change listener interrupted; reconnecting",
			"error", err, "retry_in", wait)
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
		wait = min(2*wait, 5*time.Second)
	}
	return nil
}

// repeatLevel is level for the first of a run of failures, Debug for the
// others: a database that stays away is logged once, not every retry.
func repeatLevel(failures int, level slog.Level) slog.Level {
	if failures > 1 {
		return slog.LevelDebug
	}
	return level
}

// errNotPgx is Listen's error for a Config.DB of another driver.
var errNotPgx = errors.New("synchro: Listen needs pgx's database/sql driver (github.com/jackc/pgx/v5/stdlib) for Config.DB")

// listenOnce listens on one connection until it fails or ctx ends.
func (e *Engine) listenOnce(ctx context.Context, h *liveHub) error {
	conn, err := e.db.Conn(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close() }()
	native, err := pgxconn.Raw(conn, func(pc *pgx.Conn) error {
		if _, err := pc.Exec(ctx, "LISTEN "+pgident.Quote(ChangesChannel)); err != nil {
			return err
		}
		h.setConnected(true)
		h.listens.Add(1)
		defer h.setConnected(false)
		h.wakeAll() // what was announced while nobody listened
		for {
			n, err := pc.WaitForNotification(ctx)
			if err != nil {
				// The session still listens: database/sql must not
				// hand the connection to anyone else.
				return errors.Join(err, driver.ErrBadConn)
			}
			h.notes.Add(1)
			if note := changenote.Decode(n.Payload); note.All {
				h.wakeAll()
			} else {
				h.wake(note.Buckets)
			}
		}
	})
	if err != nil || native {
		return err
	}
	return errNotPgx
}

// PullWait is Pull that waits up to wait for a change when there is none
// yet (long polling). When the client has something to receive (changes,
// deletes, HasMore, a changed checkpoint, BucketUpdates), or must snapshot
// again, or the request is refused, it answers at once, exactly as Pull.
// Otherwise it waits until a change reaches one of the client's buckets,
// then answers with it, or until wait passes, then answers Pull's empty
// page. wait is clamped to MaxPullWait; wait <= 0 is Pull.
//
// While it waits it holds no database connection. It re-reads when
// Listen, running in the same process, reports a change to one of the
// client's buckets (its subscriptions and its private bucket, as of its
// last read), at least every ListenConfig.Recheck, and every second while
// no listener is connected; each re-read is a Pull (with its hooks and
// metrics) and re-evaluates the client's subscriptions, so a client whose
// subscription rule gains a bucket is answered by the next re-read. A
// re-read that fails for the database's sake (PostgreSQL restarting, a
// lost connection) does not end the wait: it is tried again every second,
// and when the wait passes the empty page is answered; a refusal of the
// request (an unknown client, a schema mismatch, ...) is returned at once,
// as is every error of the first read. When ctx ends it returns ctx's
// error at once.
func (e *Engine) PullWait(ctx context.Context, userID string, req *PullRequest, wait time.Duration) (*PullResponse, error) {
	if wait <= 0 {
		return e.Pull(ctx, userID, req)
	}
	deadline := time.Now().Add(min(wait, MaxPullWait))
	h := e.live
	w := h.join()
	defer h.leave(w)
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	var quiet *PullResponse // the last answer with nothing to give
	for {
		var watch []string
		resp, err := e.pullMetered(ctx, userID, req, &watch)
		retry := false
		switch {
		case err != nil && (quiet == nil || ctx.Err() != nil || refusal(err)):
			return resp, err
		case err != nil:
			// A re-read failed for the database's sake (PostgreSQL
			// restarting, say): the empty answer still holds, so the
			// wait goes on and the read is tried again in a second.
			retry = true
		case !quietPage(req, resp):
			return resp, nil
		default:
			quiet = resp
		}
		left := time.Until(deadline)
		if left <= 0 {
			return quiet, nil
		}
		d := min(left, unlistenedRecheck)
		if !retry {
			if h.watch(w, watch) {
				continue // one of its buckets was announced while it read
			}
			d = min(left, h.recheckEvery())
		}
		if timer == nil {
			timer = time.NewTimer(d)
		} else {
			timer.Reset(d)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-w.wake:
			timer.Stop()
		case <-timer.C:
		}
		h.pend(w)
	}
}

// refusal reports whether err, from a pull, refuses the request itself (a
// bad request, an unknown client, a schema mismatch ...), rather than
// telling of trouble with the database: a waiting pull returns those at
// once.
func refusal(err error) bool {
	var br interface{ BadRequest() bool }
	if errors.As(err, &br) && br.BadRequest() {
		return true
	}
	for _, target := range []error{ErrSchemaMismatch, ErrClientNotRegistered, ErrStaleClient, ErrSnapshotRequired,
		ErrUpgradeRequired, ErrTableNotRegistered} {
		if errors.Is(err, target) {
			return true
		}
	}
	return false
}

// quietPage reports whether resp, the answer to req, gives the client
// nothing: the answer a waiting pull keeps waiting on.
func quietPage(req *PullRequest, resp *PullResponse) bool {
	return len(resp.Changes) == 0 && len(resp.Deletes) == 0 && !resp.HasMore && !resp.SnapshotRequired &&
		resp.BucketUpdates == nil && resp.Checkpoint == req.Checkpoint
}

// liveHub routes wake-ups to the waiting pulls of one engine.
type liveHub struct {
	// listening is held by the running Listen.
	listening sync.Mutex

	mu sync.Mutex
	// byBucket holds the waiters following each bucket.
	byBucket map[string]map[*waiter]struct{}
	// pending holds the waiters reading: they note the buckets announced
	// meanwhile, and read again when one of them is theirs.
	pending   map[*waiter]struct{}
	connected bool
	recheck   time.Duration
	// notes counts the notifications received, listens the sessions that
	// started listening (tests).
	notes, listens atomic.Int64
}

// waiter is one waiting pull.
type waiter struct {
	// wake receives at most one pending wake-up.
	wake chan struct{}
	// buckets are those the waiter is filed under in byBucket.
	buckets []string
	// missed holds the buckets announced while the waiter read (pending),
	// missedAll that there were too many to keep, or an "all".
	missed    map[string]struct{}
	missedAll bool
}

// maxMissed bounds the buckets a reading waiter keeps; past it, any
// bucket counts as announced.
const maxMissed = 64

func newLiveHub() *liveHub {
	return &liveHub{byBucket: map[string]map[*waiter]struct{}{}, pending: map[*waiter]struct{}{},
		recheck: DefaultListenRecheck}
}

// join adds a waiter, pending: it is about to read.
func (h *liveHub) join() *waiter {
	w := &waiter{wake: make(chan struct{}, 1)}
	h.mu.Lock()
	h.pending[w] = struct{}{}
	h.mu.Unlock()
	return w
}

// leave removes w.
func (h *liveHub) leave(w *waiter) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.pending, w)
	h.unfile(w)
}

// unfile removes w from byBucket. h.mu is held.
func (h *liveHub) unfile(w *waiter) {
	for _, b := range w.buckets {
		if set := h.byBucket[b]; set != nil {
			delete(set, w)
			if len(set) == 0 {
				delete(h.byBucket, b)
			}
		}
	}
	w.buckets = nil
}

// watch files w under buckets once its read ended. It reports whether one
// of buckets was announced meanwhile: the read may have missed that
// change, so w reads again (and stays pending).
func (h *liveHub) watch(w *waiter, buckets []string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	missed := w.missedAll
	for _, b := range buckets {
		if _, ok := w.missed[b]; ok {
			missed = true
			break
		}
	}
	clear(w.missed)
	w.missedAll = false
	if missed {
		return true
	}
	delete(h.pending, w)
	w.buckets = buckets
	for _, b := range buckets {
		set := h.byBucket[b]
		if set == nil {
			set = map[*waiter]struct{}{}
			h.byBucket[b] = set
		}
		set[w] = struct{}{}
	}
	return false
}

// pend turns w back to reading, dropping a wake-up that came meanwhile.
func (h *liveHub) pend(w *waiter) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.unfile(w)
	select {
	case <-w.wake:
	default:
	}
	h.pending[w] = struct{}{}
}

// wake wakes the waiters following any of buckets, and notes the buckets
// for the reading ones.
func (h *liveHub) wake(buckets []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, b := range buckets {
		for w := range h.byBucket[b] {
			signal(w)
		}
	}
	for w := range h.pending {
		w.miss(buckets)
	}
}

// miss notes buckets announced while w reads.
func (w *waiter) miss(buckets []string) {
	if w.missedAll {
		return
	}
	if len(w.missed)+len(buckets) > maxMissed {
		w.missedAll = true
		clear(w.missed)
		return
	}
	if w.missed == nil {
		w.missed = make(map[string]struct{}, len(buckets))
	}
	for _, b := range buckets {
		w.missed[b] = struct{}{}
	}
}

// wakeAll wakes every waiter.
func (h *liveHub) wakeAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, set := range h.byBucket {
		for w := range set {
			signal(w)
		}
	}
	for w := range h.pending {
		w.missedAll = true
	}
}

// signal leaves one wake-up for w, unless one is already waiting.
func signal(w *waiter) {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

func (h *liveHub) setConnected(on bool) {
	h.mu.Lock()
	h.connected = on
	h.mu.Unlock()
}

func (h *liveHub) setRecheck(d time.Duration) {
	h.mu.Lock()
	h.recheck = d
	h.mu.Unlock()
}

// recheckEvery is how long a waiter waits without a wake-up before it
// reads again.
func (h *liveHub) recheckEvery() time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.connected {
		return unlistenedRecheck
	}
	return h.recheck
}

// waiting returns the number of waiting pulls (tests).
func (h *liveHub) waiting() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := len(h.pending)
	seen := map[*waiter]bool{}
	for _, set := range h.byBucket {
		for w := range set {
			if !seen[w] {
				seen[w] = true
				n++
			}
		}
	}
	return n
}

// String describes the hub for test failures.
func (h *liveHub) String() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return fmt.Sprintf("connected=%v recheck=%v buckets=%d pending=%d", h.connected, h.recheck, len(h.byBucket), len(h.pending))
}
