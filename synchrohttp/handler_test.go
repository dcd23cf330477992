package synchrohttp_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver

	"github.com/synchrosync/synchro"
	"github.com/synchrosync/synchro/internal/pgtest"
	"github.com/synchrosync/synchro/synchrohttp"
)

// TestNewValidates checks that New refuses an incomplete configuration,
// naming the field.
func TestNewValidates(t *testing.T) {
	t.Parallel()
	engine := new(synchro.Engine) // New does not call the engine
	for _, c := range []struct {
		name  string
		cfg   synchrohttp.Config
		field string
	}{
		{"no engine", synchrohttp.Config{UserID: testUserID}, "Engine"},
		{"no user id", synchrohttp.Config{Engine: engine}, "UserID"},
		{"negative body cap", synchrohttp.Config{Engine: engine, UserID: testUserID, MaxBodyBytes: -1}, "MaxBodyBytes"},
		{"negative retry", synchrohttp.Config{Engine: engine, UserID: testUserID, RetryAfter: -time.Second}, "RetryAfter"},
	} {
		h, err := synchrohttp.New(c.cfg)
		if err == nil || h != nil {
			t.Errorf("%s: New = %v, %v; want an error", c.name, h, err)
			continue
		}
		if !strings.Contains(err.Error(), "Config."+c.field) {
			t.Errorf("%s: error %q does not name Config.%s", c.name, err, c.field)
		}
	}
	if _, err := synchrohttp.New(synchrohttp.Config{Engine: engine, UserID: testUserID}); err != nil {
		t.Errorf("minimal configuration: %v", err)
	}
}

// TestZeroHandler checks that a Handler not built by New, or a nil one,
// answers 500 rather than panicking. (It logs to slog.Default.)
func TestZeroHandler(t *testing.T) {
	t.Parallel()
	var zero synchrohttp.Handler
	var nilHandler *synchrohttp.Handler
	for _, h := range []*synchrohttp.Handler{&zero, nilHandler} {
		for _, path := range []string{"/sync/pull", "/sync/tables", "/elsewhere"} {
			wantError(t, serve(t, h, request{path: path, user: "alice", body: "{}"}), http.StatusInternalServerError, "internal")
		}
		rec := httptest.NewRecorder()
		h.ServePush(rec, httptest.NewRequest(http.MethodPost, "/", strings.NewReader("{}")))
		wantError(t, rec, http.StatusInternalServerError, "internal")
	}
}

// TestSyncFlow runs every endpoint through a real HTTP server: schema and
// tables, register, pull before the snapshot, snapshot, pull, push.
func TestSyncFlow(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := deadline(t)
	// Rows and bucket edges as the WAL consumer would have recorded them.
	pgtest.Exec(t, e.db.Super, `INSERT INTO notes (id, user_id, body) VALUES ('n1', 'alice', 'mine'), ('n2', 'bob', 'his')`)
	pgtest.Exec(t, e.db.Super, `INSERT INTO synchro.bucket_edges (table_name, record_id, bucket_id) VALUES ('notes', 'n1', 'user:alice'), ('notes', 'n2', 'user:bob')`)

	mux := http.NewServeMux()
	mux.Handle("/sync/", e.h)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	call := func(method, path, body string) *httptest.ResponseRecorder {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx, method, srv.URL+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set(userHeader, "alice")
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		rec := httptest.NewRecorder()
		for k, v := range resp.Header {
			rec.Header()[k] = v
		}
		rec.WriteHeader(resp.StatusCode)
		if _, err := io.Copy(rec, resp.Body); err != nil {
			t.Fatal(err)
		}
		return rec
	}

	schema := wantOK[synchro.SchemaResponse](t, call(http.MethodGet, "/sync/schema", ""))
	if schema.SchemaVersion != e.ver || schema.SchemaHash != e.hash || len(schema.Tables) != 1 || schema.Tables[0].TableName != "notes" {
		t.Fatalf("schema %+v, want notes with version %d hash %s", schema, e.ver, e.hash)
	}
	if !slices.ContainsFunc(schema.Tables[0].Columns, func(c synchro.SchemaColumn) bool { return c.Name == "body" }) {
		t.Errorf("schema of notes lacks column body: %+v", schema.Tables[0].Columns)
	}
	tables := wantOK[synchro.TableMetaResponse](t, call(http.MethodGet, "/sync/tables", ""))
	if len(tables.Tables) != 1 || tables.Tables[0].TableName != "notes" || tables.SchemaVersion != e.ver {
		t.Errorf("tables %+v", tables)
	}
	head := call(http.MethodHead, "/sync/tables", "")
	if head.Code != http.StatusOK || head.Body.Len() != 0 {
		t.Errorf("HEAD /sync/tables: %d with %d bytes", head.Code, head.Body.Len())
	}

	reg := wantOK[synchro.RegisterResponse](t, call(http.MethodPost, "/sync/register",
		`{"client_id":"c1","platform":"ios","app_version":"1.0.0"}`))
	if reg.ID == "" || reg.SchemaVersion != e.ver || reg.SchemaHash != e.hash {
		t.Errorf("register %+v", reg)
	}

	early := wantOK[synchro.PullResponse](t, call(http.MethodPost, "/sync/pull", `{"client_id":"c1","checkpoint":0,`+e.schema()+`}`))
	if !early.SnapshotRequired || early.SnapshotReason != synchro.SnapshotReasonInitialSyncRequired {
		t.Errorf("pull before a snapshot: %+v, want snapshot_required", early)
	}

	snap := wantOK[synchro.SnapshotResponse](t, call(http.MethodPost, "/sync/snapshot", `{"client_id":"c1",`+e.schema()+`}`))
	if snap.HasMore || len(snap.Records) != 1 || snap.Records[0].ID != "n1" || snap.Checkpoint < 0 {
		t.Fatalf("snapshot %+v, want alice's n1 only and a checkpoint", snap)
	}
	var data map[string]any
	if err := json.Unmarshal(snap.Records[0].Data, &data); err != nil || data["body"] != "mine" {
		t.Errorf("snapshot record data %s (%v)", snap.Records[0].Data, err)
	}

	// A change after the snapshot, as the consumer would record it.
	pgtest.Exec(t, e.db.Super, `INSERT INTO notes (id, user_id, body) VALUES ('n3', 'alice', 'new')`)
	pgtest.Exec(t, e.db.Super, `INSERT INTO synchro.bucket_edges (table_name, record_id, bucket_id) VALUES ('notes', 'n3', 'user:alice')`)
	pgtest.Exec(t, e.db.Super, `INSERT INTO synchro.changelog (bucket_id, table_name, record_id, operation) VALUES ('user:alice', 'notes', 'n3', 1)`)
	pull := wantOK[synchro.PullResponse](t, call(http.MethodPost, "/sync/pull",
		fmt.Sprintf(`{"client_id":"c1","checkpoint":%d,%s}`, snap.Checkpoint, e.schema())))
	if pull.SnapshotRequired || len(pull.Changes) != 1 || pull.Changes[0].ID != "n3" || pull.Checkpoint <= snap.Checkpoint {
		t.Errorf("pull %+v, want n3 and a later checkpoint", pull)
	}

	// One record applied, one refused on its own: still 200.
	now := time.Now().UTC().Format(time.RFC3339Nano)
	push := wantOK[synchro.PushResponse](t, call(http.MethodPost, "/sync/push", `{"client_id":"c1",`+e.schema()+`,"changes":[
		{"id":"n4","table_name":"notes","operation":"create","data":{"body":"pushed"},"client_updated_at":"`+now+`"},
		{"id":"n2","table_name":"notes","operation":"update","data":{"body":"stolen"},"client_updated_at":"`+now+`"}]}`))
	if len(push.Accepted) != 1 || push.Accepted[0].ID != "n4" || push.Accepted[0].Status != synchro.PushStatusApplied {
		t.Errorf("push accepted %+v, want n4 applied", push.Accepted)
	}
	if len(push.Rejected) != 1 || push.Rejected[0].ID != "n2" || push.Rejected[0].Status != synchro.PushStatusRejectedTerminal {
		t.Errorf("push rejected %+v, want n2 refused", push.Rejected)
	}
	var owner, body string
	if err := e.db.Super.QueryRowContext(ctx, `SELECT user_id, body FROM notes WHERE id = 'n4'`).Scan(&owner, &body); err != nil || owner != "alice" || body != "pushed" {
		t.Errorf("pushed row: (%q, %q, %v), want (alice, pushed)", owner, body, err)
	}
}

// TestRouting checks the mount points and paths the handler answers.
func TestRouting(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	mux := http.NewServeMux()
	mux.Handle("/sync/", e.h)
	mux.Handle("/api/v1/sync/", e.h)
	mux.Handle("/strip/", http.StripPrefix("/strip", e.h))
	mux.Handle("/slashless/", http.StripPrefix("/slashless/", e.h))
	mux.HandleFunc("/custom/schema", e.h.ServeSchema)
	for _, path := range []string{"/sync/tables", "/api/v1/sync/tables", "/strip/sync/tables", "/slashless/sync/tables", "/sync/sync/tables"} {
		rec := serve(t, mux, request{method: http.MethodGet, path: path, user: "alice"})
		wantOK[synchro.TableMetaResponse](t, rec)
	}
	wantOK[synchro.SchemaResponse](t, serve(t, mux, request{method: http.MethodGet, path: "/custom/schema", user: "alice"}))
	for _, path := range []string{"/sync/", "/sync/tables/", "/sync/Tables", "/sync/nope", "/sync/tables/x", "/api/v1/sync/unknown", "/strip/tables"} {
		rec := serve(t, mux, request{method: http.MethodGet, path: path, user: "alice"})
		wantError(t, rec, http.StatusNotFound, "not_found")
	}
	// Used directly, the handler routes any path.
	for _, path := range []string{"/", "/tables", "/syncschema", "/elsewhere/sync"} {
		wantError(t, serve(t, e.h, request{method: http.MethodGet, path: path, user: "alice"}), http.StatusNotFound, "not_found")
	}
}

// TestMethodNotAllowed checks 405 and its Allow header on every endpoint,
// and that the method is checked before the user.
func TestMethodNotAllowed(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	for _, c := range []struct{ method, path, allow string }{
		{http.MethodGet, "/sync/register", "POST"},
		{http.MethodGet, "/sync/pull", "POST"},
		{http.MethodPut, "/sync/push", "POST"},
		{http.MethodDelete, "/sync/snapshot", "POST"},
		{http.MethodPost, "/sync/tables", "GET, HEAD"},
		{http.MethodPatch, "/sync/schema", "GET, HEAD"},
		{http.MethodOptions, "/sync/pull", "POST"},
	} {
		for _, user := range []string{"alice", ""} {
			rec := serve(t, e.h, request{method: c.method, path: c.path, user: user, body: "{}"})
			wantError(t, rec, http.StatusMethodNotAllowed, "method_not_allowed")
			if got := rec.Header().Get("Allow"); got != c.allow {
				t.Errorf("%s %s: Allow %q, want %q", c.method, c.path, got, c.allow)
			}
		}
	}
}

// TestRequestErrors covers authentication, media type and body decoding
// failures, and the requests the engine refuses as bad or unknown.
func TestRequestErrors(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	// c1 is registered and has taken a snapshot; its checkpoint is cp.
	wantOK[synchro.RegisterResponse](t, serve(t, e.h, request{path: "/sync/register", user: "alice",
		body: `{"client_id":"c1","platform":"ios","app_version":"1.0.0"}`}))
	snap := wantOK[synchro.SnapshotResponse](t, serve(t, e.h, request{path: "/sync/snapshot", user: "alice",
		body: `{"client_id":"c1",` + e.schema() + `}`}))
	cp := snap.Checkpoint
	s := e.schema()
	pullBody := `{"client_id":"c1","checkpoint":0,` + s + `}`
	now := time.Now().UTC().Format(time.RFC3339)
	manyRecords := strings.Repeat(`{"id":"x","table_name":"notes","operation":"delete","client_updated_at":"`+now+`"},`, 1001)
	manyRecords = "[" + strings.TrimSuffix(manyRecords, ",") + "]"

	cases := []struct {
		name    string
		req     request
		status  int
		code    string
		message string // a substring of the message
	}{
		// Authentication comes from Config.UserID only, on every endpoint.
		{"no user", request{path: "/sync/pull", body: pullBody}, 401, "unauthenticated", ""},
		{"user lookup fails", request{path: "/sync/pull", user: "fail", body: pullBody}, 401, "unauthenticated", ""},
		{"blank user", request{path: "/sync/push", user: "  ", body: pullBody}, 401, "unauthenticated", ""},
		{"no user for tables", request{method: http.MethodGet, path: "/sync/tables"}, 401, "unauthenticated", ""},
		{"no user for schema", request{method: http.MethodGet, path: "/sync/schema"}, 401, "unauthenticated", ""},
		{"no user, bad body", request{path: "/sync/register", body: "{"}, 401, "unauthenticated", ""},

		// Media type.
		{"text body", request{path: "/sync/pull", user: "alice", ctype: "text/plain", body: pullBody}, 415, "unsupported_media_type", ""},
		{"form body", request{path: "/sync/push", user: "alice", ctype: "application/x-www-form-urlencoded", body: "a=b"}, 415, "unsupported_media_type", ""},
		{"utf-16 body", request{path: "/sync/pull", user: "alice", ctype: "application/json; charset=utf-16", body: pullBody}, 415, "unsupported_media_type", ""},
		{"malformed type", request{path: "/sync/pull", user: "alice", ctype: "application/json; ;=", body: pullBody}, 415, "unsupported_media_type", ""},

		// Decoding.
		{"empty body", request{path: "/sync/pull", user: "alice", body: ""}, 400, "bad_request", "empty"},
		{"blank body", request{path: "/sync/register", user: "alice", body: " \r\n\t"}, 400, "bad_request", "empty"},
		{"null body", request{path: "/sync/pull", user: "alice", body: "null"}, 400, "bad_request", "not null"},
		{"array body", request{path: "/sync/push", user: "alice", body: "[{}]"}, 400, "bad_request", "not an array"},
		{"string body", request{path: "/sync/snapshot", user: "alice", body: `"c1"`}, 400, "bad_request", "not a string"},
		{"number body", request{path: "/sync/snapshot", user: "alice", body: `12`}, 400, "bad_request", "not a number"},
		{"second object", request{path: "/sync/pull", user: "alice", body: pullBody + `{}`}, 400, "bad_request", "exactly one"},
		{"trailing garbage", request{path: "/sync/pull", user: "alice", body: pullBody + " x"}, 400, "bad_request", "exactly one"},
		{"wrong type", request{path: "/sync/register", user: "alice", body: `{"client_id":5}`}, 400, "bad_request", `field "client_id" must be a string, not number`},
		{"wrong type checkpoint", request{path: "/sync/pull", user: "alice", body: `{"client_id":"c1","checkpoint":"7"}`}, 400, "bad_request", `field "checkpoint" must be an integer`},
		{"fractional checkpoint", request{path: "/sync/pull", user: "alice", body: `{"client_id":"c1","checkpoint":1.5}`}, 400, "bad_request", `"checkpoint"`},
		{"huge checkpoint", request{path: "/sync/pull", user: "alice", body: `{"client_id":"c1","checkpoint":1e30}`}, 400, "bad_request", `"checkpoint"`},
		{"wrong nested type", request{path: "/sync/snapshot", user: "alice", body: `{"client_id":"c1","cursor":{"table_idx":"0"}}`}, 400, "bad_request", `"cursor.table_idx"`},
		{"changes not an array", request{path: "/sync/push", user: "alice", body: `{"client_id":"c1","changes":{"id":"a"},` + s + `}`}, 400, "bad_request", `field "changes" must be an array`},
		{"push schema hash not a string", request{path: "/sync/push", user: "alice", body: `{"client_id":"c1","changes":[],"schema_hash":1}`}, 400, "bad_request", `"schema_hash"`},
		{"object for array", request{path: "/sync/pull", user: "alice", body: `{"client_id":"c1","tables":{}}`}, 400, "bad_request", `field "tables" must be an array`},
		{"syntax error", request{path: "/sync/pull", user: "alice", body: `{"client_id":}`}, 400, "bad_request", "offset 14"},
		{"truncated", request{path: "/sync/pull", user: "alice", body: `{"client_id":"c1"`}, 400, "bad_request", "ends inside"},
		{"not JSON", request{path: "/sync/pull", user: "alice", body: `nul`}, 400, "bad_request", "malformed"},

		// Refused by the engine.
		{"no client id", request{path: "/sync/pull", user: "alice", body: `{"checkpoint":0,` + s + `}`}, 400, "bad_request", "client_id"},
		{"long client id", request{path: "/sync/register", user: "alice",
			body: `{"client_id":"` + strings.Repeat("x", 2000) + `","platform":"ios","app_version":"1"}`}, 400, "bad_request", "client_id"},
		{"negative checkpoint", request{path: "/sync/pull", user: "alice", body: `{"client_id":"c1","checkpoint":-1,` + s + `}`}, 400, "bad_request", "checkpoint"},
		{"unknown table", request{path: "/sync/pull", user: "alice", body: `{"client_id":"c1","checkpoint":0,"tables":["secrets"],` + s + `}`}, 400, "bad_request", "secrets"},
		{"made-up cursor", request{path: "/sync/snapshot", user: "alice",
			body: fmt.Sprintf(`{"client_id":"c1","cursor":{"checkpoint":%d,"table_idx":0,"after_id":""},%s}`, cp+1000, s)}, 400, "bad_request", "cursor"},
		{"cursor table out of range", request{path: "/sync/snapshot", user: "alice",
			body: fmt.Sprintf(`{"client_id":"c1","cursor":{"checkpoint":%d,"table_idx":7,"after_id":""},%s}`, cp, s)}, 400, "bad_request", "table_idx"},
		{"negative cursor table", request{path: "/sync/snapshot", user: "alice",
			body: fmt.Sprintf(`{"client_id":"c1","cursor":{"checkpoint":%d,"table_idx":-1,"after_id":""},%s}`, cp, s)}, 400, "bad_request", "table_idx"},
		{"push too large", request{path: "/sync/push", user: "alice", body: `{"client_id":"c1","changes":` + manyRecords + `,` + s + `}`}, 400, "bad_request", "1000"},
		{"push too large, bad records counted", request{path: "/sync/push", user: "alice",
			body: `{"client_id":"c1","changes":[` + strings.Repeat(`null,`, 1000) + `null],` + s + `}`}, 400, "bad_request", "1001 records"},

		// Unknown clients: another user's client id is unknown too.
		{"pull unknown client", request{path: "/sync/pull", user: "alice", body: `{"client_id":"ghost","checkpoint":0,` + s + `}`}, 404, "client_not_registered", "ghost"},
		{"push unknown client", request{path: "/sync/push", user: "alice", body: `{"client_id":"ghost","changes":[],` + s + `}`}, 404, "client_not_registered", "ghost"},
		{"snapshot unknown client", request{path: "/sync/snapshot", user: "alice", body: `{"client_id":"ghost",` + s + `}`}, 404, "client_not_registered", "ghost"},
		{"someone else's client", request{path: "/sync/pull", user: "bob", body: pullBody}, 404, "client_not_registered", "c1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			body := wantError(t, serve(t, e.h, c.req), c.status, c.code)
			if !strings.Contains(body.Message, c.message) {
				t.Errorf("message %q does not contain %q", body.Message, c.message)
			}
		})
	}
}

// TestContentTypes checks the Content-Type values that are accepted.
func TestContentTypes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	wantOK[synchro.RegisterResponse](t, serve(t, e.h, request{path: "/sync/register", user: "alice",
		body: `{"client_id":"c1","platform":"ios","app_version":"1.0.0"}`}))
	for _, ct := range []string{"-", "application/json", "application/json; charset=UTF-8", "Application/JSON;charset=utf8", "application/vnd.synchro+json"} {
		rec := serve(t, e.h, request{path: "/sync/pull", user: "alice", ctype: ct, body: `{"client_id":"c1","checkpoint":0,` + e.schema() + `}`})
		if rec.Code != http.StatusOK {
			t.Errorf("Content-Type %q: status %d, want 200; %s", ct, rec.Code, rec.Body)
		}
	}
}

// TestSchemaMismatch checks that every endpoint refusing a client's schema
// answers 409 with the server's contract.
func TestSchemaMismatch(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	wantOK[synchro.RegisterResponse](t, serve(t, e.h, request{path: "/sync/register", user: "alice",
		body: `{"client_id":"c1","platform":"ios","app_version":"1.0.0"}`}))
	stale := fmt.Sprintf(`"schema_version":%d,"schema_hash":"0000"`, e.ver)
	for _, c := range []struct{ path, body string }{
		{"/sync/register", `{"client_id":"c2","platform":"ios","app_version":"1.0.0",` + stale + `}`},
		{"/sync/push", `{"client_id":"c1","changes":[{"id":"x","table_name":"notes","operation":"nope"}],` + stale + `}`}, // every record bad
		{"/sync/pull", `{"client_id":"c1","checkpoint":0,` + stale + `}`},
		{"/sync/pull", `{"client_id":"c1","checkpoint":0}`}, // no contract: pull needs it
		{"/sync/push", `{"client_id":"c1","changes":[],` + stale + `}`},
		{"/sync/snapshot", `{"client_id":"c1","schema_version":99,"schema_hash":"` + e.hash + `"}`},
	} {
		body := wantError(t, serve(t, e.h, request{path: c.path, user: "alice", body: c.body}), http.StatusConflict, "schema_mismatch")
		if body.SchemaVersion == nil || *body.SchemaVersion != e.ver || body.SchemaHash == nil || *body.SchemaHash != e.hash {
			t.Errorf("%s: schema (%v, %v), want the server's (%d, %s)", c.path, body.SchemaVersion, body.SchemaHash, e.ver, e.hash)
		}
		// The SDKs read these two (wantError checked the JSON types).
		if body.ServerSchemaVersion == nil || *body.ServerSchemaVersion != e.ver || body.ServerSchemaHash == nil || *body.ServerSchemaHash != e.hash {
			t.Errorf("%s: server schema (%v, %v), want (%d, %s)", c.path, body.ServerSchemaVersion, body.ServerSchemaHash, e.ver, e.hash)
		}
	}
}

// TestUpgradeRequired checks 426 for an app version below
// MinClientVersion.
func TestUpgradeRequired(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *synchro.Config, _ *pgtest.Database) { c.MinClientVersion = "2.0.0" })
	for _, v := range []string{"1.9.9", "", "banana"} {
		body := wantError(t, serve(t, e.h, request{path: "/sync/register", user: "alice",
			body: `{"client_id":"c1","platform":"ios","app_version":"` + v + `"}`}), http.StatusUpgradeRequired, "upgrade_required")
		if !strings.Contains(body.Message, "upgrade") || body.Error != "2.0.0" {
			t.Errorf("app version %q: message %q, error %q (want the minimum 2.0.0)", v, body.Message, body.Error)
		}
	}
	wantOK[synchro.RegisterResponse](t, serve(t, e.h, request{path: "/sync/register", user: "alice",
		body: `{"client_id":"c1","platform":"ios","app_version":"2.0.0"}`}))
}

// TestBodyTooLarge checks the body cap, with and without a Content-Length.
func TestBodyTooLarge(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	const limit = 256
	h := e.handler(t, func(c *synchrohttp.Config) { c.MaxBodyBytes = limit })
	wantOK[synchro.RegisterResponse](t, serve(t, h, request{path: "/sync/register", user: "alice",
		body: `{"client_id":"c1","platform":"ios","app_version":"1.0.0"}`}))
	pad := func(n int) string { // a pull body of exactly n bytes
		b := `{"client_id":"c1","checkpoint":0,` + e.schema() + `}`
		return b + strings.Repeat(" ", n-len(b))
	}

	if rec := serve(t, h, request{path: "/sync/pull", user: "alice", body: pad(limit)}); rec.Code != http.StatusOK {
		t.Errorf("body of exactly the limit: %d %s", rec.Code, rec.Body)
	}
	wantError(t, serve(t, h, request{path: "/sync/pull", user: "alice", body: pad(limit + 1)}), http.StatusRequestEntityTooLarge, "body_too_large")

	// Without a Content-Length (chunked), the cap applies while reading.
	for _, n := range []int{limit + 1, 10 * limit} {
		r := httptest.NewRequest(http.MethodPost, "/sync/pull", io.MultiReader(strings.NewReader(pad(n))))
		r.ContentLength = -1
		r.Header.Set(userHeader, "alice")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		wantError(t, rec, http.StatusRequestEntityTooLarge, "body_too_large")
	}
	// The default cap is 4 MiB.
	big := `{"client_id":"c1","platform":"` + strings.Repeat("x", synchrohttp.DefaultMaxBodyBytes) + `"}`
	wantError(t, serve(t, e.h, request{path: "/sync/register", user: "alice", body: big}), http.StatusRequestEntityTooLarge, "body_too_large")
}

// TestUnavailableLockTimeout checks 503 with Retry-After for a transient
// database failure: the push cannot lock its client row within the
// session's lock_timeout while another transaction holds it.
func TestUnavailableLockTimeout(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *synchro.Config, db *pgtest.Database) {
		u, err := url.Parse(db.DSN)
		if err != nil {
			t.Fatal(err)
		}
		q := u.Query()
		q.Set("lock_timeout", "200ms") // sent as a run-time parameter
		u.RawQuery = q.Encode()
		c.DB = openPool(t, u.String())
	})
	h := e.handler(t, func(c *synchrohttp.Config) { c.RetryAfter = 1500 * time.Millisecond })
	wantOK[synchro.RegisterResponse](t, serve(t, h, request{path: "/sync/register", user: "alice",
		body: `{"client_id":"c1","platform":"ios","app_version":"1.0.0"}`}))
	pushBody := `{"client_id":"c1","changes":[],` + e.schema() + `}`

	ctx := deadline(t)
	tx, err := e.db.Super.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback() }()
	if _, err := tx.ExecContext(ctx, `SELECT 1 FROM synchro.clients WHERE client_id = 'c1' FOR UPDATE`); err != nil {
		t.Fatal(err)
	}
	rec := serve(t, h, request{path: "/sync/push", user: "alice", body: pushBody})
	body := wantError(t, rec, http.StatusServiceUnavailable, "unavailable")
	if got := rec.Header().Get("Retry-After"); got != "2" {
		t.Errorf("Retry-After %q, want 2 (1.5s rounded up)", got)
	}
	if strings.Contains(body.Message, "lock") || strings.Contains(body.Message, "55P03") {
		t.Errorf("503 message reveals the cause: %q", body.Message)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	wantOK[synchro.PushResponse](t, serve(t, h, request{path: "/sync/push", user: "alice", body: pushBody}))
	if !logged(t, e.logs, "WARN", "55P03") {
		t.Errorf("the 503 was not logged at WARN with its cause: %v", e.logs.entries(t))
	}
}

// TestUnavailableNoConnections checks 503 when the database refuses new
// connections (too many connections, SQLSTATE 53300), and the default
// Retry-After.
func TestUnavailableNoConnections(t *testing.T) {
	t.Parallel()
	var pool *sql.DB
	e := newEnv(t, func(c *synchro.Config, db *pgtest.Database) {
		// The application role: the database's connection limit does not
		// apply to superusers.
		pool = openPool(t, db.AppDSN)
		c.DB = pool
	})
	pool.SetMaxIdleConns(0) // every request opens a connection
	pgtest.Exec(t, e.db.Super, `ALTER DATABASE `+pgx.Identifier{e.db.Name}.Sanitize()+` CONNECTION LIMIT 0`)
	rec := serve(t, e.h, request{path: "/sync/pull", user: "alice", body: `{"client_id":"c1","checkpoint":0,` + e.schema() + `}`})
	wantError(t, rec, http.StatusServiceUnavailable, "unavailable")
	if got := rec.Header().Get("Retry-After"); got != "5" {
		t.Errorf("Retry-After %q, want the default 5", got)
	}
	if !logged(t, e.logs, "WARN", "53300") {
		t.Errorf("the 503 was not logged at WARN with its cause: %v", e.logs.entries(t))
	}
	pgtest.Exec(t, e.db.Super, `ALTER DATABASE `+pgx.Identifier{e.db.Name}.Sanitize()+` CONNECTION LIMIT -1`)
}

// TestDeadlineExceeded checks that a request whose deadline passed is 503.
func TestDeadlineExceeded(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx, cancel := context.WithDeadline(t.Context(), time.Now().Add(-time.Second))
	defer cancel()
	rec := serve(t, e.h, request{path: "/sync/pull", user: "alice", ctx: ctx, body: `{"client_id":"c1","checkpoint":0,` + e.schema() + `}`})
	wantError(t, rec, http.StatusServiceUnavailable, "unavailable")
	if rec.Header().Get("Retry-After") != "5" {
		t.Errorf("Retry-After %q", rec.Header().Get("Retry-After"))
	}
}

// TestClientCanceled checks that a request the client abandoned is logged
// at Debug only, not as a server error.
func TestClientCanceled(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	rec := serve(t, e.h, request{path: "/sync/pull", user: "alice", ctx: ctx, body: `{"client_id":"c1","checkpoint":0,` + e.schema() + `}`})
	wantError(t, rec, 499, "canceled")
	for _, entry := range e.logs.entries(t) {
		if entry["level"] != "DEBUG" {
			t.Errorf("canceled request logged above Debug: %v", entry)
		}
	}
	if !logged(t, e.logs, "DEBUG", "context canceled") {
		t.Errorf("the cancellation was not logged at Debug: %v", e.logs.entries(t))
	}
}

// TestInternalErrorHidden checks that an unexpected failure is 500 without
// its detail, which is logged at Error.
func TestInternalErrorHidden(t *testing.T) {
	t.Parallel()
	var pool *sql.DB
	e := newEnv(t, func(c *synchro.Config, db *pgtest.Database) {
		pool = openPool(t, db.DSN)
		c.DB = pool
	})
	if err := pool.Close(); err != nil {
		t.Fatal(err)
	}
	rec := serve(t, e.h, request{path: "/sync/pull", user: "alice", body: `{"client_id":"c1","checkpoint":0,` + e.schema() + `}`})
	body := wantError(t, rec, http.StatusInternalServerError, "internal")
	if strings.Contains(body.Message, "closed") || strings.Contains(body.Message, "sql") || strings.Contains(body.Message, "synchro") {
		t.Errorf("500 message reveals the cause: %q", body.Message)
	}
	if rec.Header().Get("Retry-After") != "" {
		t.Error("Retry-After on a 500")
	}
	if !logged(t, e.logs, "ERROR", "database is closed") {
		t.Errorf("the cause was not logged at Error: %v", e.logs.entries(t))
	}
}

// TestGarbageNeverFails5xx sends malformed and hostile bodies to every POST
// endpoint: each is answered with a JSON 4xx, never a 5xx or a panic.
func TestGarbageNeverFails5xx(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	wantOK[synchro.RegisterResponse](t, serve(t, e.h, request{path: "/sync/register", user: "alice",
		body: `{"client_id":"c1","platform":"ios","app_version":"1.0.0"}`}))
	s := e.schema()
	snap := wantOK[synchro.SnapshotResponse](t, serve(t, e.h, request{path: "/sync/snapshot", user: "alice", body: `{"client_id":"c1",` + s + `}`}))
	cursor := func(after string) string {
		a, _ := json.Marshal(after)
		return fmt.Sprintf(`{"client_id":"c1","cursor":{"checkpoint":%d,"table_idx":0,"after_id":%s},%s}`, snap.Checkpoint, a, s)
	}
	bodies := []string{
		cursor("\x00"), cursor(strings.Repeat("z", 100000)), cursor("\xff"),
		"", "{", "}", "{}", "[]", "null", "true", "0", `""`, "\x00", "\xff\xfe", `{"client_id":"\ud800"}`,
		`{"client_id":null}`, `{"client_id":"c1","client_id":"c2"}`, `{"cursor":null}`, `{"changes":null}`,
		`{"client_id":"c1",` + s + `,"changes":[null]}`,
		`{"client_id":"c1",` + s + `,"changes":[{"id":"a","table_name":"notes","operation":"create","data":null,"client_updated_at":"2020-01-01T00:00:00Z"}]}`,
		`{"client_id":"c1",` + s + `,"changes":[{"id":"","table_name":"","operation":"","data":[1],"client_updated_at":"0001-01-01T00:00:00Z"}]}`,
		`{"client_id":"c1","checkpoint":9223372036854775807,` + s + `}`,
		`{"client_id":"c1","limit":-5,"known_buckets":["` + strings.Repeat("b", 5000) + `"],` + s + `}`,
		`{"client_id":"c1","cursor":{"checkpoint":-1,"table_idx":2147483647,"after_id":"\u0000"},` + s + `}`,
		`{"client_id":"c1","tables":["notes","notes",""],` + s + `}`,
		`{"client_id":"c1\u0000",` + s + `}`,
		`{"client_id":"c1","platform":"\u0000","app_version":"1.0.0","client_name":"\u0000"}`,
		`{"client_id":"c1","checkpoint":0,"known_buckets":["user:alice\u0000"],` + s + `}`,
		`{"client_id":"c1","checkpoint":0,"tables":["notes\u0000"],` + s + `}`,
		strings.Repeat("[", 100000),
		`{"a":` + strings.Repeat(`{"a":`, 20000) + `1` + strings.Repeat("}", 20001),
	}
	for _, path := range []string{"/sync/register", "/sync/pull", "/sync/push", "/sync/snapshot"} {
		for _, b := range bodies {
			rec := serve(t, e.h, request{path: path, user: "alice", body: b})
			if rec.Code >= 500 || rec.Code == http.StatusOK && strings.HasPrefix(b, "{\"a\"") {
				t.Errorf("%s %.60q: status %d %s", path, b, rec.Code, rec.Body)
			}
			checkHeaders(t, rec)
			if !json.Valid(rec.Body.Bytes()) {
				t.Errorf("%s %.60q: body is not JSON: %s", path, b, rec.Body)
			}
		}
	}
}

// logged reports whether a log record at level mentions text in its error.
func logged(t *testing.T, logs *logBuffer, level, text string) bool {
	t.Helper()
	for _, entry := range logs.entries(t) {
		if msg, _ := entry["error"].(string); entry["level"] == level && strings.Contains(msg, text) {
			return true
		}
	}
	return false
}

// TestUnauthenticatedLoggedAtDebug checks that a 401 is logged at Debug, as
// documented: failed logins are routine and must not flood an Info log.
func TestUnauthenticatedLoggedAtDebug(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	rec := serve(t, e.h, request{path: "/sync/pull", user: "fail", body: `{}`})
	if rec.Code != http.StatusUnauthorized {
		t.Fatalf("status %d, want 401", rec.Code)
	}
	entries := e.logs.entries(t)
	if len(entries) == 0 {
		t.Fatal("the 401 was not logged")
	}
	for _, entry := range entries {
		if entry["level"] != "DEBUG" {
			t.Errorf("401 logged at %v, want DEBUG: %v", entry["level"], entry)
		}
	}
}
