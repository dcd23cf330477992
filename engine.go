package synchro

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// Engine is the top-level sync orchestrator.
//
// An Engine is safe for concurrent use by many goroutines. It holds no
// goroutine of its own: the schema contract is refreshed by the requests that
// read it (see Schema), and compaction runs only when asked.
type Engine struct {
	db       *sql.DB
	registry *Registry
	hooks    Hooks
	resolver ConflictResolver
	// clockSkew is how far past the database clock a pushed edit time may
	// be (see pusher.clientTime): Config.ClockSkewTolerance, or the
	// ClockSkewTolerance of the configured LWWResolver when that is less.
	clockSkew  time.Duration
	ownership  OwnershipResolver
	minVersion string
	stale      time.Duration
	logger     *slog.Logger
	schema     *schemaCache
	// subscribe is Config.Subscriptions (nil: the default buckets).
	subscribe SubscriptionRule
	// tableOrder lists the registered tables parents first; tableNames
	// lists them by name, the order of a snapshot.
	tableOrder, tableNames []string
	// compactor is built from Config.Compactor; nil when not configured.
	compactor *Compactor
	// snapshotPlans remembers how snapshots in progress read their
	// current table (see snapshotByEdges).
	snapshotPlans snapshotPlanCache
	// metrics records the engine's metrics; nil without
	// Config.MeterProvider.
	metrics *engineMetrics
	// pullViaSQL makes pulls read through database/sql even when the
	// driver is pgx's (tests of both paths; see inPullTx).
	pullViaSQL bool
	// pullHints names the clients whose next pull reads ahead (pullahead.go);
	// aheadReads and aheadPages count the pages read so and those of them
	// delivered (for tests).
	pullHints              pullHints
	aheadReads, aheadPages atomic.Int64
	// notPgx is set once a pull met a connection of another driver than
	// pgx's: pulls do not read ahead then.
	notPgx atomic.Bool
	// walSeen remembers the WAL positions CaptureStatus read.
	walSeen walSamples
	// live routes change notifications to waiting pulls (live.go).
	live *liveHub
}

// defaultStaleThreshold is how long a client may go without syncing before
// Hooks.OnStaleClient is consulted, when no CompactorConfig says otherwise.
const defaultStaleThreshold = 7 * 24 * time.Hour

// NewEngine validates cfg, introspects every registered table and persists
// the schema manifest.
//
// It fails when cfg.DB or cfg.Registry is nil, when the registry does not
// validate (the error wraps the Validate sentinel), when MinClientVersion is
// not a semantic version, or when a registered table cannot be synced: a
// missing table or configured column, a missing or composite primary key, an
// unsupported column type (ErrUnsupportedSchemaFeature). Every such error
// names the table and the column. The migrations of package migrations must
// have been applied: when a table or column of theirs is missing, the error
// wraps ErrNotMigrated and names it; when the role may not use them, it
// names the grants (migrations.Grants). A role that bypasses row-level
// security (superuser or BYPASSRLS) is accepted with a warning logged once
// (Warn, naming the role): the database then does not enforce the policies
// between users.
func NewEngine(cfg Config) (*Engine, error) {
	return newEngine(context.Background(), cfg)
}

func newEngine(ctx context.Context, cfg Config) (*Engine, error) {
	if cfg.DB == nil {
		return nil, errors.New("synchro: Config.DB is required")
	}
	if cfg.Registry == nil {
		return nil, errors.New("synchro: Config.Registry is required")
	}
	if err := cfg.Registry.Validate(); err != nil {
		return nil, fmt.Errorf("synchro: invalid registry: %w", err)
	}
	if len(cfg.Registry.TableNames()) == 0 {
		return nil, errors.New("synchro: Config.Registry has no tables")
	}
	if cfg.MinClientVersion != "" {
		// Checking a valid version against the minimum parses the minimum.
		if err := CheckVersion("0.0.0", cfg.MinClientVersion); err != nil && !errors.Is(err, ErrUpgradeRequired) {
			return nil, fmt.Errorf("synchro: Config.MinClientVersion: %w", err)
		}
	}
	if cfg.Compactor != nil && cfg.Compactor.StaleThreshold < 0 {
		return nil, errors.New("synchro: Config.Compactor.StaleThreshold must not be negative")
	}

	e := &Engine{
		db:         cfg.DB,
		registry:   cfg.Registry,
		hooks:      cfg.Hooks,
		resolver:   cfg.ConflictResolver,
		clockSkew:  cfg.ClockSkewTolerance,
		ownership:  cfg.Ownership,
		minVersion: cfg.MinClientVersion,
		stale:      defaultStaleThreshold,
		logger:     cfg.Logger,
		subscribe:  cfg.Subscriptions,
		tableOrder: dependencyOrder(cfg.Registry),
		tableNames: slices.Sorted(slices.Values(cfg.Registry.TableNames())),
		live:       newLiveHub(),
	}
	if e.resolver == nil {
		e.resolver = &LWWResolver{ClockSkewTolerance: cfg.ClockSkewTolerance}
	}
	// The version a push leaves is its edit time capped at the database
	// clock plus the cap's tolerance (pusher.clientTime); an edit made after
	// the push wins against it when its time plus the resolver's tolerance
	// is later. With an LWWResolver allowing less than
	// Config.ClockSkewTolerance, a device whose clock runs ahead would leave
	// a version that edits made after its push lose to (LWWResolver's
	// promise): the cap then allows no more than the resolver does.
	if r, ok := e.resolver.(*LWWResolver); ok && r != nil && r.ClockSkewTolerance < e.clockSkew {
		e.clockSkew = r.ClockSkewTolerance
	}
	if e.ownership == nil {
		e.ownership = NewJoinResolver(cfg.Registry)
	}
	if e.logger == nil {
		e.logger = slog.Default()
	}
	if cfg.Compactor != nil {
		cc := *cfg.Compactor
		if cc.Logger == nil {
			cc.Logger = e.logger
		}
		e.compactor = NewCompactor(&cc)
		e.stale = e.compactor.stale
	}
	if err := e.checkSetup(ctx); err != nil {
		return nil, err
	}
	var err error
	if e.metrics, err = newEngineMetrics(cfg.MeterProvider, e.tableNames); err != nil {
		return nil, err
	}
	if e.compactor != nil {
		e.compactor.metrics = e.metrics
	}
	e.schema = newSchemaCache(cfg.DB, cfg.Registry, e.logger)
	if _, err := e.schema.refresh(ctx); err != nil {
		return nil, err
	}
	return e, nil
}

// Registry returns the registry the engine was built with.
func (e *Engine) Registry() *Registry {
	return e.registry
}

// RegisterClient registers or updates a sync client.
//
// The client is identified by (userID, req.ClientID); registering again
// updates its name, platform and app version and keeps its checkpoint, which
// the response returns. When Config.MinClientVersion is set, an app version
// below it, missing or not a semantic version is refused with an error
// wrapping ErrUpgradeRequired, after Hooks.OnSchemaIncompatible. A client may
// register with schema version 0 and an empty hash (it has no local tables
// yet); otherwise both must equal the server's or ErrSchemaMismatch is
// returned.
func (e *Engine) RegisterClient(ctx context.Context, userID string, req *RegisterRequest) (*RegisterResponse, error) {
	start := e.metrics.start()
	resp, err := e.registerClient(ctx, userID, req)
	e.metrics.registered(ctx, start, err)
	return resp, err
}

// registerClient is RegisterClient without its metrics.
func (e *Engine) registerClient(ctx context.Context, userID string, req *RegisterRequest) (*RegisterResponse, error) {
	if req == nil {
		return nil, badRequest("synchro: nil RegisterRequest")
	}
	if err := checkIdentity(userID, req.ClientID); err != nil {
		return nil, err
	}
	for _, f := range []struct{ name, value string }{{"platform", req.Platform}, {"app_version", req.AppVersion}} {
		if !validClientText(f.value) {
			return nil, badRequest("synchro: %s must be valid UTF-8 without NUL characters, of at most %d bytes", f.name, maxClientFieldLen)
		}
	}
	if req.ClientName != nil && !validClientText(*req.ClientName) {
		return nil, badRequest("synchro: client_name must be valid UTF-8 without NUL characters, of at most %d bytes", maxClientFieldLen)
	}

	if e.minVersion != "" {
		if err := CheckVersion(req.AppVersion, e.minVersion); err != nil {
			if e.hooks.OnSchemaIncompatible != nil {
				e.hooks.OnSchemaIncompatible(ctx, req.ClientID, req.AppVersion, e.minVersion)
			}
			if !errors.Is(err, ErrUpgradeRequired) {
				err = fmt.Errorf("%w: %w", ErrUpgradeRequired, err)
			}
			return nil, err
		}
	}

	m, err := e.schema.get(ctx)
	if err != nil {
		return nil, err
	}
	if err := m.check(req.SchemaVersion, req.SchemaHash, true); err != nil {
		return nil, err
	}
	userID = m.userID(userID)

	row, err := upsertClient(ctx, e.db, userID, req)
	if err != nil {
		return nil, err
	}
	resp := &RegisterResponse{
		ID:            row.ID,
		ServerTime:    time.Now().UTC(),
		LastSyncAt:    row.LastSyncAt,
		SchemaVersion: m.version,
		SchemaHash:    m.hash,
	}
	if row.LastPullSeq != nil {
		resp.Checkpoint = *row.LastPullSeq
	}
	return resp, nil
}

// maxClientFieldLen bounds the free-text fields of a registration and the
// client id, so that a client cannot store arbitrarily large values.
const maxClientFieldLen = 1024

// validClientText reports whether a text field of a client request can be
// stored: valid UTF-8, no NUL (PostgreSQL text cannot hold one), at most
// maxClientFieldLen bytes.
func validClientText(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsRune(s, 0) && len(s) <= maxClientFieldLen
}

// checkIdentity validates the caller's user id and client id, which every
// entry point needs.
func checkIdentity(userID, clientID string) error {
	if strings.TrimSpace(userID) == "" {
		return errors.New("synchro: empty user id (the application must authenticate the caller)")
	}
	if clientID == "" {
		return badRequest("synchro: client_id is required")
	}
	if !validClientText(clientID) {
		return badRequest("synchro: client_id must be valid UTF-8 without NUL characters, of at most %d bytes", maxClientFieldLen)
	}
	if strings.ContainsRune(userID, 0) || !utf8.ValidString(userID) {
		return errors.New("synchro: the user id is not valid UTF-8 without NUL characters (the application's authentication must not pass it on)")
	}
	return nil
}

// RunCompaction runs a single compaction cycle. Returns an error if no Compactor was configured.
//
// It runs on the engine's pool (see Compactor for what a run does, including
// the pruning of the bucket edges of rows soft-deleted longer ago than the
// stale threshold, for which the role must see every row; the rows of a
// table that is a registered table's parent keep them, since children take
// their parent's recorded buckets). Hooks.OnCompaction
// fires after a run that succeeded and was not skipped.
func (e *Engine) RunCompaction(ctx context.Context) (CompactResult, error) {
	if e.compactor == nil {
		return CompactResult{}, errors.New("synchro: compaction not configured (Config.Compactor is nil)")
	}
	m, err := e.schema.get(ctx)
	if err != nil {
		return CompactResult{}, err
	}
	db := e.compactor.db
	if db == nil {
		db = e.db
	}
	res, err := e.compactor.run(ctx, db, e.pruneStatements(m))
	if err != nil {
		return res, err
	}
	if !res.Skipped && e.hooks.OnCompaction != nil {
		e.hooks.OnCompaction(ctx, res)
	}
	return res, nil
}

// StartCompaction runs compaction on a recurring interval in a background goroutine. The goroutine stops when ctx is cancelled. No-op if no Compactor was configured.
//
// The first run starts at once; an interval of zero or less means one hour.
// A failed run is logged and the next one comes at the next tick.
func (e *Engine) StartCompaction(ctx context.Context, interval time.Duration) {
	if e.compactor == nil {
		return
	}
	if interval <= 0 {
		interval = defaultCompactInterval
	}
	go func() {
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			if _, err := e.RunCompaction(ctx); err != nil && ctx.Err() == nil {
				e.logger.ErrorContext(ctx, "synchro: compaction failed", "error", err)
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
}
