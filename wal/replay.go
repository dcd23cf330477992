package wal

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/synchrosync/synchro"
	"github.com/synchrosync/synchro/internal/pgident"
	"github.com/synchrosync/synchro/internal/store"
)

// ReplayRuleFailures resolves again the buckets of the records whose bucket
// resolution failed (the rows of synchro.rule_failures not yet replayed),
// from the records' current rows: a record whose row is gone leaves all its
// buckets; the others move to the buckets resolved now, with the changelog
// rows that go with it. Failures that fail again stay recorded for a later
// attempt, as do the failures of tables this consumer's registry does not
// hold (another version's, in a rolling deploy). It returns how many
// failure rows were replayed.
//
// Call it after fixing what made resolution fail (a bucket function, a
// missing parent). It runs in one transaction and is safe to run while the
// consumer streams: both take the same lock for their changelog writes.
func (c *Consumer) ReplayRuleFailures(ctx context.Context) (int, error) {
	a := c.applier
	conn, tx, err := a.beginLocked(ctx)
	if err != nil {
		return 0, fmt.Errorf("wal: replaying rule failures: %w", err)
	}
	defer func() { _ = conn.Close() }()
	defer func() { _ = tx.Rollback() }()
	rows, err := tx.QueryContext(ctx, store.PendingRuleFailures)
	if err != nil {
		return 0, fmt.Errorf("wal: reading rule failures: %w", err)
	}
	type failure struct {
		id  int64
		key recKey
	}
	var failures []failure
	for rows.Next() {
		var f failure
		if err := rows.Scan(&f.id, &f.key.table, &f.key.id); err != nil {
			rows.Close()
			return 0, fmt.Errorf("wal: reading rule failures: %w", err)
		}
		failures = append(failures, f)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("wal: reading rule failures: %w", err)
	}

	b := a.newBatch(ctx, conn, tx, len(failures))
	resolved := map[recKey]bool{}
	var done []int64
	for _, f := range failures {
		if ok, seen := resolved[f.key]; seen {
			if ok {
				done = append(done, f.id)
			}
			continue
		}
		cfg := a.tables[f.key.table]
		if cfg == nil {
			// Not a table of this registry: another version's (an older
			// process of a rolling deploy, which lacks a table the newer
			// one added), or a table no longer captured. It stays pending
			// for a process that can resolve it; a table registered again
			// is backfilled anyway. Marked replayed here, the record
			// would stay out of its buckets until its next change.
			resolved[f.key] = false
			continue
		}
		row, err := a.currentRow(ctx, tx, cfg, f.key.id)
		if err != nil {
			return 0, err
		}
		before := len(b.failures)
		if row == nil {
			err = b.move(cfg, f.key, nil, synchro.OpDelete)
		} else {
			err = b.assignAndMove(cfg, f.key, &event{kind: evUpdate, table: cfg.TableName, id: f.key.id, newRow: row}, synchro.OpUpdate)
		}
		if err != nil {
			return 0, err
		}
		// A failure of this record that fails again stays as it is; new
		// failures of other records (children re-resolved) are recorded.
		ok := true
		kept := b.failures[:before]
		for _, nf := range b.failures[before:] {
			if nf.key == f.key {
				ok = false
			} else {
				kept = append(kept, nf)
			}
		}
		b.failures = kept
		resolved[f.key] = ok
		if ok {
			done = append(done, f.id)
		}
	}
	if err := b.flush(0); err != nil {
		return 0, err
	}
	if len(done) > 0 {
		if _, err := tx.ExecContext(ctx, store.MarkRuleFailuresReplayed, done); err != nil {
			return 0, fmt.Errorf("wal: marking rule failures replayed: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("wal: replaying rule failures: %w", err)
	}
	a.metrics.failuresRecorded(ctx, b.failures)
	return len(done), nil
}

// currentRow reads a record's current row as decoded values, or nil when
// it does not exist.
func (a *applier) currentRow(ctx context.Context, db synchro.DB, cfg *synchro.TableConfig, id string) (rowValues, error) {
	typ, err := a.columnType(ctx, db, cfg.TableName, cfg.IDColumn)
	if err != nil {
		return nil, err
	}
	q := fmt.Sprintf(`SELECT row_to_json(x)::text FROM %s AS x WHERE x.%s = CAST($1::text AS %s)`,
		pgident.QuoteQualified(cfg.TableName), pgident.Quote(cfg.IDColumn), typ)
	var doc string
	err = db.QueryRowContext(ctx, q, id).Scan(&doc)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("wal: reading %s %q: %w", cfg.TableName, id, err)
	}
	row, err := decodeRow(doc)
	if err != nil {
		return nil, fmt.Errorf("wal: decoding %s %q: %w", cfg.TableName, id, err)
	}
	return row, nil
}
