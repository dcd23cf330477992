package synchro_test

// Tests of Engine.CaptureStatus against a real PostgreSQL, with the engine
// connected as the harness's ordinary role (pgtest.AppRole: no SUPERUSER,
// no REPLICATION, no pg_read_all_stats): no consumer, one streaming, one
// stopped while WAL moves, one stuck behind a lock.

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/synchrosync/synchro"
	"github.com/synchrosync/synchro/internal/pgtest"
	"github.com/synchrosync/synchro/wal"
)

// csTimeout bounds every wait of these tests.
const csTimeout = 30 * time.Second

// csEnv is a database with one registered table, an engine on it as the
// ordinary role, and the configuration of its consumer (not started).
type csEnv struct {
	t      *testing.T
	db     *pgtest.Database
	eng    *synchro.Engine
	slot   string
	cfg    wal.ConsumerConfig
	c      *wal.Consumer
	cancel context.CancelFunc
	done   chan error
}

func csNew(t *testing.T) *csEnv {
	t.Helper()
	db := pgtest.NewMigratedDatabase(t)
	pgtest.Exec(t, db.Super, `CREATE TABLE notes (id text PRIMARY KEY, user_id text NOT NULL, body text,
		updated_at timestamptz NOT NULL DEFAULT now(), deleted_at timestamptz)`)
	reg := synchro.NewRegistry()
	reg.Register(&synchro.TableConfig{TableName: "notes", OwnerColumn: "user_id"})
	eng, err := synchro.NewEngine(synchro.Config{DB: db.App, Registry: reg, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("NewEngine: %v", err)
	}
	e := &csEnv{t: t, db: db, eng: eng, slot: "s_" + strings.ReplaceAll(db.Name, "-", "_")}
	e.cfg = wal.ConsumerConfig{ConnString: db.DSN, SlotName: e.slot, PublicationName: "pub", Registry: reg,
		ChangelogDB: db.Super, StandbyTimeout: 200 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)}
	t.Cleanup(e.stop)
	return e
}

// start starts a consumer and waits until it streams.
func (e *csEnv) start() {
	e.t.Helper()
	c, err := wal.NewConsumer(e.cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	e.c, e.cancel, e.done = c, cancel, make(chan error, 1)
	go func() { e.done <- c.Start(ctx) }()
	pgtest.WaitFor(e.t, "the consumer to stream", csTimeout, func() (bool, string) {
		s := c.Status()
		return s.State == wal.ConsumerStreaming, fmt.Sprintf("%+v", s)
	})
}

// stop stops the consumer, if one runs.
func (e *csEnv) stop() {
	if e.cancel == nil {
		return
	}
	e.cancel()
	select {
	case err := <-e.done:
		if err != nil {
			e.t.Errorf("Start returned %v", err)
		}
	case <-time.After(csTimeout):
		e.t.Error("the consumer did not stop")
	}
	e.cancel = nil
}

// status reads the capture status as the ordinary role.
func (e *csEnv) status(opts synchro.CaptureOptions) synchro.CaptureStatus {
	e.t.Helper()
	st, err := e.eng.CaptureStatus(e.t.Context(), opts)
	if err != nil {
		e.t.Fatalf("CaptureStatus: %v", err)
	}
	return st
}

// waitStatus polls CaptureStatus until want holds.
func (e *csEnv) waitStatus(what string, opts synchro.CaptureOptions, want func(synchro.CaptureStatus) bool) synchro.CaptureStatus {
	e.t.Helper()
	var st synchro.CaptureStatus
	pgtest.WaitFor(e.t, what, csTimeout, func() (bool, string) {
		st = e.status(opts)
		return want(st), fmt.Sprintf("%+v", st)
	})
	return st
}

// write inserts n rows into the registered table.
func (e *csEnv) write(n int) {
	e.t.Helper()
	pgtest.Exec(e.t, e.db.Super, `INSERT INTO notes (id, user_id) SELECT 'n' || g || '-' || gen_random_uuid(), 'alice' FROM generate_series(1, $1) g`, n)
}

// The engine's role is the harness's ordinary one: CaptureStatus must not
// need more.
func TestCaptureStatusRoleIsOrdinary(t *testing.T) {
	t.Parallel()
	e := csNew(t)
	var super, repl, stats bool
	if err := e.db.App.QueryRow(`SELECT rolsuper, rolreplication, pg_has_role(current_user, 'pg_read_all_stats', 'member')
		FROM pg_roles WHERE rolname = current_user`).Scan(&super, &repl, &stats); err != nil {
		t.Fatal(err)
	}
	if super || repl || stats {
		t.Fatalf("the engine's role has superuser=%v replication=%v pg_read_all_stats=%v; the test needs an ordinary role", super, repl, stats)
	}
	e.status(synchro.CaptureOptions{Slot: e.slot})
}

// Without a consumer, after changes to a registered table: not ready, no
// slot. The default options look at DefaultCaptureSlot when no slot is
// recorded.
func TestCaptureStatusNoConsumer(t *testing.T) {
	t.Parallel()
	e := csNew(t)
	e.write(10)
	st := e.status(synchro.CaptureOptions{Slot: e.slot})
	if st.Ready || st.Reason != synchro.CaptureReasonNoSlot || len(st.Slots) != 1 || st.Slots[0].Exists || st.Slots[0].Name != e.slot {
		t.Fatalf("without a consumer: %+v; want not ready, reason %s, the slot missing", st, synchro.CaptureReasonNoSlot)
	}
	if !strings.Contains(st.Message, e.slot) || st.ServerLSN == "" || st.ServerTime.IsZero() {
		t.Errorf("without a consumer: message %q, server %q at %v; want the slot named and the server's position", st.Message, st.ServerLSN, st.ServerTime)
	}
	// The slot name is cluster-wide: another test binary may use the
	// default name in its own database.
	st = e.status(synchro.CaptureOptions{})
	if st.Ready || len(st.Slots) != 1 || st.Slots[0].Name != synchro.DefaultCaptureSlot ||
		(st.Reason != synchro.CaptureReasonNoSlot && st.Reason != synchro.CaptureReasonSlotMismatch) {
		t.Fatalf("default options without a consumer: %+v; want not ready about slot %s", st, synchro.DefaultCaptureSlot)
	}
}

// A streaming consumer that is caught up is ready, also when the changelog
// is old (an idle database); stopped while WAL keeps moving, it is not
// ready within a bound.
func TestCaptureStatusStreamingThenStopped(t *testing.T) {
	t.Parallel()
	e := csNew(t)
	e.start()
	e.write(20)
	// Default options: the slot recorded in synchro.wal_position.
	st := e.waitStatus("ready", synchro.CaptureOptions{}, func(st synchro.CaptureStatus) bool { return st.Ready })
	s := st.Slots[0]
	if len(st.Slots) != 1 || s.Name != e.slot || !s.Active || s.ActivePID == 0 || s.RecordedLSN == "" || s.ConfirmedLSN == "" ||
		s.RestartLSN == "" || s.WALStatus == "" || st.Reason != "" || st.Message != "" {
		t.Fatalf("streaming: %+v", st)
	}
	pgtest.WaitFor(t, "the changelog to hold the rows", csTimeout, func() (bool, string) {
		st = e.status(synchro.CaptureOptions{})
		return !st.ChangelogLastAt.IsZero(), fmt.Sprintf("%+v", st)
	})

	// An idle database: the newest change is an hour old.
	pgtest.Exec(t, e.db.Super, `UPDATE synchro.changelog SET created_at = now() - interval '1 hour'`)
	st = e.waitStatus("ready with an old changelog", synchro.CaptureOptions{}, func(st synchro.CaptureStatus) bool { return st.Ready })
	if st.ChangelogAge < time.Hour {
		t.Errorf("changelog age %v, want at least an hour", st.ChangelogAge)
	}

	e.stop()
	stopped := time.Now()
	e.write(5)
	st = e.waitStatus("not ready after the consumer stopped", synchro.CaptureOptions{}, func(st synchro.CaptureStatus) bool { return !st.Ready })
	t.Logf("not ready %v after the consumer stopped: %s", time.Since(stopped).Round(time.Millisecond), st.Message)
	if st.Reason != synchro.CaptureReasonSlotInactive || st.Slots[0].Active || st.Slots[0].ActivePID != 0 {
		t.Fatalf("stopped: %+v; want reason %s", st, synchro.CaptureReasonSlotInactive)
	}
	pgtest.WaitFor(t, "the unwritten WAL to show", csTimeout, func() (bool, string) {
		st = e.status(synchro.CaptureOptions{})
		return st.Slots[0].LagBytes > 0 && st.Slots[0].RetainedBytes >= st.Slots[0].LagBytes, fmt.Sprintf("%+v", st.Slots[0])
	})
}

// applyLockKey is the advisory lock every changelog write of a slot takes
// (wal/apply.go); holding it stops the consumer's writes while it streams.
const applyLockKey = 0x73796e63

// A consumer that streams but cannot write: the slot stays active while
// its confirmed position stays behind the server's; the lag in time and in
// bytes tell.
func TestCaptureStatusStuckConsumer(t *testing.T) {
	t.Parallel()
	e := csNew(t)
	e.start()
	e.waitStatus("ready", synchro.CaptureOptions{Slot: e.slot}, func(st synchro.CaptureStatus) bool { return st.Ready })

	conn, err := e.db.Super.Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	if _, err := conn.ExecContext(t.Context(), `SELECT pg_advisory_lock($1, hashtext($2))`, applyLockKey, e.slot); err != nil {
		t.Fatal(err)
	}
	locked := true
	unlock := func() {
		if locked {
			locked = false
			if _, err := conn.ExecContext(context.Background(), `SELECT pg_advisory_unlock($1, hashtext($2))`, applyLockKey, e.slot); err != nil {
				t.Fatal(err)
			}
		}
	}
	defer unlock()

	e.write(50)
	opts := synchro.CaptureOptions{Slot: e.slot, MaxLagTime: 500 * time.Millisecond}
	begin := time.Now()
	st := e.waitStatus("lag_time", opts, func(st synchro.CaptureStatus) bool { return st.Reason == synchro.CaptureReasonLagTime })
	t.Logf("reason %s after %v: %s", st.Reason, time.Since(begin).Round(time.Millisecond), st.Message)
	if s := st.Slots[0]; !s.Active || s.LagBytes <= 0 || s.LagTime <= opts.MaxLagTime {
		t.Errorf("stuck: %+v", s)
	}
	if st = e.status(synchro.CaptureOptions{Slot: e.slot, MaxLagBytes: 1, MaxLagTime: -1}); st.Reason != synchro.CaptureReasonLagBytes {
		t.Errorf("stuck with MaxLagBytes 1: %+v; want reason %s", st, synchro.CaptureReasonLagBytes)
	}
	if st = e.status(synchro.CaptureOptions{Slot: e.slot, MaxLagBytes: -1, MaxLagTime: -1}); !st.Ready {
		t.Errorf("stuck without limits: %+v; want ready", st)
	}
	// The consumer itself knows it is behind.
	if cs := e.c.Status(); cs.State != wal.ConsumerStreaming || cs.LagBytes <= 0 || cs.LagTime <= 0 {
		t.Errorf("the consumer's status while stuck: %+v", cs)
	}

	unlock()
	e.waitStatus("ready once the writes go through", opts, func(st synchro.CaptureStatus) bool { return st.Ready })
}
