package pgxconn_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/synchrosync/synchro/internal/pgtest"
	"github.com/synchrosync/synchro/internal/pgxconn"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func TestRawOnPgx(t *testing.T) {
	db := pgtest.NewDatabase(t)
	ctx := context.Background()
	conn, err := db.Super.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	var got int
	native, err := pgxconn.Raw(conn, func(c *pgx.Conn) error {
		return c.QueryRow(ctx, `SELECT 41 + 1`).Scan(&got)
	})
	if !native || err != nil || got != 42 {
		t.Fatalf("on pgx's driver: native %v, err %v, got %d; want true, nil, 42", native, err, got)
	}
	boom := errors.New("boom")
	native, err = pgxconn.Raw(conn, func(*pgx.Conn) error { return boom })
	if !native || !errors.Is(err, boom) {
		t.Fatalf("f failing: native %v, err %v; want true and f's error", native, err)
	}
}

// otherConnector is a driver that is not pgx's; its connections do
// nothing and are never asked to.
type otherConnector struct{}

func (otherConnector) Connect(context.Context) (driver.Conn, error) { return otherConn{}, nil }
func (otherConnector) Driver() driver.Driver                        { return nil }

type otherConn struct{}

func (otherConn) Prepare(string) (driver.Stmt, error) { return nil, errors.New("not supported") }
func (otherConn) Close() error                        { return nil }
func (otherConn) Begin() (driver.Tx, error)           { return nil, errors.New("not supported") }

func TestRawOnAnotherDriver(t *testing.T) {
	db := sql.OpenDB(otherConnector{})
	defer func() { _ = db.Close() }()
	conn, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	called := false
	native, err := pgxconn.Raw(conn, func(*pgx.Conn) error { called = true; return nil })
	if native || err != nil || called {
		t.Fatalf("on another driver: native %v, err %v, f called %v; want false, nil, false", native, err, called)
	}
}

func TestRawOnClosedConn(t *testing.T) {
	db := pgtest.NewDatabase(t)
	conn, err := db.Super.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	_ = conn.Close()
	native, err := pgxconn.Raw(conn, func(*pgx.Conn) error { t.Error("f ran on a closed connection"); return nil })
	if native || !errors.Is(err, sql.ErrConnDone) {
		t.Fatalf("on a closed connection: native %v, err %v; want false and sql.ErrConnDone", native, err)
	}
}
