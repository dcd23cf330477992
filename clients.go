package synchro

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/synchrosync/synchro/internal/bucket"
	"github.com/synchrosync/synchro/internal/store"
)

// This file holds the engine's reads and writes of its clients' rows and
// the decoding of those rows; the statements are in
// internal/store/clients.go.

// clientRow is a stored client with the engine's bookkeeping.
type clientRow struct {
	Client
	// snapshotSeq is the checkpoint of the client's latest snapshot, in
	// progress or completed, or nil; it only grows.
	snapshotSeq *int64
	// snapshotCompletedAt is when the client last finished a snapshot.
	snapshotCompletedAt *time.Time
	// snapshotSubs are the buckets of the snapshot in progress; nil when
	// none is (snapshotSeq then holds the checkpoint of the last one).
	snapshotSubs []string
	// ackedSeq is the checkpoint the client last pulled from.
	ackedSeq *int64
}

// scanClient reads the columns of store.ClientColumns, then into extra
// the columns that follow them.
func scanClient(row interface{ Scan(...any) error }, extra ...any) (*clientRow, error) {
	var c clientRow
	var subs string
	var snapSubs sql.NullString
	dest := []any{&c.ID, &c.UserID, &c.ClientID, &c.ClientName, &c.Platform, &c.AppVersion, &subs,
		&c.LastSyncAt, &c.LastPullAt, &c.LastPushAt, &c.LastPullSeq, &c.IsActive, &c.CreatedAt, &c.UpdatedAt,
		&c.snapshotSeq, &c.snapshotCompletedAt, &snapSubs, &c.ackedSeq}
	err := row.Scan(append(dest, extra...)...)
	if err != nil {
		return nil, err
	}
	if c.BucketSubs, err = decodeTextArray(subs); err != nil {
		return nil, err
	}
	if snapSubs.Valid {
		if c.snapshotSubs, err = decodeTextArray(snapSubs.String); err != nil {
			return nil, err
		}
		if c.snapshotSubs == nil {
			c.snapshotSubs = []string{}
		}
	}
	return &c, nil
}

// decodeTextArray decodes the JSON form of a text[] (to_json(...)::text).
func decodeTextArray(s string) ([]string, error) {
	var out []string
	if err := json.Unmarshal([]byte(s), &out); err != nil {
		return nil, fmt.Errorf("decoding a bucket list: %w", err)
	}
	return out, nil
}

// upsertClient inserts the client or updates its descriptive fields, keeping
// its checkpoint and subscriptions, and marks it active.
func upsertClient(ctx context.Context, db DB, userID string, req *RegisterRequest) (*clientRow, error) {
	row := db.QueryRowContext(ctx, store.UpsertClient,
		userID, req.ClientID, req.ClientName, req.Platform, req.AppVersion, bucket.User(userID), bucket.Global)
	c, err := scanClient(row)
	if err != nil {
		return nil, fmt.Errorf("synchro: registering client %q: %w", req.ClientID, err)
	}
	return c, nil
}

// findClient reads one client with query, which selects store.ClientColumns and
// then the columns scanned into extra. It returns ErrClientNotRegistered when
// there is no such client; any other failure is returned wrapped, never as
// ErrClientNotRegistered.
func findClient(ctx context.Context, db DB, clientID, query string, args []any, extra ...any) (*clientRow, error) {
	c, err := scanClient(db.QueryRowContext(ctx, query, args...), extra...)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: client %q", ErrClientNotRegistered, clientID)
	}
	if err != nil {
		return nil, fmt.Errorf("synchro: loading client %q: %w", clientID, err)
	}
	return c, nil
}

// pushClient is the client row as a push sees it.
type pushClient struct {
	*clientRow
	// waits are the records of the client's last push that wait for their
	// parent (clients.parent_waits).
	waits []parentWait
	// now is the database's clock at the start of the push.
	now time.Time
}

// parentWait is one record of clients.parent_waits.
type parentWait struct {
	Table string `json:"table"`
	ID    string `json:"id"`
	// Stalled counts the pushes of the client, since the record first
	// waited, that applied nothing at all.
	Stalled int       `json:"stalled"`
	Since   time.Time `json:"since"`
}

// lockClientForPush loads the client inside the push transaction, locking
// its row (see findClient for the errors).
func lockClientForPush(ctx context.Context, tx *sql.Tx, userID, clientID string) (*pushClient, error) {
	var waits string
	pc := &pushClient{}
	// The push's conflicts carry rows read as text: the statement sets
	// bytea in hex (hexBytes) for the rest of the transaction.
	c, err := findClient(ctx, tx, clientID, store.LockClientForPush,
		[]any{userID, clientID}, &waits, &pc.now, new(string))
	if err != nil {
		return nil, err
	}
	pc.clientRow = c
	if err := json.Unmarshal([]byte(waits), &pc.waits); err != nil {
		return nil, fmt.Errorf("synchro: reading the parent waits of client %q: %w", clientID, err)
	}
	return pc, nil
}

// loadClient reads a client (see findClient for the errors).
func loadClient(ctx context.Context, db DB, userID, clientID string) (*clientRow, error) {
	return findClient(ctx, db, clientID, store.LoadClient, []any{userID, clientID})
}

// touchClientPush records a push on the client row.
func touchClientPush(ctx context.Context, tx *sql.Tx, id string) error {
	if _, err := tx.ExecContext(ctx, store.TouchClientPush, id); err != nil {
		return fmt.Errorf("synchro: recording push: %w", err)
	}
	return nil
}

// staleCheck consults Hooks.OnStaleClient for a client that has not synced
// within the stale threshold or was deactivated, and returns ErrStaleClient
// when the hook refuses it.
func (e *Engine) staleCheck(ctx context.Context, c *clientRow) error {
	if e.hooks.OnStaleClient == nil || c.LastSyncAt == nil {
		return nil
	}
	if c.IsActive && time.Since(*c.LastSyncAt) <= e.stale {
		return nil
	}
	if !e.hooks.OnStaleClient(ctx, c.ClientID, *c.LastSyncAt) {
		return fmt.Errorf("%w: client %q last synced at %s", ErrStaleClient, c.ClientID, c.LastSyncAt.UTC().Format(time.RFC3339))
	}
	return nil
}
