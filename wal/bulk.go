package wal

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/synchrosync/synchro/internal/pgerr"
	"github.com/synchrosync/synchro/internal/pgident"
	"github.com/synchrosync/synchro/internal/pgxconn"
	"github.com/synchrosync/synchro/internal/store"
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
//
// The transaction is READ COMMITTED whatever the role's or the database's
// default_transaction_isolation: a changelog transaction reads the slot's
// position, and the stored edges, in statements after the one that takes
// the slot's lock, and must see what the previous holder of the lock
// committed. Under REPEATABLE READ or SERIALIZABLE the snapshot is the
// first statement's, taken before the lock was granted: a batch after
// another process's wrote that batch's transactions again and then failed
// on the position row (TestApplyReadCommittedUnderStricterDefault).
func (a *applier) begin(ctx context.Context) (conn *sql.Conn, tx *sql.Tx, err error) {
	conn, err = a.db.Conn(ctx)
	if err != nil {
		return nil, nil, err
	}
	tx, err = conn.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelReadCommitted})
	if err != nil {
		_ = conn.Close()
		return nil, nil, err
	}
	return conn, tx, nil
}

// copyInto writes n rows into the synchro table by COPY, in their order,
// on the connection of the batch's transaction; fill(i, w) writes the
// fields of the i-th row, one per column, with w.text and w.int. It
// reports false, having written nothing, when that connection is not
// pgx's (ChangelogDB of another driver, or of one wrapping pgx's): the
// caller then writes the rows by INSERT. A failed COPY fails the
// transaction (or its savepoint) as the INSERT would. PostgreSQL refuses
// COPY FROM into a table whose row-level security applies to the role
// (feature_not_supported): the first COPY of an applier asks first
// whether it applies to either table (row_security_active), and when it
// does this applier writes by INSERT from then on, which the policies may
// allow. Policies enabled later are met by a COPY: that batch fails once,
// and the applier writes by INSERT from then on too. (Without the
// question, the first backfill of a new slot under forced row-level
// security failed, and the session started over with a new slot.)
//
// The rows go in COPY's text format, built here: pgx's CopyFrom boxed
// every value in an interface and encoded it through its type map (about
// a tenth of capture's own CPU; docs/benchmarks.md, "A sixth look"), and
// the binary format it sends holds only for the column types it described
// once per connection, which a migration may change. The server parses
// the text by the columns' types as they are.
func (b *batch) copyInto(table string, cols []string, n int, fill func(i int, w *copyText)) (bool, error) {
	if b.a.insertOnly.Load() {
		return false, nil
	}
	copied, err := pgxconn.Raw(b.conn, func(pc *pgx.Conn) error {
		ctx := b.ctx
		if !b.a.copyChecked.Load() {
			if secured, err := rowSecurityActive(ctx, pc); err != nil {
				return err
			} else if secured {
				b.a.insertOnly.Store(true)
				b.a.logger.InfoContext(ctx, "wal: row-level security applies to synchro.changelog or synchro.bucket_edges for this role; capture writes by INSERT")
				return errCopySkipped
			}
			b.a.copyChecked.Store(true)
		}
		// A tracer of the pool's pgx configuration sees the COPY as it saw
		// pgx's CopyFrom.
		t, traced := pc.Config().Tracer.(pgx.CopyFromTracer)
		if traced {
			ctx = t.TraceCopyFromStart(ctx, pc, pgx.TraceCopyFromStartData{TableName: pgx.Identifier{"synchro", table}, ColumnNames: cols})
		}
		tag, err := pc.PgConn().CopyFrom(ctx, &copyReader{n: n, fill: fill}, copyStatement(table, cols))
		if traced {
			t.TraceCopyFromEnd(ctx, pc, pgx.TraceCopyFromEndData{CommandTag: tag, Err: err})
		}
		return err
	})
	if errors.Is(err, errCopySkipped) {
		return false, nil
	}
	if !copied && err == nil {
		b.a.insertOnly.Store(true) // the pool's driver is another's
	}
	if pgerr.Code(err) == pgerr.FeatureNotSupported && !b.a.insertOnly.Swap(true) {
		b.a.logger.InfoContext(b.ctx, "wal: COPY refused; capture writes by INSERT from now on", "table", "synchro."+table, "error", err)
	}
	return copied, err
}

// errCopySkipped ends copyInto's use of the connection when the rows must
// go by INSERT after all.
var errCopySkipped = errors.New("wal: COPY not used")

// rowSecurityActive reports whether row-level security applies to
// synchro.changelog or synchro.bucket_edges for conn's role, so that
// PostgreSQL would refuse COPY FROM into it.
func rowSecurityActive(ctx context.Context, conn *pgx.Conn) (bool, error) {
	var active bool
	err := conn.QueryRow(ctx, store.RowSecurityOnWrites).Scan(&active)
	if err != nil {
		return false, fmt.Errorf("wal: asking whether row-level security applies to the synchro tables: %w", err)
	}
	return active, nil
}

// copyStatement is the COPY of cols into the synchro table, from the
// client in text format.
func copyStatement(table string, cols []string) string {
	quoted := make([]string, len(cols))
	for i, c := range cols {
		quoted[i] = pgident.Quote(c)
	}
	return "COPY " + pgident.QuoteQualified("synchro."+table) + " (" + strings.Join(quoted, ", ") + ") FROM STDIN"
}

// copyReader reads the n rows fill writes in COPY's text format, building
// them as they are read, so that a batch's COPY holds about one read's
// worth of text at a time.
type copyReader struct {
	n, next int
	fill    func(i int, w *copyText)
	w       copyText
	// off is the start of the text not read yet in w.buf.
	off int
}

func (r *copyReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if len(r.w.buf)-r.off < len(p) && r.next < r.n {
		r.w.buf = append(r.w.buf[:0], r.w.buf[r.off:]...)
		r.off = 0
		for len(r.w.buf) < len(p) && r.next < r.n {
			r.fill(r.next, &r.w)
			r.w.endRow()
			r.next++
		}
	}
	if r.off == len(r.w.buf) {
		return 0, io.EOF
	}
	n := copy(p, r.w.buf[r.off:])
	r.off += n
	return n, nil
}

// copyText builds rows in COPY's text format: fields separated by tabs,
// rows ended by newlines, and in a field a backslash, tab, newline or
// carriage return escaped by a backslash (so no field reads as NULL, \N,
// or as the end of the data, \.).
type copyText struct {
	buf []byte
	// fields counts the fields of the row being written.
	fields int
}

// text appends a text field.
func (w *copyText) text(s string) {
	w.sep()
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\':
			w.buf = append(w.buf, '\\', '\\')
		case '\t':
			w.buf = append(w.buf, '\\', 't')
		case '\n':
			w.buf = append(w.buf, '\\', 'n')
		case '\r':
			w.buf = append(w.buf, '\\', 'r')
		default:
			w.buf = append(w.buf, c)
		}
	}
}

// int appends an integer field.
func (w *copyText) int(v int64) {
	w.sep()
	w.buf = strconv.AppendInt(w.buf, v, 10)
}

func (w *copyText) sep() {
	if w.fields > 0 {
		w.buf = append(w.buf, '\t')
	}
	w.fields++
}

func (w *copyText) endRow() {
	w.buf = append(w.buf, '\n')
	w.fields = 0
}
