package migrations

import (
	"io/fs"
	"strings"
	"testing/fstest"

	"github.com/jackc/pgx/v5"
)

// This file gives the migrations to other tools: the files themselves, in
// the layouts goose and golang-migrate read, and the grants of the
// engine's runtime role.

// FS returns the migration files as Migrate applies them: plain SQL files
// named NNNN_description.sql at the root, each idempotent, to be applied in
// version order, each in a transaction of its own or all in one. A pipeline
// that runs its own migration tool (atlas, sqitch, a deploy script) can
// copy or apply them from here; the same files also come laid out for
// goose (GooseFS) and golang-migrate (GolangMigrateFS).
//
// Applying them with another tool records nothing in
// synchro.schema_migrations; a later Migrate then applies them again, which
// changes nothing (every statement is IF NOT EXISTS or ON CONFLICT DO
// NOTHING) and records them.
func FS() fs.FS {
	sub, err := fs.Sub(embedded, ".")
	if err != nil {
		panic(err) // "." is always valid
	}
	return sub
}

// GooseFS returns the migration files in the form pressly/goose reads: the
// same names, each file annotated as one Up migration run as a single
// statement (-- +goose Up, StatementBegin and StatementEnd), and no Down
// migration (the files are not reversible). Use it with goose.SetBaseFS or
// goose.NewProvider.
func GooseFS() fs.FS {
	return derived(func(name, sql string) (string, string) {
		return name, "-- +goose Up\n-- +goose StatementBegin\n" + sql + "\n-- +goose StatementEnd\n"
	})
}

// GolangMigrateFS returns the migration files in the form
// golang-migrate/migrate reads: NNNN_description.up.sql with the same
// contents (no down files), for its iofs source driver.
func GolangMigrateFS() fs.FS {
	return derived(func(name, sql string) (string, string) {
		return strings.TrimSuffix(name, ".sql") + ".up.sql", sql
	})
}

// derived returns an in-memory file system holding, for every embedded
// migration file, the name and contents f makes of it.
func derived(f func(name, sql string) (string, string)) fs.FS {
	files, err := load(embedded)
	if err != nil {
		panic(err) // the embedded files are checked by the tests
	}
	out := fstest.MapFS{}
	for _, file := range files {
		name, sql := f(file.Name, file.sql)
		out[name] = &fstest.MapFile{Data: []byte(sql), Mode: 0o444}
	}
	return out
}

// Grants returns the statements that give role what the engine's runtime
// role needs of schema synchro: the use of the schema, reading and writing
// its tables, and the use of its sequences (a snapshot draws a checkpoint
// from the changelog's). They are the privileges the engine uses, and the
// library's tests run it with exactly these. Apply them after every
// migration that adds tables (they name the tables that exist), or set
// default privileges for the migrating role instead. The role name is
// quoted as an identifier; the application's own tables need their own
// grants.
func Grants(role string) []string {
	r := pgx.Identifier{role}.Sanitize()
	return []string{
		"GRANT USAGE ON SCHEMA synchro TO " + r,
		"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA synchro TO " + r,
		"GRANT USAGE ON ALL SEQUENCES IN SCHEMA synchro TO " + r,
	}
}
