package todoapp

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"

	"github.com/jackc/pgx/v5"

	"github.com/synchrosync/synchro"
	"github.com/synchrosync/synchro/migrations"
)

// AppRole is the login role the engine connects as: no SUPERUSER, no
// BYPASSRLS, not the owner of the tables, so PostgreSQL's row-level security
// applies to it as a second wall behind the engine's own checks. Its
// password is random and set again at every start.
const AppRole = "todo_app"

// appSchema is the application's own schema, as an application would keep it
// in its migrations. Every statement is idempotent, so it runs at every
// start.
//
// Ids are UUIDs that clients make up offline. The owner column user_id is
// text, since the demo's user ids are names. The timestamps follow the
// registry's defaults (created_at, updated_at, deleted_at): the engine sets
// updated_at and deleted_at, clients never write them.
const appSchema = `
-- Reference data: every user reads it, only the application writes it.
CREATE TABLE IF NOT EXISTS priorities (
	id         text PRIMARY KEY,
	label      text NOT NULL,
	rank       integer NOT NULL,
	updated_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO priorities (id, label, rank) VALUES
	('low', 'Low', 1),
	('normal', 'Normal', 2),
	('high', 'High', 3)
ON CONFLICT (id) DO NOTHING;

-- A user's lists: the owner column decides who reads and writes them.
CREATE TABLE IF NOT EXISTS lists (
	id         uuid PRIMARY KEY,
	user_id    text NOT NULL,
	name       text NOT NULL,
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now(),
	deleted_at timestamptz
);
CREATE INDEX IF NOT EXISTS lists_user_id_idx ON lists (user_id);

-- Items belong to a list, and so to the list's owner.
CREATE TABLE IF NOT EXISTS items (
	id          uuid PRIMARY KEY,
	list_id     uuid NOT NULL REFERENCES lists (id),
	title       text NOT NULL,
	done        boolean NOT NULL DEFAULT false,
	priority_id text NOT NULL DEFAULT 'normal' REFERENCES priorities (id),
	created_at  timestamptz NOT NULL DEFAULT now(),
	updated_at  timestamptz NOT NULL DEFAULT now(),
	deleted_at  timestamptz
);
CREATE INDEX IF NOT EXISTS items_list_id_idx ON items (list_id);
`

// newRegistry describes the synced tables to synchro.
func newRegistry() (*synchro.Registry, error) {
	reg := synchro.NewRegistry()
	// No owner and no parent: a reference table, in the "global" bucket
	// that every client follows, and read-only for clients.
	reg.Register(&synchro.TableConfig{TableName: "priorities"})
	// Owned by user_id: in the bucket "user:<user_id>", pushable by its
	// owner only.
	reg.Register(&synchro.TableConfig{TableName: "lists", OwnerColumn: "user_id"})
	// A child of lists: in the bucket of its list's owner.
	reg.Register(&synchro.TableConfig{
		TableName:    "items",
		ParentTable:  "lists",
		ParentFKCol:  "list_id",
		Dependencies: []string{"lists"},
	})
	if err := reg.Validate(); err != nil {
		return nil, err
	}
	return reg, nil
}

// setUpDatabase brings the database to the state the server needs, as the
// tables' owner (the superuser of super): the application's tables, the
// synchro schema, the row-level security policies of the registry, and the
// role AppRole with what it may use. It returns the password it gave
// AppRole.
func setUpDatabase(ctx context.Context, super *sql.DB, reg *synchro.Registry) (string, error) {
	if err := super.PingContext(ctx); err != nil {
		return "", fmt.Errorf("connecting to the database: %w", err)
	}
	var walLevel string
	if err := super.QueryRowContext(ctx, `SHOW wal_level`).Scan(&walLevel); err != nil {
		return "", fmt.Errorf("reading wal_level: %w", err)
	}
	if walLevel != "logical" {
		return "", fmt.Errorf("the server runs with wal_level=%s; change capture needs wal_level=logical (ALTER SYSTEM SET wal_level = logical, then restart PostgreSQL)", walLevel)
	}
	if _, err := super.ExecContext(ctx, appSchema); err != nil {
		return "", fmt.Errorf("creating the application's tables: %w", err)
	}
	if err := migrations.Migrate(ctx, super); err != nil {
		return "", fmt.Errorf("migrating schema synchro: %w", err)
	}
	password, err := ensureAppRole(ctx, super)
	if err != nil {
		return "", err
	}

	// The grants and the policies, in one transaction.
	tx, err := super.BeginTx(ctx, nil)
	if err != nil {
		return "", err
	}
	defer func() { _ = tx.Rollback() }()
	role := pgx.Identifier{AppRole}.Sanitize()
	// The library's state, as package migrations asks the application to
	// grant it.
	statements := migrations.Grants(AppRole)
	statements = append(statements,
		// The application's tables: clients write lists and items, and
		// only read priorities.
		`GRANT USAGE ON SCHEMA public TO `+role,
		`GRANT SELECT, INSERT, UPDATE, DELETE ON lists, items TO `+role,
		`GRANT SELECT ON priorities TO `+role,
	)
	// Row-level security matching the registry: AppRole reads the rows of
	// the user named by app.user_id (which the engine sets), and the
	// reference table.
	statements = append(statements, synchro.GenerateRLSPolicies(reg)...)
	for _, stmt := range statements {
		if _, err := tx.ExecContext(ctx, stmt); err != nil {
			return "", fmt.Errorf("%s: %w", stmt, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return "", fmt.Errorf("committing the grants and policies: %w", err)
	}
	return password, nil
}

// ensureAppRole creates AppRole when it is missing, gives it a new random
// password, and makes sure it is subject to row-level security.
func ensureAppRole(ctx context.Context, super *sql.DB) (string, error) {
	role := pgx.Identifier{AppRole}.Sanitize()
	// Tolerates a concurrent creation by another server on the same
	// database.
	create := `DO $$ BEGIN CREATE ROLE ` + role + `;
		EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$`
	if _, err := super.ExecContext(ctx, create); err != nil {
		return "", fmt.Errorf("creating role %s: %w", AppRole, err)
	}
	secret := make([]byte, 18)
	if _, err := rand.Read(secret); err != nil {
		return "", err
	}
	password := hex.EncodeToString(secret)
	// ALTER ROLE takes no parameters: let the server quote the password.
	var quoted string
	if err := super.QueryRowContext(ctx, `SELECT quote_literal($1::text)`, password).Scan(&quoted); err != nil {
		return "", fmt.Errorf("quoting the password of %s: %w", AppRole, err)
	}
	alter := `ALTER ROLE ` + role + ` WITH LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOREPLICATION PASSWORD ` + quoted
	if _, err := super.ExecContext(ctx, alter); err != nil {
		return "", fmt.Errorf("setting up role %s: %w", AppRole, err)
	}
	return password, nil
}

// createDatabase creates database name on the server of super when it does
// not exist yet.
func createDatabase(ctx context.Context, super *sql.DB, name string) error {
	var exists bool
	if err := super.QueryRowContext(ctx, `SELECT EXISTS (SELECT FROM pg_database WHERE datname = $1)`, name).Scan(&exists); err != nil {
		return fmt.Errorf("looking for database %s: %w", name, err)
	}
	if exists {
		return nil
	}
	if _, err := super.ExecContext(ctx, `CREATE DATABASE `+pgx.Identifier{name}.Sanitize()); err != nil {
		return fmt.Errorf("creating database %s: %w", name, err)
	}
	return nil
}

// withUser returns the URL rawURL with its user replaced by user (and
// password when not empty) and, when database is not empty, its database.
func withUser(rawURL string, user *url.Userinfo, database string) (string, error) {
	u, err := parseURL(rawURL)
	if err != nil {
		return "", err
	}
	u.User = user
	q := u.Query()
	// Parameters would override the user and the path.
	q.Del("user")
	q.Del("password")
	if database != "" {
		u.Path = "/" + database
		u.RawPath = ""
		q.Del("dbname")
		q.Del("database")
	}
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// parseURL parses a postgres:// URL. Its errors never quote the URL, which
// may hold a password.
func parseURL(rawURL string) (*url.URL, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return nil, errors.New("want a postgres://USER:PASSWORD@HOST:PORT/DATABASE URL")
	}
	return u, nil
}
