package synchro

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/synchrosync/synchro/internal/pgtest"
)

// newTestRegistry registers cfgs and fails the test when the registry is not
// valid.
func newTestRegistry(t *testing.T, cfgs ...*TableConfig) *Registry {
	t.Helper()
	reg := NewRegistry()
	for _, c := range cfgs {
		reg.Register(c)
	}
	if err := reg.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	return reg
}

// mustIntrospect runs introspect and fails the test on error.
func mustIntrospect(t *testing.T, db DB, reg *Registry) *introspection {
	t.Helper()
	snap, err := introspect(t.Context(), db, reg)
	if err != nil {
		t.Fatalf("introspect: %v", err)
	}
	return snap
}

// contractTable returns the contract entry of the named table.
func contractTable(t *testing.T, snap *introspection, name string) SchemaTable {
	t.Helper()
	for _, st := range snap.tables {
		if st.TableName == name {
			return st
		}
	}
	t.Fatalf("table %q not in the contract", name)
	return SchemaTable{}
}

// countingDB counts the statements sent through it.
type countingDB struct {
	DB
	queries atomic.Int64
}

func (c *countingDB) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	c.queries.Add(1)
	return c.DB.QueryContext(ctx, q, args...)
}

func (c *countingDB) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	c.queries.Add(1)
	return c.DB.QueryRowContext(ctx, q, args...)
}

func (c *countingDB) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	c.queries.Add(1)
	return c.DB.ExecContext(ctx, q, args...)
}

func TestDefaultClassification(t *testing.T) {
	t.Parallel()
	tests := []struct {
		expr       string
		wantKind   string
		wantSQLite string
	}{
		{"", DefaultKindNone, ""},
		{"   ", DefaultKindNone, ""},
		{"''::text", DefaultKindPortable, "''"},
		{"'pending'::order_status", DefaultKindPortable, "'pending'"},
		{`'pending'::other."Order Status"`, DefaultKindPortable, "'pending'"},
		{"(true)::boolean", DefaultKindPortable, "1"},
		{"true", DefaultKindPortable, "1"},
		{"FALSE", DefaultKindPortable, "0"},
		{"gen_random_uuid()", DefaultKindServerOnly, ""},
		{"now()", DefaultKindPortable, "CURRENT_TIMESTAMP"},
		{"CURRENT_TIMESTAMP", DefaultKindPortable, "CURRENT_TIMESTAMP"},
		{"transaction_timestamp()", DefaultKindPortable, "CURRENT_TIMESTAMP"},
		{"statement_timestamp()", DefaultKindPortable, "CURRENT_TIMESTAMP"},
		{"CURRENT_DATE", DefaultKindPortable, "CURRENT_DATE"},
		{"CURRENT_TIME", DefaultKindPortable, "CURRENT_TIME"},
		{"'-1'::integer", DefaultKindPortable, "'-1'"},
		{"(-1)", DefaultKindPortable, "-1"},
		{"42", DefaultKindPortable, "42"},
		{"1.5", DefaultKindPortable, "1.5"},
		{"NULL::text", DefaultKindPortable, "NULL"},
		{"nextval('x_seq'::regclass)", DefaultKindServerOnly, ""},
		{"'it''s'::text", DefaultKindPortable, "'it''s'"},
		{`'{"a": 1}'::jsonb`, DefaultKindPortable, `'{"a": 1}'`},
		{"'x'::character varying", DefaultKindPortable, "'x'"},
		{"'x'::character varying(10)", DefaultKindPortable, "'x'"},
		{"'1.50'::numeric(10,2)", DefaultKindPortable, "'1.50'"},
		{"'2024-01-01 00:00:00'::timestamp(3) with time zone", DefaultKindPortable, "'2024-01-01 00:00:00'"},
		{"'1.5'::double precision", DefaultKindPortable, "'1.5'"},
		{"('a'::text)", DefaultKindPortable, "'a'"},
		{"(('a'::text)::character varying)::text", DefaultKindPortable, "'a'"},
		{"'a'::text::character varying", DefaultKindPortable, "'a'"},
		{`'a'::text COLLATE "C"`, DefaultKindPortable, "'a'"},
		{"'a::b'::text", DefaultKindPortable, "'a::b'"},
		{"'(x)'", DefaultKindPortable, "'(x)'"},
		{"(1 + 2)", DefaultKindServerOnly, ""},
		{"(1) + (2)", DefaultKindServerOnly, ""},
		{"('a'::text || 'b'::text)", DefaultKindServerOnly, ""},
		{"'a'::text IS NULL", DefaultKindServerOnly, ""},
		{"'1'::integer + 1", DefaultKindServerOnly, ""},
		{"ARRAY[]::text[]", DefaultKindServerOnly, ""},
		{"md5((random())::text)", DefaultKindServerOnly, ""},
		{"clock_timestamp()", DefaultKindServerOnly, ""},
		{"'unterminated", DefaultKindServerOnly, ""},
		{"((", DefaultKindServerOnly, ""},
		{":::", DefaultKindServerOnly, ""},
	}
	for _, tt := range tests {
		kind, sqlite := classifyDefault(tt.expr, valueSpec{})
		if kind != tt.wantKind || sqlite != tt.wantSQLite {
			t.Errorf("classifyDefault(%q) = (%q, %q), want (%q, %q)", tt.expr, kind, sqlite, tt.wantKind, tt.wantSQLite)
		}
	}

	// Timestamp columns get RFC 3339 text in UTC, which the SDKs compare
	// and the server parses.
	timestampTests := []struct {
		expr       string
		wantKind   string
		wantSQLite string
	}{
		{"now()", DefaultKindPortable, sqliteNowRFC3339},
		{"CURRENT_TIMESTAMP", DefaultKindPortable, sqliteNowRFC3339},
		{"transaction_timestamp()", DefaultKindPortable, sqliteNowRFC3339},
		{"statement_timestamp()", DefaultKindPortable, sqliteNowRFC3339},
		{"(now())::timestamp without time zone", DefaultKindPortable, sqliteNowRFC3339},
		{"(CURRENT_TIMESTAMP)::timestamp(3) with time zone", DefaultKindPortable, sqliteNowRFC3339},
		{"'2024-01-02 03:04:05+00'::timestamp with time zone", DefaultKindPortable, "'2024-01-02T03:04:05.000Z'"},
		{"'2024-01-02 05:34:05.25+02:30'::timestamp with time zone", DefaultKindPortable, "'2024-01-02T03:04:05.250Z'"},
		{"'2024-01-02 03:04:05.123456'::timestamp without time zone", DefaultKindPortable, "'2024-01-02T03:04:05.123456Z'"},
		{"'infinity'::timestamp with time zone", DefaultKindPortable, "'infinity'"},
		{"NULL::timestamp with time zone", DefaultKindPortable, "NULL"},
		{"clock_timestamp()", DefaultKindServerOnly, ""},
		{"", DefaultKindNone, ""},
	}
	for _, tt := range timestampTests {
		kind, sqlite := classifyDefault(tt.expr, valueSpec{kind: valueTimestampTZ})
		if kind != tt.wantKind || sqlite != tt.wantSQLite {
			t.Errorf("classifyDefault(%q, timestamp) = (%q, %q), want (%q, %q)", tt.expr, kind, sqlite, tt.wantKind, tt.wantSQLite)
		}
	}

	// Array columns get their constant default as PostgreSQL prints it
	// (its array text), which a push takes back (convertArrayText).
	arrayTests := []struct {
		spec       string // of pvSpecs
		expr       string
		wantKind   string
		wantSQLite string
	}{
		{"text[]", "'{}'::text[]", DefaultKindPortable, "'{}'"},
		{"integer[]", "'{1,2}'::integer[]", DefaultKindPortable, "'{1,2}'"},
		{"text[]", `'{"a b",NULL,it''s}'::text[]`, DefaultKindPortable, `'{"a b",NULL,it''s}'`},
		{"integer[]", "'[0:1]={1,2}'::integer[]", DefaultKindPortable, "'[0:1]={1,2}'"},
		{"text[]", "NULL::text[]", DefaultKindPortable, "NULL"},
		{"integer[]", "ARRAY[1, 2]", DefaultKindServerOnly, ""},
		{"text[]", "ARRAY[]::text[]", DefaultKindServerOnly, ""},
	}
	for _, tt := range arrayTests {
		spec, ok := pvSpecs[tt.spec]
		if !ok {
			t.Fatalf("no spec %q", tt.spec)
		}
		kind, sqlite := classifyDefault(tt.expr, spec)
		if kind != tt.wantKind || sqlite != tt.wantSQLite {
			t.Errorf("classifyDefault(%q, %s) = (%q, %q), want (%q, %q)", tt.expr, tt.spec, kind, sqlite, tt.wantKind, tt.wantSQLite)
		}
	}
}

// TestDefaultClassificationCatalog classifies defaults as PostgreSQL itself
// prints them.
func TestDefaultClassificationCatalog(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDatabase(t)
	pgtest.Exec(t, db.Super, `
CREATE TYPE order_status AS ENUM ('pending', 'done');
CREATE DOMAIN other_stamp AS timestamp(3);
CREATE TABLE dflt (
			id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
			empty_text text NOT NULL DEFAULT '',
			status order_status NOT NULL DEFAULT 'pending',
			flag boolean DEFAULT true,
			flag_paren boolean DEFAULT (true),
			off boolean DEFAULT false,
			neg integer DEFAULT -1,
			neg_paren integer DEFAULT (-1),
			answer integer DEFAULT 42,
			big bigint DEFAULT 9007199254740993,
			price numeric(10,2) DEFAULT 1.5,
			ratio double precision DEFAULT 0.25,
			nothing text DEFAULT NULL,
			created timestamptz DEFAULT now(),
			created3 timestamp(3) DEFAULT CURRENT_TIMESTAMP,
			created_stmt timestamptz DEFAULT statement_timestamp(),
			created_text text DEFAULT now(),
			created_dom other_stamp DEFAULT now(),
			day date DEFAULT CURRENT_DATE,
			doc jsonb DEFAULT '{}',
			tags text[] DEFAULT '{}',
			code varchar(10) DEFAULT 'x',
			quote text DEFAULT 'it''s',
			code_cast varchar(10) DEFAULT 'y'::text,
			stamp timestamp(3) DEFAULT '2024-01-02 03:04:05'::timestamptz,
			num numeric(10,2) DEFAULT '1.50',
			ints integer[] DEFAULT ARRAY[1, 2],
			seq bigserial,
			calc integer DEFAULT (1 + 2),
			token text DEFAULT md5(random()::text),
			plain text
		)`)
	reg := newTestRegistry(t, &TableConfig{TableName: "dflt"})
	snap := mustIntrospect(t, db.App, reg)
	st := contractTable(t, snap, "dflt")

	want := map[string]struct{ kind, sqlite string }{
		"id":           {DefaultKindServerOnly, ""},
		"empty_text":   {DefaultKindPortable, "''"},
		"status":       {DefaultKindPortable, "'pending'"},
		"flag":         {DefaultKindPortable, "1"},
		"flag_paren":   {DefaultKindPortable, "1"},
		"off":          {DefaultKindPortable, "0"},
		"neg":          {DefaultKindPortable, "'-1'"},
		"neg_paren":    {DefaultKindPortable, "'-1'"},
		"answer":       {DefaultKindPortable, "42"},
		"big":          {DefaultKindPortable, "'9007199254740993'"},
		"price":        {DefaultKindPortable, "1.5"},
		"ratio":        {DefaultKindPortable, "0.25"},
		"nothing":      {DefaultKindNone, ""}, // DEFAULT NULL stores no default
		"created":      {DefaultKindPortable, sqliteNowRFC3339},
		"created3":     {DefaultKindPortable, sqliteNowRFC3339},
		"created_stmt": {DefaultKindPortable, sqliteNowRFC3339},
		"created_text": {DefaultKindPortable, "CURRENT_TIMESTAMP"}, // not a timestamp column
		"created_dom":  {DefaultKindPortable, sqliteNowRFC3339},
		"day":          {DefaultKindPortable, "CURRENT_DATE"},
		"doc":          {DefaultKindPortable, "'{}'"},
		"tags":         {DefaultKindPortable, "'{}'"},
		"code":         {DefaultKindPortable, "'x'"},
		"quote":        {DefaultKindPortable, "'it''s'"},
		"code_cast":    {DefaultKindPortable, "'y'"},
		"stamp":        {DefaultKindPortable, "'2024-01-02T03:04:05.000Z'"},
		"num":          {DefaultKindPortable, "1.50"},
		"ints":         {DefaultKindServerOnly, ""},
		"seq":          {DefaultKindServerOnly, ""},
		"calc":         {DefaultKindServerOnly, ""},
		"token":        {DefaultKindServerOnly, ""},
		"plain":        {DefaultKindNone, ""},
		// The table lacks them: made up, without a default.
		"updated_at": {DefaultKindNone, ""},
		"deleted_at": {DefaultKindNone, ""},
	}
	if len(st.Columns) != len(want) {
		t.Fatalf("got %d columns, want %d", len(st.Columns), len(want))
	}
	for _, c := range st.Columns {
		w, ok := want[c.Name]
		if !ok {
			t.Errorf("unexpected column %q", c.Name)
			continue
		}
		if c.DefaultKind != w.kind || c.SQLiteDefaultSQL != w.sqlite {
			t.Errorf("column %q default %q: got (%q, %q), want (%q, %q)",
				c.Name, c.DefaultSQL, c.DefaultKind, c.SQLiteDefaultSQL, w.kind, w.sqlite)
		}
		if (c.DefaultSQL == "") != (w.kind == DefaultKindNone) {
			t.Errorf("column %q: DefaultSQL %q does not match kind %q", c.Name, c.DefaultSQL, w.kind)
		}
	}
}

// TestContractDomainDefaults: a column's default in the contract is the
// column's own, else the one of its type when that is a domain, and it is
// NOT NULL when the column or any domain on the way to the base type is
// (NOT NULL or CHECK (VALUE IS NOT NULL)), as PostgreSQL decides an insert
// that leaves the column out. PostgreSQL takes only the default of the
// column's own domain: a domain over another copies that one's default when
// it is created, and a default set on the other later does not reach it
// (late, checked against the server below).
func TestContractDomainDefaults(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDatabase(t)
	pgtest.Exec(t, db.Super, `
CREATE DOMAIN dd_text AS text NOT NULL DEFAULT '';
CREATE DOMAIN dd_rank AS integer DEFAULT 0 CHECK (VALUE IS NOT NULL);
CREATE DOMAIN dd_outer AS dd_text;
CREATE DOMAIN dd_plain AS text;
CREATE DOMAIN dd_late AS dd_plain;
ALTER DOMAIN dd_plain SET DEFAULT 'p';
CREATE DOMAIN dd_check AS text CHECK (VALUE IS NOT NULL);
CREATE DOMAIN dd_check_outer AS dd_check;
CREATE DOMAIN dd_stamp AS timestamptz(3) DEFAULT now();
CREATE DOMAIN dd_flag AS boolean NOT NULL DEFAULT false;
CREATE DOMAIN dd_token AS uuid DEFAULT gen_random_uuid();
CREATE TABLE dd (
	id         integer PRIMARY KEY,
	note       dd_text,
	status     dd_text DEFAULT 'open',
	rank       dd_rank,
	outer_note dd_outer,
	late       dd_late,
	plain      dd_plain,
	chk        dd_check_outer,
	stamp      dd_stamp,
	flag       dd_flag,
	token      dd_token,
	updated_at timestamptz,
	deleted_at timestamptz
);
INSERT INTO dd (id, chk) VALUES (1, 'x');`)
	var server string
	pgtest.QueryRow(t, db.Super, `SELECT concat_ws('|', note, status, rank, outer_note, coalesce(late, 'NULL'), plain, flag) FROM dd`).Scan(&server)
	if server != "|open|0||NULL|p|f" {
		t.Fatalf("the server's insert gave %s; the expectations below assume |open|0||NULL|p|f", server)
	}

	reg := newTestRegistry(t, &TableConfig{TableName: "dd"})
	st := contractTable(t, mustIntrospect(t, db.App, reg), "dd")
	want := map[string]struct {
		dflt, kind, sqlite string
		nullable           bool
	}{
		"id":         {"", DefaultKindNone, "", false},
		"note":       {"''::text", DefaultKindPortable, "''", false},
		"status":     {"'open'::text", DefaultKindPortable, "'open'", false},
		"rank":       {"0", DefaultKindPortable, "0", false},
		"outer_note": {"''::text", DefaultKindPortable, "''", false},
		"late":       {"", DefaultKindNone, "", true},
		"plain":      {"'p'::text", DefaultKindPortable, "'p'", true},
		"chk":        {"", DefaultKindNone, "", false},
		"stamp":      {"now()", DefaultKindPortable, sqliteNowRFC3339, true},
		"flag":       {"false", DefaultKindPortable, "0", false},
		"token":      {"gen_random_uuid()", DefaultKindServerOnly, "", true},
		"updated_at": {"", DefaultKindNone, "", true},
		"deleted_at": {"", DefaultKindNone, "", true},
	}
	if len(st.Columns) != len(want) {
		t.Errorf("got %d columns, want %d", len(st.Columns), len(want))
	}
	for _, c := range st.Columns {
		w, ok := want[c.Name]
		if !ok {
			t.Errorf("unexpected column %q", c.Name)
			continue
		}
		if c.DefaultSQL != w.dflt || c.DefaultKind != w.kind || c.SQLiteDefaultSQL != w.sqlite || c.Nullable != w.nullable {
			t.Errorf("column %q: got default %q (%s, SQLite %q), nullable %v; want default %q (%s, SQLite %q), nullable %v",
				c.Name, c.DefaultSQL, c.DefaultKind, c.SQLiteDefaultSQL, c.Nullable, w.dflt, w.kind, w.sqlite, w.nullable)
		}
	}
}

func TestTypeMapIntrospect(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDatabase(t)
	pgtest.Exec(t, db.Super, `
CREATE SCHEMA other;
CREATE TYPE other."Order Status" AS ENUM ('open', 'closed');
CREATE DOMAIN other.posint AS integer CHECK (VALUE > 0);
CREATE DOMAIN other.small_posint AS other.posint CHECK (VALUE < 100);
CREATE DOMAIN other.required_text AS text NOT NULL;
CREATE DOMAIN other.tag_list AS text[];
CREATE DOMAIN other.stamp AS timestamptz(3);
CREATE TABLE types_t (
			id bigint PRIMARY KEY,
			c_bool boolean,
			c_int2 smallint,
			c_int4 integer,
			c_int8 int8,
			c_float4 real,
			c_float8 double precision,
			c_numeric numeric(30,10),
			c_text text,
			c_varchar varchar(20),
			c_bpchar char(3),
			c_qchar "char",
			c_name name,
			c_uuid uuid,
			c_json json,
			c_jsonb jsonb,
			c_bytea bytea,
			c_date date,
			c_time time,
			c_time6 time(6),
			c_timetz timetz,
			c_ts timestamp,
			c_tstz timestamptz,
			c_tstz3 timestamptz(3),
			c_interval interval,
			c_inet inet,
			c_cidr cidr,
			c_macaddr macaddr,
			c_macaddr8 macaddr8,
			c_money money,
			c_xml xml,
			c_bit bit(3),
			c_varbit varbit,
			c_tsvector tsvector,
			c_tsquery tsquery,
			c_oid oid,
			c_point point,
			c_box box,
			c_polygon polygon,
			c_circle circle,
			c_pglsn pg_lsn,
			c_text_arr text[],
			c_int_arr2 integer[][],
			c_enum other."Order Status",
			c_enum_arr other."Order Status"[],
			c_dom other.posint,
			c_domdom other.small_posint,
			c_dom_nn other.required_text,
			c_dom_arr other.tag_list,
			c_dom_stamp other.stamp,
			c_range int4range,
			c_tstzrange tstzrange,
			c_multirange int4multirange
		)`)

	reg := newTestRegistry(t, &TableConfig{TableName: "types_t"})
	snap := mustIntrospect(t, db.App, reg)
	st := contractTable(t, snap, "types_t")

	tests := []struct {
		col, dbType, logical string
		nullable             bool
	}{
		{"id", "bigint", "int64", false},
		{"c_bool", "boolean", "boolean", true},
		{"c_int2", "smallint", "int", true},
		{"c_int4", "integer", "int", true},
		{"c_int8", "bigint", "int64", true},
		{"c_float4", "real", "float", true},
		{"c_float8", "double precision", "float", true},
		{"c_numeric", "numeric(30,10)", "float", true},
		{"c_text", "text", "string", true},
		{"c_varchar", "character varying(20)", "string", true},
		{"c_bpchar", "character(3)", "string", true},
		{"c_qchar", `"char"`, "string", true},
		{"c_name", "name", "string", true},
		{"c_uuid", "uuid", "string", true},
		{"c_json", "json", "json", true},
		{"c_jsonb", "jsonb", "json", true},
		{"c_bytea", "bytea", "bytes", true},
		{"c_date", "date", "date", true},
		{"c_time", "time without time zone", "time", true},
		{"c_time6", "time(6) without time zone", "time", true},
		{"c_timetz", "time with time zone", "time", true},
		{"c_ts", "timestamp without time zone", "datetime", true},
		{"c_tstz", "timestamp with time zone", "datetime", true},
		{"c_tstz3", "timestamp(3) with time zone", "datetime", true},
		{"c_interval", "interval", "string", true},
		{"c_inet", "inet", "string", true},
		{"c_cidr", "cidr", "string", true},
		{"c_macaddr", "macaddr", "string", true},
		{"c_macaddr8", "macaddr8", "string", true},
		{"c_money", "money", "string", true},
		{"c_xml", "xml", "string", true},
		{"c_bit", "bit(3)", "string", true},
		{"c_varbit", "bit varying", "string", true},
		{"c_tsvector", "tsvector", "string", true},
		{"c_tsquery", "tsquery", "string", true},
		{"c_oid", "oid", "string", true},
		{"c_point", "point", "string", true},
		{"c_box", "box", "string", true},
		{"c_polygon", "polygon", "string", true},
		{"c_circle", "circle", "string", true},
		{"c_pglsn", "pg_lsn", "string", true},
		{"c_text_arr", "text[]", "json", true},
		{"c_int_arr2", "integer[]", "json", true},
		{"c_enum", `other."Order Status"`, "string", true},
		{"c_enum_arr", `other."Order Status"[]`, "json", true},
		{"c_dom", "other.posint", "int", true},
		{"c_domdom", "other.small_posint", "int", true},
		{"c_dom_nn", "other.required_text", "string", false},
		{"c_dom_arr", "other.tag_list", "json", true},
		{"c_dom_stamp", "other.stamp", "datetime", true},
		{"c_range", "int4range", "string", true},
		{"c_tstzrange", "tstzrange", "string", true},
		{"c_multirange", "int4multirange", "string", true},
		// The table lacks the timestamp columns: made up after the others.
		{"updated_at", "timestamp with time zone", "datetime", true},
		{"deleted_at", "timestamp with time zone", "datetime", true},
	}
	if len(st.Columns) != len(tests) {
		t.Errorf("got %d columns, want %d", len(st.Columns), len(tests))
	}
	for i, tt := range tests {
		t.Run(tt.col, func(t *testing.T) {
			if i >= len(st.Columns) {
				t.Fatalf("column %d missing", i)
			}
			c := st.Columns[i]
			if c.Name != tt.col || c.DBType != tt.dbType || c.LogicalType != tt.logical || c.Nullable != tt.nullable {
				t.Errorf("got {%q %q %q nullable=%v}, want {%q %q %q nullable=%v}",
					c.Name, c.DBType, c.LogicalType, c.Nullable, tt.col, tt.dbType, tt.logical, tt.nullable)
			}
		})
	}

	t.Run("extension types", func(t *testing.T) {
		for _, ext := range []struct{ name, typ, logical string }{
			{"citext", "citext", "string"},
			{"hstore", "hstore", "string"},
		} {
			t.Run(ext.name, func(t *testing.T) {
				if _, err := db.Super.ExecContext(t.Context(), "CREATE EXTENSION IF NOT EXISTS "+ext.name); err != nil {
					t.Skipf("extension %s is not available: %v", ext.name, err)
				}
				table := "ext_" + ext.name
				pgtest.Exec(t, db.Super, "CREATE TABLE "+table+" (id integer PRIMARY KEY, v "+ext.typ+")")
				snap := mustIntrospect(t, db.App, newTestRegistry(t, &TableConfig{TableName: table}))
				c := contractTable(t, snap, table).Columns[1]
				if c.DBType != ext.typ || c.LogicalType != ext.logical {
					t.Errorf("got %q -> %q, want %q -> %q", c.DBType, c.LogicalType, ext.typ, ext.logical)
				}
			})
		}
	})
}

func TestTypeMapUnsupported(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		typ  catalogType
	}{
		{"unknown", catalogType{}},
		{"composite", catalogType{known: true, name: "pair", schema: "public", typtype: "c", category: "C"}},
		{"pseudo", catalogType{known: true, name: "record", schema: "pg_catalog", typtype: "p", category: "P"}},
		{"numeric category", catalogType{known: true, name: "regclass", schema: "pg_catalog", typtype: "b", category: "N"}},
		{"internal category", catalogType{known: true, name: "pg_node_tree", schema: "pg_catalog", typtype: "b", category: "Z"}},
		{"builtin name in another schema", catalogType{known: true, name: "int4", schema: "public", typtype: "b", category: "N"}},
	}
	for _, tt := range tests {
		if got, err := mapLogicalType(tt.typ); err == nil {
			t.Errorf("%s: mapLogicalType = %q, want an error", tt.name, got)
		}
	}
	// A user-defined base type outside pg_catalog maps by category.
	if got, err := mapLogicalType(catalogType{known: true, name: "ltree", schema: "public", typtype: "b", category: "U"}); err != nil || got != logicalString {
		t.Errorf("user-defined base type: got (%q, %v), want string", got, err)
	}
}

func TestIntrospectErrors(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDatabase(t)
	pgtest.Exec(t, db.Super, `
CREATE TYPE pair AS (x integer, y integer);
CREATE TABLE items (id uuid PRIMARY KEY, user_id text, title text,
			updated_at timestamptz, deleted_at timestamptz);
CREATE TABLE no_pk (id uuid, user_id text);
CREATE TABLE composite_pk (a integer, b integer, user_id text, PRIMARY KEY (b, a));
CREATE TABLE other_pk (key integer PRIMARY KEY, id integer);
CREATE TABLE composite_col (id integer PRIMARY KEY, p pair);
CREATE TABLE regclass_col (id integer PRIMARY KEY, r regclass);
CREATE TABLE server_default (id uuid PRIMARY KEY, user_id text,
			code text NOT NULL DEFAULT md5(random()::text));
CREATE TABLE server_default_ok (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), user_id text,
			code text NOT NULL DEFAULT md5(random()::text),
			maybe text DEFAULT md5(random()::text),
			created_at timestamptz NOT NULL DEFAULT clock_timestamp());
CREATE DOMAIN nn_token AS uuid NOT NULL DEFAULT gen_random_uuid();
CREATE DOMAIN chk_token AS uuid DEFAULT gen_random_uuid() CHECK (VALUE IS NOT NULL);
CREATE TABLE server_domain_default (id uuid PRIMARY KEY, user_id text, token nn_token);
CREATE TABLE server_domain_check (id uuid PRIMARY KEY, user_id text, token chk_token);
CREATE TABLE deleted_not_null (id integer PRIMARY KEY, deleted_at timestamptz NOT NULL);
CREATE TABLE updated_text (id integer PRIMARY KEY, updated_at text);
CREATE TABLE custom_ts (id integer PRIMARY KEY, modified_at date);
CREATE VIEW items_view AS SELECT * FROM items`)

	tests := []struct {
		name     string
		cfgs     []*TableConfig
		sentinel error    // nil: a plain error
		want     []string // substrings of the message
	}{
		{
			name: "missing table",
			cfgs: []*TableConfig{{TableName: "items"}, {TableName: "nope"}},
			want: []string{`"nope"`, "does not exist"},
		},
		{
			name: "missing schema-qualified table",
			cfgs: []*TableConfig{{TableName: "nowhere.items"}},
			want: []string{`"nowhere.items"`, "does not exist"},
		},
		{
			name: "view",
			cfgs: []*TableConfig{{TableName: "items_view"}},
			want: []string{`"items_view"`, "view"},
		},
		{
			name: "missing owner column",
			cfgs: []*TableConfig{{TableName: "items", OwnerColumn: "owner"}},
			want: []string{`"items"`, `OwnerColumn "owner"`},
		},
		{
			name: "missing bucket column",
			cfgs: []*TableConfig{{TableName: "items", BucketByColumn: "tenant"}},
			want: []string{`"items"`, `BucketByColumn "tenant"`},
		},
		{
			name: "missing sync column",
			cfgs: []*TableConfig{{TableName: "items", SyncColumns: []string{"title", "body"}}},
			want: []string{`"items"`, `SyncColumns entry "body"`},
		},
		{
			name: "missing protected column",
			cfgs: []*TableConfig{{TableName: "items", ProtectedColumns: []string{"secret"}}},
			want: []string{`"items"`, `ProtectedColumns entry "secret"`},
		},
		{
			name: "missing explicit updated_at column",
			cfgs: []*TableConfig{{TableName: "server_default_ok", UpdatedAtColumn: "modified_at"}},
			want: []string{`"server_default_ok"`, `UpdatedAtColumn "modified_at"`, "does not exist"},
		},
		{
			name: "missing explicit deleted_at column",
			cfgs: []*TableConfig{{TableName: "server_default_ok", DeletedAtColumn: "removed_at"}},
			want: []string{`"server_default_ok"`, `DeletedAtColumn "removed_at"`, "does not exist"},
		},
		{
			name: "updated_at of the wrong type",
			cfgs: []*TableConfig{{TableName: "updated_text"}},
			want: []string{`"updated_text"`, `UpdatedAtColumn "updated_at"`, "type text"},
		},
		{
			name: "explicit updated_at of the wrong type",
			cfgs: []*TableConfig{{TableName: "custom_ts", UpdatedAtColumn: "modified_at"}},
			want: []string{`"custom_ts"`, `UpdatedAtColumn "modified_at"`, "type date"},
		},
		{
			name: "deleted_at NOT NULL",
			cfgs: []*TableConfig{{TableName: "deleted_not_null"}},
			want: []string{`"deleted_not_null"`, `DeletedAtColumn "deleted_at"`, "nullable"},
		},
		{
			name:     "no primary key",
			cfgs:     []*TableConfig{{TableName: "no_pk", OwnerColumn: "user_id"}},
			sentinel: ErrUnsupportedSchemaFeature,
			want:     []string{`"no_pk"`, "no primary key"},
		},
		{
			name:     "composite primary key",
			cfgs:     []*TableConfig{{TableName: "composite_pk", IDColumn: "a"}},
			sentinel: ErrUnsupportedSchemaFeature,
			want:     []string{`"composite_pk"`, "composite primary key", `"b", "a"`},
		},
		{
			name: "primary key is not IDColumn",
			cfgs: []*TableConfig{{TableName: "other_pk"}},
			want: []string{`"other_pk"`, `"key"`, `IDColumn "id"`},
		},
		{
			name:     "composite-typed column",
			cfgs:     []*TableConfig{{TableName: "composite_col"}},
			sentinel: ErrUnsupportedSchemaFeature,
			want:     []string{`"composite_col"`, `column "p"`, "type pair"},
		},
		{
			name:     "numeric-category base type",
			cfgs:     []*TableConfig{{TableName: "regclass_col"}},
			sentinel: ErrUnsupportedSchemaFeature,
			want:     []string{`"regclass_col"`, `column "r"`, "type regclass"},
		},
		{
			name:     "server-only NOT NULL default on a pushable table",
			cfgs:     []*TableConfig{{TableName: "server_default", OwnerColumn: "user_id"}},
			sentinel: ErrUnsupportedSchemaFeature,
			want:     []string{`"server_default"`, `column "code"`, "md5(", "SQLite"},
		},
		{
			name:     "server-only default of a NOT NULL domain on a pushable table",
			cfgs:     []*TableConfig{{TableName: "server_domain_default", OwnerColumn: "user_id"}},
			sentinel: ErrUnsupportedSchemaFeature,
			want:     []string{`"server_domain_default"`, `column "token"`, "gen_random_uuid()", "nn_token", "SQLite"},
		},
		{
			name:     "server-only default of a CHECK (VALUE IS NOT NULL) domain on a pushable table",
			cfgs:     []*TableConfig{{TableName: "server_domain_check", OwnerColumn: "user_id"}},
			sentinel: ErrUnsupportedSchemaFeature,
			want:     []string{`"server_domain_check"`, `column "token"`, "gen_random_uuid()", "chk_token", "SQLite"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			reg := newTestRegistry(t, tt.cfgs...)
			snap, err := introspect(t.Context(), db.App, reg)
			if err == nil {
				t.Fatalf("introspect succeeded (%d tables), want an error", len(snap.tables))
			}
			if tt.sentinel != nil && !errors.Is(err, tt.sentinel) {
				t.Errorf("error %q does not wrap %v", err, tt.sentinel)
			}
			if tt.sentinel == nil && errors.Is(err, ErrUnsupportedSchemaFeature) {
				t.Errorf("error %q wraps ErrUnsupportedSchemaFeature, want a plain error", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}

	t.Run("server-only defaults allowed", func(t *testing.T) {
		t.Parallel()
		cases := []struct {
			name string
			cfg  *TableConfig
		}{
			// Read-only table: clients never insert.
			{"read-only", &TableConfig{TableName: "server_default"}},
			// Protected NOT NULL column, nullable column, PK, created_at.
			{"protected", &TableConfig{TableName: "server_default_ok", OwnerColumn: "user_id", ProtectedColumns: []string{"code"}}},
			{"read-only, domain", &TableConfig{TableName: "server_domain_default"}},
			{"protected, domain", &TableConfig{TableName: "server_domain_default", OwnerColumn: "user_id", ProtectedColumns: []string{"token"}}},
		}
		for _, c := range cases {
			if _, err := introspect(t.Context(), db.App, newTestRegistry(t, c.cfg)); err != nil {
				t.Errorf("%s: %v", c.name, err)
			}
		}
	})
}

func TestIntrospectTableInfo(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDatabase(t)
	pgtest.Exec(t, db.Super, `
CREATE TABLE lists (id uuid PRIMARY KEY, user_id text NOT NULL, name text,
			updated_at timestamptz NOT NULL DEFAULT now(), deleted_at timestamptz);
CREATE TABLE items (dropped integer, id uuid PRIMARY KEY, list_id uuid NOT NULL REFERENCES lists,
			title text NOT NULL DEFAULT '', body text, done boolean NOT NULL DEFAULT false,
			updated_at timestamptz(3) NOT NULL DEFAULT now(), deleted_at timestamp);
ALTER TABLE items DROP COLUMN dropped;
CREATE TABLE tags (id integer PRIMARY KEY, label text)`)
	reg := newTestRegistry(t,
		&TableConfig{TableName: "lists", OwnerColumn: "user_id", Dependencies: nil},
		&TableConfig{TableName: "tags", Dependencies: []string{"lists", "items"}},
		&TableConfig{TableName: "items", ParentTable: "lists", ParentFKCol: "list_id",
			SyncColumns: []string{"title", "done"}, Dependencies: []string{"lists"}},
	)
	counter := &countingDB{DB: db.App}
	snap := mustIntrospect(t, counter, reg)
	if n := counter.queries.Load(); n != 1 {
		t.Errorf("introspect sent %d statements, want 1", n)
	}

	items := snap.info["items"]
	if items == nil {
		t.Fatal("no info for items")
	}
	if items.cfg != reg.get("items") {
		t.Error("info.cfg is not the registered config")
	}
	if items.schemaName != "public" || items.relName != "items" || items.quoted != `"public"."items"` {
		t.Errorf("names: %q %q %q", items.schemaName, items.relName, items.quoted)
	}
	wantCols := []string{"id", "list_id", "title", "body", "done", "updated_at", "deleted_at"}
	var gotCols []string
	for i, c := range items.columns {
		gotCols = append(gotCols, c.name)
		if items.byName[c.name] != i {
			t.Errorf("byName[%q] = %d, want %d", c.name, items.byName[c.name], i)
		}
		if c.isPK != (c.name == "id") {
			t.Errorf("column %q: isPK = %v", c.name, c.isPK)
		}
		if c.typeOID == 0 {
			t.Errorf("column %q: no type OID", c.name)
		}
	}
	if !slices.Equal(gotCols, wantCols) {
		t.Errorf("columns = %v, want %v", gotCols, wantCols)
	}
	if len(items.byName) != len(wantCols) {
		t.Errorf("byName has %d entries, want %d", len(items.byName), len(wantCols))
	}
	if items.pk != "id" || !items.hasUpdatedAt || !items.hasDeletedAt {
		t.Errorf("pk %q hasUpdatedAt %v hasDeletedAt %v", items.pk, items.hasUpdatedAt, items.hasDeletedAt)
	}
	if want := []string{"id", "title", "done"}; !slices.Equal(items.syncColumns, want) {
		t.Errorf("items syncColumns = %v, want %v", items.syncColumns, want)
	}
	// SyncColumns leaves the timestamps out: they are delivered all the same.
	var delivered []string
	for _, c := range items.delivered {
		delivered = append(delivered, c.name)
		if c.madeUp {
			t.Errorf("items: column %q made up, the table has it", c.name)
		}
	}
	if want := []string{"id", "title", "done", "updated_at", "deleted_at"}; !slices.Equal(delivered, want) {
		t.Errorf("items delivered = %v, want %v", delivered, want)
	}
	if got, want := items.deliveredSQL("x"), []string{`x."id"`, `x."title"`, `x."done"`, `x."updated_at"`, `x."deleted_at"`}; !slices.Equal(got, want) {
		t.Errorf("items deliveredSQL = %v, want %v", got, want)
	}
	if items.deliversWholeRow() || !snap.info["lists"].deliversWholeRow() {
		t.Errorf("deliversWholeRow: items %v, lists %v; want false, true", items.deliversWholeRow(), snap.info["lists"].deliversWholeRow())
	}
	// tags lacks both: made up, after its columns, selected as NULL.
	if got, want := snap.info["tags"].deliveredSQL("x"), []string{`x."id"`, `x."label"`, `NULL::timestamptz AS "updated_at"`, `NULL::timestamptz AS "deleted_at"`}; !slices.Equal(got, want) {
		t.Errorf("tags deliveredSQL = %v, want %v", got, want)
	}
	if snap.info["tags"].deliversWholeRow() {
		t.Error("tags: deliversWholeRow with made-up columns")
	}
	if want := []string{"id", "user_id", "name", "updated_at", "deleted_at"}; !slices.Equal(snap.info["lists"].syncColumns, want) {
		t.Errorf("lists syncColumns = %v, want %v", snap.info["lists"].syncColumns, want)
	}
	if c := items.column("done"); c == nil || c.logicalType != "boolean" || c.nullable || c.defaultKind != DefaultKindPortable || c.sqliteDflt != "0" {
		t.Errorf("column done = %+v", c)
	}
	if items.column("dropped") != nil || items.column("missing") != nil {
		t.Error("column() found a column the table does not have")
	}

	// The contract lists the delivered columns.
	var names []string
	for _, st := range snap.tables {
		names = append(names, st.TableName)
	}
	if want := []string{"items", "lists", "tags"}; !slices.Equal(names, want) {
		t.Errorf("contract tables = %v, want %v", names, want)
	}
	st := contractTable(t, snap, "items")
	wantItems := SchemaTable{
		TableName:       "items",
		PushPolicy:      "owner_only",
		ParentTable:     "lists",
		ParentFKCol:     "list_id",
		Dependencies:    []string{"lists"},
		UpdatedAtColumn: "updated_at",
		DeletedAtColumn: "deleted_at",
		PrimaryKey:      []string{"id"},
		Columns: []SchemaColumn{
			{Name: "id", DBType: "uuid", LogicalType: "string", DefaultKind: "none", IsPrimaryKey: true},
			{Name: "title", DBType: "text", LogicalType: "string", DefaultSQL: "''::text", DefaultKind: "portable", SQLiteDefaultSQL: "''"},
			{Name: "done", DBType: "boolean", LogicalType: "boolean", DefaultSQL: "false", DefaultKind: "portable", SQLiteDefaultSQL: "0"},
			{Name: "updated_at", DBType: "timestamp(3) with time zone", LogicalType: "datetime", DefaultSQL: "now()", DefaultKind: "portable", SQLiteDefaultSQL: "(strftime('%Y-%m-%dT%H:%M:%fZ','now'))"},
			{Name: "deleted_at", DBType: "timestamp without time zone", LogicalType: "datetime", Nullable: true, DefaultKind: "none"},
		},
	}
	if !reflect.DeepEqual(st, wantItems) {
		t.Errorf("items contract:\n got %+v\nwant %+v", st, wantItems)
	}
	lists := contractTable(t, snap, "lists")
	if lists.BucketByColumn != "user_id" || lists.BucketPrefix != "user:" || lists.Dependencies != nil {
		t.Errorf("lists contract: %+v", lists)
	}
	tags := contractTable(t, snap, "tags")
	if want := []string{"items", "lists"}; !slices.Equal(tags.Dependencies, want) {
		t.Errorf("tags dependencies = %v, want %v (sorted)", tags.Dependencies, want)
	}
	if cfg := reg.get("tags"); !slices.Equal(cfg.Dependencies, []string{"lists", "items"}) {
		t.Errorf("registered Dependencies were modified: %v", cfg.Dependencies)
	}
	if tags.PushPolicy != "disabled" || tags.UpdatedAtColumn != "updated_at" || tags.DeletedAtColumn != "deleted_at" {
		t.Errorf("tags contract: %+v", tags)
	}
	wantTagCols := []SchemaColumn{
		{Name: "id", DBType: "integer", LogicalType: "int", DefaultKind: "none", IsPrimaryKey: true},
		{Name: "label", DBType: "text", LogicalType: "string", Nullable: true, DefaultKind: "none"},
		{Name: "updated_at", DBType: "timestamp with time zone", LogicalType: "datetime", Nullable: true, DefaultKind: "none"},
		{Name: "deleted_at", DBType: "timestamp with time zone", LogicalType: "datetime", Nullable: true, DefaultKind: "none"},
	}
	if !reflect.DeepEqual(tags.Columns, wantTagCols) {
		t.Errorf("tags columns:\n got %+v\nwant %+v", tags.Columns, wantTagCols)
	}
}

func TestIntrospectHash(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDatabase(t)
	pgtest.Exec(t, db.Super, `
CREATE TABLE b_notes (id uuid PRIMARY KEY, user_id text, body text, updated_at timestamptz, deleted_at timestamptz);
CREATE TABLE a_tags (id integer PRIMARY KEY, label text)`)
	notes := func() *TableConfig {
		return &TableConfig{TableName: "b_notes", OwnerColumn: "user_id", Dependencies: []string{"a_tags"}}
	}
	tags := func() *TableConfig { return &TableConfig{TableName: "a_tags"} }

	regAB := newTestRegistry(t, notes(), tags())
	regBA := newTestRegistry(t, tags(), notes())
	first := mustIntrospect(t, db.App, regAB)
	second := mustIntrospect(t, db.App, regAB)
	reordered := mustIntrospect(t, db.App, regBA)

	if len(first.hash) != 64 || strings.ToLower(first.hash) != first.hash {
		t.Fatalf("hash %q is not 64 lowercase hex characters", first.hash)
	}
	if second.hash != first.hash {
		t.Errorf("hash changed between two calls: %s, %s", first.hash, second.hash)
	}
	if reordered.hash != first.hash {
		t.Errorf("hash depends on registration order: %s, %s", first.hash, reordered.hash)
	}
	if !reflect.DeepEqual(first.tables, reordered.tables) {
		t.Error("contract depends on registration order")
	}

	// The hash is SHA-256 of the canonical JSON.
	b, err := json.Marshal(map[string]any{"tables": first.tables})
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	if want := hex.EncodeToString(sum[:]); first.hash != want {
		t.Errorf("hash = %s, want sha256 of %s = %s", first.hash, b, want)
	}
	if !strings.HasPrefix(string(b), `{"tables":[{"table_name":"a_tags","push_policy":"disabled","updated_at_column":"updated_at","deleted_at_column":"deleted_at","primary_key":["id"],"columns":[`) {
		t.Errorf("unexpected canonical JSON: %s", b)
	}

	// A configuration change changes the hash.
	cfgChanged := mustIntrospect(t, db.App, newTestRegistry(t, notes(), &TableConfig{TableName: "a_tags", AllowGlobalRead: true}))
	if cfgChanged.hash == first.hash {
		t.Error("hash unchanged after a configuration change")
	}

	// A schema change changes the hash.
	pgtest.Exec(t, db.Super, `ALTER TABLE a_tags ADD COLUMN color text`)
	altered := mustIntrospect(t, db.App, regAB)
	if altered.hash == first.hash {
		t.Error("hash unchanged after ALTER TABLE ADD COLUMN")
	}
	pgtest.Exec(t, db.Super, `ALTER TABLE a_tags DROP COLUMN color`)
	if reverted := mustIntrospect(t, db.App, regAB); reverted.hash != first.hash {
		t.Error("hash differs after dropping the added column again")
	}
}

func TestIntrospectEmptyRegistry(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDatabase(t)
	counter := &countingDB{DB: db.App}
	snap := mustIntrospect(t, counter, NewRegistry())
	if len(snap.tables) != 0 || len(snap.info) != 0 || snap.tables == nil {
		t.Errorf("snapshot of an empty registry: %+v", snap)
	}
	if n := counter.queries.Load(); n != 0 {
		t.Errorf("introspect sent %d statements for no tables", n)
	}
	sum := sha256.Sum256([]byte(`{"tables":[]}`))
	if want := hex.EncodeToString(sum[:]); snap.hash != want {
		t.Errorf("hash = %s, want %s", snap.hash, want)
	}
	if _, err := introspect(t.Context(), nil, NewRegistry()); err == nil {
		t.Error("introspect with a nil DB succeeded")
	}
	if _, err := introspect(t.Context(), db.App, nil); err == nil {
		t.Error("introspect with a nil registry succeeded")
	}
}

func TestIntrospectSchemaQualified(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDatabase(t)
	pgtest.Exec(t, db.Super, `
CREATE SCHEMA "App Data";
CREATE TABLE "App Data"."Items" ("Id" uuid PRIMARY KEY, "Owner" text, updated_at timestamptz, deleted_at timestamptz);
CREATE SCHEMA s2;
CREATE TABLE public.dup (id integer PRIMARY KEY, in_public boolean);
CREATE TABLE s2.dup (id integer PRIMARY KEY, in_s2 boolean);
GRANT USAGE ON SCHEMA "App Data", s2 TO `+pgtest.AppRole)

	t.Run("qualified mixed case", func(t *testing.T) {
		t.Parallel()
		reg := newTestRegistry(t, &TableConfig{TableName: "App Data.Items", IDColumn: "Id", OwnerColumn: "Owner"})
		snap := mustIntrospect(t, db.App, reg)
		ti := snap.info["App Data.Items"]
		if ti == nil {
			t.Fatal("no info under the registered name")
		}
		if ti.schemaName != "App Data" || ti.relName != "Items" || ti.quoted != `"App Data"."Items"` {
			t.Errorf("names: %q %q %q", ti.schemaName, ti.relName, ti.quoted)
		}
		if st := contractTable(t, snap, "App Data.Items"); !slices.Equal(st.PrimaryKey, []string{"Id"}) || st.BucketByColumn != "Owner" {
			t.Errorf("contract: %+v", st)
		}
	})

	t.Run("unqualified resolves through the search path", func(t *testing.T) {
		t.Parallel()
		reg := newTestRegistry(t, &TableConfig{TableName: "dup"}, &TableConfig{TableName: "s2.dup"})

		snap := mustIntrospect(t, db.App, reg)
		if ti := snap.info["dup"]; ti.schemaName != "public" || ti.column("in_public") == nil {
			t.Errorf("dup resolved to %s", ti.quoted)
		}
		if ti := snap.info["s2.dup"]; ti.schemaName != "s2" || ti.column("in_s2") == nil {
			t.Errorf("s2.dup resolved to %s", ti.quoted)
		}

		conn, err := db.App.Conn(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if _, err := conn.ExecContext(t.Context(), `SET search_path = s2, public`); err != nil {
			t.Fatal(err)
		}
		snap = mustIntrospect(t, conn, reg)
		if ti := snap.info["dup"]; ti.schemaName != "s2" || ti.quoted != `"s2"."dup"` {
			t.Errorf("with search_path s2, public: dup resolved to %s", ti.quoted)
		}
	})
}

func TestIntrospectOptionalTimestamps(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDatabase(t)
	pgtest.Exec(t, db.Super, `
CREATE TABLE plain (id bigint PRIMARY KEY, user_id text, body text);
CREATE TABLE only_updated (id bigint PRIMARY KEY, user_id text, updated_at timestamp(0));
CREATE TABLE custom (id bigint PRIMARY KEY, user_id text, modified_at timestamptz, removed_at timestamptz);
CREATE TABLE soft (id bigint PRIMARY KEY, user_id text, note text, deleted_at timestamptz)`)
	reg := newTestRegistry(t,
		&TableConfig{TableName: "plain", OwnerColumn: "user_id"},
		&TableConfig{TableName: "only_updated", OwnerColumn: "user_id"},
		&TableConfig{TableName: "custom", OwnerColumn: "user_id", UpdatedAtColumn: "modified_at", DeletedAtColumn: "removed_at"},
		// SyncColumns leaves the real deleted_at out; updated_at is made up.
		&TableConfig{TableName: "soft", OwnerColumn: "user_id", SyncColumns: []string{"user_id", "note"}},
	)
	snap := mustIntrospect(t, db.App, reg)

	madeUp := func(name string) SchemaColumn {
		return SchemaColumn{Name: name, DBType: "timestamp with time zone", LogicalType: "datetime", Nullable: true, DefaultKind: "none"}
	}
	tests := []struct {
		table              string
		hasUpdated, hasDel bool
		updated, deleted   string
		columns            []string
		madeUp             []string
	}{
		{"plain", false, false, "updated_at", "deleted_at",
			[]string{"id", "user_id", "body", "updated_at", "deleted_at"}, []string{"updated_at", "deleted_at"}},
		{"only_updated", true, false, "updated_at", "deleted_at",
			[]string{"id", "user_id", "updated_at", "deleted_at"}, []string{"deleted_at"}},
		{"custom", true, true, "modified_at", "removed_at",
			[]string{"id", "user_id", "modified_at", "removed_at"}, nil},
		{"soft", false, true, "updated_at", "deleted_at",
			[]string{"id", "user_id", "note", "deleted_at", "updated_at"}, []string{"updated_at"}},
	}
	for _, tt := range tests {
		ti := snap.info[tt.table]
		if ti.hasUpdatedAt != tt.hasUpdated || ti.hasDeletedAt != tt.hasDel {
			t.Errorf("%s: hasUpdatedAt %v hasDeletedAt %v, want %v %v", tt.table, ti.hasUpdatedAt, ti.hasDeletedAt, tt.hasUpdated, tt.hasDel)
		}
		if ti.column(tt.updated) != nil != tt.hasUpdated || ti.column(tt.deleted) != nil != tt.hasDel {
			t.Errorf("%s: a made-up column is among the table's columns", tt.table)
		}
		st := contractTable(t, snap, tt.table)
		if st.UpdatedAtColumn != tt.updated || st.DeletedAtColumn != tt.deleted {
			t.Errorf("%s: contract columns %q %q, want %q %q", tt.table, st.UpdatedAtColumn, st.DeletedAtColumn, tt.updated, tt.deleted)
		}
		var names []string
		for _, c := range st.Columns {
			names = append(names, c.Name)
			if slices.Contains(tt.madeUp, c.Name) && c != madeUp(c.Name) {
				t.Errorf("%s: made-up column %+v, want %+v", tt.table, c, madeUp(c.Name))
			}
		}
		if !slices.Equal(names, tt.columns) {
			t.Errorf("%s: contract columns %v, want %v", tt.table, names, tt.columns)
		}
	}
	b, err := json.Marshal(contractTable(t, snap, "plain"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"updated_at_column":"updated_at","deleted_at_column":"deleted_at"`) ||
		!strings.HasSuffix(string(b), `{"name":"updated_at","db_type":"timestamp with time zone","logical_type":"datetime","nullable":true,"default_kind":"none","is_primary_key":false},`+
			`{"name":"deleted_at","db_type":"timestamp with time zone","logical_type":"datetime","nullable":true,"default_kind":"none","is_primary_key":false}]}`) {
		t.Errorf("made-up timestamp columns encoded as %s", b)
	}

	// The contract is the same at every introspection.
	if again := mustIntrospect(t, db.App, reg); again.hash != snap.hash || !reflect.DeepEqual(again.tables, snap.tables) {
		t.Errorf("hash %s, then %s", snap.hash, again.hash)
	}
}
