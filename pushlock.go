package synchro

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/synchrosync/synchro/internal/pgident"
)

// This file holds push's lock order.
//
// A push locks rows as it goes: each record's row before it is decided
// (lockRows, per segment or per record), the parent of a create
// (lockParent), and, in PostgreSQL's check of a foreign key, the row an
// inserted row refers to (FOR KEY SHARE). In request order, two pushes that
// name the same rows in opposite orders each hold a row the other waits
// for; PostgreSQL breaks the cycle after deadlock_timeout by failing one
// statement. So before its first record a push locks the rows it may lock
// later, in one order common to all pushes: tables in the engine's table
// order (parents first), the rows of a table by primary key, one statement
// per table. The later locks of the push are then on rows it already
// holds, so pushes wait for one another only inside those statements, in
// that order, and never in a cycle. What a push cannot name in advance is
// not covered: see Engine.Push.

// lockAhead locks FOR UPDATE the rows the push may lock later, in the order
// above: the row of every record still open after prepare, and the rows a
// create names through its parent key or through a foreign key to a table
// whose rows pushes lock (lockRefs). Keys that are not valid keys of their
// table are left out: their records fail on their own, as before.
//
// It runs under the standing savepoint, and moves it past its locks (dirty)
// when they stand, so that a record rolled back to the savepoint never
// releases them. When a statement fails (a key PostgreSQL refuses, a lock
// timeout, a deadlock with a transaction of the application), everything
// since the savepoint is rolled back and the push goes on without the lock
// ahead: each record locks its rows itself, as it always does, so that no
// outcome depends on the lock ahead. A push that names fewer than two rows
// needs no order and locks nothing here.
func (p *pusher) lockAhead(ctx context.Context, items []*pushItem) error {
	keys := map[string][]string{}
	seen := map[parentKey]bool{}
	add := func(t *tableInfo, id string) {
		k, ok := lockAheadKey(t, id)
		if !ok || seen[parentKey{t.cfg.TableName, k}] {
			return
		}
		seen[parentKey{t.cfg.TableName, k}] = true
		keys[t.cfg.TableName] = append(keys[t.cfg.TableName], k)
	}
	for _, it := range items {
		if it.final {
			continue
		}
		add(it.info, it.rec.ID)
		if it.op != OpInsert {
			// An update cannot change the parent key (decideWrite), so
			// it locks no parent; one that changes another foreign key
			// is not covered (see Engine.Push).
			continue
		}
		refs, err := p.lockRefs(ctx, it.info)
		if err != nil {
			return p.abandonLockAhead(ctx, err)
		}
		for _, ref := range refs {
			t := p.m.table(ref.table)
			if v, ok := rawText(it.fields[ref.col]); ok && t != nil {
				add(t, v)
			}
		}
	}
	if len(seen) < 2 {
		return nil
	}
	for _, name := range p.e.tableOrder {
		if len(keys[name]) == 0 {
			continue
		}
		if _, err := p.tx.ExecContext(ctx, p.m.table(name).lockAheadSQL(), keys[name]); err != nil {
			return p.abandonLockAhead(ctx, err)
		}
	}
	p.dirty = true
	return nil
}

// abandonLockAhead rolls back what lockAhead did after a statement of it
// failed in the database, so that the push goes on without it. Any other
// error (the connection, the context) is returned.
func (p *pusher) abandonLockAhead(ctx context.Context, err error) error {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return fmt.Errorf("locking the rows of the push: %w", err)
	}
	if _, err := p.tx.ExecContext(ctx, "ROLLBACK TO SAVEPOINT "+recordSavepoint); err != nil {
		return fmt.Errorf("rolling back to savepoint: %w", err)
	}
	p.e.logger.DebugContext(ctx, "synchro: push goes on without locking its rows ahead", "client_id", p.clientID, "error", err)
	return nil
}

// lockAheadKey returns id in a form PostgreSQL accepts for the primary key
// of t, and false when id is surely not a valid key (a NUL byte, text for a
// uuid or an integer key, an integer out of range). An id of another key
// type is passed as it is; PostgreSQL may still refuse it.
func lockAheadKey(t *tableInfo, id string) (string, bool) {
	if strings.IndexByte(id, 0) >= 0 {
		return "", false
	}
	bits := 0
	switch t.pkType() {
	case "uuid":
		return canonicalUUID(id)
	case "smallint":
		bits = 16
	case "integer":
		bits = 32
	case "bigint":
		bits = 64
	default:
		return id, true
	}
	n, err := strconv.ParseInt(id, 10, bits)
	if err != nil {
		return "", false
	}
	return strconv.FormatInt(n, 10), true
}

// lockAheadSQL locks FOR UPDATE, in primary key order, the rows of t whose
// keys are in $1 (text[], each a valid key). The keys are cast as one
// array, so that under row-level security the rows are still looked up by
// key (see pushStatements.lock). Rows the caller cannot see are not
// locked.
func (t *tableInfo) lockAheadSQL() string {
	pk := pgident.Quote(t.pk)
	return fmt.Sprintf(`SELECT NULL FROM %s AS x WHERE x.%s = ANY (CAST($1::text[] AS %s[])) ORDER BY x.%s FOR UPDATE OF x`,
		t.quoted, pk, t.pkType(), pk)
}

// lockRef is a column whose value, in a create, names a row of table that
// the push may lock: through the parent key (lockParent locks the parent
// of a table with an owner column, and of any table whose ownership check
// fails), or through a foreign key (PostgreSQL's check of the key).
type lockRef struct{ col, table string }

// lockRefs returns the lockRefs of t: its parent key, and each
// single-column foreign key to the primary key of a registered table whose
// rows pushes lock (lockedByPushes). The foreign keys are read from the
// catalog on the first push that needs them and kept with t.
func (p *pusher) lockRefs(ctx context.Context, t *tableInfo) ([]lockRef, error) {
	if refs := t.lockRefs.Load(); refs != nil {
		return *refs, nil
	}
	var refs []lockRef
	if t.cfg.ParentTable != "" && t.cfg.ParentFKCol != "" {
		refs = append(refs, lockRef{t.cfg.ParentFKCol, t.cfg.ParentTable})
	}
	rows, err := p.tx.QueryContext(ctx, foreignKeysSQL, t.quoted)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var col, refSchema, refName, refCol string
		if err := rows.Scan(&col, &refSchema, &refName, &refCol); err != nil {
			return nil, err
		}
		for _, name := range p.e.tableOrder {
			ref := p.m.table(name)
			if ref == nil || ref.schemaName != refSchema || ref.relName != refName || ref.pk != refCol || !p.lockedByPushes(ref) {
				continue
			}
			if r := (lockRef{col, name}); !slices.Contains(refs, r) {
				refs = append(refs, r)
			}
			break
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	t.lockRefs.Store(&refs)
	return refs, nil
}

// foreignKeysSQL lists the single-column foreign keys of table $1: the
// column, and the schema, table and column it refers to.
const foreignKeysSQL = `SELECT a.attname, n.nspname, r.relname, ra.attname
FROM pg_constraint c
JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
JOIN pg_attribute ra ON ra.attrelid = c.confrelid AND ra.attnum = c.confkey[1]
JOIN pg_class r ON r.oid = c.confrelid
JOIN pg_namespace n ON n.oid = r.relnamespace
WHERE c.contype = 'f' AND c.conrelid = $1::regclass AND cardinality(c.conkey) = 1
ORDER BY c.conname`

// lockedByPushes reports whether pushes lock rows of t FOR UPDATE: t is a
// table clients push to, or the parent of one (lockParent). A foreign key
// to any other table (a global reference table) makes PostgreSQL take only
// FOR KEY SHARE, which never waits for another push.
func (p *pusher) lockedByPushes(t *tableInfo) bool {
	if t.cfg.PushPolicy == PushPolicyOwnerOnly {
		return true
	}
	for _, name := range p.e.tableOrder {
		if c := p.m.table(name); c != nil && c.cfg.PushPolicy == PushPolicyOwnerOnly && c.cfg.ParentTable == t.cfg.TableName {
			return true
		}
	}
	return false
}
