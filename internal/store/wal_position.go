package store

// This file holds the statements on synchro.wal_position: per replication
// slot, the position up to which the changelog is complete, written in the
// same transaction as the changelog rows.

// SlotPosition reads the recorded position of a slot; no row when none is
// recorded.
//
// $1 text slot -> bigint confirmed_lsn
const SlotPosition = `SELECT confirmed_lsn FROM synchro.wal_position WHERE slot_name = $1`

// RecordPosition records the position of a slot.
//
// $1 text slot, $2 bigint position -> rows affected
const RecordPosition = `
INSERT INTO synchro.wal_position (slot_name, confirmed_lsn, updated_at) VALUES ($1, $2, now())
ON CONFLICT (slot_name) DO UPDATE SET confirmed_lsn = EXCLUDED.confirmed_lsn, updated_at = now()`

// CaptureStatus reads the slots of change capture for synchro's
// Engine.CaptureStatus: the slot $1, or, when $1 is empty, every slot with
// a recorded position ($2 when none has). One row per slot, and always at
// least one, with the server's WAL position and clock and the time of the
// newest changelog row; LSNs come as bigint (bytes since 0/0). It reads
// pg_replication_slots and synchro.changelog too.
//
// $1 text slot or empty, $2 text default slot -> bigint server lsn,
// timestamptz server time, timestamptz newest changelog row, text slot,
// boolean exists, text plugin, text slot type, boolean same database,
// boolean active, int active pid, bigint confirmed lsn, bigint restart lsn,
// text wal_status, bigint recorded lsn, timestamptz recorded at
const CaptureStatus = `
WITH wanted AS (
    SELECT slot_name FROM synchro.wal_position WHERE $1::text = ''
    UNION
    SELECT CASE WHEN $1::text = '' THEN $2::text ELSE $1::text END
     WHERE $1::text <> '' OR NOT EXISTS (SELECT 1 FROM synchro.wal_position)
), server AS (
    SELECT CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END AS lsn,
           now() AS now
)
SELECT (v.lsn - '0/0'::pg_lsn)::bigint, v.now,
       (SELECT c.created_at FROM synchro.changelog c ORDER BY c.seq DESC LIMIT 1),
       w.slot_name, s.slot_name IS NOT NULL, s.plugin, s.slot_type, s.database = current_database(),
       coalesce(s.active, false), s.active_pid,
       (s.confirmed_flush_lsn - '0/0'::pg_lsn)::bigint, (s.restart_lsn - '0/0'::pg_lsn)::bigint, s.wal_status,
       p.confirmed_lsn, p.updated_at
  FROM wanted w
 CROSS JOIN server v
  LEFT JOIN pg_replication_slots s ON s.slot_name = w.slot_name
  LEFT JOIN synchro.wal_position p ON p.slot_name = w.slot_name
 ORDER BY w.slot_name`
