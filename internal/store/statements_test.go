package store

import (
	"context"
	"go/ast"
	"go/parser"
	"go/token"
	"maps"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/synchrosync/synchro/internal/pgtest"
)

// statements is every exported name of the package with a statement to
// prepare: the statements themselves, a function's statement for a
// typical argument, and each fragment inside a statement of its own.
// TestStatementsListed keeps it complete.
var statements = map[string]string{
	// store.go
	"OlderThan": `SELECT now() > ` + OlderThan,

	// clients.go
	"ClientColumns":           `SELECT ` + ClientColumns + ` FROM synchro.clients`,
	"UpsertClient":            UpsertClient,
	"LoadClient":              LoadClient,
	"LockClientForPush":       LockClientForPush,
	"TouchClientPush":         TouchClientPush,
	"RecordParentWaits":       RecordParentWaits,
	"PullState":               PullState,
	"RecordPull":              RecordPull,
	"BeginSnapshot":           BeginSnapshot,
	"BeginSnapshotNewSeq":     BeginSnapshotNewSeq,
	"FinishSnapshot":          FinishSnapshot,
	"LockClientSubscriptions": LockClientSubscriptions,
	"RecordSubscriptions":     RecordSubscriptions,
	"DeactivateStaleClients":  DeactivateStaleClients,

	// changelog.go
	"NewestSeq":           NewestSeq,
	"LockChangelogWrites": LockChangelogWrites,
	"InsertChangelogRows": InsertChangelogRows,
	"CreateBackfillStash": CreateBackfillStash,
	"StashChangelogRows":  StashChangelogRows,
	"WriteStashedRows":    WriteStashedRows,
	"CanStash":            CanStash,
	"DropBackfillStash":   DropBackfillStash,
	"StashEnd":            StashEnd,
	// what pgx describes before a COPY
	"ChangelogCopyColumns": `SELECT ` + strings.Join(ChangelogCopyColumns, ", ") + ` FROM synchro.changelog`,
	"NotifyChanges":        NotifyChanges,
	"Unsubscribe":          Unsubscribe,
	"Subscribe":            Subscribe,
	"PullFullPage":         PullFullPage,
	"PullMergedPage":       PullMergedPage,
	"PullFullPageFor":      PullFullPageFor(1),
	"MergedPageBuckets":    PullFullPageFor(MergedPageBuckets), // a bound: its statement
	"PullCappedPage":       PullCappedPage,
	"ParentDeleted":        ParentDeleted("CAST($2::text AS uuid)::text"),
	"CompactBelow":         CompactBelow,
	"CompactNextSeq":       CompactNextSeq,
	"CompactSuperseded":    CompactSuperseded,

	// compaction.go
	"SafeSeq":                 SafeSeq,
	"AdvanceBoundary":         AdvanceBoundary,
	"RecordRunBoundary":       RecordRunBoundary,
	"RaiseBoundaryPastMarker": RaiseBoundaryPastMarker,

	// bucket_edges.go
	"LoadEdges":          LoadEdges,
	"DeleteEdges":        DeleteEdges,
	"InsertEdges":        InsertEdges,
	"EdgesCopyColumns":   `SELECT ` + strings.Join(EdgesCopyColumns, ", ") + ` FROM synchro.bucket_edges`,
	"InsertMissingEdges": InsertMissingEdges,
	"TableRecords":       TableRecords,
	"ClearTableEdges":    ClearTableEdges,
	"TakeTableEdges":     TakeTableEdges,

	// wal_position.go
	"SlotPosition":   SlotPosition,
	"RecordPosition": RecordPosition,
	"CaptureStatus":  CaptureStatus,

	// wal_tables.go
	"RecordedTables":     RecordedTables,
	"RecordTables":       RecordTables,
	"ForgetOtherTables":  ForgetOtherTables,
	"OtherSlotsOfTables": OtherSlotsOfTables,

	// rule_failures.go
	"InsertRuleFailures":       InsertRuleFailures,
	"PendingRuleFailures":      PendingRuleFailures,
	"MarkRuleFailuresReplayed": MarkRuleFailuresReplayed,
	"PruneRuleFailures":        PruneRuleFailures,

	// schema_manifest.go
	"LatestManifest":  LatestManifest,
	"InsertManifest":  InsertManifest,
	"ManifestHistory": ManifestHistory,

	// setup.go
	"CheckSetup":          CheckSetup,
	"CheckChangelogDB":    CheckChangelogDB,
	"RowSecurityOnWrites": RowSecurityOnWrites,
}

// TestStatementsPrepare prepares every statement on a migrated database:
// a table or column renamed by a migration, or a statement that no longer
// parses or whose parameter types PostgreSQL cannot infer, fails here. A
// LOCK, which cannot be prepared, is run in a transaction rolled back.
func TestStatementsPrepare(t *testing.T) {
	t.Parallel()
	db := pgtest.NewMigratedDatabase(t)
	ctx := context.Background()
	conn, err := db.Super.Conn(ctx) // prepared statements live in one session
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	prepare := func(name, q string) {
		if _, err := conn.ExecContext(ctx, `PREPARE synchro_store_check AS `+q); err != nil {
			t.Errorf("%s: %v\n%s", name, err, q)
			return
		}
		if _, err := conn.ExecContext(ctx, `DEALLOCATE synchro_store_check`); err != nil {
			t.Fatal(err)
		}
	}
	// The temporary table of a record of existing rows, which the
	// statements using it need: created in a transaction that outlives
	// their PREPAREs, and whose end drops it.
	if _, err := conn.ExecContext(ctx, `BEGIN`); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"DropBackfillStash", "CreateBackfillStash"} { // run, not prepared
		if _, err := conn.ExecContext(ctx, statements[name]); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(statements)) {
		q := statements[name]
		if !strings.Contains(q, "synchro_backfill_stash") || name == "CreateBackfillStash" || name == "DropBackfillStash" {
			continue
		}
		prepare(name, q)
	}
	if _, err := conn.ExecContext(ctx, `ROLLBACK`); err != nil {
		t.Fatal(err)
	}
	for _, name := range slices.Sorted(maps.Keys(statements)) {
		q := statements[name]
		if strings.Contains(q, "synchro_backfill_stash") {
			continue // above
		}
		if strings.HasPrefix(strings.TrimSpace(q), "LOCK ") {
			tx, err := conn.BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := tx.ExecContext(ctx, q); err != nil {
				t.Errorf("%s: %v\n%s", name, err, q)
			}
			_ = tx.Rollback()
			continue
		}
		prepare(name, q)
	}
}

// TestStatementsListed: statements names every exported constant and
// function of the package, and nothing else, so that a statement added
// without an entry is caught.
func TestStatementsListed(t *testing.T) {
	entries, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	declared := map[string]bool{}
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".go") || strings.HasSuffix(e.Name(), "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, e.Name(), nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		for _, decl := range f.Decls {
			switch d := decl.(type) {
			case *ast.FuncDecl:
				if d.Recv == nil && d.Name.IsExported() {
					declared[d.Name.Name] = true
				}
			case *ast.GenDecl:
				for _, spec := range d.Specs {
					switch s := spec.(type) {
					case *ast.ValueSpec:
						for _, n := range s.Names {
							if n.IsExported() {
								declared[n.Name] = true
							}
						}
					case *ast.TypeSpec:
						if s.Name.IsExported() {
							declared[s.Name.Name] = true
						}
					}
				}
			}
		}
	}
	if len(declared) == 0 {
		t.Fatal("no exported names found: is the test run in the package's directory?")
	}
	for _, name := range slices.Sorted(maps.Keys(declared)) {
		if _, ok := statements[name]; !ok {
			t.Errorf("%s is exported but not in statements: add it, so that TestStatementsPrepare prepares it", name)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(statements)) {
		if !declared[name] {
			t.Errorf("statements lists %s, which the package does not declare", name)
		}
	}
}
