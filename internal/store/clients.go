package store

// This file holds the statements on synchro.clients: one row per user and
// device, with its subscriptions, its checkpoints and its liveness.

// ClientColumns is the select list of a client row, in the order synchro's
// scanClient reads it: the row id as text, the identity and descriptive
// fields, the subscriptions as JSON text, the times and checkpoints of its
// pulls and pushes, its liveness, and its snapshot state (the snapshot
// subscriptions as JSON text too). Statements that read a client return
// these columns first.
const ClientColumns = `id::text, user_id, client_id, client_name, platform, app_version, to_json(bucket_subs)::text,
	last_sync_at, last_pull_at, last_push_at, last_pull_seq, is_active, created_at, updated_at,
	snapshot_seq, snapshot_completed_at, to_json(snapshot_subs)::text, acked_seq`

// UpsertClient inserts a client or updates its descriptive fields, keeping
// its checkpoints and subscriptions, and marks it active.
//
// $1 text user id, $2 text client id, $3 text name, $4 text platform,
// $5 text app version, $6 $7 text the buckets of a new client -> ClientColumns
const UpsertClient = `
INSERT INTO synchro.clients AS c (user_id, client_id, client_name, platform, app_version, bucket_subs)
VALUES ($1, $2, $3, $4, $5, ARRAY[$6::text, $7::text])
ON CONFLICT (user_id, client_id) DO UPDATE
   SET client_name = EXCLUDED.client_name,
       platform    = EXCLUDED.platform,
       app_version = EXCLUDED.app_version,
       is_active   = true,
       updated_at  = now()
RETURNING ` + ClientColumns

// LoadClient reads a client.
//
// $1 text user id, $2 text client id -> ClientColumns
const LoadClient = `SELECT ` + ClientColumns + ` FROM synchro.clients WHERE user_id = $1 AND client_id = $2`

// LockClientForPush reads a client inside a push's transaction, locking its
// row, with the records waiting for their parent and the database's clock.
// The push's conflicts carry rows read as text: bytea in hex (synchro's
// hexBytes, the same set_config) is set here for the rest of the
// transaction.
//
// $1 text user id, $2 text client id -> ClientColumns, parent_waits as
// text, timestamptz now, the set_config result
const LockClientForPush = `SELECT ` + ClientColumns + `, parent_waits::text, now(), set_config('bytea_output', 'hex', true) FROM synchro.clients WHERE user_id = $1 AND client_id = $2 FOR UPDATE`

// TouchClientPush records a push on the client row.
//
// $1 uuid client row id -> rows affected
const TouchClientPush = `UPDATE synchro.clients SET last_push_at = now(), last_sync_at = now() WHERE id = $1::uuid`

// RecordParentWaits records the records of a client's push that wait for
// their parent.
//
// $1 uuid client row id, $2 jsonb the waits -> rows affected
const RecordParentWaits = `UPDATE synchro.clients SET parent_waits = $2::jsonb WHERE id = $1::uuid`

// PullState reads, in one statement (one snapshot), a client, the
// compaction boundary, and whether the changelog holds anything after the
// checkpoint in the subscribed buckets or the client's private bucket. It
// reads synchro.compaction and synchro.changelog too.
//
// $1 text user id, $2 text client id, $3 text[] subscriptions, $4 bigint
// checkpoint, $5 text prefix of the client's private bucket ->
// ClientColumns, bigint boundary, boolean pending
const PullState = `
SELECT ` + ClientColumns + `,
       ` + boundarySeq + `,
       EXISTS (SELECT 1 FROM unnest($3::text[] || ($5 || c.id::text)) AS b(id)
                WHERE EXISTS (SELECT 1 FROM synchro.changelog AS l WHERE l.bucket_id = b.id AND l.seq > $4))
  FROM synchro.clients AS c WHERE c.user_id = $1 AND c.client_id = $2`

// RecordPull records a pull's outcome: the checkpoint delivered, the one
// the client acknowledged by sending it, the time, and that the client is
// active.
//
// $1 uuid client row id, $2 bigint delivered, $3 bigint acknowledged -> rows affected
const RecordPull = `
UPDATE synchro.clients
   SET last_pull_seq = $2, acked_seq = $3, last_pull_at = now(), last_sync_at = now(), is_active = true
 WHERE id = $1::uuid`

// BeginSnapshot records the checkpoint of a new snapshot, with its buckets,
// on the client row and reactivates the client: the highest seq written
// (every change up to it is in the changelog, since seqs are assigned in
// commit order), or the compaction boundary when that is higher. It reads
// synchro.changelog and synchro.compaction too. A client's snapshots must
// not share a checkpoint, so it returns no row when that checkpoint is not
// above the client's previous one; BeginSnapshotNewSeq then draws one.
//
// $1 uuid client row id, $2 text[] buckets -> bigint snapshot_seq
const BeginSnapshot = `
WITH cap AS (SELECT greatest((SELECT coalesce(max(seq), 0) FROM synchro.changelog),
                             (SELECT ` + boundarySeq + `)) AS s)
UPDATE synchro.clients AS c
   SET snapshot_seq = cap.s, snapshot_subs = $2, is_active = true, last_sync_at = now(), updated_at = now()
  FROM cap
 WHERE c.id = $1::uuid AND (c.snapshot_seq IS NULL OR c.snapshot_seq < cap.s)
RETURNING c.snapshot_seq`

// BeginSnapshotNewSeq is BeginSnapshot with a new number drawn from the
// changelog's sequence as the checkpoint. The caller holds
// LockChangelogWrites, so no transaction can be writing the changelog:
// every number below it belongs to a committed row or to none.
//
// $1 uuid client row id, $2 text[] buckets -> bigint snapshot_seq
const BeginSnapshotNewSeq = `
UPDATE synchro.clients
   SET snapshot_seq = nextval(pg_get_serial_sequence('synchro.changelog', 'seq')),
       snapshot_subs = $2, is_active = true, last_sync_at = now(), updated_at = now()
 WHERE id = $1::uuid
RETURNING snapshot_seq`

// FinishSnapshot records a completed snapshot: its checkpoint becomes the
// client's, its buckets the client's subscriptions. No row is updated when
// another snapshot of the client started meanwhile.
//
// $1 uuid client row id, $2 bigint checkpoint -> rows affected
const FinishSnapshot = `
UPDATE synchro.clients
   SET bucket_subs = coalesce(snapshot_subs, bucket_subs), snapshot_subs = NULL,
       last_pull_seq = $2, acked_seq = $2, snapshot_completed_at = now(),
       last_pull_at = now(), last_sync_at = now(), is_active = true, updated_at = now()
 WHERE id = $1::uuid AND snapshot_seq = $2`

// LockClientSubscriptions reads a client's recorded subscriptions, locking
// its row, to change them.
//
// $1 uuid client row id -> text the subscriptions as JSON
const LockClientSubscriptions = `SELECT to_json(bucket_subs)::text FROM synchro.clients WHERE id = $1::uuid FOR UPDATE`

// RecordSubscriptions records a client's subscriptions.
//
// $1 uuid client row id, $2 text[] subscriptions -> rows affected
const RecordSubscriptions = `UPDATE synchro.clients SET bucket_subs = $2, updated_at = now() WHERE id = $1::uuid`

// DeactivateStaleClients marks inactive the active clients that synced
// once, but not within the age $1.
//
// $1 bigint age in microseconds -> rows affected
const DeactivateStaleClients = `
UPDATE synchro.clients SET is_active = false, updated_at = now()
 WHERE is_active AND last_sync_at IS NOT NULL AND last_sync_at < ` + OlderThan
