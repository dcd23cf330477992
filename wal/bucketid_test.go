package wal

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/synchrosync/synchro"
)

// rawBucketAssigner is a custom BucketAssigner with a bug for some rows:
// a task's bucket is "team:" followed by what its title names, which for
// some titles is not text PostgreSQL can store, or is too long, or is one
// of the library's own.
type rawBucketAssigner struct{}

func (rawBucketAssigner) AssignBuckets(_ context.Context, table, _ string, _ synchro.Operation, data map[string]any) ([]string, error) {
	if table != "tasks" {
		return []string{"global"}, nil
	}
	title, _ := data["title"].(string)
	switch title {
	case "bytes":
		return []string{"team:a", "team:\xff\xfe"}, nil // say, a hash's raw bytes
	case "nul":
		return []string{"team:a\x00b"}, nil
	case "long":
		return []string{"team:" + strings.Repeat("x", 3000)}, nil
	case "reserved":
		return []string{"synchro:client:1"}, nil
	case "error":
		return nil, errors.New("no team for \xff\x00 (raw bytes)")
	case "panic":
		return []string{"team:" + data["team_id"].(string)}, nil // team_id is NULL
	}
	return []string{"team:" + title}, nil
}

// TestE2EInvalidBucketIDs: an assigner returning a bucket id that cannot
// be stored (invalid UTF-8, a NUL byte, too long to go with the record's
// key in an index entry) or that the library keeps for itself fails that
// change's resolution, which is recorded in synchro.rule_failures (the
// record keeps its buckets), and capture goes on with the other changes;
// so do an error whose text is not storable and a panic of the assigner.
// Before, the changelog transaction failed on the id, or on the error's
// text, and capture retried it for ever; the panic ended the process, and
// would have ended it again at each restart.
func TestE2EInvalidBucketIDs(t *testing.T) {
	t.Parallel()
	e := e2eTasks(t, rawBucketAssigner{})
	e.run()
	ctEqual(t, "start", e.sync())

	ctEqual(t, "insert", e.step(`INSERT INTO tasks (id, title) VALUES ('t1', 'a')`), "team:a tasks t1 create")
	says := map[string]string{"bytes": "not valid UTF-8", "nul": "NUL byte", "long": "an index entry",
		"reserved": "reserved", "error": "no team for", "panic": "panicked"}
	for i, title := range []string{"bytes", "nul", "long", "reserved", "error", "panic"} {
		ctEqual(t, title, e.step(`UPDATE tasks SET title = $1 WHERE id = 't1'`, title))
		ctEqual(t, "edges after "+title, e.edges("tasks", "t1"), "team:a")
		fs := ruleFailures(t, e.db.Super)
		if len(fs) != i+1 {
			t.Fatalf("%s: %d rule failures, want %d", title, len(fs), i+1)
		}
		if f := fs[i]; f.recordID != "t1" || synchro.Operation(f.op) != synchro.OpUpdate || !strings.Contains(f.errText, says[title]) {
			t.Errorf("%s: rule failure %+v, want one for t1's update saying %q", title, f, says[title])
		}
	}
	// A change in the same transaction as a refused one is written.
	ctEqual(t, "beside a refused one", e.step(`BEGIN;
		UPDATE tasks SET title = 'nul' WHERE id = 't1';
		INSERT INTO tasks (id, title) VALUES ('t2', 'b');
		COMMIT;`), "team:b tasks t2 create")
	ctEqual(t, "then a good one", e.step(`UPDATE tasks SET title = 'c' WHERE id = 't1'`),
		"team:a tasks t1 delete", "team:c tasks t1 create")
}

// incompressible returns n bytes of hex text that PostgreSQL's compression
// cannot shorten (a chain of MD5 sums), so that its size in an index entry
// is its length.
func incompressible(seed string, n int) string {
	var sb strings.Builder
	h := md5.Sum([]byte(seed))
	for sb.Len() < n {
		sb.WriteString(hex.EncodeToString(h[:]))
		h = md5.Sum(h[:])
	}
	return sb.String()[:n]
}

// TestE2ELongKeysAndBuckets: how long a bucket id may be depends on the
// record's key, because the changelog's and the edges' indexes hold both
// in one entry of at most 2704 bytes. A long owner id (1100 bytes, over
// what a subscription rule may answer but a user id may be) is captured as
// before; a bucket that cannot be stored with the record's key, given by
// the assigner or inherited from a parent, is a rule failure of that
// record, and capture goes on. Before, the changelog transaction failed on
// the index entry and capture retried it for ever.
func TestE2ELongKeysAndBuckets(t *testing.T) {
	t.Parallel()
	reg := ctRegistry()
	reg.Register(&synchro.TableConfig{TableName: "docs", BucketByColumn: "team_id", BucketPrefix: "team:"})
	e := e2eNew(t, `CREATE TABLE docs (id text PRIMARY KEY, team_id text, updated_at timestamptz NOT NULL DEFAULT now(), deleted_at timestamptz);`, reg)
	e.run()
	ctEqual(t, "start", e.sync())

	user := strings.Repeat("u", 1100)
	ctEqual(t, "long owner", e.step(`INSERT INTO lists (id, user_id, name) VALUES ('l1', $1, 'one')`, user),
		"user:"+user+" lists l1 create")

	team := incompressible("team", 1019)
	doc := incompressible("doc", 1700)
	ctEqual(t, "long key in a long bucket", e.step(`INSERT INTO docs (id, team_id) VALUES ($1, $2)`, doc, team))
	ctEqual(t, "edges of the refused doc", e.edges("docs", doc))

	// The parent's bucket fits its short key; its child's longer key does
	// not fit with it.
	owner := incompressible("owner", 1500)
	item := incompressible("item", 1500)
	ctEqual(t, "long parent bucket", e.step(`INSERT INTO lists (id, user_id, name) VALUES ('l2', $1, 'two')`, owner),
		"user:"+owner+" lists l2 create")
	ctEqual(t, "long child key", e.step(`INSERT INTO items (id, list_id, title) VALUES ($1, 'l2', 'x'), ('i2', 'l2', 'y')`, item),
		"user:"+owner+" items i2 create")
	ctEqual(t, "edges of the refused item", e.edges("items", item))

	fs := ruleFailures(t, e.db.Super)
	if len(fs) != 2 {
		t.Fatalf("rule failures: %+v, want the doc's and the item's", fs)
	}
	for i, want := range []recKey{{"docs", doc}, {"items", item}} {
		if f := fs[i]; f.table != want.table || f.recordID != want.id || synchro.Operation(f.op) != synchro.OpInsert ||
			!strings.Contains(f.errText, "an index entry") {
			t.Errorf("rule failure %d: %s %.20s... op %d %q, want %s's insert, for the index entry's size", i, f.table, f.recordID, f.op, f.errText, want.table)
		}
	}
}

// TestE2ERuleFailurePayloadNotJSONB: json takes what jsonb refuses (a lone
// surrogate escape, a number beyond numeric's range). A row holding such
// a value, whose bucket function (with new_row jsonb) then fails, is a
// rule failure whose payload is kept as a JSON string of the row's text;
// capture goes on. Before, the payload's cast to jsonb failed the
// changelog transaction, retried for ever.
func TestE2ERuleFailurePayloadNotJSONB(t *testing.T) {
	t.Parallel()
	for _, v := range []string{`"\ud800"`, `1e1000000`} {
		t.Run(v, func(t *testing.T) {
			t.Parallel()
			e := newJSONProjectsEnv(t)
			e.run()
			ctEqual(t, "start", e.sync())
			ctEqual(t, "refused json", e.step(`INSERT INTO projects VALUES ('p1', 't1', $1::json)`, v))
			ctEqual(t, "then a good row", e.step(`INSERT INTO projects VALUES ('p2', 't1', '{}')`), "team:t1 projects p2 create")
			fs := ruleFailures(t, e.db.Super)
			if len(fs) != 1 || fs[0].recordID != "p1" {
				t.Fatalf("rule failures: %+v, want p1's", fs)
			}
			var kept string
			if err := json.Unmarshal([]byte(fs[0].payload), &kept); err != nil || !strings.Contains(kept, "new_row") {
				t.Errorf("payload %q: want the row's JSON text as a JSON string (%v)", fs[0].payload, err)
			}
		})
	}
}
