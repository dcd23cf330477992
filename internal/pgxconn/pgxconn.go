// Package pgxconn reaches pgx's own connection under a database/sql one,
// for what database/sql cannot do: COPY, batches of statements in one
// round trip, waiting for notifications.
package pgxconn

import (
	"database/sql"

	"github.com/jackc/pgx/v5"
)

// driverConn is what the connections of pgx's database/sql driver
// (github.com/jackc/pgx/v5/stdlib) give through sql.Conn.Raw.
type driverConn interface{ Conn() *pgx.Conn }

// Raw runs f with the pgx connection under conn and returns its error,
// reporting native true. When conn's driver connection is not pgx's (a
// pool of another driver, or of one wrapping pgx's, as tracing drivers
// do), it runs nothing and reports false with a nil error: the caller then
// does the work through database/sql. When conn cannot give its driver
// connection (it is closed), it reports false with that error. f must not
// keep the connection, nor use it after returning; it may close it, and
// database/sql then discards it (pgx's ResetSession reports a closed
// connection bad).
func Raw(conn *sql.Conn, f func(*pgx.Conn) error) (native bool, err error) {
	err = conn.Raw(func(dc any) error {
		c, ok := dc.(driverConn)
		if !ok {
			return nil
		}
		native = true
		return f(c.Conn())
	})
	return native, err
}
