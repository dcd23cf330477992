package synchro

import (
	"context"
	"encoding/json"
	"time"
)

// Conflict provides full context for conflict resolution.
type Conflict struct {
	// Table is the registered table name.
	Table string
	// RecordID is the primary key of the record, as text.
	RecordID string
	// ClientID is the device that pushed the change.
	ClientID string
	// UserID is the authenticated user that pushed the change.
	UserID string
	// ClientData is the data the client pushed, as sent.
	ClientData json.RawMessage
	// ServerData is the current server row, limited to the synced columns.
	ServerData json.RawMessage
	// ClientTime is the client's client_updated_at for the change.
	ClientTime time.Time
	// ServerTime is the server row's updated-at timestamp.
	ServerTime time.Time
	// BaseVersion is the server updated-at the client last saw for the row
	// (base_updated_at), or nil when the client did not send one.
	BaseVersion *time.Time
}

// Resolution describes how a conflict was resolved.
type Resolution struct {
	// Winner is "client" or "server".
	Winner string
	// Reason explains the resolution.
	Reason string
}

// The two values of Resolution.Winner.
const (
	winnerClient = "client"
	winnerServer = "server"
)

// ConflictResolver resolves conflicts between client and server data.
//
// Resolve must be safe for concurrent use. An error from Resolve rejects the
// pushed record as retryable; it does not fail the other records of the push.
type ConflictResolver interface {
	Resolve(ctx context.Context, conflict Conflict) (Resolution, error)
}

// LWWResolver implements Last-Write-Wins conflict resolution.
// The client timestamp is adjusted by ClockSkewTolerance before comparison.
//
// The rules, in order:
//   - When the client sent a base version equal to the server time, the server
//     row has not changed since the client read it, so the client wins.
//   - When the base version is after the server time, the client claims to
//     have seen a version the server never had, so the server wins.
//   - Otherwise the client wins only when its adjusted time is strictly after
//     the server time: a tie goes to the server.
type LWWResolver struct {
	// ClockSkewTolerance is added to the client time before it is compared.
	// A positive value favours the client, a negative one the server.
	// Defaults to 0.
	ClockSkewTolerance time.Duration
}

// Resolve implements ConflictResolver using LWW semantics.
func (r *LWWResolver) Resolve(_ context.Context, c Conflict) (Resolution, error) {
	if c.BaseVersion != nil {
		switch {
		case c.BaseVersion.Equal(c.ServerTime):
			return Resolution{Winner: winnerClient, Reason: "server unchanged since client base version"}, nil
		case c.BaseVersion.After(c.ServerTime):
			return Resolution{Winner: winnerServer, Reason: "client base version is ahead of the server"}, nil
		}
	}
	adjusted := c.ClientTime.Add(r.ClockSkewTolerance)
	if adjusted.After(c.ServerTime) {
		return Resolution{Winner: winnerClient, Reason: "client write is newer"}, nil
	}
	if adjusted.Equal(c.ServerTime) {
		return Resolution{Winner: winnerServer, Reason: "tie goes to the server"}, nil
	}
	return Resolution{Winner: winnerServer, Reason: "server write is newer"}, nil
}

// ServerWinsResolver always resolves in favor of the server.
type ServerWinsResolver struct{}

// Resolve implements ConflictResolver by always choosing the server.
func (r *ServerWinsResolver) Resolve(_ context.Context, _ Conflict) (Resolution, error) {
	return Resolution{Winner: winnerServer, Reason: "server wins policy"}, nil
}

// Compile-time checks that the resolvers satisfy ConflictResolver.
var (
	_ ConflictResolver = (*LWWResolver)(nil)
	_ ConflictResolver = (*ServerWinsResolver)(nil)
)
