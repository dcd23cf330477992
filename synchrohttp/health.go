package synchrohttp

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/synchrosync/synchro"
	"github.com/synchrosync/synchro/wal"
)

// This file serves the health endpoints: liveness and readiness, the
// latter from Engine.CaptureStatus and the process's own consumer (see
// "Health" in the package documentation).

// DefaultHealthTimeout is the default HealthConfig.Timeout.
const DefaultHealthTimeout = 3 * time.Second

// Reasons of a readiness answer that are not those of
// synchro.CaptureStatus (the synchro.CaptureReason constants).
const (
	// HealthReasonConsumerFailed: the process's consumer
	// (HealthConfig.Consumer) failed: its Start returned an error.
	HealthReasonConsumerFailed = "consumer_failed"
	// HealthReasonConsumerStopped: the process's consumer is not running:
	// Start was not called, or returned when its context ended.
	HealthReasonConsumerStopped = "consumer_stopped"
	// HealthReasonCaptureUnknown: the capture status could not be read
	// from the database.
	HealthReasonCaptureUnknown = "capture_unknown"
)

// HealthConfig configures a Health handler.
type HealthConfig struct {
	// Engine reads the capture status (Engine.CaptureStatus) on its pool
	// and role. Required.
	Engine *synchro.Engine

	// Consumer is the process's own change-capture consumer, when it runs
	// one; nil when it does not. Its status is reported by both endpoints,
	// and readiness fails when it has failed or stopped (a standby,
	// reconnecting or starting consumer leaves the verdict to the capture
	// status).
	Consumer *wal.Consumer

	// Capture is passed to Engine.CaptureStatus: the slot to read and the
	// lag limits. The zero value uses its defaults.
	Capture synchro.CaptureOptions

	// Timeout bounds the database read of a readiness check (together with
	// the request's context); a read that does not finish in time answers
	// 503 capture_unknown. Defaults to DefaultHealthTimeout; must not be
	// negative.
	Timeout time.Duration

	// Logger receives a line when readiness changes (Warn when it fails,
	// with the reason; Info when it is back) and the failures to read the
	// capture status (Warn). Defaults to slog.Default().
	Logger *slog.Logger
}

// Health serves the liveness and readiness endpoints. Build it with
// NewHealth; it is safe for concurrent use.
type Health struct {
	engine   *synchro.Engine
	consumer *wal.Consumer
	capture  synchro.CaptureOptions
	timeout  time.Duration
	logger   *slog.Logger
	// notReady is set while the last readiness answer was not ready, to
	// log the changes only.
	notReady atomic.Bool
}

// NewHealth validates cfg and returns a Health handler. It fails when
// Engine is nil or Timeout is negative.
func NewHealth(cfg HealthConfig) (*Health, error) {
	switch {
	case cfg.Engine == nil:
		return nil, errors.New("synchrohttp: HealthConfig.Engine is required")
	case cfg.Timeout < 0:
		return nil, errors.New("synchrohttp: HealthConfig.Timeout must not be negative")
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultHealthTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Health{engine: cfg.Engine, consumer: cfg.Consumer, capture: cfg.Capture, timeout: cfg.Timeout, logger: cfg.Logger}, nil
}

// ServeHTTP routes by the last element of the request path: "healthz" to
// ServeLive, "readyz" to ServeReady; anything else is 404 not_found.
//
//	mux.Handle("/healthz", health)
//	mux.Handle("/readyz", health)
func (h *Health) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var path string
	if r.URL != nil {
		path = r.URL.Path
	}
	switch path[strings.LastIndex(path, "/")+1:] {
	case "healthz":
		h.ServeLive(w, r)
	case "readyz":
		h.ServeReady(w, r)
	default:
		writeErrorBody(w, http.StatusNotFound, errorBody{Code: codeNotFound, Message: "no health endpoint at this path (healthz, readyz)"})
	}
}

// ServeLive answers GET (and HEAD) with 200 and the liveness body, as long
// as the process serves HTTP: it reads no database, so an outage of the
// database or of change capture never makes an orchestrator restart the
// process (which would not mend them). The body reports the process's
// consumer, when there is one.
func (h *Health) ServeLive(w http.ResponseWriter, r *http.Request) {
	if !h.allowGet(w, r) {
		return
	}
	body := liveBody{Live: true, CheckedAt: time.Now().UTC()}
	if h.consumer != nil {
		body.Consumer = consumerJSON(h.consumer.Status())
	}
	writeHealth(w, http.StatusOK, body)
}

// ServeReady answers GET (and HEAD) with the readiness body: 200 when
// ready, 503 when not. Ready means that the process's consumer (if any)
// has not failed or stopped, and that change capture keeps up as
// Engine.CaptureStatus reads it from the database: somebody, in this
// process or another, streams the slot and is not behind beyond the
// limits. See "Health" in the package documentation.
func (h *Health) ServeReady(w http.ResponseWriter, r *http.Request) {
	if !h.allowGet(w, r) {
		return
	}
	body := readyBody{Ready: true}
	if h.consumer != nil {
		s := h.consumer.Status()
		body.Consumer = consumerJSON(s)
		switch s.State {
		case wal.ConsumerFailed:
			body.notReady(HealthReasonConsumerFailed, "this process's change-capture consumer failed: "+s.LastError)
		case wal.ConsumerStopped:
			body.notReady(HealthReasonConsumerStopped, "this process's change-capture consumer is not running")
		}
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.timeout)
	defer cancel()
	st, err := h.engine.CaptureStatus(ctx, h.capture)
	if err != nil {
		h.logger.WarnContext(r.Context(), "synchrohttp: reading the capture status failed", "error", err)
		body.CaptureError = err.Error()
		body.notReady(HealthReasonCaptureUnknown, "the capture status could not be read: "+err.Error())
	} else {
		body.Capture = captureJSON(st)
		if !st.Ready {
			body.notReady(st.Reason, st.Message)
		}
	}
	body.CheckedAt = time.Now().UTC()

	if !body.Ready && !h.notReady.Swap(true) {
		h.logger.WarnContext(r.Context(), "synchrohttp: not ready", "reason", body.Reason, "message", body.Message)
	} else if body.Ready && h.notReady.Swap(false) {
		h.logger.InfoContext(r.Context(), "synchrohttp: ready again")
	}
	status := http.StatusOK
	if !body.Ready {
		status = http.StatusServiceUnavailable
	}
	writeHealth(w, status, body)
}

// allowGet reports whether r is a GET or a HEAD, answering 405 otherwise.
func (h *Health) allowGet(w http.ResponseWriter, r *http.Request) bool {
	if r.Method == "" || r.Method == http.MethodGet || r.Method == http.MethodHead {
		return true
	}
	w.Header().Set("Allow", "GET, HEAD")
	writeErrorBody(w, http.StatusMethodNotAllowed, errorBody{Code: codeMethodNotAllowed,
		Message: "method " + r.Method + " is not allowed here; use GET or HEAD"})
	return false
}

// writeHealth writes a health body.
func writeHealth(w http.ResponseWriter, status int, body any) {
	data, err := json.Marshal(body)
	if err != nil { // impossible: strings, numbers, booleans and times
		writeErrorBody(w, http.StatusInternalServerError, errorBody{Code: codeInternal, Message: messageInternal})
		return
	}
	writeBody(w, status, data)
}

// The JSON bodies of the health endpoints, documented in doc.go.

type liveBody struct {
	Live      bool          `json:"live"`
	CheckedAt time.Time     `json:"checked_at"`
	Consumer  *consumerBody `json:"consumer,omitempty"`
}

type readyBody struct {
	Ready        bool          `json:"ready"`
	Reason       string        `json:"reason,omitempty"`
	Message      string        `json:"message,omitempty"`
	CheckedAt    time.Time     `json:"checked_at"`
	Capture      *captureBody  `json:"capture,omitempty"`
	CaptureError string        `json:"capture_error,omitempty"`
	Consumer     *consumerBody `json:"consumer,omitempty"`
}

// notReady marks b not ready; the first reason given stays.
func (b *readyBody) notReady(reason, message string) {
	if b.Ready {
		b.Ready, b.Reason, b.Message = false, reason, message
	}
}

type captureBody struct {
	Ready               bool       `json:"ready"`
	Reason              string     `json:"reason,omitempty"`
	Message             string     `json:"message,omitempty"`
	ServerLSN           string     `json:"server_lsn"`
	ServerTime          time.Time  `json:"server_time"`
	ChangelogLastAt     *time.Time `json:"changelog_last_at,omitempty"`
	ChangelogAgeSeconds *float64   `json:"changelog_age_seconds,omitempty"`
	Slots               []slotBody `json:"slots"`
}

type slotBody struct {
	Name          string     `json:"name"`
	Ready         bool       `json:"ready"`
	Reason        string     `json:"reason,omitempty"`
	Message       string     `json:"message,omitempty"`
	Exists        bool       `json:"exists"`
	Active        bool       `json:"active"`
	ActivePID     int        `json:"active_pid,omitempty"`
	ConfirmedLSN  string     `json:"confirmed_lsn,omitempty"`
	RestartLSN    string     `json:"restart_lsn,omitempty"`
	WALStatus     string     `json:"wal_status,omitempty"`
	RetainedBytes int64      `json:"retained_bytes"`
	LagBytes      int64      `json:"lag_bytes"`
	LagSeconds    float64    `json:"lag_seconds"`
	RecordedLSN   string     `json:"recorded_lsn,omitempty"`
	RecordedAt    *time.Time `json:"recorded_at,omitempty"`
}

type consumerBody struct {
	State         wal.ConsumerState `json:"state"`
	Since         time.Time         `json:"since"`
	Slot          string            `json:"slot"`
	Attempts      int               `json:"attempts"`
	Failures      int               `json:"failures"`
	AppliedLSN    string            `json:"applied_lsn"`
	ConfirmedLSN  string            `json:"confirmed_lsn"`
	ServerLSN     string            `json:"server_lsn"`
	LagBytes      int64             `json:"lag_bytes"`
	LagSeconds    float64           `json:"lag_seconds"`
	LastCommitAt  *time.Time        `json:"last_commit_at,omitempty"`
	LastAppliedAt *time.Time        `json:"last_applied_at,omitempty"`
	LastError     string            `json:"last_error,omitempty"`
	LastErrorAt   *time.Time        `json:"last_error_at,omitempty"`
}

func captureJSON(st synchro.CaptureStatus) *captureBody {
	b := &captureBody{Ready: st.Ready, Reason: st.Reason, Message: st.Message, ServerLSN: st.ServerLSN,
		ServerTime: st.ServerTime.UTC(), ChangelogLastAt: timeJSON(st.ChangelogLastAt), Slots: []slotBody{}}
	if !st.ChangelogLastAt.IsZero() {
		age := seconds(st.ChangelogAge)
		b.ChangelogAgeSeconds = &age
	}
	for _, s := range st.Slots {
		b.Slots = append(b.Slots, slotBody{Name: s.Name, Ready: s.Ready, Reason: s.Reason, Message: s.Message,
			Exists: s.Exists, Active: s.Active, ActivePID: s.ActivePID, ConfirmedLSN: s.ConfirmedLSN,
			RestartLSN: s.RestartLSN, WALStatus: s.WALStatus, RetainedBytes: s.RetainedBytes, LagBytes: s.LagBytes,
			LagSeconds: seconds(s.LagTime), RecordedLSN: s.RecordedLSN, RecordedAt: timeJSON(s.RecordedAt)})
	}
	return b
}

func consumerJSON(s wal.ConsumerStatus) *consumerBody {
	return &consumerBody{State: s.State, Since: s.Since.UTC(), Slot: s.Slot, Attempts: s.Attempts, Failures: s.Failures,
		AppliedLSN: s.AppliedLSN.String(), ConfirmedLSN: s.ConfirmedLSN.String(), ServerLSN: s.ServerLSN.String(),
		LagBytes: s.LagBytes, LagSeconds: seconds(s.LagTime), LastCommitAt: timeJSON(s.LastCommit),
		LastAppliedAt: timeJSON(s.LastApplied), LastError: s.LastError, LastErrorAt: timeJSON(s.LastErrorAt)}
}

// timeJSON returns t in UTC, or nil when it is zero (the field is left
// out).
func timeJSON(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}

// seconds returns d in seconds, to the millisecond.
func seconds(d time.Duration) float64 {
	return float64(d.Round(time.Millisecond)) / float64(time.Second)
}
