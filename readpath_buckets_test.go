package synchro_test

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"testing"

	"github.com/synchrosync/synchro"
	"github.com/synchrosync/synchro/internal/pgtest"
)

// TestPullManyBuckets pulls a changelog spread over the 40 buckets a
// client follows, unevenly (every bucket in turn, then one bucket alone,
// then four, then changes of records seen before), with several page sizes.
// With that many buckets a page first reads only a share of each bucket
// and, when one bucket holds most of what follows, reads again: every page
// must still hold exactly the changes between its checkpoint and the
// previous one, none may be skipped or repeated, and pages must not come
// out much smaller than the limit.
func TestPullManyBuckets(t *testing.T) {
	t.Parallel()
	const k = 40
	db := pgtest.NewMigratedDatabase(t)
	pgtest.Exec(t, db.Super, `CREATE TABLE mb_items (id bigint PRIMARY KEY, bucket text NOT NULL, title text NOT NULL,
		updated_at timestamptz NOT NULL DEFAULT now(), deleted_at timestamptz)`)
	reg := synchro.NewRegistry()
	reg.Register(&synchro.TableConfig{TableName: "mb_items", BucketByColumn: "bucket", BucketPrefix: "team:"})
	buckets := make([]string, k)
	for i := range buckets {
		buckets[i] = fmt.Sprintf("team:%d", i)
	}
	eng, err := synchro.NewEngine(synchro.Config{DB: db.Super, Registry: reg, Logger: slog.New(slog.DiscardHandler),
		Subscriptions: func(context.Context, synchro.DB, string, string) ([]string, error) { return slices.Clone(buckets), nil }})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	v, h, err := eng.CurrentSchemaManifest(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := eng.RegisterClient(ctx, "u1", &synchro.RegisterRequest{ClientID: "dev", Platform: "test", AppVersion: "1.0.0"}); err != nil {
		t.Fatal(err)
	}
	snap, err := eng.Snapshot(ctx, "u1", &synchro.SnapshotRequest{ClientID: "dev", SchemaVersion: v, SchemaHash: h})
	if err != nil || snap.HasMore {
		t.Fatalf("snapshot of an empty table: %+v, %v", snap, err)
	}

	// The records: 1-200 in every bucket in turn, 201-500 in bucket 7,
	// 501-600 in buckets 0-3 in turn; then an update of every tenth record.
	pgtest.Exec(t, db.Super, `
INSERT INTO mb_items (id, bucket, title)
SELECT g, CASE WHEN g <= 200 THEN ((g - 1) % 40)::text WHEN g <= 500 THEN '7' ELSE ((g - 1) % 4)::text END, 'item ' || g
  FROM generate_series(1, 600) AS g`)
	pgtest.Exec(t, db.Super, `
INSERT INTO synchro.changelog (bucket_id, table_name, record_id, operation)
SELECT 'team:' || bucket, 'mb_items', id::text, 1 FROM mb_items ORDER BY id`)
	pgtest.Exec(t, db.Super, `
INSERT INTO synchro.changelog (bucket_id, table_name, record_id, operation)
SELECT 'team:' || bucket, 'mb_items', id::text, 2 FROM mb_items WHERE id % 10 = 0 ORDER BY id DESC`)
	type entry struct {
		seq int64
		id  string
	}
	var all []entry
	rows, err := db.Super.QueryContext(ctx, `SELECT seq, record_id FROM synchro.changelog WHERE seq > $1 ORDER BY seq`, snap.Checkpoint)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var en entry
		if err := rows.Scan(&en.seq, &en.id); err != nil {
			t.Fatal(err)
		}
		all = append(all, en)
	}
	if err := rows.Close(); err != nil {
		t.Fatal(err)
	}
	if len(all) != 660 {
		t.Fatalf("%d changelog entries, want 660", len(all))
	}

	for _, limit := range []int{1, 3, 10, 50, 200} {
		t.Run(fmt.Sprintf("limit=%d", limit), func(t *testing.T) {
			cp, pages, next := snap.Checkpoint, 0, 0
			for {
				resp, err := eng.Pull(ctx, "u1", &synchro.PullRequest{ClientID: "dev", Checkpoint: cp, Limit: limit, SchemaVersion: v, SchemaHash: h})
				if err != nil {
					t.Fatal(err)
				}
				pages++
				// The entries from the previous checkpoint to this one,
				// merged per record.
				want := map[string]bool{}
				n := 0
				for next < len(all) && all[next].seq <= resp.Checkpoint {
					want[all[next].id] = true
					next++
					n++
				}
				if n > limit {
					t.Fatalf("page %d from %d: checkpoint %d passes %d entries, limit %d", pages, cp, resp.Checkpoint, n, limit)
				}
				got := map[string]bool{}
				for _, r := range resp.Changes {
					got[r.ID] = true
				}
				if len(resp.Deletes) > 0 || len(got) != len(resp.Changes) || !mapsEqual(got, want) {
					t.Fatalf("page %d from %d to %d: got %d changes %v and %d deletes, want %v", pages, cp, resp.Checkpoint,
						len(resp.Changes), got, len(resp.Deletes), want)
				}
				if resp.HasMore != (next < len(all)) {
					t.Fatalf("page %d ends at %d with has_more %v; %d entries remain", pages, resp.Checkpoint, resp.HasMore, len(all)-next)
				}
				cp = resp.Checkpoint
				if !resp.HasMore {
					break
				}
			}
			if next != len(all) {
				t.Fatalf("stopped at %d with %d entries undelivered", cp, len(all)-next)
			}
			// Full pages but for the changes of the hot bucket's end and
			// the last page: at most twice the pages of full ones.
			if ideal := (len(all) + limit - 1) / limit; pages > 2*ideal+1 {
				t.Errorf("%d pages of at most %d entries for %d entries (full pages: %d)", pages, limit, len(all), ideal)
			}
		})
	}
}

// mapsEqual reports whether two sets are equal.
func mapsEqual(a, b map[string]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if !b[k] {
			return false
		}
	}
	return true
}
