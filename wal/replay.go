package wal

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/synchrosync/synchro"
	"github.com/synchrosync/synchro/internal/pgident"
	"github.com/synchrosync/synchro/internal/store"
)

// ReplayRuleFailures resolves again the buckets of the records whose bucket
// resolution failed (the rows of synchro.rule_failures not yet replayed),
// from the records' current rows: a record whose row is gone leaves all its
// buckets; the others move to the buckets resolved now, with the changelog
// rows that go with it. Failures that fail again stay recorded for a later
// attempt, as do the failures of tables no longer registered. It returns
// how many failure rows were replayed.
//
// Call it after fixing what made resolution fail (a bucket function, a
// missing parent). It runs in one transaction and is safe to run while the
// consumer streams: both take the same lock for their changelog writes.
//
// It replays nothing, and returns an error wrapping ErrRegistryLacksTables,
// when the slot records tables this consumer's registry does not hold: the
// slot is captured with another registry (in a rolling deploy, the newer
// version's, which added tables; or the older version's, still capturing a
// table the newer one removed, until a session of the newer version holds
// the slot and forgets it), whose replay must resolve them, since this one
// would move a parent without the rows of child tables it does not know.
func (c *Consumer) ReplayRuleFailures(ctx context.Context) (int, error) {
	a := c.applier
	conn, tx, err := a.beginLocked(ctx)
	if err != nil {
		return 0, fmt.Errorf("wal: replaying rule failures: %w", err)
	}
	defer func() { _ = conn.Close() }()
	defer func() { _ = tx.Rollback() }()
	if unknown, err := a.unregisteredRecorded(ctx, tx); err != nil {
		return 0, fmt.Errorf("wal: replaying rule failures: reading the slot's tables: %w", err)
	} else if len(unknown) > 0 {
		return 0, fmt.Errorf("wal: replaying rule failures: slot %s records %s: %w", a.slot, strings.Join(unknown, ", "), ErrRegistryLacksTables)
	}
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
			// A table no longer captured (the slot does not record it:
			// see unregisteredRecorded). It stays pending: registered
			// again, the table is recorded again, row by row, and a
			// replay then resolves it as any other.
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

// ErrRegistryLacksTables is the error of ReplayRuleFailures run by a
// consumer whose registry lacks tables its slot records.
var ErrRegistryLacksTables = errors.New("wal: tables the registry lacks are captured by the slot; replay with the registry that captures them")

// unregisteredRecorded returns, sorted, the tables the slot records that
// the applier's registry does not hold.
func (a *applier) unregisteredRecorded(ctx context.Context, tx *sql.Tx) ([]string, error) {
	tables, err := a.slotTables(ctx, tx)
	if err != nil {
		return nil, err
	}
	var unknown []string
	for _, t := range tables {
		if a.tables[t.name] == nil {
			unknown = append(unknown, t.name)
		}
	}
	slices.Sort(unknown)
	return unknown, nil
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
