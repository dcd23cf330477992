package synchro

import (
	"database/sql"
	"errors"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/synchrosync/synchro/internal/pgerr"
	"github.com/synchrosync/synchro/internal/pgtest"
)

// rlsSchema is the application schema of the RLS tests, created as the
// superuser (who therefore owns the tables).
const rlsSchema = `
CREATE TABLE lists (
	id text PRIMARY KEY,
	user_id text,
	name text,
	updated_at timestamptz NOT NULL DEFAULT now(),
	deleted_at timestamptz
);
CREATE TABLE items (
	id text PRIMARY KEY,
	list_id text NOT NULL REFERENCES lists (id),
	title text,
	updated_at timestamptz NOT NULL DEFAULT now(),
	deleted_at timestamptz
);
CREATE TABLE notes (
	id text PRIMARY KEY,
	item_id text NOT NULL REFERENCES items (id),
	body text,
	updated_at timestamptz NOT NULL DEFAULT now(),
	deleted_at timestamptz
);
CREATE TABLE categories (
	id text PRIMARY KEY,
	name text
);
CREATE TABLE shared_docs (
	id text PRIMARY KEY,
	user_id text NULL,
	body text,
	updated_at timestamptz NOT NULL DEFAULT now(),
	deleted_at timestamptz
);
CREATE TABLE tasks (
	id text PRIMARY KEY,
	user_id text NOT NULL,
	list_id text NULL REFERENCES lists (id),
	updated_at timestamptz NOT NULL DEFAULT now(),
	deleted_at timestamptz
);
CREATE TABLE team_docs (
	id text PRIMARY KEY,
	user_id text NOT NULL,
	team_id text NOT NULL,
	updated_at timestamptz NOT NULL DEFAULT now(),
	deleted_at timestamptz
);
CREATE SCHEMA app;
GRANT USAGE ON SCHEMA app TO synchro_app;
CREATE TABLE app.settings (
	id text PRIMARY KEY,
	user_id text NOT NULL,
	value text,
	updated_at timestamptz NOT NULL DEFAULT now(),
	deleted_at timestamptz
);
CREATE TABLE app.setting_notes (
	id text PRIMARY KEY,
	setting_id text NOT NULL REFERENCES app.settings (id),
	updated_at timestamptz NOT NULL DEFAULT now(),
	deleted_at timestamptz
);
GRANT ALL ON ALL TABLES IN SCHEMA app TO synchro_app;
`

// rlsData is inserted as the superuser, for the users alice and bob.
const rlsData = `
INSERT INTO lists (id, user_id, name) VALUES ('list-a', 'alice', 'A'), ('list-b', 'bob', 'B');
INSERT INTO items (id, list_id, title) VALUES ('item-a', 'list-a', 'a'), ('item-b', 'list-b', 'b');
INSERT INTO notes (id, item_id, body) VALUES ('note-a', 'item-a', 'a'), ('note-b', 'item-b', 'b');
INSERT INTO categories (id, name) VALUES ('cat-1', 'one'), ('cat-2', 'two');
INSERT INTO shared_docs (id, user_id, body) VALUES ('doc-a', 'alice', 'a'), ('doc-b', 'bob', 'b'), ('doc-g', NULL, 'g'), ('doc-e', '', 'e');
INSERT INTO tasks (id, user_id, list_id) VALUES ('task-a', 'alice', 'list-a'), ('task-b', 'bob', NULL);
INSERT INTO team_docs (id, user_id, team_id) VALUES ('team-a', 'alice', 't1');
INSERT INTO app.settings (id, user_id, value) VALUES ('set-a', 'alice', 'a'), ('set-b', 'bob', 'b');
INSERT INTO app.setting_notes (id, setting_id) VALUES ('sn-a', 'set-a'), ('sn-b', 'set-b');
`

// rlsRegistry registers the tables of rlsSchema.
func rlsRegistry(t *testing.T) *Registry {
	t.Helper()
	reg := NewRegistry()
	reg.Register(&TableConfig{TableName: "lists", OwnerColumn: "user_id"})
	reg.Register(&TableConfig{TableName: "items", ParentTable: "lists", ParentFKCol: "list_id"})
	reg.Register(&TableConfig{TableName: "notes", ParentTable: "items", ParentFKCol: "item_id"})
	reg.Register(&TableConfig{TableName: "categories"})
	reg.Register(&TableConfig{TableName: "shared_docs", OwnerColumn: "user_id", AllowGlobalRead: true})
	reg.Register(&TableConfig{TableName: "tasks", OwnerColumn: "user_id", ParentTable: "lists", ParentFKCol: "list_id"})
	reg.Register(&TableConfig{TableName: "team_docs", OwnerColumn: "user_id", BucketByColumn: "team_id", BucketPrefix: "team:"})
	reg.Register(&TableConfig{TableName: "app.settings", OwnerColumn: "user_id"})
	reg.Register(&TableConfig{TableName: "app.setting_notes", ParentTable: "app.settings", ParentFKCol: "setting_id"})
	if err := reg.Validate(); err != nil {
		t.Fatal(err)
	}
	return reg
}

// rlsApply runs stmts in one transaction as db's role.
func rlsApply(t *testing.T, db *sql.DB, stmts []string) {
	t.Helper()
	ctx := t.Context()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback() }()
	for _, stmt := range stmts {
		if _, err := tx.ExecContext(ctx, stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}

// rlsIDs returns the sorted ids of table as q sees them.
func rlsIDs(t *testing.T, q DB, table string) []string {
	t.Helper()
	rows, err := q.QueryContext(t.Context(), `SELECT id FROM `+table+` ORDER BY id`)
	if err != nil {
		t.Fatalf("reading %s: %v", table, err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return ids
}

// rlsAsUser runs fn as the application role in a transaction authenticated
// as user (none when user is empty), then rolls the transaction back.
func rlsAsUser(t *testing.T, db *sql.DB, user string, fn func(tx *sql.Tx)) {
	t.Helper()
	tx, err := db.BeginTx(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback() }()
	if user != "" {
		if err := SetAuthContext(t.Context(), tx, user); err != nil {
			t.Fatal(err)
		}
	}
	fn(tx)
}

func TestRLSPolicies(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDatabase(t)
	ctx := t.Context()
	if _, err := db.Super.ExecContext(ctx, rlsSchema); err != nil {
		t.Fatal(err)
	}
	stmts := GenerateRLSPolicies(rlsRegistry(t))
	rlsApply(t, db.Super, stmts)
	rlsApply(t, db.Super, stmts) // idempotent
	if _, err := db.Super.ExecContext(ctx, rlsData); err != nil {
		t.Fatal(err)
	}

	t.Run("catalog", func(t *testing.T) {
		rows, err := db.Super.QueryContext(ctx, `
			SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity
			FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
			WHERE c.relkind = 'r' AND n.nspname IN ('public', 'app')`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		n := 0
		for rows.Next() {
			var name string
			var enabled, forced bool
			if err := rows.Scan(&name, &enabled, &forced); err != nil {
				t.Fatal(err)
			}
			n++
			if !enabled || forced {
				t.Errorf("%s: row security %v, forced %v; want enabled, not forced", name, enabled, forced)
			}
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		if n != 9 {
			t.Errorf("%d tables, want 9", n)
		}

		var policies []string
		prows, err := db.Super.QueryContext(ctx, `SELECT schemaname || '.' || tablename || ':' || policyname FROM pg_policies ORDER BY 1`)
		if err != nil {
			t.Fatal(err)
		}
		defer prows.Close()
		for prows.Next() {
			var p string
			if err := prows.Scan(&p); err != nil {
				t.Fatal(err)
			}
			policies = append(policies, p)
		}
		if err := prows.Err(); err != nil {
			t.Fatal(err)
		}
		want := []string{
			"app.settings:synchro_delete_settings", "app.settings:synchro_insert_settings",
			"app.settings:synchro_read_settings", "app.settings:synchro_update_settings",
			"public.categories:synchro_read_categories",
		}
		for _, kind := range []string{"delete", "insert", "read", "update"} {
			want = append(want, "app.setting_notes:synchro_"+kind+"_setting_notes")
		}
		for _, tbl := range []string{"items", "lists", "notes", "shared_docs", "tasks"} {
			for _, kind := range []string{"delete", "insert", "read", "update"} {
				want = append(want, "public."+tbl+":synchro_"+kind+"_"+tbl)
			}
		}
		for _, kind := range []string{"delete", "insert", "update"} {
			want = append(want, "public.team_docs:synchro_"+kind+"_team_docs")
		}
		slices.Sort(want)
		if !slices.Equal(policies, want) {
			t.Errorf("policies:\n got %q\nwant %q", policies, want)
		}
	})

	t.Run("superuser sees everything", func(t *testing.T) {
		if got := rlsIDs(t, db.Super, "lists"); !slices.Equal(got, []string{"list-a", "list-b"}) {
			t.Errorf("lists = %q", got)
		}
	})

	t.Run("alice reads", func(t *testing.T) {
		rlsAsUser(t, db.App, "alice", func(tx *sql.Tx) {
			for _, tc := range []struct {
				table string
				want  []string
			}{
				{"lists", []string{"list-a"}},
				{"items", []string{"item-a"}},
				{"notes", []string{"note-a"}},
				{"categories", []string{"cat-1", "cat-2"}},
				{"shared_docs", []string{"doc-a", "doc-e", "doc-g"}},
				{"tasks", []string{"task-a"}},
				{"team_docs", nil}, // bucketed by team_id: no read policy
				{`"app"."settings"`, []string{"set-a"}},
				{`"app"."setting_notes"`, []string{"sn-a"}},
			} {
				if got := rlsIDs(t, tx, tc.table); !slices.Equal(got, tc.want) {
					t.Errorf("%s: alice sees %q, want %q", tc.table, got, tc.want)
				}
			}
		})
	})

	t.Run("bob reads", func(t *testing.T) {
		rlsAsUser(t, db.App, "bob", func(tx *sql.Tx) {
			for _, tc := range []struct {
				table string
				want  []string
			}{
				{"lists", []string{"list-b"}},
				{"items", []string{"item-b"}},
				{"notes", []string{"note-b"}},
				{"shared_docs", []string{"doc-b", "doc-e", "doc-g"}},
				{"tasks", []string{"task-b"}},
				{`"app"."settings"`, []string{"set-b"}},
				{`"app"."setting_notes"`, []string{"sn-b"}},
			} {
				if got := rlsIDs(t, tx, tc.table); !slices.Equal(got, tc.want) {
					t.Errorf("%s: bob sees %q, want %q", tc.table, got, tc.want)
				}
			}
		})
	})

	t.Run("no auth context", func(t *testing.T) {
		rlsAsUser(t, db.App, "", func(tx *sql.Tx) {
			for _, tc := range []struct {
				table string
				want  []string
			}{
				{"lists", nil},
				{"items", nil},
				{"notes", nil},
				{"categories", []string{"cat-1", "cat-2"}},
				{"shared_docs", []string{"doc-e", "doc-g"}},
				{"tasks", nil},
				{`"app"."settings"`, nil},
				{`"app"."setting_notes"`, nil},
			} {
				if got := rlsIDs(t, tx, tc.table); !slices.Equal(got, tc.want) {
					t.Errorf("%s: anonymous sees %q, want %q", tc.table, got, tc.want)
				}
			}
		})
	})

	t.Run("alice writes her own rows", func(t *testing.T) {
		rlsAsUser(t, db.App, "alice", func(tx *sql.Tx) {
			for _, stmt := range []string{
				`INSERT INTO lists (id, user_id, name) VALUES ('list-a2', 'alice', 'A2') RETURNING updated_at`,
				`INSERT INTO items (id, list_id, title) VALUES ('item-a2', 'list-a2', 'a2') RETURNING updated_at`,
				`INSERT INTO notes (id, item_id, body) VALUES ('note-a2', 'item-a2', 'a2') RETURNING updated_at`,
				`INSERT INTO shared_docs (id, user_id) VALUES ('doc-a2', 'alice')`,
				`INSERT INTO tasks (id, user_id, list_id) VALUES ('task-a2', 'alice', 'list-a'), ('task-a3', 'alice', NULL)`,
				`INSERT INTO team_docs (id, user_id, team_id) VALUES ('team-a2', 'alice', 't1')`,
				`INSERT INTO app.settings (id, user_id, value) VALUES ('set-a2', 'alice', 'x')`,
				`INSERT INTO app.setting_notes (id, setting_id) VALUES ('sn-a2', 'set-a2')`,
				`UPDATE lists SET name = 'renamed' WHERE id = 'list-a'`,
				`UPDATE items SET title = 'moved', list_id = 'list-a2' WHERE id = 'item-a'`,
				`UPDATE notes SET deleted_at = now() WHERE id = 'note-a'`,
				`UPDATE app.settings SET value = 'y' WHERE id = 'set-a'`,
				`DELETE FROM notes WHERE id = 'note-a2'`,
				`DELETE FROM tasks WHERE id = 'task-a3'`,
			} {
				res, err := tx.ExecContext(ctx, stmt)
				if err != nil {
					t.Fatalf("%s: %v", stmt, err)
				}
				if n, err := res.RowsAffected(); err != nil || n == 0 {
					t.Errorf("%s: %d rows affected (%v), want at least 1", stmt, n, err)
				}
			}
			if got := rlsIDs(t, tx, "items"); !slices.Equal(got, []string{"item-a", "item-a2"}) {
				t.Errorf("items after writes: %q", got)
			}
		})
	})

	t.Run("alice cannot write for bob", func(t *testing.T) {
		for _, stmt := range []string{
			`INSERT INTO lists (id, user_id, name) VALUES ('list-x', 'bob', 'X')`,
			`INSERT INTO lists (id, user_id, name) VALUES ('list-x', NULL, 'X')`,
			`INSERT INTO items (id, list_id, title) VALUES ('item-x', 'list-b', 'x')`,
			`INSERT INTO notes (id, item_id, body) VALUES ('note-x', 'item-b', 'x')`,
			`INSERT INTO shared_docs (id, user_id) VALUES ('doc-x', NULL)`,
			`INSERT INTO tasks (id, user_id, list_id) VALUES ('task-x', 'alice', 'list-b')`,
			`INSERT INTO tasks (id, user_id, list_id) VALUES ('task-x', 'bob', NULL)`,
			`INSERT INTO team_docs (id, user_id, team_id) VALUES ('team-x', 'bob', 't1')`,
			`INSERT INTO app.settings (id, user_id, value) VALUES ('set-x', 'bob', 'x')`,
			`INSERT INTO app.setting_notes (id, setting_id) VALUES ('sn-x', 'set-b')`,
			`INSERT INTO categories (id, name) VALUES ('cat-x', 'x')`,
			`UPDATE lists SET user_id = 'bob' WHERE id = 'list-a'`,
			`UPDATE items SET list_id = 'list-b' WHERE id = 'item-a'`,
		} {
			rlsAsUser(t, db.App, "alice", func(tx *sql.Tx) {
				_, err := tx.ExecContext(ctx, stmt)
				if code := pgerr.Code(err); code != pgerr.InsufficientPrivilege {
					t.Errorf("%s: error %v (SQLSTATE %q), want SQLSTATE 42501", stmt, err, code)
				}
			})
		}
	})

	t.Run("alice cannot touch bob's or global rows", func(t *testing.T) {
		rlsAsUser(t, db.App, "alice", func(tx *sql.Tx) {
			for _, stmt := range []string{
				`UPDATE lists SET name = 'x' WHERE id = 'list-b'`,
				`UPDATE items SET title = 'x' WHERE id = 'item-b'`,
				`UPDATE notes SET body = 'x' WHERE id = 'note-b'`,
				`UPDATE shared_docs SET body = 'x' WHERE id IN ('doc-b', 'doc-g', 'doc-e')`,
				`UPDATE app.settings SET value = 'x' WHERE id = 'set-b'`,
				`UPDATE categories SET name = 'x'`,
				`DELETE FROM items WHERE id = 'item-b'`,
				`DELETE FROM shared_docs WHERE id = 'doc-g'`,
				`DELETE FROM categories`,
			} {
				res, err := tx.ExecContext(ctx, stmt)
				if err != nil {
					t.Fatalf("%s: %v", stmt, err)
				}
				if n, err := res.RowsAffected(); err != nil || n != 0 {
					t.Errorf("%s: %d rows affected (%v), want 0", stmt, n, err)
				}
			}
		})
		// Nothing changed.
		var titles string
		if err := db.Super.QueryRowContext(ctx, `SELECT string_agg(title, ',' ORDER BY id) FROM items`).Scan(&titles); err != nil {
			t.Fatal(err)
		}
		if titles != "a,b" {
			t.Errorf("item titles %q, want a,b", titles)
		}
	})
}

func TestRLSPoliciesLongNames(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDatabase(t)
	ctx := t.Context()
	long1 := strings.Repeat("t", 60) + "001"
	long2 := strings.Repeat("t", 60) + "002"
	for _, name := range []string{long1, long2} {
		if _, err := db.Super.ExecContext(ctx, `CREATE TABLE "`+name+`" (id text PRIMARY KEY, user_id text)`); err != nil {
			t.Fatal(err)
		}
	}
	reg := NewRegistry()
	reg.Register(&TableConfig{TableName: long1, OwnerColumn: "user_id"})
	reg.Register(&TableConfig{TableName: long2, OwnerColumn: "user_id"})
	if err := reg.Validate(); err != nil {
		t.Fatal(err)
	}
	stmts := GenerateRLSPolicies(reg)
	rlsApply(t, db.Super, stmts)
	rlsApply(t, db.Super, stmts)

	var n int
	if err := db.Super.QueryRowContext(ctx, `SELECT count(DISTINCT policyname) FROM pg_policies`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 8 {
		t.Errorf("%d distinct policy names, want 8", n)
	}
	if _, err := db.Super.ExecContext(ctx, `INSERT INTO "`+long1+`" VALUES ('a', 'alice'), ('b', 'bob')`); err != nil {
		t.Fatal(err)
	}
	rlsAsUser(t, db.App, "alice", func(tx *sql.Tx) {
		if got := rlsIDs(t, tx, `"`+long1+`"`); !slices.Equal(got, []string{"a"}) {
			t.Errorf("alice sees %q, want [a]", got)
		}
	})
}

func TestSetAuthContextIsTransactionLocal(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDatabase(t)
	ctx := t.Context()
	if _, err := db.Super.ExecContext(ctx, `CREATE TABLE lists (id text PRIMARY KEY, user_id text)`); err != nil {
		t.Fatal(err)
	}
	reg := NewRegistry()
	reg.Register(&TableConfig{TableName: "lists", OwnerColumn: "user_id"})
	rlsApply(t, db.Super, GenerateRLSPolicies(reg))
	// A row with an empty owner must not match a connection whose setting
	// was reset to the empty string at the end of a transaction.
	if _, err := db.Super.ExecContext(ctx, `INSERT INTO lists VALUES ('a', 'alice'), ('e', '')`); err != nil {
		t.Fatal(err)
	}

	conn, err := db.App.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()

	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := SetAuthContext(ctx, tx, "alice"); err != nil {
		t.Fatal(err)
	}
	var setting sql.NullString
	if err := tx.QueryRowContext(ctx, `SELECT current_setting('app.user_id', true)`).Scan(&setting); err != nil {
		t.Fatal(err)
	}
	if setting.String != "alice" {
		t.Errorf("inside the transaction app.user_id = %q, want alice", setting.String)
	}
	if got := rlsIDs(t, tx, "lists"); !slices.Equal(got, []string{"a"}) {
		t.Errorf("inside the transaction alice sees %q, want [a]", got)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}

	if err := conn.QueryRowContext(ctx, `SELECT current_setting('app.user_id', true)`).Scan(&setting); err != nil {
		t.Fatal(err)
	}
	if setting.Valid && setting.String != "" {
		t.Errorf("after commit app.user_id = %q, want unset", setting.String)
	}
	if got := rlsIDs(t, conn, "lists"); len(got) != 0 {
		t.Errorf("after commit the connection sees %q, want nothing", got)
	}
}

func TestSetAuthContextErrors(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDatabase(t)
	ctx := t.Context()

	if err := SetAuthContext(ctx, nil, "alice"); err == nil {
		t.Error("nil DB: no error")
	}
	if err := SetAuthContext(ctx, db.App, ""); err == nil {
		t.Error("empty user id: no error")
	}

	tx, err := db.App.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	err = SetAuthContext(ctx, tx, "alice")
	if !errors.Is(err, sql.ErrTxDone) || !strings.HasPrefix(err.Error(), "synchro: setting auth context: ") {
		t.Errorf("finished transaction: error %v, want a wrapped sql.ErrTxDone", err)
	}

	// A user id is a parameter, never SQL text.
	tx, err = db.App.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback() }()
	odd := `o'brien"; SELECT 1 --`
	if err := SetAuthContext(ctx, tx, odd); err != nil {
		t.Fatal(err)
	}
	var got string
	if err := tx.QueryRowContext(ctx, `SELECT current_setting('app.user_id')`).Scan(&got); err != nil {
		t.Fatal(err)
	}
	if got != odd {
		t.Errorf("app.user_id = %q, want %q", got, odd)
	}
}

// rlsPolicyStmt matches a DROP or CREATE POLICY statement and captures the
// verb, the quoted policy name and the table.
var rlsPolicyStmt = regexp.MustCompile(`^(DROP POLICY IF EXISTS|CREATE POLICY) ("(?:[^"]|"")+") ON ((?:"(?:[^"]|"")+"\.)?"(?:[^"]|"")+")`)

func TestGenerateRLSPoliciesDeterministic(t *testing.T) {
	t.Parallel()
	long1 := strings.Repeat("x", 58) + "_one"
	long2 := strings.Repeat("x", 58) + "_two"
	build := func() *Registry {
		reg := NewRegistry()
		reg.Register(&TableConfig{TableName: "lists", OwnerColumn: "user_id"})
		reg.Register(&TableConfig{TableName: "items", ParentTable: "lists", ParentFKCol: "list_id"})
		reg.Register(&TableConfig{TableName: "notes", ParentTable: "items", ParentFKCol: "item_id"})
		reg.Register(&TableConfig{TableName: "categories"})
		reg.Register(&TableConfig{TableName: "other.lists", OwnerColumn: "owner"})
		reg.Register(&TableConfig{TableName: long1, OwnerColumn: "user_id"})
		reg.Register(&TableConfig{TableName: long2, OwnerColumn: "user_id"})
		reg.Register(&TableConfig{TableName: "fn_bucketed", OwnerColumn: "user_id", BucketFunction: "app.buckets"})
		if err := reg.Validate(); err != nil {
			t.Fatal(err)
		}
		return reg
	}
	reg := build()
	first := GenerateRLSPolicies(reg)
	if again := GenerateRLSPolicies(reg); !slices.Equal(first, again) {
		t.Fatalf("output differs for the same registry:\n%q\n%q", first, again)
	}
	if again := GenerateRLSPolicies(build()); !slices.Equal(first, again) {
		t.Fatalf("output differs for an equal registry:\n%q\n%q", first, again)
	}

	var tables []string
	created := map[string]bool{}          // table + policy
	dropped := map[string]bool{}          // table + policy
	names := map[string]map[string]bool{} // table -> policy names
	createCount := map[string]int{}       // table -> CREATE POLICY count
	for i, stmt := range first {
		if rest, ok := strings.CutPrefix(stmt, "ALTER TABLE "); ok {
			table, ok := strings.CutSuffix(rest, " ENABLE ROW LEVEL SECURITY")
			if !ok {
				t.Errorf("statement %d: %s", i, stmt)
			}
			tables = append(tables, table)
			continue
		}
		if strings.Contains(stmt, "FORCE") {
			t.Errorf("statement %d forces RLS: %s", i, stmt)
		}
		m := rlsPolicyStmt.FindStringSubmatch(stmt)
		if m == nil {
			t.Fatalf("statement %d is not a policy statement: %s", i, stmt)
		}
		verb, name, table := m[1], m[2], m[3]
		if len(tables) == 0 || tables[len(tables)-1] != table {
			t.Errorf("statement %d is about %s outside its table's block: %s", i, table, stmt)
		}
		raw := strings.ReplaceAll(strings.Trim(name, `"`), `""`, `"`)
		if len(raw) > 63 {
			t.Errorf("policy name %q is %d bytes long", raw, len(raw))
		}
		if names[table] == nil {
			names[table] = map[string]bool{}
		}
		names[table][raw] = true
		key := table + " " + name
		switch verb {
		case "DROP POLICY IF EXISTS":
			if dropped[key] {
				t.Errorf("policy %s dropped twice", key)
			}
			dropped[key] = true
		case "CREATE POLICY":
			if !dropped[key] {
				t.Errorf("policy %s created without being dropped first", key)
			}
			if created[key] {
				t.Errorf("policy %s created twice", key)
			}
			created[key] = true
			createCount[table]++
		}
	}
	wantTables := []string{`"lists"`, `"items"`, `"notes"`, `"categories"`, `"other"."lists"`,
		`"` + long1 + `"`, `"` + long2 + `"`, `"fn_bucketed"`}
	if !slices.Equal(tables, wantTables) {
		t.Errorf("tables %q, want %q", tables, wantTables)
	}
	for table, want := range map[string]int{
		`"lists"`: 4, `"items"`: 4, `"notes"`: 4, `"categories"`: 1, `"other"."lists"`: 4,
		`"` + long1 + `"`: 4, `"` + long2 + `"`: 4, `"fn_bucketed"`: 3,
	} {
		if createCount[table] != want {
			t.Errorf("%s: %d policies, want %d", table, createCount[table], want)
		}
	}
	for table, set := range names {
		if len(set) != 4 {
			t.Errorf("%s: %d distinct policy names, want 4", table, len(set))
		}
	}
	for name := range names[`"`+long1+`"`] {
		if names[`"`+long2+`"`][name] {
			t.Errorf("policy name %q is used for both long tables", name)
		}
	}
	if !created[`"other"."lists" "synchro_read_lists"`] {
		t.Error(`schema-qualified table: no policy "synchro_read_lists" on "other"."lists"`)
	}
	if GenerateRLSPolicies(nil) != nil {
		t.Error("nil registry: statements generated")
	}
}

func TestGenerateRLSPoliciesPredicates(t *testing.T) {
	t.Parallel()
	reg := NewRegistry()
	reg.Register(&TableConfig{TableName: "app.lists", OwnerColumn: "user_id", AllowGlobalRead: true})
	reg.Register(&TableConfig{TableName: "items", ParentTable: "app.lists", ParentFKCol: "list_id"})
	reg.Register(&TableConfig{TableName: "notes", ParentTable: "items", ParentFKCol: "item_id", PushPolicy: PushPolicyDisabled})
	if err := reg.Validate(); err != nil {
		t.Fatal(err)
	}
	const me = `NULLIF(current_setting('app.user_id', true), '')`
	want := []string{
		`ALTER TABLE "app"."lists" ENABLE ROW LEVEL SECURITY`,
		`DROP POLICY IF EXISTS "synchro_read_lists" ON "app"."lists"`,
		`CREATE POLICY "synchro_read_lists" ON "app"."lists" AS PERMISSIVE FOR SELECT TO PUBLIC USING ("user_id"::text = ` + me + ` OR "user_id" IS NULL OR "user_id"::text = '')`,
		`DROP POLICY IF EXISTS "synchro_insert_lists" ON "app"."lists"`,
		`CREATE POLICY "synchro_insert_lists" ON "app"."lists" AS PERMISSIVE FOR INSERT TO PUBLIC WITH CHECK ("user_id"::text = ` + me + `)`,
		`DROP POLICY IF EXISTS "synchro_update_lists" ON "app"."lists"`,
		`CREATE POLICY "synchro_update_lists" ON "app"."lists" AS PERMISSIVE FOR UPDATE TO PUBLIC USING ("user_id"::text = ` + me + `) WITH CHECK ("user_id"::text = ` + me + `)`,
		`DROP POLICY IF EXISTS "synchro_delete_lists" ON "app"."lists"`,
		`CREATE POLICY "synchro_delete_lists" ON "app"."lists" AS PERMISSIVE FOR DELETE TO PUBLIC USING ("user_id"::text = ` + me + `)`,
	}
	got := GenerateRLSPolicies(reg)
	if len(got) < len(want) || !slices.Equal(got[:len(want)], want) {
		t.Fatalf("owner table statements:\n got %q\nwant %q", got, want)
	}

	// The grandchild's read chain uses the root's global read; it is not
	// pushable, so it has no write policy.
	wantNotesRead := `CREATE POLICY "synchro_read_notes" ON "notes" AS PERMISSIVE FOR SELECT TO PUBLIC USING (` +
		`EXISTS (SELECT 1 FROM "items" AS "synchro_parent_1" JOIN "app"."lists" AS "synchro_parent_2"` +
		` ON "synchro_parent_2"."id" = "synchro_parent_1"."list_id"` +
		` WHERE "synchro_parent_1"."id" = "notes"."item_id" AND ("synchro_parent_2"."user_id"::text = ` + me +
		` OR "synchro_parent_2"."user_id" IS NULL OR "synchro_parent_2"."user_id"::text = '')))`
	if !slices.Contains(got, wantNotesRead) {
		t.Errorf("no statement\n%s\nin\n%s", wantNotesRead, strings.Join(got, "\n"))
	}
	for _, stmt := range got {
		if strings.HasPrefix(stmt, "CREATE POLICY") && strings.Contains(stmt, `ON "notes"`) && !strings.Contains(stmt, "FOR SELECT") {
			t.Errorf("write policy on a read-only table: %s", stmt)
		}
		if strings.HasPrefix(stmt, "CREATE POLICY") && !strings.Contains(stmt, "FOR SELECT") && strings.Contains(stmt, "IS NULL OR") {
			t.Errorf("write policy admits global rows: %s", stmt)
		}
	}

	// A child named like the parent alias still refers to its own row.
	reg = NewRegistry()
	reg.Register(&TableConfig{TableName: "lists", OwnerColumn: "user_id"})
	reg.Register(&TableConfig{TableName: "synchro_parent_1", ParentTable: "lists", ParentFKCol: "list_id"})
	got = GenerateRLSPolicies(reg)
	if !slices.ContainsFunc(got, func(s string) bool {
		return strings.Contains(s, `FROM "lists" AS "synchro_ancestor_1" WHERE "synchro_ancestor_1"."id" = "synchro_parent_1"."list_id"`)
	}) {
		t.Errorf("alias clash not avoided:\n%s", strings.Join(got, "\n"))
	}
}
