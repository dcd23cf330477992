package synchro

import (
	"fmt"
	"github.com/synchrosync/synchro/internal/pgtest"

	"encoding/json"
	"strings"
	"testing"
	"time"
)

// This file tests what push accepts from the device SDKs, which send whole
// rows, push a child before its parent, and name users in another text form
// than the owner column stores.

// TestPushWholeRows pushes records carrying every column of the row, as the
// SDKs do: the server-managed timestamps (also on a table that has none),
// the key, the owner and the parent key unchanged. They are applied and the
// timestamps are the server's.
func TestPushWholeRows(t *testing.T) {
	t.Parallel()
	p := ptNewEnv(t, nil)
	super := p.db.Super
	p.register("alice", "c1")

	list, item := ptID(), ptID()
	stale := `"2001-02-03T04:05:06.789Z"`
	listRow := func(name string) string {
		return `{"id":"` + list + `","user_id":"alice","name":"` + name + `","category_id":null,` +
			`"created_at":` + stale + `,"updated_at":"2001-02-03 04:05:06","deleted_at":null}`
	}
	itemRow := func(title string) string {
		return `{"id":"` + item + `","list_id":"` + list + `","title":"` + title + `","done":false,` +
			`"updated_at":null,"deleted_at":null}`
	}
	resp := p.push("alice", "c1",
		ptCreate("lists", list, listRow("L")),
		ptCreate("items", item, itemRow("T")),
		ptCreate("notes", "1", `{"id":1,"user_id":"alice","body":"n","updated_at":null,"deleted_at":null}`),
	)
	for _, id := range []string{list, item, "1"} {
		ptWant(t, "create "+id, ptFind(t, resp, id), PushStatusApplied, "")
	}
	var created, updated time.Time
	pgtest.QueryRow(t, super, `SELECT created_at, updated_at FROM lists WHERE id = $1::uuid`, list).Scan(&created, &updated)
	if created.Year() == 2001 || updated.Year() == 2001 {
		t.Errorf("pushed timestamps were written: created_at %v updated_at %v", created, updated)
	}

	resp = p.push("alice", "c1",
		ptUpdate("lists", list, listRow("L2"), ptFuture()),
		ptUpdate("items", item, itemRow("T2"), ptFuture()),
		ptUpdate("notes", "1", `{"id":"1","user_id":"alice","body":"n2","updated_at":"2001-02-03T04:05:06Z","deleted_at":null}`, ptFuture()),
	)
	for _, id := range []string{list, item, "1"} {
		ptWant(t, "update "+id, ptFind(t, resp, id), PushStatusApplied, "")
	}
	var name, title, body string
	pgtest.QueryRow(t, super, `SELECT l.name, i.title, n.body FROM lists l, items i, notes n WHERE l.id = $1::uuid AND i.id = $2::uuid AND n.id = 1`, list, item).Scan(&name, &title, &body)
	if name != "L2" || title != "T2" || body != "n2" {
		t.Errorf("after whole-row updates: %q %q %q", name, title, body)
	}

	// Still refused, naming the column: unknown and unsynced columns, and
	// a changed owner or parent.
	other := ptID()
	ptWant(t, "setup other list", p.one("alice", "c1", ptCreate("lists", other, `{"name":"O"}`)), PushStatusApplied, "")
	for _, c := range []struct{ name, table, id, data, column string }{
		{"unknown column", "lists", list, strings.Replace(listRow("x"), `"name"`, `"colour":1,"name"`, 1), "colour"},
		{"unsynced column", "items", item, strings.Replace(itemRow("x"), `"done"`, `"secret":"s","done"`, 1), "secret"},
		{"changed owner", "lists", list, strings.Replace(listRow("x"), `"alice"`, `"bob"`, 1), "user_id"},
		{"changed parent", "items", item, strings.Replace(itemRow("x"), list, other, 1), "list_id"},
	} {
		res := p.one("alice", "c1", ptUpdate(c.table, c.id, c.data, ptFuture()))
		ptWant(t, c.name, res, PushStatusRejectedTerminal, reasonInvalidData)
		if !strings.Contains(res.Message, c.column) {
			t.Errorf("%s: message %q does not name %s", c.name, res.Message, c.column)
		}
	}
}

// TestPushProtectedColumns: an application's ProtectedColumns may come in a
// whole row only unchanged (updates) or null (creates).
func TestPushProtectedColumns(t *testing.T) {
	t.Parallel()
	db := ptSetup(t)
	pgtest.Exec(t, db.Super, `CREATE TABLE scores (id text PRIMARY KEY, user_id text NOT NULL, label text, points numeric NOT NULL DEFAULT 0,
		checked_at timestamptz, updated_at timestamptz NOT NULL DEFAULT now())`)
	reg := ptRegistry(t)
	reg.Register(&TableConfig{TableName: "scores", OwnerColumn: "user_id", ProtectedColumns: []string{"points", "checked_at"}})
	p := ptEngine(t, db, db.Super, reg, nil)
	p.register("alice", "c1")

	ptWant(t, "create with null protected", p.one("alice", "c1", ptCreate("scores", "s1", `{"label":"a","points":null,"checked_at":null}`)), PushStatusApplied, "")
	// A device that built its table from the contract sends the column's
	// default: accepted, it is what the server writes too.
	ptWant(t, "create with the default", p.one("alice", "c1", ptCreate("scores", "s0", `{"label":"a","points":0,"checked_at":null}`)), PushStatusApplied, "")
	res := p.one("alice", "c1", ptCreate("scores", "s2", `{"label":"a","points":5}`))
	ptWant(t, "create with a protected value", res, PushStatusRejectedTerminal, reasonInvalidData)
	if !strings.Contains(res.Message, "points") {
		t.Errorf("message %q does not name the column", res.Message)
	}
	pgtest.Exec(t, db.Super, `UPDATE scores SET points = 12.50, checked_at = '2026-01-02 03:04:05.678+00' WHERE id = 's1'`)

	// The stored values, as the device received them or spelled otherwise.
	for _, data := range []string{
		`{"label":"b","points":12.5,"checked_at":"2026-01-02T03:04:05.678+00:00"}`,
		`{"label":"c","points":12.50,"checked_at":"2026-01-02T03:04:05.678Z"}`,
		`{"label":"d","points":1.25e1}`,
		`{"label":"d","points":"12.5"}`, // a numeric string: the same number
	} {
		ptWant(t, "unchanged "+data, p.one("alice", "c1", ptUpdate("scores", "s1", data, ptFuture())), PushStatusApplied, "")
	}
	for _, data := range []string{
		`{"label":"e","points":13}`,
		`{"label":"e","points":null}`,
		`{"label":"e","points":"12.6"}`,
		`{"label":"e","points":"twelve"}`,
		`{"label":"e","checked_at":"2026-01-02T03:04:05Z"}`,
		`{"label":"e","points":1e999999999}`,
	} {
		ptWant(t, "changed "+data, p.one("alice", "c1", ptUpdate("scores", "s1", data, ptFuture())), PushStatusRejectedTerminal, reasonInvalidData)
	}
	var label, points string
	pgtest.QueryRow(t, db.Super, `SELECT label, points::text FROM scores WHERE id = 's1'`).Scan(&label, &points)
	if label != "d" || points != "12.50" {
		t.Errorf("scores row %q %q, want d 12.50", label, points)
	}

	// A device whose copy is older than the row (its base version is not
	// the current one) sends the value it holds, which the server has
	// changed since: ignored, the rest of its edit goes through the
	// resolver. A device with the current copy that changes it is refused.
	var current time.Time
	pgtest.QueryRow(t, db.Super, `SELECT updated_at FROM scores WHERE id = 's1'`).Scan(&current)
	old := current.Add(-time.Minute)
	staleEdit := ptUpdate("scores", "s1", `{"label":"stale","points":3}`, ptFuture())
	staleEdit.BaseUpdatedAt = &old
	ptWant(t, "stale copy", p.one("alice", "c1", staleEdit), PushStatusApplied, "")
	pgtest.QueryRow(t, db.Super, `SELECT label, points::text, updated_at FROM scores WHERE id = 's1'`).Scan(&label, &points, &current)
	if label != "stale" || points != "12.50" {
		t.Errorf("after a stale copy's edit: %q %q, want stale 12.50", label, points)
	}
	currentEdit := ptUpdate("scores", "s1", `{"label":"current","points":3}`, ptFuture())
	currentEdit.BaseUpdatedAt = &current
	ptWant(t, "current copy", p.one("alice", "c1", currentEdit), PushStatusRejectedTerminal, reasonInvalidData)
}

// TestPushStaleParentAndOwner: the server moved an item to another list
// while a device edited it offline; the device's whole row still names the
// old list. Its edit applies and the item stays where the server put it.
func TestPushStaleParentAndOwner(t *testing.T) {
	t.Parallel()
	p := ptNewEnv(t, nil)
	p.register("alice", "c1")
	a, b, item := ptID(), ptID(), ptID()
	resp := p.push("alice", "c1",
		ptCreate("lists", a, `{"name":"A"}`),
		ptCreate("lists", b, `{"name":"B"}`),
		ptCreate("items", item, `{"list_id":"`+a+`","title":"t"}`),
	)
	base := *ptFind(t, resp, item).ServerUpdatedAt
	pgtest.Exec(t, p.db.Super, `UPDATE items SET list_id = $1::uuid, updated_at = clock_timestamp() WHERE id = $2::uuid`, b, item)

	edit := ptUpdate("items", item, `{"id":"`+item+`","list_id":"`+a+`","title":"renamed offline","done":false}`, ptFuture())
	edit.BaseUpdatedAt = &base
	ptWant(t, "edit of a moved item", p.one("alice", "c1", edit), PushStatusApplied, "")
	var list, title string
	pgtest.QueryRow(t, p.db.Super, `SELECT list_id::text, title FROM items WHERE id = $1::uuid`, item).Scan(&list, &title)
	if list != b || title != "renamed offline" {
		t.Errorf("item in list %s titled %q, want list %s (the server's move) and the device's title", list, title, b)
	}
}

// TestPushOwnerIDFormsMixed: with owner columns of different types (uuid and
// text) the id is used as the auth layer returns it; a uuid owner column
// still compares in its own type.
func TestPushOwnerIDFormsMixed(t *testing.T) {
	t.Parallel()
	db := pgtestSetupUUIDOwners(t)
	reg := ptRegistry(t) // lists and notes have text owners
	reg.Register(&TableConfig{TableName: "docs", OwnerColumn: "owner_id"})
	reg.Register(&TableConfig{TableName: "pages", ParentTable: "docs", ParentFKCol: "doc_id"})
	p := ptEngine(t, db, db.Super, reg, nil)
	upper := strings.ToUpper(ptID())
	p.register(upper, "c1")
	doc, page := ptID(), ptID()
	ptWant(t, "create", p.one(upper, "c1", ptCreate("docs", doc, `{"title":"a","owner_id":"`+upper+`"}`)), PushStatusApplied, "")
	ptWant(t, "create child", p.one(upper, "c1", ptCreate("pages", page, `{"doc_id":"`+doc+`","body":"p"}`)), PushStatusApplied, "")
	ptWant(t, "update", p.one(upper, "c1", ptUpdate("docs", doc, `{"title":"b","owner_id":"`+strings.ToLower(upper)+`"}`, ptFuture())), PushStatusApplied, "")
	ptWant(t, "update child", p.one(upper, "c1", ptUpdate("pages", page, `{"body":"q"}`, ptFuture())), PushStatusApplied, "")
	ptWant(t, "a text-owned list", p.one(upper, "c1", ptCreate("lists", ptID(), `{"name":"l","user_id":"`+upper+`"}`)), PushStatusApplied, "")
}

// TestPushChildBeforeParent: a create whose parent comes later in the same
// push is applied; a parent that is not there at all is retryable unless
// the server knows it will never come.
func TestPushChildBeforeParent(t *testing.T) {
	t.Parallel()
	p := ptNewEnv(t, nil)
	super := p.db.Super
	p.register("alice", "c1")
	p.register("bob", "c2")

	// The SDKs push in edit order: a list renamed after its item was
	// created comes after the item. Grandchildren settle too.
	list, item := ptID(), ptID()
	resp := p.push("alice", "c1",
		ptCreate("items", item, `{"list_id":"`+list+`","title":"early"}`),
		ptCreate("lists", list, `{"name":"renamed"}`),
	)
	ptWant(t, "item before its list", ptFind(t, resp, item), PushStatusApplied, "")
	ptWant(t, "list", ptFind(t, resp, list), PushStatusApplied, "")
	if resp.Accepted[0].ID != item || resp.Accepted[1].ID != list {
		t.Errorf("accepted out of request order: %+v", resp.Accepted)
	}

	// Alone, the child waits for its parent: retryable.
	missing := ptID()
	orphan := ptCreate("items", ptID(), `{"list_id":"`+missing+`","title":"orphan"}`)
	ptWant(t, "parent not there yet", p.one("alice", "c1", orphan), PushStatusRejectedRetryable, reasonParentNotFound)
	// Its parent arrives: the same record now succeeds.
	ptWant(t, "parent", p.one("alice", "c1", ptCreate("lists", missing, `{"name":"late"}`)), PushStatusApplied, "")
	ptWant(t, "orphan again", p.one("alice", "c1", orphan), PushStatusApplied, "")

	// A parent whose deletion the changelog of the user's buckets records
	// will never come: terminal.
	gone := ptID()
	pgtest.Exec(t, super, `INSERT INTO synchro.changelog (bucket_id, table_name, record_id, operation) VALUES ('user:alice', 'lists', $1, 1), ('user:alice', 'lists', $1, 3)`, gone)
	ptWant(t, "parent deleted", p.one("alice", "c1", ptCreate("items", ptID(), `{"list_id":"`+gone+`","title":"x"}`)), PushStatusRejectedTerminal, reasonParentDeleted)
	// Another user's bucket recording it says nothing to alice.
	bobsGone := ptID()
	pgtest.Exec(t, super, `INSERT INTO synchro.changelog (bucket_id, table_name, record_id, operation) VALUES ('user:bob', 'lists', $1, 3)`, bobsGone)
	ptWant(t, "someone else's deleted parent", p.one("alice", "c1", ptCreate("items", ptID(), `{"list_id":"`+bobsGone+`","title":"x"}`)), PushStatusRejectedRetryable, reasonParentNotFound)

	// A parent of another user: terminal, whichever way it is found.
	bobs := ptID()
	ptWant(t, "bob's list", p.one("bob", "c2", ptCreate("lists", bobs, `{"name":"bob"}`)), PushStatusApplied, "")
	ptWant(t, "bob's parent", p.one("alice", "c1", ptCreate("items", ptID(), `{"list_id":"`+bobs+`","title":"x"}`)), PushStatusRejectedTerminal, reasonOwnershipViolation)

	// A client whose history is older than the server keeps must snapshot
	// again (which starts an SDK's queue afresh): terminal.
	pgtest.Exec(t, super, `UPDATE synchro.clients SET acked_seq = 5 WHERE client_id = 'c1'`)
	pgtest.Exec(t, super, `UPDATE synchro.compaction SET boundary_seq = 10`)
	ptWant(t, "behind retention", p.one("alice", "c1", ptCreate("items", ptID(), `{"list_id":"`+ptID()+`","title":"x"}`)), PushStatusRejectedTerminal, reasonParentDeleted)
	pgtest.Exec(t, super, `UPDATE synchro.clients SET acked_seq = 10 WHERE client_id = 'c1'`)
	ptWant(t, "at retention", p.one("alice", "c1", ptCreate("items", ptID(), `{"list_id":"`+ptID()+`","title":"x"}`)), PushStatusRejectedRetryable, reasonParentNotFound)
}

// TestPushChildBeforeParentUnderRLS: with the engine on a role subject to
// row-level security, another user's parent is invisible, and answered as
// a parent that is not there (a push never tells whether another user's
// row exists); the wait bound ends it. A child of the caller's own parent
// later in the push is applied.
func TestPushChildBeforeParentUnderRLS(t *testing.T) {
	t.Parallel()
	db := ptSetup(t)
	reg := ptRegistry(t)
	for _, stmt := range GenerateRLSPolicies(reg) {
		pgtest.Exec(t, db.Super, stmt)
	}
	p := ptEngine(t, db, db.App, reg, nil)
	p.register("alice", "c1")
	p.register("bob", "c2")
	bobs, missing := ptID(), ptID()
	ptWant(t, "bob's list", p.one("bob", "c2", ptCreate("lists", bobs, `{"name":"bob"}`)), PushStatusApplied, "")
	onBobs := p.one("alice", "c1", ptCreate("items", ptID(), `{"list_id":"`+strings.ToUpper(bobs)+`","title":"x"}`))
	onMissing := p.one("alice", "c1", ptCreate("items", ptID(), `{"list_id":"`+strings.ToUpper(missing)+`","title":"x"}`))
	ptWant(t, "bob's parent", onBobs, PushStatusRejectedRetryable, reasonParentNotFound)
	ptWant(t, "a missing parent", onMissing, PushStatusRejectedRetryable, reasonParentNotFound)
	if strings.Replace(onBobs.Message, strings.ToUpper(bobs), "X", 1) != strings.Replace(onMissing.Message, strings.ToUpper(missing), "X", 1) {
		t.Errorf("the answers tell bob's list from a missing one: %q, %q", onBobs.Message, onMissing.Message)
	}
	var n int
	pgtest.QueryRow(t, db.Super, `SELECT count(*) FROM items`).Scan(&n)
	if n != 0 {
		t.Errorf("%d items written under another user's or a missing parent", n)
	}

	list, item := ptID(), ptID()
	resp := p.push("alice", "c1",
		ptCreate("items", item, `{"list_id":"`+list+`","title":"early"}`),
		ptCreate("lists", list, `{"name":"later"}`),
	)
	ptWant(t, "item before its list", ptFind(t, resp, item), PushStatusApplied, "")
}

// ptDocsUnderRLS registers docs (owned by owner_id) and pages (children
// by doc_id), installs their RLS policies and returns an engine on the
// role they apply to.
func ptDocsUnderRLS(t *testing.T, db *pgtest.Database) *ptEnv {
	t.Helper()
	reg := NewRegistry()
	reg.Register(&TableConfig{TableName: "docs", OwnerColumn: "owner_id"})
	reg.Register(&TableConfig{TableName: "pages", ParentTable: "docs", ParentFKCol: "doc_id"})
	if err := reg.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, stmt := range GenerateRLSPolicies(reg) {
		pgtest.Exec(t, db.Super, stmt)
	}
	p := ptEngine(t, db, db.App, reg, nil)
	return p
}

// TestPushOwnerIDForms: a user id the auth layer spells in upper case names
// the same owner as the lower-case uuid PostgreSQL stores.
func TestPushOwnerIDForms(t *testing.T) {
	t.Parallel()
	db := pgtestSetupUUIDOwners(t)
	p := ptDocsUnderRLS(t, db)
	lower := ptID()
	upper := strings.ToUpper(lower)
	braced := "{" + strings.ReplaceAll(upper, "-", "") + "}"
	p.register(upper, "c1")

	doc, page := ptID(), ptID()
	ptWant(t, "create", p.one(upper, "c1", ptCreate("docs", doc, `{"title":"a","owner_id":"`+upper+`"}`)), PushStatusApplied, "")
	ptWant(t, "create child", p.one(upper, "c1", ptCreate("pages", page, `{"doc_id":"`+doc+`","body":"p"}`)), PushStatusApplied, "")
	ptWant(t, "update", p.one(upper, "c1", ptUpdate("docs", doc, `{"title":"b","owner_id":"`+lower+`"}`, ptFuture())), PushStatusApplied, "")
	ptWant(t, "update child", p.one(upper, "c1", ptUpdate("pages", page, `{"body":"q"}`, ptFuture())), PushStatusApplied, "")
	ptWant(t, "update, braced id", p.one(braced, "c1", ptUpdate("docs", doc, `{"title":"c"}`, ptFuture())), PushStatusApplied, "")
	ptWant(t, "delete", p.one(lower, "c1", ptDelete("pages", page)), PushStatusApplied, "")

	// One client row, under the stored form.
	var users string
	pgtest.QueryRow(t, db.Super, `SELECT string_agg(user_id, ',') FROM synchro.clients`).Scan(&users)
	if users != lower {
		t.Errorf("clients hold user ids %q, want %q", users, lower)
	}
	// Another user still cannot touch it.
	stranger := ptID()
	p.register(stranger, "c9")
	ptWant(t, "other user", p.one(stranger, "c9", ptUpdate("docs", doc, `{"title":"x"}`, ptFuture())), PushStatusRejectedTerminal, reasonRecordNotFound)
}

// pgtestSetupUUIDOwners creates a migrated database whose tables are owned
// through a uuid column.
func pgtestSetupUUIDOwners(t *testing.T) *pgtest.Database {
	t.Helper()
	db := ptSetup(t)
	pgtest.Exec(t, db.Super, `CREATE TABLE docs (id uuid PRIMARY KEY, owner_id uuid NOT NULL, title text, updated_at timestamptz NOT NULL DEFAULT now(), deleted_at timestamptz);
CREATE TABLE pages (id uuid PRIMARY KEY, doc_id uuid NOT NULL REFERENCES docs (id), body text, updated_at timestamptz NOT NULL DEFAULT now(), deleted_at timestamptz)`)
	return db
}

func TestCanonicalUserIDs(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		form     ownerForm
		in, want string
	}{
		{ownerFormUUID, "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"},
		{ownerFormUUID, "{a0eebc999c0b4ef8bb6d6bb9bd380a11}", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"},
		{ownerFormUUID, "a0ee-bc99-9c0b-4ef8-bb6d-6bb9-bd38-0a11", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"},
		{ownerFormUUID, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1"},
		{ownerFormUUID, "a0eebc9-99c0b-4ef8-bb6d-6bb9bd380a11", "a0eebc9-99c0b-4ef8-bb6d-6bb9bd380a11"},
		{ownerFormUUID, "alice", "alice"},
		{ownerFormInteger, "0042", "42"},
		{ownerFormInteger, "+7", "7"},
		{ownerFormInteger, "x7", "x7"},
		{ownerFormAsIs, "ABC", "ABC"},
	} {
		if got := c.form.canonical(c.in); got != c.want {
			t.Errorf("form %d: canonical(%q) = %q, want %q", c.form, c.in, got, c.want)
		}
	}
}

func TestSameJSONValue(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		a, b string
		want bool
	}{
		{`1`, `1.0`, true},
		{`12.5`, `1.25e1`, true},
		{`1`, `"1"`, false},
		{`null`, ``, true},
		{`null`, `0`, false},
		{`"2026-01-02T03:04:05+00:00"`, `"2026-01-02T03:04:05Z"`, true},
		{`"2026-01-02T03:04:05+01:00"`, `"2026-01-02T03:04:05Z"`, false},
		{`{"a":[1,2]}`, `{"a":[1,2.0]}`, true},
		{`{"a":[1,2]}`, `{"a":[2,1]}`, false},
		{`1e99999999999`, `1e99999999999`, true},
		{`1e99999999999`, `1e99999999998`, false},
		{`true`, `true`, true},
		{`{`, `{`, false},
	} {
		if got := sameJSONValue(json.RawMessage(c.a), json.RawMessage(c.b)); got != c.want {
			t.Errorf("sameJSONValue(%s, %s) = %v, want %v", c.a, c.b, got, c.want)
		}
	}
}

// TestPushParentWaitIsBounded: a record waiting for its parent is answered
// parent_not_found until it has waited through parentWaitStalls pushes that
// applied nothing, over parentWaitTime; then it is terminal, so a device
// whose queue never delivers the parent is not stuck for ever. Pushes that
// apply something do not count, nor does a record's first wait.
func TestPushParentWaitIsBounded(t *testing.T) {
	t.Parallel()
	p := ptNewEnv(t, nil)
	super := p.db.Super
	p.register("alice", "c1")
	waits := func() []parentWait {
		var doc string
		pgtest.QueryRow(t, super, `SELECT parent_waits::text FROM synchro.clients WHERE client_id = 'c1'`).Scan(&doc)
		var w []parentWait
		if err := json.Unmarshal([]byte(doc), &w); err != nil {
			t.Fatal(err)
		}
		return w
	}
	age := func() {
		pgtest.Exec(t, super, `UPDATE synchro.clients SET parent_waits = (SELECT coalesce(jsonb_agg(jsonb_set(w, '{since}', to_jsonb(now() - $1::interval))), '[]')
			FROM jsonb_array_elements(parent_waits) AS w) WHERE client_id = 'c1'`, fmt.Sprintf("%d seconds", int(parentWaitTime.Seconds())+1))
	}
	orphan := ptCreate("items", ptID(), `{"list_id":"`+ptID()+`","title":"orphan"}`)
	for i := range parentWaitStalls - 1 {
		ptWant(t, fmt.Sprint("push ", i), p.one("alice", "c1", orphan), PushStatusRejectedRetryable, reasonParentNotFound)
	}
	if w := waits(); len(w) != 1 || w[0].ID != orphan.ID || w[0].Stalled != parentWaitStalls-1 {
		t.Fatalf("after %d stalled pushes: waits %+v", parentWaitStalls-1, w)
	}
	// Enough stalled pushes, but not enough time: still waiting.
	ptWant(t, "too soon", p.one("alice", "c1", orphan), PushStatusRejectedRetryable, reasonParentNotFound)
	age()

	// A parent that comes in the same push is still found; a record
	// waiting for the first time is not given up; the old one is.
	list, child := ptID(), ptID()
	fresh := ptCreate("items", ptID(), `{"list_id":"`+ptID()+`","title":"fresh"}`)
	resp := p.push("alice", "c1",
		ptCreate("items", child, `{"list_id":"`+list+`","title":"child"}`),
		orphan,
		fresh,
		ptCreate("lists", list, `{"name":"late"}`),
	)
	ptWant(t, "child of a late parent", ptFind(t, resp, child), PushStatusApplied, "")
	ptWant(t, "first wait", ptFind(t, resp, fresh.ID), PushStatusRejectedRetryable, reasonParentNotFound)
	res := ptFind(t, resp, orphan.ID)
	ptWant(t, "given up", res, PushStatusRejectedTerminal, reasonParentNeverArrived)
	if !strings.Contains(res.Message, "waited") {
		t.Errorf("message %q does not say how long it waited", res.Message)
	}
	if w := waits(); len(w) != 1 || w[0].ID != fresh.ID || w[0].Stalled != 0 {
		t.Errorf("after giving up: waits %+v, want only the fresh record, with no stalled push (that push applied something)", w)
	}

	// A queue that moves (each push applies something) is never cut short,
	// however long it takes.
	for i := range parentWaitStalls + 2 {
		ptWant(t, fmt.Sprint("moving queue ", i), ptFind(t, p.push("alice", "c1", fresh, ptCreate("lists", ptID(), `{"name":"x"}`)), fresh.ID),
			PushStatusRejectedRetryable, reasonParentNotFound)
		age()
	}
	// Once the device stops sending it, it is forgotten.
	ptWant(t, "an ordinary push", p.one("alice", "c1", ptCreate("lists", ptID(), `{"name":"y"}`)), PushStatusApplied, "")
	if w := waits(); len(w) != 0 {
		t.Errorf("after a push without waiting records: waits %+v, want none", w)
	}
}
