package synchro

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/synchrosync/synchro/internal/locks"
	"github.com/synchrosync/synchro/internal/pgerr"
	"github.com/synchrosync/synchro/internal/pgident"
	"github.com/synchrosync/synchro/internal/store"
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
	// DB is the database Engine.RunCompaction and StartCompaction run on;
	// nil means the engine's Config.DB. Pruning the bucket edges of deleted
	// rows needs a role that sees every row of the registered tables: one
	// that row-level security does not apply to (the tables' owner, a
	// superuser or a role with BYPASSRLS), with the UPDATE privilege on
	// them (the prune locks the rows it prunes for). Otherwise the edges
	// of those tables are left alone, and CompactResult.EdgesNotPruned
	// names them.
	DB DB
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
	// Skipped reports that the run did nothing because another compaction
	// (in this or another process) was in progress.
	Skipped bool
	// PrunedEdges is the number of bucket edges of long-deleted rows
	// deleted, PrunedRuleFailures the number of replayed rule failures.
	PrunedEdges, PrunedRuleFailures int64
	// EdgesNotPruned names the tables whose edges could not be pruned
	// because the role is subject to row-level security on them, or lacks
	// the UPDATE privilege the prune's row locks need (see
	// CompactorConfig.DB), separated by ", "; empty when none. A warning
	// is logged when it changes. (A string keeps CompactResult comparable.)
	EdgesNotPruned string
}

// Compaction defaults.
const (
	defaultCompactBatch    = 10000
	defaultCompactInterval = time.Hour
	compactionRunLockKey   = locks.CompactionRun // one compaction at a time
)

// Compactor runs changelog compaction.
//
// A run (RunCompaction) deactivates stale clients, computes the safe
// boundary, records it as the retention boundary Pull checks, deletes the
// changelog rows at or below it and the rows superseded by a later row of the
// same bucket and record at any seq, then prunes bookkeeping: the bucket
// edges of rows soft-deleted longer than the stale threshold ago, in tables
// that are no registered table's parent (through Engine.RunCompaction only;
// a resurrected row then enters its buckets again as new), and rule failures
// replayed longer than the stale threshold ago (failures not yet replayed
// are kept). One run at a time across processes: a run that finds
// another in progress returns at once with CompactResult.Skipped set.
//
// The role needs to read every registered table for the edge pruning (under
// row-level security, a role that bypasses it; otherwise soft-deleted rows
// stay invisible and their edges are simply kept).
type Compactor struct {
	stale  time.Duration
	batch  int
	logger *slog.Logger
	// db is CompactorConfig.DB.
	db DB
	// metrics counts the deleted rows: the engine's metrics for the
	// engine's compactor, nil for one made with NewCompactor.
	metrics *engineMetrics

	// mu guards the log state: what the last run reported, so that a
	// repeated condition is logged at Info (or Warn) once, then at Debug.
	mu          sync.Mutex
	idleLogged  bool
	lastBlocked string
}

// NewCompactor creates a Compactor from the given config.
//
// A nil config, or zero or negative values, give the defaults: a stale
// threshold of 7 days, batches of 10000 rows, slog.Default().
func NewCompactor(cfg *CompactorConfig) *Compactor {
	c := &Compactor{stale: defaultStaleThreshold, batch: defaultCompactBatch, logger: slog.Default()}
	if cfg == nil {
		return c
	}
	if cfg.StaleThreshold > 0 {
		c.stale = cfg.StaleThreshold
	}
	if cfg.BatchSize > 0 {
		c.batch = cfg.BatchSize
	}
	if cfg.Logger != nil {
		c.logger = cfg.Logger
	}
	c.db = cfg.DB
	return c
}

// DeactivateStaleClients marks clients as inactive if they haven't synced within the threshold.
//
// Only clients that synced at least once (last_sync_at set) are considered.
// The threshold is passed to PostgreSQL as a number of microseconds, so any
// duration works. It returns the number of clients deactivated.
func (c *Compactor) DeactivateStaleClients(ctx context.Context, db DB) (int64, error) {
	res, err := db.ExecContext(ctx, store.DeactivateStaleClients, c.stale.Microseconds())
	if err != nil {
		return 0, fmt.Errorf("synchro: deactivating stale clients: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("synchro: deactivating stale clients: %w", err)
	}
	return n, nil
}

// SafeSeq returns the highest changelog seq that no client still needs.
//
// Among active clients it is the lowest of: the checkpoint each last pulled
// from (it holds every change up to it; a completed snapshot sets it to the
// snapshot's checkpoint), and the checkpoint of each snapshot in progress.
// With no such
// client it is the highest seq written: clients that never completed a
// snapshot need no history, and deactivated clients are told to snapshot
// again when they come back behind the boundary. It is never below the
// recorded boundary.
func (c *Compactor) SafeSeq(ctx context.Context, db DB) (int64, error) {
	var safe int64
	err := db.QueryRowContext(ctx, store.SafeSeq).Scan(&safe)
	if err != nil {
		return 0, fmt.Errorf("synchro: computing the safe compaction boundary: %w", err)
	}
	return safe, nil
}

// Compact records safeSeq as the retention boundary (it never goes down),
// then deletes, in batches of BatchSize rows each committed on its own, the
// changelog rows at or below it and the rows above it superseded by a later
// row of the same bucket and record. A client whose checkpoint is below the
// boundary must snapshot again; one at or above it never needs to. It
// returns the number of rows deleted. safeSeq <= 0 does nothing.
//
// The caller decides safeSeq; RunCompaction computes it with SafeSeq while
// holding the lock that keeps snapshots from starting meanwhile.
func (c *Compactor) Compact(ctx context.Context, db DB, safeSeq int64) (int64, error) {
	if safeSeq <= 0 {
		return 0, nil
	}
	if _, err := db.ExecContext(ctx, store.AdvanceBoundary, safeSeq); err != nil {
		return 0, fmt.Errorf("synchro: recording the compaction boundary: %w", err)
	}
	return c.deleteRows(ctx, db, safeSeq)
}

// deleteRows deletes the changelog rows at or below boundary, then the
// superseded rows above it, in batches.
//
// A batch is a window of c.batch consecutive seqs, not c.batch rows: a
// range of the primary key is bounded whatever plan PostgreSQL picks,
// while "the next c.batch rows" (ORDER BY seq LIMIT) was planned without
// statistics as a bitmap scan and sort of everything up to the boundary,
// for every batch. Seqs are dense but for the rows compaction deleted
// before and aborted transactions; an empty window jumps to the next seq
// that exists. The statements (store.CompactBelow, CompactNextSeq and
// CompactSuperseded) are each bounded by one window.
func (c *Compactor) deleteRows(ctx context.Context, db DB, boundary int64) (int64, error) {
	var total int64
	step := int64(c.batch)
	// Rows at or below the boundary, from the first that exists.
	from, err := nextWindow(ctx, db, 0, 0, boundary)
	if err != nil {
		return 0, fmt.Errorf("synchro: deleting compacted changelog rows: %w", err)
	}
	for from >= 0 && from < boundary {
		to := min(from+step, boundary)
		var n int64
		if err := db.QueryRowContext(ctx, store.CompactBelow, from, to).Scan(&n); err != nil {
			return total, fmt.Errorf("synchro: deleting compacted changelog rows: %w", err)
		}
		total += n
		if from, err = nextWindow(ctx, db, n, to, boundary); err != nil {
			return total, fmt.Errorf("synchro: deleting compacted changelog rows: %w", err)
		}
	}
	// Superseded rows above it.
	var last int64
	if err := db.QueryRowContext(ctx, store.NewestSeq).Scan(&last); err != nil {
		return total, fmt.Errorf("synchro: compacting superseded changelog rows: %w", err)
	}
	for from := boundary; from >= 0 && from < last; {
		to := min(from+step, last)
		res, err := db.ExecContext(ctx, store.CompactSuperseded, from, to)
		n, err := affected(res, err)
		total += n
		if err != nil {
			return total, fmt.Errorf("synchro: compacting superseded changelog rows: %w", err)
		}
		if from, err = nextWindow(ctx, db, n, to, last); err != nil {
			return total, fmt.Errorf("synchro: compacting superseded changelog rows: %w", err)
		}
	}
	return total, nil
}

// nextWindow returns where the window after (…, to] starts: to itself when
// the window deleted rows (n > 0), else just before the next seq that
// exists up to limit, or -1 when there is none.
func nextWindow(ctx context.Context, db DB, n, to, limit int64) (int64, error) {
	if n > 0 || to >= limit {
		return to, nil
	}
	var next sql.NullInt64
	if err := db.QueryRowContext(ctx, store.CompactNextSeq, to, limit).Scan(&next); err != nil {
		return 0, err
	}
	if !next.Valid {
		return -1, nil
	}
	return next.Int64 - 1, nil
}

// affected returns the rows a statement affected.
func affected(res sql.Result, err error) (int64, error) {
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// prune runs the edge-pruning statements (see Engine.pruneStatements; each
// takes the age in microseconds as $1) and deletes the rule failures
// replayed more than the stale threshold ago. It returns the numbers of
// each deleted.
//
// A statement that PostgreSQL ends with a serialization failure (it locks
// the rows it prunes for, and a row that moved to another partition since
// its snapshot cannot be locked; under REPEATABLE READ, any row changed
// since) prunes nothing this run, and the others go on; inside a
// transaction it runs under a savepoint for that.
func (c *Compactor) prune(ctx context.Context, db DB, edgeStatements []pruneStatement) (edges, failures int64, err error) {
	age := c.stale.Microseconds()
	_, inTx := db.(*sql.Tx)
	exec := func(q string) (sql.Result, error) {
		if !inTx {
			return db.ExecContext(ctx, q, age)
		}
		if _, err := db.ExecContext(ctx, `SAVEPOINT synchro_prune`); err != nil {
			return nil, err
		}
		res, err := db.ExecContext(ctx, q, age)
		if err != nil {
			if _, rbErr := db.ExecContext(ctx, `ROLLBACK TO SAVEPOINT synchro_prune`); rbErr != nil {
				return nil, errors.Join(err, rbErr)
			}
			return nil, err
		}
		_, err = db.ExecContext(ctx, `RELEASE SAVEPOINT synchro_prune`)
		return res, err
	}
	for _, p := range edgeStatements {
		n, err := affected(exec(p.sql))
		if pgerr.Code(err) == pgerr.SerializationFailure {
			c.logger.InfoContext(ctx, "synchro: compaction left the bucket edges of a table to its next run: a row changed while they were pruned", "table", p.table, "error", err)
			continue
		}
		if err != nil {
			return edges, failures, fmt.Errorf("synchro: pruning the bucket edges of deleted rows: %w", err)
		}
		edges += n
	}
	res, err := db.ExecContext(ctx, store.PruneRuleFailures, age)
	failures, err = affected(res, err)
	if err != nil {
		return edges, failures, fmt.Errorf("synchro: pruning replayed rule failures: %w", err)
	}
	return edges, failures, nil
}

// RunCompaction orchestrates a full compaction: deactivate stale clients, compute the safe boundary, then delete old changelog entries.
//
// See Compactor for what a run does; a standalone Compactor knows no tables
// and prunes no bucket edges (Engine.RunCompaction does). When another run holds the compaction
// lock (in this or another process), it returns at once with Skipped set
// and nothing done. db should be a pool (*sql.DB) or a connection
// (*sql.Conn): each batch then commits on its own. Given a transaction, the
// whole run happens in it. An error returns the partial result with it.
func (c *Compactor) RunCompaction(ctx context.Context, db DB) (CompactResult, error) {
	return c.run(ctx, db, nil)
}

// run is RunCompaction, also running the engine's edge-pruning statements.
func (c *Compactor) run(ctx context.Context, db DB, edgeStatements []pruneStatement) (CompactResult, error) {
	var res CompactResult
	conn, release, ok, err := c.lock(ctx, db)
	if err != nil || !ok {
		res.Skipped = !ok && err == nil
		return res, err
	}
	defer release()

	if res.DeactivatedClients, err = c.DeactivateStaleClients(ctx, conn); err != nil {
		return res, err
	}
	if res.SafeSeq, err = c.fixBoundary(ctx, conn); err != nil {
		return res, err
	}
	res.DeletedEntries, err = c.deleteRows(ctx, conn, res.SafeSeq)
	c.metrics.compacted(ctx, compactionChangelog, res.DeletedEntries)
	if err != nil {
		return res, err
	}
	var statements []pruneStatement
	var blocked []string
	for _, p := range edgeStatements {
		// Under row-level security the role may not see every deleted row;
		// without UPDATE it may not lock them (see pruneStatements).
		var active bool
		if err := conn.QueryRowContext(ctx, `SELECT row_security_active($1::regclass) OR NOT has_any_column_privilege($1::regclass, 'UPDATE')`, p.quoted).Scan(&active); err != nil {
			return res, fmt.Errorf("synchro: checking row-level security and privileges on %s: %w", p.table, err)
		}
		if active {
			blocked = append(blocked, p.table)
			continue
		}
		statements = append(statements, p)
	}
	res.EdgesNotPruned = strings.Join(blocked, ", ")
	res.PrunedEdges, res.PrunedRuleFailures, err = c.prune(ctx, conn, statements)
	c.metrics.compacted(ctx, compactionBucketEdges, res.PrunedEdges)
	c.metrics.compacted(ctx, compactionRuleFailures, res.PrunedRuleFailures)
	if err != nil {
		return res, err
	}
	c.report(ctx, res)
	return res, nil
}

// pruneStatement is the edge-pruning statement of one table.
type pruneStatement struct {
	table, quoted, sql string
}

// report logs a run: at Info when it did something or is the first idle
// run since one that did, at Debug otherwise; and, at Warn, the tables
// whose edges it could not prune, when they differ from the last run's.
func (c *Compactor) report(ctx context.Context, res CompactResult) {
	c.mu.Lock()
	idle := res.DeactivatedClients == 0 && res.DeletedEntries == 0 && res.PrunedEdges == 0 && res.PrunedRuleFailures == 0
	level := slog.LevelInfo
	if idle && c.idleLogged {
		level = slog.LevelDebug
	}
	c.idleLogged = idle
	blocked := res.EdgesNotPruned
	warn := blocked != "" && blocked != c.lastBlocked
	c.lastBlocked = blocked
	c.mu.Unlock()

	c.logger.Log(ctx, level, "synchro: compaction", "deactivated_clients", res.DeactivatedClients, "safe_seq", res.SafeSeq,
		"deleted_entries", res.DeletedEntries, "pruned_edges", res.PrunedEdges, "pruned_rule_failures", res.PrunedRuleFailures)
	if warn {
		c.logger.WarnContext(ctx, "synchro: compaction cannot prune the bucket edges of deleted rows: its role is subject to row-level security on these tables, or lacks UPDATE on them; give CompactorConfig.DB a role that is not, with UPDATE (the tables' owner, a superuser, or BYPASSRLS)",
			"tables", blocked)
	}
}

// fixBoundary computes the safe boundary and records it, in one
// transaction holding the lock that snapshots take (shared) to capture their
// checkpoint: a snapshot starting meanwhile waits, and then captures a
// checkpoint at or above the boundary.
func (c *Compactor) fixBoundary(ctx context.Context, db DB) (int64, error) {
	run := func(db DB) (int64, error) {
		if _, err := db.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, snapshotLockKey); err != nil {
			return 0, fmt.Errorf("synchro: locking out snapshots: %w", err)
		}
		safe, err := c.SafeSeq(ctx, db)
		if err != nil {
			return 0, err
		}
		if _, err := db.ExecContext(ctx, store.RecordRunBoundary, safe); err != nil {
			return 0, fmt.Errorf("synchro: recording the compaction boundary: %w", err)
		}
		return safe, nil
	}
	tb, ok := db.(interface {
		BeginTx(context.Context, *sql.TxOptions) (*sql.Tx, error)
	})
	if !ok {
		return run(db) // a transaction already: the lock lasts until its end
	}
	tx, err := tb.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("synchro: compaction: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	safe, err := run(tx)
	if err != nil {
		return 0, err
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("synchro: compaction: %w", err)
	}
	return safe, nil
}

// lock takes the compaction lock without waiting. With a pool it holds a
// connection for the run and returns it; with a connection or a
// transaction it uses that. ok is false when another run holds the lock.
func (c *Compactor) lock(ctx context.Context, db DB) (conn DB, release func(), ok bool, err error) {
	switch h := db.(type) {
	case *sql.DB:
		cn, err := h.Conn(ctx)
		if err != nil {
			return nil, nil, false, fmt.Errorf("synchro: compaction: %w", err)
		}
		conn, release, ok, err := c.lock(ctx, cn)
		if err != nil || !ok {
			_ = cn.Close()
			return nil, nil, ok, err
		}
		return conn, func() { release(); _ = cn.Close() }, true, nil
	case *sql.Tx:
		if err := h.QueryRowContext(ctx, `SELECT pg_try_advisory_xact_lock($1)`, compactionRunLockKey).Scan(&ok); err != nil {
			return nil, nil, false, fmt.Errorf("synchro: compaction lock: %w", err)
		}
		return h, func() {}, ok, nil
	default:
		if err := db.QueryRowContext(ctx, `SELECT pg_try_advisory_lock($1)`, compactionRunLockKey).Scan(&ok); err != nil {
			return nil, nil, false, fmt.Errorf("synchro: compaction lock: %w", err)
		}
		return db, func() {
			// A fresh context: the lock must be released even when the
			// run's context ended.
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if _, err := db.ExecContext(ctx, `SELECT pg_advisory_unlock($1)`, compactionRunLockKey); err != nil {
				c.logger.Warn("synchro: releasing the compaction lock", "error", err)
			}
		}, ok, nil
	}
}

// pruneStatements returns, for every table with a deleted-at column that
// is no registered table's parent, the statement deleting the bucket edges
// of its rows soft-deleted more than $1 microseconds ago.
//
// A parent table's edges are never pruned: children take their parent
// row's recorded buckets, and a child may be created under a soft-deleted
// parent at any time (by a push or by the application), so a parent pruned
// while it had no children would leave a later child in no bucket, synced to
// nobody (found by the convergence model with compaction running in the
// background).
func (e *Engine) pruneStatements(m *manifest) []pruneStatement {
	parents := map[string]bool{}
	for _, child := range e.registry.All() {
		if child.ParentTable != "" {
			parents[child.ParentTable] = true
		}
	}
	var out []pruneStatement
	for _, name := range e.tableNames {
		t := m.table(name)
		if t == nil || !t.hasDeletedAt || parents[name] {
			continue
		}
		// Each edge of the table is probed by key in the table (the OFFSET
		// 0 keeps the EXISTS apart): linear in the table's edges whatever
		// the statistics say. As a join, PostgreSQL without statistics
		// could pair every edge with every deleted row.
		//
		// The row pruned for is locked (FOR SHARE) until the prune
		// commits. Capture reads a record's edges before it writes the
		// record's change, and writes none when the buckets stay: a row
		// restored (deleted_at cleared) while a prune that read it as
		// deleted was still open lost its edges to the prune after capture
		// had read them, and was live in no bucket's edges. Locked, a
		// restore that committed since the prune's snapshot is read (the
		// lock reads the row's newest version), and a later one waits for
		// the prune, so capture reads the edges without those pruned. A
		// row another transaction has locked (a restore in progress, a
		// purge) is skipped, its edges kept until the next run: the prune
		// never waits for the application's transactions, so it never
		// deadlocks with one that locks such rows in another order.
		q := fmt.Sprintf(`DELETE FROM synchro.bucket_edges AS e
 WHERE e.table_name = %s
   AND EXISTS (SELECT 1 FROM %s AS x WHERE x.%s = CAST(e.record_id AS %s) AND x.%s < %s OFFSET 0 FOR SHARE SKIP LOCKED)`,
			pgident.QuoteLiteral(name), t.quoted, pgident.Quote(t.pk), t.pkType(), pgident.Quote(t.cfg.DeletedAtColumn), store.OlderThan)
		out = append(out, pruneStatement{table: name, quoted: t.quoted, sql: q})
	}
	return out
}
