package synchrohttp_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/synchrosync/synchro"
	"github.com/synchrosync/synchro/internal/pgtest"
	"github.com/synchrosync/synchro/synchrohttp"
)

// Live sync over HTTP: POST /sync/pull?wait=S, as a device sends it.

// liveListen runs the engine's listener until the test ends.
func liveListen(t *testing.T, e *confEnv) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.engine.Listen(ctx, synchro.ListenConfig{Recheck: time.Minute}) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Listen returned %v", err)
		}
	})
}

// pullWait sends a pull at d's checkpoint with query (such as "wait=2")
// and returns the status, the answer and how long it took.
func (d *confDevice) pullWait(query string) (int, map[string]any, time.Duration) {
	d.t.Helper()
	start := time.Now()
	status, _, body := d.call(http.MethodPost, "/sync/pull?"+query, d.request(map[string]any{
		"checkpoint": d.checkpoint, "tables": nil, "limit": 100, "known_buckets": nil,
	}))
	return status, body, time.Since(start)
}

// A waiting pull is answered by the change that reaches it, and by the
// empty page when the wait passes; a bad wait is 400 and loses nothing.
func TestLivePull(t *testing.T) {
	t.Parallel()
	e := confStart(t, confSchema, confRegistry())
	liveListen(t, e)
	d := e.joined(t, kotlin, "alice")
	d.pullOnce()

	for _, q := range []string{"wait=", "wait=abc", "wait=-1", "wait=1e3", "wait=NaN", "wait=Inf", "wait=1.2.3",
		"wait=+2", "wait=0x10", "wait=1&wait=2", "wait=" + strings.Repeat("1", 40)} {
		status, body, _ := d.pullWait(q)
		if status != http.StatusBadRequest || body["code"] != "bad_request" {
			t.Errorf("?%s: %d %v; want 400 bad_request", q, status, body)
		}
	}

	status, body, took := d.pullWait("wait=0.3")
	if status != http.StatusOK || len(confRecords(t, body, "changes")) != 0 || confNum(t, body, "checkpoint") != d.checkpoint {
		t.Fatalf("?wait=0.3 with nothing to pull: %d %v; want the empty page", status, body)
	}
	if took < 300*time.Millisecond {
		t.Errorf("?wait=0.3 answered after %v", took)
	}

	type answer struct {
		status int
		body   map[string]any
		took   time.Duration
	}
	got := make(chan answer, 1)
	go func() {
		s, b, took := d.pullWait("wait=30")
		got <- answer{s, b, took}
	}()
	time.Sleep(300 * time.Millisecond) // the pull is waiting
	pgtest.Exec(t, e.db.Super, `INSERT INTO lists (id, user_id, name) VALUES ($1, 'alice', 'live')`, newID())
	select {
	case a := <-got:
		if a.status != http.StatusOK || len(confRecords(t, a.body, "changes")) != 1 {
			t.Fatalf("?wait=30 after a change: %d %v; want the change", a.status, a.body)
		}
		t.Logf("?wait=30 answered the change after %v (it waited 300ms before it)", a.took)
	case <-time.After(20 * time.Second):
		t.Fatal("?wait=30 was not answered within 20s of the change")
	}
}

// The handler clamps a wait to Config.MaxPullWait, and a client that goes
// away ends its wait at once.
func TestLivePullClampAndDisconnect(t *testing.T) {
	t.Parallel()
	e := confStart(t, confSchema, confRegistry())
	liveListen(t, e)
	h, err := synchrohttp.New(synchrohttp.Config{Engine: e.engine, UserID: bearerUser,
		MaxPullWait: 400 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ended := make(chan time.Time, 4)
	e.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r)
		ended <- time.Now()
	}))
	t.Cleanup(e.srv.Close)
	d := e.joined(t, swift, "alice")
	d.pullOnce()
	for len(ended) > 0 {
		<-ended
	}

	status, body, took := d.pullWait("wait=1000")
	if status != http.StatusOK || took < 400*time.Millisecond || took > 20*time.Second {
		t.Fatalf("?wait=1000 under MaxPullWait 400ms: %d %v after %v", status, body, took)
	}
	<-ended

	ctx, cancel := context.WithCancel(context.Background())
	payload, err := json.Marshal(d.request(map[string]any{"checkpoint": d.checkpoint, "limit": 100}))
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.srv.URL+"/sync/pull?wait=60", bytes.NewReader(payload))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+d.user)
	req.Header.Set("Content-Type", "application/json")
	go func() {
		time.Sleep(200 * time.Millisecond)
		cancel()
	}()
	h2, err := synchrohttp.New(synchrohttp.Config{Engine: e.engine, UserID: bearerUser, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	start := time.Now()
	h2.ServeHTTP(rec, req)
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("a pull whose client went away waited %v", took)
	}
	if rec.Code != 499 {
		t.Errorf("a pull whose client went away: %d %s; want 499 canceled", rec.Code, rec.Body)
	}
}
