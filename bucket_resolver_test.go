package synchro

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"log/slog"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/synchrosync/synchro/internal/bucket"
	"github.com/synchrosync/synchro/internal/pgtest"
)

// brSchema holds the tables whose parent chains the resolvers walk. Key
// types differ on purpose: the chain query casts the key to each type.
const brSchema = `
CREATE TABLE lists (id bigint PRIMARY KEY, user_id text);
CREATE TABLE items (id text PRIMARY KEY, list_id bigint REFERENCES lists(id));
CREATE TABLE subitems (id uuid PRIMARY KEY, item_id text REFERENCES items(id));
CREATE TABLE boards (id text PRIMARY KEY, owner_id text);
CREATE TABLE cards (id text PRIMARY KEY, board_id text REFERENCES boards(id));
INSERT INTO lists VALUES (1, 'u1'), (2, NULL);
INSERT INTO items VALUES ('i1', 1), ('i2', 2);
INSERT INTO boards VALUES ('b1', 'u3'), ('b2', NULL);
`

// brFunctions creates the bucket functions of the SQLBucketResolver tests.
const brFunctions = `
CREATE SCHEMA "Rules";

-- Echoes its arguments, so tests see what arrived, plus an empty string, a
-- NULL and a duplicate that the resolver must drop.
CREATE FUNCTION "Rules"."TeamBuckets"(table_name text, operation text, new_row jsonb, old_row jsonb)
RETURNS SETOF text LANGUAGE plpgsql AS $$
BEGIN
	RETURN NEXT 'op:' || operation;
	RETURN NEXT 'table:' || table_name;
	IF new_row IS NOT NULL THEN
		RETURN NEXT 'team:' || (new_row->>'team_id');
	END IF;
	IF old_row IS NOT NULL THEN
		RETURN NEXT 'was:' || (old_row->>'team_id');
	END IF;
	RETURN NEXT '';
	RETURN NEXT NULL;
	RETURN NEXT 'op:' || operation;
END
$$;

-- A scalar (not set-returning) function.
CREATE FUNCTION global_buckets(table_name text, operation text, new_row jsonb, old_row jsonb)
RETURNS text LANGUAGE sql AS $$
	SELECT 'fn:' || table_name || ':' || coalesce(new_row->>'id', old_row->>'id')
$$;

-- One bucket per key of new_row: key, JSON type and text value.
CREATE FUNCTION typed_buckets(table_name text, operation text, new_row jsonb, old_row jsonb)
RETURNS SETOF text LANGUAGE sql AS $$
	SELECT key || '=' || jsonb_typeof(value) || ':' || coalesce(value #>> '{}', '')
	  FROM jsonb_each(new_row)
$$;

-- new_row->>'n' buckets, with repeats, to test the fanout limit.
CREATE FUNCTION fanout_buckets(table_name text, operation text, new_row jsonb, old_row jsonb)
RETURNS SETOF text LANGUAGE sql AS $$
	SELECT 'b:' || i FROM generate_series(1, (new_row->>'n')::int) AS i
	UNION ALL
	SELECT 'b:1'
$$;

CREATE FUNCTION failing_buckets(table_name text, operation text, new_row jsonb, old_row jsonb)
RETURNS SETOF text LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION 'boom for %', table_name;
END
$$;

-- Not usable as bucket functions.
CREATE FUNCTION int_buckets(text, text, jsonb, jsonb) RETURNS SETOF int LANGUAGE sql AS 'SELECT 1';
CREATE FUNCTION short_buckets(text) RETURNS text LANGUAGE sql AS 'SELECT $1';
CREATE PROCEDURE proc_buckets(text, text, jsonb, jsonb) LANGUAGE sql AS 'SELECT 1';
`

// brSetup returns a database holding brSchema and brFunctions.
func brSetup(t *testing.T) *sql.DB {
	t.Helper()
	db := pgtest.NewDatabase(t).Super
	for _, stmt := range []string{brSchema, brFunctions} {
		if _, err := db.ExecContext(t.Context(), stmt); err != nil {
			t.Fatalf("setting up the schema: %v", err)
		}
	}
	return db
}

// brRegistry registers cfgs without validating them (some tests need an
// invalid registry).
func brRegistry(cfgs ...*TableConfig) *Registry {
	reg := NewRegistry()
	for _, c := range cfgs {
		reg.Register(c)
	}
	return reg
}

// brOwnershipTables are the tables of the JoinResolver tests.
func brOwnershipTables() []*TableConfig {
	return []*TableConfig{
		{TableName: "categories"},
		{TableName: "lists", OwnerColumn: "user_id"},
		{TableName: "items", ParentTable: "lists", ParentFKCol: "list_id"},
		{TableName: "subitems", ParentTable: "items", ParentFKCol: "item_id"},
		{TableName: "boards", OwnerColumn: "owner_id", AllowGlobalRead: true},
		{TableName: "cards", ParentTable: "boards", ParentFKCol: "board_id"},
		{TableName: "private_notes", OwnerColumn: "owner_id"},
		{TableName: "team_docs", BucketByColumn: "team_id", BucketPrefix: "team:"},
	}
}

// brOwnershipCase is one change and the buckets the default rules give it.
type brOwnershipCase struct {
	name  string
	table string
	op    Operation
	data  map[string]any
	old   map[string]any // carried by the context when set
	want  []string
}

var brOwnershipCases = []brOwnershipCase{
	{name: "owner", table: "lists", op: OpInsert, data: map[string]any{"id": int64(1), "user_id": "u1"}, want: []string{"user:u1"}},
	{name: "owner int value", table: "private_notes", op: OpUpdate, data: map[string]any{"owner_id": int64(42)}, want: []string{"user:42"}},
	{name: "owner NULL", table: "private_notes", op: OpInsert, data: map[string]any{"owner_id": nil}, want: []string{}},
	{name: "owner missing", table: "private_notes", op: OpInsert, data: map[string]any{"id": "n1"}, want: []string{}},
	{name: "owner empty", table: "private_notes", op: OpInsert, data: map[string]any{"owner_id": ""}, want: []string{}},
	{name: "owner NULL global", table: "boards", op: OpInsert, data: map[string]any{"owner_id": nil}, want: []string{"global"}},
	{name: "owner global read", table: "boards", op: OpInsert, data: map[string]any{"owner_id": "u2"}, want: []string{"user:u2"}},
	{name: "custom prefix", table: "team_docs", op: OpInsert, data: map[string]any{"team_id": json.Number("7")}, want: []string{"team:7"}},
	{name: "child", table: "items", op: OpInsert, data: map[string]any{"id": "i1", "list_id": int64(1)}, want: []string{"user:u1"}},
	{name: "child fk as text", table: "items", op: OpUpdate, data: map[string]any{"list_id": "1"}, want: []string{"user:u1"}},
	{name: "child NULL fk", table: "items", op: OpInsert, data: map[string]any{"list_id": nil}, want: []string{}},
	{name: "child missing parent", table: "items", op: OpInsert, data: map[string]any{"list_id": int64(999)}, want: []string{}},
	{name: "child NULL root owner", table: "items", op: OpInsert, data: map[string]any{"list_id": int64(2)}, want: []string{}},
	{name: "child NULL root owner global", table: "cards", op: OpInsert, data: map[string]any{"board_id": "b2"}, want: []string{"global"}},
	{name: "child global read root", table: "cards", op: OpInsert, data: map[string]any{"board_id": "b1"}, want: []string{"user:u3"}},
	{name: "grandchild", table: "subitems", op: OpInsert, data: map[string]any{"item_id": "i1"}, want: []string{"user:u1"}},
	{name: "grandchild NULL root owner", table: "subitems", op: OpInsert, data: map[string]any{"item_id": "i2"}, want: []string{}},
	{name: "reference", table: "categories", op: OpInsert, data: map[string]any{"id": "c1"}, want: []string{"global"}},
	{name: "delete", table: "lists", op: OpDelete, data: map[string]any{"id": int64(1), "user_id": "u1"}, want: []string{"user:u1"}},
	{name: "delete from old row", table: "items", op: OpDelete, old: map[string]any{"list_id": int64(1)}, want: []string{"user:u1"}},
	{name: "delete without values", table: "lists", op: OpDelete, want: []string{}},
}

// brAssign runs AssignBuckets for c, with c.old in the context.
func brAssign(t *testing.T, a bucketAssigner, c brOwnershipCase) ([]string, error) {
	t.Helper()
	ctx := t.Context()
	if c.old != nil {
		ctx = bucket.WithOldRow(ctx, c.old)
	}
	return a.AssignBuckets(ctx, c.table, "rec-1", c.op, c.data)
}

func TestJoinResolverAssignBuckets(t *testing.T) {
	t.Parallel()
	db := brSetup(t)
	reg := brRegistry(brOwnershipTables()...)
	if err := reg.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	r := NewJoinResolverWithDB(reg, db)
	for _, c := range brOwnershipCases {
		t.Run(c.name, func(t *testing.T) {
			got, err := brAssign(t, r, c)
			if err != nil {
				t.Fatalf("AssignBuckets: %v", err)
			}
			if got == nil || !slices.Equal(got, c.want) {
				t.Errorf("AssignBuckets = %#v, want %#v", got, c.want)
			}
		})
	}

	t.Run("unregistered table", func(t *testing.T) {
		_, err := r.AssignBuckets(t.Context(), "nope", "1", OpInsert, map[string]any{})
		if !errors.Is(err, ErrTableNotRegistered) {
			t.Errorf("AssignBuckets = %v, want ErrTableNotRegistered", err)
		}
	})
}

func TestJoinResolverAssignBucketsNeedsDB(t *testing.T) {
	t.Parallel()
	reg := brRegistry(&TableConfig{TableName: "lists", OwnerColumn: "user_id"})
	for _, r := range []*JoinResolver{NewJoinResolver(reg), NewJoinResolverWithDB(reg, nil)} {
		_, err := r.AssignBuckets(t.Context(), "lists", "1", OpInsert, map[string]any{"user_id": "u1"})
		if err == nil || !strings.Contains(err.Error(), "NewJoinResolverWithDB") {
			t.Errorf("AssignBuckets without a DB = %v, want an error naming NewJoinResolverWithDB", err)
		}
	}
	// ResolveOwner keeps working with the caller's handle.
	got, err := NewJoinResolver(reg).ResolveOwner(t.Context(), nil, "lists", "1", map[string]any{"user_id": "u1"})
	if err != nil || !slices.Equal(got, []string{"user:u1"}) {
		t.Errorf("ResolveOwner = %v, %v; want [user:u1]", got, err)
	}
}

// brSQLTables are the tables of the SQLBucketResolver tests.
func brSQLTables() []*TableConfig {
	return append(brOwnershipTables(),
		&TableConfig{TableName: "docs", BucketFunction: "Rules.TeamBuckets"},
		&TableConfig{TableName: "typed", BucketFunction: "typed_buckets"},
		&TableConfig{TableName: "fanout", BucketFunction: "public.fanout_buckets"},
		&TableConfig{TableName: "failing", OwnerColumn: "owner_id", BucketFunction: "failing_buckets"},
	)
}

// brNewSQL builds a SQLBucketResolver over the brSQLTables.
func brNewSQL(t *testing.T, cfg SQLBucketResolverConfig) *SQLBucketResolver {
	t.Helper()
	if cfg.Registry == nil {
		cfg.Registry = brRegistry(brSQLTables()...)
		if err := cfg.Registry.Validate(); err != nil {
			t.Fatalf("Validate: %v", err)
		}
	}
	r, err := NewSQLBucketResolver(cfg)
	if err != nil {
		t.Fatalf("NewSQLBucketResolver: %v", err)
	}
	return r
}

func TestSQLBucketResolverFunctions(t *testing.T) {
	t.Parallel()
	db := brSetup(t)
	r := brNewSQL(t, SQLBucketResolverConfig{DB: db, GlobalFunction: "global_buckets"})

	tests := []brOwnershipCase{
		{
			name: "create", table: "docs", op: OpInsert,
			data: map[string]any{"id": "d1", "team_id": "t1"},
			want: []string{"op:create", "table:docs", "team:t1"},
		},
		{
			name: "update with old row", table: "docs", op: OpUpdate,
			data: map[string]any{"id": "d1", "team_id": "t2"},
			old:  map[string]any{"id": "d1", "team_id": "t1"},
			want: []string{"op:update", "table:docs", "team:t2", "was:t1"},
		},
		{
			name: "delete with old row only", table: "docs", op: OpDelete,
			old:  map[string]any{"id": "d1", "team_id": "t1"},
			want: []string{"op:delete", "table:docs", "was:t1"},
		},
		{
			name: "delete with data and old row", table: "docs", op: OpDelete,
			data: map[string]any{"id": "d1", "team_id": "t3"},
			old:  map[string]any{"id": "d1", "team_id": "t1"},
			want: []string{"op:delete", "table:docs", "team:t3", "was:t1"},
		},
		{
			name: "global function for an owner table", table: "lists", op: OpInsert,
			data: map[string]any{"id": "L1", "user_id": "u1"},
			want: []string{"fn:lists:L1"},
		},
		{
			name: "global function for a child", table: "items", op: OpDelete,
			old:  map[string]any{"id": "i9"},
			want: []string{"fn:items:i9"},
		},
		{
			name: "fanout under the limit", table: "fanout", op: OpInsert,
			data: map[string]any{"n": int64(3)},
			want: []string{"b:1", "b:2", "b:3"},
		},
	}
	for _, c := range tests {
		t.Run(c.name, func(t *testing.T) {
			got, err := brAssign(t, r, c)
			if err != nil {
				t.Fatalf("AssignBuckets: %v", err)
			}
			if !slices.Equal(got, c.want) {
				t.Errorf("AssignBuckets = %#v, want %#v", got, c.want)
			}
		})
	}

	t.Run("value types", func(t *testing.T) {
		data := map[string]any{
			"raw":    json.RawMessage(`{"a":[1,2]}`),
			"num":    json.Number("12345678901234567890"),
			"int":    int64(-7),
			"float":  1.5,
			"bool":   true,
			"text":   "héllo",
			"null":   nil,
			"nested": []any{"x", int64(1)},
		}
		got, err := r.AssignBuckets(t.Context(), "typed", "1", OpInsert, data)
		if err != nil {
			t.Fatalf("AssignBuckets: %v", err)
		}
		want := []string{
			`raw=object:{"a": [1, 2]}`,
			"num=number:12345678901234567890",
			"int=number:-7",
			"float=number:1.5",
			"bool=boolean:true",
			"text=string:héllo",
			"null=null:",
			`nested=array:["x", 1]`,
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("AssignBuckets = %q, want %q", got, want)
		}
	})

	t.Run("unencodable value", func(t *testing.T) {
		_, err := r.AssignBuckets(t.Context(), "docs", "1", OpInsert, map[string]any{"x": math.NaN()})
		if err == nil || !strings.Contains(err.Error(), "new_row") {
			t.Errorf("AssignBuckets with NaN = %v, want an encoding error", err)
		}
	})

	t.Run("unregistered table", func(t *testing.T) {
		_, err := r.AssignBuckets(t.Context(), "nope", "1", OpInsert, map[string]any{})
		if !errors.Is(err, ErrTableNotRegistered) {
			t.Errorf("AssignBuckets = %v, want ErrTableNotRegistered", err)
		}
	})
}

func TestSQLBucketResolverDefaultBuckets(t *testing.T) {
	t.Parallel()
	db := brSetup(t)
	// No GlobalFunction: tables without a BucketFunction get the registry
	// rules, exactly as JoinResolver.AssignBuckets gives them.
	r := brNewSQL(t, SQLBucketResolverConfig{DB: db})
	for _, c := range brOwnershipCases {
		t.Run(c.name, func(t *testing.T) {
			got, err := brAssign(t, r, c)
			if err != nil {
				t.Fatalf("AssignBuckets: %v", err)
			}
			if got == nil || !slices.Equal(got, c.want) {
				t.Errorf("AssignBuckets = %#v, want %#v", got, c.want)
			}
		})
	}
	// A table with its own function still uses it.
	got, err := r.AssignBuckets(t.Context(), "docs", "d1", OpInsert, map[string]any{"team_id": "t1"})
	if want := []string{"op:create", "table:docs", "team:t1"}; err != nil || !slices.Equal(got, want) {
		t.Errorf("AssignBuckets(docs) = %v, %v; want %v", got, err, want)
	}
}

func TestSQLBucketResolverMaxBucketsPerEvent(t *testing.T) {
	t.Parallel()
	db := brSetup(t)
	r := brNewSQL(t, SQLBucketResolverConfig{DB: db, MaxBucketsPerEvent: 3})

	// The repeated bucket does not count.
	got, err := r.AssignBuckets(t.Context(), "fanout", "f1", OpInsert, map[string]any{"n": 3})
	if err != nil || len(got) != 3 {
		t.Fatalf("AssignBuckets with 3 buckets = %v, %v; want 3 buckets", got, err)
	}
	_, err = r.AssignBuckets(t.Context(), "fanout", "f2", OpInsert, map[string]any{"n": 4})
	if err == nil {
		t.Fatal("AssignBuckets with 4 buckets succeeded, want a fanout error")
	}
	for _, part := range []string{"bucket fanout 4 exceeds MaxBucketsPerEvent 3", `"fanout"`, `"f2"`} {
		if !strings.Contains(err.Error(), part) {
			t.Errorf("error %q does not mention %s", err, part)
		}
	}
	// The limit applies to the Go rules too.
	r1 := brNewSQL(t, SQLBucketResolverConfig{DB: db, MaxBucketsPerEvent: 1})
	if _, err := r1.AssignBuckets(t.Context(), "lists", "1", OpInsert, map[string]any{"user_id": "u1"}); err != nil {
		t.Errorf("AssignBuckets with 1 bucket under a limit of 1: %v", err)
	}
}

// brStubResolver is an OwnershipResolver that records its calls.
type brStubResolver struct {
	calls int
	db    DB
	data  map[string]any
}

func (s *brStubResolver) ResolveOwner(_ context.Context, db DB, _, _ string, data map[string]any) ([]string, error) {
	s.calls++
	s.db, s.data = db, data
	return []string{"stub", "stub", ""}, nil
}

func TestSQLBucketResolverFailure(t *testing.T) {
	t.Parallel()
	db := brSetup(t)
	data := map[string]any{"id": "x1", "owner_id": "u5"}

	t.Run("strict", func(t *testing.T) {
		r := brNewSQL(t, SQLBucketResolverConfig{DB: db})
		_, err := r.AssignBuckets(t.Context(), "failing", "x1", OpInsert, data)
		if err == nil {
			t.Fatal("AssignBuckets succeeded, want the function's error")
		}
		for _, part := range []string{"failing_buckets", `"failing"`, "boom for failing"} {
			if !strings.Contains(err.Error(), part) {
				t.Errorf("error %q does not mention %s", err, part)
			}
		}
	})

	t.Run("default fallback", func(t *testing.T) {
		var logs bytes.Buffer
		r := brNewSQL(t, SQLBucketResolverConfig{
			DB:               db,
			EnableGoFallback: true,
			Logger:           slog.New(slog.NewTextHandler(&logs, nil)),
		})
		got, err := r.AssignBuckets(t.Context(), "failing", "x1", OpInsert, data)
		if err != nil || !slices.Equal(got, []string{"user:u5"}) {
			t.Errorf("AssignBuckets = %v, %v; want [user:u5] from the fallback", got, err)
		}
		if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "failing_buckets") {
			t.Errorf("no warning naming the function was logged: %q", logs.String())
		}
	})

	t.Run("custom fallback", func(t *testing.T) {
		stub := &brStubResolver{}
		r := brNewSQL(t, SQLBucketResolverConfig{
			DB:               db,
			EnableGoFallback: true,
			GoFallback:       stub,
			Logger:           slog.New(slog.DiscardHandler),
		})
		got, err := r.AssignBuckets(t.Context(), "failing", "x1", OpInsert, data)
		if err != nil || !slices.Equal(got, []string{"stub"}) {
			t.Errorf("AssignBuckets = %v, %v; want [stub]", got, err)
		}
		if stub.calls != 1 || stub.db != DB(db) || stub.data["owner_id"] != "u5" {
			t.Errorf("fallback called %d times with db %v and data %v; want once with the resolver's DB and the data", stub.calls, stub.db, stub.data)
		}

		// Fallback only on failure.
		if _, err := r.AssignBuckets(t.Context(), "docs", "d1", OpInsert, map[string]any{"team_id": "t"}); err != nil {
			t.Fatalf("AssignBuckets(docs): %v", err)
		}
		// Not when the context is done.
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if _, err := r.AssignBuckets(ctx, "failing", "x1", OpInsert, data); err == nil {
			t.Error("AssignBuckets with a cancelled context succeeded")
		}
		// Not when the values cannot be encoded.
		if _, err := r.AssignBuckets(t.Context(), "failing", "x1", OpInsert, map[string]any{"x": math.Inf(1)}); err == nil {
			t.Error("AssignBuckets with unencodable values succeeded")
		}
		if stub.calls != 1 {
			t.Errorf("fallback called %d times, want 1", stub.calls)
		}
	})

	t.Run("GoFallback ignored unless enabled", func(t *testing.T) {
		stub := &brStubResolver{}
		r := brNewSQL(t, SQLBucketResolverConfig{DB: db, GoFallback: stub})
		if _, err := r.AssignBuckets(t.Context(), "failing", "x1", OpInsert, data); err == nil {
			t.Error("AssignBuckets succeeded, want the function's error")
		}
		if stub.calls != 0 {
			t.Errorf("fallback called %d times, want 0", stub.calls)
		}
	})
}

func TestNewSQLBucketResolverValidation(t *testing.T) {
	t.Parallel()
	db := brSetup(t)
	good := func() *Registry { return brRegistry(brSQLTables()...) }
	withFunc := func(fn string) *Registry {
		return brRegistry(&TableConfig{TableName: "t", BucketFunction: fn})
	}

	tests := []struct {
		name string
		cfg  SQLBucketResolverConfig
		want string // in the error
	}{
		{"no DB", SQLBucketResolverConfig{Registry: good()}, "DB is required"},
		{"no registry", SQLBucketResolverConfig{DB: db}, "Registry is required"},
		{"negative max", SQLBucketResolverConfig{DB: db, Registry: good(), MaxBucketsPerEvent: -1}, "MaxBucketsPerEvent"},
		{"global with two dots", SQLBucketResolverConfig{DB: db, Registry: good(), GlobalFunction: "a.b.c"}, "GlobalFunction"},
		{"global with a space", SQLBucketResolverConfig{DB: db, Registry: good(), GlobalFunction: " global_buckets"}, "GlobalFunction"},
		{"global too long", SQLBucketResolverConfig{DB: db, Registry: good(), GlobalFunction: strings.Repeat("f", 64)}, "GlobalFunction"},
		{"global empty schema", SQLBucketResolverConfig{DB: db, Registry: good(), GlobalFunction: ".f"}, "GlobalFunction"},
		{"table function invalid", SQLBucketResolverConfig{DB: db, Registry: withFunc("x\ny")}, `table "t"`},
		{"missing", SQLBucketResolverConfig{DB: db, Registry: good(), GlobalFunction: "no_such_buckets"}, "does not exist"},
		{"missing schema", SQLBucketResolverConfig{DB: db, Registry: good(), GlobalFunction: "nowhere.global_buckets"}, "does not exist"},
		{"case matters", SQLBucketResolverConfig{DB: db, Registry: withFunc("rules.teambuckets")}, "does not exist"},
		{"injection attempt", SQLBucketResolverConfig{DB: db, Registry: good(), GlobalFunction: "global_buckets(); DROP TABLE lists; --"}, "does not exist"},
		{"wrong arguments", SQLBucketResolverConfig{DB: db, Registry: withFunc("short_buckets")}, "does not exist"},
		{"wrong result", SQLBucketResolverConfig{DB: db, Registry: withFunc("int_buckets")}, "returns setof integer"},
		{"procedure", SQLBucketResolverConfig{DB: db, Registry: withFunc("proc_buckets")}, "not a plain function"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := NewSQLBucketResolver(tt.cfg)
			if err == nil {
				t.Fatalf("NewSQLBucketResolver = %v, want an error", r)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not mention %q", err, tt.want)
			}
		})
	}

	var n int
	if err := db.QueryRowContext(t.Context(), "SELECT count(*) FROM lists").Scan(&n); err != nil {
		t.Errorf("lists is gone: %v", err)
	}

	t.Run("quoted names", func(t *testing.T) {
		r := brNewSQL(t, SQLBucketResolverConfig{DB: db, Registry: withFunc("Rules.TeamBuckets"), GlobalFunction: "public.global_buckets"})
		got, err := r.AssignBuckets(t.Context(), "t", "1", OpInsert, map[string]any{"team_id": "a"})
		if want := []string{"op:create", "table:t", "team:a"}; err != nil || !slices.Equal(got, want) {
			t.Errorf("AssignBuckets = %v, %v; want %v", got, err, want)
		}
	})

	t.Run("table registered later", func(t *testing.T) {
		reg := brRegistry(&TableConfig{TableName: "lists", OwnerColumn: "user_id"})
		r := brNewSQL(t, SQLBucketResolverConfig{DB: db, Registry: reg})
		reg.Register(&TableConfig{TableName: "late", BucketFunction: "global_buckets"})
		reg.Register(&TableConfig{TableName: "bad", BucketFunction: "a.b.c"})
		got, err := r.AssignBuckets(t.Context(), "late", "1", OpInsert, map[string]any{"id": "1"})
		if want := []string{"fn:late:1"}; err != nil || !slices.Equal(got, want) {
			t.Errorf("AssignBuckets(late) = %v, %v; want %v", got, err, want)
		}
		if _, err := r.AssignBuckets(t.Context(), "bad", "1", OpInsert, map[string]any{}); err == nil {
			t.Error("AssignBuckets with an invalid function name succeeded")
		}
	})
}
