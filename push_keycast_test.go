package synchro

import (
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
