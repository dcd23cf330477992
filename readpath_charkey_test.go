package synchro_test

import (
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/synchrosync/synchro"
	"github.com/synchrosync/synchro/internal/pgtest"
)

// TestCharKeysEndToEnd: tables keyed by char(n), with ids shorter than n,
// captured, snapshot in pages of one and pulled, under RLS: PostgreSQL
// prints such a key padded ("a   "), the changelog and the edges hold
// what capture decoded, and every comparison of a key with an id must
// still find the row (a snapshot, a pull, a delete, a move to another
// user's parent).
func TestCharKeysEndToEnd(t *testing.T) {
	t.Parallel()
	reg := synchro.NewRegistry()
	reg.Register(&synchro.TableConfig{TableName: "folders", OwnerColumn: "user_id"})
	reg.Register(&synchro.TableConfig{TableName: "docs", ParentTable: "folders", ParentFKCol: "folder_id"})
	e := rpStart(t, rpOptions{app: true, registry: reg, schema: `
CREATE TABLE folders (
	id         char(4) PRIMARY KEY,
	user_id    text NOT NULL,
	name       text NOT NULL,
	updated_at timestamptz NOT NULL DEFAULT now(),
	deleted_at timestamptz
);
CREATE TABLE docs (
	id         char(6) PRIMARY KEY,
	folder_id  char(4) NOT NULL REFERENCES folders (id),
	title      text NOT NULL,
	updated_at timestamptz NOT NULL DEFAULT now(),
	deleted_at timestamptz
);`})
	pgtest.Exec(t, e.db.Super, `
INSERT INTO folders (id, user_id, name) VALUES ('a', 'alice', 'short'), ('abcd', 'alice', 'full'), ('b', 'bob', 'bobs');
INSERT INTO docs (id, folder_id, title) VALUES ('x', 'a', 'x1'), ('xyzxyz', 'abcd', 'full1'), ('q', 'b', 'bobdoc')`)
	e.caughtUp()

	// titles returns the device's rows as "table/name-or-title", sorted.
	titles := func(c *rpClient) []string {
		var out []string
		for k, data := range c.rows {
			var row map[string]any
			if err := json.Unmarshal(data, &row); err != nil {
				t.Fatalf("%s: %v", k, err)
			}
			v, _ := row["title"].(string)
			if v == "" {
				v, _ = row["name"].(string)
			}
			out = append(out, strings.SplitN(k, "/", 2)[0]+"/"+v)
		}
		slices.Sort(out)
		return out
	}
	want := func(c *rpClient, what string, rows ...string) {
		t.Helper()
		slices.Sort(rows)
		if got := titles(c); !slices.Equal(got, rows) {
			t.Errorf("%s: %s holds %v, want %v", what, c.id, got, rows)
		}
	}
	alice, bob := e.client("alice", "alice-1"), e.client("bob", "bob-1")
	alice.snapshot(1)
	bob.snapshot(1)
	want(alice, "snapshot", "folders/short", "folders/full", "docs/x1", "docs/full1")
	want(bob, "snapshot", "folders/bobs", "docs/bobdoc")

	pgtest.Exec(t, e.db.Super, `
UPDATE folders SET name = 'short2' WHERE id = 'a';
INSERT INTO docs (id, folder_id, title) VALUES ('y', 'a', 'y1');
DELETE FROM docs WHERE id = 'x';
UPDATE docs SET folder_id = 'b' WHERE id = 'xyzxyz'`)
	e.caughtUp()
	alice.pullAll(1)
	bob.pullAll(1)
	want(alice, "pull", "folders/short2", "folders/full", "docs/y1")
	want(bob, "pull", "folders/bobs", "docs/bobdoc", "docs/full1")

	// A new device's snapshot agrees with the pulled copies.
	alice2 := e.client("alice", "alice-2")
	alice2.snapshot(1)
	want(alice2, "second snapshot", "folders/short2", "folders/full", "docs/y1")

	// A parent moved to another user takes its children along (capture
	// reads them from the table and records their edges under their ids).
	pgtest.Exec(t, e.db.Super, `UPDATE folders SET user_id = 'bob' WHERE id = 'a'`)
	e.caughtUp()
	alice.pullAll(1)
	bob.pullAll(1)
	want(alice, "pull after the parent's move", "folders/full")
	want(bob, "pull after the parent's move", "folders/bobs", "docs/bobdoc", "docs/full1", "folders/short2", "docs/y1")
	bob2 := e.client("bob", "bob-2")
	bob2.snapshot(1)
	want(bob2, "snapshot after the parent's move", "folders/bobs", "docs/bobdoc", "docs/full1", "folders/short2", "docs/y1")
	if !slices.Equal(slices.Sorted(maps.Keys(bob.rows)), slices.Sorted(maps.Keys(bob2.rows))) {
		t.Errorf("record ids: pulled %q, snapshot %q", slices.Sorted(maps.Keys(bob.rows)), slices.Sorted(maps.Keys(bob2.rows)))
	}
}

// TestInetAndBoolKeysEndToEnd: the cast to text of an inet key adds the
// netmask ("10.0.0.1/32") and that of a boolean key spells it "true",
// where PostgreSQL prints them "10.0.0.1" and "t" (the form capture
// records); a device keyed by record id must see one id per row from the
// snapshot and from pulls.
func TestInetAndBoolKeysEndToEnd(t *testing.T) {
	t.Parallel()
	reg := synchro.NewRegistry()
	reg.Register(&synchro.TableConfig{TableName: "hosts", OwnerColumn: "user_id"})
	reg.Register(&synchro.TableConfig{TableName: "flags", OwnerColumn: "user_id"})
	e := rpStart(t, rpOptions{app: true, registry: reg, schema: `
CREATE TABLE hosts (
	id         inet PRIMARY KEY,
	user_id    text NOT NULL,
	name       text NOT NULL,
	updated_at timestamptz NOT NULL DEFAULT now(),
	deleted_at timestamptz
);
CREATE TABLE flags (
	id         boolean PRIMARY KEY,
	user_id    text NOT NULL,
	name       text NOT NULL,
	updated_at timestamptz NOT NULL DEFAULT now(),
	deleted_at timestamptz
);`})
	pgtest.Exec(t, e.db.Super, `INSERT INTO hosts (id, user_id, name) VALUES ('10.0.0.1', 'alice', 'one'), ('10.0.0.2', 'alice', 'two'), ('10.1.0.0/16', 'alice', 'net');
INSERT INTO flags (id, user_id, name) VALUES (true, 'alice', 'yes'), (false, 'alice', 'no')`)
	e.caughtUp()
	alice := e.client("alice", "alice-1")
	alice.snapshot(1)
	pgtest.Exec(t, e.db.Super, `UPDATE hosts SET name = 'one2' WHERE id = '10.0.0.1'; DELETE FROM hosts WHERE id = '10.0.0.2';
UPDATE flags SET name = 'yes2' WHERE id; DELETE FROM flags WHERE NOT id`)
	e.caughtUp()
	alice.pullAll(1)
	got := map[string]string{}
	for k, data := range alice.rows {
		var row struct{ Name string }
		if err := json.Unmarshal(data, &row); err != nil {
			t.Fatal(err)
		}
		got[k] = row.Name
	}
	want := map[string]string{"hosts/10.0.0.1": "one2", "hosts/10.1.0.0/16": "net", "flags/t": "yes2"}
	if !maps.Equal(got, want) {
		t.Errorf("device holds %v, want %v", got, want)
	}
}
