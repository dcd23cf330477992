package synchro

import (
	"context"
	"database/sql"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/synchrosync/synchro/internal/pgtest"
)

// This file tests last-write-wins by edit time (see Conflict and
// LWWResolver): a row's version is the edit time of the write that made it,
// capped by the database clock, and only moves forward.

// lwwEnv is a push environment that records every OnConflict call.
type lwwEnv struct {
	*ptEnv
	mu    sync.Mutex
	calls []conflictEvent
}

func lwwStart(t *testing.T, mod func(*Config)) *lwwEnv {
	t.Helper()
	e := &lwwEnv{}
	e.ptEnv = ptNewEnv(t, e.recording(mod))
	e.register("alice", "phone")
	e.register("alice", "laptop")
	return e
}

// recording returns a configuration that records every OnConflict call in
// e.calls, then applies mod (when not nil).
func (e *lwwEnv) recording(mod func(*Config)) func(*Config) {
	return func(c *Config) {
		c.Hooks.OnConflict = func(_ context.Context, c Conflict, r Resolution) {
			e.mu.Lock()
			defer e.mu.Unlock()
			e.calls = append(e.calls, conflictEvent{c, r})
		}
		if mod != nil {
			mod(c)
		}
	}
}

// last returns the latest OnConflict call.
func (e *lwwEnv) last(t *testing.T) conflictEvent {
	t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.calls) == 0 {
		t.Fatal("OnConflict was not called")
	}
	return e.calls[len(e.calls)-1]
}

// list creates a list edited at the time at and returns its id and version.
func (e *lwwEnv) list(t *testing.T, at time.Time) (string, time.Time) {
	t.Helper()
	id := ptID()
	rec := ptCreate("lists", id, `{"name":"v0"}`)
	rec.ClientUpdatedAt = at
	res := e.one("alice", "laptop", rec)
	ptWant(t, "create", res, PushStatusApplied, "")
	if res.ServerUpdatedAt == nil || !res.ServerUpdatedAt.Equal(at.Truncate(time.Microsecond)) {
		t.Fatalf("create edited at %v: version %v, want the edit time", at, res.ServerUpdatedAt)
	}
	return id, *res.ServerUpdatedAt
}

// edit is an update of list id's name made at the time at on a copy of
// version base.
func edit(id, name string, at, base time.Time) PushRecord {
	rec := ptUpdate("lists", id, `{"name":"`+name+`"}`, at)
	rec.BaseUpdatedAt = &base
	return rec
}

func lwwWantName(t *testing.T, e *lwwEnv, id, want string) {
	t.Helper()
	if name, _ := ptListName(t, e.db.Super, id); name != want {
		t.Errorf("name %q, want %q", name, want)
	}
}

// TestLWWByEditTime is the scenario: A edits offline at 10:10, B
// edits at 10:05 and pushes at 10:12, A pushes at 10:30. A's edit is the
// later one: it wins, and the row's version is its edit time. Times are
// minutes before now; both pushes arrive now, B's first.
func TestLWWByEditTime(t *testing.T) {
	t.Parallel()
	e := lwwStart(t, nil)
	now := time.Now()
	id, v0 := e.list(t, now.Add(-60*time.Minute))

	atB := now.Add(-25 * time.Minute) // 10:05
	resB := e.one("alice", "phone", edit(id, "B", atB, v0))
	ptWant(t, "B", resB, PushStatusApplied, "")
	if !resB.ServerUpdatedAt.Equal(atB.Truncate(time.Microsecond)) {
		t.Errorf("B's version %v, want its edit time %v", resB.ServerUpdatedAt, atB)
	}

	atA := now.Add(-20 * time.Minute) // 10:10
	resA := e.one("alice", "laptop", edit(id, "A", atA, v0))
	ptWant(t, "A, edited after B", resA, PushStatusApplied, "")
	lwwWantName(t, e, id, "A")
	if !resA.ServerUpdatedAt.Equal(atA.Truncate(time.Microsecond)) {
		t.Errorf("A's version %v, want its edit time %v", resA.ServerUpdatedAt, atA)
	}
	c := e.last(t)
	if c.res.Winner != winnerClient || !c.c.ClientTime.Equal(atA.Truncate(time.Microsecond)) ||
		!c.c.ServerTime.Equal(atB.Truncate(time.Microsecond)) || c.c.BaseVersion == nil || !c.c.BaseVersion.Equal(v0) {
		t.Errorf("the hook saw client %v, server %v, base %v, winner %s; want %v, %v, %v, client",
			c.c.ClientTime, c.c.ServerTime, c.c.BaseVersion, c.res.Winner, atA, atB, v0)
	}
}

// TestLWWEarlierEditLoses is the reverse: A edited at 10:03, before B's
// 10:05, so B's edit stays, whatever the order of arrival.
func TestLWWEarlierEditLoses(t *testing.T) {
	t.Parallel()
	e := lwwStart(t, nil)
	now := time.Now()
	id, v0 := e.list(t, now.Add(-60*time.Minute))
	atB := now.Add(-25 * time.Minute)
	ptWant(t, "B", e.one("alice", "phone", edit(id, "B", atB, v0)), PushStatusApplied, "")

	res := e.one("alice", "laptop", edit(id, "A", now.Add(-27*time.Minute), v0))
	ptWant(t, "A, edited before B", res, PushStatusConflict, reasonServerWon)
	lwwWantName(t, e, id, "B")
	if res.ServerUpdatedAt == nil || !res.ServerUpdatedAt.Equal(atB.Truncate(time.Microsecond)) {
		t.Errorf("conflict carries version %v, want B's %v", res.ServerUpdatedAt, atB)
	}
	if c := e.last(t); c.res.Winner != winnerServer || !c.c.ServerTime.Equal(atB.Truncate(time.Microsecond)) {
		t.Errorf("the hook saw server time %v, winner %s; want %v, server", c.c.ServerTime, c.res.Winner, atB)
	}
}

// TestLWWClockAhead: a device whose clock runs an hour ahead wins the
// conflict it pushes (its edit arrives last), but the version it leaves is
// the database clock at its push, not its clock: an edit made after that
// push by another device wins.
func TestLWWClockAhead(t *testing.T) {
	t.Parallel()
	e := lwwStart(t, nil)
	id, v0 := e.list(t, time.Now().Add(-60*time.Minute))

	before := time.Now()
	res := e.one("alice", "phone", edit(id, "fast clock", time.Now().Add(time.Hour), v0))
	ptWant(t, "clock an hour ahead", res, PushStatusApplied, "")
	after := time.Now()
	if v := *res.ServerUpdatedAt; v.Before(before.Add(-time.Second)) || v.After(after.Add(time.Second)) {
		t.Fatalf("version %v, want the push's time (%v to %v)", v, before, after)
	}
	if c := e.last(t); c.c.ClientTime.After(after.Add(time.Second)) {
		t.Errorf("the resolver saw the client time %v, beyond the database clock", c.c.ClientTime)
	}

	time.Sleep(5 * time.Millisecond)
	ptWant(t, "an edit made after the fast device's push", e.one("alice", "laptop", edit(id, "later", time.Now(), v0)), PushStatusApplied, "")
	lwwWantName(t, e, id, "later")
}

// TestLWWClockSkewToleranceCaps: the cap is the database clock plus
// Config.ClockSkewTolerance.
func TestLWWClockSkewToleranceCaps(t *testing.T) {
	t.Parallel()
	e := lwwStart(t, func(c *Config) { c.ClockSkewTolerance = 10 * time.Minute })
	id, v0 := e.list(t, time.Now().Add(-60*time.Minute))
	start := time.Now()
	res := e.one("alice", "phone", edit(id, "ahead", start.Add(time.Hour), v0))
	ptWant(t, "ahead", res, PushStatusApplied, "")
	v := *res.ServerUpdatedAt
	if v.Before(start.Add(10*time.Minute-time.Second)) || v.After(time.Now().Add(10*time.Minute+time.Second)) {
		t.Errorf("version %v, want the push's time plus 10 minutes (%v)", v, start.Add(10*time.Minute))
	}
}

// TestLWWDirectWrite: a write made outside synchro (plain SQL that sets
// updated_at) is a version like any other: an edit made before it loses, an
// edit made on it wins whatever the device's clock says, and the version
// the device's write leaves is after it.
func TestLWWDirectWrite(t *testing.T) {
	t.Parallel()
	e := lwwStart(t, nil)
	now := time.Now()
	id, v0 := e.list(t, now.Add(-60*time.Minute))

	var direct time.Time
	pgtest.QueryRow(t, e.db.Super, `UPDATE lists SET name = 'sql', updated_at = now() + interval '1 minute' WHERE id = $1::uuid RETURNING updated_at`, id).Scan(&direct)

	ptWant(t, "edit made before the SQL write", e.one("alice", "phone", edit(id, "old", now.Add(-time.Minute), v0)), PushStatusConflict, reasonServerWon)
	lwwWantName(t, e, id, "sql")
	if c := e.last(t); !c.c.ServerTime.Equal(direct) {
		t.Errorf("server time %v, want the SQL write's updated_at %v", c.c.ServerTime, direct)
	}

	// The device saw the SQL write; its clock is behind: it wins, and the
	// version moves forward from the SQL write's.
	res := e.one("alice", "laptop", edit(id, "on top", now.Add(-30*time.Minute), direct))
	ptWant(t, "edit on the SQL write", res, PushStatusApplied, "")
	lwwWantName(t, e, id, "on top")
	if !res.ServerUpdatedAt.After(direct) {
		t.Errorf("version %v went back from %v", res.ServerUpdatedAt, direct)
	}
	if c := e.last(t); c.res.Winner != winnerClient || c.c.BaseVersion == nil || !c.c.BaseVersion.Equal(direct) {
		t.Errorf("the hook saw base %v, winner %s", c.c.BaseVersion, c.res.Winner)
	}

	// The same with the delete of a soft-deleted table: its version too.
	del := ptDelete("lists", id)
	del.ClientUpdatedAt = now.Add(-50 * time.Minute)
	dres := e.one("alice", "phone", del)
	ptWant(t, "delete", dres, PushStatusApplied, "")
	var updated, deleted time.Time
	pgtest.QueryRow(t, e.db.Super, `SELECT updated_at, deleted_at FROM lists WHERE id = $1::uuid`, id).Scan(&updated, &deleted)
	if !updated.After(*res.ServerUpdatedAt) || !deleted.Equal(updated) {
		t.Errorf("after the delete: updated_at %v, deleted_at %v; want both just after %v", updated, deleted, res.ServerUpdatedAt)
	}
}

// TestLWWVersionsMoveForward: versions of one row never go back, even
// when the winning edit's time is earlier than the current version (it
// won on its base), and each write gives a new version.
func TestLWWVersionsMoveForward(t *testing.T) {
	t.Parallel()
	e := lwwStart(t, nil)
	now := time.Now()
	id, v := e.list(t, now.Add(-10*time.Minute))
	for i := range 5 {
		// Each edit is made on the current version, with a clock that
		// says an hour ago.
		res := e.one("alice", "phone", edit(id, "n", now.Add(-time.Hour), v))
		ptWant(t, "edit on the current version", res, PushStatusApplied, "")
		if !res.ServerUpdatedAt.After(v) {
			t.Fatalf("edit %d: version %v, not after %v", i, res.ServerUpdatedAt, v)
		}
		v = *res.ServerUpdatedAt
	}
}

// TestLWWSamePushEdits: a device's queue may hold two edits of one row,
// the second made on the first. In one push the second is based on the
// first's write even when its clock went back (and it carries the base of
// the first): it wins.
func TestLWWSamePushEdits(t *testing.T) {
	t.Parallel()
	e := lwwStart(t, nil)
	now := time.Now()
	id, v0 := e.list(t, now.Add(-60*time.Minute))
	resp := e.push("alice", "phone",
		edit(id, "first", now.Add(-10*time.Minute), v0),
		edit(id, "second", now.Add(-11*time.Minute), v0))
	if len(resp.Accepted) != 2 {
		t.Fatalf("accepted %d of 2 edits (rejected %+v)", len(resp.Accepted), resp.Rejected)
	}
	lwwWantName(t, e, id, "second")
}

// TestLWWServerWins: with ServerWinsResolver every update of a row with a
// version is refused, and the hook sees the same times.
func TestLWWServerWins(t *testing.T) {
	t.Parallel()
	e := lwwStart(t, func(c *Config) { c.ConflictResolver = &ServerWinsResolver{} })
	now := time.Now()
	id, v0 := e.list(t, now.Add(-60*time.Minute))
	at := now.Add(-time.Minute)
	ptWant(t, "update", e.one("alice", "phone", edit(id, "x", at, v0)), PushStatusConflict, reasonServerWon)
	lwwWantName(t, e, id, "v0")
	c := e.last(t)
	if c.res.Winner != winnerServer || !c.c.ClientTime.Equal(at.Truncate(time.Microsecond)) || !c.c.ServerTime.Equal(v0) {
		t.Errorf("the hook saw client %v, server %v, winner %s; want %v, %v, server", c.c.ClientTime, c.c.ServerTime, c.res.Winner, at, v0)
	}
}

// TestVersionStep: a column with fewer fractional digits steps by its
// precision (the type modifier of a timestamp, through domains), so that a
// new version is never rounded back onto the old.
func TestVersionStep(t *testing.T) {
	for typmod, want := range map[int]int{-1: 1, 6: 1, 3: 1000, 0: 1000000} {
		ti := &tableInfo{cfg: &TableConfig{UpdatedAtColumn: "updated_at"}}
		ti.columns = []columnInfo{{name: "updated_at", typmod: typmod}}
		ti.byName = map[string]int{"updated_at": 0}
		if got := ti.versionStep(); got != want {
			t.Errorf("precision %d: step %d µs, want %d", typmod, got, want)
		}
	}
}

// lwwDocs is an lwwEnv over ptSchema and schema, which makes a table docs
// (id uuid, user_id text, body text, and the timestamp columns the case
// is about), registered owned by user_id; its engine has a pool of its own
// opened with the runtime parameters params added to the DSN.
func lwwDocs(t *testing.T, schema string, params url.Values, mod func(*Config)) *lwwEnv {
	t.Helper()
	db := ptSetup(t)
	pgtest.Exec(t, db.Super, schema)
	u, err := url.Parse(db.DSN)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	for k, v := range params {
		q[k] = v
	}
	u.RawQuery = q.Encode()
	pool, err := sql.Open("pgx", u.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pool.Close() })
	reg := ptRegistry(t)
	reg.Register(&TableConfig{TableName: "docs", OwnerColumn: "user_id"})
	if err := reg.Validate(); err != nil {
		t.Fatal(err)
	}
	e := &lwwEnv{}
	e.ptEnv = ptEngine(t, db, pool, reg, e.recording(mod))
	e.register("alice", "phone")
	e.register("alice", "laptop")
	return e
}

// docEdit is an update of doc id's body made at the time at on a copy of
// version base.
func docEdit(id, body string, at, base time.Time) PushRecord {
	rec := ptUpdate("docs", id, `{"body":"`+body+`"}`, at)
	rec.BaseUpdatedAt = &base
	return rec
}

// docWant checks doc id's body.
func docWant(t *testing.T, e *lwwEnv, id, want string) {
	t.Helper()
	var body string
	pgtest.QueryRow(t, e.db.Super, `SELECT body FROM docs WHERE id = $1::uuid`, id).Scan(&body)
	if body != want {
		t.Errorf("body %q, want %q", body, want)
	}
}

// TestLWWCoarseVersionColumn: an updated-at column with fewer fractional
// digits, declared on the column or by a domain, still gives every write
// a new version: two edits within one second get strictly increasing
// versions, one step of the column's precision apart, and a device
// editing the first version has a stale copy that loses.
func TestLWWCoarseVersionColumn(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, domains, column string
		step                  time.Duration
	}{
		{"timestamptz(0)", "", "timestamptz(0)", time.Second},
		{"timestamp(0)", "", "timestamp(0)", time.Second},
		{"domain over timestamptz(0)", "CREATE DOMAIN version_ts AS timestamptz(0);", "version_ts", time.Second},
		{"domain over timestamp(0)", "CREATE DOMAIN version_ts AS timestamp(0);", "version_ts", time.Second},
		{"domain over a domain over timestamptz(0)", "CREATE DOMAIN inner_ts AS timestamptz(0); CREATE DOMAIN version_ts AS inner_ts;", "version_ts", time.Second},
		{"domain over timestamptz(3)", "CREATE DOMAIN version_ts AS timestamptz(3);", "version_ts", time.Millisecond},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := lwwDocs(t, tc.domains+`
CREATE TABLE docs (
	id         uuid PRIMARY KEY,
	user_id    text NOT NULL,
	body       text,
	updated_at `+tc.column+` NOT NULL DEFAULT now(),
	deleted_at timestamptz
);`, nil, nil)
			now := time.Now()
			id := ptID()
			create := ptCreate("docs", id, `{"body":"v0"}`)
			create.ClientUpdatedAt = now.Add(-time.Hour)
			res := e.one("alice", "laptop", create)
			if res.Status != PushStatusApplied || res.ServerUpdatedAt == nil {
				t.Fatalf("create: %+v", res)
			}
			v0 := *res.ServerUpdatedAt

			// Two edits on the current version, made (by this clock) before
			// it: each moves the version one step forward.
			v := v0
			for i := range 2 {
				res := e.one("alice", "phone", docEdit(id, "phone", now.Add(-2*time.Hour), v))
				ptWant(t, "edit on the current version", res, PushStatusApplied, "")
				if res.ServerUpdatedAt == nil || !res.ServerUpdatedAt.Equal(v.Add(tc.step)) {
					t.Fatalf("edit %d: version %v, want %v, one step after %v", i, res.ServerUpdatedAt, v.Add(tc.step), v)
				}
				v = *res.ServerUpdatedAt
			}

			// The laptop's copy is the first version: it is stale, and its
			// earlier edit loses.
			res = e.one("alice", "laptop", docEdit(id, "laptop", now.Add(-2*time.Hour), v0))
			ptWant(t, "edit on the first version", res, PushStatusConflict, reasonServerWon)
			docWant(t, e, id, "phone")
			if res.ServerUpdatedAt == nil || !res.ServerUpdatedAt.Equal(v) {
				t.Errorf("conflict carries version %v, want %v", res.ServerUpdatedAt, v)
			}
		})
	}
}

// TestLWWZonelessColumnInZone: a timestamp (without time zone) column
// holds versions as UTC times, the way the wire, pull and
// Conflict.ServerTime read it, whatever the TimeZone of the engine's
// sessions (here Asia/Tokyo, nine hours ahead of UTC): the version is the
// edit time, a later edit wins and an earlier one loses with the version
// as it is, and a soft delete stamps the same instant in both columns,
// whichever of them is zoneless.
func TestLWWZonelessColumnInZone(t *testing.T) {
	t.Parallel()
	tokyo := url.Values{"timezone": {"Asia/Tokyo"}}
	for _, tc := range []struct{ updated, deleted string }{
		{"timestamp", "timestamp"},
		{"timestamp", "timestamptz"},
		{"timestamptz", "timestamp"},
		{"timestamp(3)", "timestamptz"},
	} {
		t.Run(tc.updated+" "+tc.deleted, func(t *testing.T) {
			t.Parallel()
			e := lwwDocs(t, `
CREATE TABLE docs (
	id         uuid PRIMARY KEY,
	user_id    text NOT NULL,
	body       text,
	updated_at `+tc.updated+` NOT NULL DEFAULT now(),
	deleted_at `+tc.deleted+`
);`, tokyo, nil)
			var zone string
			pgtest.QueryRow(t, e.e.db, `SHOW TimeZone`).Scan(&zone)
			if zone != "Asia/Tokyo" {
				t.Fatalf("the engine's session TimeZone is %q", zone)
			}
			now := time.Now().Truncate(time.Millisecond)
			stored := func(id string) (updated, deleted *time.Time) {
				t.Helper()
				pgtest.QueryRow(t, e.db.Super, `SELECT updated_at, deleted_at FROM docs WHERE id = $1::uuid`, id).Scan(&updated, &deleted)
				return updated, deleted
			}
			id := ptID()
			create := ptCreate("docs", id, `{"body":"v0"}`)
			create.ClientUpdatedAt = now.Add(-time.Hour)
			res := e.one("alice", "laptop", create)
			if res.Status != PushStatusApplied || res.ServerUpdatedAt == nil {
				t.Fatalf("create: %+v", res)
			}
			v0 := *res.ServerUpdatedAt
			if !v0.Equal(create.ClientUpdatedAt) {
				t.Errorf("create's version %v, want its edit time %v", v0, create.ClientUpdatedAt)
			}

			at1 := now.Add(-30 * time.Minute)
			res = e.one("alice", "phone", docEdit(id, "phone", at1, v0))
			ptWant(t, "phone's edit", res, PushStatusApplied, "")
			if res.ServerUpdatedAt == nil || !res.ServerUpdatedAt.Equal(at1) {
				t.Errorf("phone's version %v, want its edit time %v", res.ServerUpdatedAt, at1)
			}
			if u, _ := stored(id); !u.Equal(at1) {
				t.Errorf("stored updated_at %v, want %v", u, at1)
			}

			// An edit made before the phone's loses, and sees its version.
			res = e.one("alice", "laptop", docEdit(id, "earlier", now.Add(-40*time.Minute), v0))
			ptWant(t, "earlier edit", res, PushStatusConflict, reasonServerWon)
			if res.ServerUpdatedAt == nil || !res.ServerUpdatedAt.Equal(at1) {
				t.Errorf("conflict carries version %v, want %v", res.ServerUpdatedAt, at1)
			}
			if c := e.last(t); !c.c.ServerTime.Equal(at1) {
				t.Errorf("the resolver saw server time %v, want %v", c.c.ServerTime, at1)
			}

			// An edit made after it wins.
			at2 := now.Add(-20 * time.Minute)
			res = e.one("alice", "laptop", docEdit(id, "later", at2, v0))
			ptWant(t, "later edit", res, PushStatusApplied, "")
			docWant(t, e, id, "later")
			if res.ServerUpdatedAt == nil || !res.ServerUpdatedAt.Equal(at2) {
				t.Errorf("later edit's version %v, want %v", res.ServerUpdatedAt, at2)
			}

			del := ptDelete("docs", id)
			del.ClientUpdatedAt = now.Add(-10 * time.Minute)
			res = e.one("alice", "phone", del)
			ptWant(t, "delete", res, PushStatusApplied, "")
			if res.ServerDeletedAt == nil || !res.ServerDeletedAt.Equal(del.ClientUpdatedAt) {
				t.Errorf("delete's deleted_at %v, want its edit time %v", res.ServerDeletedAt, del.ClientUpdatedAt)
			}
			if u, d := stored(id); !u.Equal(del.ClientUpdatedAt) || d == nil || !d.Equal(del.ClientUpdatedAt) {
				t.Errorf("after the delete: updated_at %v, deleted_at %v; want both %v", u, d, del.ClientUpdatedAt)
			}
		})
	}

	// Without an updated-at column, a soft delete's deleted-at is the
	// database clock, in UTC too.
	t.Run("deleted_at only", func(t *testing.T) {
		t.Parallel()
		e := lwwDocs(t, `
CREATE TABLE docs (
	id         uuid PRIMARY KEY,
	user_id    text NOT NULL,
	body       text,
	deleted_at timestamp
);`, tokyo, nil)
		id := ptID()
		ptWant(t, "create", e.one("alice", "laptop", ptCreate("docs", id, `{"body":"v0"}`)), PushStatusApplied, "")
		before := time.Now()
		res := e.one("alice", "phone", ptDelete("docs", id))
		after := time.Now()
		ptWant(t, "delete", res, PushStatusApplied, "")
		var deleted time.Time
		pgtest.QueryRow(t, e.db.Super, `SELECT deleted_at FROM docs WHERE id = $1::uuid`, id).Scan(&deleted)
		if deleted.Before(before.Add(-time.Second)) || deleted.After(after.Add(time.Second)) {
			t.Errorf("deleted_at %v, want the push's time (%v to %v)", deleted, before, after)
		}
		if res.ServerDeletedAt == nil || !res.ServerDeletedAt.Equal(deleted) {
			t.Errorf("server_deleted_at %v, want %v", res.ServerDeletedAt, deleted)
		}
	})
}

// TestLWWInfiniteVersion: a row whose updated-at is infinity or -infinity
// has no version, as pull delivers it (and as NULL): a push naming it does
// not fail, the record is decided on its own (a change without a base
// version wins, and its write gives the row the edit time as its version;
// one with a base version finds the row changed since, and loses), and the
// other records of the push are applied. A row whose deleted-at is
// infinite is deleted.
func TestLWWInfiniteVersion(t *testing.T) {
	t.Parallel()
	for _, inf := range []string{"infinity", "-infinity"} {
		t.Run(inf, func(t *testing.T) {
			t.Parallel()
			e := lwwStart(t, nil)
			now := time.Now()
			other, vOther := e.list(t, now.Add(-time.Hour))
			setInf := func(col string) string {
				t.Helper()
				id, _ := e.list(t, now.Add(-time.Hour))
				pgtest.Exec(t, e.db.Super, `UPDATE lists SET `+col+` = '`+inf+`' WHERE id = '`+id+`'`)
				return id
			}
			updated, based, recreated, deleted, gone := setInf("updated_at"), setInf("updated_at"), setInf("updated_at"), setInf("updated_at"), setInf("deleted_at")

			at := now.Add(-10 * time.Minute)
			noBase := ptUpdate("lists", updated, `{"name":"no base"}`, at)
			del := ptDelete("lists", deleted)
			del.ClientUpdatedAt = at
			resp := e.push("alice", "phone",
				noBase,
				edit(based, "with a base", at, vOther),
				ptCreate("lists", recreated, `{"name":"again"}`),
				del,
				ptUpdate("lists", gone, `{"name":"deleted"}`, at),
				edit(other, "other", at, vOther))

			res := ptFind(t, resp, updated)
			ptWant(t, "update without a base", res, PushStatusApplied, "")
			if res.ServerUpdatedAt == nil || !res.ServerUpdatedAt.Equal(at.Truncate(time.Microsecond)) {
				t.Errorf("update's version %v, want its edit time %v", res.ServerUpdatedAt, at)
			}
			lwwWantName(t, e, updated, "no base")

			res = ptFind(t, resp, based)
			ptWant(t, "update with a base", res, PushStatusConflict, reasonServerWon)
			if res.ServerUpdatedAt != nil || res.ServerVersion == nil || !res.ServerVersion.UpdatedAt.IsZero() {
				t.Errorf("conflict carries version %v, server version %+v; want none", res.ServerUpdatedAt, res.ServerVersion)
			}

			res = ptFind(t, resp, recreated)
			ptWant(t, "create of an existing row", res, PushStatusConflict, reasonRecordExists)
			if res.ServerUpdatedAt != nil {
				t.Errorf("conflict carries version %v, want none", res.ServerUpdatedAt)
			}

			res = ptFind(t, resp, deleted)
			ptWant(t, "delete", res, PushStatusApplied, "")
			var u, d time.Time
			pgtest.QueryRow(t, e.db.Super, `SELECT updated_at, deleted_at FROM lists WHERE id = $1::uuid`, deleted).Scan(&u, &d)
			if !u.Equal(at.Truncate(time.Microsecond)) || !d.Equal(u) {
				t.Errorf("after the delete: updated_at %v, deleted_at %v; want both %v", u, d, at)
			}

			res = ptFind(t, resp, gone)
			ptWant(t, "update of a row deleted at "+inf, res, PushStatusConflict, reasonRecordDeleted)

			ptWant(t, "update of another row", ptFind(t, resp, other), PushStatusApplied, "")
			lwwWantName(t, e, other, "other")
		})
	}
}

// TestLWWResolverToleranceBelowConfig: with an LWWResolver that allows
// less clock skew than Config.ClockSkewTolerance, a device whose clock runs
// ahead still cannot win against edits made after its push (LWWResolver's
// promise): the cap is the resolver's tolerance. A resolver that allows
// more leaves the cap at Config.ClockSkewTolerance.
func TestLWWResolverToleranceBelowConfig(t *testing.T) {
	t.Parallel()
	t.Run("less", func(t *testing.T) {
		t.Parallel()
		e := lwwStart(t, func(c *Config) {
			c.ClockSkewTolerance = time.Hour
			c.ConflictResolver = &LWWResolver{}
		})
		id, v0 := e.list(t, time.Now().Add(-2*time.Hour))
		before := time.Now()
		res := e.one("alice", "phone", edit(id, "fast clock", time.Now().Add(3*time.Hour), v0))
		ptWant(t, "clock three hours ahead", res, PushStatusApplied, "")
		after := time.Now()
		if v := *res.ServerUpdatedAt; v.Before(before.Add(-time.Second)) || v.After(after.Add(time.Second)) {
			t.Errorf("version %v, want the push's time (%v to %v)", v, before, after)
		}

		// The laptop has not seen the phone's write: its copy is v0. Its
		// edit, made after the phone's push, wins.
		time.Sleep(5 * time.Millisecond)
		res = e.one("alice", "laptop", edit(id, "later", time.Now(), v0))
		ptWant(t, "an edit made after the fast device's push", res, PushStatusApplied, "")
		lwwWantName(t, e, id, "later")
	})
	t.Run("more", func(t *testing.T) {
		t.Parallel()
		e := lwwStart(t, func(c *Config) {
			c.ClockSkewTolerance = 10 * time.Minute
			c.ConflictResolver = &LWWResolver{ClockSkewTolerance: time.Hour}
		})
		id, v0 := e.list(t, time.Now().Add(-2*time.Hour))
		start := time.Now()
		res := e.one("alice", "phone", edit(id, "ahead", start.Add(3*time.Hour), v0))
		ptWant(t, "ahead", res, PushStatusApplied, "")
		if v := *res.ServerUpdatedAt; v.Before(start.Add(10*time.Minute-time.Second)) || v.After(time.Now().Add(10*time.Minute+time.Second)) {
			t.Errorf("version %v, want the push's time plus 10 minutes (%v)", v, start.Add(10*time.Minute))
		}
	})
}
