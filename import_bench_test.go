package synchro_test

import (
	"context"
	"flag"
	"fmt"
	"testing"
	"time"

	"github.com/synchrosync/synchro"
	"github.com/synchrosync/synchro/internal/pgtest"
)

// BenchmarkSnapshotAfterImport reproduces a bulk import met by a new device
// at once: two plain INSERT ... SELECT statements load 2,000 lists of one
// user and -readpath.importrows of another, with autovacuum off for the
// tables involved (it has not reached them yet), the consumer captures
// them, and a device of the second user snapshots at once, in pages of 50
// and of 1,000, then pulls the whole history in pages of 1,000. Then the
// tables are analysed and the same is done again by new devices. It reports
// the seconds of each and the ratio first/repeat, whose target is at most
// 2 (the statements' plans must not depend on the statistics):
//
//	go test -run '^$' -bench SnapshotAfterImport -benchtime 1x .                               # 10^6 rows
//	go test -run '^$' -bench SnapshotAfterImport -benchtime 1x -short .                        # 10^5 rows
var biRows = flag.Int("readpath.importrows", 1_000_000, "lists of the imported user of BenchmarkSnapshotAfterImport (10^5 under -short)")

const biSchema = `
CREATE TABLE bi_lists (
	id         uuid PRIMARY KEY,
	user_id    text NOT NULL,
	name       text NOT NULL,
	position   integer NOT NULL DEFAULT 0,
	updated_at timestamptz NOT NULL DEFAULT now(),
	deleted_at timestamptz
);
ALTER TABLE bi_lists SET (autovacuum_enabled = false)`

func BenchmarkSnapshotAfterImport(b *testing.B) {
	rows := *biRows
	if testing.Short() {
		rows = 100_000
	}
	reg := synchro.NewRegistry()
	reg.Register(&synchro.TableConfig{TableName: "bi_lists", OwnerColumn: "user_id"})
	for b.Loop() {
		e := rpStart(b, rpOptions{schema: biSchema, registry: reg, app: true})
		pgtest.Exec(b, e.db.Super, `ALTER TABLE synchro.bucket_edges SET (autovacuum_enabled = false);
ALTER TABLE synchro.changelog SET (autovacuum_enabled = false)`)
		pgtest.Exec(b, e.db.Super, `INSERT INTO bi_lists (id, user_id, name, position) SELECT gen_random_uuid(), 'u1', 'list ' || g, g FROM generate_series(1, 2000) AS g`)
		pgtest.Exec(b, e.db.Super, `INSERT INTO bi_lists (id, user_id, name, position) SELECT gen_random_uuid(), 'u2', 'list ' || g, g FROM generate_series(1, $1::int) AS g`, rows)
		start := time.Now()
		biWaitCaptured(b, e, int64(rows+2000))
		b.ReportMetric(float64(rows+2000)/time.Since(start).Seconds(), "captured-rows/s")

		first := biRound(b, e, "first", rows)
		pgtest.Exec(b, e.db.Super, `ANALYZE bi_lists, synchro.bucket_edges, synchro.changelog, synchro.clients`)
		repeat := biRound(b, e, "repeat", rows)
		for i, name := range []string{"snapshot50", "snapshot1000", "pull1000"} {
			b.ReportMetric(first[i].Seconds(), "first-"+name+"-s")
			b.ReportMetric(repeat[i].Seconds(), "repeat-"+name+"-s")
			b.ReportMetric(first[i].Seconds()/repeat[i].Seconds(), "first/repeat-"+name)
		}
	}
}

// biRound snapshots the imported user with new devices in pages of 50 and
// of 1,000, then pulls its whole history in pages of 1,000, and returns the
// three durations.
func biRound(b *testing.B, e *rpEnv, round string, rows int) [3]time.Duration {
	b.Helper()
	ctx := context.Background()
	var out [3]time.Duration
	var checkpoint int64
	for i, limit := range []int{50, 1000} {
		id := fmt.Sprintf("%s-%d", round, limit)
		reg, err := e.eng.RegisterClient(ctx, "u2", &synchro.RegisterRequest{ClientID: id, Platform: "bench", AppVersion: "1.0.0"})
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		var cur *synchro.SnapshotCursor
		got := 0
		for {
			page, err := e.eng.Snapshot(ctx, "u2", &synchro.SnapshotRequest{ClientID: id, Cursor: cur, Limit: limit,
				SchemaVersion: reg.SchemaVersion, SchemaHash: reg.SchemaHash})
			if err != nil {
				b.Fatal(err)
			}
			got += len(page.Records)
			if !page.HasMore {
				checkpoint = page.Checkpoint
				break
			}
			cur = page.Cursor
		}
		out[i] = time.Since(start)
		if got != rows {
			b.Fatalf("%s snapshot in pages of %d: %d rows, want %d", round, limit, got, rows)
		}
		if i == 1 {
			// The whole history, from the start, by the same device.
			start := time.Now()
			n := 0
			for cp := int64(0); ; {
				resp, err := e.eng.Pull(ctx, "u2", &synchro.PullRequest{ClientID: id, Checkpoint: cp, Limit: 1000,
					SchemaVersion: reg.SchemaVersion, SchemaHash: reg.SchemaHash})
				if err != nil {
					b.Fatal(err)
				}
				n += len(resp.Changes)
				cp = resp.Checkpoint
				if !resp.HasMore {
					break
				}
			}
			out[2] = time.Since(start)
			if n != rows {
				b.Fatalf("%s pull of the history: %d changes, want %d (checkpoint %d)", round, n, rows, checkpoint)
			}
		}
	}
	return out
}

// biWaitCaptured waits until the changelog holds n rows.
func biWaitCaptured(b *testing.B, e *rpEnv, n int64) {
	b.Helper()
	pgtest.WaitFor(b, fmt.Sprintf("%d changelog rows", n), 10*time.Minute, func() (bool, string) {
		got := pgtest.Count(b, e.db.Super, `SELECT count(*) FROM synchro.changelog`)
		return int64(got) >= n, fmt.Sprintf("%d rows", got)
	})
}
