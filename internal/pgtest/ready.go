package pgtest

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// readyTimeout bounds the wait for a server to accept connections.
const readyTimeout = 60 * time.Second

// errExited reports that the server process ended while waitReady waited.
var errExited = errors.New("the server process exited")

// waitReady polls connString until a connection succeeds, for at most
// readyTimeout, and returns that connection. It gives up early when exited
// (may be nil) is closed: the server process has ended.
func waitReady(ctx context.Context, connString string, exited <-chan struct{}) (*pgconn.PgConn, error) {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	for {
		attemptCtx, cancelAttempt := context.WithTimeout(ctx, 2*time.Second)
		conn, err := pgconn.Connect(attemptCtx, connString)
		cancelAttempt()
		if err == nil {
			return conn, nil
		}
		timer := time.NewTimer(50 * time.Millisecond)
		select {
		case <-exited:
			timer.Stop()
			return nil, errExited
		case <-ctx.Done():
			timer.Stop()
			return nil, fmt.Errorf("not accepting connections after %v: %w", readyTimeout, err)
		case <-timer.C:
		}
	}
}
