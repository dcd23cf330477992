package pgtest_test

import (
	"context"
	"database/sql"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/synchrosync/synchro/internal/pgerr"
	"github.com/synchrosync/synchro/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func TestDSNs(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDatabase(t)
	tests := []struct {
		name        string
		dsn         string
		user        string
		replication string
	}{
		{name: "DSN", dsn: db.DSN, user: superuser(t, db)},
		{name: "ReplicationDSN", dsn: db.ReplicationDSN, user: superuser(t, db), replication: "database"},
		{name: "AppDSN", dsn: db.AppDSN, user: pgtest.AppRole},
	}
	for _, tt := range tests {
		cfg, err := pgconn.ParseConfig(tt.dsn)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if cfg.Database != db.Name || cfg.User != tt.user || cfg.RuntimeParams["replication"] != tt.replication {
			t.Errorf("%s: database %q, user %q, replication %q; want %q, %q, %q", tt.name,
				cfg.Database, cfg.User, cfg.RuntimeParams["replication"], db.Name, tt.user, tt.replication)
		}
	}
}

// superuser returns the user of db.Super.
func superuser(t *testing.T, db *pgtest.Database) string {
	t.Helper()
	var user string
	if err := db.Super.QueryRowContext(t.Context(), `SELECT current_user`).Scan(&user); err != nil {
		t.Fatal(err)
	}
	return user
}

func TestDatabasesAreIsolated(t *testing.T) {
	t.Parallel()
	a := pgtest.NewDatabase(t)
	b := pgtest.NewDatabase(t)
	if a.Name == b.Name {
		t.Fatalf("both databases are named %s", a.Name)
	}
	if _, err := a.Super.ExecContext(t.Context(), `CREATE TABLE only_in_a (id int PRIMARY KEY)`); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		db   *pgtest.Database
		want bool
	}{{a, true}, {b, false}} {
		var exists bool
		if err := tc.db.Super.QueryRowContext(t.Context(),
			`SELECT to_regclass('public.only_in_a') IS NOT NULL`).Scan(&exists); err != nil {
			t.Fatal(err)
		}
		if exists != tc.want {
			t.Errorf("in %s, table only_in_a exists = %v, want %v", tc.db.Name, exists, tc.want)
		}
	}
}

func TestAppRoleIsSubjectToRLS(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDatabase(t)
	ctx := t.Context()

	var user string
	var super, bypassRLS bool
	if err := db.App.QueryRowContext(ctx, `
		SELECT current_user, rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user`,
	).Scan(&user, &super, &bypassRLS); err != nil {
		t.Fatal(err)
	}
	if user != pgtest.AppRole || super || bypassRLS {
		t.Fatalf("App connects as %s (superuser %v, bypassrls %v), want %s with neither", user, super, bypassRLS, pgtest.AppRole)
	}

	// Created by the superuser: AppRole's access comes from the default
	// privileges of the template.
	if _, err := db.Super.ExecContext(ctx, `
		CREATE TABLE notes (id int PRIMARY KEY, owner text NOT NULL, body text NOT NULL);
		ALTER TABLE notes ENABLE ROW LEVEL SECURITY;
		CREATE POLICY notes_owner ON notes USING (owner = current_setting('app.user_id', true));
		INSERT INTO notes VALUES (1, 'alice', 'a1'), (2, 'alice', 'a2'), (3, 'bob', 'b1');`); err != nil {
		t.Fatal(err)
	}

	if got := noteIDs(t, db.Super); !slices.Equal(got, []int{1, 2, 3}) {
		t.Errorf("superuser sees notes %v, want all", got)
	}
	if got := noteIDs(t, db.App); len(got) != 0 {
		t.Errorf("App without app.user_id sees notes %v, want none", got)
	}

	conn, err := db.App.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()

	// Transaction-local setting.
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.ExecContext(ctx, `SELECT set_config('app.user_id', $1, true)`, "bob"); err != nil {
		t.Fatal(err)
	}
	if got := noteIDs(t, tx); !slices.Equal(got, []int{3}) {
		t.Errorf("App as bob sees notes %v, want [3]", got)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO notes VALUES (4, 'alice', 'forged')`); err == nil {
		t.Error("App as bob inserted a note owned by alice")
	} else if !isCode(err, pgerr.InsufficientPrivilege) {
		t.Errorf("inserting alice's note as bob: %v, want insufficient_privilege", err)
	}
	_ = tx.Rollback()
	if got := noteIDs(t, conn); len(got) != 0 {
		t.Errorf("App after the transaction sees notes %v, want none", got)
	}

	// Session setting.
	if _, err := conn.ExecContext(ctx, `SELECT set_config('app.user_id', $1, false)`, "alice"); err != nil {
		t.Fatal(err)
	}
	if got := noteIDs(t, conn); !slices.Equal(got, []int{1, 2}) {
		t.Errorf("App as alice sees notes %v, want [1 2]", got)
	}
}

// querier is what *sql.DB, *sql.Conn and *sql.Tx have in common.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func noteIDs(t *testing.T, q querier) []int {
	t.Helper()
	rows, err := q.QueryContext(t.Context(), `SELECT id FROM notes ORDER BY id`)
	if err != nil {
		t.Fatalf("reading notes: %v", err)
	}
	defer rows.Close()
	var ids []int
	for rows.Next() {
		var id int
		if err := rows.Scan(&id); err != nil {
			t.Fatalf("reading notes: %v", err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("reading notes: %v", err)
	}
	return ids
}

func isCode(err error, code string) bool {
	return pgerr.Code(err) == code
}

func TestMigratedDatabase(t *testing.T) {
	t.Parallel()
	db := pgtest.NewMigratedDatabase(t)
	ctx := t.Context()

	var versions int
	if err := db.Super.QueryRowContext(ctx, `SELECT count(*) FROM synchro.schema_migrations`).Scan(&versions); err != nil {
		t.Fatal(err)
	}
	if versions == 0 {
		t.Error("schema_migrations is empty")
	}

	// The runtime role can use the library's tables.
	var seq int64
	if err := db.App.QueryRowContext(ctx, `
		INSERT INTO synchro.changelog (bucket_id, table_name, record_id, operation)
		VALUES ('user:alice', 'notes', '1', 1) RETURNING seq`).Scan(&seq); err != nil {
		t.Fatalf("App inserting into synchro.changelog: %v", err)
	}
	if _, err := db.App.ExecContext(ctx, `UPDATE synchro.compaction SET boundary_seq = $1`, seq); err != nil {
		t.Fatalf("App updating synchro.compaction: %v", err)
	}
}

// TestReplicationSlotIsDroppedWithDatabase creates a logical slot through
// ReplicationDSN and leaves it streaming: the cleanup of the database must
// end the walsender, drop the slot and drop the database.
func TestReplicationSlotIsDroppedWithDatabase(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	// Another database on the same server, to look at the server-wide
	// catalogs after the first one is gone.
	observer := pgtest.NewDatabase(t)

	var (
		dbName, slotName string
		repl             *pgconn.PgConn
	)
	t.Run("stream", func(t *testing.T) {
		db := pgtest.NewDatabase(t)
		dbName = db.Name
		slotName = "slot_" + db.Name // slot names are server-wide
		if _, err := db.Super.ExecContext(ctx, `
			CREATE TABLE items (id int PRIMARY KEY);
			CREATE PUBLICATION items_pub FOR TABLE items;`); err != nil {
			t.Fatal(err)
		}

		var err error
		repl, err = pgconn.Connect(ctx, db.ReplicationDSN)
		if err != nil {
			t.Fatalf("connecting with ReplicationDSN: %v", err)
		}
		created, err := pglogrepl.CreateReplicationSlot(ctx, repl, slotName, "pgoutput",
			pglogrepl.CreateReplicationSlotOptions{Temporary: false, Mode: pglogrepl.LogicalReplication})
		if err != nil {
			t.Fatalf("creating the slot: %v", err)
		}

		var database, plugin string
		var temporary bool
		if err := db.Super.QueryRowContext(ctx, `
			SELECT database, plugin, temporary FROM pg_replication_slots WHERE slot_name = $1`, slotName,
		).Scan(&database, &plugin, &temporary); err != nil {
			t.Fatalf("reading the slot: %v", err)
		}
		if database != db.Name || plugin != "pgoutput" || temporary {
			t.Errorf("slot: database %s, plugin %s, temporary %v; want %s, pgoutput, false", database, plugin, temporary, db.Name)
		}

		start, err := pglogrepl.ParseLSN(created.ConsistentPoint)
		if err != nil {
			t.Fatal(err)
		}
		if err := pglogrepl.StartReplication(ctx, repl, slotName, start, pglogrepl.StartReplicationOptions{
			PluginArgs: []string{"proto_version '1'", "publication_names 'items_pub'"},
		}); err != nil {
			t.Fatalf("starting replication: %v", err)
		}
		var active bool
		if err := db.Super.QueryRowContext(ctx,
			`SELECT active FROM pg_replication_slots WHERE slot_name = $1`, slotName).Scan(&active); err != nil {
			t.Fatal(err)
		}
		if !active {
			t.Error("the slot is not active while streaming")
		}
		// Neither the slot nor the connection is closed here.
	})
	if repl != nil {
		// The cleanup ended its session; closing reports nothing useful.
		closeCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = repl.Close(closeCtx)
		cancel()
	}
	if dbName == "" {
		return
	}

	var slots, databases int
	if err := observer.Super.QueryRowContext(ctx, `
		SELECT (SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1),
		       (SELECT count(*) FROM pg_database WHERE datname = $2)`, slotName, dbName,
	).Scan(&slots, &databases); err != nil {
		t.Fatal(err)
	}
	if slots != 0 || databases != 0 {
		t.Errorf("after the cleanup: %d slots named %s, %d databases named %s; want none", slots, slotName, databases, dbName)
	}
}

// TestNewDatabaseTime logs how long a fresh database takes. It is not
// parallel, so that it measures the harness rather than contention.
func TestNewDatabaseTime(t *testing.T) {
	for _, tc := range []struct {
		name string
		new  func(testing.TB) *pgtest.Database
	}{
		{"NewDatabase", pgtest.NewDatabase},
		{"NewMigratedDatabase", pgtest.NewMigratedDatabase},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The first call of a binary also creates the template.
			begin := time.Now()
			tc.new(t)
			first := time.Since(begin)

			const n = 5
			var times []time.Duration
			for range n {
				begin := time.Now()
				db := tc.new(t)
				if err := db.Super.PingContext(t.Context()); err != nil {
					t.Fatal(err)
				}
				times = append(times, time.Since(begin))
			}
			slices.Sort(times)
			t.Logf("%s: first (with template) %v; then min %v, median %v, max %v over %d",
				tc.name, first.Round(time.Millisecond), times[0].Round(time.Millisecond),
				times[n/2].Round(time.Millisecond), times[n-1].Round(time.Millisecond), n)
		})
	}
}

func BenchmarkNewDatabase(b *testing.B) {
	pgtest.NewDatabase(b) // the template
	for b.Loop() {
		pgtest.NewDatabase(b)
	}
}

func BenchmarkNewMigratedDatabase(b *testing.B) {
	pgtest.NewMigratedDatabase(b) // the template
	for b.Loop() {
		pgtest.NewMigratedDatabase(b)
	}
}
