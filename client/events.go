package client

import (
	"encoding/json"
	"time"

	"github.com/synchrosync/synchro/client/internal/local"
)

// State is what a client is doing.
type State int

const (
	// StateIdle: the last round succeeded; the client waits for changes.
	StateIdle State = iota
	// StateSyncing: a round is under way.
	StateSyncing
	// StateOffline: the last round could not reach the server, or the
	// server could not answer for now (429, 502, 503, 504). Run retries.
	StateOffline
	// StateError: the last round failed otherwise (another error status,
	// an answer that could not be read, the local database). Run
	// retries, backing off.
	StateError
	// StateClosed: Close was called.
	StateClosed
)

func (s State) String() string {
	switch s {
	case StateIdle:
		return "idle"
	case StateSyncing:
		return "syncing"
	case StateOffline:
		return "offline"
	case StateError:
		return "error"
	case StateClosed:
		return "closed"
	}
	return "unknown"
}

// Status is a client's state with what explains it.
type Status struct {
	State State
	// Err is why the client is offline or in error; nil otherwise.
	Err error
	// RetryAt is when Run tries again after Err; zero when it is not
	// waiting to.
	RetryAt time.Time
	// LastSync is when the last round that succeeded ended; zero before
	// the first.
	LastSync time.Time
}

// EventKind says what an Event reports.
type EventKind int

const (
	// EventState: the client's State changed; Event.Status is the new
	// status.
	EventState EventKind = iota
	// EventConflict: a local change lost a conflict with the server's
	// row, which replaced the local one; Event.Rejection tells which.
	EventConflict
	// EventRejected: the server refused a local change for good, and the
	// row went back to the server's; Event.Rejection tells which. Also
	// for a pending change a schema change left without a place (reason
	// ReasonSchemaChanged).
	EventRejected
	// EventReceived: changes from the server were written to the local
	// tables; Event.Tables counts them by table.
	EventReceived
	// EventSnapshot: a snapshot starts, replacing the local rows (pending
	// local changes kept); Event.Reason says why ("initial",
	// "schema_changed", or the server's snapshot_reason).
	EventSnapshot
	// EventSchemaChanged: the local tables moved to the server's new
	// contract; Event.Reason is "in_place" (columns added, rows kept) or
	// "rebuilt" (a snapshot follows).
	EventSchemaChanged
)

func (k EventKind) String() string {
	switch k {
	case EventState:
		return "state"
	case EventConflict:
		return "conflict"
	case EventRejected:
		return "rejected"
	case EventReceived:
		return "received"
	case EventSnapshot:
		return "snapshot"
	case EventSchemaChanged:
		return "schema_changed"
	}
	return "unknown"
}

// Event is something the client reports to Config.OnEvent.
type Event struct {
	Kind      EventKind
	Status    Status         // EventState
	Rejection *Rejection     // EventConflict, EventRejected
	Tables    map[string]int // EventReceived
	Reason    string         // EventSnapshot, EventSchemaChanged
}

// ReasonSchemaChanged is the reason of a rejection the client itself
// decided: a pending local change whose table the server no longer syncs,
// whose key column changed, or whose row no longer fits its table after a
// schema change.
const ReasonSchemaChanged = local.ReasonSchemaChanged

// ReasonParentMissing is the reason of a rejection the client itself
// decided: a create the server answered parent_not_found several times,
// whose parent row (the contract's parent_table, by its parent_fk_col) is
// neither a local row nor a pending change, so that no push of this
// device can bring it (the application deleted the parent before it was
// pushed, or the server refused the parent's create).
const ReasonParentMissing = local.ReasonParentMissing

// Rejection is a local change the server did not take as it was sent: a
// conflict the server's row won (Status "conflict"), or a refusal for good
// (Status "rejected_terminal"). The change left the outbox and the local
// row is the server's again; the rejection keeps the change until the
// application deletes it (DeleteRejections).
type Rejection struct {
	// Seq numbers the rejection (DeleteRejections takes it).
	Seq int64
	// Table, ID and Operation name the change: the table, the record's
	// key, "create", "update" or "delete".
	Table, ID, Operation string
	// Status is "conflict" or "rejected_terminal"; Reason the server's
	// reason code (such as "server_won_conflict" or "invalid_data") or
	// ReasonSchemaChanged; Message the server's explanation.
	Status, Reason, Message string
	// Data is the row as it was sent (nil for a delete).
	Data json.RawMessage
	// ServerData is the server's row when it sent one (conflicts), and
	// ServerDeleted whether that row is deleted.
	ServerData    json.RawMessage
	ServerDeleted bool
	// ChangedAt is when the change was made; RejectedAt when the answer
	// came.
	ChangedAt, RejectedAt time.Time
}

func rejectionOf(r local.Rejection) Rejection {
	out := Rejection{Seq: r.Seq, Table: r.Table, ID: r.ID, Operation: r.Operation, Status: r.Status, Reason: r.ReasonCode,
		Message: r.Message, Data: r.Data, ServerData: r.ServerData, ServerDeleted: r.ServerDeleted}
	out.ChangedAt, _ = local.ParseTime(r.ClientUpdatedAt)
	out.RejectedAt, _ = local.ParseTime(r.RejectedAt)
	return out
}

// Pending is a local change waiting for the server.
type Pending struct {
	// Table, ID and Operation name the change: the table, the record's
	// key, "create", "update" or "delete" (a record's changes are
	// merged into one).
	Table, ID, Operation string
	// BaseUpdatedAt is the server version the change was made on; zero
	// for a create.
	BaseUpdatedAt time.Time
	// ChangedAt is when the latest change was made.
	ChangedAt time.Time
	// Sent reports whether a push has sent it (its answer not yet
	// applied, or retryable).
	Sent bool
	// Attempts counts the pushes answered rejected_retryable, LastError
	// the latest such answer.
	Attempts  int
	LastError string
}
