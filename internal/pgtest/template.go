package pgtest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/synchrosync/synchro/migrations"
)

// templateKind names the template databases test databases are copied from.
type templateKind int

const (
	// plainTemplate is an empty database where AppRole may use and create
	// objects in schema public, and is granted by default privileges what
	// the superuser creates.
	plainTemplate templateKind = iota
	// migratedTemplate is plainTemplate with migrations.Migrate applied and
	// AppRole granted schema synchro and its tables.
	migratedTemplate
)

func (k templateKind) String() string {
	switch k {
	case plainTemplate:
		return "plain"
	case migratedTemplate:
		return "migrated"
	default:
		return fmt.Sprintf("templateKind(%d)", int(k))
	}
}

// template returns the name of the template of kind, creating it on first
// use. A failed creation is retried by the next call.
func (s *server) template(ctx context.Context, kind templateKind) (string, error) {
	s.tmplMu.Lock()
	defer s.tmplMu.Unlock()
	return s.templateLocked(ctx, kind)
}

func (s *server) templateLocked(ctx context.Context, kind templateKind) (string, error) {
	if name, ok := s.tmpls[kind]; ok {
		return name, nil
	}
	name := fmt.Sprintf("synchro_tmpl_%s_%s", s.runID, kind)
	var err error
	switch kind {
	case plainTemplate:
		err = s.createTemplate(ctx, name, "template0", plainTemplateSetup)
	case migratedTemplate:
		var plain string
		if plain, err = s.templateLocked(ctx, plainTemplate); err != nil {
			return "", err
		}
		err = s.createTemplate(ctx, name, plain, migratedTemplateSetup)
	default:
		err = errors.New("unknown kind")
	}
	if err != nil {
		err = fmt.Errorf("creating %s template database %s: %w", kind, name, err)
		dropCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		if dropErr := s.dropDatabase(dropCtx, name); dropErr != nil {
			err = errors.Join(err, dropErr)
		}
		return "", err
	}
	s.tmpls[kind] = name
	return name, nil
}

// createTemplate creates database name as a copy of from, runs setup in it
// as the superuser, and closes every connection to it, so that it can be
// copied. It then refuses new connections: a stray session would make the
// copies fail.
func (s *server) createTemplate(ctx context.Context, name, from string, setup func(context.Context, *sql.DB) error) error {
	if err := s.createDatabase(ctx, name, from); err != nil {
		return err
	}
	db, err := openPool(s.dsn(name, nil))
	if err != nil {
		return err
	}
	setupErr := setup(ctx, db)
	if err := errors.Join(setupErr, db.Close()); err != nil {
		return err
	}
	if _, err := s.admin.ExecContext(ctx, `ALTER DATABASE `+ident(name)+` WITH ALLOW_CONNECTIONS false`); err != nil {
		return fmt.Errorf("closing database to connections: %w", err)
	}
	return s.terminateSessions(ctx, name)
}

// plainTemplateSetup lets AppRole use schema public and whatever the
// superuser creates in the database later.
func plainTemplateSetup(ctx context.Context, db *sql.DB) error {
	role := ident(AppRole)
	return execAll(ctx, db,
		`GRANT USAGE, CREATE ON SCHEMA public TO `+role,
		`ALTER DEFAULT PRIVILEGES GRANT ALL ON TABLES TO `+role,
		`ALTER DEFAULT PRIVILEGES GRANT ALL ON SEQUENCES TO `+role,
		`ALTER DEFAULT PRIVILEGES GRANT ALL ON FUNCTIONS TO `+role,
	)
}

// migratedTemplateSetup applies the migrations and grants AppRole the use of
// schema synchro, as an application grants its runtime role.
func migratedTemplateSetup(ctx context.Context, db *sql.DB) error {
	if err := migrations.Migrate(ctx, db); err != nil {
		return err
	}
	// Exactly the grants package migrations documents, so that every test
	// of the engine as AppRole checks that they suffice.
	return execAll(ctx, db, migrations.Grants(AppRole)...)
}

// execAll runs statements in order, stopping at the first error.
func execAll(ctx context.Context, db *sql.DB, statements ...string) error {
	for _, stmt := range statements {
		if _, err := db.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("%s: %w", stmt, err)
		}
	}
	return nil
}
