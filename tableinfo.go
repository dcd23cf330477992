package synchro

import "sync"

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
	// columns exist. Without updated_at, conflict resolution falls back to
	// "last push wins"; without deleted_at, deletes are hard deletes.
	hasUpdatedAt, hasDeletedAt bool
	// syncColumns is the projection sent to clients (pull, snapshot,
	// server_version): SyncColumns in the given order with the primary key
	// added in front when missing, or every column in attnum order.
	syncColumns []string

	// ancestors are the tables above this one through ParentTable, nearest
	// first; set by the schema cache.
	ancestors []string

	// pushOnce builds push, the fixed push statements of the table, on first
	// use.
	pushOnce sync.Once
	push     *pushStatements

	// readOnce builds read (or readErr), the statements that read the
	// table for clients, on first use.
	readOnce sync.Once
	read     *readStatements
	readErr  error
}

// columnInfo describes one physical column.
type columnInfo struct {
	name        string
	dbType      string // format_type(atttypid, atttypmod)
	typeOID     uint32
	logicalType string
	nullable    bool
	defaultSQL  string // pg_get_expr(adbin, adrelid), "" when none
	defaultKind string // DefaultKindNone, DefaultKindPortable or DefaultKindServerOnly
	sqliteDflt  string // SQLiteDefaultSQL
	isPK        bool
}

// column returns the named column, or nil when the table has none.
func (t *tableInfo) column(name string) *columnInfo {
	if i, ok := t.byName[name]; ok {
		return &t.columns[i]
	}
	return nil
}

// schemaSnapshot is one introspection of every registered table.
type schemaSnapshot struct {
	// tables is the canonical schema contract, sorted by table name.
	tables []SchemaTable
	// info holds the introspected tables by registered TableName.
	info map[string]*tableInfo
	// hash is the lowercase hex SHA-256 of the canonical contract.
	hash string
}
