package synchro

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/synchrosync/synchro/internal/pgtest"
)

// This file tests push's lock order (see Engine.Push): pushes that name the
// same rows in opposite orders never deadlock. Helpers carry the prefix
// "lo".

// loAppName is the application_name of the engine's own pool in these
// tests, so that its backends can be told apart.
const loAppName = "synchro_lockorder_test"

// loEnv is a push test environment whose engine has a pool of its own:
// PostgreSQL counts a deadlock in the statistics of the backend that
// detected it, which reports them at the latest when it exits, so the
// deadlocks of the pushes can be read once that pool is closed.
type loEnv struct {
	*ptEnv
	pool *sql.DB
}

// loNewEnv makes a database holding ptSchema and then schema (may be
// empty), and an engine with reg on a pool of its own, as the superuser
// (app false) or as the role subject to row-level security (app true); mod,
// when non-nil, adjusts the engine's config first.
func loNewEnv(t *testing.T, schema string, reg *Registry, app bool, mod func(*Config)) *loEnv {
	t.Helper()
	db := ptSetup(t)
	if schema != "" {
		pgtest.Exec(t, db.Super, schema)
	}
	dsn := db.DSN
	if app {
		dsn = db.AppDSN
	}
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("application_name", loAppName)
	u.RawQuery = q.Encode()
	pool, err := sql.Open("pgx", u.String())
	if err != nil {
		t.Fatal(err)
	}
	pool.SetMaxOpenConns(4)
	t.Cleanup(func() { _ = pool.Close() })
	return &loEnv{ptEnv: ptEngine(t, db, pool, reg, mod), pool: pool}
}

// deadlocks returns pg_stat_database.deadlocks of the test's database.
func (e *loEnv) deadlocks() int64 {
	e.t.Helper()
	var n int64
	pgtest.QueryRow(e.t, e.db.Super, `SELECT coalesce((SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()), 0)`).Scan(&n)
	return n
}

// closeAndCountDeadlocks closes the engine's pool, waits (with a deadline)
// until its backends are gone, having reported their statistics as they
// exited, and returns the deadlocks then counted in the database.
func (e *loEnv) closeAndCountDeadlocks() int64 {
	e.t.Helper()
	if err := e.pool.Close(); err != nil {
		e.t.Fatal(err)
	}
	pgtest.WaitFor(e.t, "the backends of the engine's closed pool to exit", time.Minute, func() (bool, string) {
		n := pgtest.Count(e.t, e.db.Super, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND application_name = $1`, loAppName)
		return n == 0, fmt.Sprintf("%d backends left", n)
	})
	return e.deadlocks()
}

// loPushBoth pushes a and b from two clients of alice at the same moment
// and returns both responses.
func (e *loEnv) loPushBoth(round int, a, b []PushRecord) [2]*PushResponse {
	e.t.Helper()
	type result struct {
		i    int
		resp *PushResponse
		err  error
	}
	start := make(chan struct{})
	out := make(chan result, 2)
	for i, recs := range [][]PushRecord{a, b} {
		go func() {
			<-start
			resp, err := e.pushErr("alice", fmt.Sprintf("d%d", i+1), recs...)
			out <- result{i, resp, err}
		}()
	}
	close(start)
	var resps [2]*PushResponse
	timeout := time.After(2 * time.Minute)
	for range 2 {
		select {
		case r := <-out:
			if r.err != nil {
				e.t.Fatalf("round %d: push of device %d: %v", round, r.i+1, r.err)
			}
			resps[r.i] = r.resp
		case <-timeout:
			e.t.Fatalf("round %d: the pushes did not finish within 2 minutes", round)
		}
	}
	return resps
}

// loRounds is how many times each case pushes its two batches at once.
const loRounds = 30

// loCheck checks the outcome of one pushed batch: every record applied,
// except updates, which may also lose to the other device's write
// (conflict/server_won_conflict), and deletes, which may find the row
// deleted by the other device (applied/already_deleted, or
// rejected_terminal/record_not_found for a hard delete). It returns how many records came back
// rejected_retryable.
func loCheck(t *testing.T, what string, recs []PushRecord, resp *PushResponse) int {
	t.Helper()
	results := slices.Concat(resp.Accepted, resp.Rejected)
	if len(results) != len(recs) {
		t.Fatalf("%s: %d results for %d records: %+v", what, len(results), len(recs), resp)
	}
	retryable := 0
	for _, rec := range recs {
		res := ptFind(t, resp, rec.ID)
		switch {
		case res.Status == PushStatusApplied && res.ReasonCode == "":
		case rec.Operation == "update" && res.Status == PushStatusConflict && res.ReasonCode == reasonServerWon:
		// A row both devices delete: the second finds it soft-deleted,
		// or gone.
		case rec.Operation == "delete" && res.Status == PushStatusApplied && res.ReasonCode == reasonAlreadyDeleted:
		case rec.Operation == "delete" && res.Status == PushStatusRejectedTerminal && res.ReasonCode == reasonRecordNotFound:
		default:
			if res.Status == PushStatusRejectedRetryable {
				retryable++
			}
			t.Errorf("%s: %s %s %s: %s/%s (%s)", what, rec.Operation, rec.TableName, rec.ID, res.Status, res.ReasonCode, res.Message)
		}
	}
	return retryable
}

// loRun pushes the batches of round for both devices, loRounds times, and
// checks that every record is applied or a conflict and that PostgreSQL
// detected no deadlock.
func loRun(t *testing.T, e *loEnv, batches func(round int) (a, b []PushRecord)) {
	t.Helper()
	e.register("alice", "d1")
	e.register("alice", "d2")
	before := e.deadlocks()
	retryable := 0
	for round := range loRounds {
		a, b := batches(round)
		resps := e.loPushBoth(round, a, b)
		retryable += loCheck(t, fmt.Sprintf("round %d, device 1", round), a, resps[0])
		retryable += loCheck(t, fmt.Sprintf("round %d, device 2", round), b, resps[1])
	}
	after := e.closeAndCountDeadlocks()
	if retryable > 0 || after != before {
		t.Errorf("%d rounds: %d records rejected_retryable, %d deadlocks detected by PostgreSQL", loRounds, retryable, after-before)
	}
}

// loAt is a client time later than any server write of round (so that
// last-write-wins lets the update through), and later for later rounds.
func loAt(round int) time.Time {
	return time.Now().Add(time.Hour + time.Duration(round)*time.Second)
}

// TestPushLockOrderOppositeBatches has two devices of one user push
// batches naming the same rows in opposite orders, at the same moment,
// many times: lists and their items, with creates of items mixed in, and
// a third table. No push may wait for the other in a cycle: no deadlock,
// no retryable record.
func TestPushLockOrderOppositeBatches(t *testing.T) {
	t.Parallel()
	type rows struct{ list, list2, item, note string }
	cases := []struct {
		name    string
		batches func(r rows, round int) (a, b []PushRecord)
	}{
		{"list and item", func(r rows, round int) (a, b []PushRecord) {
			at := loAt(round)
			a = []PushRecord{
				ptUpdate("lists", r.list, fmt.Sprintf(`{"name":"d1-%d"}`, round), at),
				ptUpdate("items", r.item, fmt.Sprintf(`{"title":"d1-%d"}`, round), at),
			}
			b = []PushRecord{
				ptUpdate("items", r.item, fmt.Sprintf(`{"title":"d2-%d"}`, round), at),
				ptUpdate("lists", r.list, fmt.Sprintf(`{"name":"d2-%d"}`, round), at),
			}
			return a, b
		}},
		{"creates of items mixed in", func(r rows, round int) (a, b []PushRecord) {
			at := loAt(round)
			a = []PushRecord{
				ptUpdate("lists", r.list, fmt.Sprintf(`{"name":"d1-%d"}`, round), at),
				ptCreate("items", ptID(), `{"list_id":"`+r.list+`","title":"new d1"}`),
				ptUpdate("items", r.item, fmt.Sprintf(`{"title":"d1-%d"}`, round), at),
			}
			b = []PushRecord{
				ptUpdate("items", r.item, fmt.Sprintf(`{"title":"d2-%d"}`, round), at),
				ptCreate("items", ptID(), `{"list_id":"`+r.list+`","title":"new d2"}`),
				ptUpdate("lists", r.list, fmt.Sprintf(`{"name":"d2-%d"}`, round), at),
			}
			return a, b
		}},
		{"create under a list the other device updates", func(r rows, round int) (a, b []PushRecord) {
			// Device 2 names the list only as the parent of its create:
			// the insert's foreign key check locks it.
			at := loAt(round)
			a = []PushRecord{
				ptUpdate("lists", r.list2, fmt.Sprintf(`{"name":"d1-%d"}`, round), at),
				ptUpdate("items", r.item, fmt.Sprintf(`{"title":"d1-%d"}`, round), at),
			}
			b = []PushRecord{
				ptUpdate("items", r.item, fmt.Sprintf(`{"title":"d2-%d"}`, round), at),
				ptCreate("items", ptID(), `{"list_id":"`+r.list2+`","title":"new d2"}`),
			}
			return a, b
		}},
		{"third table", func(r rows, round int) (a, b []PushRecord) {
			at := loAt(round)
			a = []PushRecord{
				ptUpdate("lists", r.list, fmt.Sprintf(`{"name":"d1-%d"}`, round), at),
				ptUpdate("items", r.item, fmt.Sprintf(`{"title":"d1-%d"}`, round), at),
				ptUpdate("notes", r.note, fmt.Sprintf(`{"body":"d1-%d"}`, round), at),
			}
			b = []PushRecord{
				ptUpdate("notes", r.note, fmt.Sprintf(`{"body":"d2-%d"}`, round), at),
				ptUpdate("items", r.item, fmt.Sprintf(`{"title":"d2-%d"}`, round), at),
				ptUpdate("lists", r.list, fmt.Sprintf(`{"name":"d2-%d"}`, round), at),
			}
			return a, b
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := loNewEnv(t, "", ptRegistry(t), false, nil)
			e.register("alice", "setup")
			r := rows{list: ptID(), list2: ptID(), item: ptID(), note: "7"}
			resp := e.push("alice", "setup",
				ptCreate("lists", r.list, `{"name":"L"}`),
				ptCreate("lists", r.list2, `{"name":"L2"}`),
				ptCreate("items", r.item, `{"list_id":"`+r.list+`","title":"I"}`),
				ptCreate("notes", r.note, `{"body":"N"}`))
			if len(resp.Rejected) > 0 {
				t.Fatalf("setup: %+v", resp.Rejected)
			}
			loRun(t, e, func(round int) (a, b []PushRecord) { return tc.batches(r, round) })
		})
	}
}

// TestPushLockOrderDeletes is TestPushLockOrderOppositeBatches with
// deletes: soft deletes (lists and items, which have deleted_at), hard
// deletes (notes) and both, of rows both devices delete, in opposite
// orders and mixed with updates. Each round deletes rows of its own.
func TestPushLockOrderDeletes(t *testing.T) {
	t.Parallel()
	// rows are the rows of one round: list (with item under it) and note
	// are deleted; keep and keepNote, made once, are updated.
	type rows struct{ list, item, note, note2, keep, keepNote string }
	cases := []struct {
		name    string
		batches func(r rows, round int) (a, b []PushRecord)
	}{
		{"soft deletes", func(r rows, round int) (a, b []PushRecord) {
			at := loAt(round)
			a = []PushRecord{
				ptDelete("items", r.item),
				ptUpdate("lists", r.keep, fmt.Sprintf(`{"name":"d1-%d"}`, round), at),
				ptDelete("lists", r.list),
			}
			b = []PushRecord{
				ptDelete("lists", r.list),
				ptUpdate("lists", r.keep, fmt.Sprintf(`{"name":"d2-%d"}`, round), at),
				ptDelete("items", r.item),
			}
			return a, b
		}},
		{"hard deletes", func(r rows, round int) (a, b []PushRecord) {
			at := loAt(round)
			a = []PushRecord{
				ptDelete("notes", r.note),
				ptUpdate("notes", r.keepNote, fmt.Sprintf(`{"body":"d1-%d"}`, round), at),
				ptDelete("notes", r.note2),
			}
			b = []PushRecord{
				ptDelete("notes", r.note2),
				ptUpdate("notes", r.keepNote, fmt.Sprintf(`{"body":"d2-%d"}`, round), at),
				ptDelete("notes", r.note),
			}
			return a, b
		}},
		{"soft and hard deletes", func(r rows, round int) (a, b []PushRecord) {
			at := loAt(round)
			a = []PushRecord{
				ptDelete("lists", r.list),
				ptDelete("notes", r.note),
				ptUpdate("lists", r.keep, fmt.Sprintf(`{"name":"d1-%d"}`, round), at),
				ptDelete("items", r.item),
			}
			b = []PushRecord{
				ptDelete("items", r.item),
				ptUpdate("lists", r.keep, fmt.Sprintf(`{"name":"d2-%d"}`, round), at),
				ptDelete("notes", r.note),
				ptDelete("lists", r.list),
			}
			return a, b
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := loNewEnv(t, "", ptRegistry(t), false, nil)
			e.register("alice", "setup")
			keep, keepNote := ptID(), "1"
			if resp := e.push("alice", "setup",
				ptCreate("lists", keep, `{"name":"K"}`),
				ptCreate("notes", keepNote, `{"body":"K"}`)); len(resp.Rejected) > 0 {
				t.Fatalf("setup: %+v", resp.Rejected)
			}
			loRun(t, e, func(round int) (a, b []PushRecord) {
				r := rows{list: ptID(), item: ptID(), note: fmt.Sprint(100 + 2*round), note2: fmt.Sprint(101 + 2*round), keep: keep, keepNote: keepNote}
				if resp := e.push("alice", "setup",
					ptCreate("lists", r.list, `{"name":"L"}`),
					ptCreate("items", r.item, `{"list_id":"`+r.list+`","title":"I"}`),
					ptCreate("notes", r.note, `{"body":"N"}`),
					ptCreate("notes", r.note2, `{"body":"N2"}`)); len(resp.Rejected) > 0 {
					t.Fatalf("round %d: setup: %+v", round, resp.Rejected)
				}
				return tc.batches(r, round)
			})
		})
	}
}

// loFKSchema has a foreign key between two tables clients push to that is
// not a parent relation of the registry.
const loFKSchema = `
CREATE TABLE projects (
	id         uuid PRIMARY KEY,
	user_id    text NOT NULL,
	name       text NOT NULL,
	updated_at timestamptz NOT NULL DEFAULT now(),
	deleted_at timestamptz
);
CREATE TABLE tasks (
	id         uuid PRIMARY KEY,
	user_id    text NOT NULL,
	project_id uuid REFERENCES projects (id),
	title      text NOT NULL,
	updated_at timestamptz NOT NULL DEFAULT now(),
	deleted_at timestamptz
);
`

// loFKRegistry is ptRegistry with the tables of loFKSchema, each owned on
// its own.
func loFKRegistry(t *testing.T) *Registry {
	reg := ptRegistry(t)
	reg.Register(&TableConfig{TableName: "projects", OwnerColumn: "user_id"})
	reg.Register(&TableConfig{TableName: "tasks", OwnerColumn: "user_id"})
	if err := reg.Validate(); err != nil {
		t.Fatal(err)
	}
	return reg
}

// TestPushLockOrderForeignKey is TestPushLockOrderOppositeBatches for a
// foreign key that is not the registry's parent key: a create referring
// to a project locks it (PostgreSQL's check of the key) while the other
// device updates the project and then the task the first one holds.
func TestPushLockOrderForeignKey(t *testing.T) {
	t.Parallel()
	e := loNewEnv(t, loFKSchema, loFKRegistry(t), false, nil)
	e.register("alice", "setup")
	project, task := ptID(), ptID()
	resp := e.push("alice", "setup",
		ptCreate("projects", project, `{"name":"P"}`),
		ptCreate("tasks", task, `{"project_id":"`+project+`","title":"T"}`))
	if len(resp.Rejected) > 0 {
		t.Fatalf("setup: %+v", resp.Rejected)
	}
	loRun(t, e, func(round int) (a, b []PushRecord) {
		at := loAt(round)
		a = []PushRecord{
			ptUpdate("projects", project, fmt.Sprintf(`{"name":"d1-%d"}`, round), at),
			ptUpdate("tasks", task, fmt.Sprintf(`{"title":"d1-%d"}`, round), at),
		}
		b = []PushRecord{
			ptUpdate("tasks", task, fmt.Sprintf(`{"title":"d2-%d"}`, round), at),
			ptCreate("tasks", ptID(), `{"project_id":"`+project+`","title":"new"}`),
		}
		return a, b
	})
}

// TestPushLockOrderUnderRLS is the first case of
// TestPushLockOrderOppositeBatches with the engine's role subject to
// row-level security.
func TestPushLockOrderUnderRLS(t *testing.T) {
	t.Parallel()
	reg := ptRegistry(t)
	e := loNewEnv(t, "", reg, true, nil)
	rlsApply(t, e.db.Super, GenerateRLSPolicies(reg))
	e.register("alice", "setup")
	list, item := ptID(), ptID()
	resp := e.push("alice", "setup",
		ptCreate("lists", list, `{"name":"L"}`),
		ptCreate("items", item, `{"list_id":"`+list+`","title":"I"}`))
	if len(resp.Rejected) > 0 {
		t.Fatalf("setup: %+v", resp.Rejected)
	}
	loRun(t, e, func(round int) (a, b []PushRecord) {
		at := loAt(round)
		a = []PushRecord{
			ptUpdate("lists", list, fmt.Sprintf(`{"name":"d1-%d"}`, round), at),
			ptCreate("items", ptID(), `{"list_id":"`+list+`","title":"new d1"}`),
			ptUpdate("items", item, fmt.Sprintf(`{"title":"d1-%d"}`, round), at),
		}
		b = []PushRecord{
			ptUpdate("items", item, fmt.Sprintf(`{"title":"d2-%d"}`, round), at),
			ptUpdate("lists", list, fmt.Sprintf(`{"name":"d2-%d"}`, round), at),
		}
		return a, b
	})
}

// TestPushLockAheadKeepsOutcomes pushes, in one batch with valid records,
// ids and parent keys that are not valid keys of their tables (text for a
// uuid or a bigint, a bigint out of range, a NUL byte, a number), and a key
// of a type the engine does not check itself (numeric) that PostgreSQL
// refuses, so that the push goes on without its lock ahead. The batch goes
// to one database, each record alone to a twin: every record must get the
// same outcome in both.
func TestPushLockAheadKeepsOutcomes(t *testing.T) {
	t.Parallel()
	list, item := ptID(), ptID()
	newItems := []string{ptID(), ptID(), ptID(), ptID()}
	at := ptFuture()
	batches := []struct {
		name string
		// abandoned: PostgreSQL refuses the lock ahead.
		abandoned bool
		recs      []PushRecord
	}{
		{"invalid keys", false, []PushRecord{
			ptUpdate("lists", list, `{"name":"L2"}`, at),
			ptUpdate("lists", "not-a-uuid", `{"name":"x"}`, at),
			ptCreate("items", newItems[0], `{"list_id":"not-a-uuid","title":"x"}`),
			ptCreate("items", newItems[1], `{"list_id":42,"title":"x"}`),
			ptCreate("items", newItems[2], `{"list_id":"`+list+`\u0000","title":"x"}`),
			ptUpdate("items", item, `{"title":"I2"}`, at),
			ptUpdate("notes", "8x", `{"body":"x"}`, at),
			ptUpdate("notes", "99999999999999999999", `{"body":"x"}`, at),
			ptUpdate("notes", "7", `{"body":"N2"}`, at),
			ptCreate("items", newItems[3], `{"list_id":"`+strings.ToUpper(list)+`","title":"upper"}`),
		}},
		{"lock ahead refused", true, []PushRecord{
			ptUpdate("lists", list, `{"name":"L3"}`, at),
			ptUpdate("measures", "abc", `{"v":"x"}`, at),
			ptUpdate("measures", "1.5", `{"v":"b"}`, at),
			ptUpdate("items", item, `{"title":"I3"}`, at),
		}},
	}
	for _, b := range batches {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			var logs loLogs
			envs := [2]*loEnv{}
			for i := range envs {
				reg := ptRegistry(t)
				reg.Register(&TableConfig{TableName: "measures", OwnerColumn: "user_id"})
				if err := reg.Validate(); err != nil {
					t.Fatal(err)
				}
				var mod func(*Config)
				if i == 0 {
					mod = func(c *Config) {
						c.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
					}
				}
				e := loNewEnv(t, `CREATE TABLE measures (id numeric PRIMARY KEY, user_id text NOT NULL, v text)`, reg, false, mod)
				e.register("alice", "c1")
				resp := e.push("alice", "c1",
					ptCreate("lists", list, `{"name":"L"}`),
					ptCreate("items", item, `{"list_id":"`+list+`","title":"I"}`),
					ptCreate("notes", "7", `{"body":"N"}`),
					ptCreate("measures", "1.5", `{"v":"a"}`))
				if len(resp.Rejected) > 0 {
					t.Fatalf("setup: %+v", resp.Rejected)
				}
				envs[i] = e
			}
			batch, single := envs[0], envs[1]
			if l := logs.String(); strings.Contains(l, loAbandoned) {
				t.Fatalf("the setup's lock ahead was abandoned:\n%s", l)
			}
			resp := batch.push("alice", "c1", b.recs...)
			if got := strings.Contains(logs.String(), loAbandoned); got != b.abandoned {
				t.Errorf("lock ahead abandoned: %v, want %v; log:\n%s", got, b.abandoned, logs.String())
			}
			for _, rec := range b.recs {
				got := ptFind(t, resp, rec.ID)
				want := single.one("alice", "c1", rec)
				if got.Status != want.Status || got.ReasonCode != want.ReasonCode || got.Message != want.Message {
					t.Errorf("%s %s %q: in the batch %s/%s (%s), alone %s/%s (%s)", rec.Operation, rec.TableName, rec.ID,
						got.Status, got.ReasonCode, got.Message, want.Status, want.ReasonCode, want.Message)
				}
			}
		})
	}
}

// loAbandoned is what the engine logs (at Debug) when a push goes on
// without its lock ahead.
const loAbandoned = "without locking its rows ahead"

// loLogs is a log destination safe for concurrent use.
type loLogs struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *loLogs) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(b)
}

func (l *loLogs) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// TestPushLockAheadSkipsHiddenRows checks that under row-level security
// the lock ahead takes no lock on a row the caller cannot see: bob's push
// of a create under alice's list does not wait for a transaction that
// holds that list, and is answered as before (parent_not_found).
func TestPushLockAheadSkipsHiddenRows(t *testing.T) {
	t.Parallel()
	reg := ptRegistry(t)
	e := loNewEnv(t, "", reg, true, nil)
	rlsApply(t, e.db.Super, GenerateRLSPolicies(reg))
	e.register("alice", "a1")
	e.register("bob", "b1")
	list := ptID()
	ptWant(t, "alice's list", e.one("alice", "a1", ptCreate("lists", list, `{"name":"L"}`)), PushStatusApplied, "")

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tx, err := e.db.Super.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback() }()
	if _, err := tx.ExecContext(ctx, `SELECT FROM lists WHERE id = $1::uuid FOR UPDATE`, list); err != nil {
		t.Fatal(err)
	}
	pushCtx, pushCancel := context.WithTimeout(ctx, 20*time.Second)
	defer pushCancel()
	bobs := ptID()
	resp, err := e.e.Push(pushCtx, "bob", &PushRequest{ClientID: "b1", SchemaVersion: e.ver, SchemaHash: e.hash, Changes: []PushRecord{
		ptCreate("lists", bobs, `{"name":"B"}`),
		ptCreate("items", ptID(), `{"list_id":"`+list+`","title":"x"}`),
	}})
	if err != nil {
		t.Fatalf("bob's push (waiting for alice's locked list?): %v", err)
	}
	ptWant(t, "bob's list", ptFind(t, resp, bobs), PushStatusApplied, "")
	for _, r := range resp.Rejected {
		ptWant(t, "bob's item under alice's list", r, PushStatusRejectedRetryable, reasonParentNotFound)
	}
}

// TestPushLockAheadLooksUpKeysUnderRLS checks that the lock ahead finds its
// rows through the primary key under row-level security, as the row lock
// of each record does (TestPushLocksKeysUnderRLS).
func TestPushLockAheadLooksUpKeysUnderRLS(t *testing.T) {
	t.Parallel()
	plan := genericPlanOfItemKeys(t, func(m *manifest) string { return m.table("items").lockAheadSQL() })
	if strings.Contains(plan, "Seq Scan on items") || !strings.Contains(plan, "items_pkey") {
		t.Errorf("the lock ahead does not look its rows up by key:\n%s", plan)
	}
}
