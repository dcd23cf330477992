package wal

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/synchrosync/synchro/internal/pgtest"
)

// startOnce runs a consumer with cfg and returns what Start returned,
// failing when it keeps running (a setup error must stop it at once).
func startOnce(t *testing.T, cfg ConsumerConfig) error {
	t.Helper()
	return startConsumer(t, cfg).result(20 * time.Second)
}

func scConfig(db *pgtest.Database) ConsumerConfig {
	return ConsumerConfig{
		ConnString:      db.DSN,
		SlotName:        "s_" + strings.ReplaceAll(db.Name, "-", "_"),
		PublicationName: "pub",
		Registry:        ctRegistry(),
		ChangelogDB:     db.Super,
		StandbyTimeout:  200 * time.Millisecond,
	}
}

// TestConsumerRefusesUnmigratedDatabase: Start says to run the migrations.
func TestConsumerRefusesUnmigratedDatabase(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDatabase(t)
	pgtest.Exec(t, db.Super, ctSchema)
	err := startOnce(t, scConfig(db))
	if err == nil || !strings.Contains(err.Error(), "migrations.Migrate") || !strings.Contains(err.Error(), "synchro.changelog") {
		t.Fatalf("Start on an unmigrated database: %v", err)
	}
}

// TestConsumerRefusesRoleUnderRLS: a ConnString role that row-level
// security applies to would record the buckets of the rows it sees only;
// Start refuses it, naming the role and the table. The same for
// ChangelogDB's role.
func TestConsumerRefusesRoleUnderRLS(t *testing.T) {
	t.Parallel()
	db := pgtest.NewMigratedDatabase(t)
	pgtest.Exec(t, db.Super, ctSchema)
	pgtest.Exec(t, db.Super, `INSERT INTO lists (id, user_id, name) VALUES ('l1', 'alice', 'a'), ('l2', 'bob', 'b')`)
	pgtest.Exec(t, db.Super, `ALTER TABLE lists ENABLE ROW LEVEL SECURITY`)
	pgtest.Exec(t, db.Super, `CREATE POLICY own ON lists USING (user_id = current_setting('app.user_id', true))`)
	role := "repl_" + strings.ReplaceAll(db.Name, "-", "_")
	// With a password: servers that are not the local one (a container,
	// SYNCHRO_TEST_DATABASE_URL) authenticate host connections.
	pgtest.Exec(t, db.Super, `CREATE ROLE `+role+` LOGIN REPLICATION PASSWORD '`+role+`'`)
	t.Cleanup(func() { _, _ = db.Super.Exec(`DROP OWNED BY ` + role + `; DROP ROLE ` + role) })
	pgtest.Exec(t, db.Super, `GRANT SELECT ON ALL TABLES IN SCHEMA public TO `+role)

	cfg := scConfig(db)
	u, err := url.Parse(db.DSN)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword(role, role)
	cfg.ConnString = u.String()
	err = startOnce(t, cfg)
	if err == nil || !strings.Contains(err.Error(), "row-level security") || !strings.Contains(err.Error(), role) || !strings.Contains(err.Error(), "lists") {
		t.Fatalf("Start with a ConnString role under RLS: %v", err)
	}

	cfg = scConfig(db)
	cfg.ChangelogDB = db.App
	err = startOnce(t, cfg)
	if err == nil || !strings.Contains(err.Error(), "ChangelogDB") || !strings.Contains(err.Error(), "lists") {
		t.Fatalf("Start with a ChangelogDB role under RLS: %v", err)
	}
	var slots int
	if err := db.Super.QueryRow(`SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1`, cfg.SlotName).Scan(&slots); err != nil || slots != 0 {
		t.Errorf("a slot was created (%d, %v): a refused setup must not hold WAL", slots, err)
	}
}
