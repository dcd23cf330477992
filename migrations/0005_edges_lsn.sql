-- 0005_edges_lsn.sql: up to where in the WAL a slot's inserted records may
-- find bucket edges already stored.
--
-- The wal consumer writes a record's edges in WAL order, so a record that
-- a transaction inserts has none stored when its batch reads them: the
-- record did not exist before, and the delete that ended an earlier record
-- of the same key removed its edges. The batch skips that read (for tables
-- without a parent: a parent's move gives its buckets to the children in
-- the table as it is now). Two writers of edges do not follow WAL order: a
-- replay of rule failures and the backfill of a table, which record the
-- buckets of the rows as they are now. Rows they read may be inserted by
-- transactions the consumer has not yet written, which would then find
-- edges stored.
--
--   edges_lsn  the WAL insert position (bytes since 0/0) after the last
--              such write (each raises it for every slot): an insert
--              committed at or before it has its stored edges read; one
--              committed after it has none. 0 when there has been none.
--
-- Rows that exist when this migration runs get the current position:
-- writes before it happened before it. Idempotent (IF NOT EXISTS; the
-- update only raises the value).

ALTER TABLE synchro.wal_position ADD COLUMN IF NOT EXISTS edges_lsn bigint NOT NULL DEFAULT 0;

UPDATE synchro.wal_position
   SET edges_lsn = greatest(edges_lsn, (pg_current_wal_insert_lsn() - '0/0'::pg_lsn)::bigint);

COMMENT ON COLUMN synchro.wal_position.edges_lsn IS
    'WAL insert position after the last write of bucket edges out of WAL order (rule-failure replay, backfill); inserts committed after it have no stored edges.';
