package synchro

import "time"

// This file holds the schema contract that clients read to build their local
// tables, and the table metadata summary.

// SchemaColumn describes a table column for client-side table creation.
type SchemaColumn struct {
	Name             string `json:"name"`
	DBType           string `json:"db_type"`
	LogicalType      string `json:"logical_type"`
	Nullable         bool   `json:"nullable"`
	DefaultSQL       string `json:"default_sql,omitempty"`
	DefaultKind      string `json:"default_kind"`
	SQLiteDefaultSQL string `json:"sqlite_default_sql,omitempty"`
	IsPrimaryKey     bool   `json:"is_primary_key"`
}

// SchemaTable describes table metadata and column definitions.
//
// Columns are exactly the keys of the row objects pulls, snapshots and
// push's server_version deliver for the table, and UpdatedAtColumn and
// DeletedAtColumn always name two of them: the configured names, made-up
// columns (nullable timestamptz without a default, after the real columns,
// always delivered as null, ignored by push) when the table lacks them. See
// "The schema contract" in the package documentation.
type SchemaTable struct {
	TableName            string         `json:"table_name"`
	PushPolicy           string         `json:"push_policy"`
	ParentTable          string         `json:"parent_table,omitempty"`
	ParentFKCol          string         `json:"parent_fk_col,omitempty"`
	Dependencies         []string       `json:"dependencies,omitempty"`
	UpdatedAtColumn      string         `json:"updated_at_column"`
	DeletedAtColumn      string         `json:"deleted_at_column"`
	PrimaryKey           []string       `json:"primary_key"`
	BucketByColumn       string         `json:"bucket_by_column,omitempty"`
	BucketPrefix         string         `json:"bucket_prefix,omitempty"`
	GlobalWhenBucketNull bool           `json:"global_when_bucket_null,omitempty"`
	AllowGlobalRead      bool           `json:"allow_global_read,omitempty"`
	BucketFunction       string         `json:"bucket_function,omitempty"`
	Columns              []SchemaColumn `json:"columns"`
}

// SchemaResponse returns the full sync schema contract.
type SchemaResponse struct {
	SchemaVersion int64         `json:"schema_version"`
	SchemaHash    string        `json:"schema_hash"`
	ServerTime    time.Time     `json:"server_time"`
	Tables        []SchemaTable `json:"tables"`
}

// SchemaManifestEntry represents one persisted schema manifest version.
type SchemaManifestEntry struct {
	SchemaVersion int64     `json:"schema_version"`
	SchemaHash    string    `json:"schema_hash"`
	CreatedAt     time.Time `json:"created_at"`
}

// TableMeta describes a single table's sync configuration. UpdatedAtColumn
// and DeletedAtColumn are the configured names, as in [SchemaTable].
type TableMeta struct {
	TableName            string   `json:"table_name"`
	PushPolicy           string   `json:"push_policy"`
	Dependencies         []string `json:"dependencies"`
	ParentTable          string   `json:"parent_table,omitempty"`
	ParentFKCol          string   `json:"parent_fk_col,omitempty"`
	UpdatedAtColumn      string   `json:"updated_at_column,omitempty"`
	DeletedAtColumn      string   `json:"deleted_at_column,omitempty"`
	BucketByColumn       string   `json:"bucket_by_column,omitempty"`
	BucketPrefix         string   `json:"bucket_prefix,omitempty"`
	GlobalWhenBucketNull bool     `json:"global_when_bucket_null,omitempty"`
	AllowGlobalRead      bool     `json:"allow_global_read,omitempty"`
	BucketFunction       string   `json:"bucket_function,omitempty"`
}

// TableMetaResponse is the response of Engine.TableMetadata: every registered
// table's sync configuration with the current schema manifest.
type TableMetaResponse struct {
	Tables        []TableMeta `json:"tables"`
	ServerTime    time.Time   `json:"server_time"`
	SchemaVersion int64       `json:"schema_version"`
	SchemaHash    string      `json:"schema_hash"`
}
