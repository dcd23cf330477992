package synchro

import (
	"bytes"
	"database/sql"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/synchrosync/synchro/internal/pgtest"
)

// syncBuffer is a bytes.Buffer safe for a logger's concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestNewEngineWithoutMigrations: a database where migrations.Migrate never
// ran is answered with ErrNotMigrated naming the missing table, not with a
// relation error from a later statement.
func TestNewEngineWithoutMigrations(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDatabase(t)
	pgtest.Exec(t, db.Super, ptSchema)
	_, err := NewEngine(Config{DB: db.Super, Registry: ptRegistry(t)})
	if !errors.Is(err, ErrNotMigrated) || !strings.Contains(err.Error(), "synchro.changelog") || !strings.Contains(err.Error(), "migrations.Migrate") {
		t.Fatalf("NewEngine on an unmigrated database: %v", err)
	}
}

// TestNewEngineMissingNewerMigration: a database migrated by an older
// release (the column of migration 0004 missing) names that migration.
func TestNewEngineMissingNewerMigration(t *testing.T) {
	t.Parallel()
	db := pgtest.NewMigratedDatabase(t)
	pgtest.Exec(t, db.Super, ptSchema)
	pgtest.Exec(t, db.Super, `ALTER TABLE synchro.clients DROP COLUMN parent_waits`)
	_, err := NewEngine(Config{DB: db.Super, Registry: ptRegistry(t)})
	if !errors.Is(err, ErrNotMigrated) || !strings.Contains(err.Error(), "0004_parent_wait.sql") {
		t.Fatalf("NewEngine without migration 0004's column: %v", err)
	}
}

// TestNewEngineWithoutGrants: a role that may not use the library's tables
// is told which grants it needs.
func TestNewEngineWithoutGrants(t *testing.T) {
	t.Parallel()
	db := pgtest.NewMigratedDatabase(t)
	pgtest.Exec(t, db.Super, ptSchema)
	pgtest.Exec(t, db.Super, `REVOKE ALL ON synchro.bucket_edges FROM `+pgx.Identifier{pgtest.AppRole}.Sanitize())
	_, err := NewEngine(Config{DB: db.App, Registry: ptRegistry(t)})
	if err == nil || !strings.Contains(err.Error(), "synchro.bucket_edges") || !strings.Contains(err.Error(), "migrations.Grants") {
		t.Fatalf("NewEngine without the grants: %v", err)
	}
}

// TestNewEngineWarnsWhenRLSIsBypassed: a superuser engine is warned about
// once, naming the role; an ordinary role is not.
func TestNewEngineWarnsWhenRLSIsBypassed(t *testing.T) {
	t.Parallel()
	db := pgtest.NewMigratedDatabase(t)
	pgtest.Exec(t, db.Super, ptSchema)
	for _, c := range []struct {
		name string
		conn DB
		warn bool
	}{{"superuser", db.Super, true}, {"app role", db.App, false}} {
		var buf syncBuffer
		logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
		if _, err := NewEngine(Config{DB: c.conn.(*sql.DB), Registry: ptRegistry(t), Logger: logger}); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		out := buf.String()
		got := strings.Count(out, "bypasses row-level security")
		switch {
		case c.warn && (got != 1 || !strings.Contains(out, "level=WARN") || !strings.Contains(out, "role=")):
			t.Errorf("%s: want one warning naming the role, got:\n%s", c.name, out)
		case !c.warn && got != 0:
			t.Errorf("%s: warned:\n%s", c.name, out)
		}
	}
}
