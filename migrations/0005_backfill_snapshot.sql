-- 0005_backfill_snapshot.sql: where the record of a table added to a
-- streaming slot stands in the stream.
--
-- A table added to the publication of a slot that streams already (or
-- registered again after sessions that skipped it) has its rows recorded as
-- they are at that moment, while the slot's stream still holds changes of
-- the table from before it: changes of transactions the record already
-- shows, which must not be applied again on top of it (a change published
-- before the table left the publication would otherwise undo the later
-- ones the record shows), and changes of transactions it does not show,
-- which must. The record keeps the snapshot it read the rows in and the WAL
-- position then; capture skips the table's changes of transactions that
-- snapshot shows, until the stream passes that position, across restarts.
--
--   backfill_snapshot  pg_snapshot text (xmin:xmax:xip,...) the rows were
--                      read in; NULL when read in the slot's own snapshot
--   backfill_lsn       the WAL insert position once that snapshot was taken
--
-- Idempotent (IF NOT EXISTS).

ALTER TABLE synchro.wal_tables ADD COLUMN IF NOT EXISTS backfill_snapshot text NULL;
ALTER TABLE synchro.wal_tables ADD COLUMN IF NOT EXISTS backfill_lsn bigint NULL;

COMMENT ON COLUMN synchro.wal_tables.backfill_snapshot IS
    'The snapshot (pg_snapshot text) the rows were recorded in, when not the slot''s own: capture skips the changes of transactions it shows.';
COMMENT ON COLUMN synchro.wal_tables.backfill_lsn IS
    'The WAL position once backfill_snapshot was taken: no change after it is skipped.';
