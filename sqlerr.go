package synchro

import (
	"errors"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/synchrosync/synchro/internal/pgerr"
)

// This file classifies database errors of one pushed record.

// classifyDBError turns the failure of one record's statement into the
// record's outcome. A PostgreSQL error decides only that record: bad values
// and constraint or row-level security refusals are terminal (the same push
// would fail again), failures of the server's making are retryable
// (pgerr.RecordRetryable, which says why it differs from the HTTP
// handler's pgerr.Transient). Any other error (the connection is gone, the
// context is done) is returned as is: the push cannot continue.
func classifyDBError(err error, reason, doing string) (*recordFailure, error) {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return nil, err
	}
	code := pgErr.Code
	f := &recordFailure{fromDatabase: true, code: code, constraint: pgErr.ConstraintName}
	switch class := pgerr.Class(code); {
	case class == pgerr.ClassDataException:
		f.status, f.reason, f.message = PushStatusRejectedTerminal, reasonInvalidData, strings.TrimSpace(pgErr.Message)
	case class == pgerr.ClassIntegrityConstraintViolation, class == pgerr.ClassWithCheckOptionViolation,
		code == pgerr.InsufficientPrivilege, class == pgerr.ClassPLpgSQLError:
		// Integrity constraints, WITH CHECK OPTION, row-level security and
		// privileges, and exceptions raised by the application's triggers.
		f.status, f.reason, f.message = PushStatusRejectedTerminal, reason, strings.TrimSpace(pgErr.Message)
	case pgerr.RecordRetryable(code):
		f.status, f.reason = PushStatusRejectedRetryable, reason
		f.message = "temporary database failure while " + doing + "; retry later"
	case code == pgerr.InFailedSQLTransaction:
		// The transaction was already aborted: a bug in the engine, not the record.
		return nil, err
	default:
		f.status, f.reason, f.message = PushStatusRejectedTerminal, reason, strings.TrimSpace(pgErr.Message)
	}
	return f, nil
}

// uniqueViolation reports that the failure was a unique_violation.
func (f *recordFailure) uniqueViolation() bool {
	return f.code == pgerr.UniqueViolation
}
