package synchro

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	mathrand "math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/synchrosync/synchro/internal/pgtest"
)

// This file tests Engine.Push against a real PostgreSQL. Helpers carry the
// prefix "pt" so that they do not collide with other test files.

// ptSchema is the application schema of the push tests, created by the
// superuser (so the tables are granted to the application role).
const ptSchema = `
CREATE TABLE categories (
	id   text PRIMARY KEY,
	name text NOT NULL
);
CREATE TABLE lists (
	id          uuid PRIMARY KEY,
	user_id     text NOT NULL,
	name        text NOT NULL,
	category_id text REFERENCES categories (id),
	created_at  timestamptz NOT NULL DEFAULT now(),
	updated_at  timestamptz NOT NULL DEFAULT now(),
	deleted_at  timestamptz
);
CREATE TABLE items (
	id         uuid PRIMARY KEY,
	list_id    uuid NOT NULL REFERENCES lists (id),
	title      text NOT NULL,
	done       boolean NOT NULL DEFAULT false,
	secret     text,
	updated_at timestamptz NOT NULL DEFAULT now(),
	deleted_at timestamptz
);
CREATE TABLE notes (
	id      bigint PRIMARY KEY,
	user_id text NOT NULL,
	body    text
);
INSERT INTO categories (id, name) VALUES ('work', 'Work'), ('home', 'Home');
`

// ptItemSyncColumns is the projection of items: everything but secret.
var ptItemSyncColumns = []string{"id", "list_id", "title", "done", "updated_at", "deleted_at"}

// ptRegistry registers the tables of ptSchema.
func ptRegistry(t testing.TB) *Registry {
	t.Helper()
	reg := NewRegistry()
	reg.Register(&TableConfig{TableName: "categories"})
	reg.Register(&TableConfig{TableName: "lists", OwnerColumn: "user_id", Dependencies: []string{"categories"}})
	reg.Register(&TableConfig{TableName: "items", ParentTable: "lists", ParentFKCol: "list_id", SyncColumns: ptItemSyncColumns})
	reg.Register(&TableConfig{TableName: "notes", OwnerColumn: "user_id"})
	if err := reg.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	return reg
}

// ptSetup creates a migrated database holding ptSchema.
func ptSetup(t testing.TB) *pgtest.Database {
	t.Helper()
	db := pgtest.NewMigratedDatabase(t)
	pgtest.Exec(t, db.Super, ptSchema)
	return db
}

// ptID returns a random UUID (version 4).
func ptID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// ptEnv is an engine on a test database, with the schema contract a client
// registered against it holds.
type ptEnv struct {
	t    testing.TB
	db   *pgtest.Database
	e    *Engine
	ver  int64
	hash string
}

// ptEngine builds an engine on conn (db.Super or db.App) with reg; mod, when
// non-nil, adjusts the config first.
func ptEngine(t testing.TB, db *pgtest.Database, conn *sql.DB, reg *Registry, mod func(*Config)) *ptEnv {
	t.Helper()
	cfg := Config{DB: conn, Registry: reg}
	if mod != nil {
		mod(&cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	e, err := newEngine(ctx, cfg)
	if err != nil {
		t.Fatalf("newEngine: %v", err)
	}
	v, h, err := e.CurrentSchemaManifest(ctx)
	if err != nil {
		t.Fatalf("CurrentSchemaManifest: %v", err)
	}
	return &ptEnv{t: t, db: db, e: e, ver: v, hash: h}
}

// ptNewEnv is the usual setup: ptSchema, ptRegistry, an engine on the
// superuser pool (which bypasses RLS; no policies are installed).
func ptNewEnv(t testing.TB, mod func(*Config)) *ptEnv {
	t.Helper()
	db := ptSetup(t)
	return ptEngine(t, db, db.Super, ptRegistry(t), mod)
}

// register registers a client with the bootstrap schema (0, "").
func (p *ptEnv) register(user, client string) *RegisterResponse {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	resp, err := p.e.RegisterClient(ctx, user, &RegisterRequest{ClientID: client, Platform: "test", AppVersion: "1.0.0"})
	if err != nil {
		p.t.Fatalf("RegisterClient(%s, %s): %v", user, client, err)
	}
	return resp
}

// pushErr pushes recs with the current schema contract.
func (p *ptEnv) pushErr(user, client string, recs ...PushRecord) (*PushResponse, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	return p.e.Push(ctx, user, &PushRequest{ClientID: client, Changes: recs, SchemaVersion: p.ver, SchemaHash: p.hash})
}

// push pushes recs and fails the test when Push returns an error or the
// response does not account for every record.
func (p *ptEnv) push(user, client string, recs ...PushRecord) *PushResponse {
	p.t.Helper()
	resp, err := p.pushErr(user, client, recs...)
	if err != nil {
		p.t.Fatalf("Push: %v", err)
	}
	if resp.Accepted == nil || resp.Rejected == nil {
		p.t.Fatalf("Push returned nil Accepted (%v) or Rejected (%v)", resp.Accepted == nil, resp.Rejected == nil)
	}
	if n := len(resp.Accepted) + len(resp.Rejected); n != len(recs) {
		p.t.Fatalf("Push returned %d results for %d records: %+v", n, len(recs), resp)
	}
	return resp
}

// one pushes a single record and returns its result.
func (p *ptEnv) one(user, client string, rec PushRecord) PushResult {
	p.t.Helper()
	resp := p.push(user, client, rec)
	var res PushResult
	if len(resp.Accepted) == 1 {
		res = resp.Accepted[0]
	} else {
		res = resp.Rejected[0]
	}
	if res.ID != rec.ID || res.TableName != rec.TableName || res.Operation != rec.Operation {
		p.t.Errorf("result echoes (%q, %q, %q), want (%q, %q, %q)",
			res.ID, res.TableName, res.Operation, rec.ID, rec.TableName, rec.Operation)
	}
	// A record is accepted exactly when it is applied.
	if (len(resp.Accepted) == 1) != (res.Status == PushStatusApplied) {
		p.t.Errorf("record with status %q listed under the wrong array: %+v", res.Status, resp)
	}
	return res
}

// ptFind returns the result for id from either list of resp.
func ptFind(t testing.TB, resp *PushResponse, id string) PushResult {
	t.Helper()
	var found []PushResult
	for _, r := range slices.Concat(resp.Accepted, resp.Rejected) {
		if r.ID == id {
			found = append(found, r)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d results for id %q in %+v", len(found), id, resp)
	}
	return found[0]
}

// ptWant checks a result's status and reason code.
func ptWant(t testing.TB, what string, res PushResult, status, reason string) {
	t.Helper()
	if res.Status != status || res.ReasonCode != reason {
		t.Errorf("%s: got %s/%s (%q), want %s/%s", what, res.Status, res.ReasonCode, res.Message, status, reason)
	}
}

func ptCreate(table, id, data string) PushRecord {
	return PushRecord{ID: id, TableName: table, Operation: "create", Data: json.RawMessage(data), ClientUpdatedAt: time.Now()}
}

func ptUpdate(table, id, data string, at time.Time) PushRecord {
	return PushRecord{ID: id, TableName: table, Operation: "update", Data: json.RawMessage(data), ClientUpdatedAt: at}
}

func ptDelete(table, id string) PushRecord {
	return PushRecord{ID: id, TableName: table, Operation: "delete", ClientUpdatedAt: time.Now()}
}

// ptFuture is a client time later than any server write of a test.
func ptFuture() time.Time { return time.Now().Add(time.Hour) }

// ptListName returns the name of list id, with ok false when there is no row.
func ptListName(t testing.TB, db DB, id string) (name string, ok bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := db.QueryRowContext(ctx, `SELECT name FROM lists WHERE id = $1::uuid`, id).Scan(&name)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false
	}
	if err != nil {
		t.Fatalf("reading list %s: %v", id, err)
	}
	return name, true
}

// TestPushStatusCatalogue produces every status and reason code of a push.
func TestPushStatusCatalogue(t *testing.T) {
	t.Parallel()
	p := ptNewEnv(t, nil)
	p.register("alice", "c1")
	p.register("bob", "c2")
	super := p.db.Super

	list := ptID()
	res := p.one("alice", "c1", ptCreate("lists", list, `{"name":"groceries","category_id":"home"}`))
	ptWant(t, "create", res, PushStatusApplied, "")
	if res.ServerUpdatedAt == nil {
		t.Error("applied create has no server_updated_at")
	}
	if res.ServerVersion != nil {
		t.Error("applied create carries a server_version")
	}

	item := ptID()
	ptWant(t, "create child", p.one("alice", "c1", ptCreate("items", item, `{"list_id":"`+list+`","title":"milk"}`)), PushStatusApplied, "")
	pgtest.Exec(t, super, `UPDATE items SET secret = 'hidden-value' WHERE id = $1::uuid`, item)

	// conflict/record_exists carries the server row, limited to the synced
	// columns.
	res = p.one("alice", "c1", ptCreate("items", item, `{"list_id":"`+list+`","title":"other"}`))
	ptWant(t, "create of a live row", res, PushStatusConflict, reasonRecordExists)
	if res.ServerVersion == nil {
		t.Fatal("record_exists without server_version")
	}
	if res.ServerVersion.ID != item || res.ServerVersion.TableName != "items" || res.ServerVersion.UpdatedAt.IsZero() {
		t.Errorf("server_version = %+v", res.ServerVersion)
	}
	var sv map[string]any
	if err := json.Unmarshal(res.ServerVersion.Data, &sv); err != nil {
		t.Fatalf("server_version data %s: %v", res.ServerVersion.Data, err)
	}
	if sv["title"] != "milk" {
		t.Errorf("server_version data title = %v, want milk", sv["title"])
	}
	if _, leaked := sv["secret"]; leaked || strings.Contains(string(res.ServerVersion.Data), "hidden-value") {
		t.Errorf("server_version leaks a column outside SyncColumns: %s", res.ServerVersion.Data)
	}
	if got := pgtest.Count(t, super, `SELECT count(*) FROM items WHERE id = $1::uuid AND title = 'milk'`, item); got != 1 {
		t.Error("the conflicting create changed the row")
	}

	// conflict/server_won_conflict: a client write older than the server's.
	res = p.one("alice", "c1", ptUpdate("lists", list, `{"name":"stale"}`, time.Now().Add(-time.Hour)))
	ptWant(t, "old update", res, PushStatusConflict, reasonServerWon)
	if res.ServerVersion == nil || !strings.Contains(string(res.ServerVersion.Data), "groceries") {
		t.Errorf("server_won_conflict server_version = %+v", res.ServerVersion)
	}
	if name, _ := ptListName(t, super, list); name != "groceries" {
		t.Errorf("list name after a lost update = %q", name)
	}

	// applied update.
	res = p.one("alice", "c1", ptUpdate("lists", list, `{"name":"food"}`, ptFuture()))
	ptWant(t, "update", res, PushStatusApplied, "")
	if name, _ := ptListName(t, super, list); name != "food" {
		t.Errorf("list name after update = %q", name)
	}

	// applied delete, then applied/already_deleted.
	res = p.one("alice", "c1", ptDelete("items", item))
	ptWant(t, "delete", res, PushStatusApplied, "")
	if res.ServerDeletedAt == nil {
		t.Error("applied delete has no server_deleted_at")
	}
	res = p.one("alice", "c1", ptDelete("items", item))
	ptWant(t, "second delete", res, PushStatusApplied, reasonAlreadyDeleted)

	// conflict/record_deleted: an update of a soft-deleted row.
	res = p.one("alice", "c1", ptUpdate("items", item, `{"title":"zombie"}`, ptFuture()))
	ptWant(t, "update of a deleted row", res, PushStatusConflict, reasonRecordDeleted)
	if res.ServerVersion == nil || res.ServerVersion.DeletedAt == nil {
		t.Errorf("record_deleted server_version = %+v, want deleted_at", res.ServerVersion)
	}
	if got := pgtest.Count(t, super, `SELECT count(*) FROM items WHERE id = $1::uuid AND title = 'milk' AND deleted_at IS NOT NULL`, item); got != 1 {
		t.Error("the update of a deleted row changed it")
	}

	// Terminal rejections before any data is read.
	ptWant(t, "unknown table", p.one("alice", "c1", ptCreate("ghosts", ptID(), `{}`)), PushStatusRejectedTerminal, reasonTableNotRegistered)
	ptWant(t, "read-only table", p.one("alice", "c1", ptCreate("categories", "misc", `{"name":"Misc"}`)), PushStatusRejectedTerminal, reasonTableReadOnly)
	ptWant(t, "read-only update", p.one("alice", "c1", ptUpdate("categories", "work", `{"name":"Job"}`, ptFuture())), PushStatusRejectedTerminal, reasonTableReadOnly)
	for _, op := range []string{"upsert", "CREATE", "", "delete "} {
		rec := ptCreate("lists", ptID(), `{"name":"x"}`)
		rec.Operation = op
		res := p.one("alice", "c1", rec)
		ptWant(t, "operation "+op, res, PushStatusRejectedTerminal, reasonInvalidOperation)
	}
	ptWant(t, "invalid data", p.one("alice", "c1", ptCreate("lists", ptID(), `null`)), PushStatusRejectedTerminal, reasonInvalidData)

	// record_not_found.
	ptWant(t, "update missing", p.one("alice", "c1", ptUpdate("lists", ptID(), `{"name":"x"}`, ptFuture())), PushStatusRejectedTerminal, reasonRecordNotFound)
	ptWant(t, "delete missing", p.one("alice", "c1", ptDelete("lists", ptID())), PushStatusRejectedTerminal, reasonRecordNotFound)

	// ownership_violation.
	ptWant(t, "bob updates alice's list", p.one("bob", "c2", ptUpdate("lists", list, `{"name":"mine"}`, ptFuture())), PushStatusRejectedTerminal, reasonOwnershipViolation)

	// create_failed: constraint violations are terminal.
	noName := ptID()
	ptWant(t, "NOT NULL violation", p.one("alice", "c1", ptCreate("lists", noName, `{"category_id":"home"}`)), PushStatusRejectedTerminal, reasonCreateFailed)
	badFK := ptID()
	ptWant(t, "FK violation", p.one("alice", "c1", ptCreate("lists", badFK, `{"name":"x","category_id":"no-such-category"}`)), PushStatusRejectedTerminal, reasonCreateFailed)
	if got := pgtest.Count(t, super, `SELECT count(*) FROM lists WHERE id IN ($1::uuid, $2::uuid)`, noName, badFK); got != 0 {
		t.Errorf("%d failed creates are in the table", got)
	}

	// update_failed: setting a NOT NULL column to null.
	ptWant(t, "update to null", p.one("alice", "c1", ptUpdate("lists", list, `{"name":null}`, ptFuture())), PushStatusRejectedTerminal, reasonUpdateFailed)
	if name, _ := ptListName(t, super, list); name != "food" {
		t.Errorf("list name after a failed update = %q", name)
	}
}

// TestPushInvalidData checks that every malformed payload is refused with
// invalid_data and changes nothing.
func TestPushInvalidData(t *testing.T) {
	t.Parallel()
	p := ptNewEnv(t, nil)
	p.register("alice", "c1")
	super := p.db.Super

	list := ptID()
	ptWant(t, "setup list", p.one("alice", "c1", ptCreate("lists", list, `{"name":"L"}`)), PushStatusApplied, "")
	item := ptID()
	ptWant(t, "setup item", p.one("alice", "c1", ptCreate("items", item, `{"list_id":"`+list+`","title":"T"}`)), PushStatusApplied, "")
	ptWant(t, "setup note", p.one("alice", "c1", ptCreate("notes", "7", `{"body":"B"}`)), PushStatusApplied, "")
	var res PushResult

	other := ptID()
	creates := []struct {
		name, table, id, data string
	}{
		{"null data", "lists", ptID(), `null`},
		{"absent data", "lists", ptID(), ``},
		{"array data", "lists", ptID(), `[{"name":"x"}]`},
		{"string data", "lists", ptID(), `"name"`},
		{"number data", "lists", ptID(), `42`},
		{"malformed JSON", "lists", ptID(), `{"name":`},
		{"trailing garbage", "lists", ptID(), `{"name":"x"} {}`},
		{"unknown column", "lists", ptID(), `{"name":"x","colour":"red"}`},
		{"column not synced", "items", ptID(), `{"list_id":"` + list + `","title":"x","secret":"s"}`},
		{"id differs from record id", "lists", ptID(), `{"id":"` + other + `","name":"x"}`},
		{"wrong type boolean", "items", ptID(), `{"list_id":"` + list + `","title":"x","done":"abc"}`},
		{"wrong type bigint id", "notes", "8", `{"id":"8x","body":"x"}`},
		{"invalid uuid id", "lists", "not-a-uuid", `{"name":"x"}`},
		{"empty id", "lists", "", `{"name":"x"}`},
		{"NUL in id", "lists", "a\x00b", `{"name":"x"}`},
		{"bigint id out of range", "notes", "99999999999999999999", `{"body":"x"}`},
		{"NUL in a text value", "lists", ptID(), `{"name":"a\u0000b"}`},
		{"parent key not a uuid", "items", ptID(), `{"list_id":"not-a-uuid","title":"x"}`},
	}
	for _, c := range creates {
		res := p.one("alice", "c1", ptCreate(c.table, c.id, c.data))
		ptWant(t, c.name, res, PushStatusRejectedTerminal, reasonInvalidData)
		if res.Message == "" {
			t.Errorf("%s: invalid_data without a message", c.name)
		}
	}
	if got := pgtest.Count(t, super, `SELECT count(*) FROM lists`); got != 1 {
		t.Errorf("lists holds %d rows after refused creates, want 1", got)
	}
	if got := pgtest.Count(t, super, `SELECT count(*) FROM items`); got != 1 {
		t.Errorf("items holds %d rows after refused creates, want 1", got)
	}
	if got := pgtest.Count(t, super, `SELECT count(*) FROM notes`); got != 1 {
		t.Errorf("notes holds %d rows after refused creates, want 1", got)
	}

	// The same mistakes in one push, between good records, including a
	// parent key that is not a uuid (the ownership lookup itself fails).
	var batch []PushRecord
	var good []string
	for i, c := range creates {
		batch = append(batch, ptCreate(c.table, c.id, c.data))
		if i%4 == 0 {
			id := ptID()
			good = append(good, id)
			batch = append(batch, ptCreate("lists", id, `{"name":"good"}`))
		}
	}
	badParent := ptID()
	batch = append(batch, ptCreate("items", badParent, `{"list_id":"not-a-uuid","title":"x"}`))
	last := ptID()
	good = append(good, last)
	batch = append(batch, ptCreate("lists", last, `{"name":"good"}`))
	resp := p.push("alice", "c1", batch...)
	if len(resp.Accepted) != len(good) {
		t.Errorf("batch: accepted %d, want %d; rejected %+v", len(resp.Accepted), len(good), resp.Rejected)
	}
	for _, r := range resp.Rejected {
		ptWant(t, "batch "+r.ID, r, PushStatusRejectedTerminal, reasonInvalidData)
	}
	if got := pgtest.Count(t, super, `SELECT count(*) FROM lists WHERE name = 'good'`); got != len(good) {
		t.Errorf("%d good lists in the table, want %d", got, len(good))
	}
	pgtest.Exec(t, super, `DELETE FROM lists WHERE name = 'good'`)

	// The message names the offending column.
	res = p.one("alice", "c1", ptCreate("lists", ptID(), `{"name":"x","colour":"red"}`))
	if !strings.Contains(res.Message, "colour") {
		t.Errorf("unknown column message %q does not name the column", res.Message)
	}
	res = p.one("alice", "c1", ptCreate("items", ptID(), `{"list_id":"`+list+`","title":"x","secret":"s"}`))
	if !strings.Contains(res.Message, "secret") {
		t.Errorf("unsynced column message %q does not name the column", res.Message)
	}

	updates := []struct {
		name, table, id, data string
	}{
		{"update null data", "lists", list, `null`},
		{"update absent data", "lists", list, ``},
		{"update array data", "lists", list, `[]`},
		{"update unknown column", "lists", list, `{"name":"y","colour":"red"}`},
		{"update unsynced column", "items", item, `{"secret":"s"}`},
		{"update wrong type", "items", item, `{"done":"abc"}`},
		{"update other id in data", "lists", list, `{"id":"` + other + `","name":"y"}`},
		{"update invalid uuid id", "lists", "nope", `{"name":"y"}`},
		{"update note with non-numeric id", "notes", "seven", `{"body":"y"}`},
	}
	for _, c := range updates {
		res := p.one("alice", "c1", ptUpdate(c.table, c.id, c.data, ptFuture()))
		ptWant(t, c.name, res, PushStatusRejectedTerminal, reasonInvalidData)
	}
	ptWant(t, "delete invalid uuid id", p.one("alice", "c1", ptDelete("lists", "nope")), PushStatusRejectedTerminal, reasonInvalidData)

	var name, title, secret sql.NullString
	var done bool
	pgtest.QueryRow(t, super, `SELECT l.name, i.title, i.done, i.secret FROM lists l JOIN items i ON i.list_id = l.id WHERE l.id = $1::uuid`, list).Scan(&name, &title, &done, &secret)
	if name.String != "L" || title.String != "T" || done || secret.Valid {
		t.Errorf("rows changed by refused updates: name %v title %v done %v secret %v", name, title, done, secret)
	}
}

// TestPushResurrection brings a soft-deleted row back with a create.
func TestPushResurrection(t *testing.T) {
	t.Parallel()
	p := ptNewEnv(t, nil)
	p.register("alice", "c1")
	super := p.db.Super

	list := ptID()
	ptWant(t, "create", p.one("alice", "c1", ptCreate("lists", list, `{"name":"v1"}`)), PushStatusApplied, "")
	del := p.one("alice", "c1", ptDelete("lists", list))
	ptWant(t, "delete", del, PushStatusApplied, "")

	// A create older than the deletion loses, and the row stays deleted.
	old := ptCreate("lists", list, `{"name":"old"}`)
	old.ClientUpdatedAt = time.Now().Add(-time.Hour)
	ptWant(t, "old resurrection", p.one("alice", "c1", old), PushStatusConflict, reasonServerWon)
	if got := pgtest.Count(t, super, `SELECT count(*) FROM lists WHERE id = $1::uuid AND deleted_at IS NOT NULL AND name = 'v1'`, list); got != 1 {
		t.Fatal("a losing resurrection changed the row")
	}

	rec := ptCreate("lists", list, `{"name":"v2"}`)
	rec.ClientUpdatedAt = ptFuture()
	res := p.one("alice", "c1", rec)
	ptWant(t, "resurrection", res, PushStatusApplied, "")
	var deleted sql.NullTime
	var name string
	var updated time.Time
	pgtest.QueryRow(t, super, `SELECT name, deleted_at, updated_at FROM lists WHERE id = $1::uuid`, list).Scan(&name, &deleted, &updated)
	if deleted.Valid || name != "v2" {
		t.Errorf("after resurrection: name %q deleted_at %v, want v2 and NULL", name, deleted)
	}
	if res.ServerUpdatedAt == nil || !res.ServerUpdatedAt.Equal(updated) || !updated.After(*del.ServerDeletedAt) {
		t.Errorf("resurrection server_updated_at %v, row updated_at %v, deleted at %v", res.ServerUpdatedAt, updated, del.ServerDeletedAt)
	}

	// The same for a child row.
	item := ptID()
	ptWant(t, "create item", p.one("alice", "c1", ptCreate("items", item, `{"list_id":"`+list+`","title":"a"}`)), PushStatusApplied, "")
	ptWant(t, "delete item", p.one("alice", "c1", ptDelete("items", item)), PushStatusApplied, "")
	rec = ptCreate("items", item, `{"list_id":"`+list+`","title":"b","done":true}`)
	rec.ClientUpdatedAt = ptFuture()
	ptWant(t, "resurrect item", p.one("alice", "c1", rec), PushStatusApplied, "")
	if got := pgtest.Count(t, super, `SELECT count(*) FROM items WHERE id = $1::uuid AND deleted_at IS NULL AND title = 'b' AND done`, item); got != 1 {
		t.Error("the item was not resurrected with its new data")
	}
}

// TestPushBatchKeepsGoodRecords mixes good and bad records in one push.
func TestPushBatchKeepsGoodRecords(t *testing.T) {
	t.Parallel()
	p := ptNewEnv(t, nil)
	p.register("alice", "c1")
	p.register("bob", "c2")
	super := p.db.Super

	bobList := ptID()
	ptWant(t, "bob's list", p.one("bob", "c2", ptCreate("lists", bobList, `{"name":"bob"}`)), PushStatusApplied, "")
	existing := ptID()
	ptWant(t, "alice's list", p.one("alice", "c1", ptCreate("lists", existing, `{"name":"before"}`)), PushStatusApplied, "")

	good1, notNull, good2, unknown, fk, good3 := ptID(), ptID(), ptID(), ptID(), ptID(), ptID()
	goodItem := ptID()
	recs := []PushRecord{
		ptCreate("lists", good1, `{"name":"one","category_id":"work"}`),
		ptCreate("lists", notNull, `{"category_id":"work"}`),
		ptCreate("lists", good2, `{"name":"two"}`),
		ptCreate("lists", unknown, `{"name":"x","nope":1}`),
		ptCreate("items", goodItem, `{"list_id":"`+good1+`","title":"first item"}`),
		ptCreate("lists", fk, `{"name":"x","category_id":"missing"}`),
		ptUpdate("lists", bobList, `{"name":"stolen"}`, ptFuture()),
		ptDelete("lists", bobList),
		ptUpdate("lists", existing, `{"name":"after"}`, ptFuture()),
		ptCreate("lists", good3, `{"name":"three"}`),
		ptCreate("notes", "1", `{"body":"note"}`),
	}
	resp := p.push("alice", "c1", recs...)
	for _, id := range []string{good1, good2, good3, goodItem, existing, "1"} {
		ptWant(t, "good record "+id, ptFind(t, resp, id), PushStatusApplied, "")
	}
	ptWant(t, "NOT NULL", ptFind(t, resp, notNull), PushStatusRejectedTerminal, reasonCreateFailed)
	ptWant(t, "unknown column", ptFind(t, resp, unknown), PushStatusRejectedTerminal, reasonInvalidData)
	ptWant(t, "FK", ptFind(t, resp, fk), PushStatusRejectedTerminal, reasonCreateFailed)
	var bobResults []PushResult
	for _, r := range resp.Rejected {
		if r.ID == bobList {
			bobResults = append(bobResults, r)
		}
	}
	if len(bobResults) != 2 {
		t.Fatalf("results for bob's list: %+v", bobResults)
	}
	for _, r := range bobResults {
		ptWant(t, "bob's list "+r.Operation, r, PushStatusRejectedTerminal, reasonOwnershipViolation)
	}
	if len(resp.Accepted) != 6 || len(resp.Rejected) != 5 {
		t.Errorf("accepted %d rejected %d, want 6 and 5", len(resp.Accepted), len(resp.Rejected))
	}
	// Results keep request order within each list.
	var acceptedIDs []string
	for _, r := range resp.Accepted {
		acceptedIDs = append(acceptedIDs, r.ID)
	}
	if want := []string{good1, good2, goodItem, existing, good3, "1"}; !slices.Equal(acceptedIDs, want) {
		t.Errorf("accepted order %v, want %v", acceptedIDs, want)
	}

	if got := pgtest.Count(t, super, `SELECT count(*) FROM lists WHERE id IN ($1::uuid, $2::uuid, $3::uuid) AND user_id = 'alice'`, good1, good2, good3); got != 3 {
		t.Errorf("%d of 3 good lists are in the table", got)
	}
	if got := pgtest.Count(t, super, `SELECT count(*) FROM items WHERE id = $1::uuid`, goodItem); got != 1 {
		t.Error("the good item is missing")
	}
	if got := pgtest.Count(t, super, `SELECT count(*) FROM notes WHERE id = 1 AND user_id = 'alice'`); got != 1 {
		t.Error("the good note is missing")
	}
	if name, _ := ptListName(t, super, existing); name != "after" {
		t.Errorf("updated list name %q, want after", name)
	}
	if got := pgtest.Count(t, super, `SELECT count(*) FROM lists WHERE id IN ($1::uuid, $2::uuid, $3::uuid)`, notNull, unknown, fk); got != 0 {
		t.Errorf("%d bad records are in the table", got)
	}
	if got := pgtest.Count(t, super, `SELECT count(*) FROM lists WHERE id = $1::uuid AND name = 'bob' AND user_id = 'bob' AND deleted_at IS NULL`, bobList); got != 1 {
		t.Error("bob's list was changed by alice's push")
	}
}

// TestPushOwnershipWithoutRLS checks the engine's own ownership checks with
// a role that bypasses RLS and no policies installed.
func TestPushOwnershipWithoutRLS(t *testing.T) {
	t.Parallel()
	p := ptNewEnv(t, nil)
	p.register("alice", "c1")
	p.register("bob", "c2")
	super := p.db.Super

	var rolbypass bool
	pgtest.QueryRow(t, super, `SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user`).Scan(&rolbypass)
	if !rolbypass {
		t.Fatal("the engine's role does not bypass RLS: this test needs one that does")
	}

	list, deadList, item := ptID(), ptID(), ptID()
	ptWant(t, "list", p.one("alice", "c1", ptCreate("lists", list, `{"name":"alice"}`)), PushStatusApplied, "")
	ptWant(t, "dead list", p.one("alice", "c1", ptCreate("lists", deadList, `{"name":"gone"}`)), PushStatusApplied, "")
	ptWant(t, "delete dead list", p.one("alice", "c1", ptDelete("lists", deadList)), PushStatusApplied, "")
	ptWant(t, "item", p.one("alice", "c1", ptCreate("items", item, `{"list_id":"`+list+`","title":"a"}`)), PushStatusApplied, "")
	deadItem := ptID()
	ptWant(t, "dead item", p.one("alice", "c1", ptCreate("items", deadItem, `{"list_id":"`+list+`","title":"d"}`)), PushStatusApplied, "")
	ptWant(t, "delete dead item", p.one("alice", "c1", ptDelete("items", deadItem)), PushStatusApplied, "")
	ptWant(t, "note", p.one("alice", "c1", ptCreate("notes", "42", `{"body":"a"}`)), PushStatusApplied, "")

	resurrect := func(table, id, data string) PushRecord {
		r := ptCreate(table, id, data)
		r.ClientUpdatedAt = ptFuture()
		return r
	}
	bobChild := ptID()
	cases := []struct {
		name string
		rec  PushRecord
	}{
		{"update list", ptUpdate("lists", list, `{"name":"bob"}`, ptFuture())},
		{"update list claiming it", ptUpdate("lists", list, `{"name":"bob","user_id":"bob"}`, ptFuture())},
		{"delete list", ptDelete("lists", list)},
		{"resurrect list", resurrect("lists", deadList, `{"name":"bob"}`)},
		{"create over a live list", ptCreate("lists", list, `{"name":"bob"}`)},
		{"update item", ptUpdate("items", item, `{"title":"bob"}`, ptFuture())},
		{"delete item", ptDelete("items", item)},
		{"resurrect item", resurrect("items", deadItem, `{"list_id":"`+list+`","title":"bob"}`)},
		{"child under alice's list", ptCreate("items", bobChild, `{"list_id":"`+list+`","title":"bob"}`)},
		{"create naming alice as owner", ptCreate("lists", ptID(), `{"name":"x","user_id":"alice"}`)},
		{"update note", ptUpdate("notes", "42", `{"body":"bob"}`, ptFuture())},
		{"delete note", ptDelete("notes", "42")},
		{"create over a note", ptCreate("notes", "42", `{"body":"bob"}`)},
	}
	for _, c := range cases {
		res := p.one("bob", "c2", c.rec)
		ptWant(t, c.name, res, PushStatusRejectedTerminal, reasonOwnershipViolation)
		if res.ServerVersion != nil {
			t.Errorf("%s: refusal carries alice's row: %+v", c.name, res.ServerVersion)
		}
	}

	if got := pgtest.Count(t, super, `SELECT count(*) FROM lists WHERE id = $1::uuid AND user_id = 'alice' AND name = 'alice' AND deleted_at IS NULL`, list); got != 1 {
		t.Error("alice's list changed")
	}
	if got := pgtest.Count(t, super, `SELECT count(*) FROM lists WHERE id = $1::uuid AND user_id = 'alice' AND name = 'gone' AND deleted_at IS NOT NULL`, deadList); got != 1 {
		t.Error("alice's deleted list changed")
	}
	if got := pgtest.Count(t, super, `SELECT count(*) FROM items WHERE id = $1::uuid AND title = 'a' AND deleted_at IS NULL`, item); got != 1 {
		t.Error("alice's item changed")
	}
	if got := pgtest.Count(t, super, `SELECT count(*) FROM items WHERE id = $1::uuid AND title = 'd' AND deleted_at IS NOT NULL`, deadItem); got != 1 {
		t.Error("alice's deleted item changed")
	}
	if got := pgtest.Count(t, super, `SELECT count(*) FROM items WHERE id = $1::uuid`, bobChild); got != 0 {
		t.Error("bob's child under alice's list was created")
	}
	if got := pgtest.Count(t, super, `SELECT count(*) FROM lists WHERE user_id <> 'alice'`); got != 0 {
		t.Errorf("%d lists not owned by alice", got)
	}
	if got := pgtest.Count(t, super, `SELECT count(*) FROM notes WHERE id = 42 AND user_id = 'alice' AND body = 'a'`); got != 1 {
		t.Error("alice's note changed")
	}

	// Nobody moves rows between owners or parents through a push.
	bobList := ptID()
	ptWant(t, "bob's list", p.one("bob", "c2", ptCreate("lists", bobList, `{"name":"bob"}`)), PushStatusApplied, "")
	res := p.one("alice", "c1", ptUpdate("lists", list, `{"user_id":"bob"}`, ptFuture()))
	if res.Status != PushStatusRejectedTerminal {
		t.Errorf("alice giving her list to bob: %+v", res)
	}
	res = p.one("alice", "c1", ptUpdate("items", item, `{"list_id":"`+bobList+`"}`, ptFuture()))
	if res.Status != PushStatusRejectedTerminal {
		t.Errorf("alice moving her item under bob's list: %+v", res)
	}
	if got := pgtest.Count(t, super, `SELECT count(*) FROM items WHERE id = $1::uuid AND list_id = $2::uuid`, item, list); got != 1 {
		t.Error("alice's item moved")
	}
	if got := pgtest.Count(t, super, `SELECT count(*) FROM lists WHERE id = $1::uuid AND user_id = 'alice'`, list); got != 1 {
		t.Error("alice's list changed owner")
	}
	// Repeating the stored owner is accepted.
	ptWant(t, "update repeating the owner", p.one("alice", "c1", ptUpdate("lists", list, `{"user_id":"alice","name":"renamed"}`, ptFuture())), PushStatusApplied, "")
}

// TestPushLastWriteWins checks conflict resolution with the default
// resolver, with and without base_updated_at.
func TestPushLastWriteWins(t *testing.T) {
	t.Parallel()
	p := ptNewEnv(t, nil)
	p.register("alice", "c1")
	super := p.db.Super

	list := ptID()
	created := p.one("alice", "c1", ptCreate("lists", list, `{"name":"v0"}`))
	ptWant(t, "create", created, PushStatusApplied, "")
	server := *created.ServerUpdatedAt

	// Without a base: the client wins only when it is strictly newer.
	ptWant(t, "older, no base", p.one("alice", "c1", ptUpdate("lists", list, `{"name":"older"}`, server.Add(-time.Millisecond))), PushStatusConflict, reasonServerWon)
	ptWant(t, "tie, no base", p.one("alice", "c1", ptUpdate("lists", list, `{"name":"tie"}`, server)), PushStatusConflict, reasonServerWon)
	ptWant(t, "zero time, no base", p.one("alice", "c1", ptUpdate("lists", list, `{"name":"zero"}`, time.Time{})), PushStatusConflict, reasonServerWon)
	res := p.one("alice", "c1", ptUpdate("lists", list, `{"name":"v1"}`, server.Add(time.Millisecond)))
	ptWant(t, "newer, no base", res, PushStatusApplied, "")
	if name, _ := ptListName(t, super, list); name != "v1" {
		t.Fatalf("name %q, want v1", name)
	}
	server = *res.ServerUpdatedAt

	// Base equal to the server's updated_at: the row has not changed since
	// the client read it, so the client wins whatever its clock says.
	upd := ptUpdate("lists", list, `{"name":"v2"}`, time.Now().Add(-24*time.Hour))
	upd.BaseUpdatedAt = &server
	res = p.one("alice", "c1", upd)
	ptWant(t, "base equal, old clock", res, PushStatusApplied, "")
	if name, _ := ptListName(t, super, list); name != "v2" {
		t.Fatalf("name %q, want v2", name)
	}
	stale := server
	server = *res.ServerUpdatedAt

	// A base from before the last write and an older client time: server.
	upd = ptUpdate("lists", list, `{"name":"stale base"}`, stale)
	upd.BaseUpdatedAt = &stale
	ptWant(t, "stale base, older", p.one("alice", "c1", upd), PushStatusConflict, reasonServerWon)

	// A base the server never had (after its updated_at): server, even
	// with a newer client time.
	ahead := server.Add(time.Hour)
	upd = ptUpdate("lists", list, `{"name":"ahead"}`, ptFuture().Add(time.Hour))
	upd.BaseUpdatedAt = &ahead
	ptWant(t, "base ahead", p.one("alice", "c1", upd), PushStatusConflict, reasonServerWon)

	// A stale base with a newer client time: client.
	upd = ptUpdate("lists", list, `{"name":"v3"}`, server.Add(time.Millisecond))
	upd.BaseUpdatedAt = &stale
	ptWant(t, "stale base, newer", p.one("alice", "c1", upd), PushStatusApplied, "")
	if name, _ := ptListName(t, super, list); name != "v3" {
		t.Errorf("name %q, want v3", name)
	}

	// Deletes always win.
	ptWant(t, "delete", p.one("alice", "c1", PushRecord{ID: list, TableName: "lists", Operation: "delete"}), PushStatusApplied, "")
}

// TestPushClockSkewTolerance checks Config.ClockSkewTolerance through the
// default resolver: with 1s, a client 5s behind loses and 500ms behind wins.
func TestPushClockSkewTolerance(t *testing.T) {
	t.Parallel()
	p := ptNewEnv(t, func(c *Config) { c.ClockSkewTolerance = time.Second })
	p.register("alice", "c1")

	list := ptID()
	created := p.one("alice", "c1", ptCreate("lists", list, `{"name":"v0"}`))
	ptWant(t, "create", created, PushStatusApplied, "")
	server := *created.ServerUpdatedAt

	ptWant(t, "5s behind", p.one("alice", "c1", ptUpdate("lists", list, `{"name":"late"}`, server.Add(-5*time.Second))), PushStatusConflict, reasonServerWon)
	res := p.one("alice", "c1", ptUpdate("lists", list, `{"name":"close"}`, server.Add(-500*time.Millisecond)))
	ptWant(t, "500ms behind", res, PushStatusApplied, "")
	if name, _ := ptListName(t, p.db.Super, list); name != "close" {
		t.Errorf("name %q, want close", name)
	}
	if res.ServerUpdatedAt == nil {
		t.Fatal("no server_updated_at")
	}
	server = *res.ServerUpdatedAt

	// Without the tolerance the same 500ms-behind write loses.
	q := ptEngine(t, p.db, p.db.Super, ptRegistry(t), nil)
	q.register("alice", "c9")
	ptWant(t, "500ms behind without tolerance", q.one("alice", "c9", ptUpdate("lists", list, `{"name":"no"}`, server.Add(-500*time.Millisecond))), PushStatusConflict, reasonServerWon)
	ptWant(t, "500ms ahead without tolerance", q.one("alice", "c9", ptUpdate("lists", list, `{"name":"yes"}`, server.Add(500*time.Millisecond))), PushStatusApplied, "")
}

// TestPushServerTimestamps checks that the engine, not the client, sets
// updated_at and deleted_at, from the database clock.
func TestPushServerTimestamps(t *testing.T) {
	t.Parallel()
	p := ptNewEnv(t, nil)
	p.register("alice", "c1")
	super := p.db.Super

	dbNow := func() time.Time {
		var ts time.Time
		pgtest.QueryRow(t, super, `SELECT clock_timestamp()`).Scan(&ts)
		return ts
	}
	rowTimes := func(id string) (updated time.Time, deleted sql.NullTime) {
		pgtest.QueryRow(t, super, `SELECT updated_at, deleted_at FROM lists WHERE id = $1::uuid`, id).Scan(&updated, &deleted)
		return updated, deleted
	}

	list := ptID()
	before := dbNow()
	created := p.one("alice", "c1", ptCreate("lists", list, `{"name":"a"}`))
	after := dbNow()
	ptWant(t, "create", created, PushStatusApplied, "")
	u0, d0 := rowTimes(list)
	if created.ServerUpdatedAt == nil || !created.ServerUpdatedAt.Equal(u0) {
		t.Fatalf("create server_updated_at %v, row %v", created.ServerUpdatedAt, u0)
	}
	if u0.Before(before) || u0.After(after) || d0.Valid {
		t.Errorf("created updated_at %v not within [%v, %v] or deleted_at %v set", u0, before, after, d0)
	}

	// A client cannot write the timestamps, in either direction: whole
	// rows carry them, and their values are ignored.
	var created0 time.Time
	pgtest.QueryRow(t, super, `SELECT created_at FROM lists WHERE id = $1::uuid`, list).Scan(&created0)
	prevU := u0
	for _, data := range []string{
		`{"name":"b","updated_at":"2099-01-01T00:00:00Z"}`,
		`{"name":"b","updated_at":"2000-01-01T00:00:00Z"}`,
		`{"name":"b","deleted_at":"2000-01-01T00:00:00Z"}`,
		`{"name":"b","created_at":"2000-01-01T00:00:00Z"}`,
	} {
		ptWant(t, "update "+data, p.one("alice", "c1", ptUpdate("lists", list, data, ptFuture())), PushStatusApplied, "")
		u, d := rowTimes(list)
		var c time.Time
		pgtest.QueryRow(t, super, `SELECT created_at FROM lists WHERE id = $1::uuid`, list).Scan(&c)
		if !u.After(prevU) || u.Year() != prevU.Year() || d.Valid || !c.Equal(created0) {
			t.Errorf("update %s: the pushed timestamps were written: updated_at %v (before %v), deleted_at %v, created_at %v (was %v)", data, u, prevU, d, c, created0)
		}
		prevU = u
	}
	u0 = prevU

	// Each update moves updated_at forward, to the server clock.
	prev := u0
	for i := range 3 {
		res := p.one("alice", "c1", ptUpdate("lists", list, fmt.Sprintf(`{"name":"v%d"}`, i), ptFuture()))
		ptWant(t, "update", res, PushStatusApplied, "")
		u, _ := rowTimes(list)
		if !u.After(prev) || res.ServerUpdatedAt == nil || !res.ServerUpdatedAt.Equal(u) {
			t.Errorf("update %d: updated_at %v (was %v), server_updated_at %v", i, u, prev, res.ServerUpdatedAt)
		}
		if u.After(dbNow()) {
			t.Errorf("update %d: updated_at %v is in the server's future", i, u)
		}
		prev = u
	}

	// A delete sets deleted_at (and updated_at) from the server clock.
	before = dbNow()
	del := p.one("alice", "c1", ptDelete("lists", list))
	after = dbNow()
	ptWant(t, "delete", del, PushStatusApplied, "")
	u, d := rowTimes(list)
	if !d.Valid || del.ServerDeletedAt == nil || !del.ServerDeletedAt.Equal(d.Time) {
		t.Fatalf("delete: row deleted_at %v, server_deleted_at %v", d, del.ServerDeletedAt)
	}
	if d.Time.Before(before) || d.Time.After(after) {
		t.Errorf("deleted_at %v not within [%v, %v]", d.Time, before, after)
	}
	if !u.After(prev) {
		t.Errorf("delete did not move updated_at forward: %v, was %v", u, prev)
	}
}

// TestPushConcurrentUpdatesKeepLatest has two clients update one row at
// the same time; the row must end with the applied write whose
// client_updated_at is the greatest.
func TestPushConcurrentUpdatesKeepLatest(t *testing.T) {
	t.Parallel()
	p := ptNewEnv(t, nil)
	p.register("alice", "c1")
	p.register("alice", "c2")
	list := ptID()
	ptWant(t, "create", p.one("alice", "c1", ptCreate("lists", list, `{"name":"start"}`)), PushStatusApplied, "")

	type outcome struct {
		name   string
		at     time.Time
		status string
		server *time.Time
	}
	const perClient = 25
	results := make(chan outcome, 2*perClient)
	errs := make(chan error, 2)
	var wg sync.WaitGroup
	for g, client := range []string{"c1", "c2"} {
		wg.Go(func() {
			for i := range perClient {
				name := fmt.Sprintf("%s-%02d", client, i)
				// Each client's clock moves forward; the two interleave.
				at := time.Now()
				resp, err := p.pushErr("alice", client, ptUpdate("lists", list, `{"name":"`+name+`"}`, at))
				if err != nil {
					errs <- fmt.Errorf("client %d push %d: %w", g, i, err)
					return
				}
				r := slices.Concat(resp.Accepted, resp.Rejected)
				if len(r) != 1 {
					errs <- fmt.Errorf("client %d push %d: %d results", g, i, len(r))
					return
				}
				results <- outcome{name, at, r[0].Status + "/" + r[0].ReasonCode, r[0].ServerUpdatedAt}
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(2 * time.Minute):
		t.Fatal("concurrent pushes did not finish within 2 minutes")
	}
	close(results)
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	var latest *outcome
	applied := 0
	for o := range results {
		switch o.status {
		case PushStatusApplied + "/":
			applied++
			if latest == nil || o.at.After(latest.at) {
				latest = &o
			}
		case PushStatusConflict + "/" + reasonServerWon:
		default:
			t.Errorf("update %s: unexpected outcome %s", o.name, o.status)
		}
	}
	if latest == nil {
		t.Fatal("no update was applied")
	}
	var name string
	var updated time.Time
	pgtest.QueryRow(t, p.db.Super, `SELECT name, updated_at FROM lists WHERE id = $1::uuid`, list).Scan(&name, &updated)
	if name != latest.name {
		t.Errorf("row holds %q; the applied write with the greatest client time is %q (%d applied)", name, latest.name, applied)
	}
	if latest.server == nil || !latest.server.Equal(updated) {
		t.Errorf("row updated_at %v, latest applied write's server_updated_at %v", updated, latest.server)
	}
}

// TestPushLocksRowBeforeDeciding holds a lock on a row while a push
// updates it, changes the row meanwhile, and checks that the push decides
// on the changed row (no check-then-act race).
func TestPushLocksRowBeforeDeciding(t *testing.T) {
	t.Parallel()
	p := ptNewEnv(t, nil)
	p.register("alice", "c1")
	super := p.db.Super
	list := ptID()
	ptWant(t, "create", p.one("alice", "c1", ptCreate("lists", list, `{"name":"start"}`)), PushStatusApplied, "")

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tx, err := super.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback() }()
	if _, err := tx.ExecContext(ctx, `SELECT 1 FROM lists WHERE id = $1::uuid FOR UPDATE`, list); err != nil {
		t.Fatal(err)
	}

	type result struct {
		resp *PushResponse
		err  error
	}
	out := make(chan result, 1)
	go func() {
		// Newer than the row as it is now, older than the row will be.
		resp, err := p.pushErr("alice", "c1", ptUpdate("lists", list, `{"name":"client"}`, time.Now().Add(time.Minute)))
		out <- result{resp, err}
	}()

	// Wait (with a deadline) until the push waits for the row lock.
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for waiting := false; !waiting; {
		select {
		case <-ctx.Done():
			t.Fatal("the push never waited for the row lock")
		case r := <-out:
			t.Fatalf("the push finished while the row was locked: %+v %v", r.resp, r.err)
		case <-tick.C:
		}
		var n int
		if err := super.QueryRowContext(ctx, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		waiting = n > 0
	}

	if _, err := tx.ExecContext(ctx, `UPDATE lists SET name = 'direct', updated_at = clock_timestamp() + interval '1 hour' WHERE id = $1::uuid`, list); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}

	var r result
	select {
	case r = <-out:
	case <-ctx.Done():
		t.Fatal("the push did not finish after the lock was released")
	}
	if r.err != nil {
		t.Fatalf("Push: %v", r.err)
	}
	res := slices.Concat(r.resp.Accepted, r.resp.Rejected)
	if len(res) != 1 {
		t.Fatalf("results %+v", r.resp)
	}
	ptWant(t, "update racing a newer write", res[0], PushStatusConflict, reasonServerWon)
	if name, _ := ptListName(t, super, list); name != "direct" {
		t.Errorf("row name %q: the push overwrote a newer write it never compared with", name)
	}
}

// TestPushConcurrentCreatesSameID has two clients create the same record
// at once: one is applied, the other sees record_exists, neither errors.
func TestPushConcurrentCreatesSameID(t *testing.T) {
	t.Parallel()
	p := ptNewEnv(t, nil)
	p.register("alice", "c1")
	p.register("alice", "c2")
	for round := range 10 {
		id := ptID()
		type result struct {
			res PushResult
			err error
		}
		out := make(chan result, 2)
		for _, client := range []string{"c1", "c2"} {
			go func() {
				resp, err := p.pushErr("alice", client, ptCreate("lists", id, `{"name":"`+client+`"}`))
				if err != nil {
					out <- result{err: err}
					return
				}
				out <- result{res: slices.Concat(resp.Accepted, resp.Rejected)[0]}
			}()
		}
		var statuses []string
		for range 2 {
			select {
			case r := <-out:
				if r.err != nil {
					t.Fatalf("round %d: Push: %v", round, r.err)
				}
				statuses = append(statuses, r.res.Status+"/"+r.res.ReasonCode)
			case <-time.After(time.Minute):
				t.Fatalf("round %d: pushes did not finish", round)
			}
		}
		slices.Sort(statuses)
		if want := []string{"applied/", "conflict/record_exists"}; !slices.Equal(statuses, want) {
			t.Errorf("round %d: outcomes %v, want %v", round, statuses, want)
		}
	}
}

// TestPushColumnTypesRoundTrip pushes every supported kind of column and
// reads the values back with SQL.
func TestPushColumnTypesRoundTrip(t *testing.T) {
	t.Parallel()
	db := pgtest.NewMigratedDatabase(t)
	pgtest.Exec(t, db.Super, `
CREATE TYPE mood AS ENUM ('happy', 'sad', 'meh');
CREATE TABLE typed (
	id         uuid PRIMARY KEY,
	user_id    text NOT NULL,
	big        bigint,
	num        numeric(30,10),
	small      integer,
	doc        jsonb,
	ints       int[],
	tags       text[],
	raw        bytea,
	feel       mood,
	at         timestamptz,
	day        date,
	clock      time,
	ref        uuid,
	flag       boolean,
	ratio      double precision,
	label      text,
	updated_at timestamptz NOT NULL DEFAULT now(),
	deleted_at timestamptz
)`)
	reg := NewRegistry()
	reg.Register(&TableConfig{TableName: "typed", OwnerColumn: "user_id"})
	p := ptEngine(t, db, db.Super, reg, nil)
	p.register("alice", "c1")

	id, ref := ptID(), ptID()
	data := `{
		"big": 9007199254740993,
		"num": 12345678901234567890.0123456789,
		"small": -7,
		"doc": {"a": {"b": [1, 2, {"c": null}], "d": "e"}, "n": 9007199254740993, "f": 0.1},
		"ints": [1, -2, 3],
		"tags": ["x", "y z", "ü", "with,comma", "quote\"d"],
		"raw": "\\x0102ff",
		"feel": "sad",
		"at": "2024-02-29T12:34:56.123456+02:00",
		"day": "2024-02-29",
		"clock": "23:59:58.5",
		"ref": "` + ref + `",
		"flag": true,
		"ratio": 3.141592653589793,
		"label": "héllo 🌍 日本語 \t\n end"
	}`
	ptWant(t, "create", p.one("alice", "c1", ptCreate("typed", id, data)), PushStatusApplied, "")

	type row struct {
		big, num, small, ints, tags, raw, feel, day, clock, ref, ratio, label, nBig string
		docOK, atOK, flag                                                           bool
	}
	read := func() row {
		var r row
		pgtest.QueryRow(t, db.Super, `
SELECT big::text, num::text, small::text, ints::text, tags::text, encode(raw, 'hex'), feel::text,
       day::text, clock::text, ref::text, ratio::text, label, (doc->>'n'),
       doc = $2::jsonb, at = '2024-02-29T10:34:56.123456Z'::timestamptz, flag
  FROM typed WHERE id = $1::uuid`, id, `{"a": {"b": [1, 2, {"c": null}], "d": "e"}, "n": 9007199254740993, "f": 0.1}`).Scan(&r.big, &r.num, &r.small, &r.ints, &r.tags, &r.raw, &r.feel, &r.day, &r.clock, &r.ref, &r.ratio, &r.label, &r.nBig,
			&r.docOK, &r.atOK, &r.flag)
		return r
	}
	got := read()
	want := row{
		big: "9007199254740993", num: "12345678901234567890.0123456789", small: "-7",
		ints: "{1,-2,3}", tags: `{x,"y z",ü,"with,comma","quote\"d"}`, raw: "0102ff", feel: "sad",
		day: "2024-02-29", clock: "23:59:58.5", ref: ref, ratio: "3.141592653589793",
		label: "héllo 🌍 日本語 \t\n end", nBig: "9007199254740993",
		docOK: true, atOK: true, flag: true,
	}
	if got != want {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, want)
	}

	// The server's row, as a conflict carries it, keeps the precision too.
	res := p.one("alice", "c1", ptCreate("typed", id, `{}`))
	ptWant(t, "create of an existing row", res, PushStatusConflict, reasonRecordExists)
	if res.ServerVersion == nil {
		t.Fatal("no server_version")
	}
	for _, s := range []string{`9007199254740993`, `12345678901234567890.0123456789`, `\\x0102ff`, `"sad"`} {
		if !strings.Contains(string(res.ServerVersion.Data), s) {
			t.Errorf("server_version data %s lacks %s", res.ServerVersion.Data, s)
		}
	}

	// An update with extreme values, then with NULLs.
	ptWant(t, "update", p.one("alice", "c1", ptUpdate("typed", id, `{
		"big": -9223372036854775808, "num": -0.0000000001, "ints": [], "tags": [], "raw": "\\x",
		"feel": "meh", "ratio": -1.5e300, "flag": false, "label": "", "doc": [1, "two", {"3": [4]}]}`, ptFuture())), PushStatusApplied, "")
	var big, num, ints, tags, raw, feel, ratio, label, doc string
	var flag bool
	pgtest.QueryRow(t, db.Super, `SELECT big::text, num::text, ints::text, tags::text, encode(raw, 'hex'), feel::text, ratio::text, label, doc::text, flag FROM typed WHERE id = $1::uuid`, id).Scan(&big, &num, &ints, &tags, &raw, &feel, &ratio, &label, &doc, &flag)
	if big != "-9223372036854775808" || num != "-0.0000000001" || ints != "{}" || tags != "{}" || raw != "" ||
		feel != "meh" || ratio != "-1.5e+300" || label != "" || doc != `[1, "two", {"3": [4]}]` || flag {
		t.Errorf("after update: big %s num %s ints %s tags %s raw %q feel %s ratio %s label %q doc %s flag %v",
			big, num, ints, tags, raw, feel, ratio, label, doc, flag)
	}
	ptWant(t, "update to nulls", p.one("alice", "c1", ptUpdate("typed", id, `{"big":null,"num":null,"doc":null,"ints":null,"raw":null,"feel":null,"at":null,"day":null,"clock":null,"ref":null,"flag":null,"ratio":null,"label":null}`, ptFuture())), PushStatusApplied, "")
	if n := pgtest.Count(t, db.Super, `SELECT count(*) FROM typed WHERE id = $1::uuid AND num IS NULL AND big IS NULL AND doc IS NULL AND ints IS NULL AND raw IS NULL AND feel IS NULL AND at IS NULL AND flag IS NULL AND label IS NULL AND tags IS NOT NULL`, id); n != 1 {
		t.Error("update to nulls did not set exactly the named columns to NULL")
	}

	// Values of the wrong type are refused per record.
	for _, bad := range []string{
		`{"big": 9223372036854775808}`, `{"big": 1.5}`, `{"small": "seven"}`, `{"num": 1e30}`,
		`{"ints": [1, "x"]}`, `{"ints": {"a": 1}}`, `{"raw": "\\xzz"}`, `{"feel": "angry"}`, `{"at": "yesterday-ish"}`,
		`{"day": "2024-02-30"}`, `{"clock": "25:00"}`, `{"ref": "nope"}`, `{"flag": "abc"}`, `{"ratio": "fast"}`,
		`{"ratio": 1e400}`,
	} {
		res := p.one("alice", "c1", ptCreate("typed", ptID(), bad))
		if res.Status != PushStatusRejectedTerminal || (res.ReasonCode != reasonInvalidData && res.ReasonCode != reasonCreateFailed) {
			t.Errorf("create %s: %s/%s (%s), want rejected_terminal invalid_data or create_failed", bad, res.Status, res.ReasonCode, res.Message)
		}
	}
	if n := pgtest.Count(t, db.Super, `SELECT count(*) FROM typed`); n != 1 {
		t.Errorf("typed holds %d rows, want 1", n)
	}
}

// TestPushBatchLimit refuses a push of more than 1000 records as a whole.
func TestPushBatchLimit(t *testing.T) {
	t.Parallel()
	p := ptNewEnv(t, nil)
	p.register("alice", "c1")

	recs := make([]PushRecord, 1001)
	for i := range recs {
		recs[i] = ptCreate("notes", fmt.Sprint(i+1), `{"body":"x"}`)
	}
	resp, err := p.pushErr("alice", "c1", recs...)
	if err == nil {
		t.Fatalf("a push of 1001 records succeeded: %d accepted", len(resp.Accepted))
	}
	if !isBadRequest(err) {
		t.Errorf("error %v is not a bad request", err)
	}
	if n := pgtest.Count(t, p.db.Super, `SELECT count(*) FROM notes`); n != 0 {
		t.Errorf("%d records applied from a refused push", n)
	}

	resp = p.push("alice", "c1", recs[:1000]...)
	if len(resp.Accepted) != 1000 {
		t.Errorf("a push of 1000 records accepted %d: first rejection %+v", len(resp.Accepted), resp.Rejected)
	}
	if n := pgtest.Count(t, p.db.Super, `SELECT count(*) FROM notes`); n != 1000 {
		t.Errorf("%d of 1000 records applied", n)
	}
}

// TestPushRequestErrors covers the errors that refuse a whole push.
func TestPushRequestErrors(t *testing.T) {
	t.Parallel()
	p := ptNewEnv(t, nil)
	p.register("alice", "c1")
	rec := ptCreate("lists", ptID(), `{"name":"x"}`)
	ctx := t.Context()

	if _, err := p.pushErr("alice", "never-registered", rec); !errors.Is(err, ErrClientNotRegistered) {
		t.Errorf("unregistered client: %v, want ErrClientNotRegistered", err)
	}
	if _, err := p.pushErr("bob", "c1", rec); !errors.Is(err, ErrClientNotRegistered) {
		t.Errorf("another user's client id: %v, want ErrClientNotRegistered", err)
	}
	if _, err := p.pushErr("alice", "", rec); err == nil || !isBadRequest(err) {
		t.Errorf("empty client id: %v, want a bad request", err)
	}
	if _, err := p.e.Push(ctx, "alice", nil); err == nil || !isBadRequest(err) {
		t.Errorf("nil request: %v, want a bad request", err)
	}
	if _, err := p.pushErr("", "c1", rec); err == nil {
		t.Error("empty user id accepted")
	}

	// The schema contract must be exactly the server's; bootstrap is not
	// enough to push.
	for _, s := range []struct {
		v int64
		h string
	}{{0, ""}, {p.ver, ""}, {0, p.hash}, {p.ver + 1, p.hash}, {p.ver, "deadbeef"}, {p.ver - 1, p.hash}} {
		_, err := p.e.Push(ctx, "alice", &PushRequest{ClientID: "c1", Changes: []PushRecord{rec}, SchemaVersion: s.v, SchemaHash: s.h})
		if !errors.Is(err, ErrSchemaMismatch) {
			t.Errorf("schema (%d, %q): %v, want ErrSchemaMismatch", s.v, s.h, err)
		}
	}
	if n := pgtest.Count(t, p.db.Super, `SELECT count(*) FROM lists`); n != 0 {
		t.Errorf("%d records applied by refused pushes", n)
	}

	// An empty push returns empty, non-nil lists.
	resp := p.push("alice", "c1")
	if resp.Accepted == nil || resp.Rejected == nil || resp.SchemaVersion != p.ver || resp.SchemaHash != p.hash || resp.ServerTime.IsZero() {
		t.Errorf("empty push response %+v", resp)
	}
	raw, err := json.Marshal(resp)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(raw), `"accepted":[]`) || !strings.Contains(string(raw), `"rejected":[]`) {
		t.Errorf("empty push response encodes as %s", raw)
	}
	// And so does a push with only accepted records.
	resp = p.push("alice", "c1", rec)
	if resp.Rejected == nil || len(resp.Accepted) != 1 {
		t.Errorf("push response %+v", resp)
	}
}

// TestPushStaleClient checks Hooks.OnStaleClient.
func TestPushStaleClient(t *testing.T) {
	t.Parallel()
	var (
		mu     sync.Mutex
		allow  bool
		calls  []string
		lastAt []time.Time
	)
	p := ptNewEnv(t, func(c *Config) {
		c.Hooks.OnStaleClient = func(_ context.Context, clientID string, lastSync time.Time) bool {
			mu.Lock()
			defer mu.Unlock()
			calls = append(calls, clientID)
			lastAt = append(lastAt, lastSync)
			return allow
		}
	})
	p.register("alice", "c1")
	super := p.db.Super

	// A fresh client syncs without consulting the hook.
	ptWant(t, "first push", p.one("alice", "c1", ptCreate("lists", ptID(), `{"name":"a"}`)), PushStatusApplied, "")
	ptWant(t, "second push", p.one("alice", "c1", ptCreate("lists", ptID(), `{"name":"b"}`)), PushStatusApplied, "")
	mu.Lock()
	if len(calls) != 0 {
		t.Errorf("OnStaleClient called for a fresh client: %v", calls)
	}
	mu.Unlock()

	// Long unsynced: the hook refuses.
	pgtest.Exec(t, super, `UPDATE synchro.clients SET last_sync_at = now() - interval '30 days' WHERE client_id = 'c1'`)
	stale := ptID()
	if _, err := p.pushErr("alice", "c1", ptCreate("lists", stale, `{"name":"stale"}`)); !errors.Is(err, ErrStaleClient) {
		t.Errorf("stale client: %v, want ErrStaleClient", err)
	}
	mu.Lock()
	if len(calls) != 1 || calls[0] != "c1" || time.Since(lastAt[0]) < 29*24*time.Hour {
		t.Errorf("OnStaleClient calls %v with last sync %v", calls, lastAt)
	}
	mu.Unlock()

	// Deactivated (by compaction) with a recent sync: the hook is asked too.
	pgtest.Exec(t, super, `UPDATE synchro.clients SET last_sync_at = now(), is_active = false WHERE client_id = 'c1'`)
	if _, err := p.pushErr("alice", "c1", ptCreate("lists", stale, `{"name":"stale"}`)); !errors.Is(err, ErrStaleClient) {
		t.Errorf("deactivated client refused by the hook: %v, want ErrStaleClient", err)
	}
	if n := pgtest.Count(t, super, `SELECT count(*) FROM lists WHERE id = $1::uuid`, stale); n != 0 {
		t.Error("a refused stale push was applied")
	}

	// The hook allows: the push goes through.
	mu.Lock()
	allow = true
	mu.Unlock()
	ptWant(t, "allowed stale push", p.one("alice", "c1", ptCreate("lists", stale, `{"name":"stale"}`)), PushStatusApplied, "")
}

// TestPushDeactivatedClientWithoutHook checks that a client compaction
// marked inactive can still push when no OnStaleClient hook is set.
func TestPushDeactivatedClientWithoutHook(t *testing.T) {
	t.Parallel()
	p := ptNewEnv(t, nil)
	p.register("alice", "c1")
	ptWant(t, "push", p.one("alice", "c1", ptCreate("lists", ptID(), `{"name":"a"}`)), PushStatusApplied, "")
	pgtest.Exec(t, p.db.Super, `UPDATE synchro.clients SET is_active = false, last_sync_at = now() - interval '90 days'`)
	id := ptID()
	ptWant(t, "push while inactive", p.one("alice", "c1", ptCreate("lists", id, `{"name":"b"}`)), PushStatusApplied, "")
	if n := pgtest.Count(t, p.db.Super, `SELECT count(*) FROM lists WHERE id = $1::uuid`, id); n != 1 {
		t.Error("the inactive client's record is not in the table")
	}
}

// TestPushOnPushAccepted checks the hook's input and that it runs inside
// the push transaction.
func TestPushOnPushAccepted(t *testing.T) {
	t.Parallel()
	var (
		mu   sync.Mutex
		got  [][]AcceptedRecord
		fail atomic.Bool
	)
	p := ptNewEnv(t, func(c *Config) {
		c.Hooks.OnPushAccepted = func(ctx context.Context, tx *sql.Tx, accepted []AcceptedRecord) error {
			mu.Lock()
			got = append(got, slices.Clone(accepted))
			mu.Unlock()
			// The hook's writes share the push's fate.
			if _, err := tx.ExecContext(ctx, `INSERT INTO hook_log (n) VALUES ($1)`, len(accepted)); err != nil {
				return err
			}
			if fail.Load() {
				return errors.New("search index unavailable")
			}
			return nil
		}
	})
	pgtest.Exec(t, p.db.Super, `CREATE TABLE hook_log (n int NOT NULL)`)
	p.register("alice", "c1")
	super := p.db.Super

	list, dead := ptID(), ptID()
	ptWant(t, "setup", p.one("alice", "c1", ptCreate("lists", dead, `{"name":"d"}`)), PushStatusApplied, "")
	ptWant(t, "setup delete", p.one("alice", "c1", ptDelete("lists", dead)), PushStatusApplied, "")
	mu.Lock()
	got = nil
	mu.Unlock()
	pgtest.Exec(t, super, `DELETE FROM hook_log`)

	resp := p.push("alice", "c1",
		ptCreate("lists", list, `{"name":"a"}`),
		ptCreate("lists", ptID(), `{"bad":1}`),
		ptUpdate("lists", list, `{"name":"b"}`, ptFuture()),
		ptDelete("lists", dead),
		ptCreate("notes", "5", `{"body":"n"}`),
	)
	if len(resp.Accepted) != 4 {
		t.Fatalf("accepted %+v rejected %+v", resp.Accepted, resp.Rejected)
	}
	want := []AcceptedRecord{
		{ID: list, TableName: "lists", Operation: OpInsert},
		{ID: list, TableName: "lists", Operation: OpUpdate},
		{ID: dead, TableName: "lists", Operation: OpDelete},
		{ID: "5", TableName: "notes", Operation: OpInsert},
	}
	mu.Lock()
	if len(got) != 1 || !slices.Equal(got[0], want) {
		t.Errorf("OnPushAccepted got %+v, want one call with %+v", got, want)
	}
	got = nil
	mu.Unlock()
	if n := pgtest.Count(t, super, `SELECT count(*) FROM hook_log WHERE n = 4`); n != 1 {
		t.Error("the hook's write in the push transaction was not committed")
	}

	// A push with nothing accepted does not call the hook.
	p.push("alice", "c1", ptCreate("lists", ptID(), `null`))
	mu.Lock()
	if len(got) != 0 {
		t.Errorf("OnPushAccepted called for a push with nothing accepted: %+v", got)
	}
	mu.Unlock()

	// The hook's error rolls the whole push back.
	fail.Store(true)
	a, b := ptID(), ptID()
	_, err := p.pushErr("alice", "c1",
		ptCreate("lists", a, `{"name":"a"}`),
		ptUpdate("lists", list, `{"name":"rolled back"}`, ptFuture()),
		ptCreate("items", b, `{"list_id":"`+a+`","title":"t"}`),
		ptCreate("notes", "6", `{"body":"n"}`),
	)
	if err == nil || !strings.Contains(err.Error(), "search index unavailable") {
		t.Fatalf("Push with a failing hook: %v", err)
	}
	if n := pgtest.Count(t, super, `SELECT count(*) FROM lists WHERE id = $1::uuid`, a); n != 0 {
		t.Error("a create survived the hook's error")
	}
	if n := pgtest.Count(t, super, `SELECT count(*) FROM items WHERE id = $1::uuid`, b); n != 0 {
		t.Error("a child create survived the hook's error")
	}
	if n := pgtest.Count(t, super, `SELECT count(*) FROM notes WHERE id = 6`); n != 0 {
		t.Error("a note create survived the hook's error")
	}
	if name, _ := ptListName(t, super, list); name != "b" {
		t.Errorf("an update survived the hook's error: name %q", name)
	}
	if n := pgtest.Count(t, super, `SELECT count(*) FROM hook_log`); n != 1 {
		t.Errorf("hook_log holds %d rows, want 1 (the failed push's write rolled back)", n)
	}
}

// ptCountingResolver counts its calls and delegates to LWW.
type ptCountingResolver struct {
	calls atomic.Int64
	lww   LWWResolver
}

func (r *ptCountingResolver) Resolve(ctx context.Context, c Conflict) (Resolution, error) {
	r.calls.Add(1)
	return r.lww.Resolve(ctx, c)
}

// TestPushOnConflict checks that OnConflict sees every resolution, with the
// pushing client's id.
func TestPushOnConflict(t *testing.T) {
	t.Parallel()
	type call struct {
		c Conflict
		r Resolution
	}
	var (
		mu    sync.Mutex
		calls []call
	)
	resolver := &ptCountingResolver{}
	p := ptNewEnv(t, func(c *Config) {
		c.ConflictResolver = resolver
		c.Hooks.OnConflict = func(_ context.Context, c Conflict, r Resolution) {
			mu.Lock()
			calls = append(calls, call{c, r})
			mu.Unlock()
		}
	})
	p.register("alice", "phone")
	p.register("alice", "laptop")

	list := ptID()
	created := p.one("alice", "phone", ptCreate("lists", list, `{"name":"a"}`))
	ptWant(t, "create", created, PushStatusApplied, "")
	ptWant(t, "note create", p.one("alice", "phone", ptCreate("notes", "1", `{"body":"a"}`)), PushStatusApplied, "")
	ptWant(t, "note update", p.one("alice", "phone", ptUpdate("notes", "1", `{"body":"b"}`, time.Time{})), PushStatusApplied, "")
	mu.Lock()
	if len(calls) != 0 || resolver.calls.Load() != 0 {
		t.Errorf("creates and timestamp-less updates consulted the resolver: %d hook calls, %d resolver calls", len(calls), resolver.calls.Load())
	}
	mu.Unlock()

	old := time.Now().Add(-time.Hour)
	ptWant(t, "losing update", p.one("alice", "laptop", ptUpdate("lists", list, `{"name":"old"}`, old)), PushStatusConflict, reasonServerWon)
	newer := ptFuture()
	ptWant(t, "winning update", p.one("alice", "phone", ptUpdate("lists", list, `{"name":"new"}`, newer)), PushStatusApplied, "")
	ptWant(t, "delete", p.one("alice", "phone", ptDelete("lists", list)), PushStatusApplied, "")
	rec := ptCreate("lists", list, `{"name":"back"}`)
	rec.ClientUpdatedAt = ptFuture()
	ptWant(t, "resurrection", p.one("alice", "laptop", rec), PushStatusApplied, "")

	mu.Lock()
	defer mu.Unlock()
	if int64(len(calls)) != resolver.calls.Load() {
		t.Errorf("OnConflict called %d times, the resolver %d times", len(calls), resolver.calls.Load())
	}
	if len(calls) != 3 {
		t.Fatalf("OnConflict calls: %+v", calls)
	}
	wantClients := []string{"laptop", "phone", "laptop"}
	wantWinners := []string{"server", "client", "client"}
	for i, c := range calls {
		if c.c.ClientID != wantClients[i] || c.c.UserID != "alice" || c.c.Table != "lists" || c.c.RecordID != list {
			t.Errorf("call %d: conflict %+v", i, c.c)
		}
		if c.r.Winner != wantWinners[i] {
			t.Errorf("call %d: winner %q, want %q", i, c.r.Winner, wantWinners[i])
		}
		if c.c.ServerTime.IsZero() || len(c.c.ServerData) == 0 || len(c.c.ClientData) == 0 {
			t.Errorf("call %d: conflict lacks server time or data: %+v", i, c.c)
		}
	}
	// The client time is kept to the microsecond, as the row's version.
	if !calls[0].c.ClientTime.Equal(old.Truncate(time.Microsecond)) || !calls[0].c.ServerTime.Equal(*created.ServerUpdatedAt) {
		t.Errorf("first conflict times: client %v (want %v), server %v (want %v)",
			calls[0].c.ClientTime, old, calls[0].c.ServerTime, created.ServerUpdatedAt)
	}
	if strings.Contains(string(calls[0].c.ServerData), "secret") || !strings.Contains(string(calls[0].c.ServerData), `"name":"a"`) {
		t.Errorf("first conflict server data %s", calls[0].c.ServerData)
	}
}

// TestPushHardDeleteTable checks a table without updated_at and deleted_at:
// deletes remove the row and the last push wins without conflicts.
func TestPushHardDeleteTable(t *testing.T) {
	t.Parallel()
	var conflicts atomic.Int64
	p := ptNewEnv(t, func(c *Config) {
		c.Hooks.OnConflict = func(context.Context, Conflict, Resolution) { conflicts.Add(1) }
	})
	p.register("alice", "c1")
	super := p.db.Super

	res := p.one("alice", "c1", ptCreate("notes", "10", `{"body":"one","id":10}`))
	ptWant(t, "create", res, PushStatusApplied, "")
	if res.ServerUpdatedAt != nil {
		t.Errorf("server_updated_at %v for a table without updated_at", res.ServerUpdatedAt)
	}
	// Updates with old, zero and future client times all apply, in order.
	for i, at := range []time.Time{ptFuture(), time.Now().Add(-24 * time.Hour), {}} {
		body := fmt.Sprintf("v%d", i)
		ptWant(t, "update "+body, p.one("alice", "c1", ptUpdate("notes", "10", `{"body":"`+body+`"}`, at)), PushStatusApplied, "")
		var got string
		pgtest.QueryRow(t, super, `SELECT body FROM notes WHERE id = 10`).Scan(&got)
		if got != body {
			t.Errorf("body %q after update %d, want %q", got, i, body)
		}
	}
	ptWant(t, "create existing", p.one("alice", "c1", ptCreate("notes", "10", `{"body":"dup"}`)), PushStatusConflict, reasonRecordExists)

	res = p.one("alice", "c1", ptDelete("notes", "10"))
	ptWant(t, "delete", res, PushStatusApplied, "")
	if res.ServerDeletedAt != nil {
		t.Errorf("server_deleted_at %v for a hard delete", res.ServerDeletedAt)
	}
	if n := pgtest.Count(t, super, `SELECT count(*) FROM notes WHERE id = 10`); n != 0 {
		t.Error("hard delete left the row")
	}
	ptWant(t, "delete again", p.one("alice", "c1", ptDelete("notes", "10")), PushStatusRejectedTerminal, reasonRecordNotFound)
	ptWant(t, "update deleted", p.one("alice", "c1", ptUpdate("notes", "10", `{"body":"x"}`, ptFuture())), PushStatusRejectedTerminal, reasonRecordNotFound)
	ptWant(t, "create again", p.one("alice", "c1", ptCreate("notes", "10", `{"body":"again"}`)), PushStatusApplied, "")
	if n := conflicts.Load(); n != 0 {
		t.Errorf("OnConflict called %d times for a table without updated_at", n)
	}
}

// TestPushDependentRecordsInOneBatch pushes records that depend on earlier
// records of the same push (a parent and its children, the same row twice)
// with nothing failing, so they are not redone one at a time.
func TestPushDependentRecordsInOneBatch(t *testing.T) {
	t.Parallel()
	p := ptNewEnv(t, nil)
	p.register("alice", "c1")
	super := p.db.Super

	l1, l2, i1, i2, i3 := ptID(), ptID(), ptID(), ptID(), ptID()
	resp := p.push("alice", "c1",
		ptCreate("lists", l1, `{"name":"one"}`),
		ptCreate("items", i1, `{"list_id":"`+l1+`","title":"a"}`),
		ptCreate("lists", l2, `{"name":"two"}`),
		ptCreate("items", i2, `{"list_id":"`+l2+`","title":"b"}`),
		ptUpdate("items", i1, `{"title":"a2","done":true}`, ptFuture()),
		ptUpdate("lists", l1, `{"name":"one2"}`, ptFuture()),
		ptCreate("items", i3, `{"list_id":"`+l1+`","title":"c"}`),
		ptDelete("items", i2),
		ptCreate("notes", "1", `{"body":"x"}`),
		ptUpdate("notes", "1", `{"body":"y"}`, time.Time{}),
		ptDelete("notes", "1"),
	)
	if len(resp.Rejected) != 0 {
		t.Fatalf("rejected: %+v", resp.Rejected)
	}
	checks := map[string]string{
		"list one":   `SELECT count(*) FROM lists WHERE id = '` + l1 + `' AND name = 'one2'`,
		"list two":   `SELECT count(*) FROM lists WHERE id = '` + l2 + `' AND name = 'two'`,
		"item a":     `SELECT count(*) FROM items WHERE id = '` + i1 + `' AND title = 'a2' AND done AND deleted_at IS NULL`,
		"item b":     `SELECT count(*) FROM items WHERE id = '` + i2 + `' AND deleted_at IS NOT NULL`,
		"item c":     `SELECT count(*) FROM items WHERE id = '` + i3 + `' AND list_id = '` + l1 + `'`,
		"note gone":  `SELECT 1 - count(*) FROM notes`,
		"all alices": `SELECT (count(*) = 2)::int FROM lists WHERE user_id = 'alice'`,
	}
	for what, q := range checks {
		if n := pgtest.Count(t, super, q); n != 1 {
			t.Errorf("%s: check %q gave %d", what, q, n)
		}
	}
}

// TestPushSameRowDifferentIDSpelling pushes two records for one row whose
// ids are spelled differently (a UUID in upper and lower case, a bigint
// with a leading zero). The outcome must be the one of pushing them one by
// one, as the Push documentation promises.
func TestPushSameRowDifferentIDSpelling(t *testing.T) {
	t.Parallel()
	p := ptNewEnv(t, nil)
	p.register("alice", "c1")
	super := p.db.Super

	id := ptID()
	upper := strings.ToUpper(id)
	one := p.push("alice", "c1", ptCreate("lists", upper, `{"name":"first"}`))
	two := p.push("alice", "c1", ptUpdate("lists", id, `{"name":"second"}`, ptFuture()))
	if len(one.Accepted) != 1 || len(two.Accepted) != 1 {
		t.Fatalf("one by one: %+v %+v", one, two)
	}

	id = ptID()
	upper = strings.ToUpper(id)
	resp := p.push("alice", "c1",
		ptCreate("lists", upper, `{"name":"first"}`),
		ptUpdate("lists", id, `{"name":"second"}`, ptFuture()),
	)
	ptWant(t, "create (upper case id)", ptFind(t, resp, upper), PushStatusApplied, "")
	ptWant(t, "update (lower case id) in the same push", ptFind(t, resp, id), PushStatusApplied, "")
	if name, _ := ptListName(t, super, id); name != "second" {
		t.Errorf("name %q, want second", name)
	}

	resp = p.push("alice", "c1",
		ptCreate("notes", "5", `{"body":"first"}`),
		ptUpdate("notes", "05", `{"body":"second"}`, ptFuture()),
	)
	ptWant(t, "create note 5", ptFind(t, resp, "5"), PushStatusApplied, "")
	ptWant(t, "update note 05 in the same push", ptFind(t, resp, "05"), PushStatusApplied, "")
}

// TestPushColumnsNamedLikeAliases uses column names that the engine's
// statements also use as aliases or keywords; names are quoted everywhere,
// so every push must work.
func TestPushColumnsNamedLikeAliases(t *testing.T) {
	t.Parallel()
	for _, col := range []string{"s", "ordinality", "r", "x", "src", "ins", "v", "t", "ord", "id2", "Select", "row"} {
		t.Run(col, func(t *testing.T) {
			t.Parallel()
			db := pgtest.NewMigratedDatabase(t)
			q := `"` + strings.ReplaceAll(col, `"`, `""`) + `"`
			pgtest.Exec(t, db.Super, `CREATE TABLE odd (id uuid PRIMARY KEY, user_id text NOT NULL, `+q+` text, updated_at timestamptz NOT NULL DEFAULT now(), deleted_at timestamptz)`)
			reg := NewRegistry()
			reg.Register(&TableConfig{TableName: "odd", OwnerColumn: "user_id"})
			p := ptEngine(t, db, db.Super, reg, nil)
			p.register("alice", "c1")
			key, _ := json.Marshal(col)
			a, b := ptID(), ptID()
			resp := p.push("alice", "c1",
				ptCreate("odd", a, `{`+string(key)+`:"one"}`),
				ptCreate("odd", b, `{`+string(key)+`:"two"}`),
			)
			if len(resp.Accepted) != 2 {
				t.Fatalf("creates: %+v", resp.Rejected)
			}
			ptWant(t, "update", p.one("alice", "c1", ptUpdate("odd", a, `{`+string(key)+`:"three"}`, ptFuture())), PushStatusApplied, "")
			ptWant(t, "conflict", p.one("alice", "c1", ptCreate("odd", b, `{}`)), PushStatusConflict, reasonRecordExists)
			ptWant(t, "delete", p.one("alice", "c1", ptDelete("odd", b)), PushStatusApplied, "")
			var got string
			pgtest.QueryRow(t, db.Super, `SELECT `+q+` FROM odd WHERE id = $1::uuid`, a).Scan(&got)
			if got != "three" {
				t.Errorf("column %s = %q, want three", col, got)
			}
		})
	}
}

// TestPushOwnerColumnWithOtherBucketColumn pushes to a table whose rows
// have an owner (OwnerColumn) but are bucketed by another column (a team).
// The owner writes their own rows; nobody else does.
func TestPushOwnerColumnWithOtherBucketColumn(t *testing.T) {
	t.Parallel()
	db := pgtest.NewMigratedDatabase(t)
	pgtest.Exec(t, db.Super, `CREATE TABLE team_docs (id uuid PRIMARY KEY, user_id text NOT NULL, team_id text NOT NULL, body text, updated_at timestamptz NOT NULL DEFAULT now(), deleted_at timestamptz)`)
	reg := NewRegistry()
	reg.Register(&TableConfig{TableName: "team_docs", OwnerColumn: "user_id", BucketByColumn: "team_id", BucketPrefix: "team:"})
	if !reg.IsPushable("team_docs") {
		t.Fatal("team_docs is not pushable by default")
	}
	p := ptEngine(t, db, db.Super, reg, nil)
	p.register("alice", "c1")
	p.register("bob", "c2")

	// A row written by the application, and one pushed by alice.
	doc := ptID()
	pgtest.Exec(t, db.Super, `INSERT INTO team_docs (id, user_id, team_id, body) VALUES ($1, 'alice', 't1', 'a')`, doc)
	ptWant(t, "alice creates her doc", p.one("alice", "c1", ptCreate("team_docs", ptID(), `{"team_id":"t1","body":"a"}`)), PushStatusApplied, "")
	ptWant(t, "alice updates her doc", p.one("alice", "c1", ptUpdate("team_docs", doc, `{"body":"b"}`, ptFuture())), PushStatusApplied, "")
	ptWant(t, "bob updates alice's doc", p.one("bob", "c2", ptUpdate("team_docs", doc, `{"body":"bob"}`, ptFuture())), PushStatusRejectedTerminal, reasonOwnershipViolation)
	ptWant(t, "bob deletes alice's doc", p.one("bob", "c2", ptDelete("team_docs", doc)), PushStatusRejectedTerminal, reasonOwnershipViolation)
	ptWant(t, "bob creates a doc naming alice", p.one("bob", "c2", ptCreate("team_docs", ptID(), `{"team_id":"t1","user_id":"alice"}`)), PushStatusRejectedTerminal, reasonOwnershipViolation)
	ptWant(t, "alice deletes her doc", p.one("alice", "c1", ptDelete("team_docs", doc)), PushStatusApplied, "")
	if n := pgtest.Count(t, db.Super, `SELECT count(*) FROM team_docs WHERE user_id <> 'alice'`); n != 0 {
		t.Errorf("%d docs not owned by alice", n)
	}
}

// TestPushOnConflictInRedoneBatch checks OnConflict when a batch is redone
// one record at a time after a failure: each decided record is reported
// once, with the pushing client's id, and a record whose write then fails
// still counts.
func TestPushOnConflictInRedoneBatch(t *testing.T) {
	t.Parallel()
	var (
		mu    sync.Mutex
		calls = map[string]int{}
	)
	p := ptNewEnv(t, func(c *Config) {
		c.Hooks.OnConflict = func(_ context.Context, c Conflict, _ Resolution) {
			mu.Lock()
			defer mu.Unlock()
			if c.ClientID != "c1" || c.UserID != "alice" {
				calls["bad:"+c.ClientID+"/"+c.UserID]++
			}
			calls[c.RecordID]++
		}
	})
	p.register("alice", "c1")
	a, b, c := ptID(), ptID(), ptID()
	p.push("alice", "c1", ptCreate("lists", a, `{"name":"a"}`), ptCreate("lists", b, `{"name":"b"}`), ptCreate("lists", c, `{"name":"c"}`))

	resp := p.push("alice", "c1",
		ptUpdate("lists", a, `{"name":"a2"}`, ptFuture()),                 // wins
		ptUpdate("lists", b, `{"name":"b2"}`, time.Now().Add(-time.Hour)), // loses
		ptUpdate("lists", c, `{"name":null}`, ptFuture()),                 // wins, then fails
		ptCreate("lists", ptID(), `{"category_id":"work"}`),               // NOT NULL: the batch is redone
	)
	ptWant(t, "a", ptFind(t, resp, a), PushStatusApplied, "")
	ptWant(t, "b", ptFind(t, resp, b), PushStatusConflict, reasonServerWon)
	ptWant(t, "c", ptFind(t, resp, c), PushStatusRejectedTerminal, reasonUpdateFailed)
	mu.Lock()
	defer mu.Unlock()
	if want := map[string]int{a: 1, b: 1, c: 1}; !maps.Equal(calls, want) {
		t.Errorf("OnConflict calls per record %v, want %v", calls, want)
	}
}

// TestPushRecordsClientActivity checks that a push records the client's
// activity and returns the checkpoint the client acknowledged, never the
// higher one of a page it was only sent (whose answer it may have lost).
func TestPushRecordsClientActivity(t *testing.T) {
	t.Parallel()
	p := ptNewEnv(t, nil)
	p.register("alice", "c1")
	pgtest.Exec(t, p.db.Super, `UPDATE synchro.clients SET last_pull_seq = 77, acked_seq = 70`)
	resp := p.push("alice", "c1", ptCreate("lists", ptID(), `{"name":"a"}`))
	if resp.Checkpoint != 70 {
		t.Errorf("push checkpoint %d, want the acknowledged 70 (delivered: 77)", resp.Checkpoint)
	}
	pgtest.Exec(t, p.db.Super, `UPDATE synchro.clients SET acked_seq = NULL`)
	if resp := p.push("alice", "c1"); resp.Checkpoint != 0 {
		t.Errorf("push checkpoint %d with nothing acknowledged, want 0", resp.Checkpoint)
	}
	if n := pgtest.Count(t, p.db.Super, `SELECT count(*) FROM synchro.clients WHERE last_push_at > now() - interval '1 minute' AND last_sync_at > now() - interval '1 minute'`); n != 1 {
		t.Error("the push did not record last_push_at and last_sync_at")
	}
}

// TestPushBatchEqualsOneByOne pushes a pseudo-random mix of good and bad
// records as one push on one database, and one record per push on a twin
// database; the outcomes and the resulting rows must be the same.
func TestPushBatchEqualsOneByOne(t *testing.T) {
	t.Parallel()
	for seed := range 8 {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			t.Parallel()
			rng := mathrand.New(mathrand.NewPCG(uint64(seed), 42))
			// Edit times are chosen below so that none is capped by the
			// database clock (which differs between the pushes of the
			// twin): a tolerance of an hour, and times at most 60 ms ahead.
			skew := func(c *Config) { c.ClockSkewTolerance = time.Hour }
			batch, single := ptNewEnv(t, skew), ptNewEnv(t, skew)
			var lists, items []string
			for range 5 {
				lists = append(lists, ptID())
				items = append(items, ptID())
			}
			bobList := ptID()
			for _, p := range []*ptEnv{batch, single} {
				p.register("alice", "c1")
				p.register("bob", "c2")
				ptWant(t, "bob's list", p.one("bob", "c2", ptCreate("lists", bobList, `{"name":"bob"}`)), PushStatusApplied, "")
				for i := range 3 {
					ptWant(t, "setup list", p.one("alice", "c1", ptCreate("lists", lists[i], `{"name":"setup"}`)), PushStatusApplied, "")
					ptWant(t, "setup item", p.one("alice", "c1", ptCreate("items", items[i], `{"list_id":"`+lists[i]+`","title":"setup"}`)), PushStatusApplied, "")
				}
			}
			pick := func(s []string) string { return s[rng.IntN(len(s))] }
			// Mostly edits made after the setup, in record order; now and
			// then one that is older than anything on the server.
			base := time.Now()
			var when func() time.Time
			n := 0
			when = func() time.Time {
				if rng.IntN(6) == 0 {
					return base.Add(-2 * time.Hour)
				}
				return base.Add(time.Duration(n+1) * time.Millisecond)
			}
			// Mostly good data, with each kind of mistake now and then.
			listData := []string{`{"name":"n%d"}`, `{"name":"n%d","category_id":"work"}`, `{"name":"n%d"}`, `{"name":"n%d","category_id":"home"}`,
				`{"name":null}`, `{"name":"n%d","bogus":1}`, `{"name":"n%d","category_id":"nope"}`, `{"name":"n%d","user_id":"bob"}`}
			itemData := []string{`{"list_id":"%s","title":"t%d"}`, `{"list_id":"%s","title":"t%d","done":true}`, `{"list_id":"%s","title":"t%d"}`,
				`{"list_id":"%s","title":null}`, `{"list_id":"%s","done":"abc"}`}
			var recs []PushRecord
			for n = range 60 {
				var r PushRecord
				switch rng.IntN(7) {
				case 0, 1:
					id := pick(lists)
					if rng.IntN(8) == 0 {
						id = bobList
					}
					data := strings.Replace(pick(listData), "%d", fmt.Sprint(n), 1)
					switch rng.IntN(3) {
					case 0:
						r = ptCreate("lists", id, data)
					case 1:
						r = ptUpdate("lists", id, data, when())
					default:
						r = ptDelete("lists", id)
					}
				case 2, 3, 4:
					id := pick(items)
					tmpl := pick(itemData)
					parent := pick(lists)
					if rng.IntN(8) == 0 {
						parent = bobList
					}
					data := strings.Replace(strings.Replace(tmpl, "%s", parent, 1), "%d", fmt.Sprint(n), 1)
					if rng.IntN(2) == 0 {
						// Updates usually leave the parent alone.
						data = strings.Replace(data, `"list_id":"`+parent+`",`, "", 1)
					}
					switch rng.IntN(3) {
					case 0:
						r = ptCreate("items", id, data)
					case 1:
						r = ptUpdate("items", id, data, when())
					default:
						r = ptDelete("items", id)
					}
				default:
					id := fmt.Sprint(rng.IntN(4) + 1)
					data := fmt.Sprintf(`{"body":"b%d"}`, n)
					switch rng.IntN(3) {
					case 0:
						r = ptCreate("notes", id, data)
					case 1:
						r = ptUpdate("notes", id, data, when())
					default:
						r = ptDelete("notes", id)
					}
				}
				if r.Operation == "create" {
					r.ClientUpdatedAt = when()
				}
				recs = append(recs, r)
			}

			// Both lists of a response keep request order, so the batch's
			// lists must equal those collected from the one-by-one pushes.
			line := func(r PushResult) string {
				return fmt.Sprintf("%s %s %s: %s/%s", r.Operation, r.TableName, r.ID, r.Status, r.ReasonCode)
			}
			resp := batch.push("alice", "c1", recs...)
			// In one push, a record of a row that an earlier record wrote is
			// based on that write (see Push); pushed one at a time, the
			// device says so with base_updated_at, as it learnt the
			// version from the earlier push's answer.
			results := make([]PushResult, len(recs))
			named := map[string]int{}
			versions := map[string]time.Time{}
			pushOne := func(r PushRecord) PushResult {
				k := r.TableName + " " + r.ID
				if v, ok := versions[k]; ok {
					r.BaseUpdatedAt = &v
				}
				res := single.one("alice", "c1", r)
				switch {
				case res.Status != PushStatusApplied:
				case res.ServerUpdatedAt != nil:
					versions[k] = *res.ServerUpdatedAt
				case res.ServerDeletedAt != nil:
					versions[k] = *res.ServerDeletedAt
				}
				return res
			}
			for i, r := range recs {
				results[i] = pushOne(r)
				named[r.TableName+" "+r.ID]++
			}
			// As documented, a create missing its parent is tried again
			// after the others (when no other record names its row), in
			// rounds while a round applies something.
			for progress := true; progress; {
				progress = false
				for i, r := range recs {
					if results[i].ReasonCode == reasonParentNotFound && named[r.TableName+" "+r.ID] == 1 {
						results[i] = pushOne(r)
						progress = progress || results[i].ReasonCode != reasonParentNotFound
					}
				}
			}
			var wantAcc, wantRej []string
			for _, res := range results {
				if res.Status == PushStatusApplied {
					wantAcc = append(wantAcc, line(res))
				} else {
					wantRej = append(wantRej, line(res))
				}
			}
			var gotAcc, gotRej []string
			for _, r := range resp.Accepted {
				gotAcc = append(gotAcc, line(r))
			}
			for _, r := range resp.Rejected {
				gotRej = append(gotRej, line(r))
			}
			for _, l := range []struct {
				name      string
				got, want []string
			}{{"accepted", gotAcc, wantAcc}, {"rejected", gotRej, wantRej}} {
				if !slices.Equal(l.got, l.want) {
					for i := range max(len(l.got), len(l.want)) {
						var g, w string
						if i < len(l.got) {
							g = l.got[i]
						}
						if i < len(l.want) {
							w = l.want[i]
						}
						if g != w {
							t.Errorf("%s #%d: batch %q, one by one %q", l.name, i, g, w)
							break
						}
					}
				}
			}
			for _, q := range []string{
				`SELECT coalesce(string_agg(concat_ws('|', id, user_id, name, category_id, deleted_at IS NULL), ',' ORDER BY id), '') FROM lists`,
				`SELECT coalesce(string_agg(concat_ws('|', id, list_id, title, done, deleted_at IS NULL), ',' ORDER BY id), '') FROM items`,
				`SELECT coalesce(string_agg(concat_ws('|', id, user_id, body), ',' ORDER BY id), '') FROM notes`,
			} {
				var a, b string
				pgtest.QueryRow(t, batch.db.Super, q).Scan(&a)
				pgtest.QueryRow(t, single.db.Super, q).Scan(&b)
				if a != b {
					t.Errorf("%s\n batch:      %s\n one by one: %s", q, a, b)
				}
			}
		})
	}
}

// TestPushForeignKeyToLaterRow uses a foreign key between two pushable
// tables that the registry does not declare as a parent: a record that
// refers to a row created later in the same push is tried again after the
// others and applied; alone, it waits for that row (retryable); a key to a
// table clients cannot push to is refused for good.
func TestPushForeignKeyToLaterRow(t *testing.T) {
	t.Parallel()
	db := ptSetup(t)
	pgtest.Exec(t, db.Super, `CREATE TABLE tasks (id uuid PRIMARY KEY, user_id text NOT NULL, list_id uuid REFERENCES lists (id), updated_at timestamptz NOT NULL DEFAULT now(), deleted_at timestamptz)`)
	reg := ptRegistry(t)
	reg.Register(&TableConfig{TableName: "tasks", OwnerColumn: "user_id", Dependencies: []string{"lists"}})
	p := ptEngine(t, db, db.Super, reg, nil)
	p.register("alice", "c1")

	l0, task, l2 := ptID(), ptID(), ptID()
	resp := p.push("alice", "c1",
		ptCreate("lists", l0, `{"name":"zero"}`),
		ptCreate("tasks", task, `{"list_id":"`+l2+`"}`), // l2 does not exist yet
		ptCreate("lists", l2, `{"name":"two"}`),
	)
	for _, id := range []string{l0, task, l2} {
		ptWant(t, "batch "+id, ptFind(t, resp, id), PushStatusApplied, "")
	}
	if got := []string{resp.Accepted[0].ID, resp.Accepted[1].ID, resp.Accepted[2].ID}; !slices.Equal(got, []string{l0, task, l2}) {
		t.Errorf("accepted out of request order: %v", got)
	}

	// Alone, and by an update too: waiting for the row, not refused.
	l3, t2 := ptID(), ptID()
	ptWant(t, "create alone", p.one("alice", "c1", ptCreate("tasks", t2, `{"list_id":"`+l3+`"}`)), PushStatusRejectedRetryable, reasonParentNotFound)
	ptWant(t, "update alone", p.one("alice", "c1", ptUpdate("tasks", task, `{"list_id":"`+l3+`"}`, ptFuture())), PushStatusRejectedRetryable, reasonParentNotFound)
	ptWant(t, "the row arrives", p.one("alice", "c1", ptCreate("lists", l3, `{"name":"three"}`)), PushStatusApplied, "")
	ptWant(t, "create again", p.one("alice", "c1", ptCreate("tasks", t2, `{"list_id":"`+l3+`"}`)), PushStatusApplied, "")

	// categories is read-only for clients: its rows never come from a
	// device, so a key to a missing one is terminal.
	ptWant(t, "key to a read-only table", p.one("alice", "c1", ptCreate("lists", ptID(), `{"name":"x","category_id":"nope"}`)), PushStatusRejectedTerminal, reasonCreateFailed)
}

// ptAdminResolver places every record in the bucket of the user "admin",
// whatever its owner column says.
type ptAdminResolver struct{ calls atomic.Int64 }

func (r *ptAdminResolver) ResolveOwner(context.Context, DB, string, string, map[string]any) ([]string, error) {
	r.calls.Add(1)
	return []string{"user:admin"}, nil
}

// TestPushCustomOwnershipResolver checks that push decides ownership with
// Config.Ownership when one is given.
func TestPushCustomOwnershipResolver(t *testing.T) {
	t.Parallel()
	resolver := &ptAdminResolver{}
	p := ptNewEnv(t, func(c *Config) { c.Ownership = resolver })
	p.register("alice", "c1")
	p.register("admin", "c2")
	pgtest.Exec(t, p.db.Super, `INSERT INTO notes (id, user_id, body) VALUES (1, 'alice', 'a')`)

	ptWant(t, "alice updates her note", p.one("alice", "c1", ptUpdate("notes", "1", `{"body":"alice"}`, ptFuture())), PushStatusRejectedTerminal, reasonOwnershipViolation)
	ptWant(t, "admin updates alice's note", p.one("admin", "c2", ptUpdate("notes", "1", `{"body":"admin"}`, ptFuture())), PushStatusApplied, "")
	if resolver.calls.Load() == 0 {
		t.Error("the configured OwnershipResolver was never consulted")
	}
	var body string
	pgtest.QueryRow(t, p.db.Super, `SELECT body FROM notes WHERE id = 1`).Scan(&body)
	if body != "admin" {
		t.Errorf("body %q, want admin", body)
	}
}

// TestPushBatchParentOwnerLookups pushes, in one batch, creates and updates
// of items under a list of the pusher and under a list of another user,
// interleaved, several per list: the batch decides them together with one
// owner lookup per parent, and every item must still be judged by its own
// parent (the owned ones applied, the others refused).
func TestPushBatchParentOwnerLookups(t *testing.T) {
	t.Parallel()
	p := ptNewEnv(t, nil)
	p.register("alice", "c1")
	p.register("bob", "c2")
	aliceList, bobList := ptID(), ptID()
	ptWant(t, "alice's list", p.one("alice", "c1", ptCreate("lists", aliceList, `{"name":"a"}`)), PushStatusApplied, "")
	ptWant(t, "bob's list", p.one("bob", "c2", ptCreate("lists", bobList, `{"name":"b"}`)), PushStatusApplied, "")
	var aliceItems, bobItems []string
	for i := range 3 {
		aliceItems = append(aliceItems, ptID())
		bobItems = append(bobItems, ptID())
		ptWant(t, "alice's item", p.one("alice", "c1", ptCreate("items", aliceItems[i], `{"list_id":"`+aliceList+`","title":"a"}`)), PushStatusApplied, "")
		ptWant(t, "bob's item", p.one("bob", "c2", ptCreate("items", bobItems[i], `{"list_id":"`+bobList+`","title":"b"}`)), PushStatusApplied, "")
	}

	var recs []PushRecord
	want := map[string]string{} // id -> reason ("" for applied)
	for i := range 3 {
		newBob, newAlice := ptID(), ptID()
		recs = append(recs,
			ptUpdate("items", bobItems[i], `{"title":"bob's"}`, ptFuture()),
			ptCreate("items", newAlice, `{"list_id":"`+aliceList+`","title":"x"}`),
			ptUpdate("items", aliceItems[i], `{"title":"bob's"}`, ptFuture()),
			ptCreate("items", newBob, `{"list_id":"`+bobList+`","title":"y"}`),
		)
		want[bobItems[i]], want[newBob] = "", ""
		want[aliceItems[i]], want[newAlice] = reasonOwnershipViolation, reasonOwnershipViolation
	}
	resp := p.push("bob", "c2", recs...)
	for id, reason := range want {
		status := PushStatusApplied
		if reason != "" {
			status = PushStatusRejectedTerminal
		}
		ptWant(t, id, ptFind(t, resp, id), status, reason)
	}
	if got := pgtest.Count(t, p.db.Super, `SELECT count(*) FROM items WHERE list_id = $1::uuid`, aliceList); got != 3 {
		t.Errorf("alice's list has %d items, want 3", got)
	}
	if got := pgtest.Count(t, p.db.Super, `SELECT count(*) FROM items WHERE list_id = $1::uuid AND title = 'a'`, aliceList); got != 3 {
		t.Errorf("%d of alice's items keep their title, want 3", 3-got)
	}
	if got := pgtest.Count(t, p.db.Super, `SELECT count(*) FROM items WHERE list_id = $1::uuid`, bobList); got != 6 {
		t.Errorf("bob's list has %d items, want 6", got)
	}
}
