package synchrohttp_test

// Tests of the health endpoints against a real PostgreSQL, with the engine
// connected as the harness's ordinary role: no consumer, one streaming with
// a standby beside it, a failed one, one stopped while WAL moves. The
// bodies are decoded strictly into the fields the package documents.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/synchrosync/synchro"
	"github.com/synchrosync/synchro/internal/pgtest"
	"github.com/synchrosync/synchro/synchrohttp"
	"github.com/synchrosync/synchro/wal"
)

// healthTimeout bounds every wait of these tests.
const healthTimeout = 30 * time.Second

// The documented bodies (see "Health" in doc.go).
type (
	liveJSON struct {
		Live      bool          `json:"live"`
		CheckedAt time.Time     `json:"checked_at"`
		Consumer  *consumerJSON `json:"consumer"`
	}
	readyJSON struct {
		Ready        bool          `json:"ready"`
		Reason       string        `json:"reason"`
		Message      string        `json:"message"`
		CheckedAt    time.Time     `json:"checked_at"`
		Capture      *captureJSON  `json:"capture"`
		CaptureError string        `json:"capture_error"`
		Consumer     *consumerJSON `json:"consumer"`
	}
	captureJSON struct {
		Ready               bool       `json:"ready"`
		Reason              string     `json:"reason"`
		Message             string     `json:"message"`
		ServerLSN           string     `json:"server_lsn"`
		ServerTime          time.Time  `json:"server_time"`
		ChangelogLastAt     *time.Time `json:"changelog_last_at"`
		ChangelogAgeSeconds *float64   `json:"changelog_age_seconds"`
		Slots               []slotJSON `json:"slots"`
	}
	slotJSON struct {
		Name          string     `json:"name"`
		Ready         bool       `json:"ready"`
		Reason        string     `json:"reason"`
		Message       string     `json:"message"`
		Exists        bool       `json:"exists"`
		Active        bool       `json:"active"`
		ActivePID     int        `json:"active_pid"`
		ConfirmedLSN  string     `json:"confirmed_lsn"`
		RestartLSN    string     `json:"restart_lsn"`
		WALStatus     string     `json:"wal_status"`
		RetainedBytes int64      `json:"retained_bytes"`
		LagBytes      int64      `json:"lag_bytes"`
		LagSeconds    float64    `json:"lag_seconds"`
		RecordedLSN   string     `json:"recorded_lsn"`
		RecordedAt    *time.Time `json:"recorded_at"`
	}
	consumerJSON struct {
		State         string     `json:"state"`
		Since         time.Time  `json:"since"`
		Slot          string     `json:"slot"`
		Attempts      int        `json:"attempts"`
		Failures      *int       `json:"failures"`
		AppliedLSN    string     `json:"applied_lsn"`
		ConfirmedLSN  string     `json:"confirmed_lsn"`
		ServerLSN     string     `json:"server_lsn"`
		LagBytes      int64      `json:"lag_bytes"`
		LagSeconds    float64    `json:"lag_seconds"`
		LastCommitAt  *time.Time `json:"last_commit_at"`
		LastAppliedAt *time.Time `json:"last_applied_at"`
		LastError     string     `json:"last_error"`
		LastErrorAt   *time.Time `json:"last_error_at"`
	}
)

// healthEnv is an env whose engine connects as the ordinary role, with the
// configuration of its consumers.
type healthEnv struct {
	*env
	slot string
	cfg  wal.ConsumerConfig
}

func newHealthEnv(t *testing.T) *healthEnv {
	t.Helper()
	e := newEnv(t, func(cfg *synchro.Config, db *pgtest.Database) { cfg.DB = db.App })
	slot := "s_" + strings.ReplaceAll(e.db.Name, "-", "_")
	return &healthEnv{env: e, slot: slot, cfg: wal.ConsumerConfig{
		ConnString: e.db.DSN, SlotName: slot, PublicationName: "pub", Registry: e.engine.Registry(),
		ChangelogDB: e.db.Super, StandbyTimeout: 200 * time.Millisecond, Logger: slog.New(slog.DiscardHandler),
	}}
}

// consumer is a consumer started by start.
type consumer struct {
	c      *wal.Consumer
	cancel context.CancelFunc
	done   chan error
}

// start starts a consumer with cfg; it is stopped when t ends.
func (e *healthEnv) start(t *testing.T, cfg wal.ConsumerConfig) *consumer {
	t.Helper()
	c, err := wal.NewConsumer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &consumer{c: c, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- c.Start(ctx) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}

// stop cancels the consumer and returns what Start returned.
func (r *consumer) stop(t *testing.T) error {
	t.Helper()
	r.cancel()
	select {
	case err := <-r.done:
		r.done <- err
		return err
	case <-time.After(healthTimeout):
		t.Fatal("the consumer did not stop")
		return nil
	}
}

// waitState waits until the consumer is in state.
func (r *consumer) waitState(t *testing.T, state wal.ConsumerState) {
	t.Helper()
	pgtest.WaitFor(t, "state "+string(state), healthTimeout, func() (bool, string) {
		s := r.c.Status()
		return s.State == state, fmt.Sprintf("%+v", s)
	})
}

// health builds a Health handler on e's engine for e's slot.
func (e *healthEnv) health(t *testing.T, c *consumer, logger *slog.Logger) *synchrohttp.Health {
	t.Helper()
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	cfg := synchrohttp.HealthConfig{Engine: e.engine, Capture: synchro.CaptureOptions{Slot: e.slot}, Logger: logger}
	if c != nil {
		cfg.Consumer = c.c
	}
	h, err := synchrohttp.NewHealth(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// ready asks h's readiness endpoint; it returns the status and the body.
func ready(t *testing.T, h http.Handler) (int, readyJSON, []byte) {
	t.Helper()
	rec := serve(t, h, request{method: http.MethodGet, path: "/readyz", ctype: "-"})
	checkHeaders(t, rec)
	var body readyJSON
	strictDecode(t, rec.Body.Bytes(), &body)
	if (rec.Code == http.StatusOK) != body.Ready || (rec.Code != http.StatusOK && rec.Code != http.StatusServiceUnavailable) {
		t.Fatalf("status %d with ready %v: %s", rec.Code, body.Ready, rec.Body)
	}
	if body.CheckedAt.IsZero() || (body.Ready != (body.Reason == "")) || (body.Ready != (body.Message == "")) {
		t.Errorf("body %s: want checked_at, and a reason and message exactly when not ready", rec.Body)
	}
	return rec.Code, body, rec.Body.Bytes()
}

// waitReady asks h's readiness endpoint until want holds.
func waitReady(t *testing.T, h http.Handler, what string, want func(int, readyJSON) bool) (readyJSON, []byte) {
	t.Helper()
	var (
		body readyJSON
		raw  []byte
	)
	pgtest.WaitFor(t, what, healthTimeout, func() (bool, string) {
		var code int
		code, body, raw = ready(t, h)
		return want(code, body), string(raw)
	})
	return body, raw
}

// logJSON logs a body, indented (the answers quoted in the docs come from
// here: go test -v -run TestHealth ./synchrohttp/).
func logJSON(t *testing.T, what string, raw []byte) {
	t.Helper()
	var b bytes.Buffer
	if err := json.Indent(&b, raw, "", "  "); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s:\n%s", what, b.String())
}

// Without a consumer, after changes to a registered table: readiness 503
// with reason no_slot, liveness 200. The other methods and paths are
// refused.
func TestHealthNoConsumer(t *testing.T) {
	t.Parallel()
	e := newHealthEnv(t)
	pgtest.Exec(t, e.db.Super, `INSERT INTO notes (id, user_id) SELECT 'n' || g, 'alice' FROM generate_series(1, 10) g`)
	h := e.health(t, nil, nil)

	code, body, raw := ready(t, h)
	logJSON(t, "GET /readyz without a consumer", raw)
	if code != http.StatusServiceUnavailable || body.Reason != synchro.CaptureReasonNoSlot || body.Consumer != nil ||
		body.Capture == nil || body.Capture.Reason != synchro.CaptureReasonNoSlot || len(body.Capture.Slots) != 1 ||
		body.Capture.Slots[0].Exists || body.Capture.Slots[0].Name != e.slot || body.Capture.ServerLSN == "" {
		t.Errorf("readiness without a consumer: %d %s", code, raw)
	}

	rec := serve(t, h, request{method: http.MethodGet, path: "/healthz", ctype: "-"})
	live := wantOK[liveJSON](t, rec)
	if !live.Live || live.Consumer != nil || live.CheckedAt.IsZero() {
		t.Errorf("liveness without a consumer: %s", rec.Body)
	}

	rec = serve(t, h, request{method: http.MethodHead, path: "/readyz", ctype: "-"})
	if rec.Code != http.StatusServiceUnavailable {
		t.Errorf("HEAD /readyz: %d, want 503", rec.Code)
	}
	rec = serve(t, h, request{method: http.MethodPost, path: "/readyz"})
	wantError(t, rec, http.StatusMethodNotAllowed, "method_not_allowed")
	if allow := rec.Header().Get("Allow"); allow != "GET, HEAD" {
		t.Errorf("Allow %q", allow)
	}
	wantError(t, serve(t, h, request{method: http.MethodGet, path: "/health", ctype: "-"}), http.StatusNotFound, "not_found")
	// The Serve methods answer on any path.
	if rec := serve(t, http.HandlerFunc(h.ServeLive), request{method: http.MethodGet, path: "/live", ctype: "-"}); rec.Code != http.StatusOK {
		t.Errorf("ServeLive: %d", rec.Code)
	}
}

// A streaming consumer makes every instance ready; a standby consumer in
// this process is reported, and its process is ready too.
func TestHealthStreamingAndStandby(t *testing.T) {
	t.Parallel()
	e := newHealthEnv(t)
	holder := e.start(t, e.cfg)
	holder.waitState(t, wal.ConsumerStreaming)
	standby := e.start(t, e.cfg)
	standby.waitState(t, wal.ConsumerStandby)
	pgtest.Exec(t, e.db.Super, `INSERT INTO notes (id, user_id) SELECT 'n' || g, 'alice' FROM generate_series(1, 10) g`)

	// Ready, and the inserted rows applied (the changelog may have been
	// written by the slot's backfill before them).
	body, raw := waitReady(t, e.health(t, holder, nil), "the holder's process to be ready", func(code int, b readyJSON) bool {
		return code == http.StatusOK && b.Capture.ChangelogLastAt != nil && b.Consumer != nil && b.Consumer.LastAppliedAt != nil
	})
	if body.Consumer == nil || body.Consumer.State != "streaming" || body.Consumer.LastAppliedAt == nil || body.Consumer.Slot != e.slot {
		t.Errorf("the holder's process: %s", raw)
	}

	h := e.health(t, standby, nil)
	body, raw = waitReady(t, h, "the standby's process to be ready", func(code int, b readyJSON) bool { return code == http.StatusOK })
	logJSON(t, "GET /readyz of the standby's process", raw)
	s := body.Capture.Slots
	if body.Consumer.State != "standby" || body.Consumer.LagBytes != -1 || body.Consumer.Attempts < 1 ||
		body.Consumer.Failures == nil || *body.Consumer.Failures != 0 || // a standby's attempts are no failures
		len(s) != 1 || !s[0].Active || s[0].ActivePID == 0 || s[0].RecordedLSN == "" || s[0].ConfirmedLSN == "" {
		t.Errorf("the standby's process: %s", raw)
	}
	rec := serve(t, h, request{method: http.MethodGet, path: "/healthz", ctype: "-"})
	if live := wantOK[liveJSON](t, rec); live.Consumer == nil || live.Consumer.State != "standby" {
		t.Errorf("liveness of the standby's process: %s", rec.Body)
	}
}

// A consumer whose Start failed makes its process not ready, with its
// error, and stays live.
func TestHealthFailedConsumer(t *testing.T) {
	t.Parallel()
	e := newHealthEnv(t)
	reg := synchro.NewRegistry()
	reg.Register(&synchro.TableConfig{TableName: "notes", OwnerColumn: "user_id"})
	reg.Register(&synchro.TableConfig{TableName: "missing_table", OwnerColumn: "user_id"})
	cfg := e.cfg
	cfg.Registry = reg
	c := e.start(t, cfg)
	c.waitState(t, wal.ConsumerFailed)
	h := e.health(t, c, nil)

	code, body, raw := ready(t, h)
	logJSON(t, "GET /readyz of a failed consumer's process", raw)
	if code != http.StatusServiceUnavailable || body.Reason != synchrohttp.HealthReasonConsumerFailed ||
		!strings.Contains(body.Message, "missing_table") || body.Consumer == nil || body.Consumer.State != "failed" ||
		!strings.Contains(body.Consumer.LastError, "missing_table") || body.Consumer.LastErrorAt == nil ||
		body.Capture == nil || body.Capture.Ready {
		t.Errorf("readiness of a failed consumer: %d %s", code, raw)
	}
	if rec := serve(t, h, request{method: http.MethodGet, path: "/healthz", ctype: "-"}); rec.Code != http.StatusOK {
		t.Errorf("liveness of a failed consumer: %d %s", rec.Code, rec.Body)
	}
}

// A consumer stopped while WAL keeps moving: not ready within a bound, in
// its own process (consumer_stopped) and in any other (slot_inactive). The
// change is logged once, and so is the return.
func TestHealthStoppedConsumer(t *testing.T) {
	t.Parallel()
	e := newHealthEnv(t)
	c := e.start(t, e.cfg)
	c.waitState(t, wal.ConsumerStreaming)
	logs := &logBuffer{}
	other := e.health(t, nil, slog.New(slog.NewJSONHandler(logs, nil)))
	own := e.health(t, c, nil)
	waitReady(t, other, "ready", func(code int, b readyJSON) bool { return code == http.StatusOK })
	waitReady(t, own, "ready", func(code int, b readyJSON) bool { return code == http.StatusOK })

	if err := c.stop(t); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	pgtest.Exec(t, e.db.Super, `INSERT INTO notes (id, user_id) SELECT 'm' || g, 'bob' FROM generate_series(1, 10) g`)
	body, raw := waitReady(t, other, "another process to be not ready", func(code int, b readyJSON) bool {
		return code == http.StatusServiceUnavailable
	})
	t.Logf("not ready %v after the consumer stopped", time.Since(stopped).Round(time.Millisecond))
	if body.Reason != synchro.CaptureReasonSlotInactive || body.Capture.Slots[0].Active {
		t.Errorf("another process: %s", raw)
	}
	code, body, raw := ready(t, own)
	if code != http.StatusServiceUnavailable || body.Reason != synchrohttp.HealthReasonConsumerStopped ||
		body.Consumer.State != "stopped" || body.Capture.Reason != synchro.CaptureReasonSlotInactive {
		t.Errorf("the stopped consumer's process: %d %s", code, raw)
	}
	ready(t, other)

	// Back: another consumer streams.
	e.start(t, e.cfg)
	waitReady(t, other, "ready again", func(code int, b readyJSON) bool { return code == http.StatusOK })
	var notReady, readyAgain int
	for _, m := range logs.entries(t) {
		switch m["msg"] {
		case "synchrohttp: not ready":
			notReady++
			if m["reason"] != synchro.CaptureReasonSlotInactive {
				t.Errorf("logged %v", m)
			}
		case "synchrohttp: ready again":
			readyAgain++
		}
	}
	if notReady != 1 || readyAgain != 1 {
		t.Errorf("logged %d times not ready and %d times ready again, want once each", notReady, readyAgain)
	}
}

// A capture status that cannot be read is 503 capture_unknown.
func TestHealthCaptureUnknown(t *testing.T) {
	t.Parallel()
	e := newHealthEnv(t)
	h := e.health(t, nil, slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r := httptest.NewRequestWithContext(ctx, http.MethodGet, "/readyz", nil)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	var body readyJSON
	strictDecode(t, rec.Body.Bytes(), &body)
	if rec.Code != http.StatusServiceUnavailable || body.Reason != synchrohttp.HealthReasonCaptureUnknown || body.CaptureError == "" || body.Capture != nil {
		t.Errorf("with the status unreadable: %d %s", rec.Code, rec.Body)
	}
}

func TestNewHealthRefusesInvalidConfigs(t *testing.T) {
	t.Parallel()
	if _, err := synchrohttp.NewHealth(synchrohttp.HealthConfig{}); err == nil || !strings.Contains(err.Error(), "Engine") {
		t.Errorf("without an engine: %v", err)
	}
	e := newHealthEnv(t)
	if _, err := synchrohttp.NewHealth(synchrohttp.HealthConfig{Engine: e.engine, Timeout: -time.Second}); err == nil || !strings.Contains(err.Error(), "Timeout") {
		t.Errorf("with a negative timeout: %v", err)
	}
}
