package wal

// Tests of Consumer.Status and Lag through a consumer's life: starting,
// streaming, standby, reconnecting, failed, stopped. Every wait has a
// deadline (pgtest.WaitFor).

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/synchrosync/synchro"
	"github.com/synchrosync/synchro/internal/pgtest"
)

// statusStart creates a consumer with cfg (checking its status before
// Start) and starts it (see runConsumer).
func statusStart(t *testing.T, cfg ConsumerConfig, logs *faultLogs) *running {
	t.Helper()
	cfg.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	c := newTestConsumer(t, cfg)
	if s := c.Status(); s.State != ConsumerStopped || s.Slot != cfg.SlotName || s.LagBytes != -1 || s.LagTime <= 0 ||
		s.LastError != "" || s.Since.IsZero() {
		t.Errorf("status before Start: %+v; want stopped, lag unknown", s)
	}
	if l := c.Lag(); l.Bytes != math.MaxInt64 || l.Delay <= 0 {
		t.Errorf("Lag before Start: %+v; want Bytes MaxInt64 and a delay", l)
	}
	return runConsumer(t, c)
}

// waitState waits until the consumer is in state and returns its status.
func (r *running) waitState(t *testing.T, state ConsumerState, timeout time.Duration) ConsumerStatus {
	t.Helper()
	var s ConsumerStatus
	pgtest.WaitFor(t, "state "+string(state), timeout, func() (bool, string) {
		s = r.c.Status()
		return s.State == state, fmt.Sprintf("%+v", s)
	})
	return s
}

// The defaults of the consumer and of Engine.CaptureStatus name the same
// slot.
func TestStatusDefaultSlot(t *testing.T) {
	if DefaultSlotName != synchro.DefaultCaptureSlot {
		t.Errorf("wal.DefaultSlotName %q, synchro.DefaultCaptureSlot %q: they must be equal", DefaultSlotName, synchro.DefaultCaptureSlot)
	}
}

// A consumer's life: stopped before Start, starting while it records the
// existing rows of a new slot, streaming (caught up once it wrote what was
// committed), stopped after its context ends.
func TestStatusLifecycle(t *testing.T) {
	t.Parallel()
	e := newFaultEnv(t, pgtest.NewMigratedDatabase(t), `INSERT INTO lists (id, user_id) VALUES ('l0', 'amy')`)
	hold, held, release := e.holdCommits(t)
	hold.Store(true) // the first commit: the record of the existing rows
	logs := newFaultLogs(t, "the consumer")
	begin := time.Now()
	r := statusStart(t, e.cfg, logs)
	t.Cleanup(release) // runs before the consumer is stopped

	select {
	case <-held:
	case <-time.After(faultTimeout):
		t.Fatal("the existing rows were not recorded")
	}
	if s := r.c.Status(); s.State != ConsumerStarting || s.Since.Before(begin) || s.LagBytes != -1 {
		t.Errorf("while recording the existing rows: %+v; want starting", s)
	}
	if l := r.c.Lag(); l.Bytes != math.MaxInt64 {
		t.Errorf("Lag while starting: %+v; want Bytes MaxInt64", l)
	}
	release()

	s := r.waitState(t, ConsumerStreaming, faultTimeout)
	if s.Attempts != 0 || s.AppliedLSN == 0 || s.ServerLSN == 0 || s.LastError != "" || s.Since.Before(begin) {
		t.Errorf("streaming: %+v", s)
	}
	// AppliedLSN is the end of the last transaction the consumer wrote; the
	// server's WAL position also moves with the other tests' databases, so
	// the insert's own commit is found as "past the position before it".
	before := s.AppliedLSN
	pgtest.Exec(t, e.db.Super, `INSERT INTO lists (id, user_id) VALUES ('l1', 'amy'), ('l2', 'bob')`)
	target := faultParseLSN(t, e.walLSN())
	e.waitConfirmed(target.String(), faultTimeout)
	pgtest.WaitFor(t, "the consumer to be caught up", faultTimeout, func() (bool, string) {
		s = r.c.Status()
		return s.State == ConsumerStreaming && s.LagBytes == 0 && s.LagTime == 0 && s.AppliedLSN > before &&
			!s.LastCommit.IsZero() && !s.LastApplied.IsZero(), fmt.Sprintf("%+v", s)
	})
	applied := s.AppliedLSN
	if l := r.c.Lag(); l.Bytes == math.MaxInt64 || l.AppliedLSN < applied {
		t.Errorf("Lag while streaming: %+v", l)
	}

	stopping := time.Now()
	if err := r.stop(); err != nil {
		t.Fatalf("Start returned %v", err)
	}
	s = r.c.Status()
	if s.State != ConsumerStopped || s.Since.Before(stopping) || s.LagBytes != -1 || s.LagTime <= 0 || s.LastError != "" || s.AppliedLSN < applied {
		t.Errorf("after the cancellation: %+v; want stopped", s)
	}
	// A dead consumer never looks caught up.
	if l := r.c.Lag(); l.Bytes != math.MaxInt64 || l.Delay <= 0 {
		t.Errorf("Lag after the cancellation: %+v; want Bytes MaxInt64 and a delay", l)
	}
}

// A second consumer of a slot is standby while the first streams, and
// streams once the first stops.
func TestStatusStandby(t *testing.T) {
	t.Parallel()
	e := newFaultEnv(t, pgtest.NewMigratedDatabase(t), "")
	a := statusStart(t, e.cfg, newFaultLogs(t, "consumer A"))
	a.waitState(t, ConsumerStreaming, faultTimeout)
	b := statusStart(t, e.cfg, newFaultLogs(t, "consumer B"))
	s := b.waitState(t, ConsumerStandby, faultTimeout)
	if s.Attempts < 1 || s.LagBytes != -1 || s.LastError != "" {
		t.Errorf("standby: %+v; want an attempt, no error, lag unknown", s)
	}
	if s := a.c.Status(); s.State != ConsumerStreaming {
		t.Errorf("A while B waits: %+v", s)
	}
	if err := a.stop(); err != nil {
		t.Fatal(err)
	}
	s = b.waitState(t, ConsumerStreaming, faultTimeout)
	if s.Attempts != 0 {
		t.Errorf("B streaming: %+v; want attempts reset", s)
	}
}

// A consumer whose server does not answer is reconnecting, with the error,
// until its context ends; the error stays in its status.
func TestStatusUnreachable(t *testing.T) {
	t.Parallel()
	db, err := sql.Open("pgx", "postgres://nobody@127.0.0.1:1/none") // never connected
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = db.Close() }()
	cfg := ConsumerConfig{ConnString: "postgres://nobody@127.0.0.1:1/none?connect_timeout=5", SlotName: "unreachable",
		Registry: ctRegistry(), ChangelogDB: db}
	r := statusStart(t, cfg, newFaultLogs(t, "the consumer"))
	var s ConsumerStatus
	pgtest.WaitFor(t, "two failed attempts", faultTimeout, func() (bool, string) {
		s = r.c.Status()
		return s.State == ConsumerReconnecting && s.Attempts >= 2, fmt.Sprintf("%+v", s)
	})
	if !strings.Contains(s.LastError, "connecting") || s.LastErrorAt.IsZero() || s.LagBytes != -1 || s.LagTime <= 0 {
		t.Errorf("reconnecting: %+v; want the connection error", s)
	}
	if l := r.c.Lag(); l.Bytes != math.MaxInt64 {
		t.Errorf("Lag while reconnecting: %+v", l)
	}
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	if s := r.c.Status(); s.State != ConsumerStopped || !strings.Contains(s.LastError, "connecting") {
		t.Errorf("after the cancellation: %+v; want stopped, the last error kept", s)
	}
}

// A consumer whose server restarts is reconnecting while it is down, then
// streaming again.
func TestStatusPostgresRestart(t *testing.T) {
	srv := pgtest.NewDedicatedServer(t) // not parallel: restarts a server
	e := newFaultEnv(t, srv.NewMigratedDatabase(t), "")
	r := statusStart(t, e.cfg, newFaultLogs(t, "the consumer"))
	r.waitState(t, ConsumerStreaming, faultTimeout)

	// The states seen meanwhile, in order.
	var (
		mu     sync.Mutex
		states []ConsumerState
	)
	watch, stopWatch := context.WithCancel(context.Background())
	var watcher sync.WaitGroup
	watcher.Go(func() {
		for watch.Err() == nil {
			st := r.c.Status().State
			mu.Lock()
			if len(states) == 0 || states[len(states)-1] != st {
				states = append(states, st)
			}
			mu.Unlock()
			time.Sleep(2 * time.Millisecond) // sampling, bounded by the wait below
		}
	})
	defer func() { stopWatch(); watcher.Wait() }()
	seen := func() string {
		mu.Lock()
		defer mu.Unlock()
		return fmt.Sprint(states)
	}

	restarted := time.Now()
	srv.Restart(t)
	pgtest.WaitFor(t, "reconnecting, then streaming", faultTimeout, func() (bool, string) {
		return strings.HasSuffix(seen(), "reconnecting streaming]"), seen()
	})
	t.Logf("states: %s", seen())
	if s := r.c.Status(); s.LastError == "" || s.LastErrorAt.Before(restarted) || s.Since.Before(restarted) {
		t.Errorf("streaming again: %+v; want the error of the restart", s)
	}
}

// Start returning an error leaves the consumer failed, with the error.
func TestStatusFailed(t *testing.T) {
	t.Parallel()
	e := newFaultEnv(t, pgtest.NewMigratedDatabase(t), "")
	e.cfg.Registry.Register(&synchro.TableConfig{TableName: "missing_table"})
	r := statusStart(t, e.cfg, newFaultLogs(t, "the consumer"))
	err := r.result(faultTimeout)
	if err == nil {
		t.Fatal("Start returned nil with a missing table")
	}
	s := r.c.Status()
	if s.State != ConsumerFailed || s.LastError != err.Error() || s.LastErrorAt.IsZero() || s.LagBytes != -1 {
		t.Errorf("after Start returned %v: %+v; want failed with that error", err, s)
	}
	if l := r.c.Lag(); l.Bytes != math.MaxInt64 || l.Delay <= 0 {
		t.Errorf("Lag of a failed consumer: %+v", l)
	}
}
