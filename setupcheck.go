package synchro

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/synchrosync/synchro/internal/store"
)

// This file holds the checks NewEngine makes of its database before it
// starts, so that a wrong setup says so at once instead of failing or
// misbehaving quietly later.

// migrationMarks are objects each migration creates, newest last: the
// first one missing names the migration that was not applied. Existence is
// read from the catalogs, which any role may read, so a role without the
// grants is told so apart (see checkSetup).
var migrationMarks = []struct{ migration, table, column string }{
	{"0001_init.sql", "changelog", ""},
	{"0001_init.sql", "clients", ""},
	{"0001_init.sql", "bucket_edges", ""},
	{"0001_init.sql", "schema_manifest", ""},
	{"0001_init.sql", "compaction", ""},
	{"0002_wal_tables.sql", "wal_tables", ""},
	{"0003_read_path.sql", "clients", "acked_seq"},
	{"0004_parent_wait.sql", "clients", "parent_waits"},
	{"0005_backfill_snapshot.sql", "wal_tables", "backfill_snapshot"},
}

// checkSetup verifies that the library's tables are there and usable by
// the engine's role, and warns once when the role bypasses row-level
// security: then the database does not enforce the policies that
// GenerateRLSPolicies writes, and the engine's own filters are the only
// wall between users.
func (e *Engine) checkSetup(ctx context.Context) error {
	tables := make([]string, len(migrationMarks))
	cols := make([]string, len(migrationMarks))
	for i, m := range migrationMarks {
		tables[i], cols[i] = m.table, m.column
	}
	var (
		role   string
		bypass bool
		answer string
	)
	if err := e.db.QueryRowContext(ctx, store.CheckSetup, tables, cols).Scan(&role, &bypass, &answer); err != nil {
		return fmt.Errorf("synchro: checking the database setup: %w", err)
	}
	marks := strings.Split(answer, ",")
	if len(marks) != len(migrationMarks) {
		return fmt.Errorf("synchro: checking the database setup: %d answers for %d checks", len(marks), len(migrationMarks))
	}
	var ungranted []string
	for i, s := range marks {
		parts := strings.Split(s, ":")
		if len(parts) != 3 {
			return fmt.Errorf("synchro: checking the database setup: answer %q", s)
		}
		m := migrationMarks[i]
		if parts[1] != "true" {
			what := "table synchro." + m.table
			if m.column != "" {
				what = fmt.Sprintf("column %s of synchro.%s", m.column, m.table)
			}
			return fmt.Errorf("%w (%s, made by migration %s, is missing)", ErrNotMigrated, what, m.migration)
		}
		if parts[2] != "true" && !slices.Contains(ungranted, "synchro."+m.table) {
			ungranted = append(ungranted, "synchro."+m.table)
		}
	}
	if len(ungranted) > 0 {
		return fmt.Errorf("synchro: role %q may not use %s: grant it what migrations.Grants(%q) returns", role, strings.Join(ungranted, ", "), role)
	}
	if bypass {
		e.logger.WarnContext(ctx, "synchro: the engine's role bypasses row-level security (superuser or BYPASSRLS): "+
			"the database does not enforce the policies between users; give the engine an ordinary role",
			"role", role)
	}
	return nil
}
