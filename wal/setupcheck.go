package wal

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/synchrosync/synchro/internal/store"
)

// This file holds the checks a session makes before it captures anything,
// so that a setup that would lose changes quietly stops Start with an error
// that says what to fix.

// walTables are the tables of schema synchro the consumer writes, and the
// newest columns it uses (table.column); one missing means
// migrations.Migrate has not run (or not since an upgrade).
var walTables = []string{"changelog", "bucket_edges", "wal_position", "wal_tables", "rule_failures", "compaction", "wal_tables.backfill_snapshot"}

// checkSetup refuses to capture when the consumer could not see every row:
// the role of ConnString reads each registered table's existing rows when
// the slot is created, and ChangelogDB's role reads parent rows to decide
// buckets, so row-level security must not apply to either on any
// registered table (it would hide rows: their buckets would be recorded
// as none, and devices would never receive them). It also refuses a
// database without the library's tables.
func (c *Consumer) checkSetup(ctx context.Context, mgmt *pgconn.PgConn) error {
	arr := quotedJSON(c.names)
	// Under RLS: the registered tables that row-level security applies to
	// for the current role.
	const underRLS = `
SELECT current_user::text, coalesce(string_agg(q.name, ', ' ORDER BY q.ord), '')
  FROM jsonb_array_elements_text($1::jsonb) WITH ORDINALITY AS q(name, ord)
 WHERE to_regclass(q.name) IS NOT NULL AND row_security_active(to_regclass(q.name))`
	rows, err := exec(ctx, mgmt, underRLS, arr)
	if err != nil {
		return fmt.Errorf("wal: checking row-level security: %w", err)
	}
	if tables := string(rows[0][1]); tables != "" {
		return fatal("wal: row-level security applies to the role %q of ConnString on %s: the consumer must read every row of the registered tables; use a role that owns them, is a superuser or has BYPASSRLS",
			string(rows[0][0]), tables)
	}

	var missing, role, hidden string
	err = c.applier.db.QueryRowContext(ctx, store.CheckChangelogDB, walTables, arr).Scan(&missing, &role, &hidden)
	if err != nil {
		if strings.Contains(err.Error(), "permission denied for schema synchro") {
			return fatal("wal: the role of ChangelogDB may not use schema synchro: grant it what migrations.Grants returns (%v)", err)
		}
		return fmt.Errorf("wal: checking ChangelogDB: %w", err)
	}
	if missing != "" {
		return fatal("wal: ChangelogDB lacks %s: the database is not migrated; run migrations.Migrate (package github.com/synchrosync/synchro/migrations) first", missing)
	}
	if hidden != "" {
		return fatal("wal: row-level security applies to the role %q of ChangelogDB on %s: deciding a row's buckets reads its parent rows, which it could not all see; use a role that owns the tables, is a superuser or has BYPASSRLS",
			role, hidden)
	}
	return nil
}
