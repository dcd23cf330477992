package wal

import (
	"time"

	"github.com/jackc/pglogrepl"
)

// rowValues maps column names to decoded values. A column whose value the
// server did not send (an unchanged TOAST value) is absent; a NULL is present
// with a nil value. Values are typed by the column's type OID: bool as bool,
// smallint/integer/bigint as int64, real/double precision as float64, numeric
// as json.Number (exact), json/jsonb as json.RawMessage, and every other type
// as the text PostgreSQL prints for it (uuid, timestamps, text, enums, ...).
type rowValues map[string]any

// eventKind is the kind of a row change.
type eventKind int

const (
	evInsert eventKind = iota + 1
	evUpdate
	evDelete
	evTruncate
)

// event is one decoded change to a registered table.
type event struct {
	kind eventKind
	// table is the registered table name (as in the Registry).
	table string
	// id is the primary key, as text, of the new row (insert, update) or of
	// the deleted row.
	id string
	// oldID is, on an update that changed the primary key (keyChanged),
	// the previous key. An empty key is a key like any other: '' is a valid
	// text key.
	oldID      string
	keyChanged bool
	// newRow holds the new values (insert, update).
	newRow rowValues
	// oldRow holds the old values the server sent (update, delete): the key
	// columns, or the whole row under REPLICA IDENTITY FULL. Nil when none
	// were sent.
	oldRow rowValues
	// tables lists the registered tables of a TRUNCATE.
	tables []string
}

// txn is one decoded transaction: the changes to registered tables between
// a Begin and a Commit, in order.
type txn struct {
	xid uint32
	// finalLSN is the LSN of the commit record (Begin.FinalLSN).
	finalLSN pglogrepl.LSN
	// endLSN is the end of the commit record (Commit.TransactionEndLSN):
	// the position to confirm once the transaction is durably applied.
	endLSN     pglogrepl.LSN
	commitTime time.Time
	events     []event
}
