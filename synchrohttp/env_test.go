package synchrohttp_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/synchrosync/synchro"
	"github.com/synchrosync/synchro/internal/pgtest"
	"github.com/synchrosync/synchro/synchrohttp"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// notesDDL is the one synced table of the tests.
const notesDDL = `CREATE TABLE notes (
	id         text PRIMARY KEY,
	user_id    text NOT NULL,
	body       text,
	updated_at timestamptz NOT NULL DEFAULT now(),
	deleted_at timestamptz
)`

// userHeader carries the test user; testUserID is the tests'
// Config.UserID. The value "fail" makes it fail.
const userHeader = "X-Test-User"

func testUserID(r *http.Request) (string, error) {
	u := r.Header.Get(userHeader)
	if u == "fail" {
		return "", errors.New("token expired")
	}
	return u, nil
}

// env is a database with the notes table, an engine on it and a handler.
type env struct {
	db     *pgtest.Database
	engine *synchro.Engine
	h      *synchrohttp.Handler
	ver    int64
	hash   string
	logs   *logBuffer
}

// newEnv builds an env. engineMod may change the engine's configuration,
// including its pool (the superuser's by default).
func newEnv(t *testing.T, engineMod func(*synchro.Config, *pgtest.Database)) *env {
	t.Helper()
	db := pgtest.NewMigratedDatabase(t)
	if _, err := db.Super.ExecContext(t.Context(), notesDDL); err != nil {
		t.Fatalf("creating notes: %v", err)
	}
	reg := synchro.NewRegistry()
	reg.Register(&synchro.TableConfig{TableName: "notes", OwnerColumn: "user_id"})
	cfg := synchro.Config{DB: db.Super, Registry: reg, Logger: slog.New(slog.DiscardHandler)}
	if engineMod != nil {
		engineMod(&cfg, db)
	}
	engine, err := synchro.NewEngine(cfg)
	if err != nil {
		t.Fatalf("NewEngine: %v", err)
	}
	e := &env{db: db, engine: engine, logs: &logBuffer{}}
	if e.ver, e.hash, err = engine.CurrentSchemaManifest(t.Context()); err != nil {
		t.Fatalf("CurrentSchemaManifest: %v", err)
	}
	e.h = e.handler(t, nil)
	return e
}

// handler builds a handler on e's engine that logs to e.logs at Debug;
// mod may change its configuration.
func (e *env) handler(t *testing.T, mod func(*synchrohttp.Config)) *synchrohttp.Handler {
	t.Helper()
	cfg := synchrohttp.Config{
		Engine: e.engine,
		UserID: testUserID,
		Logger: slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if mod != nil {
		mod(&cfg)
	}
	h, err := synchrohttp.New(cfg)
	if err != nil {
		t.Fatalf("synchrohttp.New: %v", err)
	}
	return h
}

// schema returns the schema_version and schema_hash fields of a request
// body with e's contract, to splice into a JSON object.
func (e *env) schema() string {
	b, _ := json.Marshal(e.hash)
	return `"schema_version":` + jsonInt(e.ver) + `,"schema_hash":` + string(b)
}

func jsonInt(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// request describes one request to a handler.
type request struct {
	method string // default POST
	path   string
	user   string // the userHeader value; none when empty
	ctype  string // Content-Type; default application/json, "-" for none
	body   string
	ctx    context.Context
	header map[string]string // more request headers
}

// serve runs req through h and returns the recorded response.
func serve(t *testing.T, h http.Handler, req request) *httptest.ResponseRecorder {
	t.Helper()
	method := req.method
	if method == "" {
		method = http.MethodPost
	}
	r := httptest.NewRequest(method, req.path, strings.NewReader(req.body))
	if req.ctx != nil {
		r = r.WithContext(req.ctx)
	}
	if req.user != "" {
		r.Header.Set(userHeader, req.user)
	}
	for k, v := range req.header {
		r.Header.Set(k, v)
	}
	switch req.ctype {
	case "":
		r.Header.Set("Content-Type", "application/json")
	case "-":
	default:
		r.Header.Set("Content-Type", req.ctype)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	return rec
}

// errorBody is the JSON body of an error response.
type errorBody struct {
	Code                string  `json:"code"`
	Message             string  `json:"message"`
	Error               string  `json:"error"`
	SchemaVersion       *int64  `json:"schema_version"`
	SchemaHash          *string `json:"schema_hash"`
	ServerSchemaVersion *int64  `json:"server_schema_version"`
	ServerSchemaHash    *string `json:"server_schema_hash"`
}

// schemaNumbers are the keys of a schema_mismatch body whose values are
// numbers; every other value of an error body is a string.
var schemaNumbers = map[string]bool{"schema_version": true, "server_schema_version": true}

// wantError checks that rec is an error response with status and code, that
// its values are strings (but for the schema versions of a
// schema_mismatch), and that "error" repeats the message (but for
// upgrade_required); it returns the body.
func wantError(t *testing.T, rec *httptest.ResponseRecorder, status int, code string) errorBody {
	t.Helper()
	if rec.Code != status {
		t.Errorf("status %d, want %d; body %s", rec.Code, status, rec.Body)
	}
	checkHeaders(t, rec)
	var body errorBody
	strictDecode(t, rec.Body.Bytes(), &body)
	if body.Code != code {
		t.Errorf("code %q, want %q; body %s", body.Code, code, rec.Body)
	}
	if body.Message == "" {
		t.Errorf("empty message; body %s", rec.Body)
	}
	if code != "upgrade_required" && body.Error != body.Message {
		t.Errorf("error %q is not the message %q", body.Error, body.Message)
	}
	if code != "schema_mismatch" && (body.SchemaVersion != nil || body.SchemaHash != nil || body.ServerSchemaVersion != nil || body.ServerSchemaHash != nil) {
		t.Errorf("schema fields in a %s error: %s", code, rec.Body)
	}
	var values map[string]any
	strictDecode(t, rec.Body.Bytes(), &values)
	for k, v := range values {
		_, isString := v.(string)
		if _, isNumber := v.(float64); !isString && !(isNumber && code == "schema_mismatch" && schemaNumbers[k]) {
			t.Errorf("%q is %T in %s", k, v, rec.Body)
		}
	}
	return body
}

// wantOK checks that rec is a 200 response and decodes its body into a T,
// refusing fields T does not have.
func wantOK[T any](t *testing.T, rec *httptest.ResponseRecorder) *T {
	t.Helper()
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d, want 200; body %s", rec.Code, rec.Body)
	}
	checkHeaders(t, rec)
	v := new(T)
	strictDecode(t, rec.Body.Bytes(), v)
	return v
}

func checkHeaders(t *testing.T, rec *httptest.ResponseRecorder) {
	t.Helper()
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
	if cc := rec.Header().Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control %q, want no-store", cc)
	}
}

func strictDecode(t *testing.T, data []byte, v any) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("decoding %s: %v", data, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		t.Fatalf("data after the JSON value in %s", data)
	}
}

// logBuffer collects log output from concurrent requests.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// entries returns the decoded log records.
func (l *logBuffer) entries(t *testing.T) []map[string]any {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	dec := json.NewDecoder(bytes.NewReader(l.b.Bytes()))
	for {
		var m map[string]any
		err := dec.Decode(&m)
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("decoding logs: %v", err)
		}
		out = append(out, m)
	}
}

// openPool opens a pool of its own on dsn, closed when t ends.
func openPool(t *testing.T, dsn string) *sql.DB {
	t.Helper()
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatalf("sql.Open: %v", err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// deadline returns a context for setup work.
func deadline(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}
