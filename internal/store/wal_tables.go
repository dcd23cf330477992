package store

// This file holds the statements on synchro.wal_tables: the registered
// tables whose existing rows the consumer of a slot has recorded in
// bucket_edges.

// RecordedTables lists the tables recorded for a slot, each with the
// snapshot its rows were recorded in and the WAL position then (NULL when
// recorded in the slot's own snapshot).
//
// $1 text slot -> text table, text snapshot, bigint position
const RecordedTables = `SELECT table_name, backfill_snapshot, backfill_lsn FROM synchro.wal_tables WHERE slot_name = $1`

// RecordTables records tables for a slot (again: the time of the record
// moves), with the snapshot their rows were recorded in and the WAL
// position then (NULL, NULL: the slot's own).
//
// $1 text slot, $2 text[] tables, $3 text snapshot, $4 bigint position ->
// rows affected
const RecordTables = `
INSERT INTO synchro.wal_tables (slot_name, table_name, backfill_snapshot, backfill_lsn)
SELECT $1, unnest($2::text[]), $3::text, $4::bigint
ON CONFLICT (slot_name, table_name) DO UPDATE
   SET backfilled_at = now(), backfill_snapshot = excluded.backfill_snapshot, backfill_lsn = excluded.backfill_lsn`

// ForgetOtherTables deletes the tables recorded for a slot but those given
// (a new slot of the name records its tables afresh; a session forgets the
// tables it does not register, whose changes it skips).
//
// $1 text slot, $2 text[] tables kept -> rows affected
const ForgetOtherTables = `DELETE FROM synchro.wal_tables WHERE slot_name = $1 AND NOT table_name = ANY($2::text[])`

// OtherSlotsOfTables lists the other replication slots of the server that
// recorded some of the tables, with those tables (", "-separated). It
// reads pg_replication_slots too.
//
// $1 text slot, $2 text[] tables -> text slot, text tables
const OtherSlotsOfTables = `
SELECT w.slot_name, string_agg(w.table_name, ', ' ORDER BY w.table_name)
  FROM synchro.wal_tables w
 WHERE w.slot_name <> $1 AND w.table_name = ANY($2::text[])
   AND EXISTS (SELECT 1 FROM pg_replication_slots s WHERE s.slot_name = w.slot_name)
 GROUP BY w.slot_name
 ORDER BY w.slot_name`
