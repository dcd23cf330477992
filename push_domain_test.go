package synchro

import (
	"strings"
	"testing"

	"github.com/synchrosync/synchro/internal/pgtest"
)

// This file pushes records into columns whose types are domains: a domain
// declared NOT NULL that a record leaves out, the checks of values whose
// column is a domain over a checked type, owner columns of a domain over
// uuid, and primary keys of a domain that declares a type modifier.

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

// TestPushDomainValues: a column of a domain is checked and converted as a
// column of the domain's base type, with the base type's modifier (a
// numeric(5,2) holds no infinity).
func TestPushDomainValues(t *testing.T) {
	t.Parallel()
	db := pgtest.NewMigratedDatabase(t)
	pgtest.Exec(t, db.Super, `
CREATE DOMAIN dv_amount AS numeric(5,2);
CREATE DOMAIN dv_amount2 AS dv_amount CHECK (VALUE > 0);
CREATE DOMAIN dv_amounts AS numeric(5,2)[];
CREATE DOMAIN dv_flag AS boolean;
CREATE DOMAIN dv_blob AS bytea;
CREATE DOMAIN dv_at AS timestamptz;
CREATE DOMAIN dv_stamp AS timestamp;
CREATE DOMAIN dv_big AS int8;
CREATE TABLE dv_values (
	id      uuid PRIMARY KEY,
	user_id text NOT NULL,
	m       dv_amount,
	m2      dv_amount2,
	ms      dv_amounts,
	f       dv_flag,
	b       dv_blob,
	at      dv_at,
	ts      dv_stamp,
	big     dv_big,
	updated_at timestamptz NOT NULL DEFAULT now()
)`)
	reg := NewRegistry()
	reg.Register(&TableConfig{TableName: "dv_values", OwnerColumn: "user_id"})
	p := ptEngine(t, db, db.Super, reg, nil)
	p.register("alice", "c1")
	read := map[string]string{
		"b":  `encode(b, 'hex')`,
		"at": `(at AT TIME ZONE 'UTC')::text`,
	}

	accepted := []struct{ col, value, want string }{
		{"m", `12.5`, "12.50"},
		{"m", `"NaN"`, "NaN"},
		{"m2", `"1.005"`, "1.01"},
		{"ms", `[1.5,"NaN",null]`, "{1.50,NaN,NULL}"},
		{"f", `1`, "true"},
		{"f", `0`, "false"},
		{"b", `"AQL/"`, "0102ff"},
		{"b", `"\\xDEADBEEF"`, "deadbeef"},
		{"at", `"2026-12-02 04:20:23"`, "2026-12-02 04:20:23"},
		{"ts", `"2024-02-29T12:34:56+02:00"`, "2024-02-29 10:34:56"},
		{"big", `"9007199254740993"`, "9007199254740993"},
		{"big", `1.0`, "1"},
	}
	for _, c := range accepted {
		id := ptID()
		res := p.one("alice", "c1", ptCreate("dv_values", id, `{"`+c.col+`":`+c.value+`}`))
		if res.Status != PushStatusApplied {
			t.Errorf("%s = %s: %s/%s (%s), want applied", c.col, c.value, res.Status, res.ReasonCode, res.Message)
			continue
		}
		expr, ok := read[c.col]
		if !ok {
			expr = c.col + "::text"
		}
		var got string
		pgtest.QueryRow(t, db.Super, `SELECT `+expr+` FROM dv_values WHERE id = $1::uuid`, id).Scan(&got)
		if got != c.want {
			t.Errorf("%s = %s: stored %q, want %q", c.col, c.value, got, c.want)
		}
	}

	refused := []struct{ col, value, msg string }{
		{"m", `"Infinity"`, `column "m" expects a number (a JSON number, or a string holding one, or "NaN"), got "Infinity"`},
		{"m2", `"-Infinity"`, `column "m2" expects a number (a JSON number, or a string holding one, or "NaN"), got "-Infinity"`},
		{"ms", `[1,"Infinity"]`, `column "ms" element [1] expects a number (a JSON number, or a string holding one, or "NaN"), got "Infinity"`},
		{"f", `"true"`, `column "f" expects true, false, 0 or 1, got "true"`},
		{"b", `"not base64!"`, `column "b" expects bytes as a base64 string or as PostgreSQL's hex text`},
		{"at", `"now"`, `column "at" expects a timestamp as a string in RFC 3339 or SQLite's form`},
		{"big", `1.5`, `column "big" expects an integer`},
	}
	for _, c := range refused {
		res := p.one("alice", "c1", ptCreate("dv_values", ptID(), `{"`+c.col+`":`+c.value+`}`))
		if res.Status != PushStatusRejectedTerminal || res.ReasonCode != reasonInvalidData || !strings.Contains(res.Message, c.msg) {
			t.Errorf("%s = %s: %s/%s %q, want rejected_terminal/invalid_data %q", c.col, c.value, res.Status, res.ReasonCode, res.Message, c.msg)
		}
	}
}

// TestPushOwnerIDFormsDomain: an owner column of a domain over uuid is a
// uuid owner column: a user id the auth layer spells in upper case names
// the same owner as the lower-case uuid PostgreSQL stores (as in
// TestPushOwnerIDForms), and the same holds for a primary key and a parent
// key of such a domain.
func TestPushOwnerIDFormsDomain(t *testing.T) {
	t.Parallel()
	db := ptSetup(t)
	pgtest.Exec(t, db.Super, `
CREATE DOMAIN dom_uuid AS uuid;
CREATE DOMAIN dom_owner AS dom_uuid NOT NULL;
CREATE TABLE docs (id dom_uuid PRIMARY KEY, owner_id dom_owner, title text, updated_at timestamptz NOT NULL DEFAULT now(), deleted_at timestamptz);
CREATE TABLE pages (id uuid PRIMARY KEY, doc_id dom_uuid NOT NULL REFERENCES docs (id), body text, updated_at timestamptz NOT NULL DEFAULT now(), deleted_at timestamptz)`)
	p := ptDocsUnderRLS(t, db)
	lower := ptID()
	upper := strings.ToUpper(lower)
	p.register(upper, "c1")

	doc, page := ptID(), ptID()
	ptWant(t, "create", p.one(upper, "c1", ptCreate("docs", doc, `{"title":"a","owner_id":"`+upper+`"}`)), PushStatusApplied, "")
	ptWant(t, "create child", p.one(upper, "c1", ptCreate("pages", page, `{"doc_id":"`+strings.ToUpper(doc)+`","body":"p"}`)), PushStatusApplied, "")
	ptWant(t, "update", p.one(upper, "c1", ptUpdate("docs", doc, `{"title":"b","owner_id":"`+lower+`"}`, ptFuture())), PushStatusApplied, "")
	ptWant(t, "update child", p.one(upper, "c1", ptUpdate("pages", page, `{"body":"q","doc_id":"`+doc+`"}`, ptFuture())), PushStatusApplied, "")
	ptWant(t, "delete", p.one(lower, "c1", ptDelete("pages", page)), PushStatusApplied, "")

	// A child pushed before its parent, by another spelling of the key,
	// waits for it within the push.
	doc2, page2 := ptID(), ptID()
	resp := p.push(upper, "c1",
		ptCreate("pages", page2, `{"doc_id":"`+strings.ToUpper(doc2)+`","body":"early"}`),
		ptCreate("docs", doc2, `{"title":"later"}`),
	)
	ptWant(t, "child before its parent", ptFind(t, resp, page2), PushStatusApplied, "")

	var users string
	pgtest.QueryRow(t, db.Super, `SELECT string_agg(user_id, ',') FROM synchro.clients`).Scan(&users)
	if users != lower {
		t.Errorf("clients hold user ids %q, want %q", users, lower)
	}
}

// TestPushDomainKeys: an id is cast to the primary key's base type without
// a modifier, also when the key is of a domain that declares one, so that
// an id is never truncated or rounded into another row's key ('abcdef'
// into 'abc' for a domain over varchar(3), '1.234' into 1.23 for one over
// numeric(5,2)).
func TestPushDomainKeys(t *testing.T) {
	t.Parallel()
	db := pgtest.NewMigratedDatabase(t)
	pgtest.Exec(t, db.Super, `
CREATE DOMAIN dk_code AS varchar(3);
CREATE DOMAIN dk_num AS numeric(5,2);
CREATE TABLE dk_codes (id dk_code PRIMARY KEY, user_id text NOT NULL, label text, updated_at timestamptz NOT NULL DEFAULT now(), deleted_at timestamptz);
CREATE TABLE dk_nums (id dk_num PRIMARY KEY, user_id text NOT NULL, label text, updated_at timestamptz NOT NULL DEFAULT now(), deleted_at timestamptz)`)
	reg := NewRegistry()
	reg.Register(&TableConfig{TableName: "dk_codes", OwnerColumn: "user_id"})
	reg.Register(&TableConfig{TableName: "dk_nums", OwnerColumn: "user_id"})
	p := ptEngine(t, db, db.Super, reg, nil)
	p.register("alice", "c1")

	for _, c := range []struct{ table, id, other string }{
		{"dk_codes", "abc", "abcdef"},
		{"dk_nums", "1.23", "1.234"},
	} {
		ptWant(t, c.table+" create", p.one("alice", "c1", ptCreate(c.table, c.id, `{"label":"kept"}`)), PushStatusApplied, "")
		ptWant(t, c.table+" update of "+c.other, p.one("alice", "c1", ptUpdate(c.table, c.other, `{"label":"other"}`, ptFuture())), PushStatusRejectedTerminal, reasonRecordNotFound)
		ptWant(t, c.table+" delete of "+c.other, p.one("alice", "c1", ptDelete(c.table, c.other)), PushStatusRejectedTerminal, reasonRecordNotFound)
		var label string
		var deleted bool
		pgtest.QueryRow(t, db.Super, `SELECT label, deleted_at IS NOT NULL FROM `+c.table+` WHERE id::text = $1`, c.id).Scan(&label, &deleted)
		if label != "kept" || deleted {
			t.Errorf("%s row %s: label %q, deleted %v after pushes to %s", c.table, c.id, label, deleted, c.other)
		}
	}
}
