package synchro

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/synchrosync/synchro/internal/pgtest"
)

// TestRegisterClientSchemaContract checks the schema check of RegisterClient.
func TestRegisterClientSchemaContract(t *testing.T) {
	t.Parallel()
	p := ptNewEnv(t, nil)
	ctx := t.Context()

	// Bootstrap: a client without local tables.
	before := time.Now()
	resp, err := p.e.RegisterClient(ctx, "alice", &RegisterRequest{ClientID: "c1", Platform: "ios", AppVersion: "1.0.0"})
	if err != nil {
		t.Fatalf("bootstrap registration: %v", err)
	}
	if resp.ID == "" || resp.SchemaVersion != p.ver || resp.SchemaHash != p.hash || resp.Checkpoint != 0 {
		t.Errorf("bootstrap response %+v, want the server contract (%d, %s) and checkpoint 0", resp, p.ver, p.hash)
	}
	if resp.ServerTime.Before(before.Add(-time.Minute)) || resp.ServerTime.After(time.Now().Add(time.Minute)) || resp.ServerTime.Location() != time.UTC {
		t.Errorf("server_time %v", resp.ServerTime)
	}

	// The exact contract is accepted.
	again, err := p.e.RegisterClient(ctx, "alice", &RegisterRequest{ClientID: "c1", Platform: "ios", AppVersion: "1.0.0", SchemaVersion: p.ver, SchemaHash: p.hash})
	if err != nil {
		t.Fatalf("registration with the server contract: %v", err)
	}
	if again.ID != resp.ID {
		t.Errorf("re-registration changed the client's id: %q, was %q", again.ID, resp.ID)
	}

	// Anything else is a mismatch.
	for _, s := range []struct {
		v int64
		h string
	}{{p.ver, ""}, {0, p.hash}, {p.ver + 1, p.hash}, {p.ver, "0000"}, {p.ver, strings.ToUpper(p.hash)}, {-1, ""}} {
		_, err := p.e.RegisterClient(ctx, "alice", &RegisterRequest{ClientID: "c2", Platform: "ios", AppVersion: "1.0.0", SchemaVersion: s.v, SchemaHash: s.h})
		if !errors.Is(err, ErrSchemaMismatch) {
			t.Errorf("schema (%d, %q): %v, want ErrSchemaMismatch", s.v, s.h, err)
		}
	}
	if n := pgtest.Count(t, p.db.Super, `SELECT count(*) FROM synchro.clients WHERE client_id = 'c2'`); n != 0 {
		t.Error("a client refused for its schema was stored")
	}
}

// TestRegisterClientVersionGate checks MinClientVersion and
// Hooks.OnSchemaIncompatible.
func TestRegisterClientVersionGate(t *testing.T) {
	t.Parallel()
	type call struct{ client, have, min string }
	var (
		mu    sync.Mutex
		calls []call
	)
	p := ptNewEnv(t, func(c *Config) {
		c.MinClientVersion = "1.2.0"
		c.Hooks.OnSchemaIncompatible = func(_ context.Context, clientID, clientVer, minVer string) {
			mu.Lock()
			calls = append(calls, call{clientID, clientVer, minVer})
			mu.Unlock()
		}
	})
	ctx := t.Context()

	refused := []string{"1.1.9", "0.9.0", "1.2.0-beta.1", "", "   ", "banana", "1.x"}
	for i, v := range refused {
		client := "old-" + string(rune('a'+i))
		_, err := p.e.RegisterClient(ctx, "alice", &RegisterRequest{ClientID: client, Platform: "android", AppVersion: v})
		if !errors.Is(err, ErrUpgradeRequired) {
			t.Errorf("app version %q: %v, want ErrUpgradeRequired", v, err)
		}
		mu.Lock()
		if len(calls) != i+1 || calls[i] != (call{client, v, "1.2.0"}) {
			t.Errorf("app version %q: OnSchemaIncompatible calls %+v, want (%s, %q, 1.2.0)", v, calls, client, v)
		}
		mu.Unlock()
	}
	if n := pgtest.Count(t, p.db.Super, `SELECT count(*) FROM synchro.clients`); n != 0 {
		t.Errorf("%d clients refused by the version gate were stored", n)
	}

	for _, v := range []string{"1.2.0", "v1.2.0", "1.10.0", "2.0.0", "1.2.1+build.5"} {
		if _, err := p.e.RegisterClient(ctx, "alice", &RegisterRequest{ClientID: "new-" + v, Platform: "android", AppVersion: v}); err != nil {
			t.Errorf("app version %q: %v", v, err)
		}
	}
	mu.Lock()
	if len(calls) != len(refused) {
		t.Errorf("OnSchemaIncompatible called for accepted versions: %+v", calls[len(refused):])
	}
	mu.Unlock()

	// Without a minimum, any version (even none) registers.
	q := ptEngine(t, p.db, p.db.Super, ptRegistry(t), nil)
	for _, v := range []string{"", "0.0.1", "banana"} {
		if _, err := q.e.RegisterClient(ctx, "bob", &RegisterRequest{ClientID: "any-" + v, AppVersion: v}); err != nil {
			t.Errorf("no minimum, app version %q: %v", v, err)
		}
	}
}

// TestRegisterClientKeepsCheckpoint re-registers a client: its checkpoint
// and identity are kept, its descriptive fields updated, and it becomes
// active again.
func TestRegisterClientKeepsCheckpoint(t *testing.T) {
	t.Parallel()
	p := ptNewEnv(t, nil)
	ctx := t.Context()
	super := p.db.Super

	first := p.register("alice", "c1")
	p.register("bob", "c1") // same device id, another user: another client
	pgtest.Exec(t, super, `UPDATE synchro.clients SET last_pull_seq = 4242, is_active = false, last_sync_at = now() - interval '1 day' WHERE user_id = 'alice' AND client_id = 'c1'`)

	name := "Alice's phone"
	resp, err := p.e.RegisterClient(ctx, "alice", &RegisterRequest{ClientID: "c1", ClientName: &name, Platform: "ios", AppVersion: "2.0.0"})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Checkpoint != 4242 {
		t.Errorf("checkpoint %d after re-registration, want 4242", resp.Checkpoint)
	}
	if resp.ID != first.ID {
		t.Errorf("id %q, want %q", resp.ID, first.ID)
	}
	if resp.LastSyncAt == nil || time.Since(*resp.LastSyncAt) < 23*time.Hour {
		t.Errorf("last_sync_at %v, want the stored value", resp.LastSyncAt)
	}
	var active bool
	var platform, appVersion, clientName string
	var seq int64
	pgtest.QueryRow(t, super, `SELECT is_active, platform, app_version, client_name, last_pull_seq FROM synchro.clients WHERE user_id = 'alice' AND client_id = 'c1'`).Scan(&active, &platform, &appVersion, &clientName, &seq)
	if !active || platform != "ios" || appVersion != "2.0.0" || clientName != name || seq != 4242 {
		t.Errorf("stored client: active %v platform %q app %q name %q seq %d", active, platform, appVersion, clientName, seq)
	}
	if n := pgtest.Count(t, super, `SELECT count(*) FROM synchro.clients`); n != 2 {
		t.Errorf("%d client rows, want 2 (alice's and bob's)", n)
	}
	bob, err := p.e.RegisterClient(ctx, "bob", &RegisterRequest{ClientID: "c1"})
	if err != nil {
		t.Fatal(err)
	}
	if bob.Checkpoint != 0 || bob.ID == first.ID {
		t.Errorf("bob's client %+v shares alice's state", bob)
	}
}

// TestRegisterClientBadRequests checks malformed registrations.
func TestRegisterClientBadRequests(t *testing.T) {
	t.Parallel()
	p := ptNewEnv(t, nil)
	ctx := t.Context()
	for name, req := range map[string]*RegisterRequest{
		"nil request":            nil,
		"empty client id":        {ClientID: "", AppVersion: "1.0.0"},
		"long client id":         {ClientID: strings.Repeat("x", 5000), AppVersion: "1.0.0"},
		"invalid UTF-8 id":       {ClientID: "\xff\xfe", AppVersion: "1.0.0"},
		"invalid UTF-8 platform": {ClientID: "c1", Platform: "\xff", AppVersion: "1.0.0"},
		"NUL in client id":       {ClientID: "c\x001", AppVersion: "1.0.0"},
		"NUL in platform":        {ClientID: "c1", Platform: "ios\x00", AppVersion: "1.0.0"},
		"NUL in app version":     {ClientID: "c1", AppVersion: "1.0.0\x00"},
		"NUL in client name":     {ClientID: "c1", AppVersion: "1.0.0", ClientName: new("a\x00b")},
	} {
		_, err := p.e.RegisterClient(ctx, "alice", req)
		if err == nil || !isBadRequest(err) {
			t.Errorf("%s: %v, want a bad request", name, err)
		}
	}
	if _, err := p.e.RegisterClient(ctx, "", &RegisterRequest{ClientID: "c1"}); err == nil {
		t.Error("empty user id accepted")
	}
	if _, err := p.e.RegisterClient(ctx, "al\x00ice", &RegisterRequest{ClientID: "c1"}); err == nil || isBadRequest(err) {
		t.Errorf("user id with NUL: %v, want an error that is not the client's", err)
	}
	if n := pgtest.Count(t, p.db.Super, `SELECT count(*) FROM synchro.clients`); n != 0 {
		t.Errorf("%d clients stored from bad requests", n)
	}
}

// TestRegisterClientNewEngineBadMinVersion checks that NewEngine refuses a
// MinClientVersion that is not a semantic version.
func TestRegisterClientNewEngineBadMinVersion(t *testing.T) {
	t.Parallel()
	db := ptSetup(t)
	for _, v := range []string{"banana", "1.2.3.4", "v", "1..2"} {
		if _, err := NewEngine(Config{DB: db.Super, Registry: ptRegistry(t), MinClientVersion: v}); err == nil {
			t.Errorf("NewEngine accepted MinClientVersion %q", v)
		}
	}
	if _, err := NewEngine(Config{DB: db.Super, Registry: ptRegistry(t), MinClientVersion: "1.2.0"}); err != nil {
		t.Errorf("NewEngine with MinClientVersion 1.2.0: %v", err)
	}
}

// TestEngineRLSPush runs the engine as a role subject to row level
// security, with the generated policies installed: each user writes their
// own rows, and nobody else's.
func TestEngineRLSPush(t *testing.T) {
	t.Parallel()
	db := ptSetup(t)
	reg := ptRegistry(t)
	rlsApply(t, db.Super, GenerateRLSPolicies(reg))

	var bypass bool
	pgtest.QueryRow(t, db.App, `SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user`).Scan(&bypass)
	if bypass {
		t.Fatal("the application role bypasses RLS")
	}
	p := ptEngine(t, db, db.App, reg, nil)
	p.register("alice", "a1")
	p.register("bob", "b1")
	super := db.Super

	// Alice works on her own rows.
	list, item, item2, dead := ptID(), ptID(), ptID(), ptID()
	resp := p.push("alice", "a1",
		ptCreate("lists", list, `{"name":"alice list","category_id":"work"}`),
		ptCreate("lists", dead, `{"name":"to delete"}`),
		ptCreate("items", item, `{"list_id":"`+list+`","title":"one"}`),
		ptCreate("items", item2, `{"list_id":"`+list+`","title":"two"}`),
		ptCreate("notes", "1", `{"body":"alice"}`),
	)
	if len(resp.Accepted) != 5 {
		t.Fatalf("alice's creates: rejected %+v", resp.Rejected)
	}
	resp = p.push("alice", "a1",
		ptUpdate("lists", list, `{"name":"alice list 2"}`, ptFuture()),
		ptUpdate("items", item, `{"title":"one!","done":true}`, ptFuture()),
		ptDelete("items", item2),
		ptDelete("lists", dead),
		ptUpdate("notes", "1", `{"body":"alice 2"}`, ptFuture()),
	)
	if len(resp.Accepted) != 5 {
		t.Fatalf("alice's updates and deletes: rejected %+v", resp.Rejected)
	}
	ptWant(t, "alice deletes again", p.one("alice", "a1", ptDelete("items", item2)), PushStatusApplied, reasonAlreadyDeleted)
	ptWant(t, "alice's record_exists", p.one("alice", "a1", ptCreate("lists", list, `{"name":"dup"}`)), PushStatusConflict, reasonRecordExists)

	// Bob cannot see, change, delete or resurrect any of them.
	bobList := ptID()
	ptWant(t, "bob's own list", p.one("bob", "b1", ptCreate("lists", bobList, `{"name":"bob list"}`)), PushStatusApplied, "")
	hidden := []string{reasonOwnershipViolation, reasonRecordNotFound}
	cases := []struct {
		name    string
		rec     PushRecord
		reasons []string
	}{
		{"update alice's list", ptUpdate("lists", list, `{"name":"bob"}`, ptFuture()), hidden},
		{"claim alice's list", ptUpdate("lists", list, `{"name":"bob","user_id":"bob"}`, ptFuture()), hidden},
		{"delete alice's list", ptDelete("lists", list), hidden},
		{"update alice's item", ptUpdate("items", item, `{"title":"bob"}`, ptFuture()), hidden},
		{"delete alice's item", ptDelete("items", item), hidden},
		{"update alice's note", ptUpdate("notes", "1", `{"body":"bob"}`, ptFuture()), hidden},
		{"delete alice's note", ptDelete("notes", "1"), hidden},

		{"list naming alice as owner", ptCreate("lists", ptID(), `{"name":"x","user_id":"alice"}`), hidden},
		// A create on an id bob cannot see: the database refuses the
		// duplicate key, which the engine may report as create_failed.
		{"resurrect alice's list", func() PushRecord {
			r := ptCreate("lists", dead, `{"name":"bob"}`)
			r.ClientUpdatedAt = ptFuture()
			return r
		}(), append(hidden, reasonCreateFailed)},
		{"resurrect alice's item", func() PushRecord {
			r := ptCreate("items", item2, `{"list_id":"`+bobList+`","title":"bob"}`)
			r.ClientUpdatedAt = ptFuture()
			return r
		}(), append(hidden, reasonCreateFailed)},
		{"create over alice's live list", ptCreate("lists", list, `{"name":"bob"}`), append(hidden, reasonCreateFailed)},
		{"create over alice's note", ptCreate("notes", "1", `{"body":"bob"}`), append(hidden, reasonCreateFailed)},
	}
	// A child under alice's list: bob cannot see the list, and is told
	// what he would be told of a list that does not exist (retryable, until
	// the wait bound), never which it is.
	child := p.one("bob", "b1", ptCreate("items", ptID(), `{"list_id":"`+list+`","title":"bob"}`))
	if child.Status == PushStatusApplied || child.ServerVersion != nil {
		t.Errorf("child under alice's list: %+v", child)
	}
	for _, c := range cases {
		res := p.one("bob", "b1", c.rec)
		if res.Status != PushStatusRejectedTerminal || !slices.Contains(c.reasons, res.ReasonCode) {
			t.Errorf("%s: %s/%s (%s), want rejected_terminal with one of %v", c.name, res.Status, res.ReasonCode, res.Message, c.reasons)
		}
		if res.ServerVersion != nil {
			t.Errorf("%s: refusal carries a row: %+v", c.name, res.ServerVersion)
		}
	}

	// Alice's rows are exactly as she left them.
	checks := []struct {
		what string
		q    string
		args []any
	}{
		{"alice's list", `SELECT count(*) FROM lists WHERE id = $1::uuid AND user_id = 'alice' AND name = 'alice list 2' AND deleted_at IS NULL`, []any{list}},
		{"alice's deleted list", `SELECT count(*) FROM lists WHERE id = $1::uuid AND user_id = 'alice' AND name = 'to delete' AND deleted_at IS NOT NULL`, []any{dead}},
		{"alice's item", `SELECT count(*) FROM items WHERE id = $1::uuid AND list_id = $2::uuid AND title = 'one!' AND done AND deleted_at IS NULL`, []any{item, list}},
		{"alice's deleted item", `SELECT count(*) FROM items WHERE id = $1::uuid AND list_id = $2::uuid AND title = 'two' AND deleted_at IS NOT NULL`, []any{item2, list}},
		{"alice's note", `SELECT count(*) FROM notes WHERE id = 1 AND user_id = 'alice' AND body = 'alice 2'`, nil},
		{"alice's items only", `SELECT count(*) FROM items`, nil},
	}
	wants := []int{1, 1, 1, 1, 1, 2}
	for i, c := range checks {
		if n := pgtest.Count(t, super, c.q, c.args...); n != wants[i] {
			t.Errorf("%s: count %d, want %d", c.what, n, wants[i])
		}
	}
	if n := pgtest.Count(t, super, `SELECT count(*) FROM lists WHERE user_id = 'bob'`); n != 1 {
		t.Errorf("bob owns %d lists, want 1", n)
	}
}
