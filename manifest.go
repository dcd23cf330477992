package synchro

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/synchrosync/synchro/internal/locks"
	"github.com/synchrosync/synchro/internal/store"
)

// schemaRefreshInterval is how old the cached schema contract may be before a
// request re-reads the catalog. A schema change reaches clients at most this
// late.
const schemaRefreshInterval = 2 * time.Second

// manifestLockKey is the transaction-level advisory lock taken while a new
// schema version is assigned, only when the schema hash changes, never per
// request; see package locks.
const manifestLockKey = locks.Manifest

// defaultManifestHistoryLimit and maxManifestHistoryLimit bound
// SchemaManifestHistory.
const (
	defaultManifestHistoryLimit = 100
	maxManifestHistoryLimit     = 1000
)

// manifest is one version of the schema contract with the introspected
// tables behind it. It is never modified once published.
type manifest struct {
	version   int64
	hash      string
	snap      *introspection
	checkedAt time.Time
	// owner is how the caller's user id is spelled for the owner columns.
	owner ownerForm
}

// userID returns the caller's user id in the text form of the owner
// columns (see ownerForm): the form the engine uses for ownership checks,
// bucket ids, subscriptions, the RLS setting and the clients table.
func (m *manifest) userID(id string) string {
	return m.owner.canonical(id)
}

// check validates a client's view of the schema. With allowBootstrap, the
// pair (0, "") means "no local schema yet" and is accepted.
func (m *manifest) check(version int64, hash string, allowBootstrap bool) error {
	if allowBootstrap && version == 0 && hash == "" {
		return nil
	}
	if version != m.version || hash != m.hash {
		return fmt.Errorf("%w: client has version %d hash %q, server has version %d hash %q",
			ErrSchemaMismatch, version, hash, m.version, m.hash)
	}
	return nil
}

// table returns the introspected table, or nil when it is not registered.
func (m *manifest) table(name string) *tableInfo {
	return m.snap.info[name]
}

// schemaCache holds the current manifest. Readers take it without locking;
// when it is older than schemaRefreshInterval one reader refreshes it while
// the others keep using the previous one.
type schemaCache struct {
	db         *sql.DB
	reg        *Registry
	logger     *slog.Logger
	cur        atomic.Pointer[manifest]
	refreshing sync.Mutex
}

func newSchemaCache(db *sql.DB, reg *Registry, logger *slog.Logger) *schemaCache {
	return &schemaCache{db: db, reg: reg, logger: logger}
}

// get returns the current manifest, refreshing it first when it is stale and
// no other request is refreshing it already.
func (c *schemaCache) get(ctx context.Context) (*manifest, error) {
	m := c.cur.Load()
	if m != nil && time.Since(m.checkedAt) < schemaRefreshInterval {
		return m, nil
	}
	if m != nil && !c.refreshing.TryLock() {
		return m, nil // another request is refreshing; the previous one is still good
	}
	if m == nil {
		c.refreshing.Lock()
	}
	defer c.refreshing.Unlock()
	if cur := c.cur.Load(); cur != nil && time.Since(cur.checkedAt) < schemaRefreshInterval {
		return cur, nil
	}
	return c.refreshLocked(ctx)
}

// refresh re-reads the catalog now and publishes the result.
func (c *schemaCache) refresh(ctx context.Context) (*manifest, error) {
	c.refreshing.Lock()
	defer c.refreshing.Unlock()
	return c.refreshLocked(ctx)
}

func (c *schemaCache) refreshLocked(ctx context.Context) (*manifest, error) {
	snap, err := introspect(ctx, c.db, c.reg)
	if err != nil {
		return nil, fmt.Errorf("synchro: reading the schema of the registered tables: %w", err)
	}
	old := c.cur.Load()
	if old != nil && sameTables(old.snap, snap) {
		// Nothing changed: keep the published tables, whose push statements
		// are already built, and only note the check.
		next := *old
		next.checkedAt = time.Now()
		c.cur.Store(&next)
		return &next, nil
	}
	for _, info := range snap.info {
		info.chain = c.reg.chain(info.cfg.TableName)
	}
	next := &manifest{hash: snap.hash, snap: snap, checkedAt: time.Now(), owner: ownerFormOf(snap.info)}
	if old != nil && old.hash == snap.hash {
		next.version = old.version
	} else {
		next.version, err = persistManifest(ctx, c.db, snap.hash)
		if err != nil {
			return nil, err
		}
		if mixedOwnerTypes(snap.info) {
			c.logger.WarnContext(ctx, "synchro: the owner columns of the registered tables have types of different text forms (such as uuid and text); "+
				"user ids are used exactly as the auth layer returns them, so it must spell them as PostgreSQL prints every owner column (lower-case UUIDs)")
		}
		if old != nil {
			c.logger.InfoContext(ctx, "synchro: schema contract changed",
				"old_version", old.version, "new_version", next.version, "hash", next.hash)
		}
	}
	c.cur.Store(next)
	return next, nil
}

// sameTables reports whether two introspections describe the same tables:
// the same contract (hash) resolved to the same relations.
func sameTables(a, b *introspection) bool {
	if a.hash != b.hash || len(a.info) != len(b.info) {
		return false
	}
	for name, ai := range a.info {
		if bi := b.info[name]; bi == nil || bi.quoted != ai.quoted {
			return false
		}
	}
	return true
}

// persistManifest returns the version of hash: the newest manifest row when
// it has this hash, otherwise a new row with the next version. So versions
// only grow, and a schema that returns to an earlier shape gets a new version.
func persistManifest(ctx context.Context, db *sql.DB, hash string) (int64, error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("synchro: persisting schema manifest: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, manifestLockKey); err != nil {
		return 0, fmt.Errorf("synchro: persisting schema manifest: %w", err)
	}
	var (
		version    int64
		latestHash string
	)
	err = tx.QueryRowContext(ctx, store.LatestManifest).Scan(&version, &latestHash)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		version = 0
	case err != nil:
		return 0, fmt.Errorf("synchro: reading schema manifest: %w", err)
	case latestHash == hash:
		return version, nil
	}
	version++
	if _, err := tx.ExecContext(ctx, store.InsertManifest, version, hash); err != nil {
		return 0, fmt.Errorf("synchro: inserting schema manifest: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("synchro: persisting schema manifest: %w", err)
	}
	return version, nil
}

// CurrentSchemaManifest returns current server schema version/hash.
func (e *Engine) CurrentSchemaManifest(ctx context.Context) (int64, string, error) {
	m, err := e.schema.get(ctx)
	if err != nil {
		return 0, "", err
	}
	return m.version, m.hash, nil
}

// Schema returns the full server schema contract.
//
// The contract is read from the catalog at NewEngine and cached; a request
// that finds it older than two seconds reads the catalog again, so a schema
// change (ALTER TABLE on a registered table) shows up within a few seconds,
// with a new, higher version.
//
// Each table's Columns are exactly the columns pulls, snapshots and push's
// server_version deliver, and UpdatedAtColumn and DeletedAtColumn always
// name two of them, made up when the table lacks them (see "The schema
// contract" in the package documentation).
func (e *Engine) Schema(ctx context.Context) (*SchemaResponse, error) {
	m, err := e.schema.get(ctx)
	if err != nil {
		return nil, err
	}
	tables := make([]SchemaTable, len(m.snap.tables))
	for i, t := range m.snap.tables {
		t.Dependencies = slices.Clone(t.Dependencies)
		t.PrimaryKey = slices.Clone(t.PrimaryKey)
		t.Columns = slices.Clone(t.Columns)
		tables[i] = t
	}
	return &SchemaResponse{
		SchemaVersion: m.version,
		SchemaHash:    m.hash,
		ServerTime:    time.Now().UTC(),
		Tables:        tables,
	}, nil
}

// SchemaManifestHistory returns persisted manifest rows ordered by newest version first.
//
// A limit of 0 or less means 100; at most 1000 rows are returned.
func (e *Engine) SchemaManifestHistory(ctx context.Context, limit int) ([]SchemaManifestEntry, error) {
	if limit <= 0 {
		limit = defaultManifestHistoryLimit
	}
	limit = min(limit, maxManifestHistoryLimit)
	rows, err := e.db.QueryContext(ctx, store.ManifestHistory, limit)
	if err != nil {
		return nil, fmt.Errorf("synchro: reading schema manifest history: %w", err)
	}
	defer rows.Close()
	out := []SchemaManifestEntry{}
	for rows.Next() {
		var m SchemaManifestEntry
		if err := rows.Scan(&m.SchemaVersion, &m.SchemaHash, &m.CreatedAt); err != nil {
			return nil, fmt.Errorf("synchro: reading schema manifest history: %w", err)
		}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("synchro: reading schema manifest history: %w", err)
	}
	return out, nil
}

// TableMetadata returns sync metadata for all registered tables.
//
// Tables are sorted by name. UpdatedAtColumn and DeletedAtColumn are always
// the configured names, as in the schema contract ([Engine.Schema]), also for
// a table that does not have the column: the contract then lists it as a
// made-up column that the engine always delivers as null.
func (e *Engine) TableMetadata(ctx context.Context) (*TableMetaResponse, error) {
	m, err := e.schema.get(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]TableMeta, 0, len(m.snap.info))
	for _, info := range m.snap.info {
		c := info.cfg
		meta := TableMeta{
			TableName:            c.TableName,
			PushPolicy:           string(c.PushPolicy),
			Dependencies:         slices.Sorted(slices.Values(c.Dependencies)),
			ParentTable:          c.ParentTable,
			ParentFKCol:          c.ParentFKCol,
			BucketByColumn:       c.BucketByColumn,
			BucketPrefix:         c.BucketPrefix,
			GlobalWhenBucketNull: c.GlobalWhenBucketNull,
			AllowGlobalRead:      c.AllowGlobalRead,
			BucketFunction:       c.BucketFunction,
			UpdatedAtColumn:      c.UpdatedAtColumn,
			DeletedAtColumn:      c.DeletedAtColumn,
		}
		if meta.Dependencies == nil {
			meta.Dependencies = []string{}
		}
		out = append(out, meta)
	}
	slices.SortFunc(out, func(a, b TableMeta) int { return cmp.Compare(a.TableName, b.TableName) })
	return &TableMetaResponse{
		Tables:        out,
		ServerTime:    time.Now().UTC(),
		SchemaVersion: m.version,
		SchemaHash:    m.hash,
	}, nil
}
