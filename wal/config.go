package wal

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"go.opentelemetry.io/otel/metric"

	"github.com/synchrosync/synchro"
	"github.com/synchrosync/synchro/internal/pgident"
)

// BucketAssigner decides the buckets of a changed row. It is the contract
// between change capture and bucket resolution; *synchro.JoinResolver (from
// NewJoinResolverWithDB) and *synchro.SQLBucketResolver implement it.
//
// Empty and repeated ids in its answer are ignored. The others must be
// valid UTF-8 without NUL bytes and must not start with "synchro:" (the
// library's); with the table name and the record id, an id must fit one
// index entry of the changelog (2600 bytes together). A change whose answer
// holds another id, like a change whose resolution returns an error, is
// recorded in synchro.rule_failures and keeps the record's buckets, and
// capture goes on.
type BucketAssigner interface {
	AssignBuckets(ctx context.Context, table string, recordID string, operation synchro.Operation, data map[string]any) ([]string, error)
}

// Defaults of ConsumerConfig.
const (
	DefaultSlotName        = "synchro_slot"
	DefaultPublicationName = "synchro_pub"
	DefaultStandbyTimeout  = 10 * time.Second
	DefaultMaxBatchEvents  = 10000
	DefaultMaxBatchDelay   = 20 * time.Millisecond
)

// ConsumerConfig configures a Consumer.
type ConsumerConfig struct {
	// ConnString is the connection string (URL or key=value) of the database
	// whose registered tables are captured. Required. The consumer opens its
	// own replication connection from it (adding replication=database) and a
	// regular connection to manage the publication and the slot. The role
	// needs the REPLICATION attribute, must be allowed to create the
	// publication (own the tables, or be superuser) and must read every row
	// of the registered tables, so it should bypass row-level security.
	ConnString string

	// SlotName is the logical replication slot. Defaults to "synchro_slot".
	// Lowercase letters, digits and underscores, at most 63 bytes.
	SlotName string

	// PublicationName is the publication of the registered tables. Defaults
	// to "synchro_pub". It is created when missing, publishing the changes
	// of partitions as their partitioned table's (publish_via_partition_root),
	// and registered tables it lacks are added to it. An existing
	// publication without that option is refused when a registered table
	// is partitioned: its changes would come under the partitions' names.
	// So is a registered partition whose changes the publication would
	// publish as an ancestor's (FOR ALL TABLES, the partitioned table
	// published or registered too), and partitions whose replica identity
	// differs from their registered partitioned table's when either is
	// FULL. Not captured: a TRUNCATE of one partition, and the rows ATTACH
	// or DETACH PARTITION (or a partition's DROP) move into or out of a
	// registered table; make such changes with DELETE and INSERT.
	PublicationName string

	// Registry lists the captured tables. Required; it must validate.
	Registry *synchro.Registry

	// Assigner decides each changed row's buckets. Defaults to
	// synchro.NewJoinResolverWithDB(Registry, ChangelogDB). With a
	// *synchro.JoinResolver, the buckets of a child table (ParentTable, no
	// owner or bucket column of its own) are those of its parent row as the
	// consumer has recorded them, so they are consistent with the order of
	// the changes rather than with the tables' state when the change is
	// processed.
	Assigner BucketAssigner

	// ChangelogDB is the database holding the synchro schema (migrated with
	// migrations.Migrate). Required. It must be the database of ConnString:
	// the consumer also reads the registered tables through it (to find the
	// children of a row whose buckets changed). With pgx's driver
	// (github.com/jackc/pgx/v5/stdlib), changelog rows and bucket edges are
	// written by COPY; through a driver that wraps pgx's without giving its
	// connection to sql.Conn.Raw (some tracing wrappers), by INSERT, which
	// captures about a tenth fewer rows a second.
	ChangelogDB *sql.DB

	// Logger receives the consumer's logs. Defaults to slog.Default().
	Logger *slog.Logger

	// StandbyTimeout is how often the consumer reports its position to the
	// server when nothing else makes it. Defaults to 10s; at least 100ms.
	StandbyTimeout time.Duration

	// MaxBatchEvents bounds the row changes written in one changelog
	// transaction; a WAL transaction is never split. It also bounds what
	// the consumer holds in memory, to about twice as many changes: while
	// a batch is being written, the stream is received into the next one
	// until it is full (a single WAL transaction larger than the bound is
	// held whole). A record of existing rows (a new slot's, or a table
	// added to the publication) is one changelog transaction whatever
	// its size, written in parts of this many rows, so that the consumer
	// holds about one part at a time. Defaults to 10000.
	MaxBatchEvents int

	// backfillPart, when set, is the part size of a record of existing
	// rows instead of MaxBatchEvents (tests make it tiny).
	backfillPart int

	// judgePayload, when set, replaces judgePayload (failpayload.go), for
	// tests of a payload it misjudges.
	judgePayload func([]byte) int16

	// MaxBatchDelay is how long received transactions may wait for more to
	// batch with them before they are written, while the stream keeps
	// coming; when it pauses for 2ms, or 500 row changes are waiting, they
	// are written at once. While a batch is being written, the
	// transactions received meanwhile wait for it, and are written as soon
	// as it has committed if they have waited this long or are that many.
	// Defaults to 20ms; at least 1ms.
	MaxBatchDelay time.Duration

	// MeterProvider receives the consumer's OpenTelemetry metrics: row
	// changes and transactions written, batch write durations, rule
	// failures, and the lag gauges while Start runs (see Metrics in the
	// package documentation, and docs/metrics.md). Defaults to nil: no
	// metrics, at the cost of a nil check per batch.
	MeterProvider metric.MeterProvider
}

// withDefaults returns cfg with its zero fields set to their defaults.
func (cfg ConsumerConfig) withDefaults() ConsumerConfig {
	if cfg.SlotName == "" {
		cfg.SlotName = DefaultSlotName
	}
	if cfg.PublicationName == "" {
		cfg.PublicationName = DefaultPublicationName
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.StandbyTimeout == 0 {
		cfg.StandbyTimeout = DefaultStandbyTimeout
	}
	if cfg.MaxBatchEvents == 0 {
		cfg.MaxBatchEvents = DefaultMaxBatchEvents
	}
	if cfg.MaxBatchDelay == 0 {
		cfg.MaxBatchDelay = DefaultMaxBatchDelay
	}
	if cfg.Assigner == nil && cfg.Registry != nil && cfg.ChangelogDB != nil {
		cfg.Assigner = synchro.NewJoinResolverWithDB(cfg.Registry, cfg.ChangelogDB)
	}
	return cfg
}

// validate checks a config that went through withDefaults.
func (cfg ConsumerConfig) validate() error {
	if cfg.ConnString == "" {
		return errors.New("wal: ConsumerConfig.ConnString is required")
	}
	if _, err := pgconn.ParseConfig(cfg.ConnString); err != nil {
		return fmt.Errorf("wal: ConsumerConfig.ConnString: %w", err)
	}
	if cfg.Registry == nil {
		return errors.New("wal: ConsumerConfig.Registry is required")
	}
	if err := cfg.Registry.Validate(); err != nil {
		return fmt.Errorf("wal: ConsumerConfig.Registry: %w", err)
	}
	if len(cfg.Registry.TableNames()) == 0 {
		return errors.New("wal: ConsumerConfig.Registry has no tables")
	}
	if cfg.ChangelogDB == nil {
		return errors.New("wal: ConsumerConfig.ChangelogDB is required")
	}
	if !validSlotName(cfg.SlotName) {
		return fmt.Errorf("wal: ConsumerConfig.SlotName %q: use lowercase letters, digits and underscores, at most 63 bytes", cfg.SlotName)
	}
	if err := pgident.Check(cfg.PublicationName); err != nil {
		return fmt.Errorf("wal: ConsumerConfig.PublicationName: %w", err)
	}
	if cfg.StandbyTimeout < 100*time.Millisecond {
		return fmt.Errorf("wal: ConsumerConfig.StandbyTimeout %v is below 100ms", cfg.StandbyTimeout)
	}
	if cfg.MaxBatchEvents < 1 {
		return fmt.Errorf("wal: ConsumerConfig.MaxBatchEvents %d must be positive", cfg.MaxBatchEvents)
	}
	if cfg.MaxBatchDelay < time.Millisecond {
		return fmt.Errorf("wal: ConsumerConfig.MaxBatchDelay %v is below 1ms", cfg.MaxBatchDelay)
	}
	return nil
}

// validSlotName follows PostgreSQL's rule for replication slot names.
func validSlotName(s string) bool {
	if s == "" || len(s) > 63 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_') {
			return false
		}
	}
	return true
}
