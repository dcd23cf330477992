package synchro_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/synchrosync/synchro"
	"github.com/synchrosync/synchro/internal/pgtest"
)

// Tests of live sync: PullWait and Listen, with the WAL consumer running.
// Helpers carry the prefix "lv".

// lvListen runs e.Listen until the test ends and waits until it listens.
func lvListen(t *testing.T, env *rpEnv, e *synchro.Engine, recheck time.Duration) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Listen(ctx, synchro.ListenConfig{Recheck: recheck}) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Listen returned %v", err)
		}
	})
	pgtest.WaitUntil(env.t, "the listener to listen", rpTimeout, func() bool { return synchro.LiveConnected(e) })
}

// lvWait is a PullWait running in the background.
type lvWait struct {
	start time.Time
	done  chan struct{}
	resp  *synchro.PullResponse
	err   error
	took  time.Duration
}

// lvPullWait starts c's PullWait on e (the environment's engine when nil)
// for wait.
func lvPullWait(ctx context.Context, c *rpClient, e *synchro.Engine, wait time.Duration) *lvWait {
	if e == nil {
		e = c.e.eng
	}
	v, h := c.e.schema()
	req := &synchro.PullRequest{ClientID: c.id, Checkpoint: c.checkpoint, SchemaVersion: v, SchemaHash: h}
	w := &lvWait{start: time.Now(), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		w.resp, w.err = e.PullWait(ctx, c.user, req, wait)
		w.took = time.Since(w.start)
	}()
	return w
}

// result waits for w's answer, at most within.
func (w *lvWait) result(t *testing.T, within time.Duration) (*synchro.PullResponse, error) {
	t.Helper()
	select {
	case <-w.done:
		return w.resp, w.err
	case <-time.After(within):
		t.Fatalf("PullWait did not answer within %v", within)
		return nil, nil
	}
}

// answered reports whether w answered.
func (w *lvWait) answered() bool {
	select {
	case <-w.done:
		return true
	default:
		return false
	}
}

// lvWaiting waits until n PullWait calls of e wait.
func lvWaiting(env *rpEnv, e *synchro.Engine, n int) {
	env.t.Helper()
	pgtest.WaitUntil(env.t, fmt.Sprintf("%d waiting pulls", n), rpTimeout, func() bool { return synchro.LiveWaiting(e) >= n })
	time.Sleep(20 * time.Millisecond) // past the read that preceded the wait
}

// lvReady registers a device of user and brings it up to date.
func lvReady(env *rpEnv, user, id string) *rpClient {
	c := env.client(user, id)
	c.snapshot(100)
	c.pullAll(100)
	return c
}

// A change to a waiting client's bucket answers its PullWait, long before
// the re-check would have: the notification woke it.
func TestPullWaitWakesOnChange(t *testing.T) {
	t.Parallel()
	env := rpStart(t, rpOptions{})
	lvListen(t, env, env.eng, time.Minute)
	c := lvReady(env, "amy", "amy-phone")

	w := lvPullWait(context.Background(), c, nil, 30*time.Second)
	lvWaiting(env, env.eng, 1)
	committed := time.Now()
	pgtest.Exec(t, env.db.Super, `INSERT INTO lists (id, user_id, name) VALUES (1, 'amy', 'groceries')`)
	resp, err := w.result(t, 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Changes) != 1 || resp.Changes[0].ID != "1" || resp.Checkpoint <= c.checkpoint {
		t.Fatalf("PullWait answered %+v; want the new list", resp)
	}
	t.Logf("commit to answer: %v", time.Since(committed))
	if took := time.Since(committed); took > 10*time.Second {
		t.Errorf("answered %v after the commit; the notification should wake it at once", took)
	}
}

// With changes pending, or a snapshot due, PullWait answers at once.
func TestPullWaitAnswersAtOnce(t *testing.T) {
	t.Parallel()
	env := rpStart(t, rpOptions{})
	lvListen(t, env, env.eng, time.Minute)
	c := lvReady(env, "amy", "amy-phone")
	pgtest.Exec(t, env.db.Super, `INSERT INTO lists (id, user_id, name) VALUES (1, 'amy', 'groceries')`)
	env.caughtUp()
	resp, err := lvPullWait(context.Background(), c, nil, 30*time.Second).result(t, 10*time.Second)
	if err != nil || len(resp.Changes) != 1 {
		t.Fatalf("PullWait with a change pending: %+v, %v; want the change", resp, err)
	}

	fresh := env.client("amy", "amy-tablet") // registered, never snapshotted
	resp, err = lvPullWait(context.Background(), fresh, nil, 30*time.Second).result(t, 10*time.Second)
	if err != nil || !resp.SnapshotRequired || resp.SnapshotReason != synchro.SnapshotReasonInitialSyncRequired {
		t.Fatalf("PullWait of a client that must snapshot: %+v, %v; want snapshot_required at once", resp, err)
	}

	ghost := &rpClient{e: env, user: "amy", id: "nobody"}
	if _, err := lvPullWait(context.Background(), ghost, nil, 30*time.Second).result(t, 10*time.Second); !errors.Is(err, synchro.ErrClientNotRegistered) {
		t.Fatalf("PullWait of an unknown client: %v; want ErrClientNotRegistered at once", err)
	}
}

// Without a change, PullWait answers the empty page when the wait passes;
// a cancelled context ends it at once.
func TestPullWaitTimeoutAndCancel(t *testing.T) {
	t.Parallel()
	env := rpStart(t, rpOptions{})
	lvListen(t, env, env.eng, time.Minute)
	c := lvReady(env, "amy", "amy-phone")

	w := lvPullWait(context.Background(), c, nil, 400*time.Millisecond)
	resp, err := w.result(t, 10*time.Second)
	if err != nil || len(resp.Changes)+len(resp.Deletes) != 0 || resp.HasMore || resp.Checkpoint != c.checkpoint {
		t.Fatalf("PullWait with nothing to pull: %+v, %v; want the empty page", resp, err)
	}
	if w.took < 400*time.Millisecond {
		t.Errorf("answered after %v; want the 400ms wait", w.took)
	}

	ctx, cancel := context.WithCancel(context.Background())
	w = lvPullWait(ctx, c, nil, 30*time.Second)
	lvWaiting(env, env.eng, 1)
	cancel()
	if _, err := w.result(t, 5*time.Second); !errors.Is(err, context.Canceled) {
		t.Errorf("PullWait after its context was cancelled: %v; want context.Canceled", err)
	}
	pgtest.WaitUntil(env.t, "the waiter to leave", rpTimeout, func() bool { return synchro.LiveWaiting(env.eng) == 0 })
}

// A change wakes the waiting devices of the bucket it reached and no
// other: the others do not read again.
func TestPullWaitWakesOnlyItsBuckets(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	reads := map[string]int{}
	env := rpStart(t, rpOptions{config: func(c *synchro.Config) {
		c.Hooks.OnPullComplete = func(_ context.Context, clientID string, _ int64, _ int) {
			mu.Lock()
			reads[clientID]++
			mu.Unlock()
		}
	}})
	lvListen(t, env, env.eng, time.Minute)
	const users = 12
	var clients []*rpClient
	for i := range users {
		clients = append(clients, lvReady(env, fmt.Sprintf("u%02d", i), fmt.Sprintf("u%02d-phone", i)))
	}
	clients = append(clients, lvReady(env, "u00", "u00-tablet"))
	mu.Lock()
	clear(reads)
	mu.Unlock()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	waits := make([]*lvWait, len(clients))
	for i, c := range clients {
		waits[i] = lvPullWait(ctx, c, nil, 30*time.Second)
	}
	lvWaiting(env, env.eng, len(clients))
	notes := synchro.LiveNotes(env.eng)
	pgtest.Exec(t, env.db.Super, `INSERT INTO lists (id, user_id, name) VALUES (1, 'u00', 'mine')`)
	for _, i := range []int{0, users} {
		resp, err := waits[i].result(t, 20*time.Second)
		if err != nil || len(resp.Changes) != 1 {
			t.Fatalf("%s: %+v, %v; want the new list", clients[i].id, resp, err)
		}
	}
	pgtest.WaitUntil(env.t, "the notification", rpTimeout, func() bool { return synchro.LiveNotes(env.eng) > notes })
	time.Sleep(200 * time.Millisecond) // room for a wrongly woken waiter to read
	mu.Lock()
	defer mu.Unlock()
	for i, c := range clients[1:users] {
		if waits[i+1].answered() {
			t.Errorf("%s answered; its buckets did not change", c.id)
		}
		if reads[c.id] != 1 {
			t.Errorf("%s read %d times; want once, before it waited", c.id, reads[c.id])
		}
	}
}

// A client whose subscriptions gain a bucket while it waits is answered
// with the bucket's rows by the next re-check, though no change reached
// the buckets it followed.
func TestPullWaitSubscriptionGain(t *testing.T) {
	t.Parallel()
	var withBob atomic.Bool
	env := rpStart(t, rpOptions{config: func(c *synchro.Config) {
		c.Subscriptions = func(_ context.Context, _ synchro.DB, userID, _ string) ([]string, error) {
			if withBob.Load() {
				return []string{"user:" + userID, "user:bob"}, nil
			}
			return []string{"user:" + userID}, nil
		}
	}})
	pgtest.Exec(t, env.db.Super, `INSERT INTO lists (id, user_id, name) VALUES (7, 'bob', 'shared')`)
	env.caughtUp()
	lvListen(t, env, env.eng, 300*time.Millisecond)
	c := lvReady(env, "amy", "amy-phone")

	w := lvPullWait(context.Background(), c, nil, 30*time.Second)
	lvWaiting(env, env.eng, 1)
	withBob.Store(true)
	resp, err := w.result(t, 20*time.Second)
	if err != nil || len(resp.Changes) != 1 || resp.Changes[0].ID != "7" {
		t.Fatalf("PullWait after the subscription gained user:bob: %+v, %v; want bob's list", resp, err)
	}
}

// Without a listener in the process, a waiting pull polls: a change is
// still delivered, within about a second.
func TestPullWaitWithoutListener(t *testing.T) {
	t.Parallel()
	env := rpStart(t, rpOptions{})
	c := lvReady(env, "amy", "amy-phone")
	w := lvPullWait(context.Background(), c, nil, 30*time.Second)
	lvWaiting(env, env.eng, 1)
	pgtest.Exec(t, env.db.Super, `INSERT INTO lists (id, user_id, name) VALUES (1, 'amy', 'groceries')`)
	resp, err := w.result(t, 20*time.Second)
	if err != nil || len(resp.Changes) != 1 {
		t.Fatalf("PullWait without Listen: %+v, %v; want the change", resp, err)
	}
}

// Listen runs once per engine; a driver other than pgx's is refused.
func TestListenErrors(t *testing.T) {
	t.Parallel()
	env := rpStart(t, rpOptions{})
	if err := env.eng.Listen(context.Background(), synchro.ListenConfig{Recheck: -time.Second}); err == nil {
		t.Error("Listen with a negative Recheck: no error")
	}
	lvListen(t, env, env.eng, time.Minute)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := env.eng.Listen(ctx, synchro.ListenConfig{}); err == nil {
		t.Error("a second Listen on one engine: no error")
	}
}

// Every engine on the database hears the changes: a waiting pull on a
// second engine (another process, as far as PostgreSQL can tell: its own
// pool and listening session) is woken too.
func TestListenAcrossEngines(t *testing.T) {
	t.Parallel()
	env := rpStart(t, rpOptions{})
	other, err := synchro.NewEngine(synchro.Config{DB: env.db.App, Registry: env.reg})
	if err != nil {
		t.Fatal(err)
	}
	lvListen(t, env, env.eng, time.Minute)
	lvListen(t, env, other, time.Minute)
	a, b := lvReady(env, "amy", "amy-phone"), lvReady(env, "amy", "amy-laptop")
	wa, wb := lvPullWait(context.Background(), a, nil, 30*time.Second), lvPullWait(context.Background(), b, other, 30*time.Second)
	lvWaiting(env, env.eng, 1)
	lvWaiting(env, other, 1)
	pgtest.Exec(t, env.db.Super, `INSERT INTO lists (id, user_id, name) VALUES (1, 'amy', 'groceries')`)
	for _, w := range []*lvWait{wa, wb} {
		if resp, err := w.result(t, 20*time.Second); err != nil || len(resp.Changes) != 1 {
			t.Fatalf("%+v, %v; want the change", resp, err)
		}
		if w.took > 10*time.Second {
			t.Errorf("answered after %v; the notification should wake it", w.took)
		}
	}
}

// The listener survives a restart of PostgreSQL: a pull waiting across the
// restart, and one that starts waiting after it, are woken by a change
// made once the listener listens again.
func TestListenSurvivesRestart(t *testing.T) {
	srv := pgtest.NewDedicatedServer(t) // not parallel: restarts a server
	env := rpStart(t, rpOptions{db: srv.NewMigratedDatabase(t)})
	lvListen(t, env, env.eng, time.Minute)
	across, after := lvReady(env, "amy", "amy-phone"), lvReady(env, "amy", "amy-laptop")
	listens := synchro.LiveListens(env.eng)

	w1 := lvPullWait(context.Background(), across, nil, 45*time.Second)
	lvWaiting(env, env.eng, 1)
	srv.Restart(t)
	pgtest.WaitUntil(env.t, "the listener to listen again", rpTimeout, func() bool { return synchro.LiveListens(env.eng) > listens })
	pgtest.WaitFor(t, "the consumer to stream again", rpTimeout, env.streaming)
	if w1.answered() {
		t.Fatalf("the pull waiting across the restart answered before any change: %+v, %v", w1.resp, w1.err)
	}

	w2 := lvPullWait(context.Background(), after, nil, 45*time.Second)
	lvWaiting(env, env.eng, 2)
	committed := time.Now()
	pgtest.Exec(t, env.db.Super, `INSERT INTO lists (id, user_id, name) VALUES (1, 'amy', 'groceries')`)
	for _, w := range []*lvWait{w1, w2} {
		resp, err := w.result(t, 30*time.Second)
		if err != nil || len(resp.Changes) != 1 {
			t.Fatalf("PullWait after a restart: %+v, %v; want the change", resp, err)
		}
	}
	if took := time.Since(committed); took > 10*time.Second {
		t.Errorf("answered %v after the commit; the notification should wake them", took)
	}
}

// A re-read that fails for the database's sake (here a revoked grant) does
// not end the wait: the pull answers its empty page when the wait passes,
// and a new pull then reports the failure at once.
func TestPullWaitOutlastsFailedReads(t *testing.T) {
	t.Parallel()
	env := rpStart(t, rpOptions{app: true})
	lvListen(t, env, env.eng, time.Minute)
	c := lvReady(env, "amy", "amy-phone")

	w := lvPullWait(context.Background(), c, nil, 2500*time.Millisecond)
	lvWaiting(env, env.eng, 1)
	pgtest.Exec(t, env.db.Super, `REVOKE SELECT ON synchro.clients FROM `+pgtest.AppRole)
	pgtest.Exec(t, env.db.Super, `INSERT INTO lists (id, user_id, name) VALUES (1, 'amy', 'groceries')`) // wakes it
	resp, err := w.result(t, 20*time.Second)
	if err != nil || len(resp.Changes)+len(resp.Deletes) != 0 || resp.Checkpoint != c.checkpoint {
		t.Fatalf("PullWait whose re-reads fail: %+v, %v; want the empty page of its first read", resp, err)
	}
	if w.took < 2500*time.Millisecond {
		t.Errorf("answered after %v; want the whole wait", w.took)
	}
	if _, err := lvPullWait(context.Background(), c, nil, 30*time.Second).result(t, 10*time.Second); err == nil {
		t.Error("a new pull while the grant is revoked: no error; its first read must report the failure")
	}
	pgtest.Exec(t, env.db.Super, `GRANT SELECT ON synchro.clients TO `+pgtest.AppRole)
	if resp := c.pull(100); len(resp.Changes) != 1 {
		t.Errorf("after the grant came back: %+v; want the change", resp)
	}
}
