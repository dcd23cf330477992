package store

// This file holds the statements on synchro.schema_manifest: each hash of
// the synced schema and the version it was given; versions only grow.

// LatestManifest reads the newest manifest row; no row before the first.
//
// no parameters -> bigint version, text hash
const LatestManifest = `SELECT schema_version, schema_hash FROM synchro.schema_manifest ORDER BY schema_version DESC LIMIT 1`

// InsertManifest records a new version of the schema contract.
//
// $1 bigint version, $2 text hash -> rows affected
const InsertManifest = `INSERT INTO synchro.schema_manifest (schema_version, schema_hash) VALUES ($1, $2)`

// ManifestHistory reads the newest manifest rows, newest first.
//
// $1 int limit -> bigint version, text hash, timestamptz created_at
const ManifestHistory = `SELECT schema_version, schema_hash, created_at FROM synchro.schema_manifest ORDER BY schema_version DESC LIMIT $1`
