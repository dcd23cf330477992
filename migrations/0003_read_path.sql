-- 0003_read_path.sql: what pull and snapshot record on the client row.
--
--   acked_seq      the checkpoint the client last sent to pull: it holds
--                  every change up to it. Compaction keeps what the slowest
--                  active client has not acknowledged (last_pull_seq is
--                  what was delivered, which a lost response may not have
--                  reached).
--   snapshot_subs  the buckets of the snapshot in progress, NULL when none
--                  is (snapshot_seq holds the checkpoint of the client's
--                  latest snapshot); they become bucket_subs when the last
--                  page is served.
--
-- Idempotent (IF NOT EXISTS).

ALTER TABLE synchro.clients ADD COLUMN IF NOT EXISTS acked_seq bigint NULL;
ALTER TABLE synchro.clients ADD COLUMN IF NOT EXISTS snapshot_subs text[] NULL;

COMMENT ON COLUMN synchro.clients.acked_seq IS
    'The checkpoint the client last pulled from: it holds every change up to it.';
COMMENT ON COLUMN synchro.clients.snapshot_subs IS
    'The buckets of the snapshot in progress; they become bucket_subs with its last page.';

-- Pull reads the changelog of each subscribed bucket through
-- (bucket_id, seq). With few distinct buckets in the statistics (a new or
-- small deployment, or one large tenant) the planner would rather walk the
-- primary key and filter, which reads every row after the checkpoint for a
-- bucket that has none. Buckets are many by design: say so.
ALTER TABLE synchro.changelog ALTER COLUMN bucket_id SET (n_distinct = -0.01);
