package wal

// The tests of this file are about the consumer's log output (its levels,
// what it repeats): they read the logs. Every other test waits on the
// consumer's signals or state instead.

import (
	"database/sql"
	"fmt"
	"testing"
	"time"

	"github.com/synchrosync/synchro/internal/pgtest"
)

// TestLogsReconnectOnce: a consumer that cannot reach its server logs the
// interruption at Warn once, then at Debug while it lasts.
func TestLogsReconnectOnce(t *testing.T) {
	t.Parallel()
	db, err := sql.Open("pgx", "postgres://nobody@127.0.0.1:1/none") // never connected
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = db.Close() }()
	cfg := ConsumerConfig{ConnString: "postgres://nobody@127.0.0.1:1/none?connect_timeout=5", SlotName: "quiet",
		Registry: ctRegistry(), ChangelogDB: db}
	logs := newFaultLogs(t, "the consumer")
	r := statusStart(t, cfg, logs)
	pgtest.WaitFor(t, "four attempts", faultTimeout, func() (bool, string) {
		return r.c.Status().Attempts >= 4, fmt.Sprintf("%+v", r.c.Status())
	})
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	warn := logs.count(`level=WARN msg="wal: replication interrupted; reconnecting"`)
	debug := logs.count(`level=DEBUG msg="wal: replication interrupted; reconnecting"`)
	if warn != 1 || debug < 3 {
		t.Errorf("%d attempts logged %d times at Warn and %d at Debug; want 1 and the rest:\n%s",
			r.c.Status().Attempts, warn, debug, logs.grep("reconnecting"))
	}
}

// TestLogsStandbyOnce: a standby logs that the slot is in use at Info
// once, then at Debug while it waits; it looks again about every second.
func TestLogsStandbyOnce(t *testing.T) {
	t.Parallel()
	e := ctStart(t, "")
	logs := newFaultLogs(t, "the standby")
	r := statusStart(t, e.cfg, logs)
	start := time.Now()
	for range 3 {
		r.waitStandby()
	}
	took := time.Since(start)
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	info := logs.count(`level=INFO msg="wal: slot in use by another consumer; standing by"`)
	debug := logs.count(`level=DEBUG msg="wal: slot in use by another consumer; standing by"`)
	if info != 1 || debug < 2 {
		t.Errorf("standby logged %d times at Info and %d at Debug; want 1 and the rest:\n%s", info, debug, logs.grep("standing by"))
	}
	if took > 15*time.Second {
		t.Errorf("three standby attempts took %v: a standby must look again about every second", took)
	}
}

// TestLogsStandbyOnceWhilePrimaryWrites: the same while the consumer that
// streams writes batches, which moves the position each standby attempt
// reads (found by a review: each attempt then counted as progress, and was
// logged at Info).
func TestLogsStandbyOnceWhilePrimaryWrites(t *testing.T) {
	t.Parallel()
	e := ctStart(t, "")
	logs := newFaultLogs(t, "the standby")
	r := statusStart(t, e.cfg, logs)
	r.waitStandby()
	for i := range 4 {
		pgtest.Exec(t, e.db.Super, `INSERT INTO lists (id, user_id) VALUES ($1, 'A')`, fmt.Sprintf("l%d", i))
		e.waitChangelog(i, 1)
		r.waitStandby()
	}
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	info := logs.count(`level=INFO msg="wal: slot in use by another consumer; standing by"`)
	debug := logs.count(`level=DEBUG msg="wal: slot in use by another consumer; standing by"`)
	if info != 1 || debug < 4 {
		t.Errorf("standby logged %d times at Info and %d at Debug; want 1 and the rest:\n%s", info, debug, logs.grep("standing by"))
	}
}

// TestRepeats: the log policy's decision, case by case.
func TestRepeats(t *testing.T) {
	for _, c := range []struct {
		what             string
		kind, last       retryKind
		errText, lastErr string
		ran, want        bool
	}{
		{"first failure", retryReconnect, retryNone, "refused", "", false, false},
		{"the same error again", retryReconnect, retryReconnect, "refused", "refused", false, true},
		{"another error", retryReconnect, retryReconnect, "auth failed", "batch refused", false, false},
		{"the same error after a session ran", retryReconnect, retryReconnect, "refused", "refused", true, false},
		{"standby again", retryStandby, retryStandby, "slot in use (pid 1)", "slot in use (pid 2)", false, true},
		{"standby after a failure", retryStandby, retryReconnect, "slot in use", "refused", false, false},
		{"failure after standby", retryReconnect, retryStandby, "refused", "slot in use", false, false},
	} {
		if got := repeats(c.kind, c.last, c.errText, c.lastErr, c.ran); got != c.want {
			t.Errorf("%s: repeats = %v, want %v", c.what, got, c.want)
		}
	}
}
