package wal

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/iotest"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/synchrosync/synchro/internal/pgtest"
)

// wrappedPgxDB opens a pool on dsn whose connections are pgx's behind a
// wrapper that, like a driver adding tracing around pgx's, passes on
// every database/sql interface but not pgx's own connection: sql.Conn.Raw
// gives the wrapper.
func wrappedPgxDB(t *testing.T, dsn string) *sql.DB {
	t.Helper()
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(wrappedConnector{stdlib.GetConnector(*cfg)})
	t.Cleanup(func() { _ = db.Close() })
	return db
}

type wrappedConnector struct{ driver.Connector }

func (c wrappedConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return wrappedConn{conn.(*stdlib.Conn)}, nil
}

// wrappedConn passes each call on to c, which is not embedded so that its
// Conn method is not promoted.
type wrappedConn struct{ c *stdlib.Conn }

var (
	_ driver.ConnBeginTx        = wrappedConn{}
	_ driver.ExecerContext      = wrappedConn{}
	_ driver.QueryerContext     = wrappedConn{}
	_ driver.ConnPrepareContext = wrappedConn{}
	_ driver.NamedValueChecker  = wrappedConn{}
	_ driver.Pinger             = wrappedConn{}
	_ driver.SessionResetter    = wrappedConn{}
)

func (w wrappedConn) Prepare(q string) (driver.Stmt, error) { return w.c.Prepare(q) }
func (w wrappedConn) Close() error                          { return w.c.Close() }
func (w wrappedConn) Begin() (driver.Tx, error) {
	return w.c.BeginTx(context.Background(), driver.TxOptions{})
}
func (w wrappedConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	return w.c.BeginTx(ctx, opts)
}
func (w wrappedConn) PrepareContext(ctx context.Context, q string) (driver.Stmt, error) {
	return w.c.PrepareContext(ctx, q)
}
func (w wrappedConn) ExecContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Result, error) {
	return w.c.ExecContext(ctx, q, args)
}
func (w wrappedConn) QueryContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Rows, error) {
	return w.c.QueryContext(ctx, q, args)
}
func (w wrappedConn) CheckNamedValue(v *driver.NamedValue) error { return w.c.CheckNamedValue(v) }
func (w wrappedConn) Ping(ctx context.Context) error             { return w.c.Ping(ctx) }
func (w wrappedConn) ResetSession(ctx context.Context) error     { return w.c.ResetSession(ctx) }

// TestCopyAfterColumnTypeChange changes the type of a changelog column
// while the consumer runs, after its connections wrote by COPY: capture
// must go on, by COPY (whose text the server reads by the columns' types
// of the moment; pgx's binary COPY held to the types it described once
// per connection), or by INSERT.
func TestCopyAfterColumnTypeChange(t *testing.T) {
	t.Parallel()
	for _, insertOnly := range []bool{false, true} {
		t.Run(fmt.Sprintf("insertOnly=%v", insertOnly), func(t *testing.T) {
			t.Parallel()
			e := e2eNew(t, "", nil)
			// A pool of the consumer's own, whose two connections both
			// write batches before the change.
			pool, err := sql.Open("pgx", e.db.DSN)
			if err != nil {
				t.Fatal(err)
			}
			pool.SetMaxOpenConns(2)
			t.Cleanup(func() { _ = pool.Close() })
			e.cfg.ChangelogDB = pool
			e.run()
			e.cur.c.applier.insertOnly.Store(insertOnly)
			ctEqual(t, "before", e.step(`INSERT INTO categories (id, name) VALUES ('k1', 'a')`), "global categories k1 create")
			ctEqual(t, "before", e.step(`INSERT INTO categories (id, name) VALUES ('k2', 'b')`), "global categories k2 create")
			pgtest.Exec(t, e.db.Super, `ALTER TABLE synchro.changelog ALTER COLUMN operation TYPE integer`)
			// The test's own reads of the changelog were prepared for
			// the old type: they go on new connections.
			e.db.Super.SetMaxIdleConns(0)
			e.db.Super.SetMaxIdleConns(10) // pgtest's bound
			ctEqual(t, "after", e.step(`INSERT INTO categories (id, name) VALUES ('k3', 'c')`), "global categories k3 create")
			ctEqual(t, "after", e.step(`UPDATE categories SET name = 'd' WHERE id = 'k1'`), "global categories k1 update")
		})
	}
}

// copyOddTexts are texts that COPY's text format must escape, or that
// would read as its NULL (\N) or end of data (\.) if they were not.
var copyOddTexts = []string{"a\tb", "c\nd", `e\f`, `\.`, `\N`, "x\ry", "\\\t\n\r", `trailing\`, "héllo ✓", " "}

// TestE2ECopyTextEscapes writes changelog rows and edges whose record and
// bucket ids hold such texts, by COPY and by INSERT: each must be stored
// as it was, and moved out of its bucket again.
func TestE2ECopyTextEscapes(t *testing.T) {
	t.Parallel()
	for _, wrapped := range []bool{false, true} {
		t.Run(fmt.Sprintf("wrapped=%v", wrapped), func(t *testing.T) {
			t.Parallel()
			e := e2eNew(t, "", nil)
			e.runWrapped(wrapped)
			var created, moved []string
			for _, s := range copyOddTexts {
				created = append(created, "user:"+s+" lists "+s+" create")
				moved = append(moved, "user:"+s+" lists "+s+" delete", "user:"+s+"2 lists "+s+" create")
			}
			ctEqual(t, "inserts", e.step(`INSERT INTO lists (id, user_id, name)
SELECT x, x, 'n' FROM unnest($1::text[]) WITH ORDINALITY AS u(x, n) ORDER BY n`, copyOddTexts), created...)
			for _, s := range copyOddTexts {
				ctEqual(t, fmt.Sprintf("edges of %q", s), e.edges("lists", s), "user:"+s)
			}
			ctEqual(t, "moves", e.step(`UPDATE lists SET user_id = user_id || '2'
 WHERE id IN (SELECT x FROM unnest($1::text[]) AS x)`, copyOddTexts), moved...)
			for _, s := range copyOddTexts {
				ctEqual(t, fmt.Sprintf("edges of %q after the move", s), e.edges("lists", s), "user:"+s+"2")
			}
		})
	}
}

// TestCopyReader reads copyReader's text with reads of every size
// testing/iotest tries, against the text built in one piece.
func TestCopyReader(t *testing.T) {
	for _, n := range []int{0, 1, 7, 3000} {
		fill := func(i int, w *copyText) {
			w.text(copyOddTexts[i%len(copyOddTexts)])
			w.text(strings.Repeat("x", i%50))
			w.int(int64(i - 3))
		}
		var want copyText
		for i := range n {
			fill(i, &want)
			want.endRow()
		}
		if err := iotest.TestReader(&copyReader{n: n, fill: fill}, want.buf); err != nil {
			t.Errorf("%d rows: %v", n, err)
		}
	}
	var w copyText
	w.text("a\tb")
	w.text(`\.`)
	w.int(-12)
	w.endRow()
	if got, want := string(w.buf), "a\\tb\t\\\\.\t-12\n"; got != want {
		t.Errorf("row: got %q, want %q", got, want)
	}
}

// copyTracer records the COPYs a pgx tracer sees: rows by table, and
// errors.
type copyTracer struct {
	mu   sync.Mutex
	rows map[string]int64
	errs []error
}

// copyTraceKey keys, in the context TraceCopyFromStart returns, the table.
type copyTraceKey struct{}

func (c *copyTracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	return ctx
}
func (c *copyTracer) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

func (c *copyTracer) TraceCopyFromStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceCopyFromStartData) context.Context {
	return context.WithValue(ctx, copyTraceKey{}, d.TableName.Sanitize())
}

func (c *copyTracer) TraceCopyFromEnd(ctx context.Context, _ *pgx.Conn, d pgx.TraceCopyFromEndData) {
	c.mu.Lock()
	defer c.mu.Unlock()
	table, _ := ctx.Value(copyTraceKey{}).(string)
	c.rows[table] += d.CommandTag.RowsAffected()
	if d.Err != nil {
		c.errs = append(c.errs, d.Err)
	}
}

// TestCopyTraced: a tracer of ChangelogDB's pgx configuration sees
// capture's COPYs, start and end, as it saw them through pgx's CopyFrom.
func TestCopyTraced(t *testing.T) {
	t.Parallel()
	e := e2eNew(t, "", nil)
	cfg, err := pgx.ParseConfig(e.db.DSN)
	if err != nil {
		t.Fatal(err)
	}
	tracer := &copyTracer{rows: map[string]int64{}}
	cfg.Tracer = tracer
	db := stdlib.OpenDB(*cfg)
	t.Cleanup(func() { _ = db.Close() })
	e.cfg.ChangelogDB = db
	e.run()
	ctEqual(t, "insert", e.step(`INSERT INTO lists (id, user_id) VALUES ('l1', 'A'), ('l2', 'B')`),
		"user:A lists l1 create", "user:B lists l2 create")
	tracer.mu.Lock()
	defer tracer.mu.Unlock()
	// Each marker of e.step is a changelog row and an edge too.
	if tracer.rows[`"synchro"."changelog"`] < 3 || tracer.rows[`"synchro"."bucket_edges"`] < 3 || len(tracer.errs) > 0 {
		t.Errorf("the tracer saw rows %v, errors %v; want the COPYs of the changelog rows and edges", tracer.rows, tracer.errs)
	}
}

// capturerGrants let the test's application role be ChangelogDB's: the
// role writes the synchro tables and reads the captured ones.
const capturerGrants = `
GRANT USAGE ON SCHEMA synchro TO ` + pgtest.AppRole + `;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA synchro TO ` + pgtest.AppRole + `;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA synchro TO ` + pgtest.AppRole + `;
GRANT SELECT ON ALL TABLES IN SCHEMA public TO ` + pgtest.AppRole

// forcedCapturePolicies force row-level security, with policies that let
// every row through, on the tables the consumer writes by COPY.
const forcedCapturePolicies = `
ALTER TABLE synchro.changelog ENABLE ROW LEVEL SECURITY;
ALTER TABLE synchro.changelog FORCE ROW LEVEL SECURITY;
CREATE POLICY capture ON synchro.changelog USING (true) WITH CHECK (true);
ALTER TABLE synchro.bucket_edges ENABLE ROW LEVEL SECURITY;
ALTER TABLE synchro.bucket_edges FORCE ROW LEVEL SECURITY;
CREATE POLICY capture ON synchro.bucket_edges USING (true) WITH CHECK (true)`

// TestCopyUnderRowLevelSecurity: PostgreSQL refuses COPY FROM into a table
// whose row-level security applies to the role (here ChangelogDB's role,
// not the tables' owner, with RLS forced on synchro.changelog and
// synchro.bucket_edges). Capture must then write by INSERT, which the
// policies allow, rather than fail each batch.
func TestCopyUnderRowLevelSecurity(t *testing.T) {
	t.Parallel()
	e := e2eNew(t, "", nil)
	pgtest.Exec(t, e.db.Super, capturerGrants)
	pgtest.Exec(t, e.db.Super, forcedCapturePolicies)
	pgtest.Exec(t, e.db.Super, `INSERT INTO lists (id, user_id) VALUES ('l0', 'A')`)
	e.cfg.ChangelogDB = e.db.App
	e.run()
	ctEqual(t, "backfilled", e.edges("lists", "l0"), "user:A")
	ctEqual(t, "insert", e.step(`INSERT INTO lists (id, user_id) VALUES ('l1', 'A')`), "user:A lists l1 create")
	ctEqual(t, "edges", e.edges("lists", "l1"), "user:A")
	if !e.cur.c.applier.insertOnly.Load() {
		t.Error("the applier still writes by COPY")
	}
	// The policies are seen before the first COPY: the new slot's backfill
	// is not refused, so the slot is not made again and the rows are
	// recorded once.
	if n := e.signalled(func(s *consumerSignals) int { return s.slotCreated.count() }); n != 1 {
		t.Errorf("the slot was created %d times, want once", n)
	}
	if n := e.signalled(func(s *consumerSignals) int { return s.backfilled.count() }); n != 1 {
		t.Errorf("existing rows were recorded %d times, want once", n)
	}
	if n := e.signalled(func(s *consumerSignals) int { return s.reconnecting.count() }); n != 0 {
		t.Errorf("the session failed %d times, want never", n)
	}
}

// TestCopyRefusedAfterPoliciesEnabled: policies forced on the synchro
// tables after the applier's first COPY (which asked, and found none) are
// met by a refused COPY: that batch fails once, the session starts again,
// and the applier writes by INSERT from then on, losing nothing.
func TestCopyRefusedAfterPoliciesEnabled(t *testing.T) {
	t.Parallel()
	e := e2eNew(t, "", nil)
	pgtest.Exec(t, e.db.Super, capturerGrants)
	e.cfg.ChangelogDB = e.db.App
	e.run()
	ctEqual(t, "insert by COPY", e.step(`INSERT INTO lists (id, user_id) VALUES ('l1', 'A')`), "user:A lists l1 create")
	if e.cur.c.applier.insertOnly.Load() {
		t.Fatal("the applier writes by INSERT before any policy")
	}
	pgtest.Exec(t, e.db.Super, forcedCapturePolicies)
	ctEqual(t, "insert after the policies", e.step(`INSERT INTO lists (id, user_id) VALUES ('l2', 'B')`), "user:B lists l2 create")
	ctEqual(t, "edges", e.edges("lists", "l2"), "user:B")
	if !e.cur.c.applier.insertOnly.Load() {
		t.Error("the applier still writes by COPY")
	}
}

// TestApplyWithoutJIT: the changelog transactions turn JIT compilation off
// (applier.lock). Their statements look records up by key and are costed by
// the number of keys, so that a large batch crossed jit_above_cost and
// PostgreSQL compiled lookups that run in a few milliseconds. Here every
// connection of ChangelogDB has jit_above_cost=1, so that any statement
// costed above the lock's own (0.02) is compiled, and jit_dump_bitcode, so
// that each compilation leaves a file in the data directory: batches and a
// replay of rule failures must leave none.
func TestApplyWithoutJIT(t *testing.T) {
	t.Parallel()
	e := e2eNew(t, "", nil)
	cfg, err := pgx.ParseConfig(e.db.DSN)
	if err != nil {
		t.Fatal(err)
	}
	cfg.RuntimeParams["jit"] = "on" // whatever the server's setting
	cfg.RuntimeParams["jit_above_cost"] = "1"
	cfg.RuntimeParams["jit_dump_bitcode"] = "on"
	// The files are named after the backend's pid: only those of this
	// test's connections count (a server of SYNCHRO_TEST_DATABASE_URL may
	// run this test for another test binary at the same time).
	var mu sync.Mutex
	var pids []int32
	jitDB := stdlib.OpenDB(*cfg, stdlib.OptionAfterConnect(func(_ context.Context, c *pgx.Conn) error {
		mu.Lock()
		defer mu.Unlock()
		pids = append(pids, int32(c.PgConn().PID()))
		return nil
	}))
	t.Cleanup(func() { _ = jitDB.Close() })
	// With jit=on set: pg_jit_available() is false under jit=off too.
	var available bool
	if err := jitDB.QueryRow(`SELECT pg_jit_available()`).Scan(&available); err != nil {
		t.Fatal(err)
	}
	if !available {
		t.Skip("the server cannot compile statements (pg_jit_available() is false)")
	}
	bitcode := func() int {
		mu.Lock()
		own := append([]int32(nil), pids...)
		mu.Unlock()
		return pgtest.Count(t, e.db.Super, `SELECT count(*) FROM pg_ls_dir('.') AS f
 WHERE f LIKE '%.bc' AND split_part(f, '.', 1)::int = ANY($1::int[])`, own)
	}
	// The check can fail: a statement outside a changelog transaction is
	// compiled and leaves its file.
	before := bitcode()
	pgtest.Exec(t, jitDB, `SELECT count(*) FROM synchro.changelog`)
	if bitcode() == before {
		t.Fatal("a statement on ChangelogDB left no bitcode file: JIT compilation cannot be seen this way")
	}

	// The checks of Start, run once, cost more than 1 and are compiled.
	e.cfg.ChangelogDB = jitDB
	e.run()
	before = bitcode()
	e.step(`INSERT INTO lists (id, user_id, name) SELECT 'n' || g, 'u1', 'new' FROM generate_series(1, 50) AS g`)
	e.step(`UPDATE lists SET user_id = 'u2' WHERE id LIKE 'n%'`)
	e.step(`INSERT INTO items (id, list_id, title) SELECT 'i' || g, 'n' || g, 'item' FROM generate_series(1, 50) AS g`)
	e.step(`DELETE FROM lists WHERE id LIKE 'n%'`)
	if _, err := e.cur.c.ReplayRuleFailures(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := bitcode() - before; n != 0 {
		t.Errorf("PostgreSQL left %d bitcode files of compiled statements while capture wrote batches and replayed rule failures", n)
	}
}
