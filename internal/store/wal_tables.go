package store

// This file holds the statements on synchro.wal_tables: the registered
// tables whose existing rows the consumer of a slot has recorded in
// bucket_edges.

// RecordedTables lists the tables recorded for a slot.
//
// $1 text slot -> text table
const RecordedTables = `SELECT table_name FROM synchro.wal_tables WHERE slot_name = $1`

// RecordTables records tables for a slot (again: the time of the record
// moves).
//
// $1 text slot, $2 text[] tables -> rows affected
const RecordTables = `
INSERT INTO synchro.wal_tables (slot_name, table_name) SELECT $1, unnest($2::text[])
ON CONFLICT (slot_name, table_name) DO UPDATE SET backfilled_at = now()`

// ForgetOtherTables deletes the tables recorded for a slot but those given
// (a new slot of the name records its tables afresh; a session forgets the
// tables it does not register, whose changes it skips).
//
// $1 text slot, $2 text[] tables kept -> rows affected
const ForgetOtherTables = `DELETE FROM synchro.wal_tables WHERE slot_name = $1 AND NOT table_name = ANY($2::text[])`
