package synchro

import (
	"log/slog"
	"time"
)

// CompactorConfig configures changelog compaction.
type CompactorConfig struct {
	// StaleThreshold is how long since last sync before a client is deactivated.
	// Default: 7 days.
	StaleThreshold time.Duration
	// BatchSize is the maximum rows deleted per batch. Default: 10000.
	BatchSize int
	// Logger for compaction operations. Falls back to slog.Default().
	Logger *slog.Logger
}

// CompactResult reports what a compaction run accomplished.
type CompactResult struct {
	// DeactivatedClients is the number of clients marked inactive as stale.
	DeactivatedClients int64
	// SafeSeq is the boundary computed for this run: changelog rows at or
	// below it were eligible for deletion.
	SafeSeq int64
	// DeletedEntries is the number of changelog rows deleted.
	DeletedEntries int64
}
