package synchro

import (
	"errors"
	"fmt"
)

// The documented sentinels: errors.Is recognises them in what the
// engine returns.
var (
	// ErrUpgradeRequired indicates the client version is too old.
	ErrUpgradeRequired = errors.New("synchro: client upgrade required")
	// ErrOwnershipViolation indicates the user does not own the record.
	ErrOwnershipViolation = errors.New("synchro: ownership violation")
	// ErrRecordNotFound indicates the record does not exist.
	ErrRecordNotFound = errors.New("synchro: record not found")
	// ErrConflict indicates a conflict during push.
	ErrConflict = errors.New("synchro: conflict")
	// ErrStaleClient indicates the client's checkpoint is too far behind.
	ErrStaleClient = errors.New("synchro: stale client")
	// ErrSchemaMismatch indicates client and server schema contracts differ.
	ErrSchemaMismatch = errors.New("synchro: schema mismatch")
	// ErrUnsupportedSchemaFeature indicates the schema contains unsupported constructs.
	ErrUnsupportedSchemaFeature = errors.New("synchro: unsupported schema feature")
	// ErrTableNotRegistered indicates the table is not in the registry.
	ErrTableNotRegistered = errors.New("synchro: table not registered")
	// ErrTableReadOnly indicates the table does not accept push operations.
	ErrTableReadOnly = errors.New("synchro: table is read-only")
	// ErrInvalidOperation indicates an unknown push operation type.
	ErrInvalidOperation = errors.New("synchro: invalid operation")
	// ErrClientNotRegistered indicates the client has not been registered.
	ErrClientNotRegistered = errors.New("synchro: client not registered")
	// ErrUnregisteredParent indicates a table references a parent not in the registry.
	ErrUnregisteredParent = errors.New("synchro: unregistered parent table")
	// ErrCycleDetected indicates a cycle exists in the parent chain.
	ErrCycleDetected = errors.New("synchro: cycle detected in parent chain")
	// ErrOrphanedChain indicates the parent chain root has no OwnerColumn.
	ErrOrphanedChain = errors.New("synchro: orphaned parent chain")
	// ErrMissingOwnership indicates a pushable table has no ownership path.
	ErrMissingOwnership = errors.New("synchro: pushable table has no ownership path")
	// ErrMissingParentFKCol indicates ParentTable is set without ParentFKCol.
	ErrMissingParentFKCol = errors.New("synchro: ParentTable set without ParentFKCol")
	// ErrRedundantProtected indicates a ProtectedColumns entry is redundant.
	ErrRedundantProtected = errors.New("synchro: redundant protected column")
	// ErrInvalidPushPolicy indicates an unsupported push policy value.
	ErrInvalidPushPolicy = errors.New("synchro: invalid push policy")
	// ErrInvalidBucketConfig indicates contradictory bucket configuration.
	ErrInvalidBucketConfig = errors.New("synchro: invalid bucket configuration")
	// ErrSnapshotRequired indicates the client must rebuild from a full snapshot.
	ErrSnapshotRequired = errors.New("synchro: snapshot required")
)

// ErrNotMigrated is returned (wrapped) by NewEngine when the database lacks
// the tables of package migrations, or the columns of a newer migration:
// migrations.Migrate has not been run (or not since the library was
// upgraded). The error names what is missing.
var ErrNotMigrated = errors.New("synchro: the database is not migrated: run migrations.Migrate (package github.com/synchrosync/synchro/migrations) first")

// requestError is a client mistake that no documented sentinel describes: a
// missing client_id, a batch over the size limit, a malformed request. Its
// message is safe to show to the client.
//
// Adapters recognise it without importing an unexported type through the
// method set: errors.As(err, &x) with x of an interface type that has
// BadRequest() bool.
type requestError struct {
	msg string
	// cause is the documented sentinel the mistake is an instance of, if
	// any; errors.Is finds it.
	cause error
}

func (e *requestError) Error() string { return e.msg }

// Unwrap returns the sentinel the error is an instance of, or nil.
func (e *requestError) Unwrap() error { return e.cause }

// BadRequest reports that the error is the caller's mistake.
func (e *requestError) BadRequest() bool { return true }

// badRequest returns a *requestError with a formatted message.
func badRequest(format string, args ...any) error {
	return &requestError{msg: fmt.Sprintf(format, args...)}
}

// badRequestWrap returns a *requestError that wraps the sentinel cause; the
// message is the formatted text followed by cause's.
func badRequestWrap(cause error, format string, args ...any) error {
	return &requestError{msg: fmt.Sprintf(format, args...) + ": " + cause.Error(), cause: cause}
}

// isBadRequest reports whether err is, or wraps, a requestError.
func isBadRequest(err error) bool {
	var re *requestError
	return errors.As(err, &re)
}
