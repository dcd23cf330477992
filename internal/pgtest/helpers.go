package pgtest

import (
	"context"
	"database/sql"
	"fmt"
	"testing"
	"time"
)

// statementTimeout bounds each statement of Exec, QueryRow and Count, so
// that a statement blocked on a lock fails its test with the statement
// rather than the whole binary at the test timeout.
const statementTimeout = time.Minute

// Execer runs a statement. *sql.DB, *sql.Tx and *sql.Conn are Execers.
type Execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// Querier reads a row. *sql.DB, *sql.Tx and *sql.Conn are Queriers.
type Querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// Exec runs query with args on db and fails t, naming the query, when it
// returns an error. query may hold several statements when it has no args.
func Exec(t testing.TB, db Execer, query string, args ...any) sql.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), statementTimeout)
	defer cancel()
	res, err := db.ExecContext(ctx, query, args...)
	if err != nil {
		t.Fatalf("exec %q: %v", query, err)
	}
	return res
}

// Row is the row QueryRow reads.
type Row struct {
	t      testing.TB
	query  string
	row    *sql.Row
	cancel context.CancelFunc
}

// QueryRow runs a query that returns one row; Scan reads it. Call Scan.
func QueryRow(t testing.TB, db Querier, query string, args ...any) *Row {
	t.Helper()
	// The context lives until Scan: cancelling it earlier closes the row.
	ctx, cancel := context.WithTimeout(context.Background(), statementTimeout)
	return &Row{t: t, query: query, row: db.QueryRowContext(ctx, query, args...), cancel: cancel}
}

// Scan copies the row's columns into dest, as sql.Row.Scan does, and
// fails the test, naming the query, on error (sql.ErrNoRows included).
func (r *Row) Scan(dest ...any) {
	r.t.Helper()
	defer r.cancel()
	if err := r.row.Scan(dest...); err != nil {
		r.t.Fatalf("query %q: %v", r.query, err)
	}
}

// Count runs a query that returns one integer (a count(*), a sum, a
// length, a position as bigint) and returns it. A NULL fails the test.
func Count(t testing.TB, db Querier, query string, args ...any) int {
	t.Helper()
	var n int
	QueryRow(t, db, query, args...).Scan(&n)
	return n
}

// WaitFor calls cond until it reports true and returns how long that took.
// When timeout passes first it fails t with what it waited for and the
// state cond last described. cond runs on t's goroutine: it may fail t.
func WaitFor(t testing.TB, what string, timeout time.Duration, cond func() (ok bool, state string)) time.Duration {
	t.Helper()
	took, err := Poll(what, timeout, cond)
	if err != nil {
		t.Fatal(err)
	}
	return took
}

// WaitUntil is WaitFor for a condition with no state to describe.
func WaitUntil(t testing.TB, what string, timeout time.Duration, cond func() bool) time.Duration {
	t.Helper()
	return WaitFor(t, what, timeout, func() (bool, string) { return cond(), "" })
}

// Poll is WaitFor for a goroutine that must not fail the test, or for a
// wait whose timeout is not a failure: it returns, after timeout, an error
// naming what it waited for and the state cond last described.
func Poll(what string, timeout time.Duration, cond func() (ok bool, state string)) (time.Duration, error) {
	begin := time.Now()
	interval := time.Millisecond
	for {
		ok, state := cond()
		if ok {
			return time.Since(begin), nil
		}
		if time.Since(begin) > timeout {
			if state != "" {
				state = " (" + state + ")"
			}
			return time.Since(begin), fmt.Errorf("timed out after %v waiting for %s%s", timeout, what, state)
		}
		// Quick for a condition about to hold, at most pollInterval behind
		// one that takes time.
		time.Sleep(interval) // polling a condition under a deadline
		interval = min(2*interval, pollInterval)
	}
}

// pollInterval is the longest pause of Poll between two calls of its
// condition.
const pollInterval = 10 * time.Millisecond
