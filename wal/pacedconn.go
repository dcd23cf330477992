package wal

import (
	"context"
	"math"
	"net"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// readPause is how long a read of the replication connection waits, after
// a read that emptied the socket, before it reads again.
//
// PostgreSQL 15's WAL sender sends each row change as a message of its
// own and flushes it: a burst of small transactions arrives as thousands
// of sends of about a hundred bytes. Read as they come, each wakes the
// consumer, whose read then finds one or a few messages: BenchmarkCaptureBurst
// made 4,000-8,000 reads a burst of 20,000 rows, and the wake-ups, on
// both sides, cost more CPU than decoding. Waiting this long after a read
// that emptied the socket lets the next read take what arrived meanwhile
// (about 400 reads a burst), and costs a message at most this long of
// latency (BenchmarkCaptureLatency: p50 5.3 → 5.9 ms); the first read
// after the stream was idle is not delayed at all (the wait counts from
// the last read). On two cores the consumer's process and the WAL
// sender used about a fifth less CPU (docs/benchmarks.md, "A ninth look").
const readPause = 500 * time.Microsecond

// pacedDial wraps cfg's dialer so that the connections it makes pace their
// reads (pacedConn). It wraps the network connection, beneath TLS, where a
// short read means the socket is empty.
func pacedDial(cfg *pgconn.Config, pause time.Duration) {
	dial := cfg.DialFunc
	cfg.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return newPacedConn(conn, pause), nil
	}
}

// pacedConn is a net.Conn whose reads, after one that returned less than
// asked (the socket held no more), wait until pause has passed since that
// read. The wait ends early at the read deadline, or as soon as the
// deadline is moved to now or earlier (how the consumer wakes a receive);
// the read that follows then reports the deadline as usual.
//
// Its times are read on the monotonic clock (pacedClock): a step of the
// wall clock must not stretch a wait past the deadline, which the
// connection itself keeps on the monotonic clock.
type pacedConn struct {
	net.Conn
	pause time.Duration
	// drained is when the last read emptied the socket (pacedClock); 0
	// when it filled its buffer, failed or was followed by its wait. Reads
	// are not concurrent, but pgconn may read from a goroutine of its own
	// while it writes.
	drained atomic.Int64
	// deadline is the read deadline (pacedClock), math.MaxInt64 for none.
	deadline atomic.Int64
	// wake is signalled when the deadline moves to now or earlier.
	wake chan struct{}
}

func newPacedConn(conn net.Conn, pause time.Duration) *pacedConn {
	c := &pacedConn{Conn: conn, pause: pause, wake: make(chan struct{}, 1)}
	c.deadline.Store(math.MaxInt64)
	return c
}

// pacedEpoch is the origin of pacedClock.
var pacedEpoch = time.Now()

// pacedClock returns the time t (which must carry a monotonic reading, as
// time.Now's do) in nanoseconds since pacedEpoch, at least 1: 0 stands for
// none.
func pacedClock(t time.Time) int64 { return max(int64(t.Sub(pacedEpoch)), 1) }

func (c *pacedConn) Read(p []byte) (int, error) {
	if drained := c.drained.Swap(0); drained != 0 {
		c.wait(drained)
	}
	n, err := c.Conn.Read(p)
	if err == nil && n > 0 && n < len(p) {
		c.drained.Store(pacedClock(time.Now()))
	}
	return n, err
}

// wait waits until pause after drained, the read deadline or a wake,
// whichever comes first.
func (c *pacedConn) wait(drained int64) {
	// A wake left from a deadline moved while no read waited is stale: it
	// would cut this wait short. A wake after this shows in the deadline
	// loaded below (noteDeadline stores it before it signals) or in the
	// select.
	select {
	case <-c.wake:
	default:
	}
	until := min(drained+int64(c.pause), c.deadline.Load())
	wait := time.Duration(until - pacedClock(time.Now()))
	if wait <= 0 {
		return
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
	case <-c.wake:
	}
}

// SetReadDeadline sets the connection's read deadline, then wakes a
// waiting read if t has passed: the read must find the deadline set when
// it reads.
func (c *pacedConn) SetReadDeadline(t time.Time) error {
	err := c.Conn.SetReadDeadline(t)
	c.noteDeadline(t)
	return err
}

// SetDeadline is SetReadDeadline for both directions.
func (c *pacedConn) SetDeadline(t time.Time) error {
	err := c.Conn.SetDeadline(t)
	c.noteDeadline(t)
	return err
}

// noteDeadline records the read deadline t, and wakes a waiting read when
// t has passed.
func (c *pacedConn) noteDeadline(t time.Time) {
	if t.IsZero() {
		c.deadline.Store(math.MaxInt64)
		return
	}
	c.deadline.Store(pacedClock(t))
	if !t.After(time.Now()) {
		select {
		case c.wake <- struct{}{}:
		default:
		}
	}
}
