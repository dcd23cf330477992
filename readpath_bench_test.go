package synchro_test

import (
	"context"
	"database/sql"
	"flag"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/synchrosync/synchro"
	"github.com/synchrosync/synchro/internal/pgtest"
)

// The read path benchmarks: Pull throughput, empty pulls under concurrency
// and a full Snapshot, against the real PostgreSQL of the test harness.
// Helpers carry the prefix "rb".
//
//	go test -run '^$' -bench 'PullThroughput|EmptyPull|Snapshot' -benchtime 1x .
//
// Under -short the data sets are small (a smoke run); the flags below size
// the full runs.
//
// # Data setup
//
// The rows are loaded with plain SQL, and so are their bucket edges and, for
// the pull benchmarks, their changelog rows: no WAL consumer runs. The rows
// written are the ones the consumer writes for an insert of a table with
// OwnerColumn user_id (bucket "user:<user_id>", record id the key as text,
// table name the registered name, operation 1), so the engine reads exactly
// what it reads in production; loading a million rows through logical
// decoding would only slow the setup down. The tables are then vacuumed and
// analyzed, as autovacuum would do on a server that has been running.

var (
	rbPullRows = flag.Int("readpath.pullrows", 100_000, "rows (and changelog entries) of the user pulled by BenchmarkPullThroughput")
	rbSnapRows = flag.Int("readpath.snaprows", 1_000_000, "rows of the user snapshotted by BenchmarkSnapshot")
	rbClients  = flag.Int("readpath.clients", 50, "concurrent clients (one user each) of BenchmarkEmptyPull")
	rbTenants  = flag.Int("readpath.tenants", 1000, "users sharing the table of BenchmarkSnapshotTenant")
	rbTenantN  = flag.Int("readpath.tenantrows", 200, "rows of each user of BenchmarkSnapshotTenant")
	rbConns    = flag.Int("readpath.conns", 0, "connections of the engine's pool (0: the test harness's pool)")
)

// The sizes under -short: a smoke run that still exercises every path.
const (
	rbShortPullRows = 5_000
	rbShortSnapRows = 20_000
)

// rbSchema is one table of the usual column types, owned by user_id.
const rbSchema = `
CREATE TABLE rb_items (
	id         bigint PRIMARY KEY,
	user_id    text        NOT NULL,
	title      text        NOT NULL,
	body       text,
	quantity   integer     NOT NULL,
	price      numeric(12,2),
	due_at     timestamptz,
	done       boolean     NOT NULL DEFAULT false,
	meta       jsonb,
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now(),
	deleted_at timestamptz
)`

// rbEnv is a database with the table and an engine; no consumer runs.
type rbEnv struct {
	b   *testing.B
	db  *pgtest.Database
	eng *synchro.Engine
	// v and h are the server's schema version and hash.
	v int64
	h string
	// table is the benchmark's table.
	table string
}

// rbStart creates the database, the table rb_items and the engine.
func rbStart(b *testing.B) *rbEnv {
	return rbStartWith(b, rbSchema, &synchro.TableConfig{TableName: "rb_items", OwnerColumn: "user_id"}, nil)
}

// rbStartWith creates the database, runs schema, registers table and
// starts the engine, with the subscription rule subs when not nil.
func rbStartWith(b *testing.B, schema string, table *synchro.TableConfig, subs synchro.SubscriptionRule) *rbEnv {
	b.Helper()
	db := pgtest.NewMigratedDatabase(b)
	pgtest.Exec(b, db.Super, schema)
	pool := db.Super
	if *rbConns > 0 {
		p, err := sql.Open("pgx", db.DSN)
		if err != nil {
			b.Fatal(err)
		}
		p.SetMaxOpenConns(*rbConns)
		p.SetMaxIdleConns(*rbConns)
		// Before the harness drops the database, which needs every
		// session closed.
		b.Cleanup(func() { _ = p.Close() })
		pool = p
	}
	reg := synchro.NewRegistry()
	reg.Register(table)
	eng, err := synchro.NewEngine(synchro.Config{DB: pool, Registry: reg, Logger: slog.New(slog.DiscardHandler), Subscriptions: subs})
	if err != nil {
		b.Fatalf("NewEngine: %v", err)
	}
	e := &rbEnv{b: b, db: db, eng: eng, table: table.TableName}
	if e.v, e.h, err = eng.CurrentSchemaManifest(context.Background()); err != nil {
		b.Fatal(err)
	}
	return e
}

// load inserts the rows first..last of user with their bucket edges and,
// when changelog is set, one create in the changelog for each, in key order.
func (e *rbEnv) load(user string, first, last int, changelog bool) {
	e.b.Helper()
	pgtest.Exec(e.b, e.db.Super, `
INSERT INTO rb_items (id, user_id, title, body, quantity, price, due_at, done, meta)
SELECT g, $1, 'item ' || g, repeat('lorem ipsum ', 1 + (g % 8)::int), (g % 1000)::int, (g % 100000) / 100.0,
       timestamptz '2024-01-01 00:00:00+00' + g * interval '1 minute', g % 3 = 0,
       jsonb_build_object('n', g, 'tag', 'tag' || g % 17, 'flags', jsonb_build_array(g % 2 = 0, g % 5))
  FROM generate_series($2::bigint, $3::bigint) AS g`, user, first, last)
	pgtest.Exec(e.b, e.db.Super, `
INSERT INTO synchro.bucket_edges (table_name, record_id, bucket_id)
SELECT 'rb_items', g::text, 'user:' || $1 FROM generate_series($2::bigint, $3::bigint) AS g`, user, first, last)
	if changelog {
		pgtest.Exec(e.b, e.db.Super, `
INSERT INTO synchro.changelog (bucket_id, table_name, record_id, operation)
SELECT 'user:' || $1, 'rb_items', g::text, 1 FROM generate_series($2::bigint, $3::bigint) AS g ORDER BY g`, user, first, last)
	}
}

// settle analyzes and vacuums what load wrote, so that the tables look like
// those of a server that has been running: statistics, hint bits and the
// visibility map set (index-only scans of bucket_edges skip the heap).
//
// The order matters on the test server, which commits asynchronously
// (synchronous_commit=off): a hint bit is set only once the commit of the
// row's transaction is flushed, which the clog tracks per group of 32
// transactions, the latest commit of the group included. ANALYZE commits
// (pg_statistic), so it comes first; CHECKPOINT flushes the WAL; VACUUM,
// which commits nothing, then sets the hint bits and the visibility map of
// every table.
func (e *rbEnv) settle() {
	e.b.Helper()
	tables := e.table + `, synchro.bucket_edges, synchro.changelog, synchro.clients`
	pgtest.Exec(e.b, e.db.Super, `ANALYZE `+tables)
	pgtest.Exec(e.b, e.db.Super, `CHECKPOINT`)
	pgtest.Exec(e.b, e.db.Super, `VACUUM `+tables)
}

// client registers a device of user and completes a snapshot of what the
// user holds now; it returns the snapshot's checkpoint.
func (e *rbEnv) client(user, id string) int64 {
	e.b.Helper()
	ctx := context.Background()
	if _, err := e.eng.RegisterClient(ctx, user, &synchro.RegisterRequest{ClientID: id, Platform: "bench", AppVersion: "1.0.0"}); err != nil {
		e.b.Fatalf("register %s/%s: %v", user, id, err)
	}
	var cur *synchro.SnapshotCursor
	for {
		resp, err := e.eng.Snapshot(ctx, user, &synchro.SnapshotRequest{ClientID: id, Cursor: cur, Limit: synchro.MaxSnapshotLimit, SchemaVersion: e.v, SchemaHash: e.h})
		if err != nil {
			e.b.Fatalf("snapshot %s/%s: %v", user, id, err)
		}
		if !resp.HasMore {
			return resp.Checkpoint
		}
		cur = resp.Cursor
	}
}

// pull is one Pull request.
func (e *rbEnv) pull(user, id string, checkpoint int64, limit int) *synchro.PullResponse {
	resp, err := e.eng.Pull(context.Background(), user, &synchro.PullRequest{ClientID: id, Checkpoint: checkpoint, Limit: limit,
		SchemaVersion: e.v, SchemaHash: e.h})
	if err != nil {
		e.b.Fatalf("pull %s/%s from %d: %v", user, id, checkpoint, err)
	}
	if resp.SnapshotRequired {
		e.b.Fatalf("pull %s/%s from %d: snapshot required (%s)", user, id, checkpoint, resp.SnapshotReason)
	}
	return resp
}

// pullAll pulls from checkpoint until nothing more follows, in pages of
// limit, and returns the changes, deletes and pages received.
func (e *rbEnv) pullAll(user, id string, checkpoint int64, limit int) (changes, deletes, pages int) {
	for {
		resp := e.pull(user, id, checkpoint, limit)
		pages++
		changes += len(resp.Changes)
		deletes += len(resp.Deletes)
		checkpoint = resp.Checkpoint
		if !resp.HasMore {
			return changes, deletes, pages
		}
	}
}

// rbPercentile returns the q quantile of sorted durations in milliseconds.
func rbPercentile(sorted []time.Duration, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	return float64(sorted[int(q*float64(len(sorted)-1))]) / float64(time.Millisecond)
}

// BenchmarkPullThroughput measures a client catching up on a long changelog:
// one user owns -readpath.pullrows rows of a 12-column table, each with one
// create in the changelog; an iteration pulls the whole changelog from
// the checkpoint of the client's snapshot, taken before the rows were
// written, in pages of the sub-benchmark's size (every page reads the
// changelog page and hydrates its rows). It reports records/s and the mean
// time of a page.
//
// The changelog holds a single bucket, so its statistics say bucket_id has
// one distinct value: the planner then reads each subscribed bucket's page
// by walking changelog_pkey from the checkpoint and filtering on bucket_id,
// which for the buckets the client follows but that hold nothing ("global",
// the client's private bucket) means every entry after the checkpoint. A
// page therefore costs more the further it is from the head, most visibly
// with pages of 100.
//
//	go test -run '^$' -bench PullThroughput -benchtime 3x .
func BenchmarkPullThroughput(b *testing.B) {
	n := *rbPullRows
	if testing.Short() {
		n = min(n, rbShortPullRows)
	}
	e := rbStart(b)
	// The snapshot completes on the empty table: every change written
	// after it comes after its checkpoint.
	from := e.client("u1", "dev")
	e.load("u1", 1, n, true)
	e.settle()
	for _, limit := range []int{1000, 100} {
		b.Run(fmt.Sprintf("page=%d", limit), func(b *testing.B) {
			e.b = b
			pages := 0
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				changes, deletes, p := e.pullAll("u1", "dev", from, limit)
				pages += p
				if changes+deletes != n {
					b.Fatalf("pulled %d records, want %d", changes+deletes, n)
				}
			}
			b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "records/s")
			b.ReportMetric(float64(b.Elapsed())/float64(time.Millisecond)/float64(pages), "ms/page")
		})
	}
}

// BenchmarkEmptyPull measures pulls that find nothing new, the steady state
// of idle clients polling: -readpath.clients users with one client each (and
// 100 rows each, delivered by their snapshot) pull concurrently from their
// checkpoint, each from its own goroutine, without pause. One op is one pull
// of every client. It reports pulls/s and the p50 and p99 latency of a pull
// in milliseconds.
//
//	go test -run '^$' -bench EmptyPull -benchtime 200x .
func BenchmarkEmptyPull(b *testing.B) {
	const perUser = 100
	clients := *rbClients
	e := rbStart(b)
	for u := 0; u < clients; u++ {
		e.load(fmt.Sprintf("u%d", u), u*perUser+1, (u+1)*perUser, true)
	}
	e.settle()
	cps := make([]int64, clients)
	for u := range cps {
		cps[u] = e.client(fmt.Sprintf("u%d", u), "dev")
	}
	run := func(rounds int) [][]time.Duration {
		lat := make([][]time.Duration, clients)
		var wg sync.WaitGroup
		for u := 0; u < clients; u++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				user := fmt.Sprintf("u%d", u)
				lat[u] = make([]time.Duration, 0, rounds)
				for range rounds {
					start := time.Now()
					resp, err := e.eng.Pull(context.Background(), user, &synchro.PullRequest{ClientID: "dev", Checkpoint: cps[u],
						Limit: synchro.MaxPullLimit, SchemaVersion: e.v, SchemaHash: e.h})
					lat[u] = append(lat[u], time.Since(start))
					switch {
					case err != nil:
						b.Errorf("pull %s: %v", user, err)
						return
					case resp.SnapshotRequired || resp.HasMore || len(resp.Changes)+len(resp.Deletes) > 0 || resp.Checkpoint != cps[u]:
						b.Errorf("pull %s: not empty: %d changes, %d deletes, checkpoint %d (sent %d), snapshot required %v",
							user, len(resp.Changes), len(resp.Deletes), resp.Checkpoint, cps[u], resp.SnapshotRequired)
						return
					}
				}
			}()
		}
		wg.Wait()
		return lat
	}
	run(2) // connections opened, statements prepared
	b.ResetTimer()
	lat := slices.Concat(run(b.N)...)
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(len(lat))/b.Elapsed().Seconds(), "pulls/s")
	b.ReportMetric(rbPercentile(lat, 0.50), "p50_ms")
	b.ReportMetric(rbPercentile(lat, 0.99), "p99_ms")
}

// BenchmarkSnapshot measures a full snapshot of a large data set: one user
// owns -readpath.snaprows rows of a 12-column table; an iteration is one
// snapshot in pages of 1000, from the first request to the last page. It
// reports rows/s, the time of the first and of the last page request, and
// the median of the 10 pages after the first and of the 10 before the last
// (without the work of starting and completing the snapshot, and less noisy
// than single pages): a page must cost the same at the end of the table as
// at its start.
//
//	go test -run '^$' -bench 'BenchmarkSnapshot$' -benchtime 1x .
func BenchmarkSnapshot(b *testing.B) {
	const limit = 1000
	n := *rbSnapRows
	if testing.Short() {
		n = min(n, rbShortSnapRows)
	}
	e := rbStart(b)
	e.load("u1", 1, n, false)
	e.settle()
	ctx := context.Background()
	if _, err := e.eng.RegisterClient(ctx, "u1", &synchro.RegisterRequest{ClientID: "dev", Platform: "bench", AppVersion: "1.0.0"}); err != nil {
		b.Fatal(err)
	}
	// page requests the page after cur (the first page when nil).
	page := func(cur *synchro.SnapshotCursor) *synchro.SnapshotResponse {
		resp, err := e.eng.Snapshot(ctx, "u1", &synchro.SnapshotRequest{ClientID: "dev", Cursor: cur, Limit: limit, SchemaVersion: e.v, SchemaHash: e.h})
		if err != nil {
			b.Fatalf("snapshot page after %+v: %v", cur, err)
		}
		return resp
	}
	// A warm-up, so that the first page measured does not prepare the
	// statements (pgx prepares each on a connection's first use of it). The
	// snapshot it starts is abandoned: a request without a cursor starts
	// another.
	var cur *synchro.SnapshotCursor
	for range 30 {
		resp := page(cur)
		if !resp.HasMore {
			break
		}
		cur = resp.Cursor
	}
	var first, last, head, tail time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		got, pages := e.snapshotAll("u1", limit)
		if got != n {
			b.Fatalf("snapshot returned %d rows, want %d", got, n)
		}
		first, last = first+pages[0], last+pages[len(pages)-1]
		k := min(10, max(len(pages)-2, 0))
		head += rbMedian(pages[1 : 1+k])
		tail += rbMedian(pages[len(pages)-1-k : len(pages)-1])
	}
	b.StopTimer()
	ms := func(d time.Duration) float64 { return float64(d) / float64(b.N) / float64(time.Millisecond) }
	b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "rows/s")
	b.ReportMetric(ms(first), "first_page_ms")
	b.ReportMetric(ms(last), "last_page_ms")
	b.ReportMetric(ms(head), "head10_p50_ms")
	b.ReportMetric(ms(tail), "tail10_p50_ms")
}

// BenchmarkSnapshotTenant measures the snapshot of one user of many sharing
// a table: -readpath.tenants users of -readpath.tenantrows rows each, their
// keys interleaved as rows written over time by everyone are. One op is
// one user's whole snapshot in pages of 100 (each op the next user). It
// reports rows/s and the median page in milliseconds.
//
//	go test -run '^$' -bench SnapshotTenant -benchtime 50x .
func BenchmarkSnapshotTenant(b *testing.B) {
	const limit = 100
	users, rows := *rbTenants, *rbTenantN
	if testing.Short() {
		users, rows = min(users, 50), min(rows, 100)
	}
	e := rbStart(b)
	pgtest.Exec(b, e.db.Super, `
INSERT INTO rb_items (id, user_id, title, quantity)
SELECT g, 'u' || g % $1, 'item ' || g, 0 FROM generate_series(1, $1::bigint * $2) AS g`, users, rows)
	pgtest.Exec(b, e.db.Super, `
INSERT INTO synchro.bucket_edges (table_name, record_id, bucket_id)
SELECT 'rb_items', g::text, 'user:u' || g % $1 FROM generate_series(1, $1::bigint * $2) AS g`, users, rows)
	e.settle()
	ctx := context.Background()
	snapshot := func(user string) (int, []time.Duration) {
		if _, err := e.eng.RegisterClient(ctx, user, &synchro.RegisterRequest{ClientID: "dev", Platform: "bench", AppVersion: "1.0.0"}); err != nil {
			b.Fatal(err)
		}
		return e.snapshotAll(user, limit)
	}
	snapshot("u0") // prepares the statements
	var all []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		user := fmt.Sprintf("u%d", 1+i%(users-1))
		got, pages := snapshot(user)
		if got != rows {
			b.Fatalf("snapshot of %s returned %d rows, want %d", user, got, rows)
		}
		all = append(all, pages...)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N*rows)/b.Elapsed().Seconds(), "rows/s")
	b.ReportMetric(float64(rbMedian(all))/float64(time.Millisecond), "page_p50_ms")
}

// snapshotAll runs a whole snapshot of user's client "dev" in pages of
// limit, and returns the rows it returned and the time of each page.
func (e *rbEnv) snapshotAll(user string, limit int) (int, []time.Duration) {
	e.b.Helper()
	var (
		cur   *synchro.SnapshotCursor
		got   int
		pages []time.Duration
	)
	for {
		start := time.Now()
		resp, err := e.eng.Snapshot(context.Background(), user, &synchro.SnapshotRequest{ClientID: "dev", Cursor: cur, Limit: limit,
			SchemaVersion: e.v, SchemaHash: e.h})
		if err != nil {
			e.b.Fatalf("snapshot of %s after %+v: %v", user, cur, err)
		}
		pages = append(pages, time.Since(start))
		got += len(resp.Records)
		if !resp.HasMore {
			return got, pages
		}
		cur = resp.Cursor
	}
}

// rbMedian is the median of ds, 0 when empty.
func rbMedian(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	sorted := slices.Sorted(slices.Values(ds))
	return sorted[len(sorted)/2]
}
