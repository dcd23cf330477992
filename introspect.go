package synchro

import (
	"cmp"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/synchrosync/synchro/internal/pgcatalog"
	"github.com/synchrosync/synchro/internal/pgident"
)

// This file reads the PostgreSQL catalog for the registered tables and builds
// the schema contract (the canonical []SchemaTable and its hash) together with
// the per-table tableInfo the engine works from.

// Logical column types of the schema contract.
const (
	logicalString   = "string"
	logicalInt      = "int"
	logicalInt64    = "int64"
	logicalFloat    = "float"
	logicalBoolean  = "boolean"
	logicalJSON     = "json"
	logicalBytes    = "bytes"
	logicalDate     = "date"
	logicalTime     = "time"
	logicalDatetime = "datetime"
)

// introspectQuery reads every column of every requested relation in one
// round trip. $1 is a text[] of quoted, possibly schema-qualified relation
// names; each is resolved with to_regclass, that is exactly as PostgreSQL
// resolves a name in a statement (an unqualified name through the search
// path, first match wins).
//
// One row is returned per (requested name, column), ordered by the position
// of the name in $1 and then by attnum. A name that does not resolve, or a
// relation without columns, still yields one row, with NULL column fields.
//
// Column types are resolved through any chain of domains to their base type
// (domain_nn reports whether one of those domains is NOT NULL or has the
// constraint CHECK (VALUE IS NOT NULL), and the type modifier is the base
// type's: the column's own or, for a domain, the one the domain declares,
// as timestamptz(0) in CREATE DOMAIN d AS timestamptz(0)); the type the
// column's values are cast to from text (castType) is the base type without
// a modifier, since a cast to a domain applies the modifier the domain
// declares (see pgcatalog.CastTypeSQL); pk_pos is the column's position in
// the primary key, NULL when it is not part of it. The last column is the default of the column's type
// when that is a domain: the one PostgreSQL uses for an insert that leaves
// out a column without a default of its own. Only the column's own domain
// counts: a domain over another copies that one's default when it is
// created, and the server never looks further down the chain.
var introspectQuery = `
WITH RECURSIVE
req AS (
	SELECT r.ord, pg_catalog.to_regclass(r.qname) AS relid
	FROM pg_catalog.unnest($1::text[]) WITH ORDINALITY AS r(qname, ord)
),
col AS (
	SELECT req.ord, c.oid AS relid, n.nspname, c.relname, c.relkind,
	       a.attnum, a.attname, a.atttypid, a.atttypmod, a.attndims, a.attnotnull,
	       d.adbin, d.adrelid
	FROM req
	LEFT JOIN pg_catalog.pg_class c ON c.oid = req.relid
	LEFT JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
	LEFT JOIN pg_catalog.pg_attribute a
	       ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
	LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
),
dom(start, cur, not_null, typmod) AS (
	SELECT t.oid, t.oid, false, -1
	FROM pg_catalog.pg_type t
	WHERE t.oid IN (SELECT col.atttypid FROM col)
	UNION ALL
	SELECT dom.start, t.typbasetype,
	       dom.not_null OR t.typnotnull OR EXISTS (
	           SELECT 1 FROM pg_catalog.pg_constraint k
	            WHERE k.contypid = t.oid AND k.contype = 'c'
	              AND pg_catalog.pg_get_constraintdef(k.oid) = 'CHECK ((VALUE IS NOT NULL))'),
	       CASE WHEN dom.typmod <> -1 THEN dom.typmod ELSE t.typtypmod END
	FROM dom
	JOIN pg_catalog.pg_type t ON t.oid = dom.cur
	WHERE t.typtype = 'd'
),
base AS (
	SELECT dom.start, dom.not_null, t.oid, t.typname, tn.nspname, t.typtype, t.typcategory,
	       t.typelem, t.typlen, dom.typmod
	FROM dom
	JOIN pg_catalog.pg_type t ON t.oid = dom.cur
	JOIN pg_catalog.pg_namespace tn ON tn.oid = t.typnamespace
	WHERE t.typtype <> 'd'
)
SELECT col.ord,
       col.relid IS NOT NULL,
       COALESCE(col.nspname::text, ''),
       COALESCE(col.relname::text, ''),
       COALESCE(col.relkind::text, ''),
       col.attnum,
       col.attname::text,
       pg_catalog.format_type(col.atttypid, col.atttypmod),
       ` + pgcatalog.CastTypeSQL("COALESCE(base.oid, col.atttypid)") + `,
       col.atttypid::int8,
       col.attndims,
       col.attnotnull,
       COALESCE(pg_catalog.pg_get_expr(col.adbin, col.adrelid), ''),
       (SELECT k.pos
          FROM pg_catalog.pg_index i
          CROSS JOIN LATERAL pg_catalog.unnest(i.indkey) WITH ORDINALITY AS k(attnum, pos)
         WHERE i.indrelid = col.relid AND i.indisprimary AND k.attnum = col.attnum),
       base.not_null,
       base.typname::text,
       base.nspname::text,
       base.typtype::text,
       base.typcategory::text,
       base.typelem::int8,
       base.typlen,
       CASE WHEN col.atttypmod <> -1 THEN col.atttypmod ELSE base.typmod END,
       (SELECT pg_catalog.pg_get_expr(t.typdefaultbin, 0)
          FROM pg_catalog.pg_type t
         WHERE t.oid = col.atttypid AND t.typtype = 'd'),
       pg_catalog.current_setting('server_encoding') = 'UTF8'
FROM col
LEFT JOIN base ON base.start = col.atttypid
ORDER BY col.ord, col.attnum`

// catalogRelation is what introspectQuery returned for one requested name.
type catalogRelation struct {
	found      bool
	schemaName string
	relName    string
	relkind    string
	columns    []catalogColumn
	// serverUTF8 is set when the database's encoding is UTF8 (see
	// valueSpec.serverUTF8).
	serverUTF8 bool
}

// catalogColumn is one column row of introspectQuery.
type catalogColumn struct {
	name     string
	dbType   string
	castType string // format_type of the base type, without a type modifier
	typeOID  uint32
	notNull  bool
	// defaultSQL is the column's default, pg_get_expr(adbin, adrelid), or
	// when it has none the default of its type, a domain (typeDefault);
	// "" when neither has one.
	defaultSQL  string
	typeDefault bool
	pkPos       int // 1-based position in the primary key, 0 when not part of it
	base        catalogType
}

// catalogType is a column's type after looking through domains.
type catalogType struct {
	known     bool // false when the catalog returned no type row
	name      string
	schema    string
	typtype   string
	category  string
	elem      uint32
	length    int
	domainNN  bool // a domain on the way to the base type is NOT NULL or CHECK (VALUE IS NOT NULL)
	arrayDims int  // attndims of the column
	// typmod is the base type's modifier, declared on the column or by a
	// domain on the way to the base type; -1 when none. For timestamp and
	// timestamptz it is the precision (fractional digits).
	typmod int
}

// introspect reads the catalog for every registered table and builds the
// schema contract.
//
// All tables are read with one catalog query. Each registered TableName is
// resolved as PostgreSQL would resolve it: "schema.table" in that schema, a
// bare name through the search path of db's session. The first problem found,
// in registration order, is returned; it names the table and, where there is
// one, the column. Problems with the schema itself (no or a composite primary
// key, an unsupported column type, a NOT NULL column of a pushable table with
// a default clients cannot reproduce offline) wrap ErrUnsupportedSchemaFeature.
func introspect(ctx context.Context, db DB, reg *Registry) (*introspection, error) {
	if db == nil {
		return nil, errors.New("synchro: introspect: nil database")
	}
	if reg == nil {
		return nil, errors.New("synchro: introspect: nil registry")
	}
	names := reg.TableNames()
	cfgs := make([]*TableConfig, len(names))
	quoted := make([]string, len(names))
	for i, name := range names {
		cfg := reg.get(name)
		if cfg == nil {
			return nil, fmt.Errorf("synchro: introspect: table %q vanished from the registry", name)
		}
		cfgs[i] = cfg
		quoted[i] = pgident.QuoteQualified(name)
	}

	rels, err := readCatalog(ctx, db, quoted)
	if err != nil {
		return nil, err
	}

	snap := &introspection{
		tables: make([]SchemaTable, 0, len(cfgs)),
		info:   make(map[string]*tableInfo, len(cfgs)),
	}
	for i, cfg := range cfgs {
		ti, st, err := buildTable(cfg, &rels[i])
		if err != nil {
			return nil, err
		}
		snap.info[cfg.TableName] = ti
		snap.tables = append(snap.tables, st)
	}
	slices.SortFunc(snap.tables, func(a, b SchemaTable) int { return cmp.Compare(a.TableName, b.TableName) })

	snap.hash, err = schemaHash(snap.tables)
	if err != nil {
		return nil, err
	}
	return snap, nil
}

// readCatalog runs introspectQuery for the quoted names and returns one
// catalogRelation per name, in the same order.
func readCatalog(ctx context.Context, db DB, quoted []string) ([]catalogRelation, error) {
	rels := make([]catalogRelation, len(quoted))
	if len(quoted) == 0 {
		return rels, nil
	}
	rows, err := db.QueryContext(ctx, introspectQuery, quoted)
	if err != nil {
		return nil, fmt.Errorf("synchro: reading the catalog: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			ord                                int64
			found                              bool
			nsp, rel, relkind                  string
			attnum, dims, typlen               sql.NullInt64
			attname, dbType, castType, dflt    sql.NullString
			typeDflt                           sql.NullString
			typeOID, pkPos, typelem, typmod    sql.NullInt64
			notNull, domainNN                  sql.NullBool
			typname, typnsp, typtype, category sql.NullString
			utf8                               bool
		)
		if err := rows.Scan(&ord, &found, &nsp, &rel, &relkind,
			&attnum, &attname, &dbType, &castType, &typeOID, &dims, &notNull, &dflt, &pkPos,
			&domainNN, &typname, &typnsp, &typtype, &category, &typelem, &typlen, &typmod, &typeDflt, &utf8); err != nil {
			return nil, fmt.Errorf("synchro: reading the catalog: %w", err)
		}
		if ord < 1 || ord > int64(len(rels)) {
			return nil, fmt.Errorf("synchro: reading the catalog: unexpected relation index %d", ord)
		}
		r := &rels[ord-1]
		r.found, r.schemaName, r.relName, r.relkind, r.serverUTF8 = found, nsp, rel, relkind, utf8
		if !attnum.Valid {
			continue // relation not found, or without columns
		}
		mod := -1
		if typmod.Valid {
			mod = int(typmod.Int64)
		}
		def, ofType := dflt.String, false
		if def == "" && typeDflt.String != "" {
			def, ofType = typeDflt.String, true
		}
		r.columns = append(r.columns, catalogColumn{
			name:        attname.String,
			dbType:      dbType.String,
			castType:    castType.String,
			typeOID:     uint32(typeOID.Int64),
			notNull:     notNull.Bool,
			defaultSQL:  def,
			typeDefault: ofType,
			pkPos:       int(pkPos.Int64),
			base: catalogType{
				known:     typname.Valid,
				name:      typname.String,
				schema:    typnsp.String,
				typtype:   typtype.String,
				category:  category.String,
				elem:      uint32(typelem.Int64),
				length:    int(typlen.Int64),
				domainNN:  domainNN.Bool,
				arrayDims: int(dims.Int64),
				typmod:    mod,
			},
		})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("synchro: reading the catalog: %w", err)
	}
	return rels, nil
}

// relkindNames describes the relation kinds that cannot be synced.
var relkindNames = map[string]string{
	"v": "a view",
	"m": "a materialized view",
	"f": "a foreign table",
	"S": "a sequence",
	"i": "an index",
	"I": "a partitioned index",
	"c": "a composite type",
	"t": "a TOAST table",
}

// buildTable checks one table against its configuration and builds its
// tableInfo and its entry of the schema contract.
func buildTable(cfg *TableConfig, rel *catalogRelation) (*tableInfo, SchemaTable, error) {
	table := cfg.TableName
	fail := func(sentinel error, format string, args ...any) (*tableInfo, SchemaTable, error) {
		msg := fmt.Sprintf(format, args...)
		if sentinel == nil {
			return nil, SchemaTable{}, fmt.Errorf("synchro: table %q: %s", table, msg)
		}
		return nil, SchemaTable{}, fmt.Errorf("%w: table %q: %s", sentinel, table, msg)
	}

	if !rel.found {
		if !strings.Contains(table, ".") {
			return fail(nil, "relation %s does not exist in the search path", pgident.Quote(table))
		}
		return fail(nil, "relation %s does not exist", pgident.QuoteQualified(table))
	}
	if rel.relkind != "r" && rel.relkind != "p" {
		what := relkindNames[rel.relkind]
		if what == "" {
			what = fmt.Sprintf("a relation of kind %q", rel.relkind)
		}
		return fail(nil, "%s.%s is %s, not a table", rel.schemaName, rel.relName, what)
	}

	ti := &tableInfo{
		cfg:        cfg,
		schemaName: rel.schemaName,
		relName:    rel.relName,
		quoted:     pgx.Identifier{rel.schemaName, rel.relName}.Sanitize(),
		columns:    make([]columnInfo, 0, len(rel.columns)),
		byName:     make(map[string]int, len(rel.columns)),
	}

	// Primary key: exactly one column, the configured IDColumn.
	var pkCols []string
	for _, c := range rel.columns {
		if c.pkPos > 0 {
			pkCols = append(pkCols, c.name)
		}
	}
	switch {
	case len(pkCols) == 0:
		return fail(ErrUnsupportedSchemaFeature, "no primary key (want a single-column primary key on %q)", cfg.IDColumn)
	case len(pkCols) > 1:
		slices.SortFunc(pkCols, func(a, b string) int {
			return cmp.Compare(pkPosition(rel, a), pkPosition(rel, b))
		})
		return fail(ErrUnsupportedSchemaFeature, "composite primary key (%s); want a single-column primary key on %q",
			strings.Join(quoteAll(pkCols), ", "), cfg.IDColumn)
	case pkCols[0] != cfg.IDColumn:
		return fail(nil, "primary key column %q is not IDColumn %q", pkCols[0], cfg.IDColumn)
	}
	ti.pk = pkCols[0]

	// Columns, in attnum order.
	for _, c := range rel.columns {
		logical, err := mapLogicalType(c.base)
		if err != nil {
			return fail(ErrUnsupportedSchemaFeature, "column %q: type %s is not supported: %v", c.name, c.dbType, err)
		}
		value := valueSpecOf(c.base)
		kind, sqliteDefault := classifyDefault(c.defaultSQL, value)
		ti.byName[c.name] = len(ti.columns)
		ti.columns = append(ti.columns, columnInfo{
			name:        c.name,
			dbType:      c.dbType,
			castType:    c.castType,
			typeOID:     c.typeOID,
			logicalType: logical,
			typmod:      c.base.typmod,
			base:        c.base,
			value:       value.inDatabase(rel.serverUTF8),
			nullable:    !c.notNull && !c.base.domainNN,
			defaultSQL:  c.defaultSQL,
			defaultKind: kind,
			sqliteDflt:  sqliteDefault,
			isPK:        c.name == ti.pk,
		})
	}

	// Configured columns must exist.
	mustExist := []struct{ field, col string }{
		{"OwnerColumn", cfg.OwnerColumn},
		{"ParentFKCol", cfg.ParentFKCol},
		{"BucketByColumn", cfg.BucketByColumn},
	}
	for _, f := range mustExist {
		if f.col != "" && ti.column(f.col) == nil {
			return fail(nil, "%s %q: column does not exist", f.field, f.col)
		}
	}
	for _, col := range cfg.SyncColumns {
		if ti.column(col) == nil {
			return fail(nil, "SyncColumns entry %q: column does not exist", col)
		}
	}
	for _, col := range cfg.ProtectedColumns {
		if ti.column(col) == nil {
			return fail(nil, "ProtectedColumns entry %q: column does not exist", col)
		}
	}

	// Timestamp columns: optional when defaulted, of a timestamp type.
	var err error
	ti.hasUpdatedAt, err = checkTimestampColumn(ti, rel, "UpdatedAtColumn", cfg.UpdatedAtColumn, cfg.updatedAtDefaulted, false)
	if err != nil {
		return fail(nil, "%v", err)
	}
	ti.hasDeletedAt, err = checkTimestampColumn(ti, rel, "DeletedAtColumn", cfg.DeletedAtColumn, cfg.deletedAtDefaulted, true)
	if err != nil {
		return fail(nil, "%v", err)
	}

	// Offline defaults: a client must be able to insert into a pushable table
	// without a value for a NOT NULL column whose default only the server
	// can compute, the column's own or its domain's.
	if cfg.PushPolicy == PushPolicyOwnerOnly {
		protected := cfg.protectedSet()
		for i := range ti.columns {
			c := &ti.columns[i]
			if c.nullable || c.isPK || c.defaultSQL == "" || c.defaultKind != DefaultKindServerOnly {
				continue
			}
			if _, ok := protected[c.name]; ok {
				continue
			}
			of := ""
			if rel.columns[i].typeDefault { // ti.columns are rel.columns, in order
				of = " (the default of its type " + c.dbType + ")"
			}
			return fail(ErrUnsupportedSchemaFeature,
				"column %q: NOT NULL with default %s%s, which is not portable to SQLite (clients cannot insert offline); make it nullable, protected, or give it a literal default",
				c.name, c.defaultSQL, of)
		}
	}

	// Projection sent to clients.
	if cfg.SyncColumns == nil {
		ti.syncColumns = make([]string, len(ti.columns))
		for i, c := range ti.columns {
			ti.syncColumns[i] = c.name
		}
	} else {
		ti.syncColumns = make([]string, 0, len(cfg.SyncColumns)+1)
		if !slices.Contains(cfg.SyncColumns, ti.pk) {
			ti.syncColumns = append(ti.syncColumns, ti.pk)
		}
		ti.syncColumns = append(ti.syncColumns, cfg.SyncColumns...)
	}
	ti.delivered = deliveredColumns(ti)
	for _, c := range ti.delivered {
		switch numberOID(c) {
		case oidFloat4, oidFloat8, oidNumeric:
			ti.widens = true
		}
		if deepNumbers(c) {
			ti.widens = true
			if ti.deepNumbers == nil {
				ti.deepNumbers = map[string]bool{}
			}
			ti.deepNumbers[string(appendPGJSONString(nil, c.name))] = true
		}
	}

	return ti, schemaTable(ti), nil
}

// deliveredColumns lists the projection sent to clients and named by the
// contract: the sync columns, then the configured updated-at and deleted-at
// columns unless the sync columns hold them already. A timestamp column the
// table lacks is made up; so every table of the contract has both, and they
// come after the table's real columns when made up.
func deliveredColumns(ti *tableInfo) []columnInfo {
	out := make([]columnInfo, 0, len(ti.syncColumns)+2)
	for _, name := range ti.syncColumns {
		out = append(out, *ti.column(name))
	}
	for _, name := range []string{ti.cfg.UpdatedAtColumn, ti.cfg.DeletedAtColumn} {
		if slices.ContainsFunc(out, func(c columnInfo) bool { return c.name == name }) {
			continue
		}
		if c := ti.column(name); c != nil {
			out = append(out, *c)
		} else {
			out = append(out, madeUpTimestampColumn(name))
		}
	}
	// Real columns first, made-up ones after them (a real deleted-at column
	// left out of SyncColumns precedes a made-up updated-at column).
	slices.SortStableFunc(out, func(a, b columnInfo) int {
		switch {
		case a.madeUp == b.madeUp:
			return 0
		case a.madeUp:
			return 1
		}
		return -1
	})
	return out
}

// pkPosition returns the primary key position of the named column of rel.
func pkPosition(rel *catalogRelation, name string) int {
	for _, c := range rel.columns {
		if c.name == name {
			return c.pkPos
		}
	}
	return 0
}

// quoteAll returns names quoted as identifiers, for messages.
func quoteAll(names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = pgident.Quote(n)
	}
	return out
}

// checkTimestampColumn checks the timestamp column configured in field and
// reports whether the table has it. A defaulted column may be absent; an
// explicitly configured one must exist. A present column must be of type
// timestamp or timestamptz (any precision, possibly through a domain) and,
// when mustBeNullable, nullable.
func checkTimestampColumn(ti *tableInfo, rel *catalogRelation, field, name string, defaulted, mustBeNullable bool) (bool, error) {
	c := ti.column(name)
	if c == nil {
		if defaulted {
			return false, nil
		}
		return false, fmt.Errorf("%s %q: column does not exist", field, name)
	}
	base := rel.columns[ti.byName[name]].base
	if !isTimestampType(base) {
		return false, fmt.Errorf("%s %q: type %s is not timestamp or timestamptz", field, name, c.dbType)
	}
	if mustBeNullable && !c.nullable {
		return false, fmt.Errorf("%s %q: column must be nullable (NULL marks a live row)", field, name)
	}
	return true, nil
}

// isTimestampType reports whether t is timestamp or timestamptz (not an
// array of them).
func isTimestampType(t catalogType) bool {
	return t.known && t.schema == "pg_catalog" && t.arrayDims == 0 &&
		(t.name == "timestamp" || t.name == "timestamptz")
}

// builtinLogicalTypes maps base types of schema pg_catalog, by typname, to
// their logical type.
var builtinLogicalTypes = map[string]string{
	"bool":        logicalBoolean,
	"int2":        logicalInt,
	"int4":        logicalInt,
	"int8":        logicalInt64,
	"float4":      logicalFloat,
	"float8":      logicalFloat,
	"numeric":     logicalFloat,
	"text":        logicalString,
	"varchar":     logicalString,
	"bpchar":      logicalString,
	"char":        logicalString,
	"name":        logicalString,
	"uuid":        logicalString,
	"json":        logicalJSON,
	"jsonb":       logicalJSON,
	"bytea":       logicalBytes,
	"date":        logicalDate,
	"time":        logicalTime,
	"timetz":      logicalTime,
	"timestamp":   logicalDatetime,
	"timestamptz": logicalDatetime,
	"interval":    logicalString,
	"inet":        logicalString,
	"cidr":        logicalString,
	"macaddr":     logicalString,
	"macaddr8":    logicalString,
	"money":       logicalString,
	"xml":         logicalString,
	"bit":         logicalString,
	"varbit":      logicalString,
	"tsvector":    logicalString,
	"tsquery":     logicalString,
	"oid":         logicalString,
	"point":       logicalString,
	"line":        logicalString,
	"lseg":        logicalString,
	"box":         logicalString,
	"path":        logicalString,
	"polygon":     logicalString,
	"circle":      logicalString,
}

// mapLogicalType returns the logical type of a column whose type, after
// looking through domains, is t. The error explains why the type is not
// supported; the caller names the table and column.
//
// Arrays map to json, enums, ranges and multiranges to string, built-in base
// types as listed in builtinLogicalTypes, and other base types (such as the
// citext and hstore extension types) to string when their type category is
// string or user-defined. Composite and pseudo types are refused.
func mapLogicalType(t catalogType) (string, error) {
	if !t.known {
		return "", errors.New("its type is not in the catalog")
	}
	if t.arrayDims > 0 || t.category == "A" || (t.elem != 0 && t.length == -1) {
		return logicalJSON, nil
	}
	switch t.typtype {
	case "e", "r", "m":
		return logicalString, nil
	case "c":
		return "", errors.New("composite types cannot be synced")
	case "p":
		return "", errors.New("pseudo-types cannot be synced")
	case "b":
	default:
		return "", fmt.Errorf("unexpected type kind %q", t.typtype)
	}
	if t.schema == "pg_catalog" {
		if logical, ok := builtinLogicalTypes[t.name]; ok {
			return logical, nil
		}
	}
	switch t.category {
	case "S", "U":
		return logicalString, nil
	}
	return "", fmt.Errorf("base type %s.%s (category %q) has no logical type", t.schema, t.name, t.category)
}

// castSuffixRE matches what may follow "::" in a type cast as pg_get_expr
// prints it: a possibly qualified, possibly quoted type name with optional
// type modifiers and the key words of the multi-word SQL types, optional
// array brackets and an optional COLLATE clause, for example
// `timestamp(3) with time zone`, `character varying(10)[]` or
// `public."Status"`. Anything else after "::" (an operator, a second
// operand) means the cast is not the outermost expression.
var castSuffixRE = func() *regexp.Regexp {
	const (
		ident     = `(?:[\p{L}_][\p{L}\p{N}_$]*|"(?:[^"]|"")+")`
		qualified = ident + `(?:\s*\.\s*` + ident + `)*`
		typmod    = `(?:\s*\(\s*\d+(?:\s*,\s*\d+)*\s*\))`
		keyword   = `(?i:precision|varying|with|without|time|zone|to|year|month|day|hour|minute|second)`
		collate   = `(?:\s+(?i:collate)\s+` + qualified + `)`
	)
	return regexp.MustCompile(`^\s*` + qualified + typmod + `?(?:\s+` + keyword + typmod + `?)*` +
		`(?:\s*\[\s*\d*\s*\])*` + collate + `?\s*$`)
}()

var (
	numericLiteralRE = regexp.MustCompile(`^[+-]?\d+(?:\.\d+)?$`)
	stringLiteralRE  = regexp.MustCompile(`^'(?:[^']|'')*'$`)
)

// classifyDefault classifies a column default as pg_get_expr prints it and
// returns its kind (DefaultKindNone, DefaultKindPortable or
// DefaultKindServerOnly) and, for a portable default, the equivalent SQLite
// default expression. spec is what the column accepts in a push
// (valueSpecOf of its type, through domains): it tells timestamp and
// array columns.
//
// The expression is normalised by removing trailing casts and enclosing
// parentheses, repeatedly: `(true)::boolean` becomes `true`. What is left is
// portable when it is NULL, TRUE or FALSE (SQLite 1 and 0), a plain number, a
// single-quoted string literal (kept as written, quotes included: Postgres
// prints most constants, numbers with a sign included, as `'-1'::integer`),
// or one of now(), CURRENT_TIMESTAMP, transaction_timestamp(),
// statement_timestamp() (SQLite CURRENT_TIMESTAMP), CURRENT_DATE or
// CURRENT_TIME. Anything else, such as gen_random_uuid() or nextval(...), is
// server_only.
//
// A timestamp column gets RFC 3339 text in UTC instead, the form clients
// compare and the server parses: for a current-time default,
// sqliteNowRFC3339; for a literal PostgreSQL printed in ISO style, the same
// instant rewritten, such as '2024-01-02T03:04:05.000Z' (a timestamp
// without time zone is read as UTC). SQLite's CURRENT_TIMESTAMP would give
// "2024-01-02 03:04:05", without the T and the zone.
//
// An array column's string literal is given as PostgreSQL's text of the
// array ('{}', '{1,2}'), which a push takes back as the array
// (convertArrayText). It is not rewritten as JSON text: that would change
// every such contract, and with it the schema hash (every device would
// rebuild its tables), and some defaults have no JSON form (bounds, box's
// ';' between elements, dates in another DateStyle).
func classifyDefault(expr string, spec valueSpec) (kind, sqliteDefault string) {
	if strings.TrimSpace(expr) == "" {
		return DefaultKindNone, ""
	}
	s := normalizeDefault(expr)
	if !spec.array && (spec.kind == valueTimestamp || spec.kind == valueTimestampTZ) {
		if lit, ok := sqliteTimestampDefault(s); ok {
			return DefaultKindPortable, lit
		}
	}
	if lit, ok := sqliteDefaultFor(s); ok {
		return DefaultKindPortable, lit
	}
	return DefaultKindServerOnly, ""
}

// stringLiteralText returns the text of s when it is a single-quoted SQL
// string literal, with its doubled quotes made single.
func stringLiteralText(s string) (string, bool) {
	if !stringLiteralRE.MatchString(s) {
		return "", false
	}
	return strings.ReplaceAll(s[1:len(s)-1], "''", "'"), true
}

// sqliteNowRFC3339 is the SQLite default of a timestamp column whose
// PostgreSQL default is the current time: the time of the insert as RFC 3339
// text in UTC with milliseconds (2024-01-02T03:04:05.678Z). SQLite requires
// an expression default to be parenthesised.
const sqliteNowRFC3339 = `(strftime('%Y-%m-%dT%H:%M:%fZ','now'))`

// isNowDefault reports whether a normalised default is the current time.
func isNowDefault(s string) bool {
	switch strings.ToLower(s) {
	case "now()", "current_timestamp", "transaction_timestamp()", "statement_timestamp()":
		return true
	}
	return false
}

// pgTimestampLayouts are the ISO-style forms in which PostgreSQL prints
// timestamp constants, with the zone for timestamptz; the fraction is
// optional in each.
var pgTimestampLayouts = []string{
	"2006-01-02 15:04:05.999999999-07",
	"2006-01-02 15:04:05.999999999-07:00",
	"2006-01-02 15:04:05.999999999-07:00:00",
	"2006-01-02 15:04:05.999999999",
}

// sqliteTimestampDefault returns the SQLite default of a timestamp column
// for a normalised default that is the current time or a timestamp literal
// in ISO style. It reports false for anything else (such as 'infinity'),
// which is then classified like the default of any column.
func sqliteTimestampDefault(s string) (string, bool) {
	if isNowDefault(s) {
		return sqliteNowRFC3339, true
	}
	if !stringLiteralRE.MatchString(s) {
		return "", false
	}
	text := s[1 : len(s)-1]
	for _, layout := range pgTimestampLayouts {
		t, err := time.Parse(layout, text)
		if err != nil {
			continue
		}
		out := "2006-01-02T15:04:05.000Z07:00"
		if t.Nanosecond()%int(time.Millisecond) != 0 {
			out = "2006-01-02T15:04:05.000000Z07:00"
		}
		return "'" + t.UTC().Format(out) + "'", true
	}
	return "", false
}

// sqliteDefaultFor returns the SQLite equivalent of a normalised default.
func sqliteDefaultFor(s string) (string, bool) {
	if isNowDefault(s) {
		return "CURRENT_TIMESTAMP", true
	}
	switch strings.ToLower(s) {
	case "null":
		return "NULL", true
	case "true":
		return "1", true
	case "false":
		return "0", true
	case "current_date":
		return "CURRENT_DATE", true
	case "current_time":
		return "CURRENT_TIME", true
	}
	if numericLiteralRE.MatchString(s) || stringLiteralRE.MatchString(s) {
		return s, true
	}
	return "", false
}

// normalizeDefault strips trailing type casts and enclosing parentheses from
// a default expression until neither is left.
func normalizeDefault(s string) string {
	for {
		s = strings.TrimSpace(s)
		if i := lastTopLevelCast(s); i >= 0 && castSuffixRE.MatchString(s[i+2:]) {
			s = s[:i]
			continue
		}
		if enclosedInParens(s) {
			s = s[1 : len(s)-1]
			continue
		}
		return s
	}
}

// lastTopLevelCast returns the index of the last "::" of s that is outside
// string literals, quoted identifiers and parentheses, or -1.
func lastTopLevelCast(s string) int {
	last := -1
	scanTopLevel(s, func(i, depth int) {
		if depth == 0 && s[i] == ':' && i+1 < len(s) && s[i+1] == ':' {
			last = i
		}
	})
	// "a:::b" is not valid SQL; make sure the match is the start of "::".
	if last > 0 && s[last-1] == ':' {
		return -1
	}
	return last
}

// enclosedInParens reports whether s is one parenthesised expression: it
// starts with "(" and the parenthesis matching it is the last byte.
func enclosedInParens(s string) bool {
	if len(s) < 2 || s[0] != '(' || s[len(s)-1] != ')' {
		return false
	}
	closedAt := -1
	scanTopLevel(s, func(i, depth int) {
		if closedAt < 0 && i > 0 && depth == 0 && s[i] == ')' {
			closedAt = i
		}
	})
	return closedAt == len(s)-1
}

// scanTopLevel calls fn for every byte of s that is outside string literals
// and quoted identifiers, with the parenthesis depth before that byte for
// "(" and after it for ")", so that both parentheses of a pair see the same
// depth. Doubled quotes inside literals need no special case: they close and
// reopen the literal.
func scanTopLevel(s string, fn func(i, depth int)) {
	depth := 0
	var quote byte
	for i := 0; i < len(s); i++ {
		ch := s[i]
		if quote != 0 {
			if ch == quote {
				quote = 0
			}
			continue
		}
		switch ch {
		case '\'', '"':
			quote = ch
		case '(':
			fn(i, depth)
			depth++
			continue
		case ')':
			depth--
		}
		fn(i, depth)
	}
}

// schemaTable builds the contract entry of one introspected table. It names
// the configured updated-at and deleted-at columns whether or not the table
// has them, and lists the delivered columns (see deliveredColumns).
func schemaTable(ti *tableInfo) SchemaTable {
	cfg := ti.cfg
	st := SchemaTable{
		TableName:            cfg.TableName,
		PushPolicy:           string(cfg.PushPolicy),
		ParentTable:          cfg.ParentTable,
		ParentFKCol:          cfg.ParentFKCol,
		PrimaryKey:           []string{ti.pk},
		BucketByColumn:       cfg.BucketByColumn,
		BucketPrefix:         cfg.BucketPrefix,
		GlobalWhenBucketNull: cfg.GlobalWhenBucketNull,
		AllowGlobalRead:      cfg.AllowGlobalRead,
		BucketFunction:       cfg.BucketFunction,
		UpdatedAtColumn:      cfg.UpdatedAtColumn,
		DeletedAtColumn:      cfg.DeletedAtColumn,
		Columns:              make([]SchemaColumn, len(ti.delivered)),
	}
	if len(cfg.Dependencies) > 0 {
		st.Dependencies = slices.Sorted(slices.Values(cfg.Dependencies))
	}
	for i, c := range ti.delivered {
		st.Columns[i] = SchemaColumn{
			Name:             c.name,
			DBType:           c.dbType,
			LogicalType:      c.logicalType,
			Nullable:         c.nullable,
			DefaultSQL:       c.defaultSQL,
			DefaultKind:      c.defaultKind,
			SQLiteDefaultSQL: c.sqliteDflt,
			IsPrimaryKey:     c.isPK,
		}
	}
	return st
}

// schemaHash returns the lowercase hex SHA-256 of the canonical JSON
// encoding of the contract: {"tables":[...]} as encoding/json prints it.
func schemaHash(tables []SchemaTable) (string, error) {
	if tables == nil {
		tables = []SchemaTable{}
	}
	b, err := json.Marshal(struct {
		Tables []SchemaTable `json:"tables"`
	}{tables})
	if err != nil {
		return "", fmt.Errorf("synchro: encoding the schema contract: %w", err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}
