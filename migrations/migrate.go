// Package migrations creates and upgrades the tables synchro keeps in the
// PostgreSQL schema synchro (changelog, clients, bucket_edges, wal_position,
// rule_failures, schema_manifest, compaction).
//
// # Overview
//
// The migrations are versioned SQL files embedded in the binary, named
// NNNN_description.sql; the leading digits are the version. [Migrate] applies
// the files the database has not seen yet, in version order, and records each
// one in synchro.schema_migrations with the SHA-256 checksum of its contents.
// Every file is idempotent on its own (IF NOT EXISTS throughout).
//
// # Who runs them
//
// The application calls [Migrate], for example at startup or from a deploy
// step. The synchro library never migrates on its own initiative.
//
// # Privileges
//
// Migrate needs a role that may create a schema in the database (CREATE on
// the database) and tables in it, typically the role that owns the database.
// It grants nothing: the application grants its runtime role (the role of
// the engine's pool) what it needs, after Migrate; [Grants] returns the
// statements for a role name:
//
//	GRANT USAGE ON SCHEMA synchro TO app_runtime;
//	GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA synchro TO app_runtime;
//	GRANT USAGE ON ALL SEQUENCES IN SCHEMA synchro TO app_runtime;
//
// The sequence grant lets a snapshot draw a checkpoint of its own from the
// changelog's sequence. Grant again after a Migrate that adds tables (or set
// ALTER DEFAULT PRIVILEGES for the migrating role). These are exactly the
// privileges the engine uses; the library's tests run it with them.
//
// # Other migration tools
//
// A deploy that runs its own tool applies the same files: [FS] returns them
// as they are (plain SQL, NNNN_description.sql), [GooseFS] laid out for
// pressly/goose and [GolangMigrateFS] for golang-migrate/migrate. Apply
// [Grants] after them, as after Migrate.
//
// # Concurrency and failure
//
// Migrate runs in one transaction: it takes the transaction-level advisory
// lock [LockKey], reads the applied versions, applies every missing file and
// commits. Either all missing files are applied or none is. Several processes
// may call Migrate at once (for example the replicas of a deployment): the
// first applies the files, the others wait for the lock and then find nothing
// left to do.
//
// # Rolling deploys
//
// Versions recorded in the database that this binary does not know (applied
// by a newer release) are ignored, so an older binary still starts while a
// newer one is rolling out. A file that was applied and then edited is
// refused with [ErrChecksumMismatch]: add a new file instead.
package migrations

import (
	"cmp"
	"context"
	"crypto/sha256"
	"database/sql"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

// LockKey is the key of the transaction-level advisory lock
// (pg_advisory_xact_lock) that Migrate holds while it reads and applies the
// migrations. It is the ASCII bytes of "synchro" read as a big-endian
// integer (0x73796e6368726f). It is exported so that operators can recognise
// it in pg_locks (objid holds its low 32 bits, classid its high 32 bits) and
// so that other tools can serialise with Migrate.
const LockKey int64 = 32503137342878319

// ErrChecksumMismatch is returned (wrapped) by Migrate when the embedded
// file of an applied version differs from the one that was applied. The
// error message names the file.
var ErrChecksumMismatch = errors.New("migrations: checksum mismatch")

// Migration describes one embedded migration file.
type Migration struct {
	// Version is the number the file name starts with; unique and > 0.
	Version int64
	// Name is the file name, for example "0001_init.sql".
	Name string
}

//go:embed *.sql
var embedded embed.FS

// schemaName and tableName name the bookkeeping table; the statements below
// quote them with pgx.Identifier.
const (
	schemaName = "synchro"
	tableName  = "schema_migrations"
)

var (
	quotedSchema = pgx.Identifier{schemaName}.Sanitize()
	quotedTable  = pgx.Identifier{schemaName, tableName}.Sanitize()

	lockSQL = `SELECT pg_advisory_xact_lock($1)`

	createSchemaSQL = `CREATE SCHEMA IF NOT EXISTS ` + quotedSchema

	createTableSQL = `CREATE TABLE IF NOT EXISTS ` + quotedTable + ` (
	version    bigint      PRIMARY KEY,
	name       text        NOT NULL,
	checksum   text        NOT NULL,
	applied_at timestamptz NOT NULL DEFAULT now()
)`

	selectAppliedSQL = `SELECT version, checksum FROM ` + quotedTable

	insertAppliedSQL = `INSERT INTO ` + quotedTable + ` (version, name, checksum) VALUES ($1, $2, $3)`
)

// file is a parsed migration file.
type file struct {
	Migration
	sql      string
	checksum string // hex SHA-256 of sql
}

// Versions lists the embedded migrations in the order Migrate applies them.
// It returns an error when the embedded file set is malformed (a file name
// without a positive version, or two files with the same version), the same
// error Migrate would return.
func Versions() ([]Migration, error) {
	files, err := load(embedded)
	if err != nil {
		return nil, err
	}
	out := make([]Migration, len(files))
	for i, f := range files {
		out[i] = f.Migration
	}
	return out, nil
}

// Migrate applies the embedded migrations that db has not recorded yet, in
// version order, in one transaction under the advisory lock [LockKey]. It
// creates the schema synchro and the table synchro.schema_migrations if they
// do not exist. Calling it again, or from several processes at once, is
// safe. See the package documentation for the privileges it needs.
func Migrate(ctx context.Context, db *sql.DB) error {
	if db == nil {
		return errors.New("migrations: nil *sql.DB")
	}
	files, err := load(embedded)
	if err != nil {
		return err
	}
	return apply(ctx, db, files)
}

// apply runs the missing files of files (sorted by version) in one
// transaction.
func apply(ctx context.Context, db *sql.DB, files []file) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("migrations: beginning transaction: %w", err)
	}
	// A no-op once the transaction is committed.
	defer func() { _ = tx.Rollback() }()

	if _, err := tx.ExecContext(ctx, lockSQL, LockKey); err != nil {
		return fmt.Errorf("migrations: taking advisory lock %d: %w", LockKey, err)
	}
	if _, err := tx.ExecContext(ctx, createSchemaSQL); err != nil {
		return fmt.Errorf("migrations: creating schema %s: %w", schemaName, err)
	}
	if _, err := tx.ExecContext(ctx, createTableSQL); err != nil {
		return fmt.Errorf("migrations: creating table %s.%s: %w", schemaName, tableName, err)
	}
	applied, err := appliedChecksums(ctx, tx)
	if err != nil {
		return err
	}

	for _, f := range files {
		if sum, ok := applied[f.Version]; ok {
			if sum != f.checksum {
				return fmt.Errorf("%w: migration %s was changed after it was applied (checksum recorded %s, embedded %s)",
					ErrChecksumMismatch, f.Name, sum, f.checksum)
			}
			continue
		}
		if _, err := tx.ExecContext(ctx, f.sql); err != nil {
			return fmt.Errorf("migrations: applying %s: %w", f.Name, err)
		}
		if _, err := tx.ExecContext(ctx, insertAppliedSQL, f.Version, f.Name, f.checksum); err != nil {
			return fmt.Errorf("migrations: recording %s: %w", f.Name, err)
		}
	}

	if err := tx.Commit(); err != nil {
		return fmt.Errorf("migrations: committing: %w", err)
	}
	return nil
}

// appliedChecksums reads the recorded versions and their checksums,
// including versions this binary does not know.
func appliedChecksums(ctx context.Context, tx *sql.Tx) (map[int64]string, error) {
	rows, err := tx.QueryContext(ctx, selectAppliedSQL)
	if err != nil {
		return nil, fmt.Errorf("migrations: reading applied versions: %w", err)
	}
	defer rows.Close()
	applied := make(map[int64]string)
	for rows.Next() {
		var (
			version  int64
			checksum string
		)
		if err := rows.Scan(&version, &checksum); err != nil {
			return nil, fmt.Errorf("migrations: reading applied versions: %w", err)
		}
		applied[version] = checksum
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("migrations: reading applied versions: %w", err)
	}
	return applied, nil
}

// load reads the .sql files at the root of fsys, checks their names and
// returns them sorted by version.
func load(fsys fs.FS) ([]file, error) {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("migrations: listing files: %w", err)
	}
	var files []file
	byVersion := make(map[int64]string)
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".sql") {
			continue
		}
		version, err := parseName(name)
		if err != nil {
			return nil, err
		}
		if other, dup := byVersion[version]; dup {
			return nil, fmt.Errorf("migrations: %s and %s have the same version %d", other, name, version)
		}
		byVersion[version] = name

		content, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, fmt.Errorf("migrations: reading %s: %w", name, err)
		}
		if strings.TrimSpace(string(content)) == "" {
			return nil, fmt.Errorf("migrations: %s is empty", name)
		}
		sum := sha256.Sum256(content)
		files = append(files, file{
			Migration: Migration{Version: version, Name: name},
			sql:       string(content),
			checksum:  hex.EncodeToString(sum[:]),
		})
	}
	if len(files) == 0 {
		return nil, errors.New("migrations: no .sql files embedded")
	}
	slices.SortFunc(files, func(a, b file) int { return cmp.Compare(a.Version, b.Version) })
	return files, nil
}

// parseName returns the version of a file named NNNN_description.sql: the
// leading digits, which must form a positive int64, followed by an
// underscore and a non-empty description.
func parseName(name string) (int64, error) {
	digits := 0
	for digits < len(name) && name[digits] >= '0' && name[digits] <= '9' {
		digits++
	}
	desc, ok := strings.CutSuffix(name[digits:], ".sql")
	if digits == 0 || !ok || !strings.HasPrefix(desc, "_") || len(desc) < 2 {
		return 0, fmt.Errorf("migrations: file name %q is not of the form NNNN_description.sql", name)
	}
	version, err := strconv.ParseInt(name[:digits], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("migrations: version of %q: %w", name, err)
	}
	if version <= 0 {
		return 0, fmt.Errorf("migrations: version of %q must be greater than zero", name)
	}
	return version, nil
}
