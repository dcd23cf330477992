package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/synchrosync/synchro/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// TestExampleExportsMetrics runs the example as its main does, against a
// database of its own, syncs a note through its HTTP API, and reads what
// the Prometheus exporter serves: the engine's and change capture's
// metrics under their Prometheus names, and a ready /readyz.
func TestExampleExportsMetrics(t *testing.T) {
	db := pgtest.NewDatabase(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, db.DSN, ln) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("run: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("run did not return within 30 s of its context's end")
		}
	})

	// The server is up once its schema contract answers.
	var contract struct {
		Version int64  `json:"schema_version"`
		Hash    string `json:"schema_hash"`
	}
	pgtest.WaitFor(t, "the example to serve", 30*time.Second, func() (bool, string) {
		select {
		case err := <-done:
			t.Fatalf("run returned early: %v", err)
		default:
		}
		status, body := call(t, http.MethodGet, base+"/sync/schema", nil)
		if status != http.StatusOK {
			return false, string(body)
		}
		return json.Unmarshal(body, &contract) == nil, string(body)
	})

	// Ready once the consumer captures.
	pgtest.WaitFor(t, "GET /readyz to answer 200", 30*time.Second, func() (bool, string) {
		status, body := call(t, http.MethodGet, base+"/readyz", nil)
		return status == http.StatusOK, string(body)
	})

	common := map[string]any{"client_id": "phone-1", "schema_version": contract.Version, "schema_hash": contract.Hash}
	with := func(fields map[string]any) map[string]any {
		m := map[string]any{}
		for k, v := range common {
			m[k] = v
		}
		for k, v := range fields {
			m[k] = v
		}
		return m
	}
	mustPost(t, base+"/sync/register", with(map[string]any{"platform": "ios", "app_version": "1.0.0"}))
	var snap struct {
		Checkpoint int64 `json:"checkpoint"`
		HasMore    bool  `json:"has_more"`
	}
	if err := json.Unmarshal([]byte(mustPost(t, base+"/sync/snapshot", with(map[string]any{"limit": 100}))), &snap); err != nil || snap.HasMore {
		t.Fatalf("snapshot of an empty table: %+v, %v", snap, err)
	}
	id := "5f0c7f4e-3a43-4c8e-9b1e-7d7c1c9f2a10"
	push := mustPost(t, base+"/sync/push", with(map[string]any{"changes": []any{map[string]any{
		"id": id, "table_name": "notes", "operation": "create",
		"data":              map[string]any{"id": id, "body": "hello"},
		"client_updated_at": time.Now().UTC().Format(time.RFC3339Nano),
	}}}))
	if !strings.Contains(push, `"status":"applied"`) {
		t.Fatalf("push: %s", push)
	}

	// The pushed note reaches the changelog and a pull (capture works).
	pgtest.WaitFor(t, "the note to be pulled", 30*time.Second, func() (bool, string) {
		body := mustPost(t, base+"/sync/pull", with(map[string]any{"checkpoint": snap.Checkpoint, "limit": 100}))
		return strings.Contains(body, id), body
	})

	want := []string{
		`synchro_register_requests_total{`,
		`synchro_push_records_total{`,
		`synchro_push_status="applied"`,
		`synchro_pull_records_total{`,
		`synchro_pull_duration_seconds_bucket{`,
		`synchro_snapshot_pages_total{`,
		`synchro_capture_rows_total{`,
		`synchro_capture_transactions_total{`,
		`synchro_capture_lag_bytes{`,
	}
	pgtest.WaitFor(t, "GET /metrics to report the sync", 30*time.Second, func() (bool, string) {
		status, body := call(t, http.MethodGet, base+"/metrics", nil)
		if status != http.StatusOK {
			return false, string(body)
		}
		for _, w := range want {
			if !bytes.Contains(body, []byte(w)) {
				return false, "missing " + w
			}
		}
		return true, ""
	})
}

// call sends a request with body (JSON when not nil) as user alice and
// returns the status and the body.
func call(t *testing.T, method, url string, body any) (int, []byte) {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer alice")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, []byte(err.Error())
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

// mustPost posts body and returns the answer, failing the test unless it
// is 200.
func mustPost(t *testing.T, url string, body any) string {
	t.Helper()
	status, b := call(t, http.MethodPost, url, body)
	if status != http.StatusOK {
		t.Fatalf("POST %s: %d %s", url, status, b)
	}
	return string(b)
}
