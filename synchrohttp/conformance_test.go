package synchrohttp_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/synchrosync/synchro"
	"github.com/synchrosync/synchro/internal/pgtest"
	"github.com/synchrosync/synchro/internal/waltest"
	"github.com/synchrosync/synchro/synchrohttp"
	"github.com/synchrosync/synchro/wal"
)

// This file is the wire conformance suite: requests written as JSON text,
// exactly as the Kotlin and Swift SDKs send them (see
// docs/design/sdk-wire.md of the shared design notes and issue 13), over
// HTTP to a real server (synchrohttp on a real engine, with the WAL
// consumer writing the changelog that pulls read), and assertions on the
// answers decoded as maps: the keys and JSON types the SDKs read. No request
// or response struct of package synchro is used on the device side.
//
// Two device shapes:
//   - kotlin sends explicit nulls ("cursor": null, "tables": null,
//     "known_buckets": null, "data": null on deletes, "base_updated_at":
//     null) and whole local rows;
//   - swift omits every null field of the request and of its records (the
//     rows' own null columns stay in data).
//
// Helpers carry the prefix "conf" (environment) or are methods of
// confDevice.

// confSchema is the application schema of the suite: lists owned by users,
// items below them, a table without deleted_at (tags) and one without
// updated_at (memos).
const confSchema = `
CREATE TABLE lists (
	id         uuid PRIMARY KEY,
	user_id    text NOT NULL,
	name       text NOT NULL,
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now(),
	deleted_at timestamptz
);
CREATE TABLE items (
	id         uuid PRIMARY KEY,
	list_id    uuid NOT NULL REFERENCES lists (id),
	title      text NOT NULL,
	done       boolean NOT NULL DEFAULT false,
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now(),
	deleted_at timestamptz
);
CREATE TABLE tags (
	id         text PRIMARY KEY,
	user_id    text NOT NULL,
	label      text NOT NULL,
	updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE memos (
	id         text PRIMARY KEY,
	user_id    text NOT NULL,
	body       text,
	deleted_at timestamptz
);
`

func confRegistry() []*synchro.TableConfig {
	return []*synchro.TableConfig{
		{TableName: "lists", OwnerColumn: "user_id"},
		{TableName: "items", ParentTable: "lists", ParentFKCol: "list_id", Dependencies: []string{"lists"}},
		{TableName: "tags", OwnerColumn: "user_id"},
		{TableName: "memos", OwnerColumn: "user_id"},
	}
}

// confUUIDSchema has one table whose owner column is a uuid: the only owner
// type of its registry, so the engine canonicalises user ids (decision 6).
const confUUIDSchema = `
CREATE TABLE journals (
	id         text PRIMARY KEY,
	owner_id   uuid NOT NULL,
	body       text,
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now(),
	deleted_at timestamptz
);
`

func confUUIDRegistry() []*synchro.TableConfig {
	return []*synchro.TableConfig{{TableName: "journals", OwnerColumn: "owner_id"}}
}

// Versions of the suite's server and devices.
const (
	confMinVersion = "1.0.0"
	confAppVersion = "1.2.0"
	// confArrival bounds the wait for a change to reach the changelog.
	confArrival = 30 * time.Second
)

// confEnv is a server: a database with the schema, an engine, the WAL
// consumer and synchrohttp behind an httptest.Server.
type confEnv struct {
	// slot is the consumer's replication slot.
	slot   string
	db     *pgtest.Database
	engine *synchro.Engine
	srv    *httptest.Server
	// refused holds the client ids Hooks.OnStaleClient refuses.
	refused sync.Map
}

// confStart starts a server on a new database with schema and tables. The
// engine's pool has a lock_timeout, so that a row locked by another
// transaction makes a request fail with a transient error (503).
func confStart(t *testing.T, schema string, tables []*synchro.TableConfig) *confEnv {
	t.Helper()
	db := pgtest.NewMigratedDatabase(t)
	if _, err := db.Super.ExecContext(t.Context(), schema); err != nil {
		t.Fatalf("creating the schema: %v", err)
	}
	reg := synchro.NewRegistry()
	for _, tc := range tables {
		reg.Register(tc)
	}
	e := &confEnv{db: db}

	u, err := url.Parse(db.DSN)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("lock_timeout", "300ms")
	u.RawQuery = q.Encode()
	cfg := synchro.Config{
		DB:               openPool(t, u.String()),
		Registry:         reg,
		MinClientVersion: confMinVersion,
		Logger:           slog.New(slog.DiscardHandler),
	}
	cfg.Hooks.OnStaleClient = func(_ context.Context, clientID string, _ time.Time) bool {
		_, refused := e.refused.Load(clientID)
		return !refused
	}
	if e.engine, err = synchro.NewEngine(cfg); err != nil {
		t.Fatalf("NewEngine: %v", err)
	}

	slot := "conf_" + strings.ReplaceAll(db.Name, "-", "_")
	e.slot = slot
	c, err := wal.NewConsumer(wal.ConsumerConfig{
		ConnString: db.DSN, SlotName: slot, PublicationName: "pub_" + slot, Registry: reg,
		ChangelogDB: db.Super, StandbyTimeout: 200 * time.Millisecond, Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatalf("NewConsumer: %v", err)
	}
	waltest.Run(t, c, db.Super, slot, confArrival)

	h, err := synchrohttp.New(synchrohttp.Config{
		Engine: e.engine,
		UserID: bearerUser,
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatalf("synchrohttp.New: %v", err)
	}
	e.srv = httptest.NewServer(h)
	t.Cleanup(e.srv.Close)
	return e
}

// bearerUser is the suite's authentication: the bearer token is the user
// id, as in examples/todo.
func bearerUser(r *http.Request) (string, error) {
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || token == "" {
		return "", fmt.Errorf("no bearer token")
	}
	return token, nil
}

// caughtUp waits until the consumer has written every change committed
// before the call to the changelog (and the bucket edges snapshots read).
func (e *confEnv) caughtUp(t *testing.T) {
	t.Helper()
	var target string
	pgtest.QueryRow(t, e.db.Super, `SELECT pg_current_wal_insert_lsn()::text`).Scan(&target)
	pgtest.WaitFor(t, "the consumer to catch up with "+target, confArrival, func() (bool, string) {
		var ok bool
		err := e.db.Super.QueryRow(`SELECT confirmed_flush_lsn >= $2::pg_lsn FROM pg_replication_slots WHERE slot_name = $1`,
			e.slot, target).Scan(&ok)
		return err == nil && ok, fmt.Sprintf("caught up %v, %v", ok, err)
	})
}

// count returns the rows of table matching where.
func (e *confEnv) count(t *testing.T, table, where string, args ...any) int {
	t.Helper()
	return pgtest.Count(t, e.db.Super, `SELECT count(*) FROM `+table+` WHERE `+where, args...)
}

// Device shapes.
const (
	kotlin = "kotlin"
	swift  = "swift"
)

// confDevice is one SDK installation: its shape, user (bearer token),
// client id, contract and pull checkpoint, and the rows it has received
// ("table/id" -> data; deleted records are removed and listed in deleted).
type confDevice struct {
	t          *testing.T
	e          *confEnv
	shape      string
	user       string
	clientID   string
	appVersion string // the X-App-Version header
	ver        int64
	hash       string
	checkpoint int64
	rows       map[string]map[string]any
	deleted    map[string]bool
}

var confClientSeq struct {
	sync.Mutex
	n int
}

// device returns a device of user with shape; it reads the contract's
// version and hash but does not register.
func (e *confEnv) device(t *testing.T, shape, user string) *confDevice {
	t.Helper()
	confClientSeq.Lock()
	confClientSeq.n++
	id := fmt.Sprintf("%s-device-%d", shape, confClientSeq.n)
	confClientSeq.Unlock()
	d := &confDevice{t: t, e: e, shape: shape, user: user, clientID: id, appVersion: confAppVersion,
		rows: map[string]map[string]any{}, deleted: map[string]bool{}}
	status, _, body := d.call(http.MethodGet, "/sync/schema", nil)
	if status != http.StatusOK {
		t.Fatalf("GET /sync/schema: %d %v", status, body)
	}
	d.ver = confNum(t, body, "schema_version")
	d.hash = confStr(t, body, "schema_hash")
	return d
}

// joined returns a registered device that has bootstrapped from a
// snapshot.
func (e *confEnv) joined(t *testing.T, shape, user string) *confDevice {
	t.Helper()
	d := e.device(t, shape, user)
	d.register()
	d.snapshot(100)
	return d
}

// in returns a copy of d that reports to t (a subtest).
func (d *confDevice) in(t *testing.T) *confDevice {
	c := *d
	c.t = t
	return &c
}

// call sends a request as the SDKs do and decodes the answer as a map
// (numbers as json.Number, so that their JSON type shows). body is nil
// (GET), a string (sent as it is) or a value to encode; a swift device
// drops the null fields of a map body and of its "changes" records.
func (d *confDevice) call(method, path string, body any) (int, http.Header, map[string]any) {
	d.t.Helper()
	var payload []byte
	switch b := body.(type) {
	case nil:
	case string:
		payload = []byte(b)
	default:
		if m, ok := b.(map[string]any); ok && d.shape == swift {
			b = swiftShape(m)
		}
		var err error
		if payload, err = json.Marshal(b); err != nil {
			d.t.Fatal(err)
		}
	}
	req, err := http.NewRequestWithContext(d.t.Context(), method, d.e.srv.URL+path, bytes.NewReader(payload))
	if err != nil {
		d.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+d.user)
	req.Header.Set("X-App-Version", d.appVersion)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json; charset=utf-8")
	}
	resp, err := d.e.srv.Client().Do(req)
	if err != nil {
		d.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer func() { _ = resp.Body.Close() }()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		d.t.Fatal(err)
	}
	var out map[string]any
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&out); err != nil {
		d.t.Fatalf("%s %s: status %d, body is not a JSON object: %q", method, path, resp.StatusCode, data)
	}
	return resp.StatusCode, resp.Header, out
}

// swiftShape drops the null fields of a request and of its records.
func swiftShape(m map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range m {
		if v == nil {
			continue
		}
		if recs, ok := v.([]map[string]any); ok && k == "changes" {
			shaped := make([]map[string]any, len(recs))
			for i, r := range recs {
				shaped[i] = swiftShape(r)
			}
			v = shaped
		}
		out[k] = v
	}
	return out
}

// post sends a POST and fails the test unless it is answered 200.
func (d *confDevice) post(path string, body any) map[string]any {
	d.t.Helper()
	status, _, resp := d.call(http.MethodPost, path, body)
	if status != http.StatusOK {
		d.t.Fatalf("%s %s: status %d, want 200; body %v", d.shape, path, status, resp)
	}
	return resp
}

// request returns the fields every request of the device carries, plus
// fields.
func (d *confDevice) request(fields map[string]any) map[string]any {
	m := map[string]any{"client_id": d.clientID, "schema_version": d.ver, "schema_hash": d.hash}
	maps.Copy(m, fields)
	return m
}

// register registers the device and checks the answer's keys and types.
func (d *confDevice) register() map[string]any {
	d.t.Helper()
	platform := "android"
	if d.shape == swift {
		platform = "ios"
	}
	resp := d.post("/sync/register", d.request(map[string]any{
		"client_name": nil, "platform": platform, "app_version": d.appVersion,
	}))
	confStr(d.t, resp, "id")
	confTime(d.t, resp, "server_time")
	confNum(d.t, resp, "checkpoint")
	if confNum(d.t, resp, "schema_version") != d.ver || confStr(d.t, resp, "schema_hash") != d.hash {
		d.t.Errorf("register: schema (%v, %v), want (%d, %s)", resp["schema_version"], resp["schema_hash"], d.ver, d.hash)
	}
	return resp
}

// snapshot pages through a snapshot with limit, replacing the device's
// rows, and returns the pages.
func (d *confDevice) snapshot(limit int) []map[string]any {
	d.t.Helper()
	d.rows, d.deleted = map[string]map[string]any{}, map[string]bool{}
	var cursor any // null: the first page
	var pages []map[string]any
	for range 1000 {
		page := d.post("/sync/snapshot", d.request(map[string]any{"cursor": cursor, "limit": limit}))
		pages = append(pages, page)
		for _, rec := range confRecords(d.t, page, "records") {
			d.rows[confStr(d.t, rec, "table_name")+"/"+confStr(d.t, rec, "id")] = confObj(d.t, rec, "data")
		}
		if !confBool(d.t, page, "has_more") {
			d.checkpoint = confNum(d.t, page, "checkpoint")
			return pages
		}
		cursor = confObj(d.t, page, "cursor") // sent back as decoded
	}
	d.t.Fatal("snapshot: more than 1000 pages")
	return nil
}

// pullOnce sends one pull at the device's checkpoint, applies it, and
// returns the answer and the checkpoint the request carried.
func (d *confDevice) pullOnce() (map[string]any, int64) {
	d.t.Helper()
	sent := d.checkpoint
	resp := d.post("/sync/pull", d.request(map[string]any{
		"checkpoint": sent, "tables": nil, "limit": 100, "known_buckets": nil,
	}))
	if b, _ := resp["snapshot_required"].(bool); b {
		return resp, sent
	}
	for _, rec := range confRecords(d.t, resp, "changes") {
		k := confStr(d.t, rec, "table_name") + "/" + confStr(d.t, rec, "id")
		d.rows[k] = confObj(d.t, rec, "data")
		delete(d.deleted, k)
	}
	for _, del := range confRecords(d.t, resp, "deletes") {
		k := confStr(d.t, del, "table_name") + "/" + confStr(d.t, del, "id")
		delete(d.rows, k)
		d.deleted[k] = true
	}
	d.checkpoint = confNum(d.t, resp, "checkpoint")
	return resp, sent
}

// pullUntil pulls until cond holds for the device's rows, for at most
// confArrival, and returns the checkpoint the last pull request carried.
func (d *confDevice) pullUntil(what string, cond func() bool) int64 {
	d.t.Helper()
	var sent int64
	pgtest.WaitFor(d.t, d.clientID+" pulling until "+what, confArrival, func() (bool, string) {
		var resp map[string]any
		resp, sent = d.pullOnce()
		if b, _ := resp["snapshot_required"].(bool); b {
			d.t.Fatalf("pull asks for a snapshot: %v", resp)
		}
		return !confBool(d.t, resp, "has_more") && cond(), fmt.Sprintf("rows %v, deleted %v", d.rows, d.deleted)
	})
	return sent
}

// push sends records and returns the answer, checking its keys and types.
func (d *confDevice) push(records ...map[string]any) map[string]any {
	d.t.Helper()
	if records == nil {
		records = []map[string]any{}
	}
	resp := d.post("/sync/push", d.request(map[string]any{"changes": records}))
	confNum(d.t, resp, "checkpoint")
	confTime(d.t, resp, "server_time")
	confNum(d.t, resp, "schema_version")
	confStr(d.t, resp, "schema_hash")
	for _, key := range []string{"accepted", "rejected"} {
		for _, r := range confRecords(d.t, resp, key) {
			for _, k := range []string{"id", "table_name", "operation", "status"} {
				confStr(d.t, r, k)
			}
		}
	}
	return resp
}

// result returns the result of record id in a push answer, failing the test
// when there is not exactly one.
func result(t *testing.T, resp map[string]any, id string) map[string]any {
	t.Helper()
	var found []map[string]any
	for _, key := range []string{"accepted", "rejected"} {
		for _, r := range confRecords(t, resp, key) {
			if r["id"] == id {
				found = append(found, r)
			}
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d results for record %s in %v", len(found), id, resp)
	}
	return found[0]
}

// wantStatus checks a record's result status (and reason, when not empty);
// the steps after it depend on it, so a mismatch ends the test.
func wantStatus(t *testing.T, resp map[string]any, id, status, reason string) map[string]any {
	t.Helper()
	r := result(t, resp, id)
	if r["status"] != status || reason != "" && r["reason_code"] != reason {
		t.Fatalf("record %s: status %v, reason %v (%v), want %s %s", id, r["status"], r["reason_code"], r["message"], status, reason)
	}
	return r
}

// record is a push record as the SDKs build it: the whole local row in
// data (nil on a delete), client_updated_at RFC 3339 with milliseconds and
// Z, and base_updated_at the local updated_at text as it is (nil: none).
func record(table, id, op string, row map[string]any, base any) map[string]any {
	return map[string]any{
		"id": id, "table_name": table, "operation": op, "data": row,
		"client_updated_at": sdkNow(), "base_updated_at": base,
	}
}

// sdkNow is client_updated_at as the SDKs write it.
func sdkNow() string { return time.Now().UTC().Format("2006-01-02T15:04:05.000Z") }

// sqliteNow is SQLite's CURRENT_TIMESTAMP text: UTC, no zone, a space.
func sqliteNow() string { return time.Now().UTC().Format("2006-01-02 15:04:05") }

// localStamp is a timestamp a device holds for a row it created: SQLite's
// own text on kotlin (today's contract default), RFC 3339 on swift.
func localStamp(shape string) string {
	if shape == kotlin {
		return sqliteNow()
	}
	return time.Now().UTC().Format("2006-01-02T15:04:05.000Z")
}

// newID returns a random UUID in lower case.
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// listRow is a whole local row of lists.
func listRow(shape, id, user, name string) map[string]any {
	now := localStamp(shape)
	return map[string]any{"id": id, "user_id": user, "name": name, "created_at": now, "updated_at": now, "deleted_at": nil}
}

// itemRow is a whole local row of items.
func itemRow(shape, id, list, title string, done bool) map[string]any {
	now := localStamp(shape)
	return map[string]any{"id": id, "list_id": list, "title": title, "done": done, "created_at": now, "updated_at": now, "deleted_at": nil}
}

// Accessors of decoded JSON: each fails the test when the key is missing
// or holds another JSON type than the SDKs read.

func confStr(t *testing.T, m map[string]any, key string) string {
	t.Helper()
	s, ok := m[key].(string)
	if !ok {
		t.Fatalf("%q is %T %v, want a string, in %v", key, m[key], m[key], m)
	}
	return s
}

func confNum(t *testing.T, m map[string]any, key string) int64 {
	t.Helper()
	n, ok := m[key].(json.Number)
	if !ok {
		t.Fatalf("%q is %T %v, want a number, in %v", key, m[key], m[key], m)
	}
	i, err := n.Int64()
	if err != nil {
		t.Fatalf("%q = %s is not an integer", key, n)
	}
	return i
}

func confBool(t *testing.T, m map[string]any, key string) bool {
	t.Helper()
	b, ok := m[key].(bool)
	if !ok {
		t.Fatalf("%q is %T %v, want a boolean, in %v", key, m[key], m[key], m)
	}
	return b
}

func confObj(t *testing.T, m map[string]any, key string) map[string]any {
	t.Helper()
	o, ok := m[key].(map[string]any)
	if !ok {
		t.Fatalf("%q is %T %v, want an object, in %v", key, m[key], m[key], m)
	}
	return o
}

func confTime(t *testing.T, m map[string]any, key string) time.Time {
	t.Helper()
	s := confStr(t, m, key)
	ts, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatalf("%q = %q is not RFC 3339", key, s)
	}
	return ts
}

// confRecords returns an array of objects; null or absent is empty.
func confRecords(t *testing.T, m map[string]any, key string) []map[string]any {
	t.Helper()
	v, ok := m[key]
	if !ok || v == nil {
		return nil
	}
	arr, ok := v.([]any)
	if !ok {
		t.Fatalf("%q is %T, want an array, in %v", key, v, m)
	}
	out := make([]map[string]any, len(arr))
	for i, x := range arr {
		if out[i], ok = x.(map[string]any); !ok {
			t.Fatalf("%q[%d] is %T, want an object", key, i, x)
		}
	}
	return out
}

// schemaTables returns GET /sync/schema's tables by name.
func (d *confDevice) schemaTables() map[string]map[string]any {
	d.t.Helper()
	status, _, body := d.call(http.MethodGet, "/sync/schema", nil)
	if status != http.StatusOK {
		d.t.Fatalf("GET /sync/schema: %d %v", status, body)
	}
	out := map[string]map[string]any{}
	for _, tbl := range confRecords(d.t, body, "tables") {
		out[confStr(d.t, tbl, "table_name")] = tbl
	}
	return out
}

// columnNames lists a contract table's column names in order.
func columnNames(t *testing.T, table map[string]any) []string {
	t.Helper()
	var names []string
	for _, c := range confRecords(t, table, "columns") {
		names = append(names, confStr(t, c, "name"))
	}
	return names
}

// TestConformanceRegister checks register for both shapes: the answer's
// keys and types, with the SDK headers and an X-App-Version at the minimum.
func TestConformanceRegister(t *testing.T) {
	t.Parallel()
	e := confStart(t, confSchema, confRegistry())
	for _, shape := range []string{kotlin, swift} {
		d := e.device(t, shape, "alice")
		d.register()
		atMin := e.device(t, shape, "alice")
		atMin.appVersion = confMinVersion
		atMin.register()
	}
}

// TestConformanceSchema checks the contract as the SDKs build their tables
// and triggers from it (decision 4): every table's updated_at_column and
// deleted_at_column is non-empty and one of its columns; a column the table
// lacks is made up (nullable datetime, no default, not a key, after the
// real columns); /sync/tables names the same columns. That timestamp
// defaults evaluate in SQLite to RFC 3339 text is tested with a real
// SQLite in internal/sqlitecheck, a module of its own.
func TestConformanceSchema(t *testing.T) {
	t.Parallel()
	e := confStart(t, confSchema, confRegistry())
	d := e.device(t, kotlin, "alice")
	tables := d.schemaTables()
	if got := slices.Sorted(maps.Keys(tables)); !slices.Equal(got, []string{"items", "lists", "memos", "tags"}) {
		t.Fatalf("tables %v", got)
	}
	madeUp := map[string]string{"tags": "deleted_at", "memos": "updated_at"}

	for name, tbl := range tables {
		cols := confRecords(t, tbl, "columns")
		names := columnNames(t, tbl)
		for _, key := range []string{"updated_at_column", "deleted_at_column"} {
			col, _ := tbl[key].(string)
			if col == "" || !slices.Contains(names, col) {
				t.Errorf("%s: %s = %q, want a non-empty name of its columns %v", name, key, col, names)
			}
		}
		if want, ok := madeUp[name]; ok {
			i := slices.Index(names, want)
			if i < 0 {
				t.Errorf("%s: no made-up column %s in %v", name, want, names)
			} else {
				c := cols[i]
				if c["db_type"] != "timestamp with time zone" || c["logical_type"] != "datetime" || c["nullable"] != true ||
					c["default_kind"] != "none" || c["is_primary_key"] != false || c["sqlite_default_sql"] != nil {
					t.Errorf("%s: made-up column %v", name, c)
				}
				if i != len(cols)-1 {
					t.Errorf("%s: made-up column %s at %d of %v, want after the real columns", name, want, i, names)
				}
			}
		}
	}

	status, _, meta := d.call(http.MethodGet, "/sync/tables", nil)
	if status != http.StatusOK {
		t.Fatalf("GET /sync/tables: %d %v", status, meta)
	}
	for _, tm := range confRecords(t, meta, "tables") {
		name := confStr(t, tm, "table_name")
		for _, key := range []string{"updated_at_column", "deleted_at_column"} {
			if got, want := tm[key], tables[name][key]; got == nil || got == "" || got != want {
				t.Errorf("/sync/tables %s: %s = %v, want %v as in /sync/schema", name, key, got, want)
			}
		}
	}
}

// TestConformanceSnapshotPaging checks snapshot paging for both shapes: the
// cursor sent back as decoded (kotlin's first page with "cursor": null,
// swift's without), every record of the user once, none of another user's.
func TestConformanceSnapshotPaging(t *testing.T) {
	t.Parallel()
	e := confStart(t, confSchema, confRegistry())
	want := map[string]bool{}
	for i := range 5 {
		id := newID()
		want["lists/"+id] = true
		pgtest.Exec(t, e.db.Super, `INSERT INTO lists (id, user_id, name) VALUES ($1, 'alice', $2)`, id, fmt.Sprint("list ", i))
	}
	pgtest.Exec(t, e.db.Super, `INSERT INTO lists (id, user_id, name) VALUES ($1, 'bob', 'secret')`, newID())
	e.caughtUp(t)
	for _, shape := range []string{kotlin, swift} {
		t.Run(shape, func(t *testing.T) {
			d := e.device(t, shape, "alice")
			d.register()
			pages := d.snapshot(2)
			if len(pages) < 3 {
				t.Errorf("%d pages for 5 records at limit 2", len(pages))
			}
			seen := map[string]int{}
			for _, p := range pages {
				confNum(t, p, "checkpoint")
				confNum(t, p, "schema_version")
				confStr(t, p, "schema_hash")
				if confBool(t, p, "has_more") {
					c := confObj(t, p, "cursor")
					confNum(t, c, "checkpoint")
					confNum(t, c, "table_idx")
					confStr(t, c, "after_id")
				}
				for _, r := range confRecords(t, p, "records") {
					seen[confStr(t, r, "table_name")+"/"+confStr(t, r, "id")]++
					confTime(t, r, "updated_at")
					data := confObj(t, r, "data")
					if data["user_id"] != "alice" {
						t.Errorf("record of another user: %v", r)
					}
				}
			}
			if len(seen) != len(want) {
				t.Errorf("snapshot records %v, want %v", seen, want)
			}
			for k, n := range seen {
				if !want[k] || n != 1 {
					t.Errorf("record %s seen %d times (wanted: %v)", k, n, want[k])
				}
			}
		})
	}
}

// TestConformanceWholeRows checks, for both shapes, whole-row creates,
// updates and deletes (decision 1): applied, pulled by a second device of
// the same user, never by another user's device; and a conflict answered
// with the server's version.
func TestConformanceWholeRows(t *testing.T) {
	t.Parallel()
	for _, shape := range []string{kotlin, swift} {
		t.Run(shape, func(t *testing.T) {
			t.Parallel()
			e := confStart(t, confSchema, confRegistry())
			a, b, bob := e.joined(t, shape, "alice"), e.joined(t, shape, "alice"), e.joined(t, shape, "bob")

			list, item := newID(), newID()
			resp := a.push(
				record("lists", list, "create", listRow(shape, list, "alice", "Groceries"), nil),
				record("items", item, "create", itemRow(shape, item, list, "Milk", false), nil),
			)
			wantStatus(t, resp, list, synchro.PushStatusApplied, "")
			itemServerAt := confStr(t, wantStatus(t, resp, item, synchro.PushStatusApplied, ""), "server_updated_at")

			b.pullUntil("the list and the item", func() bool {
				return b.rows["lists/"+list]["name"] == "Groceries" && b.rows["items/"+item]["title"] == "Milk"
			})
			got := b.rows["items/"+item]
			for _, col := range []string{"id", "list_id", "title", "done", "created_at", "updated_at", "deleted_at"} {
				if _, ok := got[col]; !ok {
					t.Errorf("pulled item lacks %s: %v", col, got)
				}
			}
			if got["done"] != false || got["deleted_at"] != nil {
				t.Errorf("pulled item %v", got)
			}

			// An update of the whole row: base is the updated_at the
			// device holds (the server's, from the push answer).
			row := itemRow(shape, item, list, "Oat milk", true)
			row["updated_at"] = itemServerAt
			resp = a.push(record("items", item, "update", row, itemServerAt))
			newAt := confStr(t, wantStatus(t, resp, item, synchro.PushStatusApplied, ""), "server_updated_at")
			b.pullUntil("the update", func() bool { return b.rows["items/"+item]["title"] == "Oat milk" })
			if b.rows["items/"+item]["done"] != true {
				t.Errorf("pulled update %v", b.rows["items/"+item])
			}

			// A conflict: b writes from the old base with an older time.
			stale := record("items", item, "update", itemRow(shape, item, list, "Almond milk", false), itemServerAt)
			stale["client_updated_at"] = time.Now().Add(-time.Hour).UTC().Format("2006-01-02T15:04:05.000Z")
			resp = b.push(stale)
			r := wantStatus(t, resp, item, synchro.PushStatusConflict, "")
			if sv, ok := r["server_version"].(map[string]any); !ok {
				t.Errorf("conflict without server_version: %v", r)
			} else if data, _ := sv["data"].(map[string]any); data["title"] != "Oat milk" {
				t.Errorf("server_version %v, want the title Oat milk", sv)
			}

			// A delete: kotlin sends "data": null, swift no data.
			resp = a.push(record("items", item, "delete", nil, newAt))
			wantStatus(t, resp, item, synchro.PushStatusApplied, "")
			b.pullUntil("the delete", func() bool { return b.deleted["items/"+item] })

			// bob's device never sees any of it.
			bob.pullUntil("nothing", func() bool { return true })
			for k := range bob.rows {
				t.Errorf("bob's device holds %s", k)
			}
			if len(bob.deleted) > 0 {
				t.Errorf("bob's device was told of deletes %v", bob.deleted)
			}
		})
	}
}

// TestConformanceMadeUpColumns checks that a table without deleted_at
// (tags) and one without updated_at (memos) sync (decisions 1 and 4):
// create, update and delete pushed as whole rows holding the made-up column
// are applied, and pulls deliver the made-up column as null.
func TestConformanceMadeUpColumns(t *testing.T) {
	t.Parallel()
	e := confStart(t, confSchema, confRegistry())
	a, b, bob := e.joined(t, kotlin, "alice"), e.joined(t, kotlin, "alice"), e.joined(t, kotlin, "bob")
	tag, memo := "tag-"+newID(), "memo-"+newID()
	now := sqliteNow()
	tagRow := func(label string) map[string]any {
		return map[string]any{"id": tag, "user_id": "alice", "label": label, "updated_at": now, "deleted_at": nil}
	}
	memoRow := func(body string) map[string]any {
		return map[string]any{"id": memo, "user_id": "alice", "body": body, "deleted_at": nil, "updated_at": nil}
	}

	resp := a.push(record("tags", tag, "create", tagRow("urgent"), nil), record("memos", memo, "create", memoRow("call mom"), nil))
	tagAt := wantStatus(t, resp, tag, synchro.PushStatusApplied, "")["server_updated_at"]
	wantStatus(t, resp, memo, synchro.PushStatusApplied, "")
	b.pullUntil("the tag and the memo", func() bool { return b.rows["tags/"+tag] != nil && b.rows["memos/"+memo] != nil })
	for k, col := range map[string]string{"tags/" + tag: "deleted_at", "memos/" + memo: "updated_at"} {
		v, ok := b.rows[k][col]
		if !ok || v != nil {
			t.Errorf("pulled %s: %s = %v (present %v), want null", k, col, v, ok)
		}
	}

	resp = a.push(record("tags", tag, "update", tagRow("later"), tagAt), record("memos", memo, "update", memoRow("call dad"), nil))
	wantStatus(t, resp, tag, synchro.PushStatusApplied, "")
	wantStatus(t, resp, memo, synchro.PushStatusApplied, "")
	b.pullUntil("the updates", func() bool {
		return b.rows["tags/"+tag]["label"] == "later" && b.rows["memos/"+memo]["body"] == "call dad"
	})

	resp = a.push(record("tags", tag, "delete", nil, nil), record("memos", memo, "delete", nil, nil))
	wantStatus(t, resp, tag, synchro.PushStatusApplied, "")
	wantStatus(t, resp, memo, synchro.PushStatusApplied, "")
	b.pullUntil("the deletes", func() bool { return b.deleted["tags/"+tag] && b.deleted["memos/"+memo] })

	bob.pullUntil("nothing", func() bool { return true })
	if len(bob.rows) > 0 || len(bob.deleted) > 0 {
		t.Errorf("bob's device received %v, deletes %v", bob.rows, bob.deleted)
	}
}

// TestConformanceOneBadRecord checks that one record with a bad timestamp,
// an unknown operation or malformed data is rejected alone, terminally
// (decision 3), while the records around it, with base_updated_at in
// SQLite's text, are applied.
func TestConformanceOneBadRecord(t *testing.T) {
	t.Parallel()
	e := confStart(t, confSchema, confRegistry())
	bad := func(mod func(r map[string]any)) func(id string) any {
		return func(id string) any {
			r := record("lists", id, "create", listRow(kotlin, id, "alice", "bad"), nil)
			mod(r)
			return r
		}
	}
	cases := []struct {
		name   string
		record func(id string) any
		reason string
		echoID bool
	}{
		{"client_updated_at not a time", bad(func(r map[string]any) { r["client_updated_at"] = "yesterday" }), "invalid_data", true},
		{"client_updated_at a number", bad(func(r map[string]any) { r["client_updated_at"] = 1764649223 }), "invalid_data", true},
		{"base_updated_at not a time", bad(func(r map[string]any) { r["base_updated_at"] = "12/02/2026 04:20" }), "invalid_data", true},
		{"unknown operation", bad(func(r map[string]any) { r["operation"] = "upsert" }), "invalid_operation", true},
		{"data a string", bad(func(r map[string]any) { r["data"] = "name=bad" }), "invalid_data", true},
		{"data an array", bad(func(r map[string]any) { r["data"] = []any{1, 2} }), "invalid_data", true},
		{"record not an object", func(string) any { return "lists/create" }, "invalid_data", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			d := e.joined(t, kotlin, "alice")
			before, after, badID := newID(), newID(), newID()
			first := record("lists", before, "create", listRow(kotlin, before, "alice", "before"), "2026-12-02 04:20:23")
			last := record("lists", after, "create", listRow(kotlin, after, "alice", "after"), "2026-12-02 04:20:23.123")
			resp := d.post("/sync/push", d.request(map[string]any{"changes": []any{first, c.record(badID), last}}))
			wantStatus(t, resp, before, synchro.PushStatusApplied, "")
			wantStatus(t, resp, after, synchro.PushStatusApplied, "")
			rejected := confRecords(t, resp, "rejected")
			if len(rejected) != 1 {
				t.Fatalf("rejected %v, want the bad record only", rejected)
			}
			r := rejected[0]
			if r["status"] != synchro.PushStatusRejectedTerminal || r["reason_code"] != c.reason {
				t.Errorf("bad record: %v, want rejected_terminal %s", r, c.reason)
			}
			if c.echoID && r["id"] != badID {
				t.Errorf("bad record's id %v, want %s echoed", r["id"], badID)
			}
			if n := e.count(t, "lists", "id IN ($1, $2)", before, after); n != 2 {
				t.Errorf("%d of the good records are in PostgreSQL, want 2", n)
			}
			if n := e.count(t, "lists", "id::text = $1", badID); n != 0 {
				t.Errorf("the bad record was written")
			}
		})
	}

	// Every timestamp form of decision 3 is accepted.
	t.Run("timestamp forms", func(t *testing.T) {
		t.Parallel()
		d := e.joined(t, kotlin, "alice")
		forms := []struct{ client, base any }{
			{"2026-12-02T04:20:23Z", nil},
			{"2026-12-02T04:20:23.456Z", "2026-12-02 04:20:23"},
			{"2026-12-02T05:20:23.456789+01:00", "2026-12-02 04:20:23.456789"},
			{"2026-12-02T04:20:23.456Z", "2026-12-02T04:20:23.456"},
			{"2026-12-02T04:20:23.456Z", "2026-12-02T04:20:23"},
		}
		var recs []map[string]any
		for _, f := range forms {
			id := newID()
			r := record("lists", id, "create", listRow(kotlin, id, "alice", "forms"), f.base)
			r["client_updated_at"] = f.client
			recs = append(recs, r)
		}
		resp := d.push(recs...)
		for i, r := range recs {
			if res := result(t, resp, r["id"].(string)); res["status"] != synchro.PushStatusApplied {
				t.Errorf("form %v: %v", forms[i], res)
			}
		}
	})
}

// TestConformanceChildBeforeParent checks that an item created before its
// list in the same request is applied (decision 2): the SDK pushes oldest
// client_updated_at first, not parents first.
func TestConformanceChildBeforeParent(t *testing.T) {
	t.Parallel()
	e := confStart(t, confSchema, confRegistry())
	d := e.joined(t, kotlin, "alice")
	list, item := newID(), newID()
	resp := d.push(
		record("items", item, "create", itemRow(kotlin, item, list, "Milk", false), nil),
		record("lists", list, "create", listRow(kotlin, list, "alice", "Groceries"), nil),
	)
	wantStatus(t, resp, list, synchro.PushStatusApplied, "")
	wantStatus(t, resp, item, synchro.PushStatusApplied, "")
	if n := e.count(t, "items", "id = $1", item); n != 1 {
		t.Errorf("the item is not in PostgreSQL")
	}
}

// wantErrorBody checks an error answer as the SDKs read it (decision 5):
// status, `code`, a non-empty `message` and `error`, and every value a
// string except the 409 body's schema versions, which are numbers.
func wantErrorBody(t *testing.T, status int, body map[string]any, wantStatus int, code string) {
	t.Helper()
	if status != wantStatus {
		t.Errorf("status %d, want %d; body %v", status, wantStatus, body)
		return
	}
	if body["code"] != code {
		t.Errorf("code %v, want %s; body %v", body["code"], code, body)
	}
	for _, k := range []string{"message", "error"} {
		if s, _ := body[k].(string); s == "" {
			t.Errorf("%s %v, want a non-empty string; body %v", k, body[k], body)
		}
	}
	for k, v := range body {
		if wantStatus == http.StatusConflict && (k == "schema_version" || k == "server_schema_version") {
			if _, ok := v.(json.Number); !ok {
				t.Errorf("%s is %T, want a number; body %v", k, v, body)
			}
			continue
		}
		if _, ok := v.(string); !ok {
			t.Errorf("%s is %T, want a string (the SDKs read a map of strings); body %v", k, v, body)
		}
	}
}

// TestConformanceErrorBodies checks the error answers the SDKs branch on:
// 409 schema mismatch with server_schema_version and server_schema_hash,
// 426 with the minimum version in `error` (register's body and any
// request's X-App-Version), 503 with Retry-After, and `error` in the others
// (decision 5).
func TestConformanceErrorBodies(t *testing.T) {
	t.Parallel()
	e := confStart(t, confSchema, confRegistry())
	d := e.joined(t, kotlin, "alice")

	t.Run("409 schema mismatch", func(t *testing.T) {
		d := d.in(t)
		for path, fields := range map[string]map[string]any{
			"/sync/pull": {"checkpoint": d.checkpoint, "tables": nil, "limit": 100, "known_buckets": nil},
			"/sync/push": {"changes": []any{}},
		} {
			body := d.request(fields)
			body["schema_hash"] = "stale"
			status, _, body := d.call(http.MethodPost, path, body)
			wantErrorBody(t, status, body, http.StatusConflict, "schema_mismatch")
			if v, _ := body["server_schema_version"].(json.Number); v.String() != strconv.FormatInt(d.ver, 10) {
				t.Errorf("%s: server_schema_version %v, want %d", path, body["server_schema_version"], d.ver)
			}
			if body["server_schema_hash"] != d.hash {
				t.Errorf("%s: server_schema_hash %v, want %s", path, body["server_schema_hash"], d.hash)
			}
		}
	})

	t.Run("426 upgrade required", func(t *testing.T) {
		old := e.device(t, kotlin, "alice")
		old.appVersion = "0.9.0"
		status, _, body := old.call(http.MethodPost, "/sync/register", old.request(map[string]any{
			"client_name": nil, "platform": "android", "app_version": "0.9.0",
		}))
		wantErrorBody(t, status, body, http.StatusUpgradeRequired, "upgrade_required")
		if body["error"] != confMinVersion {
			t.Errorf("register: error %v, want the minimum version %s", body["error"], confMinVersion)
		}
		// A registered device whose app is now below the minimum: the
		// header is checked on every request.
		stale := d.in(t)
		stale.appVersion = "0.9.0"
		status, _, body = stale.call(http.MethodPost, "/sync/pull", stale.request(map[string]any{"checkpoint": d.checkpoint}))
		wantErrorBody(t, status, body, http.StatusUpgradeRequired, "upgrade_required")
		if body["error"] != confMinVersion {
			t.Errorf("pull: error %v, want the minimum version %s", body["error"], confMinVersion)
		}
	})

	t.Run("503 with Retry-After", func(t *testing.T) {
		d := d.in(t)
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		tx, err := e.db.Super.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = tx.Rollback() }()
		if _, err := tx.ExecContext(ctx, `SELECT 1 FROM synchro.clients WHERE client_id = $1 FOR UPDATE`, d.clientID); err != nil {
			t.Fatal(err)
		}
		status, hdr, body := d.call(http.MethodPost, "/sync/push", d.request(map[string]any{"changes": []any{}}))
		wantErrorBody(t, status, body, http.StatusServiceUnavailable, "unavailable")
		if s, err := strconv.Atoi(hdr.Get("Retry-After")); err != nil || s < 1 {
			t.Errorf("Retry-After %q, want whole seconds", hdr.Get("Retry-After"))
		}
	})

	t.Run("other errors", func(t *testing.T) {
		d := d.in(t)
		status, _, body := d.call(http.MethodPost, "/sync/pull", map[string]any{
			"client_id": "never-registered", "checkpoint": 0, "schema_version": d.ver, "schema_hash": d.hash,
		})
		wantErrorBody(t, status, body, http.StatusNotFound, "client_not_registered")
		status, _, body = d.call(http.MethodPost, "/sync/pull", `{"client_id": 5}`)
		wantErrorBody(t, status, body, http.StatusBadRequest, "bad_request")
		anon := d.in(t)
		anon.user = ""
		status, _, body = anon.call(http.MethodPost, "/sync/pull", d.request(map[string]any{"checkpoint": 0}))
		wantErrorBody(t, status, body, http.StatusUnauthorized, "unauthenticated")
	})
}

// TestConformanceStaleClient checks a client Hooks.OnStaleClient refuses
// (decision 5): its pull answers 200 snapshot_required (stale_client) with
// its checkpoint and the server's contract, its push rejects every record
// terminally; it recovers by a snapshot, then pulls and pushes again.
func TestConformanceStaleClient(t *testing.T) {
	t.Parallel()
	e := confStart(t, confSchema, confRegistry())
	for _, shape := range []string{kotlin, swift} {
		t.Run(shape, func(t *testing.T) {
			d := e.joined(t, shape, "alice")
			list := newID()
			pgtest.Exec(t, e.db.Super, `INSERT INTO lists (id, user_id, name) VALUES ($1, 'alice', 'server side')`, list)
			d.pullUntil("the list", func() bool { return d.rows["lists/"+list] != nil })
			e.refused.Store(d.clientID, true)
			pgtest.Exec(t, e.db.Super, `UPDATE synchro.clients SET last_sync_at = now() - interval '30 days' WHERE client_id = $1`, d.clientID)

			resp, sent := d.pullOnce()
			if resp["snapshot_required"] != true || resp["snapshot_reason"] != "stale_client" {
				t.Fatalf("stale pull: %v, want snapshot_required stale_client", resp)
			}
			if len(confRecords(t, resp, "changes")) != 0 || len(confRecords(t, resp, "deletes")) != 0 {
				t.Errorf("stale pull delivered records: %v", resp)
			}
			if confNum(t, resp, "checkpoint") != sent {
				t.Errorf("stale pull checkpoint %v, want the request's %d", resp["checkpoint"], sent)
			}
			if confNum(t, resp, "schema_version") != d.ver || confStr(t, resp, "schema_hash") != d.hash {
				t.Errorf("stale pull contract %v/%v", resp["schema_version"], resp["schema_hash"])
			}

			other := newID()
			pr := d.push(record("lists", other, "create", listRow(shape, other, "alice", "offline"), nil))
			wantStatus(t, pr, other, synchro.PushStatusRejectedTerminal, "stale_client")

			// Recovery: a snapshot, then pulls and pushes work again.
			d.snapshot(100)
			if d.rows["lists/"+list] == nil {
				t.Errorf("the snapshot lacks the list")
			}
			if resp, _ := d.pullOnce(); resp["snapshot_required"] == true {
				t.Errorf("pull after the snapshot: %v", resp)
			}
			again := newID()
			pr = d.push(record("lists", again, "create", listRow(shape, again, "alice", "again"), nil))
			wantStatus(t, pr, again, synchro.PushStatusApplied, "")
		})
	}
}

// TestConformanceUnknownFields checks that fields a newer SDK adds, to a
// request or to a push record, are ignored (decision 5).
func TestConformanceUnknownFields(t *testing.T) {
	t.Parallel()
	e := confStart(t, confSchema, confRegistry())
	d := e.device(t, kotlin, "alice")
	extra := map[string]any{"sdk_build": "2026.12.1", "device_model": "Pixel 9", "capabilities": []string{"gzip"}}
	d.post("/sync/register", d.request(map[string]any{"platform": "android", "app_version": d.appVersion, "client_name": nil, "telemetry": extra}))
	snap := d.post("/sync/snapshot", d.request(map[string]any{"cursor": nil, "limit": 100, "sdk_build": "2026.12.1"}))
	d.checkpoint = confNum(t, snap, "checkpoint")
	d.post("/sync/pull", d.request(map[string]any{"checkpoint": d.checkpoint, "tables": nil, "known_buckets": nil, "limit": 100, "sdk_build": "x"}))
	id := newID()
	r := record("lists", id, "create", listRow(kotlin, id, "alice", "extra"), nil)
	r["client_seq"] = 17
	r["origin"] = map[string]any{"device": "Pixel 9"}
	resp := d.push(r)
	wantStatus(t, resp, id, synchro.PushStatusApplied, "")
}

// TestConformanceUpperCaseUUIDOwner checks a user whose id is an upper-case
// UUID, for a uuid owner column (decision 6): it creates, updates,
// snapshots and pulls its own row, and the lower-case form of the same id
// is the same user.
func TestConformanceUpperCaseUUIDOwner(t *testing.T) {
	t.Parallel()
	e := confStart(t, confUUIDSchema, confUUIDRegistry())
	const upper = "3F2504E0-4F89-41D3-9A0C-0305E82C3301"
	a, b := e.joined(t, kotlin, upper), e.joined(t, swift, upper)
	id := "journal-" + newID()
	row := func(body string) map[string]any {
		now := sqliteNow()
		return map[string]any{"id": id, "owner_id": upper, "body": body, "created_at": now, "updated_at": now, "deleted_at": nil}
	}
	resp := a.push(record("journals", id, "create", row("day one"), nil))
	at := wantStatus(t, resp, id, synchro.PushStatusApplied, "")["server_updated_at"]
	resp = a.push(record("journals", id, "update", row("day one, edited"), at))
	wantStatus(t, resp, id, synchro.PushStatusApplied, "")
	b.pullUntil("the journal", func() bool { return b.rows["journals/"+id]["body"] == "day one, edited" })

	for _, user := range []string{upper, strings.ToLower(upper)} {
		fresh := e.joined(t, kotlin, user)
		if got := fresh.rows["journals/"+id]; got == nil || got["body"] != "day one, edited" {
			t.Errorf("snapshot of user %s: journal %v", user, got)
		}
	}
}

// TestConformancePushCheckpoint checks, for both shapes, that a push
// answers exactly the checkpoint the client acknowledged (decision 7; push.go,
// Push: "The response's Checkpoint is ..."): 0 after register, before any
// snapshot or pull; the final checkpoint of a completed snapshot; then the
// checkpoint the last pull request carried, never the newer one that pull
// only delivered (a device that lost the answer must not skip what it held),
// also when a device sends an older checkpoint again.
func TestConformancePushCheckpoint(t *testing.T) {
	t.Parallel()
	e := confStart(t, confSchema, confRegistry())
	// A row before the snapshots, so that their checkpoint is not 0.
	pgtest.Exec(t, e.db.Super, `INSERT INTO lists (id, user_id, name) VALUES ($1, 'alice', 'before')`, newID())
	e.caughtUp(t)
	for _, shape := range []string{kotlin, swift} {
		t.Run(shape, func(t *testing.T) {
			d := e.device(t, shape, "alice")
			d.register()
			wantCheckpoint := func(when string, want int64, records ...map[string]any) {
				t.Helper()
				if cp := confNum(t, d.push(records...), "checkpoint"); cp != want {
					t.Errorf("%s: push checkpoint %d, want the acknowledged %d (the device holds %d)", when, cp, want, d.checkpoint)
				}
			}
			wantCheckpoint("after register", 0)

			d.snapshot(1)
			if d.checkpoint == 0 {
				t.Fatalf("the snapshot's checkpoint is 0 with a row in the changelog")
			}
			wantCheckpoint("after the snapshot", d.checkpoint)
			snapCP := d.checkpoint

			list := newID()
			pgtest.Exec(t, e.db.Super, `INSERT INTO lists (id, user_id, name) VALUES ($1, 'alice', 'server side')`, list)
			acked := d.pullUntil("the list", func() bool { return d.rows["lists/"+list] != nil })
			if d.checkpoint <= acked {
				t.Fatalf("the pull that delivered the list answered checkpoint %d, not above the request's %d", d.checkpoint, acked)
			}
			item := newID()
			wantCheckpoint("after a pull", acked, record("items", item, "create", itemRow(shape, item, list, "Milk", false), nil))

			// Once sent in a pull, the newer checkpoint is acknowledged.
			_, sent := d.pullOnce()
			if sent <= acked {
				t.Fatalf("the second pull sent %d, not above the first's %d", sent, acked)
			}
			wantCheckpoint("after the second pull", sent)

			// A device that lost that answer sends its older checkpoint
			// again: that is what it holds.
			d.checkpoint = snapCP
			_, sent = d.pullOnce()
			wantCheckpoint("after a pull from an older checkpoint", sent)
		})
	}
}

// write makes a change on the device as an SDK does: the row (a whole local
// row; nil on a delete) is written to the device's rows first, and the push
// record carries it with base_updated_at the updated_at the device held
// (none for a create).
func (d *confDevice) write(table, id, op string, row map[string]any) map[string]any {
	d.t.Helper()
	k := table + "/" + id
	var base any
	if held := d.rows[k]; held != nil && op != "create" {
		base = held["updated_at"]
	}
	if op == "delete" {
		delete(d.rows, k)
		d.deleted[k] = true
	} else {
		d.rows[k] = row
		delete(d.deleted, k)
	}
	return record(table, id, op, row, base)
}

// edit returns a copy of the whole row the device holds for table/id with
// fields changed: what an SDK pushes for an update.
func (d *confDevice) edit(table, id string, fields map[string]any) map[string]any {
	d.t.Helper()
	held := d.rows[table+"/"+id]
	if held == nil {
		d.t.Fatalf("%s holds no %s/%s", d.clientID, table, id)
	}
	row := maps.Clone(held)
	maps.Copy(row, fields)
	return row
}

// sync pushes records and applies the answer to the device's rows as the
// SDKs do: an applied create or update takes the server's updated_at, a
// result with a server_version takes that version.
func (d *confDevice) sync(records ...map[string]any) map[string]any {
	d.t.Helper()
	resp := d.push(records...)
	for _, key := range []string{"accepted", "rejected"} {
		for _, r := range confRecords(d.t, resp, key) {
			k := confStr(d.t, r, "table_name") + "/" + confStr(d.t, r, "id")
			if sv, ok := r["server_version"].(map[string]any); ok {
				d.rows[k] = confObj(d.t, sv, "data")
				delete(d.deleted, k)
				continue
			}
			if at, ok := r["server_updated_at"].(string); ok && r["status"] == synchro.PushStatusApplied && d.rows[k] != nil {
				d.rows[k]["updated_at"] = at
			}
		}
	}
	return resp
}

// TestConformanceTwoUsersConverge checks the "Done when" over the
// SDK wire: two users, each with a Kotlin-shaped and a Swift-shaped device,
// create, update and delete their own rows (lists, items, and tags, the
// table without deleted_at), and the two devices of a user write the same
// item from the same base (a conflict). After the changelog has caught up
// and each device has pulled, every device's rows (its own writes, the push
// answers and the pulled changes and deletes applied as the SDKs do) equal a
// fresh snapshot of its user, and hold nothing of the other user.
func TestConformanceTwoUsersConverge(t *testing.T) {
	t.Parallel()
	e := confStart(t, confSchema, confRegistry())
	type user struct {
		name string
		k, s *confDevice
		// lists, items and tags are the ids of every row the user made.
		lists, items, tags []string
	}
	users := []*user{{name: "alice"}, {name: "bob"}}
	for _, u := range users {
		u.k, u.s = e.joined(t, kotlin, u.name), e.joined(t, swift, u.name)
	}
	each := func(f func(u *user)) {
		for _, u := range users {
			f(u)
		}
	}

	// Creates on both devices.
	each(func(u *user) {
		l1, l2, l3 := newID(), newID(), newID()
		i1, i2, i3 := newID(), newID(), newID()
		tag := "tag-" + newID()
		u.lists, u.items, u.tags = []string{l1, l2, l3}, []string{i1, i2, i3}, []string{tag}
		resp := u.k.sync(
			u.k.write("lists", l1, "create", listRow(kotlin, l1, u.name, u.name+" groceries")),
			u.k.write("items", i1, "create", itemRow(kotlin, i1, l1, "Milk", false)),
			u.k.write("items", i2, "create", itemRow(kotlin, i2, l1, "Bread", false)),
		)
		for _, id := range []string{l1, i1, i2} {
			wantStatus(t, resp, id, synchro.PushStatusApplied, "")
		}
		now := localStamp(swift)
		resp = u.s.sync(
			u.s.write("lists", l2, "create", listRow(swift, l2, u.name, u.name+" chores")),
			u.s.write("lists", l3, "create", listRow(swift, l3, u.name, u.name+" scratch")),
			u.s.write("items", i3, "create", itemRow(swift, i3, l2, "Sweep", false)),
			u.s.write("tags", tag, "create", map[string]any{"id": tag, "user_id": u.name, "label": "urgent", "updated_at": now, "deleted_at": nil}),
		)
		for _, id := range []string{l2, l3, i3, tag} {
			wantStatus(t, resp, id, synchro.PushStatusApplied, "")
		}
	})
	each(func(u *user) {
		u.k.pullUntil("the swift device's rows", func() bool {
			return u.k.rows["lists/"+u.lists[2]] != nil && u.k.rows["items/"+u.items[2]] != nil && u.k.rows["tags/"+u.tags[0]] != nil
		})
		u.s.pullUntil("the kotlin device's rows", func() bool {
			return u.s.rows["lists/"+u.lists[0]] != nil && u.s.rows["items/"+u.items[1]] != nil
		})
	})

	// Updates of rows the other device made, from the pulled versions.
	each(func(u *user) {
		resp := u.k.sync(
			u.k.write("lists", u.lists[1], "update", u.k.edit("lists", u.lists[1], map[string]any{"name": u.name + " chores, weekly"})),
			u.k.write("tags", u.tags[0], "update", u.k.edit("tags", u.tags[0], map[string]any{"label": "later"})),
		)
		wantStatus(t, resp, u.lists[1], synchro.PushStatusApplied, "")
		wantStatus(t, resp, u.tags[0], synchro.PushStatusApplied, "")
		resp = u.s.sync(u.s.write("items", u.items[0], "update", u.s.edit("items", u.items[0], map[string]any{"title": "Oat milk", "done": true})))
		wantStatus(t, resp, u.items[0], synchro.PushStatusApplied, "")
	})

	// A conflict: both devices edit Bread from the same base; the swift
	// device edited first (offline) and pushes last, so the kotlin
	// device's write wins and the swift device takes the server's version.
	each(func(u *user) {
		i2 := u.items[1]
		offline := u.s.write("items", i2, "update", u.s.edit("items", i2, map[string]any{"title": "Rye bread"}))
		offline["client_updated_at"] = time.Now().Add(-time.Minute).UTC().Format("2006-01-02T15:04:05.000Z")
		resp := u.k.sync(u.k.write("items", i2, "update", u.k.edit("items", i2, map[string]any{"title": "Sourdough", "done": true})))
		wantStatus(t, resp, i2, synchro.PushStatusApplied, "")
		resp = u.s.sync(offline)
		r := wantStatus(t, resp, i2, synchro.PushStatusConflict, "")
		if got := u.s.rows["items/"+i2]["title"]; got != "Sourdough" {
			t.Errorf("%s: after the conflict the swift device holds %v, want the server's Sourdough; result %v", u.name, got, r)
		}
	})

	// Deletes: the kotlin device deletes the swift device's empty list and
	// Milk (after pulling its update); the swift device deletes the tag.
	each(func(u *user) {
		u.k.pullUntil("the swift device's update", func() bool { return u.k.rows["items/"+u.items[0]]["title"] == "Oat milk" })
		u.s.pullUntil("the kotlin device's updates", func() bool {
			return u.s.rows["tags/"+u.tags[0]]["label"] == "later" && u.s.rows["lists/"+u.lists[1]]["name"] == u.name+" chores, weekly"
		})
		resp := u.k.sync(u.k.write("items", u.items[0], "delete", nil), u.k.write("lists", u.lists[2], "delete", nil))
		wantStatus(t, resp, u.items[0], synchro.PushStatusApplied, "")
		wantStatus(t, resp, u.lists[2], synchro.PushStatusApplied, "")
		resp = u.s.sync(u.s.write("tags", u.tags[0], "delete", nil))
		wantStatus(t, resp, u.tags[0], synchro.PushStatusApplied, "")
	})

	// Every device pulls what the changelog holds, then equals a fresh
	// snapshot of its user.
	e.caughtUp(t)
	each(func(u *user) {
		fresh := e.joined(t, kotlin, u.name)
		if len(fresh.rows) != 4 { // 2 lists, 2 items
			t.Errorf("%s: fresh snapshot holds %d rows, want 4: %v", u.name, len(fresh.rows), fresh.rows)
		}
		if got := fresh.rows["lists/"+u.lists[1]]["name"]; got != u.name+" chores, weekly" {
			t.Errorf("%s: snapshot's updated list name %v", u.name, got)
		}
		if got := fresh.rows["items/"+u.items[1]]; got["title"] != "Sourdough" || got["done"] != true {
			t.Errorf("%s: snapshot's conflicted item %v, want the winner's Sourdough", u.name, got)
		}
		var other *user
		for _, o := range users {
			if o != u {
				other = o
			}
		}
		for _, d := range []*confDevice{u.k, u.s} {
			d.pullUntil("the end", func() bool { return true })
			for k, want := range fresh.rows {
				if got := d.rows[k]; !reflect.DeepEqual(got, want) {
					t.Errorf("%s's %s device: %s is %v, the snapshot's %v", u.name, d.shape, k, got, want)
				}
			}
			for k, got := range d.rows {
				if _, ok := fresh.rows[k]; !ok {
					t.Errorf("%s's %s device holds %s = %v, not in the snapshot", u.name, d.shape, k, got)
				}
			}
			for table, ids := range map[string][]string{"lists": other.lists, "items": other.items, "tags": other.tags} {
				for _, id := range ids {
					k := table + "/" + id
					if d.rows[k] != nil || d.deleted[k] {
						t.Errorf("%s's %s device knows %s of %s", u.name, d.shape, k, other.name)
					}
				}
			}
			for k, data := range d.rows {
				if owner, ok := data["user_id"]; ok && owner != u.name {
					t.Errorf("%s's %s device holds %s of %v", u.name, d.shape, k, owner)
				}
			}
		}
	})
}

// TestConformanceLWWByEditTime: two SDK devices edit one row offline; the
// one that edited later pushes last and wins, over HTTP, with the SDKs'
// base_updated_at (the local updated_at as pulled) and client_updated_at
// (RFC 3339 with milliseconds). The row's updated_at, as the devices pull
// it, is the winning edit's time; the earlier edit, pushed last, loses.
func TestConformanceLWWByEditTime(t *testing.T) {
	t.Parallel()
	e := confStart(t, confSchema, confRegistry())
	list := newID()
	pgtest.Exec(t, e.db.Super, `INSERT INTO lists (id, user_id, name, updated_at) VALUES ($1, 'alice', 'v0', now() - interval '1 hour')`, list)
	e.caughtUp(t)
	a, b := e.device(t, kotlin, "alice"), e.device(t, swift, "alice")
	for _, d := range []*confDevice{a, b} {
		d.register()
		d.snapshot(100)
		if d.rows["lists/"+list] == nil {
			t.Fatalf("%s: the snapshot lacks the list", d.shape)
		}
	}
	now := time.Now().UTC()
	stamp := func(ago time.Duration) string { return now.Add(-ago).Format("2006-01-02T15:04:05.000Z") }
	rename := func(d *confDevice, name string, ago time.Duration) map[string]any {
		row := maps.Clone(d.rows["lists/"+list])
		row["name"] = name
		rec := d.write("lists", list, "update", row)
		rec["client_updated_at"] = stamp(ago)
		return rec
	}
	// B edits at 10:05 and pushes at 10:12; A edited at 10:10 and pushes
	// at 10:30 (minutes before now; the pushes happen now, B's first).
	recB := rename(b, "B", 25*time.Minute)
	recA := rename(a, "A", 20*time.Minute)
	wantStatus(t, b.push(recB), list, "applied", "")
	res := wantStatus(t, a.push(recA), list, "applied", "")
	if got := confTime(t, res, "server_updated_at"); !got.Equal(now.Add(-20 * time.Minute).Truncate(time.Millisecond)) {
		t.Errorf("A's server_updated_at %v, want its edit time %v", got, now.Add(-20*time.Minute))
	}
	if n := e.count(t, "lists", "id = $1 AND name = 'A'", list); n != 1 {
		t.Fatalf("the server did not keep A's later edit")
	}
	// B pulls A's edit, with its edit time as the version.
	b.pullUntil("A's edit", func() bool { return b.rows["lists/"+list]["name"] == "A" })
	if got := confTime(t, b.rows["lists/"+list], "updated_at"); !got.Equal(now.Add(-20 * time.Minute).Truncate(time.Millisecond)) {
		t.Errorf("pulled updated_at %v, want A's edit time", got)
	}
	// An edit made before A's, on the old copy, pushed now: it loses.
	c := e.device(t, kotlin, "alice")
	c.register()
	c.snapshot(100)
	c.rows["lists/"+list]["updated_at"] = recB["base_updated_at"]
	res = wantStatus(t, c.push(rename(c, "C", 22*time.Minute)), list, "conflict", "server_won_conflict")
	if msg, _ := res["message"].(string); !strings.Contains(msg, "server write is newer") {
		t.Errorf("conflict message %q does not say why", msg)
	}
}
