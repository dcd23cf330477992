package synchro

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/synchrosync/synchro/internal/pgtest"
)

func TestSchemaVersionBumpsAndNeverDecreases(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := pgtest.NewMigratedDatabase(t)
	pgtest.Exec(t, db.Super, `CREATE TABLE docs (id text PRIMARY KEY, user_id text NOT NULL, body text, updated_at timestamptz NOT NULL DEFAULT now(), deleted_at timestamptz)`)

	// Registration order does not change the hash or the version.
	regA := NewRegistry()
	regA.Register(&TableConfig{TableName: "docs", OwnerColumn: "user_id"})
	e, err := newEngine(ctx, Config{DB: db.Super, Registry: regA})
	if err != nil {
		t.Fatal(err)
	}
	v1, h1, err := e.CurrentSchemaManifest(ctx)
	if err != nil || v1 != 1 || len(h1) != 64 {
		t.Fatalf("first manifest = %d %q %v, want version 1 and a sha256 hash", v1, h1, err)
	}
	again, err := newEngine(ctx, Config{DB: db.Super, Registry: regA})
	if err != nil {
		t.Fatal(err)
	}
	if v, h, _ := again.CurrentSchemaManifest(ctx); v != v1 || h != h1 {
		t.Fatalf("a second engine got %d %q, want %d %q", v, h, v1, h1)
	}

	// ALTER TABLE shows up within the refresh interval, with a new version.
	pgtest.Exec(t, db.Super, `ALTER TABLE docs ADD COLUMN title text`)
	v2, h2 := waitForManifestChange(t, e, h1)
	if v2 != v1+1 || h2 == h1 {
		t.Fatalf("after ADD COLUMN: version %d hash %q, want version %d and a new hash", v2, h2, v1+1)
	}
	schema, err := e.Schema(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(columnNames(schema.Tables[0]), "title") {
		t.Fatalf("schema after ADD COLUMN lacks the column: %s", columnNames(schema.Tables[0]))
	}

	// Reverting to the first shape gives the first hash under a higher version.
	pgtest.Exec(t, db.Super, `ALTER TABLE docs DROP COLUMN title`)
	v3, h3 := waitForManifestChange(t, e, h2)
	if h3 != h1 || v3 != v2+1 {
		t.Fatalf("after revert: version %d hash %q, want version %d with hash %q", v3, h3, v2+1, h1)
	}

	history, err := e.SchemaManifestHistory(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(history) != 3 || history[0].SchemaVersion != v3 || history[2].SchemaVersion != v1 || history[0].SchemaHash != h1 {
		t.Fatalf("history = %+v, want versions %d..%d newest first", history, v3, v1)
	}
	if h, _ := e.SchemaManifestHistory(ctx, 1); len(h) != 1 {
		t.Fatalf("history limit 1 returned %d rows", len(h))
	}

	// A client holding the old contract is refused; the new one is accepted.
	if _, err := e.RegisterClient(ctx, "u1", &RegisterRequest{ClientID: "c1", SchemaVersion: v1, SchemaHash: h1}); !errors.Is(err, ErrSchemaMismatch) {
		t.Fatalf("register with an old version: %v, want ErrSchemaMismatch", err)
	}
	if _, err := e.RegisterClient(ctx, "u1", &RegisterRequest{ClientID: "c1", SchemaVersion: v3, SchemaHash: h3}); err != nil {
		t.Fatalf("register with the current version: %v", err)
	}
}

func waitForManifestChange(t *testing.T, e *Engine, old string) (int64, string) {
	t.Helper()
	var (
		v int64
		h string
	)
	pgtest.WaitFor(t, "the manifest to change", 3*schemaRefreshInterval, func() (bool, string) {
		var err error
		if v, h, err = e.CurrentSchemaManifest(t.Context()); err != nil {
			t.Fatal(err)
		}
		return h != old, "version " + fmt.Sprint(v)
	})
	return v, h
}

func columnNames(t SchemaTable) string {
	var names []string
	for _, c := range t.Columns {
		names = append(names, c.Name)
	}
	return strings.Join(names, ",")
}

func TestNewEngineRefusesUnsyncableTables(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := pgtest.NewMigratedDatabase(t)
	pgtest.Exec(t, db.Super, `CREATE TYPE pair AS (a int, b int)`)
	pgtest.Exec(t, db.Super, `CREATE TABLE odd (id text PRIMARY KEY, user_id text, p pair)`)
	pgtest.Exec(t, db.Super, `CREATE TABLE plain (id text PRIMARY KEY, user_id text)`)

	tests := []struct {
		name     string
		cfg      TableConfig
		sentinel error
		contains []string
	}{
		{"unsupported type", TableConfig{TableName: "odd", OwnerColumn: "user_id"}, ErrUnsupportedSchemaFeature, []string{`"odd"`, `"p"`}},
		{"missing table", TableConfig{TableName: "nowhere"}, nil, []string{`nowhere`}},
		{"missing owner column", TableConfig{TableName: "plain", OwnerColumn: "owner"}, nil, []string{`"plain"`, `"owner"`}},
		{"missing sync column", TableConfig{TableName: "plain", SyncColumns: []string{"id", "ghost"}}, nil, []string{`"ghost"`}},
		{"missing explicit updated_at", TableConfig{TableName: "plain", UpdatedAtColumn: "modified_at"}, nil, []string{`"modified_at"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := NewRegistry()
			reg.Register(&tt.cfg)
			_, err := newEngine(ctx, Config{DB: db.Super, Registry: reg})
			if err == nil {
				t.Fatal("NewEngine succeeded")
			}
			if tt.sentinel != nil && !errors.Is(err, tt.sentinel) {
				t.Errorf("error %v does not wrap %v", err, tt.sentinel)
			}
			for _, s := range tt.contains {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not name %s", err, s)
				}
			}
		})
	}

	// A table without timestamp columns is fine: hard deletes, last push
	// wins; its metadata names the configured columns all the same, as the
	// contract does.
	reg := NewRegistry()
	reg.Register(&TableConfig{TableName: "plain", OwnerColumn: "user_id"})
	e, err := newEngine(ctx, Config{DB: db.Super, Registry: reg})
	if err != nil {
		t.Fatalf("plain table: %v", err)
	}
	meta, err := e.TableMetadata(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if m := meta.Tables[0]; m.UpdatedAtColumn != "updated_at" || m.DeletedAtColumn != "deleted_at" || m.Dependencies == nil {
		t.Fatalf("metadata of a table without timestamps: %+v", m)
	}
}

func TestNewEngineConfigErrors(t *testing.T) {
	t.Parallel()
	db := pgtest.NewMigratedDatabase(t)
	reg := NewRegistry()
	reg.Register(&TableConfig{TableName: "x", PushPolicy: "nope"})
	for name, cfg := range map[string]Config{
		"no db":       {Registry: NewRegistry()},
		"no registry": {DB: db.Super},
		"empty":       {DB: db.Super, Registry: NewRegistry()},
		"invalid":     {DB: db.Super, Registry: reg},
		"min version": {DB: db.Super, Registry: reg, MinClientVersion: "banana"},
	} {
		if _, err := NewEngine(cfg); err == nil {
			t.Errorf("%s: NewEngine succeeded", name)
		}
	}
	if _, err := NewEngine(Config{DB: db.Super, Registry: reg}); !errors.Is(err, ErrInvalidPushPolicy) {
		t.Errorf("invalid registry error %v does not wrap the Validate sentinel", err)
	}
}
