package synchro

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/synchrosync/synchro/internal/bucket"
	"github.com/synchrosync/synchro/internal/pgtest"
)

// aheadEnv is two engines on one database, each with a client of user u1
// at the same checkpoint: a, which reads ahead, and ref, which reads
// through database/sql (pullViaSQL) and so never does.
type aheadEnv struct {
	t      *testing.T
	db     *pgtest.Database
	a, ref *ptEnv
	// cp holds each client's checkpoint.
	cp map[string]int64
	// notes counts the notes written.
	notes int
}

func newAheadEnv(t *testing.T, subs SubscriptionRule) *aheadEnv {
	t.Helper()
	db := ptSetup(t)
	mod := func(c *Config) { c.Subscriptions = subs }
	env := &aheadEnv{t: t, db: db, a: ptEngine(t, db, db.Super, ptRegistry(t), mod),
		ref: ptEngine(t, db, db.Super, ptRegistry(t), mod), cp: map[string]int64{}}
	env.ref.e.pullViaSQL = true
	for _, p := range []*ptEnv{env.a, env.ref} {
		client := env.client(p)
		p.register("u1", client)
		snap, err := p.e.Snapshot(t.Context(), "u1", &SnapshotRequest{ClientID: client, Limit: 1000, SchemaVersion: p.ver, SchemaHash: p.hash})
		if err != nil || snap.HasMore {
			t.Fatalf("Snapshot of %s: %v", client, err)
		}
		env.cp[client] = snap.Checkpoint
	}
	return env
}

// client is the client of engine p.
func (env *aheadEnv) client(p *ptEnv) string {
	if p == env.a {
		return "ahead"
	}
	return "ref"
}

// pull pulls a page of limit through p from its client's checkpoint, and
// moves the checkpoint to the page's.
func (env *aheadEnv) pull(p *ptEnv, limit int) *PullResponse {
	env.t.Helper()
	client := env.client(p)
	resp, err := p.e.Pull(env.t.Context(), "u1", &PullRequest{ClientID: client, Checkpoint: env.cp[client], Limit: limit, SchemaVersion: p.ver, SchemaHash: p.hash})
	if err != nil {
		env.t.Fatalf("Pull of %s: %v", client, err)
	}
	if !resp.SnapshotRequired {
		env.cp[client] = resp.Checkpoint
	}
	return resp
}

// catchUpDeleting pulls pages of 1000 through p until it has caught up,
// and reports whether one deleted the record id, and how many were read
// ahead and delivered.
func (env *aheadEnv) catchUpDeleting(p *ptEnv, id string) (bool, int64) {
	env.t.Helper()
	before := p.e.aheadPages.Load()
	found := false
	for more := true; more; {
		resp := env.pull(p, 1000)
		for _, d := range resp.Deletes {
			found = found || d.ID == id
		}
		more = resp.HasMore
	}
	return found, p.e.aheadPages.Load() - before
}

// pageJSON is a page as its JSON, its times in UTC.
func pageJSON(t *testing.T, resp *PullResponse) string {
	t.Helper()
	r := *resp
	r.Changes = append([]Record(nil), resp.Changes...)
	for i := range r.Changes {
		r.Changes[i].UpdatedAt = r.Changes[i].UpdatedAt.UTC()
	}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// write adds n lists of u1 and n/2 items, some soft-deleted, and changelog
// entries for them in the buckets (creates, updates, deletes of rows
// deleted since, and updates of rows that never existed), in random order;
// with notes, a note too, whose table the pages before have not held.
func (env *aheadEnv) write(r *rand.Rand, n int, buckets []string, notes bool) {
	env.t.Helper()
	var lists, items, entries []string
	if notes {
		env.notes++
		pgtest.Exec(env.t, env.db.Super, `INSERT INTO notes (id, user_id, body) VALUES ($1, 'u1', 'note')`, env.notes)
		entries = append(entries, fmt.Sprintf("('%s', 'notes', '%d', 1)", buckets[0], env.notes))
	}
	for i := range n {
		id := ptID()
		deleted := "NULL"
		if r.IntN(10) == 0 {
			deleted = "now()"
		}
		lists = append(lists, fmt.Sprintf("('%s', 'u1', 'list %d \"q\" \\ %d', %s)", id, i, r.IntN(1000), deleted))
		recs := [][2]string{{"lists", id}}
		if i%2 == 0 {
			item := ptID()
			items = append(items, fmt.Sprintf("('%s', '%s', 'item %d', %v)", item, id, i, r.IntN(2) == 0))
			recs = append(recs, [2]string{"items", item})
		}
		if r.IntN(20) == 0 {
			recs = append(recs, [2]string{"lists", ptID()}) // never written
		}
		for _, rec := range recs {
			for range 1 + r.IntN(3) {
				op := 1 + r.IntN(3)
				// Most entries in the first bucket: with many buckets, the
				// others run out first and the page comes out short.
				b := buckets[0]
				if r.IntN(4) == 0 {
					b = buckets[r.IntN(len(buckets))]
				}
				entries = append(entries, fmt.Sprintf("('%s', '%s', '%s', %d)", b, rec[0], rec[1], op))
			}
		}
	}
	r.Shuffle(len(entries), func(i, j int) { entries[i], entries[j] = entries[j], entries[i] })
	pgtest.Exec(env.t, env.db.Super, `INSERT INTO lists (id, user_id, name, deleted_at) VALUES `+strings.Join(lists, ", "))
	if len(items) > 0 {
		pgtest.Exec(env.t, env.db.Super, `INSERT INTO items (id, list_id, title, done) VALUES `+strings.Join(items, ", "))
	}
	pgtest.Exec(env.t, env.db.Super, `INSERT INTO synchro.changelog (bucket_id, table_name, record_id, operation) VALUES `+strings.Join(entries, ", "))
	// Some rows deleted after their entries were written.
	pgtest.Exec(env.t, env.db.Super, `DELETE FROM items WHERE title LIKE '%7'`)
}

// pageHas reports whether a page delivers a change of table.
func pageHas(resp *PullResponse, table string) bool {
	for _, c := range resp.Changes {
		if c.TableName == table {
			return true
		}
	}
	return false
}

// TestPullAheadMatchesRun pages two clients of one user through the same
// changelog, one on an engine that reads each next page ahead with the
// client row (readAhead), one on an engine that never does, with changes
// written between pages: every page must be the same. With ten buckets,
// one of which holds most entries, pages read ahead come out short and are
// read again the usual way.
func TestPullAheadMatchesRun(t *testing.T) {
	t.Parallel()
	team := []string{"user:u1", "team:0", "team:1", "team:2", "team:3", "team:4", "team:5", "team:6", "team:7", "team:8"}
	for _, tc := range []struct {
		name    string
		buckets []string
		subs    SubscriptionRule
		// ahead is the least share of the pages read ahead and delivered:
		// with ten buckets, most pages come out short. wasted is the most
		// pages read ahead and not delivered: after a short one, the
		// client's pages are not read ahead until it has caught up.
		ahead  float64
		wasted int64
	}{
		{"default buckets", []string{"user:u1", "global"}, nil, 0.5, 6},
		{"ten buckets", team, func(context.Context, DB, string, string) ([]string, error) { return team, nil }, 0, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env := newAheadEnv(t, tc.subs)
			r := rand.New(rand.NewPCG(7, uint64(len(tc.buckets))))
			env.write(r, 300, tc.buckets, false)
			pages := 0
			for more := true; more; pages++ {
				if pages > 200 {
					t.Fatal("more than 200 pages")
				}
				limit := 40 + r.IntN(60)
				got, want := env.pull(env.a, limit), env.pull(env.ref, limit)
				if g, w := pageJSON(t, got), pageJSON(t, want); g != w {
					t.Fatalf("page %d differs:\nahead: %s\nref:   %s", pages, g, w)
				}
				more = got.HasMore
				if pages%4 == 1 {
					env.write(r, 20, tc.buckets, pages%8 == 5)
					more = true
				}
			}
			read, delivered := env.a.e.aheadReads.Load(), env.a.e.aheadPages.Load()
			if float64(delivered) < tc.ahead*float64(pages) {
				t.Errorf("%d of %d pages were read ahead and delivered", delivered, pages)
			}
			if read-delivered > tc.wasted {
				t.Errorf("%d pages were read ahead and not delivered, want at most %d", read-delivered, tc.wasted)
			}
			t.Logf("%d pages, %d read ahead, %d of them delivered", pages, read, delivered)
		})
	}
}

// TestPullAheadNotUsed checks that a page read ahead is not delivered when
// it is not the page the pull must deliver: read with another client row's
// private bucket, read before a resubscription wrote to the changelog, or
// past the compaction boundary; and that a client that needs a snapshot
// is told so.
func TestPullAheadNotUsed(t *testing.T) {
	t.Parallel()
	subs := []string{"user:u1", "global"}
	var dropped bool
	rule := func(context.Context, DB, string, string) ([]string, error) {
		if dropped {
			return []string{"user:u1"}, nil
		}
		return subs, nil
	}
	env := newAheadEnv(t, rule)
	ctx := t.Context()
	r := rand.New(rand.NewPCG(3, 4))
	env.write(r, 60, subs, false)
	a := env.a
	first := env.pull(a, 10)
	if !first.HasMore {
		t.Fatal("the first page has no more")
	}
	var rowID string
	if err := env.db.Super.QueryRowContext(ctx, `SELECT id::text FROM synchro.clients WHERE client_id = 'ahead'`).Scan(&rowID); err != nil {
		t.Fatal(err)
	}
	if hint, ok := a.e.pullHints.get("u1", "ahead"); !ok || hint.rowID != rowID {
		t.Fatalf("hint %q, %v after a page with more; want %q", hint.rowID, ok, rowID)
	}

	t.Run("another client row", func(t *testing.T) {
		// A delete in the client's private bucket, which the page read
		// with the hinted row's bucket does not hold.
		gone := ptID()
		pgtest.Exec(t, env.db.Super, `INSERT INTO synchro.changelog (bucket_id, table_name, record_id, operation) VALUES ($1, 'lists', $2, 3)`,
			bucket.Client(rowID), gone)
		a.e.pullHints.note("u1", "ahead", &pullHint{rowID: ptID(), tables: []string{"lists", "items"}})
		if found, ahead := env.catchUpDeleting(a, gone); !found || ahead != 0 {
			t.Errorf("the delete in the client's private bucket delivered: %v; %d pages read ahead with another client's row", found, ahead)
		}
	})

	t.Run("resubscription", func(t *testing.T) {
		env.write(r, 30, subs, false)
		// A list in global only, delivered before the client drops it.
		only := ptID()
		pgtest.Exec(t, env.db.Super, `INSERT INTO lists (id, user_id, name) VALUES ($1, 'u9', 'global list')`, only)
		pgtest.Exec(t, env.db.Super, `INSERT INTO synchro.bucket_edges (table_name, record_id, bucket_id) VALUES ('lists', $1, 'global')`, only)
		pgtest.Exec(t, env.db.Super, `INSERT INTO synchro.changelog (bucket_id, table_name, record_id, operation) VALUES ('global', 'lists', $1, 1)`, only)
		if resp := env.pull(a, 5); !resp.HasMore {
			t.Fatal("no more after a page of 5")
		}
		for more := true; more; {
			more = env.pull(a, 1000).HasMore
		}
		env.write(r, 30, subs, false)
		// A page of both tables: the next reads them with it.
		if resp := env.pull(a, 40); !resp.HasMore || !pageHas(resp, "lists") || !pageHas(resp, "items") {
			t.Fatalf("a page of 40: has more %v, lists %v, items %v; want more of both", resp.HasMore, pageHas(resp, "lists"), pageHas(resp, "items"))
		}
		dropped = true
		defer func() { dropped = false }()
		if found, ahead := env.catchUpDeleting(a, only); !found || ahead != 0 {
			t.Errorf("the list of the dropped bucket deleted: %v; %d pages read ahead across the resubscription", found, ahead)
		}
	})

	t.Run("compaction boundary", func(t *testing.T) {
		env.write(r, 30, subs, false)
		if resp := env.pull(a, 5); !resp.HasMore {
			t.Fatal("no more after a page of 5")
		}
		pgtest.Exec(t, env.db.Super, `UPDATE synchro.compaction SET boundary_seq = (SELECT max(seq) FROM synchro.changelog)`)
		resp := env.pull(a, 5)
		if !resp.SnapshotRequired || resp.SnapshotReason != SnapshotReasonCheckpointBeforeLimit || len(resp.Changes)+len(resp.Deletes) != 0 {
			t.Errorf("pull past the boundary: snapshot required %v (%q), %d changes, %d deletes", resp.SnapshotRequired, resp.SnapshotReason, len(resp.Changes), len(resp.Deletes))
		}
		if _, ok := a.e.pullHints.get("u1", "ahead"); ok {
			t.Error("the hint outlived a pull that asked for a snapshot")
		}
		pgtest.Exec(t, env.db.Super, `UPDATE synchro.compaction SET boundary_seq = 0`)
	})

	t.Run("unregistered", func(t *testing.T) {
		env.write(r, 30, subs, false)
		if resp := env.pull(a, 5); !resp.HasMore {
			t.Fatal("no more after a page of 5")
		}
		pgtest.Exec(t, env.db.Super, `UPDATE synchro.clients SET client_id = 'moved' WHERE client_id = 'ahead'`)
		defer pgtest.Exec(t, env.db.Super, `UPDATE synchro.clients SET client_id = 'ahead' WHERE client_id = 'moved'`)
		for range 3 {
			_, err := a.e.Pull(ctx, "u1", &PullRequest{ClientID: "ahead", Checkpoint: env.cp["ahead"], Limit: 5, SchemaVersion: a.ver, SchemaHash: a.hash})
			if !errors.Is(err, ErrClientNotRegistered) {
				t.Fatalf("Pull of a client that is gone: %v, want ErrClientNotRegistered", err)
			}
			if _, ok := a.e.pullHints.get("u1", "ahead"); ok {
				t.Fatal("the hint outlived a pull of a client that is gone")
			}
		}
	})

	t.Run("registered again", func(t *testing.T) {
		a.e.pullHints.note("u1", "ahead", &pullHint{rowID: rowID, tables: []string{"lists", "items"}})
		pgtest.Exec(t, env.db.Super, `DELETE FROM synchro.clients WHERE client_id = 'ahead'`)
		a.register("u1", "ahead")
		resp := env.pull(a, 5)
		if !resp.SnapshotRequired || resp.SnapshotReason != SnapshotReasonInitialSyncRequired {
			t.Errorf("pull of a client registered again: snapshot required %v (%q)", resp.SnapshotRequired, resp.SnapshotReason)
		}
	})
}

// TestPullAheadReadsOnce checks that reading ahead does not have pages read
// twice: two users catching up at once on one engine, one through lists
// and one through notes (each page read ahead with the client's own
// tables, not those of the page the engine read last), and a client whose
// pages change tables (after a page read ahead was read again, its pages
// are read the usual way). Found in review: every page was read twice.
func TestPullAheadReadsOnce(t *testing.T) {
	t.Parallel()
	db := ptSetup(t)
	p := ptEngine(t, db, db.Super, ptRegistry(t), nil)
	ctx := t.Context()
	cp := map[string]int64{}
	for _, u := range []string{"u1", "u2"} {
		p.register(u, "dev")
		snap, err := p.e.Snapshot(ctx, u, &SnapshotRequest{ClientID: "dev", Limit: 1000, SchemaVersion: p.ver, SchemaHash: p.hash})
		if err != nil || snap.HasMore {
			t.Fatalf("Snapshot of %s: %v", u, err)
		}
		cp[u] = snap.Checkpoint
	}
	write := func(user string, block, n int, notes bool) {
		t.Helper()
		var rows, entries []string
		for i := range n {
			if notes {
				id := block*1000 + i
				rows = append(rows, fmt.Sprintf("(%d, '%s', 'n')", id, user))
				entries = append(entries, fmt.Sprintf("('user:%s', 'notes', '%d', 1)", user, id))
				continue
			}
			id := ptID()
			rows = append(rows, fmt.Sprintf("('%s', '%s', 'l')", id, user))
			entries = append(entries, fmt.Sprintf("('user:%s', 'lists', '%s', 1)", user, id))
		}
		if notes {
			pgtest.Exec(t, db.Super, `INSERT INTO notes (id, user_id, body) VALUES `+strings.Join(rows, ", "))
		} else {
			pgtest.Exec(t, db.Super, `INSERT INTO lists (id, user_id, name) VALUES `+strings.Join(rows, ", "))
		}
		pgtest.Exec(t, db.Super, `INSERT INTO synchro.changelog (bucket_id, table_name, record_id, operation) VALUES `+strings.Join(entries, ", "))
	}
	catchUp := func(users ...string) int {
		t.Helper()
		pages := 0
		for more := true; more; {
			more = false
			for _, u := range users {
				resp, err := p.e.Pull(ctx, u, &PullRequest{ClientID: "dev", Checkpoint: cp[u], Limit: 20, SchemaVersion: p.ver, SchemaHash: p.hash})
				if err != nil {
					t.Fatalf("Pull of %s: %v", u, err)
				}
				cp[u] = resp.Checkpoint
				more = more || resp.HasMore
				pages++
			}
		}
		return pages
	}
	wasted := func() int64 { return p.e.aheadReads.Load() - p.e.aheadPages.Load() }

	write("u1", 0, 200, false)
	write("u2", 0, 200, true)
	pages := catchUp("u1", "u2")
	if n := wasted(); n > 0 {
		t.Errorf("two users: %d of %d pages read ahead and read again", n, pages)
	}
	if n := p.e.aheadPages.Load(); n < int64(pages)/2 {
		t.Errorf("two users: %d of %d pages read ahead", n, pages)
	}

	before := wasted()
	for block := 1; block <= 10; block++ {
		write("u1", block, 20, block%2 == 0)
	}
	pages = catchUp("u1")
	if n := wasted() - before; n > 1 {
		t.Errorf("tables changing from page to page: %d of %d pages read ahead and read again", n, pages)
	}
}
