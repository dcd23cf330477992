package wal

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/synchrosync/synchro"
	"github.com/synchrosync/synchro/internal/jsonbtext"
	"github.com/synchrosync/synchro/internal/pgtest"
	"github.com/synchrosync/synchro/internal/store"
	"github.com/synchrosync/synchro/migrations"
)

// payloadCorpus holds payloads as the consumer writes them (json.Marshal
// of the rows), with what a json column may hold that jsonb refuses, and
// the numbers and escapes at the bounds of judgePayload.
func payloadCorpus() []string {
	row := func(v string) string { return `{"new_row":{"id":"r1","meta":` + v + `},"old_row":null}` }
	values := []string{
		`null`, `true`, `{}`, `[]`, `"plain"`, `"café"`, `"日本"`, `"\"quoted\" \\ back\\slash"`,
		`"\n\t\u0001\u001f"`, `"\u00e9"`, `"\u4e2d"`, `"\ud83d\ude00"`, `"\uD83D\uDE00"`,
		`"\u0000"`, `"a\u0000b"`, `"\\u0000"`, `"\ud800"`, `"\udc00"`, `"\ud800x"`, `"\ud800\u0041"`, `"\udc00\ud800"`,
		`0`, `-0`, `12`, `-12.50`, `1e10`, `1E+10`, `1e-10`, `1.5e308`, `1e1000`, `1e10000`, `-1e-10000`,
		`1e10001`, `1e-10001`, `1e100000`, `1e1000000`, `1e-1000000`, `1e131072`, `1e-16384`, `1e-16383`,
		strings.Repeat("9", 1000), strings.Repeat("9", 1001), "0." + strings.Repeat("1", 998),
		strings.Repeat("1", 990) + "e10000", "0." + strings.Repeat("1", 990) + "e-10000",
		strings.Repeat("[", 1000) + strings.Repeat("]", 1000),
		strings.Repeat("[", 999) + strings.Repeat("]", 999),
		strings.Repeat(`{"a":`, 998) + "1" + strings.Repeat("}", 998),
		`{"k":[1,"\u00e9",{"n":1e-5}]}`, `{"k":[1,"\ud800"]}`, `{"k":[1,1e999999]}`,
	}
	var out []string
	for _, v := range values {
		out = append(out, row(v))
	}
	return out
}

func TestJudgePayload(t *testing.T) {
	t.Parallel()
	row := func(v string) []byte { return []byte(`{"new_row":{"meta":` + v + `}}`) }
	for _, tc := range []struct {
		value string
		want  int16
	}{
		{`"café"`, payloadAsJSONB},
		{`"\"\\\/\b\f\n\r\t\u0001"`, payloadAsJSONB},
		{`1.5e308`, payloadAsJSONB},
		{`-1e-10000`, payloadAsJSONB},
		{strings.Repeat("9", 990), payloadAsJSONB},
		{strings.Repeat("[", 998) + strings.Repeat("]", 998), payloadAsJSONB}, // and two levels of the row
		{`"\u00e9"`, payloadIfUTF8},
		{`["\ud83d\ude00", 1]`, payloadIfUTF8},
		{`"\u0000"`, payloadAsString},
		{`"\\u0000"`, payloadAsJSONB}, // an escaped backslash, then text
		{`"\ud800"`, payloadAsString},
		{`"\ud800\u0041"`, payloadAsString},
		{`"\udc00\ud800"`, payloadAsString},
		{`1e10001`, payloadAsString},
		{`1E-10001`, payloadAsString},
		{strings.Repeat("9", 1001), payloadAsString},
		{strings.Repeat("[", 1000) + strings.Repeat("]", 1000), payloadAsString},
	} {
		if got := judgePayload(row(tc.value)); got != tc.want {
			t.Errorf("judgePayload(%.60s): %d, want %d", tc.value, got, tc.want)
		}
	}
	if got := judgePayload(nil); got != payloadNone {
		t.Errorf("judgePayload(nil): %d, want %d (no payload)", got, payloadNone)
	}
}

// TestJudgePayloadAgreesWithPostgres: every payload judgePayload lets
// jsonb parse, PostgreSQL's jsonb takes; and store.InsertRuleFailures
// records every payload of the corpus in one statement, as jsonb where
// judged so and as a JSON string of its text otherwise.
func TestJudgePayloadAgreesWithPostgres(t *testing.T) {
	t.Parallel()
	db := pgtest.NewMigratedDatabase(t)
	corpus := payloadCorpus()
	refused := 0
	for _, p := range corpus {
		_, err := db.Super.Exec(`SELECT $1::jsonb`, p)
		if err != nil {
			refused++
		}
		if v := judgePayload([]byte(p)); v >= payloadIfUTF8 && err != nil {
			t.Errorf("judgePayload(%.80s) = %d, but jsonb refuses it: %v", p, v, err)
		}
	}
	if refused < 10 {
		t.Fatalf("jsonb refused %d payloads of the corpus: the corpus no longer tests the refusals", refused)
	}
	stored := insertCorpus(t, db.Super, corpus)
	for i, p := range corpus {
		var asString, same bool
		pgtest.QueryRow(t, db.Super, `SELECT jsonb_typeof($1::jsonb) = 'string' AND $1::jsonb #>> '{}' = $2`, stored[i], p).Scan(&asString)
		if judgePayload([]byte(p)) >= payloadIfUTF8 {
			pgtest.QueryRow(t, db.Super, `SELECT $1::jsonb = $2::jsonb`, stored[i], p).Scan(&same)
		}
		if !asString && !same {
			t.Errorf("payload %.80s stored as %.80s: neither its jsonb nor a string of its text", p, stored[i])
		}
	}
}

// insertCorpus records one rule failure per payload of corpus with
// store.InsertRuleFailures, as the consumer does, and returns the stored
// payloads' text in the same order.
func insertCorpus(t *testing.T, db *sql.DB, corpus []string) []string {
	t.Helper()
	n := len(corpus)
	tables, ids, errs := make([]string, n), make([]string, n), make([]string, n)
	ops, hows, lsns := make([]int16, n), make([]int16, n), make([]int64, n)
	for i, p := range corpus {
		tables[i], ids[i], errs[i], ops[i], lsns[i] = "items", fmt.Sprint(i), "test", int16(synchro.OpInsert), int64(i)
		hows[i] = judgePayload([]byte(p))
	}
	pgtest.Exec(t, db, store.InsertRuleFailures, tables, ids, ops, errs, corpus, hows, lsns)
	rows, err := db.Query(`SELECT record_id, payload::text FROM synchro.rule_failures ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var stored []string
	for rows.Next() {
		var id, payload string
		if err := rows.Scan(&id, &payload); err != nil {
			t.Fatal(err)
		}
		if id != fmt.Sprint(len(stored)) {
			t.Fatalf("rule failure %d has record id %s: not in the arrays' order", len(stored), id)
		}
		stored = append(stored, payload)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(stored) != n {
		t.Fatalf("%d rule failures stored, want %d", len(stored), n)
	}
	return stored
}

// TestRuleFailuresInLatin1Database: in a database whose encoding is not
// UTF8, an escape of a character above U+007F may name one the encoding
// lacks, which jsonb refuses there: such payloads are kept as strings,
// and the statement does not fail.
func TestRuleFailuresInLatin1Database(t *testing.T) {
	t.Parallel()
	base := pgtest.NewDatabase(t)
	name := base.Name + "_latin1"
	pgtest.Exec(t, base.Super, `CREATE DATABASE `+name+` TEMPLATE template0 ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C'`)
	u, err := url.Parse(base.DSN)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	db, err := sql.Open("pgx", u.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		db.Close()
		pgtest.Exec(t, base.Super, `DROP DATABASE `+name+` WITH (FORCE)`)
	})
	if err := migrations.Migrate(context.Background(), db); err != nil {
		t.Fatal(err)
	}
	corpus := []string{`{"a":"\u4e2d"}`, `{"a":"\u00e9"}`, `{"a":"é"}`, `{"a":"\ud800"}`, `{"a":1}`}
	stored := insertCorpus(t, db, corpus)
	for i, want := range []string{`"{\"a\":\"\\u4e2d\"}"`, `"{\"a\":\"\\u00e9\"}"`, `{"a": "é"}`, `"{\"a\":\"\\ud800\"}"`, `{"a": 1}`} {
		if stored[i] != want {
			t.Errorf("payload %s stored as %s, want %s", corpus[i], stored[i], want)
		}
	}
}

// TestRuleFailuresWithoutSubtransactions: a transaction of a hundred
// changes that a broken rule fails, some with payloads jsonb refuses, and
// a new slot's record of a hundred existing rows (in parts of two) record
// their failures without a subtransaction: every failure row carries its
// transaction's own xid. Before, each failure with a payload had a
// savepoint of its own: past 64, PostgreSQL's per-backend cache of
// subtransactions overflowed and every snapshot on the server cost more.
func TestRuleFailuresWithoutSubtransactions(t *testing.T) {
	t.Parallel()
	reg := ctRegistry()
	reg.Register(&synchro.TableConfig{TableName: "projects"})
	e := e2eNew(t, `CREATE TABLE projects (id text PRIMARY KEY, team_id text, meta json);
INSERT INTO projects SELECT 'old' || g, 'bad', '{"n":1}' FROM generate_series(1, 100) AS g;
-- The team 'bad' divides by zero: a broken rule.
CREATE FUNCTION bucket_fn(tbl text, op text, new_row jsonb, old_row jsonb) RETURNS SETOF text LANGUAGE sql AS $$
	SELECT CASE WHEN tbl <> 'projects' THEN 'global'
	            WHEN new_row->>'team_id' = 'bad' THEN (1 / (length(new_row->>'team_id') - 3))::text
	            ELSE 'team:' || (new_row->>'team_id') END $$;`, reg)
	e.useBucketFn(reg)
	e.run()
	ctEqual(t, "start", e.sync())
	// The rule fails for every row: the team, or the payload's jsonb.
	ctEqual(t, "a hundred failures", e.step(`INSERT INTO projects
SELECT 'new' || g, 'bad', CASE g % 3 WHEN 0 THEN '{"n":1}' WHEN 1 THEN '"\ud800"' ELSE '1e1000000' END::json
  FROM generate_series(1, 100) AS g`))
	var failures, xids, records int
	pgtest.QueryRow(t, e.db.Super, `SELECT count(*), count(DISTINCT xmin::text),
       count(DISTINCT left(record_id, 3)) FROM synchro.rule_failures`).Scan(&failures, &xids, &records)
	if failures != 200 || records != 2 {
		t.Fatalf("%d rule failures of %d kinds of record, want the 100 existing rows' and the 100 new ones'", failures, records)
	}
	if xids != 2 {
		t.Errorf("the failures carry %d xids, want 2: the record's transaction and the batch's, without subtransactions", xids)
	}
	var strs, objects int
	pgtest.QueryRow(t, e.db.Super, `SELECT count(*) FILTER (WHERE jsonb_typeof(payload) = 'string'),
       count(*) FILTER (WHERE jsonb_typeof(payload) = 'object') FROM synchro.rule_failures`).Scan(&strs, &objects)
	if strs != 67 || objects != 133 {
		t.Errorf("%d payloads kept as strings and %d as objects, want the 67 jsonb refuses and the other 133", strs, objects)
	}
}

// TestRuleFailurePayloadMisjudged: should jsonb refuse a payload that
// judgePayload let through, the changelog transaction fails once; capture
// then keeps payloads as strings, records the failure and goes on.
func TestRuleFailurePayloadMisjudged(t *testing.T) {
	t.Parallel()
	e := newJSONProjectsEnv(t)
	e.cfg.judgePayload = func([]byte) int16 { return payloadAsJSONB }
	e.run()
	ctEqual(t, "start", e.sync())
	ctEqual(t, "refused json", e.step(`INSERT INTO projects VALUES ('p1', 't1', '"\ud800"')`))
	ctEqual(t, "then a good row", e.step(`INSERT INTO projects VALUES ('p2', 't1', '{}')`), "team:t1 projects p2 create")
	fs := ruleFailures(t, e.db.Super)
	if len(fs) != 1 || fs[0].recordID != "p1" {
		t.Fatalf("rule failures: %+v, want p1's once", fs)
	}
	var kept string
	if err := json.Unmarshal([]byte(fs[0].payload), &kept); err != nil || !strings.Contains(kept, `\ud800`) {
		t.Errorf("payload %q: want the row's JSON text as a JSON string (%v)", fs[0].payload, err)
	}
	if !slices.ContainsFunc(e.logs.all(), func(m string) bool { return strings.Contains(m, "payloads are kept as JSON strings") }) {
		t.Error("no warning that payloads are kept as strings")
	}
}

func TestFailureGroups(t *testing.T) {
	t.Parallel()
	fs := make([]ruleFailure, 6)
	for i, n := range []int{3, 4, 0, 12, 5, 5} {
		fs[i].payload = make([]byte, n)
	}
	var got [][]int
	for _, g := range failureGroups(fs, 10) {
		var sizes []int
		for _, f := range g {
			sizes = append(sizes, len(f.payload))
		}
		got = append(got, sizes)
	}
	want := [][]int{{3, 4, 0}, {12}, {5, 5}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("failureGroups: %v, want %v (in order, at most 10 bytes a group, a larger payload alone)", got, want)
	}
	if g := failureGroups(nil, 10); len(g) != 0 {
		t.Errorf("failureGroups(nil): %v", g)
	}
}

// TestJudgeLargePayloads: past jsonbtext.MaxLen a payload is kept as a
// string, whose text jsonb does not parse (a flat array of 16.7 million
// elements, 33 MB of text that json takes, fails jsonb's parser with an
// allocation error: found by review); past maxPayloadLen it is not kept.
// store.InsertRuleFailures records the first as a string.
func TestJudgeLargePayloads(t *testing.T) {
	t.Parallel()
	big := `{"new_row":{"meta":[` + strings.Repeat("0,", jsonbtext.MaxLen/2) + `0]}}`
	if v := judgePayload([]byte(big)); v != payloadAsString {
		t.Errorf("judgePayload of %d bytes: %d, want %d (a string)", len(big), v, payloadAsString)
	}
	if v := judgePayload(make([]byte, maxPayloadLen+1)); v != payloadNone {
		t.Errorf("judgePayload of %d bytes: %d, want %d (none)", maxPayloadLen+1, v, payloadNone)
	}
	db := pgtest.NewMigratedDatabase(t)
	stored := insertCorpus(t, db.Super, []string{big})
	var asString bool
	pgtest.QueryRow(t, db.Super, `SELECT jsonb_typeof($1::jsonb) = 'string' AND $1::jsonb #>> '{}' = $2`, stored[0], big).Scan(&asString)
	if !asString {
		t.Errorf("the large payload was not stored as a string of its text")
	}
}

// newJSONProjectsEnv is an e2e environment of a table projects with a json
// column, bucketed by a SQL function that takes the row as jsonb: the
// rule fails for a row whose json jsonb refuses.
func newJSONProjectsEnv(t *testing.T) *e2eEnv {
	t.Helper()
	reg := ctRegistry()
	reg.Register(&synchro.TableConfig{TableName: "projects"})
	e := e2eNew(t, `CREATE TABLE projects (id text PRIMARY KEY, team_id text, meta json);
CREATE FUNCTION bucket_fn(tbl text, op text, new_row jsonb, old_row jsonb) RETURNS SETOF text LANGUAGE sql AS $$
	SELECT CASE WHEN tbl = 'projects' THEN 'team:' || (new_row->>'team_id') ELSE 'global' END $$;`, reg)
	e.useBucketFn(reg)
	return e
}
