package wal

import (
	"context"
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
	}
	return []string{"team:" + title}, nil
}

// TestE2EInvalidBucketIDs: an assigner returning a bucket id that cannot
// be stored (invalid UTF-8, a NUL byte, longer than a bucket id may be) or
// that the library keeps for itself fails that change's resolution, which
// is recorded in synchro.rule_failures (the record keeps its buckets),
// and capture goes on with the other changes; so does an error whose text
// is not storable. Before, the changelog transaction failed on the id, or
// on the error's text, and capture retried it for ever.
func TestE2EInvalidBucketIDs(t *testing.T) {
	t.Parallel()
	e := e2eTasks(t, rawBucketAssigner{})
	e.run()
	ctEqual(t, "start", e.sync())

	ctEqual(t, "insert", e.step(`INSERT INTO tasks (id, title) VALUES ('t1', 'a')`), "team:a tasks t1 create")
	for i, title := range []string{"bytes", "nul", "long", "reserved", "error"} {
		ctEqual(t, title, e.step(`UPDATE tasks SET title = $1 WHERE id = 't1'`, title))
		ctEqual(t, "edges after "+title, e.edges("tasks", "t1"), "team:a")
		fs := ruleFailures(t, e.db.Super)
		if len(fs) != i+1 {
			t.Fatalf("%s: %d rule failures, want %d", title, len(fs), i+1)
		}
		if f := fs[i]; f.recordID != "t1" || synchro.Operation(f.op) != synchro.OpUpdate || !strings.Contains(f.errText, map[bool]string{true: "no team for", false: "bucket id"}[title == "error"]) {
			t.Errorf("%s: rule failure %+v, want one for t1's update naming the bucket id", title, f)
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
