package synchro

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"

	"github.com/synchrosync/synchro/internal/bucket"
	"github.com/synchrosync/synchro/internal/pgident"
	"github.com/synchrosync/synchro/internal/store"
)

// SubscriptionRule decides the buckets a client follows, for Config.Subscriptions.
//
// It is called by every Pull and by the first page of every Snapshot, with the
// engine's pool as db, so a change of the rule's answer reaches the client at
// its next pull: rows of a bucket it gained are delivered to it, rows that were
// only in a bucket it lost are deleted from it, without a new snapshot.
//
// The answer is trusted: the rows of every bucket returned are sent to the
// client, so a rule must return only buckets the user may read. Bucket ids
// must be non-empty valid UTF-8 without NUL bytes, of at most 1024 bytes,
// and must not start with "synchro:" (reserved); duplicates are ignored; at
// most 10000 buckets. An error fails the request.
type SubscriptionRule func(ctx context.Context, db DB, userID, clientID string) ([]string, error)

// SQLSubscriptions returns a SubscriptionRule that asks a SQL function:
//
//	function(user_id text, client_id text) -> setof text
//
// (a function returning a single text is accepted too). NULL and empty values
// are ignored. The name, "name" or "schema.name", is used exactly as written
// (quoted, so case-sensitive); an unqualified name is looked up on the
// search_path. Only the name is checked here; a missing function fails the
// first pull with the database's error.
func SQLSubscriptions(function string) (SubscriptionRule, error) {
	if err := pgident.CheckQualified(function); err != nil {
		return nil, fmt.Errorf("synchro: invalid subscription function %q: %w", function, err)
	}
	q := `SELECT b FROM ` + pgident.QuoteQualified(function) + `($1::text, $2::text) AS b WHERE b IS NOT NULL AND b <> ''`
	return func(ctx context.Context, db DB, userID, clientID string) ([]string, error) {
		buckets, err := queryStrings(ctx, db, q, userID, clientID)
		if err != nil {
			return nil, fmt.Errorf("synchro: subscription function %s: %w", function, err)
		}
		return buckets, nil
	}, nil
}

// queryStrings runs a query returning one text column.
func queryStrings(ctx context.Context, db DB, q string, args ...any) ([]string, error) {
	rows, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// Limits on what a SubscriptionRule may return.
const (
	maxSubscriptions = 10000
)

// subscriptions returns the buckets the client follows now, sorted and
// without duplicates: the rule's answer, or "user:<id>" and "global".
func (e *Engine) subscriptions(ctx context.Context, userID, clientID string) ([]string, error) {
	if e.subscribe == nil {
		return bucket.Normalize([]string{bucket.User(userID), bucket.Global}), nil
	}
	buckets, err := e.subscribe(ctx, e.db, userID, clientID)
	if err != nil {
		return nil, fmt.Errorf("synchro: subscription rule for user %q client %q: %w", userID, clientID, err)
	}
	if len(buckets) > maxSubscriptions {
		return nil, fmt.Errorf("synchro: subscription rule returned %d buckets for user %q, at most %d are allowed", len(buckets), userID, maxSubscriptions)
	}
	for _, b := range buckets {
		if b == "" {
			return nil, fmt.Errorf("synchro: subscription rule returned an empty bucket id for user %q", userID)
		}
		if err := bucket.CheckID(b); err != nil {
			return nil, fmt.Errorf("synchro: subscription rule for user %q: %w", userID, err)
		}
	}
	return bucket.Normalize(buckets), nil
}

// bucketDiff reports the buckets of next missing from known (in next's
// order) and those of known missing from next (in known's order); nil when
// known is empty or nothing differs.
func bucketDiff(known, next []string) *BucketUpdate {
	if len(known) == 0 {
		return nil
	}
	var u BucketUpdate
	for _, b := range next {
		if !slices.Contains(known, b) {
			u.Added = append(u.Added, b)
		}
	}
	seen := map[string]bool{}
	for _, b := range known {
		if !slices.Contains(next, b) && !seen[b] {
			seen[b] = true
			u.Removed = append(u.Removed, b)
		}
	}
	if len(u.Added) == 0 && len(u.Removed) == 0 {
		return nil
	}
	return &u
}

// resubscribe moves a client from its recorded buckets to next. In one
// transaction it writes to the client's private bucket an insert for every
// record now in a bucket it gained, and a delete for every record it may hold
// through a bucket it lost (recorded there now, or since checkpoint) that is
// in none of next, then records next. The pull that follows delivers them like
// any other change: current rows, only while still in the client's buckets.
func (e *Engine) resubscribe(ctx context.Context, c *clientRow, next []string, checkpoint int64) error {
	tx, err := e.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("synchro: changing subscriptions: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	var stored string
	err = tx.QueryRowContext(ctx, store.LockClientSubscriptions, c.ID).Scan(&stored)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%w: client %q", ErrClientNotRegistered, c.ClientID)
	}
	if err != nil {
		return fmt.Errorf("synchro: changing subscriptions: %w", err)
	}
	prev, err := decodeTextArray(stored)
	if err != nil {
		return fmt.Errorf("synchro: changing subscriptions: %w", err)
	}
	prev = bucket.Normalize(prev)
	if slices.Equal(prev, next) {
		return nil // a concurrent pull of the same client did it
	}
	var added, removed []string
	for _, b := range next {
		if !slices.Contains(prev, b) {
			added = append(added, b)
		}
	}
	for _, b := range prev {
		if !slices.Contains(next, b) {
			removed = append(removed, b)
		}
	}
	if _, err := tx.ExecContext(ctx, store.LockChangelogWrites); err != nil {
		return fmt.Errorf("synchro: changing subscriptions: %w", err)
	}
	private := bucket.Client(c.ID)
	if len(removed) > 0 {
		_, err = tx.ExecContext(ctx, store.Unsubscribe, private, removed, checkpoint, next, e.tableOrder)
		if err != nil {
			return fmt.Errorf("synchro: delivering the removal of buckets %v: %w", removed, err)
		}
	}
	if len(added) > 0 {
		_, err = tx.ExecContext(ctx, store.Subscribe, private, added, e.tableOrder)
		if err != nil {
			return fmt.Errorf("synchro: delivering the rows of buckets %v: %w", added, err)
		}
	}
	if _, err := tx.ExecContext(ctx, store.RecordSubscriptions, c.ID, next); err != nil {
		return fmt.Errorf("synchro: recording subscriptions: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("synchro: changing subscriptions: %w", err)
	}
	e.logger.InfoContext(ctx, "synchro: client subscriptions changed", "client_id", c.ClientID, "added", added, "removed", removed)
	return nil
}
