package synchro

import (
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/synchrosync/synchro/internal/pgtest"
)

// TestCompactionUnderRLSSaysItCannotPrune: compaction on the application's
// role, which row-level security applies to, cannot see soft-deleted rows
// of other users: it says which tables' edges it left (in the result, and
// in one warning until that changes), and with CompactorConfig.DB on a role
// that RLS does not apply to, it prunes them.
func TestCompactionUnderRLSSaysItCannotPrune(t *testing.T) {
	t.Parallel()
	p := ptNewEnv(t, nil)
	db := p.db
	reg := ptRegistry(t)
	rlsApply(t, db.Super, GenerateRLSPolicies(reg))
	list, item := ptID(), ptID()
	pgtest.Exec(t, db.Super, `INSERT INTO lists (id, user_id, name) VALUES ($1, 'alice', 'l')`, list)
	pgtest.Exec(t, db.Super, `INSERT INTO items (id, list_id, title, deleted_at) VALUES ($1, $2, 'gone', now() - interval '30 days')`, item, list)
	pgtest.Exec(t, db.Super, `INSERT INTO synchro.bucket_edges (table_name, record_id, bucket_id) VALUES ('items', $1, 'user:alice')`, item)
	edges := func() int {
		return pgtest.Count(t, db.Super, `SELECT count(*) FROM synchro.bucket_edges WHERE table_name = 'items' AND record_id = $1`, item)
	}

	var buf syncBuffer
	logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	app, err := NewEngine(Config{DB: db.App, Registry: reg, Logger: logger, Compactor: &CompactorConfig{}})
	if err != nil {
		t.Fatal(err)
	}
	for run := range 2 {
		res, err := app.RunCompaction(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if res.EdgesNotPruned != "items" || res.PrunedEdges != 0 || edges() != 1 {
			t.Errorf("run %d on the RLS role: not pruned %q, pruned %d, edges left %d; want items, 0, 1", run, res.EdgesNotPruned, res.PrunedEdges, edges())
		}
	}
	if n := strings.Count(buf.String(), "cannot prune the bucket edges"); n != 1 {
		t.Errorf("%d warnings over two runs, want 1:\n%s", n, buf.String())
	}
	if !strings.Contains(buf.String(), "level=WARN") || !strings.Contains(buf.String(), "tables=items") {
		t.Errorf("the warning does not name the table at Warn:\n%s", buf.String())
	}

	owner, err := NewEngine(Config{DB: db.App, Registry: reg, Compactor: &CompactorConfig{DB: db.Super}})
	if err != nil {
		t.Fatal(err)
	}
	res, err := owner.RunCompaction(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if res.EdgesNotPruned != "" || res.PrunedEdges != 1 || edges() != 0 {
		t.Errorf("with CompactorConfig.DB a superuser: not pruned %q, pruned %d, edges left %d; want none, 1, 0", res.EdgesNotPruned, res.PrunedEdges, edges())
	}
}

// TestCompactionIdleLogsOnce: idle runs log at Info once, then at Debug,
// until a run does something.
func TestCompactionIdleLogsOnce(t *testing.T) {
	t.Parallel()
	p := ptNewEnv(t, nil)
	var buf syncBuffer
	logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e, err := NewEngine(Config{DB: p.db.Super, Registry: ptRegistry(t), Compactor: &CompactorConfig{Logger: logger}})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := e.RunCompaction(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	out := buf.String()
	if info, debug := strings.Count(out, `level=INFO msg="synchro: compaction"`), strings.Count(out, `level=DEBUG msg="synchro: compaction"`); info != 1 || debug != 2 {
		t.Errorf("three idle runs logged %d at Info and %d at Debug, want 1 and 2:\n%s", info, debug, out)
	}
}
