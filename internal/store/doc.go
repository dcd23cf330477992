// Package store holds the library's own fixed SQL: the statements on the
// tables of schema synchro that package migrations creates, one file per
// table. A statement sits with the table it writes, or, when it only reads,
// with the table whose rows it returns; a statement that reads another
// table too says so.
//
// Each statement is a named constant, or a small function where a type
// name must be spliced in, documented with its contract on one line:
//
//	$1 uuid client row id, $2 bigint checkpoint -> snapshot_seq
//
// the parameters in order with their SQL types, then what a row it returns
// holds ("-> rows affected" for a statement that returns none). A comment
// that explains why a statement is written as it is (its plan, its
// locking) stays next to it.
//
// Both package synchro and package wal use these statements: both write
// synchro.changelog, bucket_edges and compaction. SQL built from the
// application's identifiers (the statements of a registered table, cached
// on synchro's tableInfo, and wal's per-table reads) is not here: it is
// built where its table is known.
//
// TestStatementsPrepare prepares every statement against a migrated
// database, so that a renamed column fails one fast test.
package store
