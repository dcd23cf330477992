package synchro_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/synchrosync/synchro"
	"github.com/synchrosync/synchro/internal/pgtest"
	"github.com/synchrosync/synchro/internal/waltest"
	"github.com/synchrosync/synchro/wal"
)

// This file is the environment of the read path tests: a database with an
// application schema, RLS policies, the WAL consumer running, and an engine
// as the superuser or as the application role (no BYPASSRLS). Helpers carry
// the prefix "rp".

// rpSchema is the application schema: lists owned by users, items and notes
// below them, a reference table, and a table readable by everyone when its
// owner is NULL.
const rpSchema = `
CREATE TABLE categories (id text PRIMARY KEY, name text NOT NULL);
CREATE TABLE lists (
	id         bigint PRIMARY KEY,
	user_id    text,
	name       text NOT NULL,
	updated_at timestamptz NOT NULL DEFAULT now(),
	deleted_at timestamptz
);
CREATE TABLE items (
	id         uuid PRIMARY KEY,
	list_id    bigint REFERENCES lists (id) ON DELETE CASCADE,
	title      text NOT NULL,
	secret     text,
	updated_at timestamptz NOT NULL DEFAULT now(),
	deleted_at timestamptz
);
CREATE TABLE notes (
	id      text PRIMARY KEY,
	item_id uuid REFERENCES items (id) ON DELETE CASCADE,
	body    text
);
CREATE TABLE tips (id int PRIMARY KEY, user_id text, body text);
`

// rpRegistry registers the schema's tables.
func rpRegistry() *synchro.Registry {
	return rpRegistryWithout("")
}

// rpRegistryWithout registers the schema's tables but the one named.
func rpRegistryWithout(table string) *synchro.Registry {
	reg := synchro.NewRegistry()
	for _, cfg := range []*synchro.TableConfig{
		{TableName: "categories"},
		{TableName: "lists", OwnerColumn: "user_id"},
		{TableName: "items", ParentTable: "lists", ParentFKCol: "list_id",
			SyncColumns: []string{"id", "list_id", "title", "updated_at", "deleted_at"}},
		{TableName: "notes", ParentTable: "items", ParentFKCol: "item_id"},
		{TableName: "tips", OwnerColumn: "user_id", AllowGlobalRead: true},
	} {
		if cfg.TableName != table {
			reg.Register(cfg)
		}
	}
	return reg
}

// rpEnv is a database with a running consumer and an engine.
type rpEnv struct {
	t   testing.TB
	db  *pgtest.Database
	reg *synchro.Registry
	eng *synchro.Engine
	// slot is the consumer's replication slot.
	slot string
}

// rpOptions adjust an environment.
type rpOptions struct {
	schema   string                // replaces rpSchema when set
	registry *synchro.Registry     // replaces rpRegistry() when set
	app      bool                  // the engine connects as the role without BYPASSRLS
	config   func(*synchro.Config) // adjusts the engine's configuration
	assigner func(*synchro.Registry, *sql.DB) wal.BucketAssigner
	consumer func(*wal.ConsumerConfig) // adjusts the consumer's configuration
	db       *pgtest.Database          // a migrated database to use instead of a new one
}

// rpStart creates the environment and waits until the consumer streams.
func rpStart(t testing.TB, o rpOptions) *rpEnv {
	t.Helper()
	db := o.db
	if db == nil {
		db = pgtest.NewMigratedDatabase(t)
	}
	schema, reg := cmpOr(o.schema, rpSchema), o.registry
	if reg == nil {
		reg = rpRegistry()
	}
	pgtest.Exec(t, db.Super, schema)
	for _, stmt := range synchro.GenerateRLSPolicies(reg) {
		pgtest.Exec(t, db.Super, stmt)
	}
	e := &rpEnv{t: t, db: db, reg: reg, slot: "s_" + strings.ReplaceAll(db.Name, "-", "_")}
	conn := db.Super
	if o.app {
		conn = db.App
	}
	cfg := synchro.Config{DB: conn, Registry: reg}
	if o.config != nil {
		o.config(&cfg)
	}
	eng, err := synchro.NewEngine(cfg)
	if err != nil {
		t.Fatalf("NewEngine: %v", err)
	}
	e.eng = eng
	var assigner wal.BucketAssigner
	if o.assigner != nil {
		assigner = o.assigner(reg, db.Super)
	}
	ccfg := wal.ConsumerConfig{
		ConnString: db.DSN, SlotName: e.slot, PublicationName: "pub", Registry: reg,
		Assigner: assigner, ChangelogDB: db.Super, StandbyTimeout: 200 * time.Millisecond,
	}
	if o.consumer != nil {
		o.consumer(&ccfg)
	}
	c, err := wal.NewConsumer(ccfg)
	if err != nil {
		t.Fatalf("NewConsumer: %v", err)
	}
	waltest.Run(t, c, db.Super, e.slot, rpTimeout)
	return e
}

// streaming reports whether the consumer streams from its slot, and what
// it found.
func (e *rpEnv) streaming() (bool, string) { return waltest.Streaming(e.db.Super, e.slot) }

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// rpTimeout bounds the waits of the read path tests.
const rpTimeout = 30 * time.Second

// caughtUp waits until the consumer has written every change committed
// before the call to the changelog: the slot confirms up to the current WAL
// position only once it is durably written.
func (e *rpEnv) caughtUp() {
	e.t.Helper()
	var target string
	pgtest.QueryRow(e.t, e.db.Super, `SELECT pg_current_wal_insert_lsn()::text`).Scan(&target)
	pgtest.WaitFor(e.t, "the consumer to catch up with "+target, rpTimeout, func() (bool, string) {
		var ok bool
		err := e.db.Super.QueryRow(`SELECT confirmed_flush_lsn >= $2::pg_lsn FROM pg_replication_slots WHERE slot_name = $1`,
			e.slot, target).Scan(&ok)
		return err == nil && ok, fmt.Sprintf("caught up %v, %v", ok, err)
	})
}

// rpClient is a device: its registration and its local copy of the rows.
type rpClient struct {
	e          *rpEnv
	user, id   string
	checkpoint int64
	// rows maps "table/id" to the row's data.
	rows  map[string]json.RawMessage
	known []string
}

// client registers a device for user.
func (e *rpEnv) client(user, id string) *rpClient {
	e.t.Helper()
	if _, err := e.eng.RegisterClient(context.Background(), user, &synchro.RegisterRequest{ClientID: id, Platform: "test", AppVersion: "1.0.0"}); err != nil {
		e.t.Fatalf("register %s/%s: %v", user, id, err)
	}
	return &rpClient{e: e, user: user, id: id, rows: map[string]json.RawMessage{}}
}

// schema returns the server's schema version and hash.
func (e *rpEnv) schema() (int64, string) {
	e.t.Helper()
	v, h, err := e.eng.CurrentSchemaManifest(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	return v, h
}

// snapshot replaces the local copy with a full snapshot in pages of limit.
func (c *rpClient) snapshot(limit int) {
	c.e.t.Helper()
	v, h := c.e.schema()
	c.rows = map[string]json.RawMessage{}
	var cur *synchro.SnapshotCursor
	for pages := 0; ; pages++ {
		if pages > 100000 {
			c.e.t.Fatal("snapshot does not end")
		}
		resp, err := c.e.eng.Snapshot(context.Background(), c.user, &synchro.SnapshotRequest{ClientID: c.id, Cursor: cur, Limit: limit, SchemaVersion: v, SchemaHash: h})
		if err != nil {
			c.e.t.Fatalf("snapshot %s/%s: %v", c.user, c.id, err)
		}
		for _, r := range resp.Records {
			c.rows[r.TableName+"/"+r.ID] = r.Data
		}
		c.checkpoint = resp.Checkpoint
		if !resp.HasMore {
			return
		}
		cur = resp.Cursor
	}
}

// pull applies one page and returns the response.
func (c *rpClient) pull(limit int, tables ...string) *synchro.PullResponse {
	c.e.t.Helper()
	resp, err := c.pullErr(limit, tables...)
	if err != nil {
		c.e.t.Fatalf("pull %s/%s: %v", c.user, c.id, err)
	}
	return resp
}

// pullErr applies one page, or returns the error.
func (c *rpClient) pullErr(limit int, tables ...string) (*synchro.PullResponse, error) {
	v, h := c.e.schema()
	resp, err := c.e.eng.Pull(context.Background(), c.user, &synchro.PullRequest{ClientID: c.id, Checkpoint: c.checkpoint,
		Tables: tables, Limit: limit, KnownBuckets: c.known, SchemaVersion: v, SchemaHash: h})
	if err != nil {
		return nil, err
	}
	if resp.SnapshotRequired {
		return resp, nil
	}
	for _, r := range resp.Changes {
		c.rows[r.TableName+"/"+r.ID] = r.Data
	}
	for _, d := range resp.Deletes {
		delete(c.rows, d.TableName+"/"+d.ID)
	}
	c.checkpoint = resp.Checkpoint
	return resp, nil
}

// pullAll pulls until has_more is false.
func (c *rpClient) pullAll(limit int) {
	c.e.t.Helper()
	for i := 0; ; i++ {
		if i > 100000 {
			c.e.t.Fatal("pull does not end")
		}
		resp := c.pull(limit)
		if resp.SnapshotRequired {
			c.e.t.Fatalf("pull %s/%s: snapshot required (%s)", c.user, c.id, resp.SnapshotReason)
		}
		if !resp.HasMore {
			return
		}
	}
}

// expected reads, as the superuser, the rows user should hold with the
// default subscriptions: what the registry's rules put in "user:<user>" or
// "global", projected like the engine projects them.
func (e *rpEnv) expected(user string) map[string]json.RawMessage {
	e.t.Helper()
	q := `
SELECT 'categories/' || id, row_to_json(c)::text FROM categories c
UNION ALL
SELECT 'lists/' || id, row_to_json(l)::text FROM lists l WHERE user_id = $1 AND deleted_at IS NULL
UNION ALL
SELECT 'items/' || i.id, (SELECT row_to_json(s)::text FROM (SELECT i.id, i.list_id, i.title, i.updated_at, i.deleted_at) s)
  FROM items i JOIN lists l ON l.id = i.list_id WHERE l.user_id = $1 AND i.deleted_at IS NULL
UNION ALL
SELECT 'notes/' || n.id, row_to_json(n)::text
  FROM notes n JOIN items i ON i.id = n.item_id JOIN lists l ON l.id = i.list_id WHERE l.user_id = $1
UNION ALL
SELECT 'tips/' || id, row_to_json(t)::text FROM tips t WHERE user_id = $1 OR user_id IS NULL OR user_id = ''`
	return rcRowsOf(e, q, user)
}

// rpSameRows compares two local copies, decoding the JSON values.
func rpSameRows(t testing.TB, what string, got, want map[string]json.RawMessage) {
	t.Helper()
	var diffs []string
	keys := slices.Sorted(maps.Keys(want))
	for _, k := range keys {
		g, ok := got[k]
		if !ok {
			diffs = append(diffs, fmt.Sprintf("missing %s = %s", k, want[k]))
			continue
		}
		if !rpJSONEqual(g, want[k]) {
			diffs = append(diffs, fmt.Sprintf("%s: got %s want %s", k, g, want[k]))
		}
	}
	for _, k := range slices.Sorted(maps.Keys(got)) {
		if _, ok := want[k]; !ok {
			diffs = append(diffs, fmt.Sprintf("extra %s = %s", k, got[k]))
		}
	}
	if len(diffs) > 0 {
		if len(diffs) > 20 {
			diffs = append(diffs[:20], fmt.Sprintf("... %d more", len(diffs)-20))
		}
		t.Errorf("%s: %d rows, want %d:\n%s", what, len(got), len(want), strings.Join(diffs, "\n"))
	}
}

// rpDelivered completes a row read with row_to_json as the engine delivers
// it: every table of these tests uses the default timestamp column names,
// and a table that lacks one gets it in the contract as a made-up column,
// always null.
func rpDelivered(t testing.TB, row string) json.RawMessage {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(row), &m); err != nil {
		t.Fatalf("row %s: %v", row, err)
	}
	for _, col := range []string{"updated_at", "deleted_at"} {
		if _, ok := m[col]; !ok {
			m[col] = json.RawMessage("null")
		}
	}
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// rpJSONEqual compares two JSON documents by value.
func rpJSONEqual(a, b json.RawMessage) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	xa, _ := json.Marshal(x)
	ya, _ := json.Marshal(y)
	return string(xa) == string(ya)
}
