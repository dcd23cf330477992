package synchro

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/synchrosync/synchro/internal/pgtest"
	"github.com/synchrosync/synchro/internal/store"
)

// TestPullPageWideTables pulls pages of two tables whose columns together
// do not fit in one select list (PostgreSQL allows 1664 entries), then of
// a third, narrow one: the page statement that would read the rows of all
// of them cannot be prepared, so such tables are hydrated by statements of
// their own. Found in review: the statement was prepared anyway, failed,
// and, being the one the next page starts with, failed every later pull of
// every client.
func TestPullPageWideTables(t *testing.T) {
	t.Parallel()
	db := pgtest.NewMigratedDatabase(t)
	var cols []string
	for i := range 826 {
		cols = append(cols, fmt.Sprintf("c%d integer", i))
	}
	pgtest.Exec(t, db.Super, fmt.Sprintf(`
CREATE TABLE wa (id bigint PRIMARY KEY, user_id text NOT NULL, %[1]s, updated_at timestamptz NOT NULL DEFAULT now(), deleted_at timestamptz);
CREATE TABLE wb (id bigint PRIMARY KEY, user_id text NOT NULL, %[1]s, updated_at timestamptz NOT NULL DEFAULT now(), deleted_at timestamptz);
CREATE TABLE wc (id bigint PRIMARY KEY, user_id text NOT NULL, title text, updated_at timestamptz NOT NULL DEFAULT now(), deleted_at timestamptz);
INSERT INTO wa (id, user_id) VALUES (1, 'u1');
INSERT INTO wb (id, user_id) VALUES (1, 'u1');
INSERT INTO wc (id, user_id) VALUES (1, 'u1'), (2, 'u2');`, strings.Join(cols, ", ")))
	reg := NewRegistry()
	for _, n := range []string{"wa", "wb", "wc"} {
		reg.Register(&TableConfig{TableName: n, OwnerColumn: "user_id"})
	}
	p := ptEngine(t, db, db.Super, reg, nil)
	ctx := t.Context()
	checkpoints := map[string]int64{}
	for _, user := range []string{"u1", "u2"} {
		client := user + "-dev"
		p.register(user, client)
		snap, err := p.e.Snapshot(ctx, user, &SnapshotRequest{ClientID: client, Limit: 1000, SchemaVersion: p.ver, SchemaHash: p.hash})
		if err != nil || snap.HasMore {
			t.Fatalf("Snapshot of %s: %v (has more: %v)", user, err, snap != nil && snap.HasMore)
		}
		checkpoints[client] = snap.Checkpoint
	}
	pgtest.Exec(t, db.Super, `INSERT INTO synchro.changelog (bucket_id, table_name, record_id, operation) VALUES
 ('user:u1', 'wa', '1', 2), ('user:u1', 'wb', '1', 2), ('user:u1', 'wc', '1', 2), ('user:u2', 'wc', '2', 2)`)
	pull := func(user string, limit int) *PullResponse {
		t.Helper()
		client := user + "-dev"
		resp, err := p.e.Pull(ctx, user, &PullRequest{ClientID: client, Checkpoint: checkpoints[client], Limit: limit, SchemaVersion: p.ver, SchemaHash: p.hash})
		if err != nil {
			t.Fatalf("Pull of %s: %v", user, err)
		}
		return resp
	}
	for range 2 {
		if resp := pull("u1", 2); len(resp.Changes) != 2 || !resp.HasMore {
			t.Fatalf("u1's first page: %d changes (has more %v), want 2 and more", len(resp.Changes), resp.HasMore)
		}
	}
	if resp := pull("u1", 10); len(resp.Changes) != 3 || !strings.Contains(string(resp.Changes[0].Data), `"c825":null`) {
		t.Fatalf("u1's whole page: %d changes, want 3 with every column", len(resp.Changes))
	}
	for range 3 {
		if resp := pull("u2", 10); len(resp.Changes) != 1 || resp.Changes[0].TableName != "wc" {
			t.Fatalf("u2's page: %+v, want wc's row", resp.Changes)
		}
	}
}

// TestPullPageAfterTimeZoneReload changes the server's time zone from UTC
// and reloads its configuration while the engine's connection is idle: the
// session takes the new zone at the first statement of its next batch, and
// reports it only at the batch's end, after the page statement ran in the
// form for UTC. The page must still be what row_to_json gives in the new
// zone (read again in text form). A server of its own: the reload changes
// every session's zone. Found in review.
func TestPullPageAfterTimeZoneReload(t *testing.T) {
	srv := pgtest.NewDedicatedServer(t)
	db := srv.NewMigratedDatabase(t)
	ctx := t.Context()
	pgtest.Exec(t, db.Super, `ALTER SYSTEM SET timezone = 'UTC'`)
	pgtest.Exec(t, db.Super, `SELECT pg_reload_conf()`)
	pgtest.Exec(t, db.Super, `
CREATE TABLE tz_items (id bigint PRIMARY KEY, user_id text NOT NULL, ts timestamptz, updated_at timestamptz NOT NULL DEFAULT '2024-01-02 03:04:05+00', deleted_at timestamptz);
INSERT INTO tz_items (id, user_id, ts) VALUES (1, 'u1', '2024-03-04 05:06:07+00'), (2, 'u1', '1850-01-01 00:00:00+00');
INSERT INTO synchro.changelog (bucket_id, table_name, record_id, operation) VALUES ('user:u1', 'tz_items', '1', 1), ('user:u1', 'tz_items', '2', 1)`)
	// One connection, so that the pull after the reload runs on the
	// session that was idle during it.
	pool := onePool(t, db.DSN)
	reg := NewRegistry()
	reg.Register(&TableConfig{TableName: "tz_items", OwnerColumn: "user_id"})
	p := ptEngine(t, db, pool, reg, nil)
	m, err := p.e.schema.get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	read := func() (map[string]string, map[string]string) {
		t.Helper()
		want, got := map[string]string{}, map[string]string{}
		err := p.e.inPullTx(ctx, true, func(tx pullTx) error {
			page, err := readTestPage(ctx, p.e, m, tx, []string{"user:u1"})
			if err != nil {
				return err
			}
			for _, en := range page.entries {
				if en.record != nil {
					got[en.id] = string(en.record.Data)
				}
			}
			rows, err := tx.query(ctx, `SELECT id::text, row_to_json(x)::text FROM (SELECT * FROM tz_items) AS x`)
			if err != nil {
				return err
			}
			defer rows.Close()
			for rows.Next() {
				var id, data string
				if err := rows.Scan(&id, &data); err != nil {
					return err
				}
				want[id] = data
			}
			return rows.Err()
		})
		if err != nil {
			t.Fatal(err)
		}
		return want, got
	}
	// Twice in UTC: the first page primes the statement with rows (the
	// tables of the previous page), the second reads it.
	read()
	if want, got := read(); got["1"] != want["1"] || got["2"] != want["2"] || !strings.Contains(got["1"], "+00:00") {
		t.Fatalf("in UTC:\n got %v\nwant %v", got, want)
	}
	setZone := func(zone string) {
		t.Helper()
		pgtest.Exec(t, db.Super, `ALTER SYSTEM SET timezone = '`+zone+`'`)
		pgtest.Exec(t, db.Super, `SELECT pg_reload_conf()`)
		// The reload reaches the sessions asynchronously: wait until
		// another session has it, so that the engine's idle one has been
		// signalled.
		for deadline := time.Now().Add(10 * time.Second); ; {
			var got string
			if err := db.Super.QueryRowContext(ctx, `SELECT current_setting('TimeZone')`).Scan(&got); err != nil {
				t.Fatal(err)
			}
			if got == zone {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("TimeZone is still %q after the reload", got)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	setZone("Asia/Kolkata")
	for i := range 2 {
		want, got := read()
		if !strings.Contains(want["1"], "+05:30") {
			t.Fatalf("row_to_json after the reload: %s, want the new zone's offset (was the reload seen?)", want["1"])
		}
		for _, id := range []string{"1", "2"} {
			if got[id] != want[id] {
				t.Errorf("pull %d after the reload, row %s:\n got %s\nwant %s", i+1, id, got[id], want[id])
			}
		}
	}

	// Through Pull: a client catching up reads its next page ahead, in the
	// batch that reads its client row (readAhead), which is then the first
	// to meet the reloaded zone.
	setZone("UTC")
	p.register("u1", "dev")
	snap, err := p.e.Snapshot(ctx, "u1", &SnapshotRequest{ClientID: "dev", Limit: 1000, SchemaVersion: p.ver, SchemaHash: p.hash})
	if err != nil || snap.HasMore {
		t.Fatalf("Snapshot: %v", err)
	}
	pgtest.Exec(t, db.Super, `INSERT INTO synchro.changelog (bucket_id, table_name, record_id, operation) VALUES
 ('user:u1', 'tz_items', '1', 2), ('user:u1', 'tz_items', '2', 2), ('user:u1', 'tz_items', '1', 2), ('user:u1', 'tz_items', '2', 2)`)
	cp := snap.Checkpoint
	pull := func() Record {
		t.Helper()
		resp, err := p.e.Pull(ctx, "u1", &PullRequest{ClientID: "dev", Checkpoint: cp, Limit: 1, SchemaVersion: p.ver, SchemaHash: p.hash})
		if err != nil || len(resp.Changes) != 1 || !resp.HasMore {
			t.Fatalf("Pull: %v (%+v)", err, resp)
		}
		cp = resp.Checkpoint
		return resp.Changes[0]
	}
	pull()
	before := p.e.aheadPages.Load()
	if rec := pull(); rec.ID != "2" || p.e.aheadPages.Load() != before+1 {
		t.Fatalf("the second page: record %s, %d pages read ahead; want record 2 read ahead", rec.ID, p.e.aheadPages.Load()-before)
	}
	setZone("Asia/Kolkata")
	rec := pull()
	want, _ := read()
	if rec.ID != "1" || string(rec.Data) != want["1"] {
		t.Errorf("the page read ahead after the reload: record %s\n got %s\nwant %s", rec.ID, rec.Data, want["1"])
	}
}

// windowedCappedPage is store.PullCappedPage as it was before its cut was
// read apart (each bucket's entries numbered by window functions): the
// reference TestPullCappedPageMatchesWindowed compares it with.
const windowedCappedPage = `
WITH seen AS MATERIALIZED (
        SELECT c.seq, c.table_name, c.record_id, c.operation, c.k, c.prev
          FROM unnest($1::text[]) AS b(id)
         CROSS JOIN LATERAL (SELECT seq, table_name, record_id, operation,
                                    row_number() OVER (ORDER BY seq) AS k, lag(seq) OVER (ORDER BY seq) AS prev
                               FROM (SELECT seq, table_name, record_id, operation FROM synchro.changelog
                                      WHERE bucket_id = b.id AND seq > $2 ORDER BY seq LIMIT $4 + 1) AS l) AS c)
SELECT (SELECT coalesce((SELECT boundary_seq FROM synchro.compaction WHERE singleton), 0)),
       (SELECT min(prev) FROM seen WHERE k > $4), p.seq, p.table_name, p.record_id, p.operation
  FROM ((SELECT seq, table_name, record_id, operation FROM seen ORDER BY seq LIMIT $3)
        UNION ALL
        SELECT NULL::bigint, NULL::text, NULL::text, NULL::smallint) AS p(seq, table_name, record_id, operation)
 ORDER BY p.seq`

// TestPullCappedPageMatchesWindowed compares store.PullCappedPage with the
// windowed statement it replaced, row for row (the cut included), on a
// changelog of buckets of very different sizes, for many checkpoints,
// per-bucket caps and page sizes; and likewise store.PullMergedPage, each
// bucket read in a branch of its own, with store.PullFullPage.
func TestPullCappedPageMatchesWindowed(t *testing.T) {
	t.Parallel()
	db := pgtest.NewMigratedDatabase(t)
	// Bucket bK holds the entries whose number is divisible by K+1 (b0
	// every one, b11 one in twelve), one entry per bucket and number.
	pgtest.Exec(t, db.Super, `
INSERT INTO synchro.changelog (bucket_id, table_name, record_id, operation)
SELECT 'b' || k, 't', g::text, 1 + (g % 3)
  FROM generate_series(1, 3000) AS g, generate_series(0, 11) AS k
 WHERE g % (k + 1) = 0
 ORDER BY g, k`)
	rnd := rand.New(rand.NewPCG(14, 5))
	read := func(query string, args ...any) [][6]string {
		t.Helper()
		rows, err := db.Super.QueryContext(t.Context(), query, args...)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var out [][6]string
		for rows.Next() {
			var v [6]sql.NullString
			if err := rows.Scan(&v[0], &v[1], &v[2], &v[3], &v[4], &v[5]); err != nil {
				t.Fatal(err)
			}
			var r [6]string
			for i := range v {
				r[i] = fmt.Sprintf("%v:%s", v[i].Valid, v[i].String)
			}
			out = append(out, r)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		return out
	}
	var newest int64
	if err := db.Super.QueryRowContext(t.Context(), `SELECT max(seq) FROM synchro.changelog`).Scan(&newest); err != nil {
		t.Fatal(err)
	}
	cuts := 0
	for i := range 300 {
		var buckets []string
		for k := range 12 {
			if rnd.IntN(3) > 0 {
				buckets = append(buckets, fmt.Sprintf("b%d", k))
			}
		}
		buckets = append(buckets, "empty")
		checkpoint := rnd.Int64N(newest + 10)
		perBucket := 1 + rnd.IntN(60)
		limit := 1 + rnd.IntN(200)
		args := []any{buckets, checkpoint, limit + 1, perBucket}
		want, got := read(windowedCappedPage, args...), read(store.PullCappedPage, args...)
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("case %d (%v):\n got %v\nwant %v", i, args, got, want)
		}
		if want[0][1] != "false:" {
			cuts++
		}
	}
	if cuts < 100 {
		t.Fatalf("only %d of the cases had a cut", cuts)
	}
	// The full page read bucket by bucket (store.PullFullPageFor) against
	// the one of unnest (store.PullFullPage), on the same changelog.
	for i := range 300 {
		var buckets []string
		for _, k := range rnd.Perm(12)[:rnd.IntN(store.MergedPageBuckets)] {
			buckets = append(buckets, fmt.Sprintf("b%d", k))
		}
		buckets = append(buckets, "empty")
		limit := 1 + rnd.IntN(200)
		args := []any{buckets, rnd.Int64N(newest + 10), limit + 1, limit}
		want, got := read(store.PullFullPage, args...), read(store.PullMergedPage, args...)
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("full page, case %d (%v):\n got %v\nwant %v", i, args, got, want)
		}
	}
}

// TestPullPageStatementsPerBucketCount reads pages of one table set for
// clients of 1 to 8 buckets on one connection, as pulls of different
// clients do, and counts the page statements with rows pgx prepared on it:
// one. Found in review: a statement per number of buckets left 8 prepared
// statements (and their plans) per table set and connection.
func TestPullPageStatementsPerBucketCount(t *testing.T) {
	t.Parallel()
	db := ptSetup(t)
	ctx := t.Context()
	pgtest.Exec(t, db.Super, `INSERT INTO notes (id, user_id, body) VALUES (1, 'u1', 'a'), (2, 'u1', 'b');
INSERT INTO synchro.changelog (bucket_id, table_name, record_id, operation) VALUES ('user:u1', 'notes', '1', 1), ('user:u1', 'notes', '2', 1)`)
	pool := onePool(t, db.DSN)
	p := ptEngine(t, db, pool, ptRegistry(t), nil)
	m, err := p.e.schema.get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	read := func(buckets []string) int {
		t.Helper()
		var got int
		err := p.e.inPullTx(ctx, true, func(tx pullTx) error {
			page, err := readTestPage(ctx, p.e, m, tx, buckets)
			if err != nil {
				return err
			}
			for _, en := range page.entries {
				if en.record != nil {
					got++
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	read([]string{"user:u1"}) // the next pages read the rows of notes with them
	for n := 1; n <= 8; n++ {
		buckets := []string{"user:u1"}
		for i := 1; i < n; i++ {
			buckets = append(buckets, fmt.Sprintf("user:other%d", i))
		}
		if got := read(buckets); got != 2 {
			t.Fatalf("%d buckets: %d records, want 2", n, got)
		}
	}
	var stmts int
	if err := pool.QueryRowContext(ctx, `
SELECT count(*) FROM pg_prepared_statements
 WHERE statement LIKE '%synchro_page%' AND statement NOT LIKE '%pg_prepared_statements%'`).Scan(&stmts); err != nil {
		t.Fatal(err)
	}
	if stmts != 1 {
		t.Errorf("one table set read for clients of 1 to 8 buckets left %d page statements prepared on the connection, want 1", stmts)
	}
}

// onePool opens a pool of one connection to dsn, closed when t ends
// (before the database is dropped).
func onePool(t *testing.T, dsn string) *sql.DB {
	t.Helper()
	pool, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pool.Close() })
	pool.SetMaxOpenConns(1)
	pool.SetMaxIdleConns(1)
	return pool
}

// readTestPage reads user u1's page of at most 100 entries of buckets from
// the start of the changelog, in the pull transaction tx, as a pull does.
func readTestPage(ctx context.Context, e *Engine, m *manifest, tx pullTx, buckets []string) (*changelogPage, error) {
	pu := &puller{e: e, m: m, userID: "u1", subs: []string{"user:u1"}, limit: 100}
	if err := tx.exec(ctx, pullPageSettingsSQL, "u1"); err != nil {
		return nil, err
	}
	return pu.readPage(ctx, tx, buckets, 0, bucketReadCap(100, len(buckets)))
}
