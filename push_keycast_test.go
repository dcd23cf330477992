package synchro

import (
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/synchrosync/synchro/internal/pgtest"
)

// TestPushKeyIsNotTruncated: an id longer than a varchar(n) key, or with
// more digits than a numeric(p,s) key, names no row. The key's cast used
// to keep the type modifier, and an explicit cast truncates or rounds: the
// update of "abcd" changed row "abc", and the create of "1.234" was a
// conflict with row 1.23.
func TestPushKeyIsNotTruncated(t *testing.T) {
	t.Parallel()
	db := pgtest.NewMigratedDatabase(t)
	pgtest.Exec(t, db.Super, `
CREATE TABLE codes (id varchar(3) PRIMARY KEY, user_id text NOT NULL, name text, updated_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE prices (id numeric(5,2) PRIMARY KEY, user_id text NOT NULL, name text, updated_at timestamptz NOT NULL DEFAULT now());`)
	reg := NewRegistry()
	for _, name := range []string{"codes", "prices"} {
		reg.Register(&TableConfig{TableName: name, OwnerColumn: "user_id"})
	}
	p := ptEngine(t, db, db.Super, reg, nil)
	p.register("alice", "c1")
	ptWant(t, "create abc", p.one("alice", "c1", ptCreate("codes", "abc", `{"name":"kept"}`)), PushStatusApplied, "")
	ptWant(t, "create 1.23", p.one("alice", "c1", ptCreate("prices", "1.23", `{"name":"kept"}`)), PushStatusApplied, "")

	ptWant(t, "update abcd", p.one("alice", "c1", ptUpdate("codes", "abcd", `{"name":"overwritten"}`, ptFuture())), PushStatusRejectedTerminal, reasonRecordNotFound)
	ptWant(t, "update 1.234", p.one("alice", "c1", ptUpdate("prices", "1.234", `{"name":"overwritten"}`, ptFuture())), PushStatusRejectedTerminal, reasonRecordNotFound)
	ptWant(t, "delete abcd", p.one("alice", "c1", ptDelete("codes", "abcd")), PushStatusRejectedTerminal, reasonRecordNotFound)
	res := p.one("alice", "c1", ptCreate("codes", "abcd", `{"name":"new"}`))
	if res.Status != PushStatusRejectedTerminal || res.ServerVersion != nil {
		t.Errorf("create abcd in a varchar(3) key: %s/%s %q (server version %v); want a terminal refusal, no other row", res.Status, res.ReasonCode, res.Message, res.ServerVersion)
	}
	for _, q := range []string{`SELECT name FROM codes WHERE id = 'abc'`, `SELECT name FROM prices WHERE id = 1.23`} {
		var name string
		pgtest.QueryRow(t, db.Super, q).Scan(&name)
		if name != "kept" {
			t.Errorf("%s: %q, want kept", q, name)
		}
	}
}

// TestPushChildKeyIsNotTruncated: the parent key a child record names is
// cast to the parent key's base type without a modifier when JoinResolver
// follows the chain, so that it is never truncated or rounded into another
// parent's key. The keys are varchar(3) and numeric(5,2), plain and of
// domains over them; the children's parent key columns are wider and have
// no foreign key, which would refuse the write by itself. The cast used to
// keep the modifier: a child of "abcdef" (no such parent) was applied as
// one of "abc", owned through it and put in its owner's bucket, where the
// parent's absence (parent_not_found, retryable) is the outcome.
func TestPushChildKeyIsNotTruncated(t *testing.T) {
	t.Parallel()
	db := pgtest.NewMigratedDatabase(t)
	pgtest.Exec(t, db.Super, `
CREATE DOMAIN ck_code AS varchar(3);
CREATE DOMAIN ck_num AS numeric(5,2);
CREATE TABLE ck_codes (id varchar(3) PRIMARY KEY, user_id text NOT NULL, updated_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE ck_nums (id numeric(5,2) PRIMARY KEY, user_id text NOT NULL, updated_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE ck_dcodes (id ck_code PRIMARY KEY, user_id text NOT NULL, updated_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE ck_dnums (id ck_num PRIMARY KEY, user_id text NOT NULL, updated_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE ck_code_notes (id uuid PRIMARY KEY, parent_id text, body text, updated_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE ck_num_notes (id uuid PRIMARY KEY, parent_id numeric, body text, updated_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE ck_dcode_notes (id uuid PRIMARY KEY, parent_id text, body text, updated_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE ck_dnum_notes (id uuid PRIMARY KEY, parent_id numeric, body text, updated_at timestamptz NOT NULL DEFAULT now());`)
	// json gives a key as a pushed value: a string, or a number.
	str := func(s string) string { b, _ := json.Marshal(s); return string(b) }
	num := func(s string) string { return s }
	cases := []struct {
		parent, child, id, other string
		json                     func(string) string
	}{
		{"ck_codes", "ck_code_notes", "abc", "abcdef", str},
		{"ck_nums", "ck_num_notes", "1.23", "1.234", num},
		{"ck_dcodes", "ck_dcode_notes", "abc", "abcdef", str},
		{"ck_dnums", "ck_dnum_notes", "1.23", "1.234", num},
	}
	reg := NewRegistry()
	for _, c := range cases {
		reg.Register(&TableConfig{TableName: c.parent, OwnerColumn: "user_id"})
		reg.Register(&TableConfig{TableName: c.child, ParentTable: c.parent, ParentFKCol: "parent_id"})
	}
	p := ptEngine(t, db, db.Super, reg, nil)
	p.register("alice", "c1")

	for _, c := range cases {
		t.Run(c.child, func(t *testing.T) {
			ptWant(t, "parent "+c.id, p.one("alice", "c1", ptCreate(c.parent, c.id, `{"user_id":"alice"}`)), PushStatusApplied, "")

			// The resolver alone: the child of the missing parent has no
			// bucket, the child of the real one has its owner's.
			jr := NewJoinResolver(reg)
			for fk, want := range map[string][]string{c.id: {"user:alice"}, c.other: {}} {
				got, err := jr.ResolveOwner(t.Context(), db.Super, c.child, ptID(), map[string]any{"parent_id": fk})
				if err != nil || !slices.Equal(got, want) {
					t.Errorf("ResolveOwner of a child of %s = %v, %v; want %v", fk, got, err, want)
				}
			}

			// Through a push: the child of the missing parent waits for it.
			orphan := ptID()
			ptWant(t, "child of "+c.other, p.one("alice", "c1", ptCreate(c.child, orphan, `{"parent_id":`+c.json(c.other)+`,"body":"x"}`)),
				PushStatusRejectedRetryable, reasonParentNotFound)
			var n int
			pgtest.QueryRow(t, db.Super, `SELECT count(*) FROM `+c.child+` WHERE id = $1::uuid`, orphan).Scan(&n)
			if n != 0 {
				t.Errorf("the child of %s was written", c.other)
			}
			ptWant(t, "child of "+c.id, p.one("alice", "c1", ptCreate(c.child, ptID(), `{"parent_id":`+c.json(c.id)+`,"body":"y"}`)),
				PushStatusApplied, "")
		})
	}
}

// TestCharKeyIsNotCut: a key of char(n), plain or of a domain over it, is
// cast to bpchar, never to "character" (which is char(1)): that cast cut
// every id to its first character, so an update of "abcd" looked up row
// "a", a delete of "abcd" deleted row "a", and a pull of "abcd" could
// deliver row "a". A bit(n) key is cast to "bit" (quoted: no length limit) for the same
// reason, not to varbit, whose comparison with the column cannot use its
// index; the lookups by key must use the primary key's index.
func TestCharKeyIsNotCut(t *testing.T) {
	t.Parallel()
	db := pgtest.NewMigratedDatabase(t)
	pgtest.Exec(t, db.Super, `
CREATE DOMAIN cc_code AS char(4);
CREATE TABLE cc_plain (id char(4) PRIMARY KEY, user_id text NOT NULL, name text, updated_at timestamptz NOT NULL DEFAULT now(), deleted_at timestamptz);
CREATE TABLE cc_domain (id cc_code PRIMARY KEY, user_id text NOT NULL, name text, updated_at timestamptz NOT NULL DEFAULT now(), deleted_at timestamptz);
CREATE TABLE cc_bits (id bit(4) PRIMARY KEY, user_id text NOT NULL, name text, updated_at timestamptz NOT NULL DEFAULT now());`)
	reg := NewRegistry()
	for _, name := range []string{"cc_plain", "cc_domain", "cc_bits"} {
		reg.Register(&TableConfig{TableName: name, OwnerColumn: "user_id"})
	}
	p := ptEngine(t, db, db.Super, reg, nil)
	p.register("alice", "c1")
	ctx := t.Context()
	snap, err := p.e.Snapshot(ctx, "alice", &SnapshotRequest{ClientID: "c1", Limit: 1000, SchemaVersion: p.ver, SchemaHash: p.hash})
	if err != nil || snap.HasMore {
		t.Fatalf("Snapshot: %v", err)
	}
	for _, tc := range []struct{ table, long, short, other string }{
		{"cc_plain", "abcd", "a", "abzz"},
		{"cc_domain", "abcd", "a", "abzz"},
		{"cc_bits", "1010", "1", "1011"},
	} {
		if tc.table == "cc_bits" {
			tc.short = "1000" // a bit(4) key always has 4 digits; "1" cut from "1010"
		} else {
			tc.short = "a   " // a create sends the id as PostgreSQL prints it (TestPushCharKeyIDs)
		}
		ptWant(t, tc.table+" create "+tc.long, p.one("alice", "c1", ptCreate(tc.table, tc.long, `{"name":"long"}`)), PushStatusApplied, "")
		ptWant(t, tc.table+" create "+tc.short, p.one("alice", "c1", ptCreate(tc.table, tc.short, `{"name":"short"}`)), PushStatusApplied, "")
		ptWant(t, tc.table+" update "+tc.long, p.one("alice", "c1", ptUpdate(tc.table, tc.long, `{"name":"long2"}`, ptFuture())), PushStatusApplied, "")
		ptWant(t, tc.table+" update "+tc.other, p.one("alice", "c1", ptUpdate(tc.table, tc.other, `{"name":"other"}`, ptFuture())), PushStatusRejectedTerminal, reasonRecordNotFound)
		if n := pgtest.Count(t, db.Super, `SELECT count(*) FROM `+tc.table); n != 2 {
			t.Errorf("%s: %d rows, want two", tc.table, n)
		}
	}

	// Every lookup by key can use the primary key's index.
	m, err := p.e.schema.get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := db.Super.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	pgtest.Exec(t, conn, `SET enable_seqscan = off`)
	for _, table := range []string{"cc_plain", "cc_domain", "cc_bits"} {
		q := `EXPLAIN SELECT 1 FROM ` + table + ` WHERE id = ANY(CAST($1 AS ` + m.table(table).pkType() + `[]))`
		var plan []string
		rows, err := conn.QueryContext(ctx, q, []string{"1010"})
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		for rows.Next() {
			var line string
			if err := rows.Scan(&line); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, line)
		}
		rows.Close()
		if text := strings.Join(plan, "\n"); !strings.Contains(text, "Index Cond") {
			t.Errorf("%s: the key's index is not used:\n%s", table, text)
		}
	}

	// A pull delivers each id's own row.
	pgtest.Exec(t, db.Super, `INSERT INTO synchro.changelog (bucket_id, table_name, record_id, operation)
VALUES ('user:alice', 'cc_plain', 'abcd', 2), ('user:alice', 'cc_domain', 'abcd', 2), ('user:alice', 'cc_bits', '1010', 2)`)
	resp, err := p.e.Pull(ctx, "alice", &PullRequest{ClientID: "c1", Checkpoint: snap.Checkpoint, Limit: 100, SchemaVersion: p.ver, SchemaHash: p.hash})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Changes) != 3 {
		t.Fatalf("pull: %d changes, want 3: %+v", len(resp.Changes), resp)
	}
	for _, r := range resp.Changes {
		if !strings.Contains(string(r.Data), `"long2"`) {
			t.Errorf("pull of %s %s delivered %s, want the row named long2", r.TableName, r.ID, r.Data)
		}
	}

	// A delete of the long id deletes that row only.
	for _, tc := range []struct{ table, long, keep string }{{"cc_plain", "abcd", "a"}, {"cc_domain", "abcd", "a"}, {"cc_bits", "1010", "1000"}} {
		ptWant(t, tc.table+" delete "+tc.long, p.one("alice", "c1", ptDelete(tc.table, tc.long)), PushStatusApplied, "")
		cond := "deleted_at IS NULL"
		if tc.table == "cc_bits" {
			cond = "true"
		}
		if n := pgtest.Count(t, db.Super, `SELECT count(*) FROM `+tc.table+` WHERE `+cond+` AND id = $1`, tc.keep); n != 1 {
			t.Errorf("%s: after deleting %s, row %s is gone", tc.table, tc.long, tc.keep)
		}
		if n := pgtest.Count(t, db.Super, `SELECT count(*) FROM `+tc.table+` WHERE `+cond+` AND id = $1`, tc.long); n != 0 {
			t.Errorf("%s: row %s was not deleted", tc.table, tc.long)
		}
	}
}

// TestPushCharKeyIDs: a row keyed by char(n) is named everywhere by its key
// as PostgreSQL prints it, padded to n characters ("a   " in a char(4)), so
// a create must send that form: a shorter id, or one that PostgreSQL would
// cut, is refused (invalid_data, naming the key and the form it expects)
// rather than applied under an id that no later delivery uses. Updates and
// deletes find the row by key whatever the padding, and a child's parent
// key finds the parent's delete in the changelog, which records the padded
// form. A varchar(4) key is unaffected.
func TestPushCharKeyIDs(t *testing.T) {
	t.Parallel()
	db := pgtest.NewMigratedDatabase(t)
	pgtest.Exec(t, db.Super, `
CREATE DOMAIN ci_code AS char(4);
CREATE TABLE ci_plain (id char(4) PRIMARY KEY, user_id text NOT NULL, name text, updated_at timestamptz NOT NULL DEFAULT now(), deleted_at timestamptz);
CREATE TABLE ci_domain (id ci_code PRIMARY KEY, user_id text NOT NULL, name text, updated_at timestamptz NOT NULL DEFAULT now(), deleted_at timestamptz);
CREATE TABLE ci_var (id varchar(4) PRIMARY KEY, user_id text NOT NULL, name text, updated_at timestamptz NOT NULL DEFAULT now(), deleted_at timestamptz);
CREATE TABLE ci_notes (id uuid PRIMARY KEY, parent_id char(4), body text, updated_at timestamptz NOT NULL DEFAULT now());`)
	reg := NewRegistry()
	for _, name := range []string{"ci_plain", "ci_domain", "ci_var"} {
		reg.Register(&TableConfig{TableName: name, OwnerColumn: "user_id"})
	}
	reg.Register(&TableConfig{TableName: "ci_notes", ParentTable: "ci_plain", ParentFKCol: "parent_id"})
	p := ptEngine(t, db, db.Super, reg, nil)
	p.register("alice", "c1")

	for _, table := range []string{"ci_plain", "ci_domain"} {
		t.Run(table, func(t *testing.T) {
			for _, tc := range []struct{ id, says string }{
				{"a", `padded with spaces to 4 characters, "a   "`},
				{"a ", `"a   "`},
				{"abcd ", `"abcd"`}, // PostgreSQL would store "abcd"
				{"abcde", "at most 4 characters"},
			} {
				res := p.one("alice", "c1", ptCreate(table, tc.id, `{"name":"x"}`))
				ptWant(t, "create "+strconv.Quote(tc.id), res, PushStatusRejectedTerminal, reasonInvalidData)
				if !strings.Contains(res.Message, `key "id" (character(4))`) || !strings.Contains(res.Message, tc.says) {
					t.Errorf("create %q: message %q, want it to name the key and say %s", tc.id, res.Message, tc.says)
				}
			}
			if n := pgtest.Count(t, db.Super, `SELECT count(*) FROM `+table); n != 0 {
				t.Fatalf("%d rows written by refused creates", n)
			}

			res := p.one("alice", "c1", ptCreate(table, "a   ", `{"name":"short"}`))
			ptWant(t, "create padded", res, PushStatusApplied, "")
			ptWant(t, "create full", p.one("alice", "c1", ptCreate(table, "abcd", `{"name":"full"}`)), PushStatusApplied, "")
			// A create of the row under its short id is still refused
			// for the id, not answered as a conflict.
			ptWant(t, "create existing short", p.one("alice", "c1", ptCreate(table, "a", `{"name":"x"}`)), PushStatusRejectedTerminal, reasonInvalidData)
			ptWant(t, "update short", p.one("alice", "c1", ptUpdate(table, "a", `{"name":"short2"}`, ptFuture())), PushStatusApplied, "")
			var name string
			pgtest.QueryRow(t, db.Super, `SELECT name FROM `+table+` WHERE id = 'a'`).Scan(&name)
			if name != "short2" {
				t.Errorf("after the update by the short id: name %q, want short2", name)
			}
			ptWant(t, "delete short", p.one("alice", "c1", ptDelete(table, "a")), PushStatusApplied, "")
			ptWant(t, "delete padded", p.one("alice", "c1", ptDelete(table, "a   ")), PushStatusApplied, reasonAlreadyDeleted)

			// A create and an update of the same row in one push, the
			// update by the short id.
			resp := p.push("alice", "c1", ptCreate(table, "e   ", `{"name":"e"}`), ptUpdate(table, "e", `{"name":"e2"}`, ptFuture()))
			if len(resp.Accepted) != 2 {
				t.Errorf("create and update in one push: %+v", resp)
			}
		})
	}

	// Other key types keep their ids as sent.
	ptWant(t, "varchar create short", p.one("alice", "c1", ptCreate("ci_var", "a", `{"name":"v"}`)), PushStatusApplied, "")

	// The changelog records a parent's delete under the padded id; a child
	// naming the parent by its short key finds it.
	pgtest.Exec(t, db.Super, `INSERT INTO synchro.changelog (bucket_id, table_name, record_id, operation)
VALUES ('user:alice', 'ci_plain', 'gone', 3), ('user:alice', 'ci_plain', 'd   ', 3)`)
	for _, tc := range []struct{ fk, status, reason string }{
		{"d", PushStatusRejectedTerminal, reasonParentDeleted},
		{"d   ", PushStatusRejectedTerminal, reasonParentDeleted},
		{"gone", PushStatusRejectedTerminal, reasonParentDeleted},
		{"f", PushStatusRejectedRetryable, reasonParentNotFound},
		{"goner", PushStatusRejectedRetryable, reasonParentNotFound}, // not cut to "gone"
	} {
		fk, _ := json.Marshal(tc.fk)
		ptWant(t, "child of "+strconv.Quote(tc.fk), p.one("alice", "c1", ptCreate("ci_notes", ptID(), `{"parent_id":`+string(fk)+`,"body":"x"}`)), tc.status, tc.reason)
	}
}
