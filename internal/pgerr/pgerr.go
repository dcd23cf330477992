// Package pgerr names the PostgreSQL error codes (SQLSTATE) the library
// branches on, reads them from an error ([Code]), and holds its two retry
// policies side by side: [RecordRetryable] for one record of a push and
// [Transient] for a whole request.
package pgerr

import (
	"errors"

	"github.com/jackc/pgx/v5/pgconn"
)

// SQLSTATE codes, with PostgreSQL's condition names (Appendix A of its
// manual).
const (
	// FeatureNotSupported (feature_not_supported) is also a COPY FROM into
	// a table whose row-level security applies to the role.
	FeatureNotSupported = "0A000"
	// CharacterNotInRepertoire (character_not_in_repertoire) is what
	// PostgreSQL answers to a NUL in a text parameter.
	CharacterNotInRepertoire = "22021"
	ForeignKeyViolation      = "23503" // foreign_key_violation
	UniqueViolation          = "23505" // unique_violation
	CheckViolation           = "23514" // check_violation
	InFailedSQLTransaction   = "25P02" // in_failed_sql_transaction
	SerializationFailure     = "40001" // serialization_failure
	DeadlockDetected         = "40P01" // deadlock_detected
	InsufficientPrivilege    = "42501" // insufficient_privilege (also row-level security)
	UndefinedObject          = "42704" // undefined_object
	DuplicateObject          = "42710" // duplicate_object
	// ObjectInUse (object_in_use) is also a replication slot that another
	// connection streams from, or a database that has sessions.
	ObjectInUse      = "55006"
	LockNotAvailable = "55P03" // lock_not_available, also lock_timeout
	QueryCanceled    = "57014" // query_canceled, also statement_timeout
	AdminShutdown    = "57P01" // admin_shutdown
	CrashShutdown    = "57P02" // crash_shutdown
	CannotConnectNow = "57P03" // cannot_connect_now
)

// SQLSTATE classes: the first two characters of a code (see [Class]).
const (
	ClassConnectionException          = "08"
	ClassDataException                = "22"
	ClassIntegrityConstraintViolation = "23"
	ClassTransactionRollback          = "40"
	ClassWithCheckOptionViolation     = "44"
	ClassInsufficientResources        = "53"
	ClassProgramLimitExceeded         = "54"
	ClassObjectNotInPrerequisiteState = "55"
	ClassOperatorIntervention         = "57"
	ClassSystemError                  = "58"
	ClassPLpgSQLError                 = "P0"
	ClassInternalError                = "XX"
)

// Code returns the SQLSTATE of the PostgreSQL error in err's chain, or ""
// when there is none.
func Code(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code
	}
	return ""
}

// Class returns the class of a code, its first two characters, or "" for
// a code shorter than that.
func Class(code string) string {
	if len(code) < 2 {
		return ""
	}
	return code[:2]
}

// The two policies answer different questions, so they differ on purpose.
//
// RecordRetryable decides one record of a push: rejected_retryable or
// rejected_terminal (synchrohttp's "Push outcomes"). A terminal answer
// makes the device drop the record for good, so the classes that tell of
// the server's state rather than of the record are retryable as a whole,
// including codes nothing says will pass (XX000 internal_error, 58030
// io_error, 55006 object_in_use, 57P04 database_dropped): giving up a
// user's write for a server fault is worse than sending it again. The
// record's own failures (bad values, constraints, row-level security, the
// application's triggers) and every other class are terminal.
//
// Transient decides a whole request: 503 unavailable, logged at Warn and
// sent with Retry-After, or 500 internal, logged at Error (synchrohttp's
// "Transient failures" and "Logging"). The device keeps its changes and
// retries after either (an error status fails the push as a whole), so
// what the answer decides is whether an operator is alerted. It names
// only the failures known to pass by themselves (contention, timeouts,
// shutdown, connection, resources) and leaves every other server fault a
// 500 for someone to look at.
//
// So every Transient code is RecordRetryable, not the reverse: XX000 fails
// a push record rejected_retryable and a request 500.

// RecordRetryable reports whether a pushed record whose statement failed
// with code may succeed when the device sends it again unchanged: class
// 08 (connection exception), 40 (transaction rollback), 53 (insufficient
// resources), 55 (object not in prerequisite state), 57 (operator
// intervention), 58 (system error) or XX (internal error).
func RecordRetryable(code string) bool {
	switch Class(code) {
	case ClassConnectionException, ClassTransactionRollback, ClassInsufficientResources,
		ClassObjectNotInPrerequisiteState, ClassOperatorIntervention, ClassSystemError, ClassInternalError:
		return true
	}
	return false
}

// Transient reports whether a request that failed with code is expected
// to pass when retried a little later: class 08 (connection exception) or
// 53 (insufficient resources), or code 40001 (serialization failure),
// 40P01 (deadlock), 55P03 (lock not available, also lock_timeout), 57014
// (query canceled, statement_timeout), 57P01, 57P02 or 57P03
// (administrator or crash shutdown, cannot connect now).
func Transient(code string) bool {
	switch Class(code) {
	case ClassConnectionException, ClassInsufficientResources:
		return true
	}
	switch code {
	case SerializationFailure, DeadlockDetected, LockNotAvailable, QueryCanceled,
		AdminShutdown, CrashShutdown, CannotConnectNow:
		return true
	}
	return false
}
