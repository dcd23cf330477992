package wal

import (
	"context"
	"database/sql"

	"github.com/jackc/pgx/v5"

	"github.com/synchrosync/synchro/internal/pgerr"
	"github.com/synchrosync/synchro/internal/pgxconn"
)

// This file holds the bulk writes of a changelog transaction: its
// changelog rows and new bucket edges go to PostgreSQL by COPY when the
// transaction's connection is pgx's, and by INSERT ... SELECT unnest(...)
// otherwise. COPY writes each page of rows as one WAL record
// (heap_multi_insert) where the INSERT writes one per row, which costs
// less both to write and to decode for the slot's walsender (which reads
// the changelog's own WAL too). See docs/benchmarks.md, "A fourth look".

// begin begins a changelog transaction on a connection of its own, which
// the batch's bulk writes use. The caller closes conn once the
// transaction has ended.
func (a *applier) begin(ctx context.Context) (conn *sql.Conn, tx *sql.Tx, err error) {
	conn, err = a.db.Conn(ctx)
	if err != nil {
		return nil, nil, err
	}
	tx, err = conn.BeginTx(ctx, nil)
	if err != nil {
		_ = conn.Close()
		return nil, nil, err
	}
	return conn, tx, nil
}

// copyInto writes n rows into the synchro table by COPY, in their order,
// on the connection of the batch's transaction; fill(i, vals) sets the
// values of the i-th row, one per column. It reports false, having written
// nothing, when that connection is not pgx's (ChangelogDB of another
// driver, or of one wrapping pgx's): the caller then writes the rows by
// INSERT. A failed COPY fails the transaction (or its savepoint) as the
// INSERT would and, unless it failed on a unique violation, closes the
// connection.
func (b *batch) copyInto(table string, cols []string, n int, fill func(i int, vals []any)) (bool, error) {
	if b.a.insertOnly.Load() {
		return false, nil
	}
	copied, err := pgxconn.Raw(b.conn, func(pc *pgx.Conn) error {
		src := &copySource{n: n, i: -1, fill: fill, vals: make([]any, len(cols))}
		_, err := pc.CopyFrom(b.ctx, pgx.Identifier{"synchro", table}, cols, src)
		if err != nil && pgerr.Code(err) != pgerr.UniqueViolation {
			// pgx encodes the rows for the column types it described
			// once per connection: if those changed since (a migration
			// altered a column), every COPY on this connection would
			// fail. The connection is not used again: database/sql
			// discards a closed pgx connection before handing it out
			// (pgx's ResetSession reports it bad). A unique violation is
			// about the rows, and insertEdges goes on after it on this
			// connection.
			_ = pc.Close(context.WithoutCancel(b.ctx))
		}
		return err
	})
	if !copied && err == nil {
		b.a.insertOnly.Store(true) // the pool's driver is another's
	}
	return copied, err
}

// copySource gives COPY the rows of copyInto. Values returns the same
// slice for every row: pgx encodes a row's values before it asks for the
// next.
type copySource struct {
	n, i int
	fill func(i int, vals []any)
	vals []any
}

func (s *copySource) Next() bool {
	s.i++
	return s.i < s.n
}

func (s *copySource) Values() ([]any, error) {
	s.fill(s.i, s.vals)
	return s.vals, nil
}

func (s *copySource) Err() error { return nil }
