package wal

import (
	"context"
	"database/sql"
	"flag"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/synchrosync/synchro"
	"github.com/synchrosync/synchro/internal/pgtest"
)

var (
	benchChanges  = flag.Int("capture.changes", 100000, "row changes written by BenchmarkCaptureThroughput")
	benchTxns     = flag.Int("capture.txns", 1000, "transactions they are spread over")
	benchRate     = flag.Int("capture.rate", 1000, "row changes per second written by BenchmarkCaptureLatency")
	benchDuration = flag.Duration("capture.duration", 5*time.Second, "how long BenchmarkCaptureLatency writes")
)

// benchEnv is a database with one owned table and a consumer config for it.
type benchEnv struct {
	db  *pgtest.Database
	cfg ConsumerConfig
}

func newBenchEnv(b *testing.B) *benchEnv {
	db := pgtest.NewMigratedDatabase(b)
	ctExec(b, db.Super, `CREATE TABLE events (id bigint PRIMARY KEY, user_id text NOT NULL, payload text, updated_at timestamptz NOT NULL DEFAULT now(), deleted_at timestamptz)`)
	reg := synchro.NewRegistry()
	reg.Register(&synchro.TableConfig{TableName: "events", OwnerColumn: "user_id"})
	return &benchEnv{db: db, cfg: ConsumerConfig{
		ConnString: db.DSN, SlotName: "b_" + strings.ReplaceAll(db.Name, "-", "_"), PublicationName: "bench",
		Registry: reg, ChangelogDB: db.Super, StandbyTimeout: time.Second,
		Logger: slog.New(slog.DiscardHandler), // keep the benchmark output readable
	}}
}

// run starts a consumer and returns a function that stops it.
func (e *benchEnv) run(b *testing.B) func() {
	c, err := NewConsumer(e.cfg)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Start(ctx) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var active bool
		err := e.db.Super.QueryRow(`SELECT active FROM pg_replication_slots WHERE slot_name = $1`, e.cfg.SlotName).Scan(&active)
		if err == nil && active {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("consumer did not start: %v", err)
		}
		time.Sleep(10 * time.Millisecond) // polling a condition under a deadline
	}
	return func() {
		cancel()
		if err := <-done; err != nil {
			b.Errorf("consumer: %v", err)
		}
	}
}

func (e *benchEnv) changelogCount(b *testing.B) int {
	var n int
	if err := e.db.Super.QueryRow(`SELECT count(*) FROM synchro.changelog`).Scan(&n); err != nil {
		b.Fatal(err)
	}
	return n
}

// write inserts n rows in txns transactions, one bucket per row, starting
// at id first.
func writeEvents(b *testing.B, db *sql.DB, first, n, txns int) {
	per := n / txns
	for t := 0; t < txns; t++ {
		lo := first + t*per
		if _, err := db.Exec(`INSERT INTO events (id, user_id, payload)
SELECT g, 'user' || (g % 50), 'payload ' || g FROM generate_series($1::bigint, $2::bigint) AS g`, lo, lo+per-1); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCaptureThroughput measures how fast the consumer turns committed
// row changes into changelog rows: -capture.changes single-row inserts (one
// bucket each) in -capture.txns transactions are committed while the
// consumer is stopped, then the consumer is started and timed until the
// changelog holds them all. It reports changes/s.
//
//	go test -run '^$' -bench CaptureThroughput -benchtime 1x ./wal/
func BenchmarkCaptureThroughput(b *testing.B) {
	for i := 0; i < b.N; i++ {
		e := newBenchEnv(b)
		stop := e.run(b) // creates the slot
		stop()
		writeEvents(b, e.db.Super, 1, *benchChanges, *benchTxns)
		start := time.Now()
		stop = e.run(b)
		deadline := start.Add(5 * time.Minute)
		for e.changelogCount(b) < *benchChanges {
			if time.Now().After(deadline) {
				b.Fatalf("only %d of %d changes captured after 5 minutes", e.changelogCount(b), *benchChanges)
			}
			time.Sleep(5 * time.Millisecond) // polling a condition under a deadline
		}
		elapsed := time.Since(start)
		stop()
		b.ReportMetric(float64(*benchChanges)/elapsed.Seconds(), "changes/s")
	}
}

// BenchmarkCaptureLatency measures commit-to-changelog latency: a writer
// commits -capture.rate row changes per second (in transactions of 10 rows
// every 10 ms, with synchronous_commit=on as applications do) for
// -capture.duration while a reader polls the changelog every millisecond. It reports the p50 and p99 latency in milliseconds,
// from the moment COMMIT returned to the moment the row was seen.
//
//	go test -run '^$' -bench CaptureLatency -benchtime 1x ./wal/
func BenchmarkCaptureLatency(b *testing.B) {
	for i := 0; i < b.N; i++ {
		e := newBenchEnv(b)
		stop := e.run(b)
		const perTxn = 10
		interval := time.Duration(float64(time.Second) * perTxn / float64(*benchRate))
		txns := int(*benchDuration / interval)

		var mu sync.Mutex
		committed := map[int]time.Time{} // first id of a transaction -> commit time
		seen := map[int]time.Time{}
		ctx, cancel := context.WithCancel(context.Background())
		readerDone := make(chan error, 1)
		go func() {
			var last int64
			for ctx.Err() == nil {
				rows, err := e.db.Super.QueryContext(ctx, `SELECT seq, record_id FROM synchro.changelog WHERE seq > $1 ORDER BY seq`, last)
				if err != nil {
					readerDone <- err
					return
				}
				now := time.Now()
				for rows.Next() {
					var id int
					if err := rows.Scan(&last, &id); err != nil {
						rows.Close()
						readerDone <- err
						return
					}
					mu.Lock()
					if _, ok := seen[id]; !ok {
						seen[id] = now
					}
					mu.Unlock()
				}
				rows.Close()
				time.Sleep(time.Millisecond) // the reader's polling interval
			}
			readerDone <- nil
		}()

		// The test server runs with synchronous_commit=off, where the WAL of
		// a commit reaches the WAL sender only when the WAL writer flushes it
		// (up to wal_writer_delay, 200 ms, later). Applications commit with
		// the default, synchronous_commit=on, so the writer does too.
		writer, err := e.db.Super.Conn(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		if _, err := writer.ExecContext(context.Background(), `SET synchronous_commit = on`); err != nil {
			b.Fatal(err)
		}
		tick := time.NewTicker(interval)
		for t := 0; t < txns; t++ {
			<-tick.C
			lo := 1 + t*perTxn
			if _, err := writer.ExecContext(context.Background(), `INSERT INTO events (id, user_id, payload)
SELECT g, 'user' || (g % 50), 'x' FROM generate_series($1::bigint, $2::bigint) AS g`, lo, lo+perTxn-1); err != nil {
				b.Fatal(err)
			}
			mu.Lock()
			for id := lo; id < lo+perTxn; id++ {
				committed[id] = time.Now()
			}
			mu.Unlock()
		}
		tick.Stop()
		_ = writer.Close()
		deadline := time.Now().Add(time.Minute)
		for {
			mu.Lock()
			n := len(seen)
			mu.Unlock()
			if n >= txns*perTxn {
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("only %d of %d changes seen", n, txns*perTxn)
			}
			time.Sleep(5 * time.Millisecond) // polling a condition under a deadline
		}
		cancel()
		if err := <-readerDone; err != nil && ctx.Err() == nil {
			b.Fatal(err)
		}
		stop()

		var lat []time.Duration
		for id, c := range committed {
			// A row can be seen before COMMIT returned to the writer.
			lat = append(lat, max(seen[id].Sub(c), 0))
		}
		slices.Sort(lat)
		p := func(q float64) float64 { return float64(lat[int(q*float64(len(lat)-1))]) / float64(time.Millisecond) }
		b.ReportMetric(p(0.50), "p50_ms")
		b.ReportMetric(p(0.99), "p99_ms")
		b.ReportMetric(float64(len(lat))/benchDuration.Seconds(), "changes/s")
		if testing.Verbose() {
			fmt.Printf("latency over %d changes: p50 %.1f ms, p99 %.1f ms, max %.1f ms\n", len(lat), p(0.5), p(0.99), p(1))
		}
	}
}
