package wal

import (
	"context"
	"database/sql"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	osexec "os/exec"
	"strings"
	"testing"
	"time"

	"github.com/synchrosync/synchro/internal/pgtest"
)

// The takeover benchmark runs the slot's holder in a child process (this
// test binary, running TestTakeoverHolderProcess) so that it can be killed
// the way a crashed instance dies: no goodbye to the server.

// takeoverWait is how long the standby has stood by when the holder dies:
// long enough for a growing backoff to reach its ceiling.
var takeoverWait = flag.Duration("takeover.wait", 15*time.Second, "how long BenchmarkStandbyTakeover's standby waits before the holder is killed")

const (
	envHolderDSN  = "SYNCHRO_TAKEOVER_HOLDER_DSN"
	envHolderSlot = "SYNCHRO_TAKEOVER_HOLDER_SLOT"
)

// TestTakeoverHolderProcess is the child of BenchmarkStandbyTakeover: with
// its environment set it runs a consumer until it is killed; otherwise it
// does nothing.
func TestTakeoverHolderProcess(t *testing.T) {
	dsn := os.Getenv(envHolderDSN)
	if dsn == "" {
		t.Skip("the child process of BenchmarkStandbyTakeover")
	}
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewConsumer(ConsumerConfig{ConnString: dsn, SlotName: os.Getenv(envHolderSlot), PublicationName: "pub",
		Registry: ctRegistry(), ChangelogDB: db, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	_ = c.Start(context.Background()) // until killed
}

// BenchmarkStandbyTakeover measures how long a standby consumer takes to
// stream after the process holding the slot is killed (SIGKILL): from the
// kill to the standby's Status reporting streaming. It reports the mean
// in seconds per takeover. The standby has stood by for -takeover.wait
// (15s) when the holder dies.
//
//	go test -run '^$' -bench StandbyTakeover -benchtime 5x ./wal/
func BenchmarkStandbyTakeover(b *testing.B) {
	db := pgtest.NewMigratedDatabase(b)
	if _, err := db.Super.Exec(ctSchema); err != nil {
		b.Fatal(err)
	}
	slot := "s_" + strings.ReplaceAll(db.Name, "-", "_")
	cfg := ConsumerConfig{ConnString: db.DSN, SlotName: slot, PublicationName: "pub", Registry: ctRegistry(),
		ChangelogDB: db.Super, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	var total time.Duration
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		child := osexec.Command(os.Args[0], "-test.run=^TestTakeoverHolderProcess$")
		sep := "?"
		if strings.Contains(db.DSN, "?") {
			sep = "&"
		}
		child.Env = append(os.Environ(), envHolderDSN+"="+db.DSN+sep+"application_name=takeover_holder", envHolderSlot+"="+slot)
		if err := child.Start(); err != nil {
			b.Fatal(err)
		}
		pgtest.WaitFor(b, "the child to stream", time.Minute, func() (bool, string) {
			var holds bool
			err := db.Super.QueryRow(`SELECT EXISTS (SELECT FROM pg_replication_slots s JOIN pg_stat_activity a ON a.pid = s.active_pid
				WHERE s.slot_name = $1 AND a.application_name = 'takeover_holder')
				AND EXISTS (SELECT FROM synchro.wal_position WHERE slot_name = $1)`, slot).Scan(&holds)
			return err == nil && holds, fmt.Sprint(err)
		})
		r := startConsumer(b, cfg)
		standby := r.c
		pgtest.WaitFor(b, "the standby to stand by", time.Minute, func() (bool, string) {
			s := standby.Status()
			return s.State == ConsumerStandby, fmt.Sprintf("%+v", s)
		})
		wait := *takeoverWait
		if testing.Short() {
			wait = time.Second // make bench: that it works, not the figure
		}
		time.Sleep(wait) // a standby that has waited a while, as in production

		b.StartTimer()
		start := time.Now()
		if err := child.Process.Kill(); err != nil {
			b.Fatal(err)
		}
		// Polled every 5 ms, not with pgtest.WaitFor: the interval bounds
		// the precision of the measure.
		deadline := time.Now().Add(time.Minute)
		for standby.Status().State != ConsumerStreaming {
			if time.Now().After(deadline) {
				b.Fatalf("the standby did not take over within a minute: %+v", standby.Status())
			}
			time.Sleep(5 * time.Millisecond)
		}
		total += time.Since(start)
		b.StopTimer()

		_ = child.Wait()
		if err := r.stop(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.ReportMetric(total.Seconds()/float64(b.N), "s/takeover")
}
