package synchro

import (
	"context"
	"database/sql"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel/metric"
)

// This file holds what an application configures (Config, Hooks, the DB
// interfaces) and the public constants; the package documentation is in
// doc.go, the errors in errors.go.

// Push status constants.
const (
	PushStatusApplied           = "applied"
	PushStatusConflict          = "conflict"
	PushStatusRejectedTerminal  = "rejected_terminal"
	PushStatusRejectedRetryable = "rejected_retryable"
)

// Pull snapshot reason constants.
const (
	SnapshotReasonInitialSyncRequired   = "initial_sync_required"
	SnapshotReasonCheckpointBeforeLimit = "checkpoint_before_retention"
)

// Schema default kind constants.
const (
	DefaultKindNone       = "none"
	DefaultKindPortable   = "portable"
	DefaultKindServerOnly = "server_only"
)

// DefaultPullLimit is the default number of records per pull.
const DefaultPullLimit = 100

// DefaultSnapshotLimit is the default number of records per snapshot page.
const DefaultSnapshotLimit = 100

// MaxPullLimit is the maximum records per pull.
const MaxPullLimit = 1000

// MaxSnapshotLimit is the maximum records per snapshot page.
const MaxSnapshotLimit = 1000

// DB is a minimal database interface using database/sql stdlib types only.
// Both *sql.DB and *sql.Tx satisfy this interface, as do sqlx equivalents.
type DB interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// TxBeginner starts transactions. *sql.DB satisfies it.
type TxBeginner interface {
	BeginTx(ctx context.Context, opts *sql.TxOptions) (*sql.Tx, error)
}

// Compile-time checks that the standard library types satisfy the interfaces.
var (
	_ DB         = (*sql.DB)(nil)
	_ DB         = (*sql.Tx)(nil)
	_ DB         = (*sql.Conn)(nil)
	_ TxBeginner = (*sql.DB)(nil)
	_ TxBeginner = (*sql.Conn)(nil)
)

// Config configures the sync engine.
type Config struct {
	// DB is the database connection pool.
	DB *sql.DB
	// Registry holds table configurations.
	Registry *Registry
	// Hooks for lifecycle callbacks.
	Hooks Hooks
	// ConflictResolver resolves push conflicts. Defaults to LWW.
	ConflictResolver ConflictResolver
	// Ownership resolves record ownership for bucketing. Defaults to JoinResolver.
	Ownership OwnershipResolver
	// MinClientVersion is the minimum supported client version (semver).
	MinClientVersion string
	// ClockSkewTolerance is added to client timestamps during LWW comparison.
	// It is also how far a pushed edit time (client_updated_at) may be
	// after the database clock at the start of the push: later times are
	// capped there, for the comparison and for the version the write
	// leaves (see Conflict.ClientTime). When ConflictResolver is an
	// *LWWResolver whose ClockSkewTolerance is less, the cap is that
	// instead, so that an edit made after a push always wins against the
	// version the push left (see LWWResolver).
	ClockSkewTolerance time.Duration
	// Compactor configures changelog compaction. Optional.
	Compactor *CompactorConfig
	// Logger for sync operations. Defaults to slog.Default().
	Logger *slog.Logger
	// Subscriptions decides the buckets each client follows, re-evaluated
	// on every pull (see SubscriptionRule and SQLSubscriptions). Nil means
	// the default: "user:<user id>" and "global".
	Subscriptions SubscriptionRule
	// MeterProvider receives the engine's OpenTelemetry metrics: requests,
	// records and durations of registrations, pushes, pulls and
	// snapshots, and the rows compaction deletes (see Metrics in the
	// package documentation, and docs/metrics.md). Defaults to nil: no
	// metrics, at the cost of a nil check per call.
	MeterProvider metric.MeterProvider
}

// Hooks defines lifecycle callbacks for sync operations.
// All hooks are optional — nil hooks are skipped.
type Hooks struct {
	// OnPushAccepted is called within the push transaction after records are applied.
	// Use this for side effects like rebuilding search indexes.
	OnPushAccepted func(ctx context.Context, tx *sql.Tx, accepted []AcceptedRecord) error

	// OnConflict is called when a conflict is detected and resolved.
	// This is informational — it cannot change the resolution.
	OnConflict func(ctx context.Context, conflict Conflict, resolution Resolution)

	// OnPullComplete is called after a successful pull operation.
	OnPullComplete func(ctx context.Context, clientID string, checkpoint int64, count int)

	// OnSchemaIncompatible is called when a client's version is below minimum.
	OnSchemaIncompatible func(ctx context.Context, clientID string, clientVer string, minVer string)

	// OnStaleClient is called when a client hasn't synced recently.
	// Return true to allow the sync, false to reject with ErrStaleClient.
	OnStaleClient func(ctx context.Context, clientID string, lastSync time.Time) bool

	// OnCompaction is called after a successful compaction run.
	OnCompaction func(ctx context.Context, result CompactResult)

	// OnSnapshotRequired is called when a client must rebuild from a full snapshot.
	OnSnapshotRequired func(ctx context.Context, clientID string, checkpoint int64, minSeq int64, reason string)
}
