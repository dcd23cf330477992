package synchro

import (
	"sync"
	"sync/atomic"

	"github.com/synchrosync/synchro/internal/pgident"
)

// tableInfo is what introspection learned about one registered table. It is
// built once per schema refresh and never modified afterwards, so it is
// shared between requests without locking.
type tableInfo struct {
	// cfg is the registered configuration (read-only).
	cfg *TableConfig
	// schemaName and relName are the resolved namespace and relation name.
	schemaName, relName string
	// quoted is the fully qualified, quoted name: "public"."items".
	quoted string
	// columns are the physical columns in attnum order.
	columns []columnInfo
	// byName maps a column name to its index in columns.
	byName map[string]int
	// pk is the primary key column (always cfg.IDColumn).
	pk string
	// hasUpdatedAt and hasDeletedAt report whether the configured timestamp
	// columns exist in PostgreSQL. Without updated_at, conflict resolution
	// falls back to "last push wins"; without deleted_at, deletes are hard
	// deletes. (The contract names both columns all the same: see
	// delivered.)
	hasUpdatedAt, hasDeletedAt bool
	// syncColumns are the columns clients may write: SyncColumns in the
	// given order with the primary key added in front when missing, or
	// every column in attnum order.
	syncColumns []string
	// delivered is the projection sent to clients (pull, snapshot, push's
	// server_version) and listed by the schema contract, in this order: the
	// syncColumns, then the updated-at and then the deleted-at column when
	// syncColumns leaves them out. A timestamp column the table lacks is
	// made up (madeUp set): always NULL, typed timestamptz, nullable, with
	// no default.
	delivered []columnInfo
	// deepNumbers holds the keys, quoted as row_to_json writes them, of
	// the delivered columns whose values hold numbers inside them (arrays
	// of floats or numerics, arrays of types that are not built in), which
	// widenNumbers writes in the delivered form (numberform.go).
	deepNumbers map[string]bool
	// widens is set when a delivered column may hold a number that the
	// delivered form writes otherwise than row_to_json (a float, a
	// numeric, a domain over one, deepNumbers): rows of other tables are
	// delivered as row_to_json wrote them, unscanned (deliveredRow).
	widens bool

	// chain is the table's parent chain as the registry built it
	// (chain.go); set by the schema cache.
	chain *tableChain

	// pushOnce builds push, the fixed push statements of the table, on first
	// use.
	pushOnce sync.Once
	push     *pushStatements

	// lockRefs holds, once a push has read them from the catalog, the
	// columns whose values in a create name rows the push locks ahead
	// (pushlock.go). A foreign key added afterwards is seen when the table
	// is introspected anew (a change of the schema contract, a restart).
	lockRefs atomic.Pointer[[]lockRef]

	// readOnce builds read (or readErr), the statements that read the
	// table for clients, on first use.
	readOnce sync.Once
	read     *readStatements
	readErr  error
}

// columnInfo describes one physical column.
type columnInfo struct {
	name   string
	dbType string // format_type(atttypid, atttypmod)
	// castType is the type, after looking through domains, without its
	// modifier (format_type(base type, NULL); bpchar and "bit" for char and
	// bit, whose names alone mean a length of one): what a key given as text is
	// cast to, so that the cast never truncates or rounds it into another
	// row's key (see pkType), as a cast to a varchar(3) or a domain over
	// it would.
	castType string
	typeOID  uint32
	// typmod is the type modifier of the column's base type, declared on
	// the column or by its domain (catalogType.typmod); -1 when none.
	typmod int
	// base is the column's type after looking through domains: what the
	// code that decides by type (value checks, owner id forms) reads.
	base        catalogType
	logicalType string
	// value says which JSON forms a push may give the column
	// (pushvalues.go).
	value       valueSpec
	nullable    bool
	defaultSQL  string // the column's default, else its domain's (catalogColumn.defaultSQL); "" when none
	defaultKind string // DefaultKindNone, DefaultKindPortable or DefaultKindServerOnly
	sqliteDflt  string // SQLiteDefaultSQL
	isPK        bool
	// madeUp marks a timestamp column of the contract that the table does
	// not have (see tableInfo.delivered); it is never in tableInfo.columns.
	madeUp bool
}

// madeUpTimestampColumn is the contract's stand-in for a configured
// updated-at or deleted-at column the table does not have.
func madeUpTimestampColumn(name string) columnInfo {
	return columnInfo{
		name:        name,
		dbType:      "timestamp with time zone",
		typmod:      -1,
		logicalType: logicalDatetime,
		value:       valueSpec{kind: valueTimestampTZ},
		nullable:    true,
		defaultKind: DefaultKindNone,
		madeUp:      true,
	}
}

// deliveredSQL returns the select list of the delivered projection over the
// row alias: alias."col" for a real column, NULL::timestamptz AS "col" for a
// made-up one. row_to_json over a subquery of it gives every client-bound
// row object, whose keys are the contract's column names in its order.
func (t *tableInfo) deliveredSQL(alias string) []string {
	out := make([]string, len(t.delivered))
	for i, c := range t.delivered {
		if c.madeUp {
			out[i] = "NULL::timestamptz AS " + pgident.Quote(c.name)
		} else {
			out[i] = alias + "." + pgident.Quote(c.name)
		}
	}
	return out
}

// deliversWholeRow reports whether the delivered projection is every
// physical column in attnum order, so that the whole row is its JSON
// object.
func (t *tableInfo) deliversWholeRow() bool {
	if len(t.delivered) != len(t.columns) {
		return false
	}
	for i, c := range t.columns {
		if d := t.delivered[i]; d.madeUp || d.name != c.name {
			return false
		}
	}
	return true
}

// column returns the named column, or nil when the table has none.
func (t *tableInfo) column(name string) *columnInfo {
	if i, ok := t.byName[name]; ok {
		return &t.columns[i]
	}
	return nil
}

// introspection is what one reading of the catalog learned about every
// registered table ("snapshot" means only the client bootstrap).
type introspection struct {
	// tables is the canonical schema contract, sorted by table name.
	tables []SchemaTable
	// info holds the introspected tables by registered TableName.
	info map[string]*tableInfo
	// hash is the lowercase hex SHA-256 of the canonical contract.
	hash string
	// pull's page statements, built on first use (Engine.pullPage).
	pullPageCache
}
