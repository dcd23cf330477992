// Package waltest runs change capture (a wal.Consumer) for the tests of
// the packages that need a changelog written: the root package's,
// synchrohttp's and the Go client's. Package wal's own tests have their
// handles (startConsumer), with test signals.
package waltest

import (
	"context"
	"database/sql"
	"fmt"
	"testing"
	"time"

	"github.com/synchrosync/synchro/internal/pgtest"
	"github.com/synchrosync/synchro/wal"
)

// stopTimeout bounds how long Run's cleanup waits for Start to return.
const stopTimeout = 30 * time.Second

// Run starts c, a consumer of slot, in a goroutine, stops it when t ends,
// and waits, at most timeout, until it streams (see Streaming). db is a
// pool of the consumer's database that can read pg_replication_slots.
func Run(t testing.TB, c *wal.Consumer, db *sql.DB, slot string, timeout time.Duration) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(stopTimeout):
			t.Errorf("the consumer did not stop within %v", stopTimeout)
		}
	})
	pgtest.WaitFor(t, "the consumer to stream", timeout, func() (bool, string) { return Streaming(db, slot) })
}

// Streaming reports whether a consumer streams from slot: the slot is in
// use and the consumer has recorded its position (so every change
// committed from then on reaches the changelog), and what it found.
func Streaming(db *sql.DB, slot string) (bool, string) {
	var active bool
	err := db.QueryRow(`
SELECT s.active AND EXISTS (SELECT 1 FROM synchro.wal_position p WHERE p.slot_name = s.slot_name)
  FROM pg_replication_slots s WHERE s.slot_name = $1`, slot).Scan(&active)
	return err == nil && active, fmt.Sprintf("streaming %v, %v", active, err)
}
