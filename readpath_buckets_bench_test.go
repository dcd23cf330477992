package synchro_test

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/synchrosync/synchro"
	"github.com/synchrosync/synchro/internal/pgtest"
)

// The pull benchmark over many buckets. It reuses the read path
// benchmarks' rbEnv (client, pull) with a table of its own, rk_items, whose
// rows are bucketed by a column rather than by an owner; its helpers carry
// the prefix "rk". The data are loaded as in readpath_bench_test.go: rows,
// bucket edges and changelog rows written with plain SQL exactly as the WAL
// consumer writes them (no consumer runs), then analyzed and vacuumed.

// rkSchema is rb_items with a bucket column instead of the owner.
const rkSchema = `
CREATE TABLE rk_items (
	id         bigint PRIMARY KEY,
	bucket     text        NOT NULL,
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

// rkPrefix is the BucketPrefix of rk_items: a row is in the bucket
// rkPrefix + its bucket column, by the consumer's rule and by the read
// path's membership predicate alike.
const rkPrefix = "team:"

// rkBuckets are the k bucket ids "team:0" to "team:<k-1>"; the row with
// key g is in rkBuckets(k)[(g-1)%k].
func rkBuckets(k int) []string {
	out := make([]string, k)
	for i := range out {
		out[i] = fmt.Sprintf("%s%d", rkPrefix, i)
	}
	return out
}

// rkStart creates a database with rk_items and an engine whose clients all
// follow the k buckets of rkBuckets (and nothing else).
func rkStart(b *testing.B, k int) *rbEnv {
	buckets := rkBuckets(k)
	return rbStartWith(b, rkSchema, &synchro.TableConfig{TableName: "rk_items", BucketByColumn: "bucket", BucketPrefix: rkPrefix},
		func(context.Context, synchro.DB, string, string) ([]string, error) { return slices.Clone(buckets), nil })
}

// rkLoad inserts the rows 1..n of rk_items, spread round-robin over k
// buckets, with their bucket edges and one create each in the changelog, in
// key order.
func rkLoad(e *rbEnv, k, n int) {
	e.b.Helper()
	pgtest.Exec(e.b, e.db.Super, `
INSERT INTO rk_items (id, bucket, title, body, quantity, price, due_at, done, meta)
SELECT g, ((g - 1) % $1)::text, 'item ' || g, repeat('lorem ipsum ', 1 + (g % 8)::int), (g % 1000)::int, (g % 100000) / 100.0,
       timestamptz '2024-01-01 00:00:00+00' + g * interval '1 minute', g % 3 = 0,
       jsonb_build_object('n', g, 'tag', 'tag' || g % 17, 'flags', jsonb_build_array(g % 2 = 0, g % 5))
  FROM generate_series(1, $2::bigint) AS g`, k, n)
	pgtest.Exec(e.b, e.db.Super, `
INSERT INTO synchro.bucket_edges (table_name, record_id, bucket_id)
SELECT 'rk_items', g::text, $1 || ((g - 1) % $2) FROM generate_series(1, $3::bigint) AS g`, rkPrefix, k, n)
	pgtest.Exec(e.b, e.db.Super, `
INSERT INTO synchro.changelog (bucket_id, table_name, record_id, operation)
SELECT $1 || ((g - 1) % $2), 'rk_items', g::text, 1 FROM generate_series(1, $3::bigint) AS g ORDER BY g`, rkPrefix, k, n)
}

// BenchmarkPullBuckets measures a client catching up on a long changelog
// spread over many buckets: the client's subscription rule returns k
// buckets (the sub-benchmarks buckets=1, 10 and 1000), and -readpath.pullrows
// rows of a 12-column table, bucketed by a column (BucketByColumn), are
// spread round-robin over them, each with one create in the changelog in
// key order. As in BenchmarkPullThroughput, an iteration pulls the whole
// changelog from the checkpoint of the client's snapshot, taken before the
// rows were written, in pages of the sub-benchmark's size; every record
// must come as a change. It reports records/s and the mean time of a page.
//
// Each bucket count has its own database. A page probes the changelog once
// per bucket the client follows (and its private one), reading up to a page
// of entries from each with 8 buckets or fewer, and twice each bucket's
// share beyond (see bucketReadCap in pull.go), so its cost grows with the
// number of buckets.
//
//	go test -run '^$' -bench PullBuckets -benchtime 3x .
func BenchmarkPullBuckets(b *testing.B) {
	n := *rbPullRows
	if testing.Short() {
		n = min(n, rbShortPullRows)
	}
	for _, k := range []int{1, 10, 1000} {
		b.Run(fmt.Sprintf("buckets=%d", k), func(b *testing.B) {
			e := rkStart(b, k)
			// The snapshot completes on the empty table: every change
			// written after it comes after its checkpoint.
			from := e.client("u1", "dev")
			rkLoad(e, k, n)
			e.settle()
			for _, limit := range []int{1000, 100} {
				b.Run(fmt.Sprintf("page=%d", limit), func(b *testing.B) {
					e.b = b
					pages := 0
					b.ResetTimer()
					for i := 0; i < b.N; i++ {
						changes, deletes, p := e.pullAll("u1", "dev", from, limit)
						pages += p
						if changes != n || deletes != 0 {
							b.Fatalf("pulled %d changes and %d deletes, want %d changes and none", changes, deletes, n)
						}
					}
					b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "records/s")
					b.ReportMetric(float64(b.Elapsed())/float64(time.Millisecond)/float64(pages), "ms/page")
				})
			}
			if k <= 10 {
				b.Run("raw/page=1000", func(b *testing.B) { rkRawRead(b, e, n, 1000) })
			}
		})
	}
}

// rkRawRead is the plain SELECT reference of BenchmarkPullBuckets, in the
// same database: an iteration reads the same n rows of rk_items, every
// column, in pages of limit by key through database/sql, as a program
// that knows which rows it wants would (no changelog, no membership, no
// JSON). It reports records/s and ms/page like the pull sub-benchmarks.
func rkRawRead(b *testing.B, e *rbEnv, n, limit int) {
	ctx := context.Background()
	pages := 0
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		read, after := 0, int64(0)
		for {
			rows, err := e.db.Super.QueryContext(ctx, `SELECT * FROM rk_items WHERE id > $1 ORDER BY id LIMIT $2`, after, limit)
			if err != nil {
				b.Fatal(err)
			}
			cols, _ := rows.Columns()
			vals := make([]sql.RawBytes, len(cols))
			ptrs := make([]any, len(cols))
			for j := range vals {
				ptrs[j] = &vals[j]
			}
			got := 0
			for rows.Next() {
				if err := rows.Scan(ptrs...); err != nil {
					b.Fatal(err)
				}
				after, err = strconv.ParseInt(string(vals[0]), 10, 64)
				if err != nil {
					b.Fatal(err)
				}
				got++
			}
			if err := rows.Err(); err != nil {
				b.Fatal(err)
			}
			rows.Close()
			pages++
			read += got
			if got < limit {
				break
			}
		}
		if read != n {
			b.Fatalf("read %d rows, want %d", read, n)
		}
	}
	b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "records/s")
	b.ReportMetric(float64(b.Elapsed())/float64(time.Millisecond)/float64(pages), "ms/page")
}
