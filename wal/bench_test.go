package wal

import (
	"context"
	"database/sql"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	_ "github.com/jackc/pgx/v5/stdlib" // the writers' pool

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
	pgtest.Exec(b, db.Super, `CREATE TABLE events (id bigint PRIMARY KEY, user_id text NOT NULL, payload text, updated_at timestamptz NOT NULL DEFAULT now(), deleted_at timestamptz)`)
	reg := synchro.NewRegistry()
	reg.Register(&synchro.TableConfig{TableName: "events", OwnerColumn: "user_id"})
	return &benchEnv{db: db, cfg: ConsumerConfig{
		ConnString: db.DSN, SlotName: "b_" + strings.ReplaceAll(db.Name, "-", "_"), PublicationName: "bench",
		Registry: reg, ChangelogDB: db.Super, StandbyTimeout: time.Second,
		Logger: slog.New(slog.DiscardHandler), // keep the benchmark output readable
	}}
}

// run starts a consumer, waits until it streams, and returns a function
// that stops it.
func (e *benchEnv) run(b *testing.B) func() {
	r := startConsumer(b, e.cfg)
	r.waitStreaming()
	return func() {
		if err := r.stop(); err != nil {
			b.Errorf("consumer: %v", err)
		}
	}
}

func (e *benchEnv) changelogCount(b *testing.B) int {
	return pgtest.Count(b, e.db.Super, `SELECT count(*) FROM synchro.changelog`)
}

// writeEvents inserts n rows (rounded down to a multiple of txns) in txns
// transactions, one bucket per row, starting at id first. It returns the
// last id written.
func writeEvents(b *testing.B, db *sql.DB, first, n, txns int) int {
	per := n / txns
	for t := 0; t < txns; t++ {
		lo := first + t*per
		if _, err := db.Exec(`INSERT INTO events (id, user_id, payload)
SELECT g, 'user' || (g % 50), 'payload ' || g FROM generate_series($1::bigint, $2::bigint) AS g`, lo, lo+per-1); err != nil {
			b.Fatal(err)
		}
	}
	return first + txns*per - 1
}

// captureWait waits for rows of events to be in the changelog, waking on
// capture's NOTIFY of each batch it commits and checking at most every 50
// ms without one. Polling count(*) of the changelog every 10 ms, as
// BenchmarkCaptureThroughput did, took a third of the CPU capture had on
// two cores (perf: its backend ran 28% of the samples, the applier's 43%),
// and a query every millisecond, as BenchmarkCaptureBurst did, too.
type captureWait struct {
	e        *benchEnv
	listener *pgx.Conn
}

// newCaptureWait listens for capture's notes; it stops at the end of b.
func (e *benchEnv) newCaptureWait(b *testing.B) *captureWait {
	ctx := context.Background()
	listener, err := pgx.Connect(ctx, e.db.DSN)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = listener.Close(context.Background()) })
	if _, err := listener.Exec(ctx, "LISTEN "+pgx.Identifier{synchro.ChangesChannel}.Sanitize()); err != nil {
		b.Fatal(err)
	}
	return &captureWait{e: e, listener: listener}
}

// until waits until the changelog holds the rows of events of the given
// ids, failing b at deadline. Each changelog transaction holds whole WAL
// transactions in commit order: once the last row each writer committed
// is there, all are. The wait ends at the query that sees them, not at a
// polling interval: a batch's note arrives when it commits.
func (w *captureWait) until(b *testing.B, ids []int, deadline time.Time) {
	keys := make([]string, len(ids))
	for i, id := range ids {
		keys[i] = fmt.Sprint(id)
	}
	for {
		var n int
		if err := w.e.db.Super.QueryRow(`SELECT count(DISTINCT record_id) FROM synchro.changelog
 WHERE table_name = 'events' AND record_id = ANY($1)`, keys).Scan(&n); err != nil {
			b.Fatal(err)
		}
		if n == len(keys) {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("the changelog lacks the last rows written (%d rows captured)", w.e.changelogCount(b))
		}
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		_, err := w.listener.WaitForNotification(ctx)
		cancel()
		if err != nil && ctx.Err() == nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCaptureThroughput measures how fast the consumer turns committed
// row changes into changelog rows: -capture.changes inserted rows (one
// bucket each) in -capture.txns transactions (by default 100,000 rows in
// transactions of 100; -capture.txns 100000 makes them single-row
// transactions) are committed while the consumer is stopped, then the
// consumer is started and timed until the changelog holds them all. It
// reports changes/s. BenchmarkCaptureBurst measures capture while the rows
// are being written.
//
//	go test -run '^$' -bench CaptureThroughput -benchtime 1x ./wal/
func BenchmarkCaptureThroughput(b *testing.B) {
	for i := 0; i < b.N; i++ {
		e := newBenchEnv(b)
		stop := e.run(b) // creates the slot
		stop()
		last := writeEvents(b, e.db.Super, 1, *benchChanges, *benchTxns)
		wait := e.newCaptureWait(b)
		start := time.Now()
		stop = e.run(b)
		wait.until(b, []int{last}, start.Add(5*time.Minute))
		elapsed := time.Since(start)
		stop()
		if n := e.changelogCount(b); n != last {
			b.Fatalf("the changelog holds %d rows, want %d", n, last)
		}
		b.ReportMetric(float64(last)/elapsed.Seconds(), "changes/s")
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
		pgtest.WaitFor(b, fmt.Sprintf("the reader to see %d changes", txns*perTxn), time.Minute, func() (bool, string) {
			mu.Lock()
			n := len(seen)
			mu.Unlock()
			return n >= txns*perTxn, fmt.Sprintf("%d seen", n)
		})
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

var (
	burstTxns    = flag.Int("capture.burst.txns", 200, "transactions of 100 rows written by BenchmarkCaptureBurst/rows=100 (20000 of one row for rows=1); a tenth under -short")
	burstWriters = flag.Int("capture.burst.writers", 4, "connections writing the single-row transactions of BenchmarkCaptureBurst/rows=1")
)

// BenchmarkCaptureBurst measures capture while the rows are being written:
// with the consumer running, a writer commits a burst of transactions as
// fast as PostgreSQL takes them, then the benchmark waits until the
// changelog holds every row. rows=100 writes -capture.burst.txns
// transactions of 100 rows (one INSERT ... SELECT each, on one connection);
// rows=1 writes the same number of rows one per transaction, from
// -capture.burst.writers connections. The writers commit with
// synchronous_commit=on, as applications do (see BenchmarkCaptureLatency).
// It reports rows/s (rows over the time from the first write to the
// changelog holding the last row), lag_ms (from the last commit to the
// changelog holding every row), write_rows/s (what the writers
// achieved: capture cannot beat it) and, where /proc can be read, the CPU
// time of the burst (cpuTime): client_cpu_ms for this process and
// server_cpu_ms for the test server's processes.
//
//	go test -run '^$' -bench CaptureBurst -benchtime 1x ./wal/
func BenchmarkCaptureBurst(b *testing.B) {
	if *burstWriters < 1 {
		b.Fatalf("-capture.burst.writers %d: want at least 1", *burstWriters)
	}
	txns := *burstTxns
	if testing.Short() {
		txns = max(txns/10, 1)
	}
	rows := txns * 100
	for _, shape := range []struct {
		name    string
		perTxn  int
		writers int
	}{
		{"rows=100", 100, 1},
		{"rows=1", 1, *burstWriters},
	} {
		b.Run(shape.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				e := newBenchEnv(b)
				stop := e.run(b)
				r := e.burst(b, rows, shape.perTxn, shape.writers)
				stop()
				b.ReportMetric(float64(rows)/r.captured.Seconds(), "rows/s")
				b.ReportMetric(float64(r.lag)/float64(time.Millisecond), "lag_ms")
				b.ReportMetric(float64(rows)/r.written.Seconds(), "write_rows/s")
				if r.cpu.ok {
					b.ReportMetric(float64(r.cpu.self)/float64(time.Millisecond), "client_cpu_ms")
					b.ReportMetric(float64(r.cpu.server)/float64(time.Millisecond), "server_cpu_ms")
				}
			}
		})
	}
}

// burstResult is what burst measured: the time to write, the time until
// the changelog held every row (both from the first write), and the lag
// from the last commit to then.
type burstResult struct {
	written, captured, lag time.Duration
	// cpu is the CPU time used from the first write until the changelog
	// held every row.
	cpu cpuTime
}

// cpuTime is CPU time (user and system) used by this process (the
// consumer, the writers' client side) and by the test server's processes
// (the writers' backends, the WAL sender, the changelog writer's backend,
// the server's background processes), read from /proc in ticks of 10 ms
// per process; ok is false where /proc cannot be read or the server is not
// local. A server process that exits before the end of the span (an
// autovacuum worker, say) is not counted. On a machine whose cores the
// burst keeps busy, capture's lag follows this more than the wall-clock
// figures, which vary from run to run with the writer's pace.
type cpuTime struct {
	self, server time.Duration
	ok           bool
}

// cpuSample is the CPU ticks used so far by this process and by each of
// the test server's processes (its postmaster and the postmaster's
// children), by process id.
type cpuSample struct {
	self   int64
	server map[int]int64
	ok     bool
}

// procStat reads the parent process id and the CPU ticks of process dir
// (a /proc directory) from its stat file.
func procStat(dir string) (ppid int, ticks int64, ok bool) {
	data, err := os.ReadFile(filepath.Join(dir, "stat"))
	if err != nil {
		return 0, 0, false
	}
	// pid (comm) state ppid ... utime stime: fields 4, 14 and 15; comm
	// may hold spaces and parentheses.
	s := string(data)
	end := strings.LastIndexByte(s, ')')
	if end < 0 {
		return 0, 0, false
	}
	f := strings.Fields(s[end+1:])
	if len(f) < 13 {
		return 0, 0, false
	}
	ppid, err1 := strconv.Atoi(f[1])
	utime, err2 := strconv.ParseInt(f[11], 10, 64)
	stime, err3 := strconv.ParseInt(f[12], 10, 64)
	return ppid, utime + stime, err1 == nil && err2 == nil && err3 == nil
}

// sampleCPU samples the CPU ticks of this process and of the server
// whose postmaster has process id postmaster (0 when unknown).
func sampleCPU(postmaster int) cpuSample {
	_, self, ok := procStat("/proc/self")
	if !ok || postmaster == 0 {
		return cpuSample{}
	}
	c := cpuSample{self: self, server: map[int]int64{}, ok: true}
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, dir := range dirs {
		pid, err := strconv.Atoi(filepath.Base(dir))
		if err != nil {
			continue
		}
		if ppid, ticks, ok := procStat(dir); ok && (pid == postmaster || ppid == postmaster) {
			c.server[pid] = ticks
		}
	}
	return c
}

// postmasterPID returns the process id of the test server's postmaster,
// the parent of a backend, or 0 when the server does not run on this
// machine (its backend's process id is not one of ours, or is another
// program's).
func (e *benchEnv) postmasterPID(b *testing.B) int {
	var backend int
	if err := e.db.Super.QueryRow(`SELECT pg_backend_pid()`).Scan(&backend); err != nil {
		b.Fatal(err)
	}
	comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", backend))
	if err != nil || strings.TrimSpace(string(comm)) != "postgres" {
		return 0
	}
	ppid, _, ok := procStat(fmt.Sprintf("/proc/%d", backend))
	if !ok {
		return 0
	}
	return ppid
}

// since returns the CPU time used between the samples c0 and c: of the
// server, each process's ticks since c0, or all of them for a process
// that started since.
func (c cpuSample) since(c0 cpuSample) cpuTime {
	const tick = 10 * time.Millisecond // USER_HZ, 100 on Linux
	if !c.ok || !c0.ok {
		return cpuTime{}
	}
	var server int64
	for pid, ticks := range c.server {
		server += ticks - c0.server[pid]
	}
	return cpuTime{self: time.Duration(c.self-c0.self) * tick, server: time.Duration(server) * tick, ok: true}
}

// burst writes rows rows in transactions of perTxn from writers
// connections, as fast as the server takes them, then waits until the
// changelog holds them all and checks that it holds each exactly once.
func (e *benchEnv) burst(b *testing.B, rows, perTxn, writers int) burstResult {
	ctx := context.Background()
	// The writers have a pool of their own: the test database's pools are
	// bounded, and the consumer must not wait for a connection they hold.
	pool, err := sql.Open("pgx", e.db.DSN)
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = pool.Close() }()
	conns := make([]*sql.Conn, writers)
	for w := range conns {
		c, err := pool.Conn(ctx)
		if err != nil {
			b.Fatal(err)
		}
		defer func() { _ = c.Close() }()
		if _, err := c.ExecContext(ctx, `SET synchronous_commit = on`); err != nil {
			b.Fatal(err)
		}
		conns[w] = c
	}
	wait := e.newCaptureWait(b)
	txns := rows / perTxn
	lastIDs := make([]int, writers) // the last id each writer committed
	errs := make(chan error, writers)
	postmaster := e.postmasterPID(b)
	cpu0 := sampleCPU(postmaster)
	start := time.Now()
	var wg sync.WaitGroup
	for w, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Writer w commits transactions w, w+writers, ...
			for t := w; t < txns; t += writers {
				lo := 1 + t*perTxn
				if _, err := c.ExecContext(ctx, `INSERT INTO events (id, user_id, payload)
SELECT g, 'user' || (g % 50), 'payload ' || g FROM generate_series($1::bigint, $2::bigint) AS g`, lo, lo+perTxn-1); err != nil {
					errs <- err
					return
				}
				lastIDs[w] = lo + perTxn - 1
			}
		}()
	}
	wg.Wait()
	committed := time.Now()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatal(err)
	}
	var last []int
	for _, id := range lastIDs {
		if id != 0 {
			last = append(last, id)
		}
	}
	wait.until(b, last, committed.Add(2*time.Minute))
	done := time.Now()
	cpu := sampleCPU(postmaster).since(cpu0)
	var total, distinct int
	if err := e.db.Super.QueryRow(`SELECT count(*), count(DISTINCT record_id) FROM synchro.changelog WHERE table_name = 'events'`).Scan(&total, &distinct); err != nil {
		b.Fatal(err)
	}
	if total != rows || distinct != rows {
		b.Fatalf("the changelog holds %d rows for %d records, want %d of each", total, distinct, rows)
	}
	return burstResult{written: committed.Sub(start), captured: done.Sub(start), lag: done.Sub(committed), cpu: cpu}
}
