package synchrohttp_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/synchrosync/synchro"
	"github.com/synchrosync/synchro/internal/pgtest"
)

// These tests send requests shaped as the SDKs send them (see
// shared/design/sdk-wire.md) and check the answers the SDKs need.

// register registers client of user and fails the test otherwise.
func (e *env) register(t *testing.T, user, client string) {
	t.Helper()
	wantOK[synchro.RegisterResponse](t, serve(t, e.h, request{path: "/sync/register", user: user,
		body: `{"client_id":"` + client + `","platform":"ios","app_version":"1.0.0"}`}))
}

// push sends records (the text of a JSON array) as alice's client c1 and
// returns the 200 response.
func (e *env) push(t *testing.T, records string) *synchro.PushResponse {
	t.Helper()
	return wantOK[synchro.PushResponse](t, serve(t, e.h, request{path: "/sync/push", user: "alice",
		body: `{"client_id":"c1",` + e.schema() + `,"changes":` + records + `}`}))
}

// note returns the body of note id and whether the row is live; found is
// false when there is no row.
func (e *env) note(t *testing.T, id string) (body string, live, found bool) {
	t.Helper()
	var b sql.NullString
	err := e.db.Super.QueryRowContext(t.Context(), `SELECT body, deleted_at IS NULL FROM notes WHERE id = $1`, id).Scan(&b, &live)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, false
	}
	if err != nil {
		t.Fatalf("reading note %s: %v", id, err)
	}
	return b.String, live, true
}

// results indexes push results by record id.
func results(rs []synchro.PushResult) map[string]synchro.PushResult {
	m := make(map[string]synchro.PushResult, len(rs))
	for _, r := range rs {
		m[r.ID] = r
	}
	return m
}

// TestPushTimestampForms checks that every accepted timestamp form reaches
// the engine as the instant it names: an update whose base_updated_at
// equals the row's updated-at wins even with an old client_updated_at (so
// the base was read exactly), and an update without a base wins with a
// client_updated_at after the row's.
func TestPushTimestampForms(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.register(t, "alice", "c1")
	const old = `"client_updated_at":"2020-01-01T00:00:00.000Z"`
	bases := map[string]string{ // id -> base_updated_at; every row was updated at 2026-12-02 04:20:23.123 UTC
		"b-rfc3339-ms":     "2026-12-02T04:20:23.123Z",
		"b-rfc3339-offset": "2026-12-02T05:50:23.123+01:30",
		"b-sqlite-ms":      "2026-12-02 04:20:23.123",
		"b-t-no-zone-ms":   "2026-12-02T04:20:23.123",
		"b-sqlite-us":      "2026-12-02 04:20:23.123000",
	}
	wholeBases := map[string]string{ // rows updated at 2026-12-02 04:20:23 UTC
		"w-rfc3339":   "2026-12-02T04:20:23Z",
		"w-sqlite":    "2026-12-02 04:20:23",
		"w-t-no-zone": "2026-12-02T04:20:23",
	}
	clients := map[string]string{ // id -> client_updated_at after the row's 2020 updated-at
		"c-rfc3339-ms":   "2026-12-02T04:20:23.123Z",
		"c-rfc3339":      "2026-12-02T04:20:23Z",
		"c-offset":       "2026-12-02T04:20:23+09:00",
		"c-sqlite":       "2026-12-02 04:20:23",
		"c-sqlite-ms":    "2026-12-02 04:20:23.123",
		"c-t-no-zone":    "2026-12-02T04:20:23",
		"c-t-no-zone-ms": "2026-12-02T04:20:23.5",
	}
	var records []string
	insert := func(id, updatedAt string) {
		pgtest.Exec(t, e.db.Super, `INSERT INTO notes (id, user_id, body, updated_at) VALUES ($1, 'alice', 'old', $2)`, id, updatedAt)
	}
	for id, base := range bases {
		insert(id, "2026-12-02 04:20:23.123+00")
		records = append(records, `{"id":"`+id+`","table_name":"notes","operation":"update","data":{"body":"new"},`+old+`,"base_updated_at":"`+base+`"}`)
	}
	for id, base := range wholeBases {
		insert(id, "2026-12-02 04:20:23+00")
		records = append(records, `{"id":"`+id+`","table_name":"notes","operation":"update","data":{"body":"new"},`+old+`,"base_updated_at":"`+base+`"}`)
	}
	for id, at := range clients {
		insert(id, "2020-01-01 00:00:00+00")
		records = append(records, `{"id":"`+id+`","table_name":"notes","operation":"update","data":{"body":"new"},"client_updated_at":"`+at+`"}`)
	}
	// A create with each client_updated_at form.
	for id, at := range clients {
		records = append(records, `{"id":"new-`+id+`","table_name":"notes","operation":"create","data":{"body":"new"},"client_updated_at":"`+at+`"}`)
	}

	resp := e.push(t, "["+strings.Join(records, ",")+"]")
	if len(resp.Rejected) != 0 {
		t.Errorf("rejected: %+v", resp.Rejected)
	}
	if len(resp.Accepted) != len(records) {
		t.Errorf("%d accepted, want %d", len(resp.Accepted), len(records))
	}
	for id, r := range results(resp.Accepted) {
		if r.Status != synchro.PushStatusApplied {
			t.Errorf("%s: %+v, want applied", id, r)
		}
		if body, _, _ := e.note(t, id); body != "new" {
			t.Errorf("%s: body %q, want new", id, body)
		}
	}
}

// TestPushOneBadRecord checks that one record with a bad timestamp,
// operation or data, among good records, is rejected on its own and the
// others are applied.
func TestPushOneBadRecord(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.register(t, "alice", "c1")
	const at = `"client_updated_at":"2030-01-01T00:00:00.000Z"`
	cases := []struct {
		name   string
		bad    string // the bad record, with id "<name>-bad"
		reason string
		field  string // named by the message
	}{
		{"client-time", `"table_name":"notes","operation":"create","data":{"body":"x"},"client_updated_at":"02/12/2026 04:20"`,
			"invalid_data", "client_updated_at"},
		{"base-time", `"table_name":"notes","operation":"update","data":{"body":"x"},` + at + `,"base_updated_at":"2026-12-02 25:00:00"`,
			"invalid_data", "base_updated_at"},
		{"operation", `"table_name":"notes","operation":"upsert","data":{"body":"x"},` + at,
			"invalid_operation", "operation"},
		{"data", `"table_name":"notes","operation":"create","data":"body=x",` + at,
			"invalid_data", "data"},
		{"data-null", `"table_name":"notes","operation":"update","data":null,` + at,
			"invalid_data", "data"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// Two existing rows: one updated, one deleted, by good records.
			pgtest.Exec(t, e.db.Super, `INSERT INTO notes (id, user_id, body, updated_at) VALUES ($1, 'alice', 'old', '2020-01-01'), ($2, 'alice', 'old', '2020-01-01')`,
				c.name+"-upd", c.name+"-del")
			if c.name == "base-time" {
				pgtest.Exec(t, e.db.Super, `INSERT INTO notes (id, user_id, body) VALUES ($1, 'alice', 'old')`, c.name+"-bad")
			}
			records := `[
				{"id":"` + c.name + `-new","table_name":"notes","operation":"create","data":{"body":"created"},` + at + `},
				{"id":"` + c.name + `-bad",` + c.bad + `},
				{"id":"` + c.name + `-upd","table_name":"notes","operation":"update","data":{"body":"updated"},` + at + `,"base_updated_at":"2020-01-01 00:00:00"},
				{"id":"` + c.name + `-del","table_name":"notes","operation":"delete","data":null,` + at + `,"base_updated_at":null}]`
			resp := e.push(t, records)
			if len(resp.Rejected) != 1 {
				t.Fatalf("rejected %+v, want the bad record only", resp.Rejected)
			}
			r := resp.Rejected[0]
			if r.ID != c.name+"-bad" || r.TableName != "notes" || r.Status != synchro.PushStatusRejectedTerminal ||
				r.ReasonCode != c.reason || !strings.Contains(r.Message, "changes[1]."+c.field) {
				t.Errorf("rejected %+v, want %s-bad %s naming changes[1].%s", r, c.name, c.reason, c.field)
			}
			if len(resp.Accepted) != 3 {
				t.Errorf("accepted %+v, want the three good records", resp.Accepted)
			}
			if body, _, _ := e.note(t, c.name+"-new"); body != "created" {
				t.Errorf("create: body %q", body)
			}
			if body, _, _ := e.note(t, c.name+"-upd"); body != "updated" {
				t.Errorf("update: body %q", body)
			}
			if _, live, found := e.note(t, c.name+"-del"); !found || live {
				t.Errorf("delete: found %v, live %v; want soft-deleted", found, live)
			}
			if body, _, found := e.note(t, c.name+"-bad"); found && body != "old" {
				t.Errorf("the bad record was applied: body %q", body)
			}
		})
	}
}

// TestPushAllBad checks a push whose every record is rejected by the
// handler: 200 with each record's result, and the engine's client and
// schema checks still apply.
func TestPushAllBad(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.register(t, "alice", "c1")
	records := `[null, 7, {"id":"a","table_name":"notes","operation":"merge"},
		{"id":"b","table_name":"notes","operation":"create","data":[],"client_updated_at":"2026-12-02T04:20:23Z"},
		{"id":"c","table_name":"notes","operation":"delete","client_updated_at":"noon"}]`
	resp := e.push(t, records)
	if len(resp.Accepted) != 0 || len(resp.Rejected) != 5 {
		t.Fatalf("accepted %+v, rejected %+v; want 5 rejected", resp.Accepted, resp.Rejected)
	}
	wantReasons := []string{"invalid_data", "invalid_data", "invalid_operation", "invalid_data", "invalid_data"}
	wantIDs := []string{"", "", "a", "b", "c"}
	for i, r := range resp.Rejected { // in request order
		if r.ReasonCode != wantReasons[i] || r.ID != wantIDs[i] || r.Status != synchro.PushStatusRejectedTerminal ||
			!strings.Contains(r.Message, fmt.Sprintf("changes[%d]", i)) {
			t.Errorf("rejected[%d] = %+v, want id %q %s", i, r, wantIDs[i], wantReasons[i])
		}
	}
	if resp.SchemaVersion != e.ver || resp.SchemaHash != e.hash || resp.ServerTime.IsZero() {
		t.Errorf("response %+v lacks the server's schema or time", resp)
	}

	wantError(t, serve(t, e.h, request{path: "/sync/push", user: "alice",
		body: `{"client_id":"ghost",` + e.schema() + `,"changes":` + records + `}`}), http.StatusNotFound, "client_not_registered")
	wantError(t, serve(t, e.h, request{path: "/sync/push", user: "alice",
		body: `{"client_id":"c1","schema_version":1,"schema_hash":"old","changes":` + records + `}`}), http.StatusConflict, "schema_mismatch")
}

// TestAppVersionHeader checks X-App-Version on every endpoint: 426 with
// the minimum version in "error", before authentication.
func TestAppVersionHeader(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *synchro.Config, _ *pgtest.Database) { c.MinClientVersion = "2.0.0" })
	wantOK[synchro.RegisterResponse](t, serve(t, e.h, request{path: "/sync/register", user: "alice",
		body: `{"client_id":"c1","platform":"ios","app_version":"2.0.0"}`}))
	version := func(v string) map[string]string { return map[string]string{"X-App-Version": v} }
	pull := `{"client_id":"c1","checkpoint":0,` + e.schema() + `}`

	for _, c := range []struct {
		name string
		req  request
	}{
		{"GET schema", request{method: http.MethodGet, path: "/sync/schema", user: "alice", header: version("1.9.9")}},
		{"GET tables", request{method: http.MethodGet, path: "/sync/tables", user: "alice", header: version("1.0")}},
		{"HEAD tables", request{method: http.MethodHead, path: "/sync/tables", user: "alice", header: version("1.0.0")}},
		{"POST pull", request{path: "/sync/pull", user: "alice", body: pull, header: version("1.9.9")}},
		{"POST push", request{path: "/sync/push", user: "alice", body: `{"client_id":"c1","changes":[],` + e.schema() + `}`, header: version("2.0.0-beta")}},
		{"POST snapshot, not a version", request{path: "/sync/snapshot", user: "alice", body: `{"client_id":"c1",` + e.schema() + `}`, header: version("banana")}},
		{"register, body version fine", request{path: "/sync/register", user: "alice",
			body: `{"client_id":"c2","platform":"ios","app_version":"3.0.0"}`, header: version("1.0.0")}},
		{"before authentication", request{path: "/sync/pull", body: pull, header: version("1.0.0")}},
		{"before authentication, GET", request{method: http.MethodGet, path: "/sync/schema", user: "fail", header: version("1.0.0")}},
	} {
		rec := serve(t, e.h, c.req)
		if c.req.method == http.MethodHead {
			if rec.Code != http.StatusUpgradeRequired {
				t.Errorf("%s: status %d, want 426", c.name, rec.Code)
			}
			continue
		}
		body := wantError(t, rec, http.StatusUpgradeRequired, "upgrade_required")
		if body.Error != "2.0.0" || !strings.Contains(body.Message, "upgrade") {
			t.Errorf("%s: error %q, message %q; want error 2.0.0", c.name, body.Error, body.Message)
		}
	}

	// At or above the minimum, absent or blank: served.
	for _, v := range []string{"2.0.0", "v2.1", "10.0.0", "", "  "} {
		h := version(v)
		wantOK[synchro.SchemaResponse](t, serve(t, e.h, request{method: http.MethodGet, path: "/sync/schema", user: "alice", header: h}))
		wantOK[synchro.PullResponse](t, serve(t, e.h, request{path: "/sync/pull", user: "alice", body: pull, header: h}))
	}
	// The header does not replace register's check of the body.
	body := wantError(t, serve(t, e.h, request{path: "/sync/register", user: "alice",
		body: `{"client_id":"c3","platform":"ios","app_version":"1.0.0"}`, header: version("2.0.0")}), http.StatusUpgradeRequired, "upgrade_required")
	if body.Error != "2.0.0" {
		t.Errorf("register: error %q, want 2.0.0", body.Error)
	}

	// Without a minimum, any header passes.
	free := newEnv(t, nil)
	wantOK[synchro.SchemaResponse](t, serve(t, free.h, request{method: http.MethodGet, path: "/sync/schema", user: "alice", header: version("banana")}))
}

// TestStaleClient checks the answers to a client Hooks.OnStaleClient
// refuses: pull 200 snapshot_required "stale_client", push 200 with every
// record rejected_terminal "stale_client" and nothing applied.
func TestStaleClient(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *synchro.Config, _ *pgtest.Database) {
		c.Hooks.OnStaleClient = func(context.Context, string, time.Time) bool { return false }
	})
	e.register(t, "alice", "c1")
	snap := wantOK[synchro.SnapshotResponse](t, serve(t, e.h, request{path: "/sync/snapshot", user: "alice", body: `{"client_id":"c1",` + e.schema() + `}`}))
	pgtest.Exec(t, e.db.Super, `INSERT INTO notes (id, user_id, body) VALUES ('n1', 'alice', 'server')`)
	pgtest.Exec(t, e.db.Super, `UPDATE synchro.clients SET last_sync_at = now() - interval '30 days' WHERE client_id = 'c1'`)

	// The SDK pushes first: every record is terminal, so it goes on to pull.
	rec := serve(t, e.h, request{path: "/sync/push", user: "alice", body: `{"client_id":"c1",` + e.schema() + `,"changes":[
		{"id":"n2","table_name":"notes","operation":"create","data":{"body":"device"},"client_updated_at":"2030-01-01T00:00:00.000Z","base_updated_at":null},
		{"id":"n3","table_name":"notes","operation":"create","data":{"body":"device"},"client_updated_at":"later"},
		{"id":"n1","table_name":"notes","operation":"update","data":{"body":"device"},"client_updated_at":"2030-01-01T00:00:00.000Z"}]}`})
	push := wantOK[synchro.PushResponse](t, rec)
	if len(push.Accepted) != 0 || len(push.Rejected) != 3 || push.Checkpoint != 0 ||
		push.SchemaVersion != e.ver || push.SchemaHash != e.hash || push.ServerTime.IsZero() {
		t.Fatalf("push %+v, want 3 rejected, checkpoint 0 and the server's schema and time", push)
	}
	if !strings.Contains(rec.Body.String(), `"accepted":[]`) {
		t.Errorf("accepted is not an empty array: %s", rec.Body)
	}
	want := []struct{ id, reason string }{{"n3", "invalid_data"}, {"n2", "stale_client"}, {"n1", "stale_client"}}
	for i, r := range push.Rejected {
		if r.ID != want[i].id || r.ReasonCode != want[i].reason || r.Status != synchro.PushStatusRejectedTerminal || r.TableName != "notes" {
			t.Errorf("rejected[%d] = %+v, want %s %s terminal", i, r, want[i].id, want[i].reason)
		}
		if r.ReasonCode == "stale_client" && !strings.Contains(r.Message, "snapshot") {
			t.Errorf("rejected[%d] message %q does not mention the snapshot", i, r.Message)
		}
	}
	if _, _, found := e.note(t, "n2"); found {
		t.Error("the stale client's create was applied")
	}
	if body, _, _ := e.note(t, "n1"); body != "server" {
		t.Errorf("the stale client's update was applied: %q", body)
	}

	// Then it pulls, and is told to snapshot again.
	rec = serve(t, e.h, request{path: "/sync/pull", user: "alice",
		body: fmt.Sprintf(`{"client_id":"c1","checkpoint":%d,%s}`, snap.Checkpoint, e.schema())})
	pull := wantOK[synchro.PullResponse](t, rec)
	if !pull.SnapshotRequired || pull.SnapshotReason != "stale_client" || pull.Checkpoint != snap.Checkpoint ||
		len(pull.Changes) != 0 || len(pull.Deletes) != 0 || pull.HasMore || pull.SchemaVersion != e.ver || pull.SchemaHash != e.hash {
		t.Errorf("pull %+v, want snapshot_required stale_client at checkpoint %d", pull, snap.Checkpoint)
	}
	for _, key := range []string{`"changes":[]`, `"deletes":[]`} {
		if !strings.Contains(rec.Body.String(), key) {
			t.Errorf("pull body lacks %s: %s", key, rec.Body)
		}
	}
	// A push with no records answers the same way.
	empty := e.push(t, `[]`)
	if len(empty.Accepted) != 0 || len(empty.Rejected) != 0 || empty.SchemaHash != e.hash {
		t.Errorf("empty push of a stale client: %+v", empty)
	}
}

// TestKotlinAndSwiftShapes checks requests with explicit nulls (Kotlin)
// and omitted fields (Swift), and unknown fields, on every endpoint.
func TestKotlinAndSwiftShapes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	headers := map[string]string{"Content-Type": "application/json; charset=utf-8", "Accept": "application/json", "X-App-Version": "1.4.2"}
	call := func(path, body string) request {
		return request{path: path, user: "alice", body: body, header: headers}
	}
	s := e.schema()
	wantOK[synchro.RegisterResponse](t, serve(t, e.h, call("/sync/register",
		`{"client_id":"k1","client_name":null,"platform":"android","app_version":"1.4.2","schema_version":0,"schema_hash":"","device":{"model":"x"}}`)))
	snap := wantOK[synchro.SnapshotResponse](t, serve(t, e.h, call("/sync/snapshot", `{"client_id":"k1","cursor":null,"limit":100,`+s+`,"since":null}`)))
	wantOK[synchro.PullResponse](t, serve(t, e.h, call("/sync/pull",
		fmt.Sprintf(`{"client_id":"k1","checkpoint":%d,"tables":null,"limit":100,"known_buckets":null,%s,"sdk":"kotlin"}`, snap.Checkpoint, s))))
	wantOK[synchro.SchemaResponse](t, serve(t, e.h, request{method: http.MethodGet, path: "/sync/schema", user: "alice", header: headers}))

	now := time.Now().UTC().Format("2006-01-02T15:04:05.000Z")
	resp := wantOK[synchro.PushResponse](t, serve(t, e.h, call("/sync/push", `{"client_id":"k1",`+s+`,"batch":1,"changes":[
		{"id":"k","table_name":"notes","operation":"create","data":{"body":"kotlin"},"client_updated_at":"`+now+`","base_updated_at":null,"seq":1},
		{"id":"s","table_name":"notes","operation":"create","data":{"body":"swift"},"client_updated_at":"`+now+`"}]}`)))
	if len(resp.Accepted) != 2 {
		t.Fatalf("push %+v, want both creates applied", resp)
	}
	resp = wantOK[synchro.PushResponse](t, serve(t, e.h, call("/sync/push", `{"client_id":"k1",`+s+`,"changes":[
		{"id":"k","table_name":"notes","operation":"delete","data":null,"client_updated_at":"`+now+`","base_updated_at":null},
		{"id":"s","table_name":"notes","operation":"delete","client_updated_at":"`+now+`"}]}`)))
	if len(resp.Accepted) != 2 {
		t.Fatalf("push %+v, want both deletes applied", resp)
	}
	for _, id := range []string{"k", "s"} {
		if _, live, found := e.note(t, id); !found || live {
			t.Errorf("%s: found %v live %v, want soft-deleted", id, found, live)
		}
	}
}
