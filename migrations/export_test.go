package migrations_test

import (
	"io/fs"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/synchrosync/synchro/internal/pgtest"
	"github.com/synchrosync/synchro/migrations"
)

// tableList is the tables of schema synchro with their columns, as a text
// to compare two databases by.
func tableList(t *testing.T, db *pgtest.Database) string {
	t.Helper()
	var s string
	if err := db.Super.QueryRowContext(t.Context(), `
SELECT coalesce(string_agg(table_name || '.' || column_name || ':' || data_type, ',' ORDER BY table_name, ordinal_position), '')
  FROM information_schema.columns WHERE table_schema = 'synchro' AND table_name <> 'schema_migrations'`).Scan(&s); err != nil {
		t.Fatal(err)
	}
	return s
}

// TestFSAppliedByAnotherTool applies FS's files in version order, as a
// pipeline with its own tool would, and checks that the result is the
// schema Migrate builds, and that a Migrate after it succeeds and changes
// nothing.
func TestFSAppliedByAnotherTool(t *testing.T) {
	t.Parallel()
	versions, err := migrations.Versions()
	if err != nil {
		t.Fatal(err)
	}
	fsys := migrations.FS()
	var names []string
	for _, v := range versions {
		names = append(names, v.Name)
	}
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		t.Fatal(err)
	}
	var listed []string
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".sql") {
			listed = append(listed, e.Name())
		}
	}
	if !slices.Equal(listed, names) {
		t.Fatalf("FS holds %v, Versions lists %v", listed, names)
	}

	tool := pgtest.NewDatabase(t)
	if _, err := tool.Super.ExecContext(t.Context(), `CREATE SCHEMA IF NOT EXISTS synchro`); err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		sql, err := fs.ReadFile(fsys, name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tool.Super.ExecContext(t.Context(), string(sql)); err != nil {
			t.Fatalf("applying %s: %v", name, err)
		}
	}
	want := tableList(t, pgtest.NewMigratedDatabase(t))
	if got := tableList(t, tool); got != want {
		t.Errorf("the files applied in order give\n%s\nMigrate gives\n%s", got, want)
	}
	if err := migrations.Migrate(t.Context(), tool.Super); err != nil {
		t.Fatalf("Migrate after the files: %v", err)
	}
	if got := tableList(t, tool); got != want {
		t.Errorf("Migrate after the files changed the schema:\n%s", got)
	}
}

// TestToolLayouts checks the goose and golang-migrate layouts: one file per
// migration, named as each tool reads them, holding the same SQL.
func TestToolLayouts(t *testing.T) {
	t.Parallel()
	versions, err := migrations.Versions()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		fsys fs.FS
		file func(name string) string
		wrap func(sql string) string
	}{
		{"goose", migrations.GooseFS(), func(n string) string { return n },
			func(sql string) string {
				return "-- +goose Up\n-- +goose StatementBegin\n" + sql + "\n-- +goose StatementEnd\n"
			}},
		{"golang-migrate", migrations.GolangMigrateFS(), func(n string) string { return strings.TrimSuffix(n, ".sql") + ".up.sql" },
			func(sql string) string { return sql }},
	} {
		t.Run(c.name, func(t *testing.T) {
			entries, err := fs.ReadDir(c.fsys, ".")
			if err != nil {
				t.Fatal(err)
			}
			if len(entries) != len(versions) {
				t.Fatalf("%d files for %d migrations", len(entries), len(versions))
			}
			for _, v := range versions {
				got, err := fs.ReadFile(c.fsys, c.file(v.Name))
				if err != nil {
					t.Fatalf("%s: %v", v.Name, err)
				}
				orig, err := fs.ReadFile(migrations.FS(), v.Name)
				if err != nil {
					t.Fatal(err)
				}
				if string(got) != c.wrap(string(orig)) {
					t.Errorf("%s: contents differ from the migration's", c.file(v.Name))
				}
			}
			if c.name == "golang-migrate" {
				re := regexp.MustCompile(`^[0-9]+_[a-z0-9_]+\.up\.sql$`)
				for _, e := range entries {
					if !re.MatchString(e.Name()) {
						t.Errorf("%s is not a golang-migrate up file name", e.Name())
					}
				}
			}
		})
	}
}

// TestGrantsQuoteTheRole: a role name is an identifier, quoted.
func TestGrantsQuoteTheRole(t *testing.T) {
	t.Parallel()
	for _, g := range migrations.Grants(`app"; DROP TABLE x; --`) {
		if !strings.HasSuffix(g, ` TO "app""; DROP TABLE x; --"`) {
			t.Errorf("role not quoted: %s", g)
		}
	}
}
