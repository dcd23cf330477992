package migrations_test

import (
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/synchrosync/synchro/internal/pgerr"
	"github.com/synchrosync/synchro/internal/pgtest"
	"github.com/synchrosync/synchro/migrations"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// appliedRow is a row of synchro.schema_migrations.
type appliedRow struct {
	Version  int64
	Name     string
	Checksum string
}

func applied(t *testing.T, db *sql.DB) []appliedRow {
	t.Helper()
	rows, err := db.QueryContext(t.Context(),
		`SELECT version, name, checksum FROM synchro.schema_migrations ORDER BY version`)
	if err != nil {
		t.Fatalf("reading schema_migrations: %v", err)
	}
	defer rows.Close()
	var out []appliedRow
	for rows.Next() {
		var r appliedRow
		if err := rows.Scan(&r.Version, &r.Name, &r.Checksum); err != nil {
			t.Fatalf("reading schema_migrations: %v", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("reading schema_migrations: %v", err)
	}
	return out
}

// wantApplied is what schema_migrations holds once every embedded file is
// applied; the checksums are computed from the files in the source tree.
func wantApplied(t *testing.T) []appliedRow {
	t.Helper()
	versions, err := migrations.Versions()
	if err != nil {
		t.Fatalf("Versions: %v", err)
	}
	var want []appliedRow
	for _, m := range versions {
		content, err := os.ReadFile(m.Name)
		if err != nil {
			t.Fatalf("reading %s: %v", m.Name, err)
		}
		sum := sha256.Sum256(content)
		want = append(want, appliedRow{Version: m.Version, Name: m.Name, Checksum: hex.EncodeToString(sum[:])})
	}
	return want
}

func TestVersionsMatchTheFiles(t *testing.T) {
	t.Parallel()
	versions, err := migrations.Versions()
	if err != nil {
		t.Fatalf("Versions: %v", err)
	}
	files, err := filepath.Glob("*.sql")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for i, m := range versions {
		names = append(names, m.Name)
		if m.Version <= 0 {
			t.Errorf("%s: version %d, want > 0", m.Name, m.Version)
		}
		if i > 0 && m.Version <= versions[i-1].Version {
			t.Errorf("%s: version %d does not follow %d", m.Name, m.Version, versions[i-1].Version)
		}
		content, err := os.ReadFile(m.Name)
		if err != nil {
			t.Fatalf("reading %s: %v", m.Name, err)
		}
		if !strings.HasPrefix(string(content), "-- "+m.Name+":") {
			t.Errorf("%s does not start with a comment block naming the file", m.Name)
		}
	}
	slices.Sort(files)
	slices.Sort(names)
	if !slices.Equal(files, names) {
		t.Errorf("Versions lists %v, the directory holds %v", names, files)
	}
}

func TestMigrateTwiceIsANoOp(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDatabase(t)
	want := wantApplied(t)

	if err := migrations.Migrate(t.Context(), db.Super); err != nil {
		t.Fatalf("first Migrate: %v", err)
	}
	first := applied(t, db.Super)
	if !slices.Equal(first, want) {
		t.Fatalf("after the first Migrate schema_migrations = %+v, want %+v", first, want)
	}

	var appliedAt string
	if err := db.Super.QueryRowContext(t.Context(),
		`SELECT max(applied_at)::text FROM synchro.schema_migrations`).Scan(&appliedAt); err != nil {
		t.Fatal(err)
	}
	if err := migrations.Migrate(t.Context(), db.Super); err != nil {
		t.Fatalf("second Migrate: %v", err)
	}
	if second := applied(t, db.Super); !slices.Equal(second, want) {
		t.Fatalf("after the second Migrate schema_migrations = %+v, want %+v", second, want)
	}
	var appliedAtAgain string
	if err := db.Super.QueryRowContext(t.Context(),
		`SELECT max(applied_at)::text FROM synchro.schema_migrations`).Scan(&appliedAtAgain); err != nil {
		t.Fatal(err)
	}
	if appliedAt != appliedAtAgain {
		t.Errorf("the second Migrate rewrote applied_at: %s, then %s", appliedAt, appliedAtAgain)
	}
}

func TestMigrateConcurrently(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDatabase(t)

	// Separate pools, as separate processes would have.
	const workers = 4
	pools := make([]*sql.DB, workers)
	for i := range pools {
		pool, err := sql.Open("pgx", db.DSN)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = pool.Close() })
		if err := pool.PingContext(t.Context()); err != nil {
			t.Fatal(err)
		}
		pools[i] = pool
	}

	start := make(chan struct{})
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for i, pool := range pools {
		wg.Go(func() {
			<-start
			errs[i] = migrations.Migrate(t.Context(), pool)
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Migrate %d: %v", i, err)
		}
	}
	if got, want := applied(t, db.Super), wantApplied(t); !slices.Equal(got, want) {
		t.Errorf("schema_migrations = %+v, want %+v", got, want)
	}
}

func TestMigrateIgnoresUnknownVersions(t *testing.T) {
	t.Parallel()
	db := pgtest.NewMigratedDatabase(t)
	// As if a newer release had applied a migration this one does not know.
	if _, err := db.Super.ExecContext(t.Context(),
		`INSERT INTO synchro.schema_migrations (version, name, checksum) VALUES (999999, '999999_future.sql', 'abc')`); err != nil {
		t.Fatal(err)
	}
	if err := migrations.Migrate(t.Context(), db.Super); err != nil {
		t.Fatalf("Migrate with an unknown version recorded: %v", err)
	}
	want := append(wantApplied(t), appliedRow{Version: 999999, Name: "999999_future.sql", Checksum: "abc"})
	if got := applied(t, db.Super); !slices.Equal(got, want) {
		t.Errorf("schema_migrations = %+v, want %+v", got, want)
	}
}

func TestMigrateRefusesAChangedFile(t *testing.T) {
	t.Parallel()
	db := pgtest.NewMigratedDatabase(t)
	if _, err := db.Super.ExecContext(t.Context(),
		`UPDATE synchro.schema_migrations SET checksum = 'not the checksum' WHERE version = 1`); err != nil {
		t.Fatal(err)
	}
	err := migrations.Migrate(t.Context(), db.Super)
	if !errors.Is(err, migrations.ErrChecksumMismatch) {
		t.Fatalf("Migrate error = %v, want ErrChecksumMismatch", err)
	}
	if want := "migration 0001_init.sql was changed after it was applied"; !strings.Contains(err.Error(), want) {
		t.Errorf("Migrate error = %q, want it to contain %q", err, want)
	}
}

func TestMigrateIsAllOrNothing(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDatabase(t)
	// A table in the way: 0001_init.sql creates the other tables, then
	// fails on this one's missing columns.
	if _, err := db.Super.ExecContext(t.Context(),
		`CREATE SCHEMA synchro; CREATE TABLE synchro.compaction (unrelated int)`); err != nil {
		t.Fatal(err)
	}
	err := migrations.Migrate(t.Context(), db.Super)
	if err == nil || !strings.Contains(err.Error(), "0001_init.sql") {
		t.Fatalf("Migrate error = %v, want one naming 0001_init.sql", err)
	}
	for _, table := range []string{"synchro.schema_migrations", "synchro.changelog", "synchro.clients"} {
		var exists bool
		if err := db.Super.QueryRowContext(t.Context(),
			`SELECT to_regclass($1) IS NOT NULL`, table).Scan(&exists); err != nil {
			t.Fatal(err)
		}
		if exists {
			t.Errorf("%s exists after a failed Migrate", table)
		}
	}
}

// column describes a column as the catalog reports it.
type column struct {
	Name     string
	Type     string
	NotNull  bool
	Identity bool
	Default  string
}

func TestSchema(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDatabase(t)
	if err := migrations.Migrate(t.Context(), db.Super); err != nil {
		t.Fatal(err)
	}

	const (
		bigint      = "bigint"
		text        = "text"
		timestamptz = "timestamp with time zone"
		now         = "now()"
	)
	tests := []struct {
		table   string
		columns []column
		// indexes maps index names to their definition after "USING btree ".
		indexes map[string]string
	}{
		{
			table: "changelog",
			columns: []column{
				{Name: "seq", Type: bigint, NotNull: true, Identity: true},
				{Name: "bucket_id", Type: text, NotNull: true},
				{Name: "table_name", Type: text, NotNull: true},
				{Name: "record_id", Type: text, NotNull: true},
				{Name: "operation", Type: "smallint", NotNull: true},
				{Name: "created_at", Type: timestamptz, NotNull: true, Default: now},
			},
			indexes: map[string]string{
				"changelog_pkey":           "(seq)",
				"changelog_bucket_seq_idx": "(bucket_id, seq)",
				"changelog_record_idx":     "(table_name, record_id, bucket_id, seq)",
			},
		},
		{
			table: "clients",
			columns: []column{
				{Name: "id", Type: "uuid", NotNull: true, Default: "gen_random_uuid()"},
				{Name: "user_id", Type: text, NotNull: true},
				{Name: "client_id", Type: text, NotNull: true},
				{Name: "client_name", Type: text},
				{Name: "platform", Type: text, NotNull: true, Default: "''::text"},
				{Name: "app_version", Type: text, NotNull: true, Default: "''::text"},
				{Name: "bucket_subs", Type: "text[]", NotNull: true, Default: "'{}'::text[]"},
				{Name: "last_sync_at", Type: timestamptz},
				{Name: "last_pull_at", Type: timestamptz},
				{Name: "last_push_at", Type: timestamptz},
				{Name: "last_pull_seq", Type: bigint},
				{Name: "is_active", Type: "boolean", NotNull: true, Default: "true"},
				{Name: "snapshot_seq", Type: bigint},
				{Name: "snapshot_completed_at", Type: timestamptz},
				{Name: "created_at", Type: timestamptz, NotNull: true, Default: now},
				{Name: "updated_at", Type: timestamptz, NotNull: true, Default: now},
				{Name: "acked_seq", Type: bigint},
				{Name: "snapshot_subs", Type: "text[]"},
				{Name: "parent_waits", Type: "jsonb", NotNull: true, Default: "'[]'::jsonb"},
			},
			indexes: map[string]string{
				"clients_pkey":                "(id)",
				"clients_user_client_key":     "(user_id, client_id)",
				"clients_active_pull_seq_idx": "(last_pull_seq) WHERE is_active",
			},
		},
		{
			table: "bucket_edges",
			columns: []column{
				{Name: "table_name", Type: text, NotNull: true},
				{Name: "record_id", Type: text, NotNull: true},
				{Name: "bucket_id", Type: text, NotNull: true},
				{Name: "updated_at", Type: timestamptz, NotNull: true, Default: now},
			},
			indexes: map[string]string{
				"bucket_edges_pkey":       "(table_name, record_id, bucket_id)",
				"bucket_edges_bucket_idx": "(bucket_id, table_name, record_id)",
			},
		},
		{
			table: "wal_position",
			columns: []column{
				{Name: "slot_name", Type: text, NotNull: true},
				{Name: "confirmed_lsn", Type: bigint, NotNull: true, Default: "0"},
				{Name: "updated_at", Type: timestamptz, NotNull: true, Default: now},
			},
			indexes: map[string]string{"wal_position_pkey": "(slot_name)"},
		},
		{
			table: "wal_tables",
			columns: []column{
				{Name: "slot_name", Type: text, NotNull: true},
				{Name: "table_name", Type: text, NotNull: true},
				{Name: "backfilled_at", Type: timestamptz, NotNull: true, Default: now},
				{Name: "backfill_snapshot", Type: text},
				{Name: "backfill_lsn", Type: bigint},
			},
			indexes: map[string]string{"wal_tables_pkey": "(slot_name, table_name)"},
		},
		{
			table: "rule_failures",
			columns: []column{
				{Name: "id", Type: bigint, NotNull: true, Identity: true},
				{Name: "table_name", Type: text, NotNull: true},
				{Name: "record_id", Type: text, NotNull: true},
				{Name: "operation", Type: "smallint", NotNull: true},
				{Name: "error_text", Type: text, NotNull: true},
				{Name: "payload", Type: "jsonb"},
				{Name: "lsn", Type: bigint},
				{Name: "created_at", Type: timestamptz, NotNull: true, Default: now},
				{Name: "replayed_at", Type: timestamptz},
			},
			indexes: map[string]string{
				"rule_failures_pkey":           "(id)",
				"rule_failures_created_at_idx": "(created_at)",
			},
		},
		{
			table: "schema_manifest",
			columns: []column{
				{Name: "schema_version", Type: bigint, NotNull: true},
				{Name: "schema_hash", Type: text, NotNull: true},
				{Name: "created_at", Type: timestamptz, NotNull: true, Default: now},
			},
			indexes: map[string]string{
				"schema_manifest_pkey":     "(schema_version)",
				"schema_manifest_hash_idx": "(schema_hash)",
			},
		},
		{
			table: "compaction",
			columns: []column{
				{Name: "singleton", Type: "boolean", NotNull: true, Default: "true"},
				{Name: "boundary_seq", Type: bigint, NotNull: true, Default: "0"},
				{Name: "compacted_at", Type: timestamptz},
			},
			indexes: map[string]string{"compaction_pkey": "(singleton)"},
		},
		{
			table: "schema_migrations",
			columns: []column{
				{Name: "version", Type: bigint, NotNull: true},
				{Name: "name", Type: text, NotNull: true},
				{Name: "checksum", Type: text, NotNull: true},
				{Name: "applied_at", Type: timestamptz, NotNull: true, Default: now},
			},
			indexes: map[string]string{"schema_migrations_pkey": "(version)"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.table, func(t *testing.T) {
			t.Parallel()
			if got := columns(t, db.Super, "synchro."+tt.table); !slices.Equal(got, tt.columns) {
				t.Errorf("columns:\n got %+v\nwant %+v", got, tt.columns)
			}
			if got := indexes(t, db.Super, tt.table); !mapsEqual(got, tt.indexes) {
				t.Errorf("indexes:\n got %v\nwant %v", got, tt.indexes)
			}
			if tt.table == "schema_migrations" {
				return
			}
			var comment sql.NullString
			if err := db.Super.QueryRowContext(t.Context(),
				`SELECT obj_description(to_regclass($1), 'pg_class')`, "synchro."+tt.table).Scan(&comment); err != nil {
				t.Fatal(err)
			}
			if !comment.Valid || comment.String == "" {
				t.Errorf("synchro.%s has no COMMENT", tt.table)
			}
		})
	}
}

// columns lists the columns of table in order.
func columns(t *testing.T, db *sql.DB, table string) []column {
	t.Helper()
	rows, err := db.QueryContext(t.Context(), `
		SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
		       a.attidentity <> '', coalesce(pg_get_expr(d.adbin, d.adrelid), '')
		FROM pg_attribute a
		LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
		WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped
		ORDER BY a.attnum`, table)
	if err != nil {
		t.Fatalf("columns of %s: %v", table, err)
	}
	defer rows.Close()
	var out []column
	for rows.Next() {
		var c column
		if err := rows.Scan(&c.Name, &c.Type, &c.NotNull, &c.Identity, &c.Default); err != nil {
			t.Fatalf("columns of %s: %v", table, err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("columns of %s: %v", table, err)
	}
	return out
}

// indexes maps the indexes of synchro.table to their definition after
// "USING btree ", prefixed with "UNIQUE " for unique indexes other than
// primary keys and unique constraints.
func indexes(t *testing.T, db *sql.DB, table string) map[string]string {
	t.Helper()
	rows, err := db.QueryContext(t.Context(),
		`SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'synchro' AND tablename = $1`, table)
	if err != nil {
		t.Fatalf("indexes of %s: %v", table, err)
	}
	defer rows.Close()
	out := make(map[string]string)
	for rows.Next() {
		var name, def string
		if err := rows.Scan(&name, &def); err != nil {
			t.Fatalf("indexes of %s: %v", table, err)
		}
		_, cols, ok := strings.Cut(def, " USING btree ")
		if !ok {
			t.Errorf("index %s is not a btree: %s", name, def)
		}
		unique := strings.HasPrefix(def, "CREATE UNIQUE INDEX")
		if unique != (strings.HasSuffix(name, "_pkey") || strings.HasSuffix(name, "_key")) {
			t.Errorf("index %s: unexpected uniqueness: %s", name, def)
		}
		out[name] = cols
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("indexes of %s: %v", table, err)
	}
	return out
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func TestConstraints(t *testing.T) {
	t.Parallel()
	db := pgtest.NewMigratedDatabase(t)
	tests := []struct {
		name     string
		setup    string
		stmt     string
		wantCode string // empty: must succeed
	}{
		{
			name: "changelog accepts the three operations",
			stmt: `INSERT INTO synchro.changelog (bucket_id, table_name, record_id, operation)
			       VALUES ('user:a', 't', '1', 1), ('user:a', 't', '1', 2), ('user:a', 't', '1', 3)`,
		},
		{
			name:     "changelog refuses another operation",
			stmt:     `INSERT INTO synchro.changelog (bucket_id, table_name, record_id, operation) VALUES ('user:a', 't', '1', 4)`,
			wantCode: pgerr.CheckViolation,
		},
		{
			name:     "one client per user and client id",
			setup:    `INSERT INTO synchro.clients (user_id, client_id) VALUES ('u', 'c')`,
			stmt:     `INSERT INTO synchro.clients (user_id, client_id) VALUES ('u', 'c')`,
			wantCode: pgerr.UniqueViolation,
		},
		{
			name:     "compaction has a single row",
			stmt:     `INSERT INTO synchro.compaction (singleton) VALUES (true)`,
			wantCode: pgerr.UniqueViolation,
		},
		{
			name:     "compaction singleton cannot be false",
			stmt:     `INSERT INTO synchro.compaction (singleton) VALUES (false)`,
			wantCode: pgerr.CheckViolation,
		},
		{
			name: "a schema hash may come back under a new version",
			stmt: `INSERT INTO synchro.schema_manifest (schema_version, schema_hash) VALUES (1, 'h'), (2, 'h2'), (3, 'h')`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Each case in its own transaction, rolled back: the cases
			// share the database.
			tx, err := db.Super.BeginTx(t.Context(), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = tx.Rollback() }()
			if tt.setup != "" {
				if _, err := tx.ExecContext(t.Context(), tt.setup); err != nil {
					t.Fatalf("setup: %v", err)
				}
			}
			_, err = tx.ExecContext(t.Context(), tt.stmt)
			switch {
			case tt.wantCode == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tt.wantCode != "" && pgerr.Code(err) != tt.wantCode:
				t.Fatalf("error = %v, want SQLSTATE %s", err, tt.wantCode)
			}
		})
	}

	var rows, boundary int64
	if err := db.Super.QueryRowContext(t.Context(),
		`SELECT count(*), max(boundary_seq) FROM synchro.compaction`).Scan(&rows, &boundary); err != nil {
		t.Fatal(err)
	}
	if rows != 1 || boundary != 0 {
		t.Errorf("compaction holds %d rows with boundary %d, want 1 row with boundary 0", rows, boundary)
	}
}

// TestChangelogBucketStatistics checks the statistics hint of 0003: the
// planner must expect many buckets, or pulls of an empty bucket walk the
// whole changelog after the checkpoint.
func TestChangelogBucketStatistics(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDatabase(t)
	if err := migrations.Migrate(t.Context(), db.Super); err != nil {
		t.Fatal(err)
	}
	var opts string
	err := db.Super.QueryRow(`SELECT coalesce(array_to_string(attoptions, ','), '')
  FROM pg_attribute WHERE attrelid = 'synchro.changelog'::regclass AND attname = 'bucket_id'`).Scan(&opts)
	if err != nil {
		t.Fatal(err)
	}
	if opts != "n_distinct=-0.01" {
		t.Errorf("changelog.bucket_id options = %q, want n_distinct=-0.01", opts)
	}
}
