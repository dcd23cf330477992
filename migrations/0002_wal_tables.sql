-- 0002_wal_tables.sql: the registered tables whose existing rows a
-- replication slot's consumer has recorded in bucket_edges.
--
-- A table registered after the slot was created is added to the
-- publication and its existing rows are recorded once; this table remembers
-- that it was done, so that an interrupted start does it again and a
-- completed one never does. Idempotent (IF NOT EXISTS).

CREATE TABLE IF NOT EXISTS synchro.wal_tables (
    slot_name     text        NOT NULL,
    table_name    text        NOT NULL,
    backfilled_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (slot_name, table_name)
);

COMMENT ON TABLE synchro.wal_tables IS
    'Registered tables whose existing rows the consumer of a slot has recorded in bucket_edges.';
