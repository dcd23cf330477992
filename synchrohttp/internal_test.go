package synchrohttp

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/synchrosync/synchro"
)

// These tests need no database.

// badReq is an error that reports through BadRequest() whether it is the
// caller's mistake, as the engine's request errors do.
type badReq struct{ bad bool }

func (e badReq) Error() string    { return fmt.Sprintf("badReq(%v)", e.bad) }
func (e badReq) BadRequest() bool { return e.bad }

// timeoutErr is a net.Error.
type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

// TestClassify checks the error mapping for every documented case, wrapped
// as the engine wraps its errors.
func TestClassify(t *testing.T) {
	t.Parallel()
	wrap := func(err error) error { return fmt.Errorf("synchro: doing something: %w", err) }
	pg := func(code string) error {
		return wrap(&pgconn.PgError{Severity: "ERROR", Code: code, Message: "secret detail"})
	}
	opErr := &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	cases := []struct {
		name       string
		err        error
		clientGone bool
		status     int
		code       string
	}{
		{"schema mismatch", wrap(synchro.ErrSchemaMismatch), false, 409, codeSchemaMismatch},
		{"client not registered", wrap(synchro.ErrClientNotRegistered), false, 404, codeClientNotRegistered},
		{"upgrade required", fmt.Errorf("%w: %w", synchro.ErrUpgradeRequired, errors.New("bad version")), false, 426, codeUpgradeRequired},
		{"stale client", wrap(synchro.ErrStaleClient), false, 403, codeStaleClient},
		{"snapshot required", wrap(synchro.ErrSnapshotRequired), false, 410, codeSnapshotRequired},
		{"table not registered", wrap(synchro.ErrTableNotRegistered), false, 400, codeBadRequest},
		{"invalid operation", wrap(synchro.ErrInvalidOperation), false, 400, codeBadRequest},
		{"BadRequest true", wrap(badReq{true}), false, 400, codeBadRequest},
		{"BadRequest false", wrap(badReq{false}), false, 500, codeInternal},
		{"NUL in text", pg("22021"), false, 400, codeBadRequest},
		{"other data exception", pg("22P02"), false, 500, codeInternal},

		{"deadline", wrap(context.DeadlineExceeded), false, 503, codeUnavailable},
		{"deadline, client gone too", wrap(context.DeadlineExceeded), true, 503, codeUnavailable},
		{"bad conn", wrap(driver.ErrBadConn), false, 503, codeUnavailable},
		{"net error", wrap(opErr), false, 503, codeUnavailable},
		{"net timeout", wrap(timeoutErr{}), false, 503, codeUnavailable},
		{"connection exception", pg("08006"), false, 503, codeUnavailable},
		{"connection failure", pg("08001"), false, 503, codeUnavailable},
		{"serialization", pg("40001"), false, 503, codeUnavailable},
		{"deadlock", pg("40P01"), false, 503, codeUnavailable},
		{"too many connections", pg("53300"), false, 503, codeUnavailable},
		{"out of memory", pg("53200"), false, 503, codeUnavailable},
		{"disk full", pg("53100"), false, 503, codeUnavailable},
		{"lock not available", pg("55P03"), false, 503, codeUnavailable},
		{"statement timeout", pg("57014"), false, 503, codeUnavailable},
		{"admin shutdown", pg("57P01"), false, 503, codeUnavailable},
		{"crash shutdown", pg("57P02"), false, 503, codeUnavailable},
		{"cannot connect now", pg("57P03"), false, 503, codeUnavailable},

		{"canceled by the client", wrap(context.Canceled), true, statusClientClosedRequest, codeCanceled},
		{"query canceled for the client", pg("57014"), true, statusClientClosedRequest, codeCanceled},
		{"canceled, client still there", wrap(context.Canceled), false, 500, codeInternal},
		{"schema mismatch, client gone", wrap(synchro.ErrSchemaMismatch), true, 409, codeSchemaMismatch},

		{"plain error", errors.New("boom"), false, 500, codeInternal},
		{"database closed", errors.New("sql: database is closed"), false, 500, codeInternal},
		{"conn done", wrap(sql.ErrConnDone), false, 500, codeInternal},
		{"tx done", wrap(sql.ErrTxDone), false, 500, codeInternal},
		{"no rows", wrap(sql.ErrNoRows), false, 500, codeInternal},
		{"syntax error", pg("42601"), false, 500, codeInternal},
		{"insufficient privilege", pg("42501"), false, 500, codeInternal},
		{"auth failure", pg("28P01"), false, 500, codeInternal},
		{"internal error", pg("XX000"), false, 500, codeInternal},
		{"unsupported schema", wrap(synchro.ErrUnsupportedSchemaFeature), false, 500, codeInternal},
		{"unexpected EOF", wrap(io.ErrUnexpectedEOF), false, 500, codeInternal},
		{"sentinel beats transient", fmt.Errorf("%w: %w", synchro.ErrClientNotRegistered, driver.ErrBadConn), false, 404, codeClientNotRegistered},
		{"bad request beats transient", errors.Join(badReq{true}, context.DeadlineExceeded), false, 400, codeBadRequest},
		{"server code beats net error", errors.Join(opErr, &pgconn.PgError{Code: "42P01"}), false, 500, codeInternal},
	}
	for _, c := range cases {
		f := classify(c.err, c.clientGone)
		if f.status != c.status || f.code != c.code {
			t.Errorf("%s: classify(%v) = %d %s, want %d %s", c.name, c.err, f.status, f.code, c.status, c.code)
		}
		if f.message == "" {
			t.Errorf("%s: empty message", c.name)
		}
		// 5xx and the fixed-message 4xx never show the error.
		if f.status >= 500 || f.code == codeCanceled || strings.Contains(c.name, "NUL") {
			if strings.Contains(f.message, "secret") || strings.Contains(f.message, "synchro:") || strings.Contains(f.message, "boom") {
				t.Errorf("%s: message %q reveals the error", c.name, f.message)
			}
		}
		wantLevel := slog.LevelDebug
		switch f.status {
		case 500:
			wantLevel = slog.LevelError
		case 503:
			wantLevel = slog.LevelWarn
		}
		if f.level != wantLevel {
			t.Errorf("%s: level %v, want %v", c.name, f.level, wantLevel)
		}
	}
	// A 4xx carries the engine's explanation.
	if f := classify(wrap(synchro.ErrClientNotRegistered), false); !strings.Contains(f.message, "client not registered") {
		t.Errorf("client_not_registered message %q", f.message)
	}
}

// TestConnectErrorIsTransient checks the shape of a real connection
// failure: pgconn's error for a refused connection is a 503.
func TestConnectErrorIsTransient(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil { // nothing listens there now
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	conn, err := pgconn.Connect(ctx, "postgres://nobody@"+addr+"/none?connect_timeout=5")
	if err == nil {
		_ = conn.Close(ctx)
		t.Skip("something answered on a closed port")
	}
	if f := classify(fmt.Errorf("synchro: loading client: %w", err), false); f.status != http.StatusServiceUnavailable {
		t.Errorf("connection refused (%v): %d %s, want 503", err, f.status, f.code)
	}
}

// TestDecodeJSON checks the strict decoding and its messages.
func TestDecodeJSON(t *testing.T) {
	t.Parallel()
	cases := []struct {
		body string
		want string // substring of the error; "" for success
	}{
		{`{"client_id":"c1","checkpoint":3}`, ""},
		{" \n{\"client_id\":\"c1\"}\r\n\t ", ""},
		{`{"tables":null,"known_buckets":[]}`, ""},
		{``, "empty"},
		{" \t\r\n", "empty"},
		{`null`, "not null"},
		{` null `, "not null"},
		{`[]`, "not an array"},
		{`"x"`, "not a string"},
		{`-1`, "not a number"},
		{`false`, "not a boolean"},
		{`nul`, "malformed"},
		{`]`, "malformed"},
		{`1e999`, "must be a JSON object"},
		{`{"client_id":"c1"}{}`, "exactly one"},
		{`{"client_id":"c1"} 1`, "exactly one"},
		{`{"client_id":"c1"}]`, "exactly one"},
		{`{"client_id":"c1"} null`, "exactly one"},
		{`{"client_id":"c1"`, "ends inside"},
		{`{"client_id":`, "ends inside"},
		{`{"client_id" "c1"}`, "offset 14"},
		{`{"client_id":5}`, `field "client_id" must be a string, not number`},
		{`{"checkpoint":true}`, `field "checkpoint" must be an integer, not bool`},
		{`{"checkpoint":1.5}`, `field "checkpoint" must be an integer, not number 1.5`},
		{`{"limit":99999999999999999999}`, `field "limit" must be an integer`},
		{`{"tables":"notes"}`, `field "tables" must be an array, not string`},
		{`{"tables":[1]}`, `field "tables" must be a string, not number`},
		{`{"unknown":1}`, ""}, // newer clients add fields
		{`{"client_id":"c1","next_gen":{"a":[1,2]},"tables":null,"known_buckets":null}`, ""},
		{`{"Client_ID":"c1"}`, ""}, // encoding/json matches field names case-insensitively
		{"{\"client_id\":\"\xff\"}", ""},
	}
	for _, c := range cases {
		var req synchro.PullRequest
		err := decodeJSON([]byte(c.body), &req)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%q: %v", c.body, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%q: error %v, want one containing %q", c.body, err, c.want)
		}
	}
	var snap synchro.SnapshotRequest
	if err := decodeJSON([]byte(`{"cursor":{"table_idx":"1"}}`), &snap); err == nil || !strings.Contains(err.Error(), `"cursor.table_idx"`) {
		t.Errorf("nested type error: %v", err)
	}
	if err := decodeJSON([]byte(`{"cursor":{"table_idx":1,"extra":true}}`), &snap); err != nil {
		t.Errorf("unknown nested field: %v", err)
	}
	// A push's records are decoded later, one by one; its other fields
	// and the array itself must be well formed.
	var push pushRequest
	if err := decodeJSON([]byte(`{"changes":[{"operation":7},null,1],"client_id":"c1"}`), &push); err != nil || len(push.Changes) != 3 {
		t.Errorf("records of any shape: %v, %d records", err, len(push.Changes))
	}
	for body, want := range map[string]string{
		`{"changes":{}}`:         `field "changes" must be an array, not object`,
		`{"changes":"x"}`:        `field "changes" must be an array, not string`,
		`{"client_id":1}`:        `field "client_id" must be a string`,
		`{"schema_version":"1"}`: `field "schema_version" must be an integer`,
		`{"schema_hash":[]}`:     `field "schema_hash" must be a string`,
	} {
		if err := decodeJSON([]byte(body), new(pushRequest)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want one containing %q", body, err, want)
		}
	}
}

// FuzzDecodeJSON checks that decoding any body into any request type never
// panics, and that a body it accepts is one JSON object.
func FuzzDecodeJSON(f *testing.F) {
	for _, s := range []string{
		`{"client_id":"c1","checkpoint":3,"tables":["a"],"limit":5}`,
		`{"client_id":"c1","cursor":{"checkpoint":1,"table_idx":0,"after_id":"x"}}`,
		`{"client_id":"c1","changes":[{"id":"a","table_name":"t","operation":"create","data":{"k":[1,{"z":null}]},"client_updated_at":"2024-01-01T00:00:00Z"}]}`,
		`{"client_id":"c1","platform":"ios","app_version":"1.0.0","client_name":null}`,
		`{"client_id":"c1","changes":[null,1,"x",[],{"operation":"delete","data":null,"base_updated_at":"2026-12-02 04:20:23"},{"client_updated_at":7}]}`,
		``, `null`, `[]`, `{`, `{}{}`, `{"a":1}`, `{"checkpoint":"x"}`, "\xef\xbb\xbf{}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, dst := range []any{new(synchro.RegisterRequest), new(synchro.PullRequest), new(pushRequest), new(synchro.SnapshotRequest)} {
			err := decodeJSON(body, dst)
			if push, ok := dst.(*pushRequest); ok && err == nil {
				for i, raw := range push.Changes {
					if _, bad := decodePushRecord(i, raw); bad != nil && (bad.Message == "" || bad.Status != synchro.PushStatusRejectedTerminal) {
						t.Errorf("record %d of %q: result %+v", i, body, bad)
					}
				}
			}
			if err == nil {
				trimmed := strings.TrimSpace(string(body))
				if !strings.HasPrefix(trimmed, "{") || !strings.HasSuffix(trimmed, "}") {
					t.Errorf("accepted %q, which is not one object", body)
				}
				continue
			}
			if err.Error() == "" {
				t.Errorf("empty error for %q", body)
			}
		}
	})
}

// TestJSONContentType checks which Content-Type values are JSON.
func TestJSONContentType(t *testing.T) {
	t.Parallel()
	for ct, want := range map[string]bool{
		"":                                   true,
		"application/json":                   true,
		"APPLICATION/JSON":                   true,
		"application/json; charset=utf-8":    true,
		"application/json;charset=\"UTF-8\"": true,
		"application/problem+json":           true,
		"application/json; charset=latin1":   false,
		"text/json":                          false,
		"text/plain":                         false,
		"multipart/form-data; boundary=x":    false,
		"application/jsonx":                  false,
		"application/json; =":                false,
		"json":                               false,
	} {
		if got := jsonContentType(ct); got != want {
			t.Errorf("jsonContentType(%q) = %v, want %v", ct, got, want)
		}
	}
}

// TestEndpoint checks how paths are routed.
func TestEndpoint(t *testing.T) {
	t.Parallel()
	for path, want := range map[string]string{
		"/sync/pull":          "pull",
		"sync/pull":           "pull",
		"/api/v1/sync/pull":   "pull",
		"/sync/sync/push":     "push",
		"/sync/x/sync/tables": "tables",
		"/sync/":              "",
		"/sync":               "",
		"/pull":               "",
		"":                    "",
		"/sync/pull/":         "pull/",
		"/async/pull":         "",
	} {
		if got := endpoint(path); got != want {
			t.Errorf("endpoint(%q) = %q, want %q", path, got, want)
		}
	}
}

// TestRetryAfterSeconds checks the rounding of Config.RetryAfter.
func TestRetryAfterSeconds(t *testing.T) {
	t.Parallel()
	for d, want := range map[time.Duration]string{
		time.Nanosecond:         "1",
		time.Second:             "1",
		1500 * time.Millisecond: "2",
		DefaultRetryAfter:       "5",
		time.Hour:               "3600",
		1<<63 - 1:               "9223372036",
	} {
		if got := retryAfterSeconds(d); got != want {
			t.Errorf("retryAfterSeconds(%v) = %s, want %s", d, got, want)
		}
	}
}
