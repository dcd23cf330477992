package wal

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
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
