package synchro

import (
	"context"
	"encoding/json"
	"fmt"
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
	// ClientTime is the edit time of the change: the client's
	// client_updated_at, capped at the database clock at the start of the
	// push plus Config.ClockSkewTolerance (or the ClockSkewTolerance of the
	// configured LWWResolver when that is less), to the microsecond; zero
	// when the client sent none. When the client wins, the row's new version
	// (updated-at) is this time, or just after the current version when
	// that is not earlier (versions only move forward).
	ClientTime time.Time
	// ServerTime is the current row's version, its updated-at: the edit
	// time of the write that produced it. For a write made through Push
	// that is the ClientTime it won with (moved forward as above); for a
	// write made outside synchro, whatever it stored in the column (a
	// timestamp without time zone read as UTC). It is zero when the row has
	// no version: updated-at is NULL, infinity or -infinity.
	ServerTime time.Time
	// BaseVersion is the version of the row the client's change was made
	// on: its base_updated_at (the updated_at of its copy, from a pull or
	// from server_updated_at), or nil when the client sent none. When an
	// earlier record of the same push wrote the row and nothing changed it
	// since, it is the version that write gave the row: a device's later
	// edit of a row is made on its earlier one.
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

// LWWResolver implements Last-Write-Wins conflict resolution by edit time.
// The client timestamp is adjusted by ClockSkewTolerance before comparison.
//
// Both times are edit times (see Conflict): the client's is when the device
// made its change, the server's is when the change that produced the
// current row was made, so the later edit wins whichever reached the server
// first. The rules, in order:
//   - When the client sent a base version equal to the server time, the server
//     row has not changed since the client read it, so the client wins.
//   - When the base version is after the server time, the client claims to
//     have seen a version the server never had, so the server wins.
//   - Otherwise the client wins only when its adjusted time is strictly after
//     the server time: a tie goes to the server.
//
// A device's clock decides its edit times. One that runs behind loses
// conflicts against edits made (by the other clocks) within its lag, unless
// it sends the version it edited as base_updated_at. One that runs ahead
// wins the conflicts it pushes, but its edit time is capped at the database
// clock when the push starts (plus Config.ClockSkewTolerance), and that is
// the version it leaves: it cannot win the conflicts of edits made after
// its push. The tolerance counts twice, in the cap and in the comparison,
// and it must: an edit made just after the push, compared with its time
// plus the tolerance, is then later than the capped version. So the engine
// caps at no more than the configured LWWResolver's ClockSkewTolerance
// (see Config.ClockSkewTolerance); a resolver of another type is not
// known to it, and gets the cap of Config.ClockSkewTolerance.
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
	times := fmt.Sprintf("this edit was made at %s, the server's version at %s", editStamp(c.ClientTime), editStamp(c.ServerTime))
	if adjusted.After(c.ServerTime) {
		return Resolution{Winner: winnerClient, Reason: "client write is newer: " + times}, nil
	}
	if adjusted.Equal(c.ServerTime) {
		return Resolution{Winner: winnerServer, Reason: "tie goes to the server: " + times}, nil
	}
	return Resolution{Winner: winnerServer, Reason: "server write is newer: " + times}, nil
}

// editStamp formats an edit time for a Resolution's reason.
func editStamp(t time.Time) string {
	if t.IsZero() {
		return "an unknown time"
	}
	return t.UTC().Format("2006-01-02T15:04:05.000000Z")
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
