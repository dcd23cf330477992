package synchro

import (
	"testing"

	"github.com/synchrosync/synchro/internal/pgtest"
)

// This file pushes records into columns whose types are domains.

// dnSchema has columns of domains that refuse NULL: with a default of the
// column, of the domain, and one protected (which a device never writes).
const dnSchema = `
CREATE DOMAIN dn_text AS text NOT NULL DEFAULT '';
CREATE DOMAIN dn_rank AS integer DEFAULT 0 CHECK (VALUE IS NOT NULL);
CREATE TABLE dn_tasks (
	id         uuid PRIMARY KEY,
	user_id    text NOT NULL,
	title      text,
	status     dn_text DEFAULT 'open',
	note       dn_text,
	rank       dn_rank,
	audit      dn_text DEFAULT 'none',
	updated_at timestamptz NOT NULL DEFAULT now(),
	deleted_at timestamptz
)`

// dnRow returns status, note, rank and audit of task id.
func dnRow(t *testing.T, p *ptEnv, id string) string {
	t.Helper()
	var row string
	pgtest.QueryRow(t, p.db.Super, `SELECT concat_ws('|', title, status, note, rank, audit) FROM dn_tasks WHERE id = $1::uuid`, id).Scan(&row)
	return row
}

// TestPushDomainNotNullColumns: a create that leaves a column of a NOT NULL
// domain out gets the column's default, and an update that leaves it out
// keeps its value; the statements convert only the columns a record has.
// A device's whole-row push, whose protected column the engine sets aside,
// is one of those. Null itself is still refused, as for a NOT NULL column.
func TestPushDomainNotNullColumns(t *testing.T) {
	t.Parallel()
	db := pgtest.NewMigratedDatabase(t)
	pgtest.Exec(t, db.Super, dnSchema)
	reg := NewRegistry()
	reg.Register(&TableConfig{TableName: "dn_tasks", OwnerColumn: "user_id", ProtectedColumns: []string{"audit"}})
	p := ptEngine(t, db, db.Super, reg, nil)
	p.register("alice", "c1")

	a, b, c := ptID(), ptID(), ptID()
	resp := p.push("alice", "c1",
		ptCreate("dn_tasks", a, `{"title":"a"}`),
		ptCreate("dn_tasks", b, `{"title":"b","status":"done"}`),
		// As a device sends a row: every column, the protected one as null.
		ptCreate("dn_tasks", c, `{"id":"`+c+`","user_id":"alice","title":"c","status":"open","note":"n","rank":2,"audit":null,"updated_at":null,"deleted_at":null}`),
	)
	for id, want := range map[string]string{a: "a|open||0|none", b: "b|done||0|none", c: "c|open|n|2|none"} {
		ptWant(t, "create "+want, ptFind(t, resp, id), PushStatusApplied, "")
		if got := dnRow(t, p, id); got != want {
			t.Errorf("created row %s, want %s", got, want)
		}
	}

	ptWant(t, "update of another column", p.one("alice", "c1", ptUpdate("dn_tasks", a, `{"title":"a2"}`, ptFuture())), PushStatusApplied, "")
	ptWant(t, "update of the domain column", p.one("alice", "c1", ptUpdate("dn_tasks", b, `{"note":"x"}`, ptFuture())), PushStatusApplied, "")
	ptWant(t, "whole-row update", p.one("alice", "c1", ptUpdate("dn_tasks", c,
		`{"id":"`+c+`","user_id":"alice","title":"c2","status":"open","note":"n","rank":3,"audit":"none"}`, ptFuture())), PushStatusApplied, "")
	for id, want := range map[string]string{a: "a2|open||0|none", b: "b|done|x|0|none", c: "c2|open|n|3|none"} {
		if got := dnRow(t, p, id); got != want {
			t.Errorf("updated row %s, want %s", got, want)
		}
	}

	// A create of a deleted row brings it back, with the columns it has.
	ptWant(t, "delete", p.one("alice", "c1", ptDelete("dn_tasks", a)), PushStatusApplied, "")
	ptWant(t, "resurrection", p.one("alice", "c1", ptCreate("dn_tasks", a, `{"title":"back"}`)), PushStatusApplied, "")
	if got := dnRow(t, p, a); got != "back|open||0|none" {
		t.Errorf("resurrected row %s, want back|open||0|none", got)
	}

	// Null is no value of these domains.
	ptWant(t, "null for a NOT NULL domain", p.one("alice", "c1", ptCreate("dn_tasks", ptID(), `{"status":null}`)), PushStatusRejectedTerminal, reasonCreateFailed)
	ptWant(t, "null for a CHECK (VALUE IS NOT NULL) domain", p.one("alice", "c1", ptUpdate("dn_tasks", b, `{"rank":null}`, ptFuture())), PushStatusRejectedTerminal, reasonUpdateFailed)
	ptWant(t, "a string for a domain over integer", p.one("alice", "c1", ptUpdate("dn_tasks", b, `{"rank":"7"}`, ptFuture())), PushStatusRejectedTerminal, reasonInvalidData)
}
