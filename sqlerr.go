package synchro

import (
	"errors"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
)

// This file classifies database errors of one pushed record.

// classifyDBError turns the failure of one record's statement into the
// record's outcome. A PostgreSQL error decides only that record: bad values
// and constraint or row-level security refusals are terminal (the same push
// would fail again), contention and resource problems are retryable. Any
// other error (the connection is gone, the context is done) is returned as
// is: the push cannot continue.
func classifyDBError(err error, reason, doing string) (*recordFailure, error) {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return nil, err
	}
	f := &recordFailure{fromDatabase: true, code: pgErr.Code, constraint: pgErr.ConstraintName}
	class := pgErr.Code[:2]
	switch {
	case class == "22":
		f.status, f.reason, f.message = PushStatusRejectedTerminal, reasonInvalidData, strings.TrimSpace(pgErr.Message)
	case class == "23", class == "44", pgErr.Code == "42501", class == "P0":
		// Integrity constraints, WITH CHECK OPTION, row-level security and
		// privileges, and exceptions raised by the application's triggers.
		f.status, f.reason, f.message = PushStatusRejectedTerminal, reason, strings.TrimSpace(pgErr.Message)
	case class == "40", class == "53", class == "55", class == "57", class == "58", class == "08", class == "XX":
		f.status, f.reason = PushStatusRejectedRetryable, reason
		f.message = "temporary database failure while " + doing + "; retry later"
	case pgErr.Code == "25P02":
		// The transaction was already aborted: a bug in the engine, not the record.
		return nil, err
	default:
		f.status, f.reason, f.message = PushStatusRejectedTerminal, reason, strings.TrimSpace(pgErr.Message)
	}
	return f, nil
}

// sqlStateForeignKeyViolation is PostgreSQL's foreign_key_violation.
const sqlStateForeignKeyViolation = "23503"

// uniqueViolation reports that the failure was a unique_violation.
func (f *recordFailure) uniqueViolation() bool {
	return f.code == "23505"
}
