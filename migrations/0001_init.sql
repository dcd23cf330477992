-- 0001_init.sql: the tables synchro keeps for itself, all in schema synchro.
--
--   changelog        every captured change: one row per (bucket, record,
--                    operation), ordered by seq, the pull checkpoint space.
--   clients          one row per (user, device): subscriptions, progress,
--                    liveness and the checkpoint of an unfinished snapshot.
--   bucket_edges     the current bucket membership of every synced record.
--   wal_position     per replication slot, the LSN up to which the changelog
--                    is complete.
--   rule_failures    WAL events whose bucket resolution failed, kept with
--                    their payload so they can be replayed.
--   schema_manifest  history of the schema contract: hash -> version.
--   compaction       a single row: the retention boundary of the changelog.
--
-- Every statement is idempotent (IF NOT EXISTS, ON CONFLICT DO NOTHING), so
-- running the file again changes nothing. Migrate applies it once, inside its
-- transaction, and records it in synchro.schema_migrations.

CREATE SCHEMA IF NOT EXISTS synchro;

CREATE TABLE IF NOT EXISTS synchro.changelog (
    seq        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    bucket_id  text        NOT NULL,
    table_name text        NOT NULL,
    record_id  text        NOT NULL,
    operation  smallint    NOT NULL
        CONSTRAINT changelog_operation_check CHECK (operation IN (1, 2, 3)),
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Pull: the changes of the subscribed buckets after a checkpoint.
CREATE INDEX IF NOT EXISTS changelog_bucket_seq_idx
    ON synchro.changelog (bucket_id, seq);

-- Compaction of superseded rows: older rows of the same record and bucket.
CREATE INDEX IF NOT EXISTS changelog_record_idx
    ON synchro.changelog (table_name, record_id, bucket_id, seq);

COMMENT ON TABLE synchro.changelog IS
    'Captured changes, one row per bucket, record and operation (1 create, 2 update, 3 delete); seq is the pull checkpoint space.';

CREATE TABLE IF NOT EXISTS synchro.clients (
    id                    uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id               text        NOT NULL,
    client_id             text        NOT NULL,
    client_name           text        NULL,
    platform              text        NOT NULL DEFAULT '',
    app_version           text        NOT NULL DEFAULT '',
    bucket_subs           text[]      NOT NULL DEFAULT '{}',
    last_sync_at          timestamptz NULL,
    last_pull_at          timestamptz NULL,
    last_push_at          timestamptz NULL,
    last_pull_seq         bigint      NULL,
    is_active             boolean     NOT NULL DEFAULT true,
    snapshot_seq          bigint      NULL,
    snapshot_completed_at timestamptz NULL,
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT clients_user_client_key UNIQUE (user_id, client_id)
);

-- Compaction: the lowest checkpoint among active clients.
CREATE INDEX IF NOT EXISTS clients_active_pull_seq_idx
    ON synchro.clients (last_pull_seq) WHERE is_active;

COMMENT ON TABLE synchro.clients IS
    'One row per user and device: subscriptions, pull checkpoint, liveness; snapshot_seq holds the checkpoint of a snapshot in progress.';

CREATE TABLE IF NOT EXISTS synchro.bucket_edges (
    table_name text        NOT NULL,
    record_id  text        NOT NULL,
    bucket_id  text        NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (table_name, record_id, bucket_id)
);

-- Records of a bucket, e.g. when a subscription is added.
CREATE INDEX IF NOT EXISTS bucket_edges_bucket_idx
    ON synchro.bucket_edges (bucket_id, table_name, record_id);

COMMENT ON TABLE synchro.bucket_edges IS
    'Current bucket membership of every synced record, maintained by the WAL consumer.';

CREATE TABLE IF NOT EXISTS synchro.wal_position (
    slot_name     text        PRIMARY KEY,
    confirmed_lsn bigint      NOT NULL DEFAULT 0,
    updated_at    timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE synchro.wal_position IS
    'Per replication slot, the LSN up to which the changelog is complete; written in the same transaction as the changelog rows.';

CREATE TABLE IF NOT EXISTS synchro.rule_failures (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    table_name  text        NOT NULL,
    record_id   text        NOT NULL,
    operation   smallint    NOT NULL,
    error_text  text        NOT NULL,
    payload     jsonb       NULL,
    lsn         bigint      NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    replayed_at timestamptz NULL
);

CREATE INDEX IF NOT EXISTS rule_failures_created_at_idx
    ON synchro.rule_failures (created_at);

COMMENT ON TABLE synchro.rule_failures IS
    'WAL events whose bucket resolution failed, with their payload, kept for replay.';

CREATE TABLE IF NOT EXISTS synchro.schema_manifest (
    schema_version bigint      PRIMARY KEY,
    schema_hash    text        NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now()
);

-- Not unique: a schema can return to an earlier shape, which is recorded
-- under a new, higher version with the same hash.
CREATE INDEX IF NOT EXISTS schema_manifest_hash_idx
    ON synchro.schema_manifest (schema_hash);

COMMENT ON TABLE synchro.schema_manifest IS
    'History of the schema contract: each hash of the synced schema and the version it was given; versions only increase.';

CREATE TABLE IF NOT EXISTS synchro.compaction (
    singleton    boolean     PRIMARY KEY DEFAULT true
        CONSTRAINT compaction_singleton_check CHECK (singleton),
    boundary_seq bigint      NOT NULL DEFAULT 0,
    compacted_at timestamptz NULL
);

INSERT INTO synchro.compaction (singleton) VALUES (true)
    ON CONFLICT DO NOTHING;

COMMENT ON TABLE synchro.compaction IS
    'Single row: boundary_seq is the highest compacted changelog seq; a client whose checkpoint is below it must snapshot again.';
