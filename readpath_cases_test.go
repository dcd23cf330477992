package synchro_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/synchrosync/synchro"
	"github.com/synchrosync/synchro/internal/pgtest"
	"github.com/synchrosync/synchro/wal"
)

// This file holds focused cases of the read path (pull, snapshot,
// subscriptions) on the environment of readpath_env_test.go. Helpers carry
// the prefix "rc".

// rcModes runs f once with the engine connected as the superuser (which
// bypasses RLS) and once as the application role, in parallel.
func rcModes(t *testing.T, f func(t *testing.T, app bool)) {
	t.Parallel()
	for _, app := range []bool{false, true} {
		name := "superuser"
		if app {
			name = "app_role"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f(t, app)
		})
	}
}

// rcUUID is a fixed uuid ending in n.
func rcUUID(n int) string { return fmt.Sprintf("00000000-0000-0000-0000-%012d", n) }

// rcEngine returns a copy of e with another engine on the same database,
// configured by adjust; the consumer is e's.
func rcEngine(e *rpEnv, app bool, adjust func(*synchro.Config)) *rpEnv {
	e.t.Helper()
	conn := e.db.Super
	if app {
		conn = e.db.App
	}
	cfg := synchro.Config{DB: conn, Registry: e.reg}
	if adjust != nil {
		adjust(&cfg)
	}
	eng, err := synchro.NewEngine(cfg)
	if err != nil {
		e.t.Fatalf("NewEngine: %v", err)
	}
	c := *e
	c.eng = eng
	return &c
}

// rcBadRequest reports whether err is a client mistake by the documented
// method set.
func rcBadRequest(err error) bool {
	var br interface{ BadRequest() bool }
	return errors.As(err, &br) && br.BadRequest()
}

// rcPullAt pulls one page for c from checkpoint without applying it to c.
func rcPullAt(c *rpClient, checkpoint int64, limit int, tables ...string) (*synchro.PullResponse, error) {
	v, h := c.e.schema()
	return c.e.eng.Pull(context.Background(), c.user, &synchro.PullRequest{ClientID: c.id, Checkpoint: checkpoint,
		Tables: tables, Limit: limit, KnownBuckets: c.known, SchemaVersion: v, SchemaHash: h})
}

// rcSnapPage asks one snapshot page without applying it to c.
func rcSnapPage(c *rpClient, cur *synchro.SnapshotCursor, limit int) (*synchro.SnapshotResponse, error) {
	v, h := c.e.schema()
	return c.e.eng.Snapshot(context.Background(), c.user, &synchro.SnapshotRequest{ClientID: c.id, Cursor: cur,
		Limit: limit, SchemaVersion: v, SchemaHash: h})
}

// rcSnapshot is rpClient.snapshot returning every page.
func rcSnapshot(c *rpClient, limit int) []*synchro.SnapshotResponse {
	c.e.t.Helper()
	c.rows = map[string]json.RawMessage{}
	var pages []*synchro.SnapshotResponse
	var cur *synchro.SnapshotCursor
	for {
		if len(pages) > 100000 {
			c.e.t.Fatal("snapshot does not end")
		}
		resp, err := rcSnapPage(c, cur, limit)
		if err != nil {
			c.e.t.Fatalf("snapshot %s/%s: %v", c.user, c.id, err)
		}
		pages = append(pages, resp)
		for _, r := range resp.Records {
			c.rows[r.TableName+"/"+r.ID] = r.Data
		}
		c.checkpoint = resp.Checkpoint
		if !resp.HasMore {
			return pages
		}
		cur = resp.Cursor
	}
}

// rcPullAll is rpClient.pullAll returning every page.
func rcPullAll(c *rpClient, limit int) []*synchro.PullResponse {
	c.e.t.Helper()
	var pages []*synchro.PullResponse
	for {
		if len(pages) > 100000 {
			c.e.t.Fatal("pull does not end")
		}
		resp := c.pull(limit)
		if resp.SnapshotRequired {
			c.e.t.Fatalf("pull %s/%s: snapshot required (%s)", c.user, c.id, resp.SnapshotReason)
		}
		pages = append(pages, resp)
		if !resp.HasMore {
			return pages
		}
	}
}

// rcFinal folds pull pages into the records whose last word was a change
// and those whose last word was a delete.
func rcFinal(pages []*synchro.PullResponse) (changed, deleted map[string]bool) {
	changed, deleted = map[string]bool{}, map[string]bool{}
	for _, p := range pages {
		for _, r := range p.Changes {
			k := r.TableName + "/" + r.ID
			changed[k] = true
			delete(deleted, k)
		}
		for _, d := range p.Deletes {
			k := d.TableName + "/" + d.ID
			deleted[k] = true
			delete(changed, k)
		}
	}
	return changed, deleted
}

// rcHas fails the test unless every key is in set.
func rcHas(t *testing.T, what string, set map[string]bool, keys ...string) {
	t.Helper()
	for _, k := range keys {
		if !set[k] {
			t.Errorf("%s: %s missing from %v", what, k, slices.Sorted(maps.Keys(set)))
		}
	}
}

// rcHasNone fails the test if one of keys is in set.
func rcHasNone(t *testing.T, what string, set map[string]bool, keys ...string) {
	t.Helper()
	for _, k := range keys {
		if set[k] {
			t.Errorf("%s: %s unexpected in %v", what, k, slices.Sorted(maps.Keys(set)))
		}
	}
}

// rcClientState is the bookkeeping of a client row that a refused request
// must leave alone.
func rcClientState(e *rpEnv, user, client string) string {
	e.t.Helper()
	var s string
	err := e.db.Super.QueryRow(`
SELECT row(snapshot_seq, snapshot_subs, snapshot_completed_at, last_pull_seq, acked_seq, bucket_subs, is_active)::text
  FROM synchro.clients WHERE user_id = $1 AND client_id = $2`, user, client).Scan(&s)
	if err != nil {
		e.t.Fatal(err)
	}
	return s
}

// rcMaxSeq is the highest changelog seq.
func rcMaxSeq(e *rpEnv) int64 {
	e.t.Helper()
	var n int64
	if err := e.db.Super.QueryRow(`SELECT coalesce(max(seq), 0) FROM synchro.changelog`).Scan(&n); err != nil {
		e.t.Fatal(err)
	}
	return n
}

// rcEntry is one changelog row.
type rcEntry struct {
	seq   int64
	table string
	id    string
}

// rcEntries lists the changelog rows a client with the default
// subscriptions reads after seq: its user bucket, global and its private
// bucket.
func rcEntries(c *rpClient, after int64) []rcEntry {
	c.e.t.Helper()
	rows, err := c.e.db.Super.Query(`
SELECT seq, table_name, record_id FROM synchro.changelog
 WHERE seq > $3 AND (bucket_id IN ('user:' || $1, 'global')
       OR bucket_id = (SELECT 'synchro:client:' || id::text FROM synchro.clients WHERE user_id = $1 AND client_id = $2))
 ORDER BY seq`, c.user, c.id, after)
	if err != nil {
		c.e.t.Fatal(err)
	}
	defer rows.Close()
	var out []rcEntry
	for rows.Next() {
		var en rcEntry
		if err := rows.Scan(&en.seq, &en.table, &en.id); err != nil {
			c.e.t.Fatal(err)
		}
		out = append(out, en)
	}
	if err := rows.Err(); err != nil {
		c.e.t.Fatal(err)
	}
	return out
}

// rcCountEntries counts the changelog rows of rcEntries in (after, upto].
func rcCountEntries(c *rpClient, after, upto int64) int {
	n := 0
	for _, en := range rcEntries(c, after) {
		if en.seq <= upto {
			n++
		}
	}
	return n
}

// rcChangelogDump describes the changelog after seq, for failure messages.
func rcChangelogDump(e *rpEnv, after int64) string {
	e.t.Helper()
	var s string
	if err := e.db.Super.QueryRow(`SELECT coalesce(string_agg(format('%s %s %s/%s op%s', seq, bucket_id, table_name, record_id, operation), '; ' ORDER BY seq), '')
  FROM synchro.changelog WHERE seq > $1`, after).Scan(&s); err != nil {
		e.t.Fatal(err)
	}
	return s
}

// rcPageKeys lists the records of a pull page.
func rcPageKeys(p *synchro.PullResponse) []string {
	var out []string
	for _, r := range p.Changes {
		out = append(out, r.TableName+"/"+r.ID)
	}
	for _, d := range p.Deletes {
		out = append(out, d.TableName+"/"+d.ID)
	}
	return out
}

// rcJSON marshals v for substring checks.
func rcJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// rcRowsOf returns, as the superuser, "table/id" => row json for a query
// returning (key, json text).
func rcRowsOf(e *rpEnv, q string, args ...any) map[string]json.RawMessage {
	e.t.Helper()
	rows, err := e.db.Super.Query(q, args...)
	if err != nil {
		e.t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	out := map[string]json.RawMessage{}
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			e.t.Fatal(err)
		}
		out[k] = rpDelivered(e.t, v)
	}
	if err := rows.Err(); err != nil {
		e.t.Fatal(err)
	}
	return out
}

// ---------------------------------------------------------------------------
// 1. Isolation

// rcNoLeak fails the test when the JSON of a response names the other user's
// marker or the excluded column.
func rcNoLeak(t *testing.T, what, other string, v any) {
	t.Helper()
	s := rcJSON(t, v)
	for _, bad := range []string{other, "SECRETVAL", `\"secret\"`, `"secret"`} {
		if strings.Contains(s, bad) {
			t.Errorf("%s: the response contains %s: %s", what, bad, s)
		}
	}
}

// rcMarker is the text every row of a user carries in its text columns.
func rcMarker(user string) string { return strings.ToUpper(user) + "ONLY" }

func TestReadPathCasesIsolation(t *testing.T) {
	rcModes(t, func(t *testing.T, app bool) {
		e := rpStart(t, rpOptions{app: app})
		db := e.db.Super
		pgtest.Exec(t, db, `INSERT INTO categories VALUES ('work', 'Work');
INSERT INTO lists (id, user_id, name) VALUES (1, 'alice', 'ALICEONLY l1'), (2, 'bob', 'BOBONLY l2'), (3, 'alice', 'ALICEONLY l3'), (4, 'bob', 'BOBONLY l4');
INSERT INTO items (id, list_id, title, secret) VALUES
 ('`+rcUUID(1)+`', 1, 'ALICEONLY i1', 'SECRETVAL'), ('`+rcUUID(3)+`', 3, 'ALICEONLY i3', 'SECRETVAL'),
 ('`+rcUUID(2)+`', 2, 'BOBONLY i2', 'SECRETVAL'), ('`+rcUUID(4)+`', 4, 'BOBONLY i4', 'SECRETVAL');
INSERT INTO notes VALUES ('na1', '`+rcUUID(1)+`', 'ALICEONLY n'), ('nb2', '`+rcUUID(2)+`', 'BOBONLY n');
INSERT INTO tips VALUES (1, NULL, 'shared'), (2, 'alice', 'ALICEONLY t'), (3, 'bob', 'BOBONLY t')`)
		e.caughtUp()

		users := map[string]string{"alice": "bob", "bob": "alice"}
		var clients []*rpClient
		for _, user := range []string{"alice", "bob"} {
			for i, limit := range []int{1, 3} {
				c := e.client(user, fmt.Sprintf("dev%d", i))
				for _, p := range rcSnapshot(c, limit) {
					rcNoLeak(t, user+" snapshot page", rcMarker(users[user]), p)
				}
				rpSameRows(t, user+" after snapshot", c.rows, e.expected(user))
				clients = append(clients, c)
			}
		}

		// Changes by both users, soft and hard deletes.
		pgtest.Exec(t, db, `UPDATE lists SET name = name || ' renamed';
UPDATE items SET title = title || ' renamed', secret = 'SECRETVAL2';
INSERT INTO lists (id, user_id, name) VALUES (5, 'bob', 'BOBONLY l5'), (6, 'alice', 'ALICEONLY l6');
INSERT INTO items (id, list_id, title, secret) VALUES ('`+rcUUID(5)+`', 5, 'BOBONLY i5', 'SECRETVAL'), ('`+rcUUID(6)+`', 6, 'ALICEONLY i6', 'SECRETVAL');
UPDATE items SET deleted_at = now() WHERE id IN ('`+rcUUID(4)+`', '`+rcUUID(3)+`');
DELETE FROM notes WHERE id = 'nb2';
UPDATE tips SET body = body || '!'`)
		e.caughtUp()
		for i, c := range clients {
			for _, p := range rcPullAll(c, 1+i%2*99) {
				rcNoLeak(t, c.user+" pull page", rcMarker(users[c.user]), p)
			}
			rpSameRows(t, c.user+" after pulls", c.rows, e.expected(c.user))
		}

		// Alice pushes to bob's rows: nothing of bob's comes back, nothing
		// of bob's changes.
		bobRows := func() string {
			var s string
			if err := db.QueryRow(`SELECT concat_ws(E'\n',
 (SELECT string_agg(row_to_json(l)::text, ',' ORDER BY id) FROM lists l WHERE user_id = 'bob'),
 (SELECT string_agg(row_to_json(i)::text, ',' ORDER BY id) FROM items i WHERE list_id IN (SELECT id FROM lists WHERE user_id = 'bob')),
 (SELECT string_agg(row_to_json(n)::text, ',' ORDER BY id) FROM notes n),
 (SELECT string_agg(row_to_json(p)::text, ',' ORDER BY id) FROM tips p WHERE user_id = 'bob'),
 (SELECT count(*)::text FROM items))`).Scan(&s); err != nil {
				t.Fatal(err)
			}
			return s
		}
		before := bobRows()
		v, h := e.schema()
		old := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
		now := time.Now().Add(time.Minute)
		rec := func(table, id, op, data string, at time.Time) synchro.PushRecord {
			r := synchro.PushRecord{ID: id, TableName: table, Operation: op, ClientUpdatedAt: at}
			if data != "" {
				r.Data = json.RawMessage(data)
			}
			return r
		}
		foreign := []synchro.PushRecord{
			rec("lists", "2", "update", `{"name": "hacked"}`, now),
			rec("lists", "2", "update", `{"name": "hacked"}`, old),
			rec("lists", "2", "create", `{"name": "hacked"}`, now),
			rec("lists", "2", "create", `{"name": "hacked", "user_id": "alice"}`, now),
			rec("lists", "4", "delete", "", now),
			rec("items", rcUUID(2), "update", `{"title": "hacked"}`, now),
			rec("items", rcUUID(2), "update", `{"title": "hacked"}`, old),
			rec("items", rcUUID(2), "create", `{"list_id": 1, "title": "hacked"}`, now),
			rec("items", rcUUID(4), "create", `{"list_id": 1, "title": "resurrect"}`, now),
			rec("items", rcUUID(5), "delete", "", now),
			rec("items", rcUUID(99), "create", `{"list_id": 2, "title": "into bob's list"}`, now),
			rec("notes", "nb2", "create", `{"item_id": "`+rcUUID(2)+`", "body": "hacked"}`, now),
			rec("tips", "3", "update", `{"body": "hacked"}`, now),
			rec("tips", "3", "update", `{"body": "hacked"}`, old),
			rec("tips", "3", "create", `{"body": "hacked"}`, now),
		}
		// A conflict on alice's own item: the server version has her row,
		// without the secret column.
		own := rec("items", rcUUID(1), "update", `{"title": "stale"}`, old)
		resp, err := e.eng.Push(context.Background(), "alice", &synchro.PushRequest{ClientID: "dev0",
			Changes: append(slices.Clone(foreign), own), SchemaVersion: v, SchemaHash: h})
		if err != nil {
			t.Fatalf("push: %v", err)
		}
		rcNoLeak(t, "push response", "BOBONLY", resp)
		for _, r := range resp.Accepted {
			if r.ID != rcUUID(1) {
				t.Errorf("push to another user's row accepted: %+v", r)
			}
		}
		var ownResult *synchro.PushResult
		outcomes := append(slices.Clone(resp.Accepted), resp.Rejected...)
		for i := range outcomes {
			if outcomes[i].ID == rcUUID(1) {
				ownResult = &outcomes[i]
			}
		}
		if ownResult == nil || ownResult.Status != synchro.PushStatusConflict || ownResult.ServerVersion == nil ||
			!strings.Contains(string(ownResult.ServerVersion.Data), "ALICEONLY i1") {
			t.Errorf("stale update of alice's own item: %s", rcJSON(t, ownResult))
		}
		if len(resp.Accepted)+len(resp.Rejected) != len(foreign)+1 {
			t.Errorf("push: %d outcomes for %d records", len(resp.Accepted)+len(resp.Rejected), len(foreign)+1)
		}
		if after := bobRows(); after != before {
			t.Errorf("alice's push changed bob's rows:\nbefore %s\nafter  %s", before, after)
		}
		e.caughtUp()
		for _, c := range clients {
			for _, p := range rcPullAll(c, 100) {
				rcNoLeak(t, c.user+" pull after push", rcMarker(users[c.user]), p)
			}
			rpSameRows(t, c.user+" after push", c.rows, e.expected(c.user))
		}
	})
}

// ---------------------------------------------------------------------------
// 2. Bucket moves

func TestReadPathCasesBucketMoves(t *testing.T) {
	rcModes(t, func(t *testing.T, app bool) {
		e := rpStart(t, rpOptions{app: app})
		db := e.db.Super
		pgtest.Exec(t, db, `INSERT INTO lists (id, user_id, name) VALUES (1, 'alice', 'a1'), (2, 'bob', 'b2'), (3, 'alice', 'a3');
INSERT INTO items (id, list_id, title) VALUES ('`+rcUUID(1)+`', 1, 'i1'), ('`+rcUUID(2)+`', 1, 'i2'), ('`+rcUUID(3)+`', 2, 'i3'), ('`+rcUUID(4)+`', 3, 'i4');
INSERT INTO notes VALUES ('n1', '`+rcUUID(1)+`', 'x'), ('n2', '`+rcUUID(2)+`', 'y'), ('n3', '`+rcUUID(3)+`', 'z'), ('n4', '`+rcUUID(4)+`', 'w')`)
		e.caughtUp()
		alice, bob := e.client("alice", "phone"), e.client("bob", "phone")
		alice.snapshot(2)
		bob.snapshot(2)
		list1 := []string{"lists/1", "items/" + rcUUID(1), "items/" + rcUUID(2), "notes/n1", "notes/n2"}
		item4 := []string{"items/" + rcUUID(4), "notes/n4"}
		step := func(what, stmt string) (ac, ad, bc, bd map[string]bool) {
			t.Helper()
			pgtest.Exec(t, db, stmt)
			e.caughtUp()
			ac, ad = rcFinal(rcPullAll(alice, 2))
			bc, bd = rcFinal(rcPullAll(bob, 3))
			rpSameRows(t, "alice after "+what, alice.rows, e.expected("alice"))
			rpSameRows(t, "bob after "+what, bob.rows, e.expected("bob"))
			return
		}

		ac, ad, bc, bd := step("the list moved to bob", `UPDATE lists SET user_id = 'bob' WHERE id = 1`)
		rcHas(t, "alice's deletes (list 1 to bob)", ad, list1...)
		rcHasNone(t, "alice's changes (list 1 to bob)", ac, list1...)
		rcHas(t, "bob's changes (list 1 to bob)", bc, list1...)
		rcHasNone(t, "bob's deletes (list 1 to bob)", bd, list1...)

		ac, _, bc, bd = step("the list moved to no owner", `UPDATE lists SET user_id = NULL WHERE id = 1`)
		rcHas(t, "bob's deletes (list 1 to NULL)", bd, list1...)
		rcHasNone(t, "bob's changes (list 1 to NULL)", bc, list1...)
		rcHasNone(t, "alice's changes (list 1 to NULL)", ac, list1...)

		ac, ad, bc, bd = step("the item moved to bob's list", `UPDATE items SET list_id = 2 WHERE id = '`+rcUUID(4)+`'`)
		rcHas(t, "alice's deletes (item 4 to list 2)", ad, item4...)
		rcHasNone(t, "alice's changes (item 4 to list 2)", ac, item4...)
		rcHas(t, "bob's changes (item 4 to list 2)", bc, item4...)
		rcHasNone(t, "bob's deletes (item 4 to list 2)", bd, item4...)

		ac, ad, _, _ = step("the list came back to alice", `UPDATE lists SET user_id = 'alice' WHERE id = 1`)
		rcHas(t, "alice's changes (list 1 back)", ac, list1...)
		rcHasNone(t, "alice's deletes (list 1 back)", ad, list1...)

		// A move and an edit in one transaction, and a move away and back
		// between two pulls.
		step("moves in one transaction", `UPDATE lists SET user_id = 'bob', name = 'moved' WHERE id = 3;
UPDATE items SET list_id = 3, title = 'followed' WHERE id = '`+rcUUID(1)+`'`)
		step("a move and back", `UPDATE lists SET user_id = 'bob' WHERE id = 1; UPDATE lists SET user_id = 'alice' WHERE id = 1`)
	})
}

// ---------------------------------------------------------------------------
// 3. Subscriptions

// rcTeamSchema adds to rpSchema documents bucketed by team, the memberships
// the RLS policy of the documents reads, and subscription functions.
const rcTeamSchema = rpSchema + `
CREATE TABLE team_docs (id text PRIMARY KEY, team_id text, user_id text, body text, deleted_at timestamptz);
CREATE TABLE memberships (user_id text NOT NULL, team text NOT NULL, client_id text, PRIMARY KEY (user_id, team));
CREATE POLICY rc_team_read ON team_docs FOR SELECT USING (
	user_id = current_setting('app.user_id', true)
	OR team_id IN (SELECT m.team FROM memberships m WHERE m.user_id = current_setting('app.user_id', true)));
CREATE FUNCTION rc_subs(user_id text, client_id text) RETURNS SETOF text LANGUAGE sql STABLE AS $$
	SELECT 'user:' || $1 UNION ALL SELECT 'global' UNION ALL SELECT NULL UNION ALL SELECT ''
	UNION ALL SELECT 'team:' || m.team FROM memberships m WHERE m.user_id = $1 AND (m.client_id IS NULL OR m.client_id = $2)
$$;
CREATE FUNCTION rc_one(user_id text, client_id text) RETURNS text LANGUAGE sql STABLE AS $$ SELECT 'user:' || $1 $$;
`

// rcTeamRegistry is rpRegistry with the team documents.
func rcTeamRegistry() *synchro.Registry {
	reg := rpRegistry()
	reg.Register(&synchro.TableConfig{TableName: "team_docs", OwnerColumn: "user_id", BucketByColumn: "team_id", BucketPrefix: "team:"})
	return reg
}

// rcSubs is a subscription rule whose answer a test changes: "user:<id>",
// "global" and the extra buckets of the user.
type rcSubs struct {
	mu    sync.Mutex
	extra map[string][]string
	fail  error
}

func (s *rcSubs) rule(_ context.Context, _ synchro.DB, user, _ string) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return nil, s.fail
	}
	return append([]string{"user:" + user, "global"}, s.extra[user]...), nil
}

// set gives user the extra buckets, and the matching memberships (which
// the RLS policy of team_docs reads).
func (s *rcSubs) set(e *rpEnv, user string, extra ...string) {
	e.t.Helper()
	s.mu.Lock()
	s.extra[user] = extra
	s.mu.Unlock()
	pgtest.Exec(e.t, e.db.Super, `DELETE FROM memberships WHERE user_id = $1`, user)
	for _, b := range extra {
		if team, ok := strings.CutPrefix(b, "team:"); ok {
			pgtest.Exec(e.t, e.db.Super, `INSERT INTO memberships (user_id, team) VALUES ($1, $2)`, user, team)
		}
	}
}

// rcExpect is what a client following subs holds: the rows of every
// "user:" bucket, the global rows when subs has "global", and the team
// documents of its "team:" buckets (and, with docsByUser, of its users).
func rcExpect(e *rpEnv, subs []string, docsByUser bool) map[string]json.RawMessage {
	e.t.Helper()
	out := map[string]json.RawMessage{}
	var users, teams []string
	for _, b := range subs {
		if u, ok := strings.CutPrefix(b, "user:"); ok {
			users = append(users, u)
			maps.Copy(out, e.expected(u))
		}
		if team, ok := strings.CutPrefix(b, "team:"); ok {
			teams = append(teams, team)
		}
	}
	if !slices.Contains(subs, "global") {
		for k := range rcRowsOf(e, `SELECT 'categories/' || id, '{}' FROM categories UNION ALL
SELECT 'tips/' || id, '{}' FROM tips WHERE coalesce(user_id, '') = ''`) {
			delete(out, k)
		}
	} else {
		maps.Copy(out, rcRowsOf(e, `SELECT 'categories/' || id, row_to_json(c)::text FROM categories c UNION ALL
SELECT 'tips/' || id, row_to_json(t)::text FROM tips t WHERE coalesce(user_id, '') = ''`))
	}
	if !docsByUser {
		users = nil
	}
	maps.Copy(out, rcRowsOf(e, `SELECT 'team_docs/' || id, row_to_json(d)::text FROM team_docs d
 WHERE deleted_at IS NULL AND (team_id = ANY($1) OR user_id = ANY($2))`, teams, users))
	return out
}

// rcBucketUpdate checks a response's bucket_updates.
func rcBucketUpdate(t *testing.T, what string, got *synchro.BucketUpdate, added, removed []string) {
	t.Helper()
	if len(added) == 0 && len(removed) == 0 {
		if got != nil {
			t.Errorf("%s: bucket_updates %+v, want none", what, got)
		}
		return
	}
	if got == nil || !slices.Equal(got.Added, added) || !slices.Equal(got.Removed, removed) {
		t.Errorf("%s: bucket_updates %+v, want added %v removed %v", what, got, added, removed)
	}
}

func TestReadPathCasesSubscriptionRule(t *testing.T) {
	rcModes(t, func(t *testing.T, app bool) {
		e := rpStart(t, rpOptions{app: app, schema: rcTeamSchema, registry: rcTeamRegistry()})
		db := e.db.Super
		subs := &rcSubs{extra: map[string][]string{}}
		ge := rcEngine(e, app, func(c *synchro.Config) { c.Subscriptions = subs.rule })
		pgtest.Exec(t, db, `INSERT INTO categories VALUES ('work', 'Work');
INSERT INTO lists (id, user_id, name) VALUES (1, 'alice', 'a1'), (2, 'bob', 'b2');
INSERT INTO items (id, list_id, title) VALUES ('`+rcUUID(1)+`', 1, 'ia'), ('`+rcUUID(2)+`', 2, 'ib');
INSERT INTO notes VALUES ('na', '`+rcUUID(1)+`', 'x'), ('nb', '`+rcUUID(2)+`', 'y');
INSERT INTO tips VALUES (1, NULL, 'all'), (2, 'bob', 'b'), (3, 'alice', 'a');
INSERT INTO team_docs VALUES ('d1', 't1', 'alice', 'x'), ('d2', 't1', 'bob', 'y'), ('d3', 't2', 'bob', 'z'),
 ('d4', 't2', 'carol', 'w'), ('d5', 't3', 'alice', 'own, in t3')`)
		e.caughtUp()

		alice := ge.client("alice", "phone")
		alice.snapshot(3)
		base := []string{"global", "user:alice"}
		rpSameRows(t, "alice after snapshot", alice.rows, rcExpect(e, base, false))
		alice.known = base

		// Adding a bucket: its rows come as changes, without a snapshot.
		subs.set(e, "alice", "team:t1")
		resp := alice.pull(1)
		if resp.SnapshotRequired {
			t.Fatalf("pull after a bucket was added: snapshot required (%s)", resp.SnapshotReason)
		}
		rcBucketUpdate(t, "team:t1 added", resp.BucketUpdates, []string{"team:t1"}, nil)
		alice.known = []string{"global", "team:t1", "user:alice"}
		pages := []*synchro.PullResponse{resp}
		if resp.HasMore {
			pages = append(pages, rcPullAll(alice, 1)...)
		}
		for _, p := range pages[1:] {
			rcBucketUpdate(t, "later page", p.BucketUpdates, nil, nil)
		}
		changed, _ := rcFinal(pages)
		rcHas(t, "changes after team:t1 added", changed, "team_docs/d1", "team_docs/d2")
		rpSameRows(t, "alice with team:t1", alice.rows, rcExpect(e, alice.known, false))

		// Writes in a followed bucket.
		pgtest.Exec(t, db, `INSERT INTO team_docs VALUES ('d6', 't1', 'carol', 'new'); UPDATE team_docs SET body = 'edited' WHERE id = 'd2'`)
		e.caughtUp()
		rcPullAll(alice, 2)
		rpSameRows(t, "alice after writes in team:t1", alice.rows, rcExpect(e, alice.known, false))

		// Removing team:t1 and adding team:t2, while d1 moves from t1 to
		// t2 (it stays) and d6 from t1 to t9, which alice does not follow
		// (only the changelog of t1 still tells that she holds it): the
		// rows of t1 go.
		pgtest.Exec(t, db, `UPDATE team_docs SET team_id = 't2' WHERE id = 'd1'; UPDATE team_docs SET team_id = 't9' WHERE id = 'd6'`)
		e.caughtUp()
		subs.set(e, "alice", "team:t2")
		resp = alice.pull(100)
		rcBucketUpdate(t, "team:t1 replaced by team:t2", resp.BucketUpdates, []string{"team:t2"}, []string{"team:t1"})
		alice.known = []string{"global", "team:t2", "user:alice"}
		pages = []*synchro.PullResponse{resp}
		if resp.HasMore {
			pages = append(pages, rcPullAll(alice, 100)...)
		}
		changed, deleted := rcFinal(pages)
		rcHas(t, "deletes after team:t1 removed", deleted, "team_docs/d2", "team_docs/d6")
		rcHasNone(t, "deletes after team:t1 removed", deleted, "team_docs/d1", "lists/1", "items/"+rcUUID(1))
		rcHas(t, "changes after team:t2 added", changed, "team_docs/d3", "team_docs/d4")
		rpSameRows(t, "alice with team:t2", alice.rows, rcExpect(e, alice.known, false))
		if resp := alice.pull(100); resp.BucketUpdates != nil || len(resp.Changes)+len(resp.Deletes) != 0 {
			t.Errorf("pull with nothing new: %+v", resp)
		}

		// Another user's bucket. As the application role, RLS still hides
		// bob's rows, and the engine then delivers none of them.
		subs.set(e, "alice", "team:t2", "user:bob")
		resp = alice.pull(100)
		rcBucketUpdate(t, "user:bob added", resp.BucketUpdates, []string{"user:bob"}, nil)
		alice.known = []string{"global", "team:t2", "user:alice", "user:bob"}
		if resp.HasMore {
			rcPullAll(alice, 100)
		}
		want := rcExpect(e, alice.known, false)
		if app {
			want = rcExpect(e, []string{"global", "team:t2", "user:alice"}, false)
		}
		rpSameRows(t, "alice with user:bob", alice.rows, want)
		subs.set(e, "alice", "team:t2")
		resp = alice.pull(100)
		rcBucketUpdate(t, "user:bob removed", resp.BucketUpdates, nil, []string{"user:bob"})
		alice.known = []string{"global", "team:t2", "user:alice"}
		pages = []*synchro.PullResponse{resp}
		if resp.HasMore {
			pages = append(pages, rcPullAll(alice, 100)...)
		}
		_, deleted = rcFinal(pages)
		if !app {
			rcHas(t, "deletes after user:bob removed", deleted, "lists/2", "items/"+rcUUID(2), "notes/nb", "tips/2")
		}
		rcHasNone(t, "deletes after user:bob removed", deleted, "lists/1", "items/"+rcUUID(1), "notes/na", "tips/1", "tips/3", "team_docs/d3")
		rpSameRows(t, "alice without user:bob", alice.rows, rcExpect(e, alice.known, false))

		// A rule answering a reserved or empty bucket, or failing, fails
		// the pull and the snapshot, and changes nothing.
		state := rcClientState(ge, "alice", "phone")
		boom := errors.New("rc: rule failed")
		for _, bad := range [][]string{{"synchro:client:00000000-0000-0000-0000-000000000000"}, {"synchro:"}, {""}, {"team:t2", ""}, nil} {
			if bad == nil {
				subs.mu.Lock()
				subs.fail = boom
				subs.mu.Unlock()
			} else {
				subs.set(e, "alice", bad...)
			}
			if _, err := alice.pullErr(100); err == nil {
				t.Errorf("pull with the rule answering %q: no error", bad)
			} else if bad == nil && !errors.Is(err, boom) {
				t.Errorf("pull with a failing rule: %v does not wrap the rule's error", err)
			}
			if _, err := rcSnapPage(alice, nil, 10); err == nil {
				t.Errorf("snapshot with the rule answering %q: no error", bad)
			}
			if got := rcClientState(ge, "alice", "phone"); got != state {
				t.Errorf("a failed request with the rule answering %q changed the client:\n%s\n%s", bad, state, got)
			}
		}
		subs.mu.Lock()
		subs.fail = nil
		subs.mu.Unlock()
		subs.set(e, "alice", "team:t2")
		rcPullAll(alice, 100)
		rpSameRows(t, "alice after the rule recovered", alice.rows, rcExpect(e, alice.known, false))

		tipsIdx := slices.Index(slices.Sorted(slices.Values(e.reg.TableNames())), "tips")

		// The rule changes while a snapshot runs: the snapshot ends with
		// the buckets it started with, the next pull moves the client.
		subs.set(e, "erin", "team:t2")
		erin := ge.client("erin", "phone")
		erin.rows = map[string]json.RawMessage{}
		for cur := (*synchro.SnapshotCursor)(nil); ; {
			p, err := rcSnapPage(erin, cur, 1)
			if err != nil {
				t.Fatalf("erin's snapshot: %v", err)
			}
			for _, r := range p.Records {
				erin.rows[r.TableName+"/"+r.ID] = r.Data
			}
			erin.checkpoint = p.Checkpoint
			if !p.HasMore {
				break
			}
			if p.Cursor.TableIndex == tipsIdx {
				subs.set(e, "erin")
			}
			cur = p.Cursor
		}
		rcPullAll(erin, 1)
		rpSameRows(t, "erin after a rule change during her snapshot", erin.rows, rcExpect(e, []string{"global", "user:erin"}, false))
	})
}

// TestReadPathCasesSupersededSnapshot starts a second snapshot after the
// subscription rule changed, with no change to the changelog in between (so
// both snapshots have the same checkpoint), then goes on with the first
// snapshot's cursor. Snapshot documents that a cursor of a snapshot
// superseded by another one is refused; if it is accepted, the client must
// at least end up with the rows of the buckets recorded for it.
func TestReadPathCasesSupersededSnapshot(t *testing.T) {
	rcModes(t, func(t *testing.T, app bool) {
		e := rpStart(t, rpOptions{app: app, schema: rcTeamSchema, registry: rcTeamRegistry()})
		subs := &rcSubs{extra: map[string][]string{}}
		ge := rcEngine(e, app, func(c *synchro.Config) { c.Subscriptions = subs.rule })
		pgtest.Exec(t, e.db.Super, `INSERT INTO categories VALUES ('work', 'Work');
INSERT INTO tips VALUES (1, NULL, 'all');
INSERT INTO team_docs VALUES ('d1', 't1', 'bob', 'x'), ('d2', 't1', 'dave', 'y'), ('d3', 't2', 'bob', 'z')`)
		e.caughtUp()
		tipsIdx := slices.Index(slices.Sorted(slices.Values(e.reg.TableNames())), "tips")

		subs.set(e, "carol", "team:t1")
		carol := ge.client("carol", "phone")
		carol.rows = map[string]json.RawMessage{}
		var cur *synchro.SnapshotCursor
		for cur == nil || cur.TableIndex < tipsIdx {
			p, err := rcSnapPage(carol, cur, 1)
			if err != nil {
				t.Fatalf("carol's first snapshot: %v", err)
			}
			for _, r := range p.Records {
				carol.rows[r.TableName+"/"+r.ID] = r.Data
			}
			if !p.HasMore {
				t.Fatalf("carol's first snapshot ended before table tips")
			}
			cur = p.Cursor
		}
		subs.set(e, "carol")
		if _, err := rcSnapPage(carol, nil, 1); err != nil {
			t.Fatalf("carol's second snapshot: %v", err)
		}
		for {
			p, err := rcSnapPage(carol, cur, 1)
			if err != nil {
				if !rcBadRequest(err) {
					t.Errorf("the first snapshot's cursor after a second snapshot: %v, want a bad request", err)
				}
				break
			}
			for _, r := range p.Records {
				carol.rows[r.TableName+"/"+r.ID] = r.Data
			}
			carol.checkpoint = p.Checkpoint
			if !p.HasMore {
				// The first snapshot's cursor was accepted to the end:
				// the client must then hold what its buckets hold.
				rcPullAll(carol, 100)
				rpSameRows(t, "carol after finishing a superseded snapshot", carol.rows, rcExpect(e, []string{"global", "user:carol"}, false))
				break
			}
			cur = p.Cursor
		}
	})
}

func TestReadPathCasesSQLSubscriptions(t *testing.T) {
	for _, name := range []string{"", " rc_subs", "a.b.c", ".rc_subs", "public.", "rc\x01subs", "bad\xffname", strings.Repeat("x", 64)} {
		if _, err := synchro.SQLSubscriptions(name); err == nil {
			t.Errorf("SQLSubscriptions(%q): no error", name)
		}
	}
	rcModes(t, func(t *testing.T, app bool) {
		e := rpStart(t, rpOptions{app: app, schema: rcTeamSchema, registry: rcTeamRegistry()})
		db := e.db.Super
		pgtest.Exec(t, db, `INSERT INTO categories VALUES ('work', 'Work');
INSERT INTO lists (id, user_id, name) VALUES (1, 'dave', 'd1'), (2, 'bob', 'b2');
INSERT INTO tips VALUES (1, NULL, 'all'), (2, 'dave', 'mine');
INSERT INTO team_docs VALUES ('d1', 't1', 'bob', 'x'), ('d2', 't2', 'bob', 'y'), ('d3', 't3', 'bob', 'z')`)
		e.caughtUp()
		rule, err := synchro.SQLSubscriptions("public.rc_subs")
		if err != nil {
			t.Fatal(err)
		}
		se := rcEngine(e, app, func(c *synchro.Config) { c.Subscriptions = rule })
		phone := se.client("dave", "phone")
		phone.snapshot(2)
		phone.known = []string{"global", "user:dave"}
		rpSameRows(t, "dave after snapshot", phone.rows, rcExpect(e, phone.known, false))

		pgtest.Exec(t, db, `INSERT INTO memberships VALUES ('dave', 't1', NULL), ('dave', 't3', 'tablet')`)
		resp := phone.pull(100)
		if resp.SnapshotRequired {
			t.Fatalf("pull after a membership: snapshot required")
		}
		rcBucketUpdate(t, "membership t1", resp.BucketUpdates, []string{"team:t1"}, nil)
		phone.known = []string{"global", "team:t1", "user:dave"}
		rcPullAll(phone, 100)
		rpSameRows(t, "dave's phone with t1", phone.rows, rcExpect(e, phone.known, false))

		tablet := se.client("dave", "tablet")
		tablet.snapshot(1)
		rpSameRows(t, "dave's tablet", tablet.rows, rcExpect(e, []string{"global", "team:t1", "team:t3", "user:dave"}, false))

		pgtest.Exec(t, db, `DELETE FROM memberships WHERE team = 't1'`)
		resp = phone.pull(100)
		rcBucketUpdate(t, "membership t1 removed", resp.BucketUpdates, nil, []string{"team:t1"})
		_, deleted := rcFinal([]*synchro.PullResponse{resp})
		rcHas(t, "deletes after t1 removed", deleted, "team_docs/d1")
		phone.known = []string{"global", "user:dave"}
		rcPullAll(phone, 100)
		rpSameRows(t, "dave's phone without t1", phone.rows, rcExpect(e, phone.known, false))

		// A function returning one text, found on the search path.
		one, err := synchro.SQLSubscriptions("rc_one")
		if err != nil {
			t.Fatal(err)
		}
		oe := rcEngine(e, app, func(c *synchro.Config) { c.Subscriptions = one })
		solo := oe.client("dave", "solo")
		solo.snapshot(3)
		rpSameRows(t, "dave with user:dave only", solo.rows, rcExpect(e, []string{"user:dave"}, false))

		// A missing function fails the snapshot with the database's error.
		missing, err := synchro.SQLSubscriptions("public.rc_missing")
		if err != nil {
			t.Fatal(err)
		}
		me := rcEngine(e, app, func(c *synchro.Config) { c.Subscriptions = missing })
		lost := me.client("dave", "lost")
		if _, err := rcSnapPage(lost, nil, 10); err == nil {
			t.Errorf("snapshot with a missing subscription function: no error")
		}
	})
}

// rcTeamResolver puts a team document in its team's bucket and its user's
// bucket, and other rows where the JoinResolver puts them. It is both the
// engine's OwnershipResolver and the consumer's BucketAssigner.
type rcTeamResolver struct{ jr *synchro.JoinResolver }

func rcDocBuckets(data map[string]any) []string {
	out := []string{}
	for _, c := range []struct{ col, prefix string }{{"team_id", "team:"}, {"user_id", "user:"}} {
		if v, ok := data[c.col]; ok && v != nil && fmt.Sprint(v) != "" {
			out = append(out, c.prefix+fmt.Sprint(v))
		}
	}
	return out
}

func (r rcTeamResolver) ResolveOwner(ctx context.Context, db synchro.DB, table, id string, data map[string]any) ([]string, error) {
	if table == "team_docs" {
		return rcDocBuckets(data), nil
	}
	return r.jr.ResolveOwner(ctx, db, table, id, data)
}

func (r rcTeamResolver) AssignBuckets(ctx context.Context, table, id string, op synchro.Operation, data map[string]any) ([]string, error) {
	if table == "team_docs" {
		return rcDocBuckets(data), nil
	}
	return r.jr.AssignBuckets(ctx, table, id, op, data)
}

func TestReadPathCasesSubscriptionOverlap(t *testing.T) {
	rcModes(t, func(t *testing.T, app bool) {
		subs := &rcSubs{extra: map[string][]string{}}
		e := rpStart(t, rpOptions{app: app, schema: rcTeamSchema, registry: rcTeamRegistry(),
			config: func(c *synchro.Config) {
				c.Subscriptions = subs.rule
				c.Ownership = rcTeamResolver{jr: synchro.NewJoinResolver(c.Registry)}
			},
			assigner: func(reg *synchro.Registry, db *sql.DB) wal.BucketAssigner {
				return rcTeamResolver{jr: synchro.NewJoinResolverWithDB(reg, db)}
			}})
		db := e.db.Super
		pgtest.Exec(t, db, `INSERT INTO lists (id, user_id, name) VALUES (1, 'alice', 'a1');
INSERT INTO team_docs VALUES ('d1', 't1', 'alice', 'both'), ('d2', 't1', 'bob', 'team only'), ('d3', 't2', 'alice', 'user only')`)
		e.caughtUp()
		subs.set(e, "alice", "team:t1")
		alice := e.client("alice", "phone")
		alice.snapshot(1)
		alice.known = []string{"global", "team:t1", "user:alice"}
		rpSameRows(t, "alice with team:t1", alice.rows, rcExpect(e, alice.known, true))

		// d1 is still in user:alice: it stays; d2 goes.
		subs.set(e, "alice")
		pages := rcPullAll(alice, 1)
		rcBucketUpdate(t, "team:t1 removed", pages[0].BucketUpdates, nil, []string{"team:t1"})
		changed, deleted := rcFinal(pages)
		rcHas(t, "deletes after team:t1 removed", deleted, "team_docs/d2")
		rcHasNone(t, "deletes after team:t1 removed", deleted, "team_docs/d1", "team_docs/d3")
		rcHasNone(t, "changes after team:t1 removed", changed, "team_docs/d2")
		alice.known = []string{"global", "user:alice"}
		rpSameRows(t, "alice without team:t1", alice.rows, rcExpect(e, alice.known, true))

		// Back again, and a document leaving alice for bob in a team she
		// does not follow.
		subs.set(e, "alice", "team:t1")
		pgtest.Exec(t, db, `UPDATE team_docs SET user_id = 'bob' WHERE id = 'd3'`)
		e.caughtUp()
		_, deleted = rcFinal(rcPullAll(alice, 2))
		rcHas(t, "deletes after d3 left", deleted, "team_docs/d3")
		alice.known = []string{"global", "team:t1", "user:alice"}
		rpSameRows(t, "alice with team:t1 again", alice.rows, rcExpect(e, alice.known, true))
	})
}

// ---------------------------------------------------------------------------
// 4. Tables filter

// rcFilterPage is what a filtered pull from the entries must give.
func rcFilterPage(entries []rcEntry, filter []string, limit int, checkpoint int64) (int64, bool, []string) {
	seen := map[string]bool{}
	var keys []string
	n := 0
	for _, en := range entries {
		if filter != nil && !slices.Contains(filter, en.table) {
			return checkpoint, false, keys
		}
		if n == limit {
			return checkpoint, true, keys
		}
		n++
		checkpoint = en.seq
		if k := en.table + "/" + en.id; !seen[k] {
			seen[k] = true
			keys = append(keys, k)
		}
	}
	return checkpoint, false, keys
}

func TestReadPathCasesTablesFilter(t *testing.T) {
	rcModes(t, func(t *testing.T, app bool) {
		e := rpStart(t, rpOptions{app: app})
		db := e.db.Super
		pgtest.Exec(t, db, `INSERT INTO categories VALUES ('work', 'Work')`)
		e.caughtUp()
		alice := e.client("alice", "phone")
		alice.snapshot(10)
		cp0 := alice.checkpoint
		for _, stmt := range []string{
			`INSERT INTO lists (id, user_id, name) VALUES (10, 'alice', 'l10')`,
			`INSERT INTO lists (id, user_id, name) VALUES (11, 'alice', 'l11')`,
			`INSERT INTO items (id, list_id, title) VALUES ('` + rcUUID(10) + `', 10, 'i10')`,
			`UPDATE lists SET name = 'l11 renamed' WHERE id = 11`,
			`INSERT INTO categories VALUES ('home', 'Home')`,
			`INSERT INTO lists (id, user_id, name) VALUES (12, 'alice', 'l12')`,
			`INSERT INTO notes VALUES ('n10', '` + rcUUID(10) + `', 'note')`,
			`DELETE FROM lists WHERE id = 12`,
			`INSERT INTO lists (id, user_id, name) VALUES (13, 'bob', 'not alice''s')`,
		} {
			pgtest.Exec(t, db, stmt)
		}
		e.caughtUp()
		entries := rcEntries(alice, cp0)
		if len(entries) < 8 {
			t.Fatalf("%d changelog entries for alice, want at least 8", len(entries))
		}

		// Every filter and limit from the same checkpoint, without moving
		// the client.
		for _, filter := range [][]string{{"lists"}, {"items"}, {"categories"}, {"lists", "items"}, {"lists", "items", "categories"}, {"notes", "lists", "items", "categories"}} {
			for _, limit := range []int{1, 2, 3, 100} {
				resp, err := rcPullAt(alice, cp0, limit, filter...)
				if err != nil {
					t.Fatalf("pull %v limit %d: %v", filter, limit, err)
				}
				cp, more, keys := rcFilterPage(entries, filter, limit, cp0)
				got := rcPageKeys(resp)
				slices.Sort(got)
				slices.Sort(keys)
				if resp.Checkpoint != cp || resp.HasMore != more || !slices.Equal(got, keys) {
					t.Errorf("pull %v limit %d: checkpoint %d has_more %v records %v, want %d %v %v",
						filter, limit, resp.Checkpoint, resp.HasMore, got, cp, more, keys)
				}
				for _, r := range resp.Changes {
					if !slices.Contains(filter, r.TableName) {
						t.Errorf("pull %v: a change of %s", filter, r.TableName)
					}
				}
				for _, d := range resp.Deletes {
					if !slices.Contains(filter, d.TableName) {
						t.Errorf("pull %v: a delete of %s", filter, d.TableName)
					}
				}
			}
		}

		// A client pulling with the filter until has_more is false stops
		// before the first item, and stays there.
		var firstOther int64
		for _, en := range entries {
			if en.table != "lists" {
				firstOther = en.seq
				break
			}
		}
		for i := 0; ; i++ {
			if i > 100 {
				t.Fatal("filtered pulls do not end")
			}
			if resp := alice.pull(1, "lists"); !resp.HasMore {
				break
			}
		}
		if alice.checkpoint >= firstOther {
			t.Errorf("filtered pulls went to %d, past the item change at %d", alice.checkpoint, firstOther)
		}
		stuck := alice.checkpoint
		if resp := alice.pull(100, "lists"); resp.Checkpoint != stuck || resp.HasMore || len(resp.Changes)+len(resp.Deletes) != 0 {
			t.Errorf("filtered pull at the blocking change: %+v, want nothing at %d", resp, stuck)
		}
		// Without the filter everything comes and the client converges.
		rcPullAll(alice, 3)
		rpSameRows(t, "alice after the unfiltered pulls", alice.rows, e.expected("alice"))

		for _, filter := range [][]string{{"nope"}, {"lists", "nope"}, {"Lists"}, {"synchro.changelog"}, {""}} {
			_, err := rcPullAt(alice, alice.checkpoint, 10, filter...)
			if !errors.Is(err, synchro.ErrTableNotRegistered) || !rcBadRequest(err) {
				t.Errorf("pull with tables %q: %v, want a bad request wrapping ErrTableNotRegistered", filter, err)
			}
		}
	})
}

// ---------------------------------------------------------------------------
// 5. Paging

func TestReadPathCasesPaging(t *testing.T) {
	rcModes(t, func(t *testing.T, app bool) {
		e := rpStart(t, rpOptions{app: app})
		db := e.db.Super
		alice := e.client("alice", "phone")
		alice.snapshot(10)

		pageThrough := func(what string, limit, wantEntries int) {
			t.Helper()
			total := 0
			for i := 0; ; i++ {
				prev := alice.checkpoint
				resp := alice.pull(limit)
				n := rcCountEntries(alice, prev, resp.Checkpoint)
				total += n
				records := len(resp.Changes) + len(resp.Deletes)
				if n > limit || records > n || (resp.HasMore && n != limit) || (n > 0 && records == 0) {
					t.Errorf("%s page %d: %d entries, %d records, has_more %v (limit %d)", what, i, n, records, resp.HasMore, limit)
				}
				if !resp.HasMore {
					break
				}
				if i > 1000 {
					t.Fatal("paging does not end")
				}
			}
			if total != wantEntries {
				t.Errorf("%s: %d entries paged, want %d", what, total, wantEntries)
			}
		}
		pgtest.Exec(t, db, `INSERT INTO lists (id, user_id, name) SELECT g, 'alice', 'l' || g FROM generate_series(1, 23) g`)
		e.caughtUp()
		pageThrough("23 entries by 5", 5, 23)
		pgtest.Exec(t, db, `INSERT INTO lists (id, user_id, name) SELECT g, 'alice', 'l' || g FROM generate_series(24, 33) g`)
		e.caughtUp()
		pageThrough("10 entries by 5", 5, 10)
		rpSameRows(t, "alice after paging", alice.rows, e.expected("alice"))

		// Several changes of one record merge into one, at its first
		// position, with its last operation.
		for _, stmt := range []string{
			`INSERT INTO lists (id, user_id, name) VALUES (500, 'alice', 'v0')`,
			`UPDATE lists SET name = 'v1' WHERE id = 500`,
			`INSERT INTO lists (id, user_id, name) VALUES (600, 'alice', 'parent')`,
			`INSERT INTO items (id, list_id, title) VALUES ('` + rcUUID(600) + `', 600, 'child')`,
			`UPDATE lists SET name = 'v2' WHERE id = 500`,
			`INSERT INTO lists (id, user_id, name) VALUES (501, 'alice', 'gone')`,
			`UPDATE lists SET name = 'parent edited' WHERE id = 600`,
			`DELETE FROM lists WHERE id = 501`,
			`INSERT INTO lists (id, user_id, name) VALUES (502, 'alice', 'soft')`,
			`UPDATE lists SET deleted_at = now() WHERE id = 502`,
			`UPDATE lists SET name = 'v3' WHERE id = 500`,
		} {
			pgtest.Exec(t, db, stmt)
		}
		e.caughtUp()
		prev := alice.checkpoint
		// 11 changes; the consumer may write one more for the item (see
		// TestReadPathCasesChildCapturedOnce), which merging hides.
		all := len(rcEntries(alice, prev))
		resp := alice.pull(100)
		if n := rcCountEntries(alice, prev, resp.Checkpoint); n != all || all < 11 || resp.HasMore {
			t.Errorf("merged page: %d of %d entries, has_more %v; want all (at least 11), false; changelog %s", n, all, resp.HasMore, rcChangelogDump(e, prev))
		}
		keys := rcPageKeys(resp)
		wantChanges := []string{"lists/500", "lists/600", "items/" + rcUUID(600)}
		var gotChanges []string
		for _, r := range resp.Changes {
			gotChanges = append(gotChanges, r.TableName+"/"+r.ID)
			if r.ID == "500" && !strings.Contains(string(r.Data), `"v3"`) {
				t.Errorf("merged record 500: %s, want its last contents", r.Data)
			}
		}
		if !slices.Equal(gotChanges, wantChanges) {
			t.Errorf("merged changes %v, want %v in changelog order", gotChanges, wantChanges)
		}
		var gotDeletes []string
		for _, d := range resp.Deletes {
			gotDeletes = append(gotDeletes, d.TableName+"/"+d.ID)
		}
		if !slices.Equal(gotDeletes, []string{"lists/501", "lists/502"}) {
			t.Errorf("merged deletes %v, want [lists/501 lists/502]", gotDeletes)
		}
		if len(slices.Compact(slices.Sorted(slices.Values(keys)))) != len(keys) {
			t.Errorf("a record appears twice in one page: %v", keys)
		}

		// Default limit 100, maximum 1000: 1300 entries come as 100, 100,
		// 1000 and 100.
		pgtest.Exec(t, db, `INSERT INTO lists (id, user_id, name) SELECT g, 'alice', 'bulk' FROM generate_series(1000, 2299) g`)
		e.caughtUp()
		for _, c := range []struct {
			limit, entries int
			more           bool
		}{{0, 100, true}, {-3, 100, true}, {5000, 1000, true}, {1000, 100, false}} {
			prev := alice.checkpoint
			resp := alice.pull(c.limit)
			n := rcCountEntries(alice, prev, resp.Checkpoint)
			if n != c.entries || len(resp.Changes) != c.entries || resp.HasMore != c.more {
				t.Errorf("limit %d: %d entries, %d changes, has_more %v; want %d, %d, %v",
					c.limit, n, len(resp.Changes), resp.HasMore, c.entries, c.entries, c.more)
			}
		}
		rpSameRows(t, "alice at the end", alice.rows, e.expected("alice"))
	})
}

// ---------------------------------------------------------------------------
// 6. Retention boundary

// rcHookCall is one call of a hook.
type rcHookCall struct {
	client               string
	checkpoint, boundary int64
	count                int
	reason               string
}

// rcRecorder records hook calls.
type rcRecorder struct {
	mu                sync.Mutex
	snaps, pulls      []rcHookCall
	stale             []string
	allowStale        atomic.Bool
	staleLastSyncZero atomic.Bool
}

func (r *rcRecorder) hooks(h *synchro.Hooks) {
	h.OnSnapshotRequired = func(_ context.Context, client string, checkpoint, boundary int64, reason string) {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.snaps = append(r.snaps, rcHookCall{client: client, checkpoint: checkpoint, boundary: boundary, reason: reason})
	}
	h.OnPullComplete = func(_ context.Context, client string, checkpoint int64, count int) {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.pulls = append(r.pulls, rcHookCall{client: client, checkpoint: checkpoint, count: count})
	}
	h.OnStaleClient = func(_ context.Context, client string, last time.Time) bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.stale = append(r.stale, client)
		if last.IsZero() {
			r.staleLastSyncZero.Store(true)
		}
		return r.allowStale.Load()
	}
}

func (r *rcRecorder) lastSnap() (rcHookCall, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.snaps) == 0 {
		return rcHookCall{}, 0
	}
	return r.snaps[len(r.snaps)-1], len(r.snaps)
}

func (r *rcRecorder) lastPull() (rcHookCall, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.pulls) == 0 {
		return rcHookCall{}, 0
	}
	return r.pulls[len(r.pulls)-1], len(r.pulls)
}

func (r *rcRecorder) staleCalls() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.stale)
}

// rcRefusedPull pulls c from checkpoint and checks that it is told to
// snapshot for reason: the request's checkpoint back, nothing delivered,
// the client row unchanged, and OnSnapshotRequired called with boundary as
// minSeq.
func rcRefusedPull(t *testing.T, rec *rcRecorder, c *rpClient, checkpoint, boundary int64, reason string) {
	t.Helper()
	state := rcClientState(c.e, c.user, c.id)
	resp, err := rcPullAt(c, checkpoint, 100)
	if err != nil {
		t.Fatalf("pull from %d: %v", checkpoint, err)
	}
	if !resp.SnapshotRequired || resp.SnapshotReason != reason || resp.Checkpoint != checkpoint ||
		resp.HasMore || len(resp.Changes)+len(resp.Deletes) != 0 {
		t.Errorf("pull from %d (boundary %d, newest seq %d): %+v; want snapshot required, %s", checkpoint, boundary, rcMaxSeq(c.e), resp, reason)
	}
	if got := rcClientState(c.e, c.user, c.id); got != state {
		t.Errorf("a pull from %d changed the client:\n%s\n%s", checkpoint, state, got)
	}
	want := rcHookCall{client: c.id, checkpoint: checkpoint, boundary: boundary, reason: reason}
	if got, _ := rec.lastSnap(); got != want {
		t.Errorf("OnSnapshotRequired got %+v, want %+v", got, want)
	}
}

func TestReadPathCasesRetention(t *testing.T) {
	rcModes(t, func(t *testing.T, app bool) {
		rec := &rcRecorder{}
		e := rpStart(t, rpOptions{app: app, config: func(c *synchro.Config) { rec.hooks(&c.Hooks) }})
		db := e.db.Super
		pgtest.Exec(t, db, `INSERT INTO lists (id, user_id, name) VALUES (1, 'alice', 'a'), (2, 'alice', 'b')`)
		e.caughtUp()

		// Boundary 0: checkpoint 0 is at the boundary.
		zero := e.client("alice", "zero")
		zero.snapshot(10)
		if resp, err := rcPullAt(zero, 0, 100); err != nil || resp.SnapshotRequired {
			t.Fatalf("pull from 0 at boundary 0: %+v, %v", resp, err)
		}

		for i := 3; i <= 10; i++ {
			pgtest.Exec(t, db, `INSERT INTO lists (id, user_id, name) VALUES ($1, 'alice', 'x')`, i)
		}
		e.caughtUp()
		boundary := rcMaxSeq(e) - 3
		pgtest.Exec(t, db, `UPDATE synchro.compaction SET boundary_seq = $1`, boundary)

		at, below := e.client("alice", "at"), e.client("alice", "below")
		at.snapshot(10)
		below.snapshot(10)
		zero.snapshot(10)
		if at.checkpoint < boundary {
			t.Fatalf("snapshot checkpoint %d below the boundary %d", at.checkpoint, boundary)
		}
		_, snapsBefore := rec.lastSnap()

		resp, err := rcPullAt(at, boundary, 100)
		if err != nil || resp.SnapshotRequired || resp.Checkpoint < boundary || len(resp.Changes) == 0 {
			t.Errorf("pull at the boundary %d: %+v, %v", boundary, resp, err)
		}
		if _, n := rec.lastSnap(); n != snapsBefore {
			t.Errorf("OnSnapshotRequired fired for a pull at the boundary")
		}

		for _, c := range []struct {
			client     *rpClient
			checkpoint int64
		}{{below, boundary - 1}, {zero, 0}} {
			rcRefusedPull(t, rec, c.client, c.checkpoint, boundary, "checkpoint_before_retention")
		}

		fresh := e.client("alice", "fresh")
		if resp, err := rcPullAt(fresh, 0, 100); err != nil || !resp.SnapshotRequired || resp.SnapshotReason != synchro.SnapshotReasonInitialSyncRequired {
			t.Errorf("pull before any snapshot: %+v, %v", resp, err)
		}
		// minSeq is the boundary for this reason too.
		if got, _ := rec.lastSnap(); got != (rcHookCall{client: "fresh", boundary: boundary, reason: synchro.SnapshotReasonInitialSyncRequired}) {
			t.Errorf("OnSnapshotRequired for a fresh client: %+v", got)
		}

		// The changelog up to the boundary removed: a new snapshot starts
		// at the boundary at least, and pulls go on from it.
		pgtest.Exec(t, db, `UPDATE lists SET name = 'late' WHERE id = 1`)
		e.caughtUp()
		high := rcMaxSeq(e)
		pgtest.Exec(t, db, `UPDATE synchro.compaction SET boundary_seq = $1`, high)
		pgtest.Exec(t, db, `DELETE FROM synchro.changelog WHERE seq <= $1`, high)
		below.snapshot(1)
		if below.checkpoint < high {
			t.Errorf("snapshot after compaction: checkpoint %d, below the boundary %d", below.checkpoint, high)
		}
		rpSameRows(t, "alice after the new snapshot", below.rows, e.expected("alice"))
		if resp := below.pull(100); resp.SnapshotRequired {
			t.Fatalf("pull after the new snapshot: snapshot required")
		}
		pgtest.Exec(t, db, `INSERT INTO lists (id, user_id, name) VALUES (11, 'alice', 'after'); UPDATE lists SET name = 'later' WHERE id = 2`)
		e.caughtUp()
		rcPullAll(below, 1)
		rpSameRows(t, "alice after pulls past the boundary", below.rows, e.expected("alice"))
	})
}

// TestReadPathCasesCheckpointAhead pulls from checkpoints the server never
// handed out. Made up, or held by a client while the server's changelog
// went back (a database restored from an older backup): the pull used to
// answer "nothing new" and, once new changes reached the checkpoint, skip
// every one up to it. It must ask for a snapshot instead, and change
// nothing.
func TestReadPathCasesCheckpointAhead(t *testing.T) {
	rcModes(t, func(t *testing.T, app bool) {
		rec := &rcRecorder{}
		e := rpStart(t, rpOptions{app: app, config: func(c *synchro.Config) { rec.hooks(&c.Hooks) }})
		db := e.db.Super
		pgtest.Exec(t, db, `INSERT INTO lists (id, user_id, name) VALUES (1, 'alice', 'a'), (2, 'alice', 'b')`)
		e.caughtUp()
		alice := e.client("alice", "phone")
		alice.snapshot(10)
		ahead := func(checkpoint int64) {
			t.Helper()
			rcRefusedPull(t, rec, alice, checkpoint, 0, "checkpoint_ahead_of_server")
		}
		newest := max(rcMaxSeq(e), alice.checkpoint)
		if resp, err := rcPullAt(alice, newest, 100); err != nil || resp.SnapshotRequired {
			t.Fatalf("pull from the newest checkpoint %d: %+v, %v", newest, resp, err)
		}
		ahead(newest + 1)
		ahead(math.MaxInt64)

		// A snapshot with nothing written since the last one draws a
		// checkpoint above every seq: it is the client's, not ahead.
		alice.snapshot(10)
		if alice.checkpoint <= rcMaxSeq(e) {
			t.Fatalf("second snapshot: checkpoint %d, newest seq %d", alice.checkpoint, rcMaxSeq(e))
		}
		if resp := alice.pull(100); resp.SnapshotRequired {
			t.Fatalf("pull from a drawn snapshot checkpoint: %+v", resp)
		}

		// The changelog goes back: its rows above backup are lost and its
		// sequence restarts after backup, as is the client row (its
		// snapshot checkpoint back at backup), while the device holds a
		// checkpoint from after it. New changes then take the lost seqs.
		backup := alice.checkpoint
		pgtest.Exec(t, db, `INSERT INTO lists (id, user_id, name) VALUES (3, 'alice', 'c'), (4, 'alice', 'd'), (5, 'alice', 'e')`)
		e.caughtUp()
		alice.pullAll(100)
		held := alice.checkpoint
		// A checkpoint the server handed out but the client row no longer
		// records (two pulls of the device at once, the one from the older
		// checkpoint recorded last) is not ahead.
		pgtest.Exec(t, db, `UPDATE synchro.clients SET last_pull_seq = snapshot_seq, acked_seq = snapshot_seq WHERE client_id = 'phone'`)
		if resp, err := rcPullAt(alice, held, 100); err != nil || resp.SnapshotRequired {
			t.Fatalf("pull from %d, delivered but no longer recorded: %+v, %v", held, resp, err)
		}
		pgtest.Exec(t, db, `DELETE FROM synchro.changelog WHERE seq > $1`, backup)
		pgtest.Exec(t, db, fmt.Sprintf(`ALTER TABLE synchro.changelog ALTER COLUMN seq RESTART WITH %d`, backup+1))
		pgtest.Exec(t, db, `UPDATE synchro.clients SET snapshot_seq = $1, last_pull_seq = $1, acked_seq = $1 WHERE client_id = 'phone'`, backup)
		pgtest.Exec(t, db, `UPDATE lists SET name = 'after the restore' WHERE id = 1; INSERT INTO lists (id, user_id, name) VALUES (6, 'alice', 'f')`)
		e.caughtUp()
		if rcMaxSeq(e) >= held {
			t.Fatalf("the new changes reached the held checkpoint %d (newest %d): the case needs fewer", held, rcMaxSeq(e))
		}
		ahead(held)
		alice.snapshot(10)
		rpSameRows(t, "alice after the snapshot the pull asked for", alice.rows, e.expected("alice"))
		if resp := alice.pull(100); resp.SnapshotRequired {
			t.Fatalf("pull after the new snapshot: %+v", resp)
		}
	})
}

// ---------------------------------------------------------------------------
// 7. Tampered snapshot cursors

func TestReadPathCasesSnapshotCursor(t *testing.T) {
	rcModes(t, func(t *testing.T, app bool) {
		e := rpStart(t, rpOptions{app: app})
		db := e.db.Super
		pgtest.Exec(t, db, `INSERT INTO categories VALUES ('a', 'A'), ('b', 'B');
INSERT INTO lists (id, user_id, name) VALUES (1, 'alice', 'l1'), (2, 'alice', 'l2'), (3, 'alice', 'l3'), (4, 'bob', 'l4');
INSERT INTO items (id, list_id, title) VALUES ('`+rcUUID(1)+`', 1, 'i1'), ('`+rcUUID(2)+`', 2, 'i2'), ('`+rcUUID(3)+`', 4, 'i3');
INSERT INTO notes VALUES ('n1', '`+rcUUID(1)+`', 'x');
INSERT INTO tips VALUES (1, NULL, 't'), (2, 'alice', 'u')`)
		e.caughtUp()
		names := slices.Sorted(slices.Values(e.reg.TableNames()))
		itemsIdx, listsIdx := slices.Index(names, "items"), slices.Index(names, "lists")

		alice := e.client("alice", "phone")
		first, err := rcSnapPage(alice, nil, 1)
		if err != nil || !first.HasMore || first.Cursor == nil {
			t.Fatalf("first page: %+v, %v", first, err)
		}
		cur := *first.Cursor
		cp := cur.Checkpoint
		state := rcClientState(e, "alice", "phone")
		for _, c := range []struct {
			name string
			cur  synchro.SnapshotCursor
		}{
			{"checkpoint+1", synchro.SnapshotCursor{Checkpoint: cp + 1, TableIndex: cur.TableIndex, AfterID: cur.AfterID}},
			{"checkpoint-1", synchro.SnapshotCursor{Checkpoint: cp - 1, TableIndex: cur.TableIndex, AfterID: cur.AfterID}},
			{"negative checkpoint", synchro.SnapshotCursor{Checkpoint: -1, TableIndex: cur.TableIndex, AfterID: cur.AfterID}},
			{"huge checkpoint", synchro.SnapshotCursor{Checkpoint: math.MaxInt64, TableIndex: cur.TableIndex}},
			{"negative table_idx", synchro.SnapshotCursor{Checkpoint: cp, TableIndex: -1}},
			{"table_idx past the tables", synchro.SnapshotCursor{Checkpoint: cp, TableIndex: len(names)}},
			{"huge table_idx", synchro.SnapshotCursor{Checkpoint: cp, TableIndex: math.MaxInt32}},
			{"bigint key abc", synchro.SnapshotCursor{Checkpoint: cp, TableIndex: listsIdx, AfterID: "abc"}},
			{"bigint key out of range", synchro.SnapshotCursor{Checkpoint: cp, TableIndex: listsIdx, AfterID: "99999999999999999999999"}},
			{"bigint key 1.5", synchro.SnapshotCursor{Checkpoint: cp, TableIndex: listsIdx, AfterID: "1.5"}},
			{"uuid key abc", synchro.SnapshotCursor{Checkpoint: cp, TableIndex: itemsIdx, AfterID: "abc"}},
			{"uuid key truncated", synchro.SnapshotCursor{Checkpoint: cp, TableIndex: itemsIdx, AfterID: "00000000-0000"}},
		} {
			resp, err := rcSnapPage(alice, &c.cur, 1)
			if err == nil || !rcBadRequest(err) {
				t.Errorf("%s: %+v, %v; want a bad request", c.name, resp, err)
			}
			if got := rcClientState(e, "alice", "phone"); got != state {
				t.Errorf("%s changed the client:\n%s\n%s", c.name, state, got)
			}
		}

		// The real cursor still works; the last page can be asked twice.
		alice.rows = map[string]json.RawMessage{}
		for _, r := range first.Records {
			alice.rows[r.TableName+"/"+r.ID] = r.Data
		}
		next := &cur
		var last *synchro.SnapshotResponse
		for {
			p, err := rcSnapPage(alice, next, 1)
			if err != nil {
				t.Fatalf("snapshot page after the refused cursors: %v", err)
			}
			for _, r := range p.Records {
				alice.rows[r.TableName+"/"+r.ID] = r.Data
			}
			if !p.HasMore {
				last = p
				break
			}
			next = p.Cursor
		}
		rpSameRows(t, "alice after the snapshot", alice.rows, e.expected("alice"))
		again, err := rcSnapPage(alice, next, 1)
		if err != nil || again.HasMore || rcJSON(t, again.Records) != rcJSON(t, last.Records) || again.Checkpoint != last.Checkpoint {
			t.Errorf("the last page asked again: %+v, %v; want %+v", again, err, last)
		}
		alice.checkpoint = last.Checkpoint
		if resp := alice.pull(100); resp.SnapshotRequired {
			t.Errorf("pull after the snapshot: snapshot required")
		}
		// The cursor names the client's latest snapshot until another
		// one starts, even after the client pulled from it.
		if _, err := rcSnapPage(alice, next, 1); err != nil {
			t.Errorf("the last page asked again after a pull: %v", err)
		}
		if _, err := rcSnapPage(alice, nil, 1); err != nil {
			t.Fatalf("a new snapshot: %v", err)
		}
		if _, err := rcSnapPage(alice, next, 1); !rcBadRequest(err) {
			t.Errorf("the previous snapshot's cursor after a new one started: %v, want a bad request", err)
		}

		// Rows changed while a snapshot runs, in tables it has passed and
		// tables it has not read yet, come with the pulls after it.
		live := e.client("alice", "live")
		p, err := rcSnapPage(live, nil, 3)
		if err != nil || p.Cursor == nil {
			t.Fatalf("live snapshot: %+v, %v", p, err)
		}
		live.rows = map[string]json.RawMessage{}
		for _, r := range p.Records {
			live.rows[r.TableName+"/"+r.ID] = r.Data
		}
		pgtest.Exec(t, db, `UPDATE categories SET name = 'A2' WHERE id = 'a'; INSERT INTO lists (id, user_id, name) VALUES (7, 'alice', 'l7');
DELETE FROM lists WHERE id = 2; UPDATE items SET title = 'moved in' WHERE id = '`+rcUUID(3)+`';
UPDATE items SET list_id = 1 WHERE id = '`+rcUUID(3)+`'; UPDATE tips SET user_id = 'bob' WHERE id = 2`)
		e.caughtUp()
		for p.HasMore {
			if p, err = rcSnapPage(live, p.Cursor, 3); err != nil {
				t.Fatalf("live snapshot: %v", err)
			}
			for _, r := range p.Records {
				live.rows[r.TableName+"/"+r.ID] = r.Data
			}
			live.checkpoint = p.Checkpoint
		}
		rcPullAll(live, 2)
		rpSameRows(t, "alice after a snapshot with concurrent writes", live.rows, e.expected("alice"))

		// A client without a snapshot in progress.
		fresh := e.client("alice", "fresh")
		fstate := rcClientState(e, "alice", "fresh")
		if _, err := rcSnapPage(fresh, &synchro.SnapshotCursor{Checkpoint: cp, TableIndex: 0}, 1); !rcBadRequest(err) {
			t.Errorf("a cursor from a client that never started a snapshot: %v, want a bad request", err)
		}
		if got := rcClientState(e, "alice", "fresh"); got != fstate {
			t.Errorf("a refused cursor changed the fresh client:\n%s\n%s", fstate, got)
		}

		// Starting a second snapshot invalidates the first one's cursor.
		tab := e.client("alice", "tab")
		a, err := rcSnapPage(tab, nil, 1)
		if err != nil || a.Cursor == nil {
			t.Fatalf("snapshot A: %+v, %v", a, err)
		}
		pgtest.Exec(t, db, `INSERT INTO categories VALUES ('c', 'C')`)
		e.caughtUp()
		b, err := rcSnapPage(tab, nil, 1)
		if err != nil || b.Cursor == nil {
			t.Fatalf("snapshot B: %+v, %v", b, err)
		}
		if b.Checkpoint <= a.Checkpoint {
			t.Fatalf("snapshot B checkpoint %d, not after A's %d", b.Checkpoint, a.Checkpoint)
		}
		if _, err := rcSnapPage(tab, a.Cursor, 1); !rcBadRequest(err) {
			t.Errorf("snapshot A's cursor after B started: %v, want a bad request", err)
		}
		tab.rows = map[string]json.RawMessage{}
		for _, r := range b.Records {
			tab.rows[r.TableName+"/"+r.ID] = r.Data
		}
		for p := b; p.HasMore; {
			if p, err = rcSnapPage(tab, p.Cursor, 2); err != nil {
				t.Fatalf("snapshot B: %v", err)
			}
			for _, r := range p.Records {
				tab.rows[r.TableName+"/"+r.ID] = r.Data
			}
			tab.checkpoint = p.Checkpoint
		}
		rpSameRows(t, "alice's tab after snapshot B", tab.rows, e.expected("alice"))
		rcPullAll(tab, 10)
		rpSameRows(t, "alice's tab after pulling", tab.rows, e.expected("alice"))
	})
}

// ---------------------------------------------------------------------------
// 8. SyncColumns with 60 columns

// rcWideColumns are the 68 data columns c01..c68 of the wide tables with
// their types and their values for row g.
func rcWideColumns() (defs, values []string) {
	for i := 1; i <= 68; i++ {
		name := fmt.Sprintf("c%02d", i)
		var typ, val string
		switch {
		case i <= 20:
			typ, val = "text", fmt.Sprintf("'t' || g || '_%d'", i)
		case i <= 40:
			typ, val = "integer", fmt.Sprintf("g * %d", i)
		case i <= 50:
			typ, val = "boolean", fmt.Sprintf("(g + %d) %% 2 = 0", i)
		case i <= 60:
			typ, val = "jsonb", fmt.Sprintf("jsonb_build_object('g', g, 'c', %d, 'a', jsonb_build_array(g, 'x'))", i)
		default:
			typ, val = "numeric(12,3)", fmt.Sprintf("g * %d / 7.0", i)
		}
		defs = append(defs, name+" "+typ)
		values = append(values, val)
	}
	return defs, values
}

func TestReadPathCasesWideSyncColumns(t *testing.T) {
	defs, values := rcWideColumns()
	var schema strings.Builder
	for _, table := range []string{"wide_a", "wide_b"} {
		fmt.Fprintf(&schema, "CREATE TABLE %s (id bigint PRIMARY KEY, user_id text, %s);\n", table, strings.Join(defs, ", "))
	}
	col := func(i int) string { return fmt.Sprintf("c%02d", i) }
	// wide_a: the owner and c01..c59, without the key (61 keys sent);
	// wide_b: the key, the owner and c68 down to c11 (60 keys sent).
	syncA := []string{"user_id"}
	for i := 1; i <= 59; i++ {
		syncA = append(syncA, col(i))
	}
	syncB := []string{"id", "user_id"}
	for i := 68; i >= 11; i-- {
		syncB = append(syncB, col(i))
	}
	if len(syncA) != 60 || len(syncB) != 60 {
		t.Fatalf("sync columns %d, %d", len(syncA), len(syncB))
	}
	sent := map[string][]string{"wide_a": append([]string{"id"}, syncA...), "wide_b": syncB}
	registry := func() *synchro.Registry {
		reg := synchro.NewRegistry()
		reg.Register(&synchro.TableConfig{TableName: "wide_a", OwnerColumn: "user_id", SyncColumns: syncA})
		reg.Register(&synchro.TableConfig{TableName: "wide_b", OwnerColumn: "user_id", SyncColumns: syncB})
		return reg
	}
	rcModes(t, func(t *testing.T, app bool) {
		e := rpStart(t, rpOptions{app: app, schema: schema.String(), registry: registry()})
		db := e.db.Super
		for _, table := range []string{"wide_a", "wide_b"} {
			pgtest.Exec(t, db, fmt.Sprintf(`INSERT INTO %s SELECT g, CASE WHEN g < 5 THEN 'alice' ELSE 'bob' END, %s FROM generate_series(1, 6) g`,
				table, strings.Join(values, ", ")))
		}
		e.caughtUp()
		expected := func() map[string]json.RawMessage {
			out := map[string]json.RawMessage{}
			for table, cols := range sent {
				q := make([]string, len(cols))
				for i, c := range cols {
					q[i] = "x." + c
				}
				maps.Copy(out, rcRowsOf(e, fmt.Sprintf(`SELECT '%s/' || id, (SELECT row_to_json(s)::text FROM (SELECT %s) s) FROM %s x WHERE user_id = 'alice'`,
					table, strings.Join(q, ", "), table)))
			}
			return out
		}
		checkKeys := func(what, table string, data json.RawMessage) {
			t.Helper()
			var m map[string]any
			if err := json.Unmarshal(data, &m); err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			got := slices.Sorted(maps.Keys(m))
			// The tables lack the timestamp columns: the contract makes
			// them up, and they are sent too (as null).
			want := slices.Sorted(slices.Values(slices.Concat(sent[table], []string{"updated_at", "deleted_at"})))
			if !slices.Equal(got, want) {
				t.Errorf("%s %s: %d keys %v, want %d %v", what, table, len(got), got, len(want), want)
			}
		}
		alice := e.client("alice", "phone")
		for _, p := range rcSnapshot(alice, 3) {
			for _, r := range p.Records {
				checkKeys("snapshot", r.TableName, r.Data)
			}
		}
		if len(alice.rows) != 8 {
			t.Errorf("snapshot: %d rows, want 8", len(alice.rows))
		}
		rpSameRows(t, "alice after snapshot", alice.rows, expected())

		pgtest.Exec(t, db, `UPDATE wide_a SET c05 = c05 || '!', c25 = -c25, c55 = NULL, c66 = 1234.5 WHERE id IN (1, 2);
UPDATE wide_b SET c11 = 'changed', c60 = '{"deep": {"x": [1, 2, 3]}}', c10 = 'unsynced' WHERE id = 3;
UPDATE wide_a SET c68 = 0 WHERE id = 4;
UPDATE wide_a SET user_id = 'alice' WHERE id = 5`)
		e.caughtUp()
		for _, p := range rcPullAll(alice, 2) {
			for _, r := range p.Changes {
				checkKeys("pull", r.TableName, r.Data)
			}
		}
		rpSameRows(t, "alice after pulls", alice.rows, expected())
	})
}

// ---------------------------------------------------------------------------
// 9. Snapshot ordering

func TestReadPathCasesSnapshotOrder(t *testing.T) {
	rcModes(t, func(t *testing.T, app bool) {
		e := rpStart(t, rpOptions{app: app})
		db := e.db.Super
		uuids := []string{"f0000000-0000-4000-8000-000000000000", "0a000000-0000-4000-8000-000000000000",
			"a0000000-0000-4000-8000-000000000000", "10000000-0000-4000-8000-000000000000",
			"0b000000-0000-4000-8000-000000000001", "0b000000-0000-4000-8000-000000000000"}
		pgtest.Exec(t, db, `INSERT INTO categories VALUES ('b', 'B'), ('a', 'A'), ('a2', 'A2'), ('C', 'C'), ('10', 'ten'), ('9', 'nine');
INSERT INTO lists (id, user_id, name) VALUES (100, 'alice', 'x'), (2, 'alice', 'x'), (10, 'alice', 'x'), (1, 'alice', 'x'),
 (9, 'alice', 'x'), (3, 'bob', 'x'), (1000000000000, 'alice', 'big');
INSERT INTO lists (id, user_id, name, deleted_at) VALUES (5, 'alice', 'soft', now());
INSERT INTO items (id, list_id, title) VALUES ('`+uuids[0]+`', 1, 'x'), ('`+uuids[1]+`', 2, 'x'), ('`+uuids[2]+`', 100, 'x'),
 ('`+uuids[3]+`', 3, 'bob'), ('`+uuids[4]+`', 9, 'x');
INSERT INTO items (id, list_id, title, deleted_at) VALUES ('`+uuids[5]+`', 1, 'soft', now());
INSERT INTO notes VALUES ('z', '`+uuids[0]+`', ''), ('m', '`+uuids[1]+`', ''), ('a', '`+uuids[2]+`', '');
INSERT INTO tips VALUES (3, NULL, ''), (1, 'alice', ''), (20, 'alice', ''), (7, 'bob', ''), (-4, 'alice', '')`)
		e.caughtUp()
		want := e.expected("alice")
		var order []string
		for _, table := range slices.Sorted(slices.Values(e.reg.TableNames())) {
			rows, err := db.Query(fmt.Sprintf(`SELECT x.id::text FROM %s AS x ORDER BY x.id`, table))
			if err != nil {
				t.Fatal(err)
			}
			for rows.Next() {
				var id string
				if err := rows.Scan(&id); err != nil {
					t.Fatal(err)
				}
				if _, ok := want[table+"/"+id]; ok {
					order = append(order, table+"/"+id)
				}
			}
			rows.Close()
		}
		var lists []string
		for _, k := range order {
			if id, ok := strings.CutPrefix(k, "lists/"); ok {
				lists = append(lists, id)
			}
		}
		if !slices.Equal(lists, []string{"1", "2", "9", "10", "100", "1000000000000"}) {
			t.Fatalf("expected list order %v", lists)
		}
		for _, limit := range []int{1, 2, 3, 1000} {
			alice := e.client("alice", fmt.Sprintf("dev%d", limit))
			var got []string
			for i, p := range rcSnapshot(alice, limit) {
				if len(p.Records) > limit || (p.HasMore && p.Cursor == nil) {
					t.Errorf("limit %d page %d: %d records, has_more %v, cursor %v", limit, i, len(p.Records), p.HasMore, p.Cursor)
				}
				for _, r := range p.Records {
					got = append(got, r.TableName+"/"+r.ID)
				}
			}
			if !slices.Equal(got, order) {
				t.Errorf("limit %d: snapshot order\n%v\nwant\n%v", limit, got, order)
			}
			rpSameRows(t, fmt.Sprintf("limit %d", limit), alice.rows, want)
		}
	})
}

// TestReadPathCasesSnapshotEmptyKey snapshots tables whose text keys
// include the empty string. A cursor's after_id "" means the start of a
// table, so a page that ended right after the row with the empty key named
// no position: with limit 1 the client was sent that row again and again,
// and with larger limits it came twice. Every row must come once, in order,
// and a page holds at most limit records, or two for limit 1 when it takes
// the row with the empty key.
func TestReadPathCasesSnapshotEmptyKey(t *testing.T) {
	rcModes(t, func(t *testing.T, app bool) {
		e := rpStart(t, rpOptions{app: app})
		db := e.db.Super
		pgtest.Exec(t, db, `INSERT INTO categories VALUES ('', 'empty'), ('a', 'A'), ('b', 'B');
INSERT INTO lists (id, user_id, name) VALUES (1, 'alice', 'l1');
INSERT INTO items (id, list_id, title) VALUES ('`+rcUUID(1)+`', 1, 'i1');
INSERT INTO notes VALUES ('', '`+rcUUID(1)+`', 'e'), ('n', '`+rcUUID(1)+`', 'x');
INSERT INTO tips VALUES (1, 'alice', 't')`)
		e.caughtUp()
		want := e.expected("alice")
		order := []string{"categories/", "categories/a", "categories/b", "items/" + rcUUID(1), "lists/1", "notes/", "notes/n", "tips/1"}
		for _, k := range order {
			if _, ok := want[k]; !ok {
				t.Fatalf("alice's rows %v lack %s", slices.Sorted(maps.Keys(want)), k)
			}
		}
		for _, limit := range []int{1, 2, 3, 4, 5, 6, 1000} {
			alice := e.client("alice", fmt.Sprintf("dev%d", limit))
			alice.rows = map[string]json.RawMessage{}
			var got []string
			var cur *synchro.SnapshotCursor
			for pages := 0; ; pages++ {
				if pages > 2*len(order) {
					t.Fatalf("limit %d: the snapshot does not end; records so far %v", limit, got)
				}
				p, err := rcSnapPage(alice, cur, limit)
				if err != nil {
					t.Fatalf("limit %d: %v", limit, err)
				}
				max := limit
				if limit == 1 && len(p.Records) > 0 && p.Records[0].ID == "" {
					max = 2
				}
				if len(p.Records) > max || (p.HasMore && p.Cursor == nil) {
					t.Errorf("limit %d page %d: %d records, has_more %v, cursor %v", limit, pages, len(p.Records), p.HasMore, p.Cursor)
				}
				for _, r := range p.Records {
					got = append(got, r.TableName+"/"+r.ID)
					alice.rows[r.TableName+"/"+r.ID] = r.Data
				}
				if !p.HasMore {
					break
				}
				cur = p.Cursor
			}
			if !slices.Equal(got, order) {
				t.Errorf("limit %d: snapshot records\n%v\nwant\n%v", limit, got, order)
			}
			rpSameRows(t, fmt.Sprintf("limit %d", limit), alice.rows, want)
		}
	})
}

// ---------------------------------------------------------------------------
// 10. Hooks and refusals

func TestReadPathCasesHooksAndErrors(t *testing.T) {
	rcModes(t, func(t *testing.T, app bool) {
		rec := &rcRecorder{}
		e := rpStart(t, rpOptions{app: app, config: func(c *synchro.Config) { rec.hooks(&c.Hooks) }})
		db := e.db.Super
		pgtest.Exec(t, db, `INSERT INTO lists (id, user_id, name) VALUES (1, 'alice', 'a'), (2, 'alice', 'b')`)
		e.caughtUp()
		alice := e.client("alice", "phone")
		alice.snapshot(10)

		pgtest.Exec(t, db, `UPDATE lists SET name = 'a2' WHERE id = 1; DELETE FROM lists WHERE id = 2; INSERT INTO lists (id, user_id, name) VALUES (3, 'alice', 'c')`)
		e.caughtUp()
		resp := alice.pull(100)
		if len(resp.Changes) != 2 || len(resp.Deletes) != 1 {
			t.Errorf("pull: %d changes %d deletes, want 2 and 1", len(resp.Changes), len(resp.Deletes))
		}
		if got, _ := rec.lastPull(); got != (rcHookCall{client: "phone", checkpoint: resp.Checkpoint, count: 3}) {
			t.Errorf("OnPullComplete: %+v, want checkpoint %d count 3", got, resp.Checkpoint)
		}
		resp = alice.pull(100)
		if got, _ := rec.lastPull(); got != (rcHookCall{client: "phone", checkpoint: resp.Checkpoint, count: 0}) {
			t.Errorf("OnPullComplete for an empty pull: %+v", got)
		}
		if len(rec.staleCalls()) != 0 {
			t.Errorf("OnStaleClient consulted for an active client: %v", rec.staleCalls())
		}

		// A deactivated client.
		pgtest.Exec(t, db, `UPDATE synchro.clients SET is_active = false WHERE user_id = 'alice' AND client_id = 'phone'`)
		_, pulls := rec.lastPull()
		if _, err := alice.pullErr(100); !errors.Is(err, synchro.ErrStaleClient) {
			t.Errorf("pull of a deactivated client refused by the hook: %v, want ErrStaleClient", err)
		}
		if got := rec.staleCalls(); !slices.Equal(got, []string{"phone"}) || rec.staleLastSyncZero.Load() {
			t.Errorf("OnStaleClient calls %v (zero last sync: %v)", got, rec.staleLastSyncZero.Load())
		}
		if _, n := rec.lastPull(); n != pulls {
			t.Errorf("OnPullComplete fired for a refused pull")
		}
		rec.allowStale.Store(true)
		alice.pull(100)
		var active bool
		if err := db.QueryRow(`SELECT is_active FROM synchro.clients WHERE user_id = 'alice' AND client_id = 'phone'`).Scan(&active); err != nil || !active {
			t.Errorf("a client let through by OnStaleClient is not active again: %v %v", active, err)
		}
		rec.allowStale.Store(false)
		alice.pull(100)
		if n := len(rec.staleCalls()); n != 2 {
			t.Errorf("OnStaleClient called %d times, want 2", n)
		}
		// A client that has not synced within the threshold.
		pgtest.Exec(t, db, `UPDATE synchro.clients SET last_sync_at = now() - interval '30 days' WHERE user_id = 'alice' AND client_id = 'phone'`)
		if _, err := alice.pullErr(100); !errors.Is(err, synchro.ErrStaleClient) {
			t.Errorf("pull of a client silent for 30 days: %v, want ErrStaleClient", err)
		}
		pgtest.Exec(t, db, `UPDATE synchro.clients SET last_sync_at = now() WHERE user_id = 'alice' AND client_id = 'phone'`)

		// Unregistered clients.
		v, h := e.schema()
		ctx := context.Background()
		for _, who := range []struct{ user, client string }{{"alice", "ghost"}, {"bob", "phone"}} {
			_, err := e.eng.Pull(ctx, who.user, &synchro.PullRequest{ClientID: who.client, SchemaVersion: v, SchemaHash: h})
			if !errors.Is(err, synchro.ErrClientNotRegistered) {
				t.Errorf("pull by %s/%s: %v, want ErrClientNotRegistered", who.user, who.client, err)
			}
			_, err = e.eng.Snapshot(ctx, who.user, &synchro.SnapshotRequest{ClientID: who.client, SchemaVersion: v, SchemaHash: h})
			if !errors.Is(err, synchro.ErrClientNotRegistered) {
				t.Errorf("snapshot by %s/%s: %v, want ErrClientNotRegistered", who.user, who.client, err)
			}
		}

		// Schema mismatches.
		state := rcClientState(e, "alice", "phone")
		for _, s := range []struct {
			v int64
			h string
		}{{v, h + "x"}, {v + 1, h}, {v - 1, h}, {0, ""}, {v, ""}, {0, h}} {
			_, err := e.eng.Pull(ctx, "alice", &synchro.PullRequest{ClientID: "phone", Checkpoint: alice.checkpoint, SchemaVersion: s.v, SchemaHash: s.h})
			if !errors.Is(err, synchro.ErrSchemaMismatch) {
				t.Errorf("pull with schema (%d, %q): %v, want ErrSchemaMismatch", s.v, s.h, err)
			}
			_, err = e.eng.Snapshot(ctx, "alice", &synchro.SnapshotRequest{ClientID: "phone", SchemaVersion: s.v, SchemaHash: s.h})
			if !errors.Is(err, synchro.ErrSchemaMismatch) {
				t.Errorf("snapshot with schema (%d, %q): %v, want ErrSchemaMismatch", s.v, s.h, err)
			}
		}

		// Bad requests.
		for name, req := range map[string]*synchro.PullRequest{
			"negative checkpoint":    {ClientID: "phone", Checkpoint: -1, SchemaVersion: v, SchemaHash: h},
			"min checkpoint":         {ClientID: "phone", Checkpoint: math.MinInt64, SchemaVersion: v, SchemaHash: h},
			"no client id":           {Checkpoint: 1, SchemaVersion: v, SchemaHash: h},
			"bad known bucket":       {ClientID: "phone", KnownBuckets: []string{"\xff"}, SchemaVersion: v, SchemaHash: h},
			"too many known buckets": {ClientID: "phone", KnownBuckets: make([]string, 10001), SchemaVersion: v, SchemaHash: h},
		} {
			if _, err := e.eng.Pull(ctx, "alice", req); !rcBadRequest(err) {
				t.Errorf("pull with %s: %v, want a bad request", name, err)
			}
		}
		if _, err := e.eng.Pull(ctx, "alice", nil); !rcBadRequest(err) {
			t.Errorf("nil pull request: %v, want a bad request", err)
		}
		if got := rcClientState(e, "alice", "phone"); got != state {
			t.Errorf("refused requests changed the client:\n%s\n%s", state, got)
		}
		rcPullAll(alice, 100)
		rpSameRows(t, "alice at the end", alice.rows, e.expected("alice"))
	})
}

// ---------------------------------------------------------------------------
// 11. A custom OwnershipResolver

// rcListResolver buckets lists by their owner in Go, like the default rules,
// except lists whose name starts with hide, which it puts in no bucket;
// other tables go to the JoinResolver.
type rcListResolver struct {
	jr    *synchro.JoinResolver
	hide  string
	calls atomic.Int64
}

func (r *rcListResolver) ResolveOwner(ctx context.Context, db synchro.DB, table, id string, data map[string]any) ([]string, error) {
	r.calls.Add(1)
	if table != "lists" {
		return r.jr.ResolveOwner(ctx, db, table, id, data)
	}
	owner, _ := data["user_id"].(string)
	name, _ := data["name"].(string)
	if owner == "" || (r.hide != "" && strings.HasPrefix(name, r.hide)) {
		return []string{}, nil
	}
	return []string{"user:" + owner}, nil
}

func TestReadPathCasesOwnershipResolver(t *testing.T) {
	rcModes(t, func(t *testing.T, app bool) {
		res := &rcListResolver{}
		e := rpStart(t, rpOptions{app: app, config: func(c *synchro.Config) {
			res.jr = synchro.NewJoinResolver(c.Registry)
			c.Ownership = res
		}})
		db := e.db.Super
		pgtest.Exec(t, db, `INSERT INTO categories VALUES ('work', 'Work');
INSERT INTO lists (id, user_id, name) VALUES (1, 'alice', 'a1'), (2, 'bob', 'b2'), (3, 'alice', 'hidden a3'), (4, NULL, 'nobody');
INSERT INTO items (id, list_id, title) VALUES ('`+rcUUID(1)+`', 1, 'i1'), ('`+rcUUID(2)+`', 2, 'i2'), ('`+rcUUID(3)+`', 3, 'i3');
INSERT INTO notes VALUES ('n1', '`+rcUUID(1)+`', 'x'), ('n2', '`+rcUUID(2)+`', 'y');
INSERT INTO tips VALUES (1, NULL, 'all'), (2, 'bob', 'b'), (3, 'alice', 'a')`)
		e.caughtUp()
		alice, bob := e.client("alice", "phone"), e.client("bob", "phone")
		alice.snapshot(2)
		bob.snapshot(1)
		rpSameRows(t, "alice after snapshot", alice.rows, e.expected("alice"))
		rpSameRows(t, "bob after snapshot", bob.rows, e.expected("bob"))
		if res.calls.Load() == 0 {
			t.Fatalf("the custom OwnershipResolver was never asked")
		}
		pgtest.Exec(t, db, `UPDATE lists SET user_id = 'bob' WHERE id = 1; UPDATE lists SET name = 'b2 edited' WHERE id = 2;
INSERT INTO lists (id, user_id, name) VALUES (5, 'alice', 'a5');
UPDATE items SET list_id = 5 WHERE id = '`+rcUUID(2)+`';
UPDATE lists SET user_id = 'alice' WHERE id = 4`)
		e.caughtUp()
		rcPullAll(alice, 2)
		rcPullAll(bob, 3)
		rpSameRows(t, "alice after pulls", alice.rows, e.expected("alice"))
		rpSameRows(t, "bob after pulls", bob.rows, e.expected("bob"))

		// A stricter resolver on the same database: the rows it puts in no
		// bucket are not sent, though the changelog has them in alice's.
		strict := &rcListResolver{jr: synchro.NewJoinResolver(e.reg), hide: "hidden"}
		se := rcEngine(e, app, func(c *synchro.Config) { c.Ownership = strict })
		want := e.expected("alice")
		delete(want, "lists/3")
		tab := se.client("alice", "tab")
		tab.snapshot(1)
		rpSameRows(t, "alice with the strict resolver", tab.rows, want)
		pgtest.Exec(t, db, `UPDATE lists SET name = 'hidden a5' WHERE id = 5; UPDATE lists SET name = 'shown' WHERE id = 3`)
		e.caughtUp()
		_, deleted := rcFinal(rcPullAll(tab, 1))
		rcHas(t, "deletes with the strict resolver", deleted, "lists/5")
		want = e.expected("alice")
		delete(want, "lists/5")
		rpSameRows(t, "alice with the strict resolver after pulls", tab.rows, want)
	})
}

// ---------------------------------------------------------------------------
// The changelog the pages count

// TestReadPathCasesConsumerLag reads while the consumer is held before it
// records a move: the bucket edges still put list 1 and its item in alice's
// bucket while the rows already belong to bob. The read path must go by
// the rows' current contents too (in SQL with the default resolver, in Go
// with a custom one), so alice receives deletes, never bob's rows, even
// from an engine that bypasses RLS.
func TestReadPathCasesConsumerLag(t *testing.T) {
	t.Parallel()
	for _, v := range []struct {
		name          string
		app, resolver bool
	}{{"superuser", false, false}, {"app_role", true, false}, {"superuser_resolver", false, true}, {"app_role_resolver", true, true}} {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			e := rpStart(t, rpOptions{app: v.app, config: func(c *synchro.Config) {
				if v.resolver {
					c.Ownership = &rcListResolver{jr: synchro.NewJoinResolver(c.Registry)}
				}
			}})
			db := e.db.Super
			pgtest.Exec(t, db, `INSERT INTO lists (id, user_id, name) VALUES (1, 'alice', 'ALICEONLY'), (2, 'alice', 'ALICEONLY');
INSERT INTO items (id, list_id, title) VALUES ('`+rcUUID(1)+`', 1, 'ALICEONLY'), ('`+rcUUID(2)+`', 2, 'ALICEONLY')`)
			e.caughtUp()
			alice, bob := e.client("alice", "phone"), e.client("bob", "phone")
			alice.snapshot(10)
			bob.snapshot(10)
			pgtest.Exec(t, db, `UPDATE lists SET name = 'ALICEONLY renamed' WHERE id = 1; UPDATE items SET title = 'ALICEONLY renamed'`)
			e.caughtUp()

			hold, err := db.BeginTx(context.Background(), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = hold.Rollback() }()
			if _, err := hold.Exec(`LOCK TABLE synchro.changelog IN SHARE ROW EXCLUSIVE MODE`); err != nil {
				t.Fatal(err)
			}
			pgtest.Exec(t, db, `UPDATE lists SET user_id = 'bob', name = 'BOBONLY' WHERE id = 1; UPDATE items SET title = 'BOBONLY' WHERE list_id = 1`)
			pgtest.WaitFor(t, "the consumer to wait for the changelog", rpTimeout, func() (bool, string) {
				var waiting bool
				err := db.QueryRow(`SELECT EXISTS (SELECT 1 FROM pg_locks WHERE relation = 'synchro.changelog'::regclass AND NOT granted)`).Scan(&waiting)
				return err == nil && waiting, fmt.Sprint(err)
			})

			pages := rcPullAll(alice, 1)
			for _, p := range pages {
				rcNoLeak(t, "alice's pull during the lag", "BOBONLY", p)
			}
			_, deleted := rcFinal(pages)
			rcHas(t, "alice's deletes during the lag", deleted, "lists/1", "items/"+rcUUID(1))
			late := e.client("alice", "late")
			for _, p := range rcSnapshot(late, 1) {
				rcNoLeak(t, "alice's snapshot during the lag", "BOBONLY", p)
			}
			if _, ok := late.rows["lists/1"]; ok {
				t.Errorf("alice's snapshot during the lag has list 1")
			}
			if err := hold.Commit(); err != nil {
				t.Fatal(err)
			}
			e.caughtUp()
			rcPullAll(alice, 1)
			rcPullAll(bob, 1)
			rcPullAll(late, 1)
			rpSameRows(t, "alice after the lag", alice.rows, e.expected("alice"))
			rpSameRows(t, "alice's late client after the lag", late.rows, e.expected("alice"))
			rpSameRows(t, "bob after the lag", bob.rows, e.expected("bob"))
		})
	}
}
