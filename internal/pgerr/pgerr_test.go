package pgerr

import (
	"errors"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

func TestCode(t *testing.T) {
	t.Parallel()
	pgErr := &pgconn.PgError{Code: UniqueViolation}
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"nil", nil, ""},
		{"not PostgreSQL's", errors.New("boom"), ""},
		{"PostgreSQL's", pgErr, UniqueViolation},
		{"wrapped", fmt.Errorf("writing: %w", pgErr), UniqueViolation},
		{"joined with another", errors.Join(errors.New("net"), pgErr), UniqueViolation},
		{"the first in the chain", fmt.Errorf("%w: %w", &pgconn.PgError{Code: ObjectInUse}, pgErr), ObjectInUse},
	}
	for _, tt := range tests {
		if got := Code(tt.err); got != tt.want {
			t.Errorf("%s: Code(%v) = %q, want %q", tt.name, tt.err, got, tt.want)
		}
	}
}

func TestClass(t *testing.T) {
	t.Parallel()
	for code, want := range map[string]string{"": "", "2": "", "22": "22", "22021": "22", "XX000": "XX"} {
		if got := Class(code); got != want {
			t.Errorf("Class(%q) = %q, want %q", code, got, want)
		}
	}
}

// TestPolicies lists, side by side, how a push record (RecordRetryable)
// and a request (Transient) treat a code of every class either policy
// names, and a few of the others.
func TestPolicies(t *testing.T) {
	t.Parallel()
	tests := []struct {
		code                       string
		recordRetryable, transient bool
	}{
		// Both: failures known to pass by themselves.
		{"08000", true, true}, // connection_exception
		{"08006", true, true}, // connection_failure
		{SerializationFailure, true, true},
		{DeadlockDetected, true, true},
		{"53100", true, true}, // disk_full
		{"53200", true, true}, // out_of_memory
		{"53300", true, true}, // too_many_connections
		{LockNotAvailable, true, true},
		{QueryCanceled, true, true},
		{AdminShutdown, true, true},
		{CrashShutdown, true, true},
		{CannotConnectNow, true, true},
		// A record only: the server's fault, not the record's; a request
		// failing so is a 500 an operator must see.
		{"40000", true, false}, // transaction_rollback
		{"40002", true, false}, // transaction_integrity_constraint_violation
		{"40003", true, false}, // statement_completion_unknown
		{"55000", true, false}, // object_not_in_prerequisite_state
		{ObjectInUse, true, false},
		{"55P02", true, false}, // cant_change_runtime_param
		{"55P04", true, false}, // unsafe_new_enum_value_usage
		{"57000", true, false}, // operator_intervention
		{"57P04", true, false}, // database_dropped
		{"57P05", true, false}, // idle_session_timeout
		{"58000", true, false}, // system_error
		{"58030", true, false}, // io_error
		{"XX000", true, false}, // internal_error
		{"XX001", true, false}, // data_corrupted
		{"XX002", true, false}, // index_corrupted
		// Neither.
		{CharacterNotInRepertoire, false, false},
		{"22P02", false, false}, // invalid_text_representation
		{UniqueViolation, false, false},
		{ForeignKeyViolation, false, false},
		{"44000", false, false}, // with_check_option_violation
		{InsufficientPrivilege, false, false},
		{"42601", false, false}, // syntax_error
		{InFailedSQLTransaction, false, false},
		{"28P01", false, false}, // invalid_password
		{"P0001", false, false}, // raise_exception
		{"", false, false},
	}
	for _, tt := range tests {
		if got := RecordRetryable(tt.code); got != tt.recordRetryable {
			t.Errorf("RecordRetryable(%q) = %v, want %v", tt.code, got, tt.recordRetryable)
		}
		if got := Transient(tt.code); got != tt.transient {
			t.Errorf("Transient(%q) = %v, want %v", tt.code, got, tt.transient)
		}
		if Transient(tt.code) && !RecordRetryable(tt.code) {
			t.Errorf("%q is Transient but not RecordRetryable: a request would be retried where its record is given up", tt.code)
		}
	}
}
