package synchro

import (
	"encoding/json"
	"time"
)

// This file holds the request and response types that travel between a client
// device and the engine. Their JSON field names are the wire format.

// Record represents a single synced record. ID is the row's primary key as
// PostgreSQL prints it, the same in snapshots, pulls and the row's data
// (a char(n) key padded to n characters).
type Record struct {
	ID        string          `json:"id"`
	TableName string          `json:"table_name"`
	Data      json.RawMessage `json:"data"`
	UpdatedAt time.Time       `json:"updated_at"`
	DeletedAt *time.Time      `json:"deleted_at,omitempty"`
}

// DeleteEntry represents a deleted record in a pull response.
type DeleteEntry struct {
	ID        string `json:"id"`
	TableName string `json:"table_name"`
}

// AcceptedRecord contains information about a successfully pushed record.
// Hooks.OnPushAccepted receives one per applied record.
type AcceptedRecord struct {
	ID        string
	TableName string
	Operation Operation
}

// BucketUpdate describes changes to a client's bucket subscriptions.
type BucketUpdate struct {
	Added   []string `json:"added,omitempty"`
	Removed []string `json:"removed,omitempty"`
}

// ChangelogEntry represents a single entry in the sync changelog.
type ChangelogEntry struct {
	Seq       int64     `json:"seq"`
	BucketID  string    `json:"bucket_id"`
	TableName string    `json:"table_name"`
	RecordID  string    `json:"record_id"`
	Operation Operation `json:"operation"`
	CreatedAt time.Time `json:"created_at"`
}

// Client represents a registered sync client device.
type Client struct {
	ID          string     `json:"id"`
	UserID      string     `json:"user_id"`
	ClientID    string     `json:"client_id"`
	ClientName  *string    `json:"client_name,omitempty"`
	Platform    string     `json:"platform"`
	AppVersion  string     `json:"app_version"`
	BucketSubs  []string   `json:"bucket_subs,omitempty"`
	LastSyncAt  *time.Time `json:"last_sync_at,omitempty"`
	LastPullAt  *time.Time `json:"last_pull_at,omitempty"`
	LastPushAt  *time.Time `json:"last_push_at,omitempty"`
	LastPullSeq *int64     `json:"last_pull_seq,omitempty"`
	IsActive    bool       `json:"is_active"`
	CreatedAt   time.Time  `json:"created_at"`
	UpdatedAt   time.Time  `json:"updated_at"`
}

// RegisterRequest is the request body for client registration.
type RegisterRequest struct {
	ClientID      string  `json:"client_id"`
	ClientName    *string `json:"client_name,omitempty"`
	Platform      string  `json:"platform"`
	AppVersion    string  `json:"app_version"`
	SchemaVersion int64   `json:"schema_version,omitempty"`
	SchemaHash    string  `json:"schema_hash,omitempty"`
}

// RegisterResponse is the response for client registration.
type RegisterResponse struct {
	ID            string     `json:"id"`
	ServerTime    time.Time  `json:"server_time"`
	LastSyncAt    *time.Time `json:"last_sync_at,omitempty"`
	Checkpoint    int64      `json:"checkpoint"`
	SchemaVersion int64      `json:"schema_version"`
	SchemaHash    string     `json:"schema_hash"`
}

// PushRecord represents a single record being pushed from the client.
type PushRecord struct {
	ID              string          `json:"id"`
	TableName       string          `json:"table_name"`
	Operation       string          `json:"operation"`
	Data            json.RawMessage `json:"data,omitempty"`
	ClientUpdatedAt time.Time       `json:"client_updated_at"`
	BaseUpdatedAt   *time.Time      `json:"base_updated_at,omitempty"`
}

// PushRequest is the request body for pushing changes.
type PushRequest struct {
	ClientID      string       `json:"client_id"`
	Changes       []PushRecord `json:"changes"`
	SchemaVersion int64        `json:"schema_version,omitempty"`
	SchemaHash    string       `json:"schema_hash,omitempty"`
}

// PushResult represents the result of processing a single push record.
type PushResult struct {
	ID              string     `json:"id"`
	TableName       string     `json:"table_name"`
	Operation       string     `json:"operation"`
	Status          string     `json:"status"`
	ReasonCode      string     `json:"reason_code,omitempty"`
	Message         string     `json:"message,omitempty"`
	ServerVersion   *Record    `json:"server_version,omitempty"`
	ServerUpdatedAt *time.Time `json:"server_updated_at,omitempty"`
	ServerDeletedAt *time.Time `json:"server_deleted_at,omitempty"`
}

// PushResponse is the response for pushing changes.
type PushResponse struct {
	Accepted      []PushResult `json:"accepted"`
	Rejected      []PushResult `json:"rejected"`
	Checkpoint    int64        `json:"checkpoint"`
	ServerTime    time.Time    `json:"server_time"`
	SchemaVersion int64        `json:"schema_version"`
	SchemaHash    string       `json:"schema_hash"`
}

// PullRequest is the request for pulling changes.
type PullRequest struct {
	ClientID      string   `json:"client_id"`
	Checkpoint    int64    `json:"checkpoint"`
	Tables        []string `json:"tables,omitempty"`
	Limit         int      `json:"limit,omitempty"`
	KnownBuckets  []string `json:"known_buckets,omitempty"`
	SchemaVersion int64    `json:"schema_version,omitempty"`
	SchemaHash    string   `json:"schema_hash,omitempty"`
}

// PullResponse is the response for pulling changes.
type PullResponse struct {
	Changes          []Record      `json:"changes"`
	Deletes          []DeleteEntry `json:"deletes"`
	Checkpoint       int64         `json:"checkpoint"`
	HasMore          bool          `json:"has_more"`
	SnapshotRequired bool          `json:"snapshot_required,omitempty"`
	SnapshotReason   string        `json:"snapshot_reason,omitempty"`
	BucketUpdates    *BucketUpdate `json:"bucket_updates,omitempty"`
	SchemaVersion    int64         `json:"schema_version"`
	SchemaHash       string        `json:"schema_hash"`
}

// SnapshotCursor tracks pagination state across snapshot pages.
type SnapshotCursor struct {
	Checkpoint int64  `json:"checkpoint"`
	TableIndex int    `json:"table_idx"`
	AfterID    string `json:"after_id"`
}

// SnapshotRequest is the request for a full snapshot.
type SnapshotRequest struct {
	ClientID      string          `json:"client_id"`
	Cursor        *SnapshotCursor `json:"cursor,omitempty"`
	Limit         int             `json:"limit,omitempty"`
	SchemaVersion int64           `json:"schema_version,omitempty"`
	SchemaHash    string          `json:"schema_hash,omitempty"`
}

// SnapshotResponse is the response for a full snapshot page.
type SnapshotResponse struct {
	Records       []Record        `json:"records"`
	Cursor        *SnapshotCursor `json:"cursor,omitempty"`
	Checkpoint    int64           `json:"checkpoint"`
	HasMore       bool            `json:"has_more"`
	SchemaVersion int64           `json:"schema_version"`
	SchemaHash    string          `json:"schema_hash"`
}
