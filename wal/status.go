package wal

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pglogrepl"
)

// This file keeps the consumer's status as it runs, for Status and Lag:
// its state, its last error and when it was last caught up with the
// server. Nothing here touches the database.

// ConsumerState is what a Consumer is doing.
type ConsumerState string

// The states of a Consumer. Start moves it from stopped to starting, then
// to streaming; a failed session moves it to reconnecting (or to standby
// when another consumer streams the slot) until the next one streams; Start
// returning moves it to stopped (its context ended) or failed (an error
// that retrying cannot fix).
const (
	// ConsumerStopped: not running. Start has not been called yet, or it
	// returned because its context ended.
	ConsumerStopped ConsumerState = "stopped"
	// ConsumerStarting: Start runs its first session and does not stream
	// yet (connecting, preparing the publication and the slot, recording
	// the buckets of existing rows for a new slot).
	ConsumerStarting ConsumerState = "starting"
	// ConsumerStreaming: the consumer streams its slot and writes the
	// changelog.
	ConsumerStreaming ConsumerState = "streaming"
	// ConsumerStandby: another process streams the slot; the consumer
	// tries again with backoff and takes over when the slot is free.
	ConsumerStandby ConsumerState = "standby"
	// ConsumerReconnecting: a session failed (a lost connection, a server
	// restart, a failed write: see LastError) and the consumer tries again
	// with backoff.
	ConsumerReconnecting ConsumerState = "reconnecting"
	// ConsumerFailed: Start returned an error that retrying cannot fix
	// (LastError); nothing is captured until Start is called again.
	ConsumerFailed ConsumerState = "failed"
)

// ConsumerStatus is a consumer's status, as it knows it without asking the
// database. See Consumer.Status.
type ConsumerStatus struct {
	// State is what the consumer does now.
	State ConsumerState
	// Since is when the consumer entered State. A retry that ends in the
	// same state (reconnecting again, standby again) does not move it.
	Since time.Time
	// Slot is the replication slot (ConsumerConfig.SlotName).
	Slot string
	// Attempts counts the sessions that failed since the consumer last
	// streamed (or since Start, when it has not streamed since): 0 while
	// streaming.
	Attempts int
	// Failures counts the sessions that failed, a standby's attempts
	// aside, since the consumer last made progress (wrote a transaction
	// to the changelog, or confirmed a position past the one its session
	// began streaming from), or since Start when it has not. Unlike
	// Attempts, a session that streams does not reset it: a batch that
	// fails each time it is written shows as a count that keeps growing.
	Failures int

	// AppliedLSN is the position up to which the changelog is written: the
	// end of the last transaction written, or the recorded position the
	// last session read when it began (a standby reads it too).
	AppliedLSN pglogrepl.LSN
	// ConfirmedLSN is the last position confirmed to the server. While idle
	// the consumer confirms positions past AppliedLSN (the WAL in between
	// held nothing for it).
	ConfirmedLSN pglogrepl.LSN
	// ServerLSN is the server's WAL end as the consumer last heard it: when
	// its session started, and at every message and keepalive since.
	ServerLSN pglogrepl.LSN

	// LagBytes is how much WAL the server has that the consumer has
	// neither written nor confirmed: ServerLSN minus the larger of
	// AppliedLSN and ConfirmedLSN, 0 when caught up. It is known only while
	// streaming; in every other state the consumer cannot know where the
	// server is, and LagBytes is -1.
	LagBytes int64
	// LagTime is how long ago the consumer was last caught up (had written
	// or confirmed everything the server had reported), or, when it never
	// was, how long since NewConsumer: 0 while streaming and caught up
	// (LagBytes 0), growing otherwise, whatever the state. It is an upper
	// bound of the age of the oldest WAL not yet written or confirmed. An
	// idle consumer confirms at every ConsumerConfig.StandbyTimeout, so
	// while it streams LagTime stays below about twice that when the
	// server writes WAL that does not concern it.
	LagTime time.Duration

	// LastCommit is the commit time (the server's clock) of the last
	// transaction the consumer finished: written to the changelog, or
	// found to hold nothing for it. Zero before the first.
	LastCommit time.Time
	// LastApplied is when (the local clock) the consumer finished that
	// transaction. Zero before the first.
	LastApplied time.Time

	// LastError is the text of the last error that ended a session or
	// Start, kept once the consumer recovers; empty when there was none.
	// A slot held by another consumer is not an error (State standby).
	LastError string
	// LastErrorAt is when LastError happened; zero when there was none.
	LastErrorAt time.Time
}

// Status returns the consumer's status. It is safe to call from any
// goroutine at any time, before, during and after Start, and cheap: it
// reads what the consumer records as it runs and makes no database round
// trip.
func (c *Consumer) Status() ConsumerStatus {
	now := time.Now()
	t := &c.status
	t.mu.Lock()
	s := ConsumerStatus{State: t.state, Since: t.since, Attempts: t.attempts, Failures: t.failures, LastError: t.lastErr, LastErrorAt: t.lastErrAt}
	t.mu.Unlock()
	s.Slot = c.cfg.SlotName
	s.AppliedLSN = pglogrepl.LSN(c.appliedLSN.Load())
	s.ConfirmedLSN = pglogrepl.LSN(c.confirmedLSN.Load())
	s.ServerLSN = pglogrepl.LSN(c.serverLSN.Load())
	s.LagBytes = -1
	if s.State == ConsumerStreaming {
		s.LagBytes = 0
		if done := max(s.AppliedLSN, s.ConfirmedLSN); s.ServerLSN > done {
			s.LagBytes = int64(s.ServerLSN - done)
		}
	}
	if s.LagBytes != 0 {
		s.LagTime = max(0, now.Sub(t.behindSince()))
	}
	if v := c.lastCommit.Load(); v != 0 {
		s.LastCommit = time.Unix(0, v)
	}
	if v := t.lastApplied.Load(); v != 0 {
		s.LastApplied = time.Unix(0, v)
	}
	return s
}

// statusTracker is the part of a consumer's status that the consumer's
// positions (Consumer.appliedLSN and the others) do not hold.
type statusTracker struct {
	mu        sync.Mutex
	state     ConsumerState
	since     time.Time
	attempts  int
	failures  int
	lastErr   string
	lastErrAt time.Time

	// created is when NewConsumer ran.
	created time.Time
	// caughtUp is when the consumer last confirmed everything the server
	// had reported (unix nanoseconds), 0 before the first time.
	caughtUp atomic.Int64
	// lastApplied is when the last transaction was finished (unix
	// nanoseconds), 0 before the first.
	lastApplied atomic.Int64
}

// init sets the status of a new consumer: stopped.
func (t *statusTracker) init(now time.Time) {
	t.created = now
	t.state, t.since = ConsumerStopped, now
}

// enter moves to state, recording err as the last error when not nil.
func (t *statusTracker) enter(state ConsumerState, err error) {
	now := time.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	if state != t.state {
		t.state, t.since = state, now
	}
	if err != nil {
		t.lastErr, t.lastErrAt = err.Error(), now
	}
}

// starting records that Start began.
func (t *statusTracker) starting() {
	t.mu.Lock()
	t.attempts, t.failures = 0, 0
	t.mu.Unlock()
	t.enter(ConsumerStarting, nil)
}

// streaming records that a session streams.
func (t *statusTracker) streaming() {
	t.mu.Lock()
	t.attempts = 0
	t.mu.Unlock()
	t.enter(ConsumerStreaming, nil)
}

// retrying records a failed session that Start retries: standby when the
// slot is in use, reconnecting otherwise.
func (t *statusTracker) retrying(err error) {
	standby := errors.Is(err, errSlotInUse)
	t.mu.Lock()
	t.attempts++
	if !standby {
		t.failures++
	}
	t.mu.Unlock()
	if standby {
		t.enter(ConsumerStandby, nil)
		return
	}
	t.enter(ConsumerReconnecting, err)
}

// progressed records that the streaming session made progress: the
// failures before it no longer count.
func (t *statusTracker) progressed() {
	t.mu.Lock()
	t.failures = 0
	t.mu.Unlock()
}

// ended records that Start returns err: failed, or stopped when err is nil.
func (t *statusTracker) ended(err error) {
	if err != nil {
		t.enter(ConsumerFailed, err)
		return
	}
	t.enter(ConsumerStopped, nil)
}

// is reports whether the consumer is in state.
func (t *statusTracker) is(state ConsumerState) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.state == state
}

// behindSince returns when the consumer was last caught up, or when it was
// created if it never was.
func (t *statusTracker) behindSince() time.Time {
	if v := t.caughtUp.Load(); v != 0 {
		return time.Unix(0, v)
	}
	return t.created
}

// progressMark is the furthest position the consumer wrote or confirmed:
// a session made progress when it moved it.
func (c *Consumer) progressMark() pglogrepl.LSN {
	return pglogrepl.LSN(max(c.appliedLSN.Load(), c.confirmedLSN.Load()))
}

// noteConfirmed records the position the consumer confirmed to the
// server; when it is at least the server's WAL end last heard of, the
// consumer is caught up.
func (c *Consumer) noteConfirmed(pos pglogrepl.LSN) {
	c.confirmedLSN.Store(uint64(pos))
	if pos > c.streamedFrom {
		c.status.progressed()
	}
	if uint64(pos) >= c.serverLSN.Load() {
		c.status.caughtUp.Store(time.Now().UnixNano())
	}
}
