// Package locks lists every PostgreSQL advisory lock the library takes: its
// key, who takes it, in what mode and for how long. Keep new locks here, so
// that the lock space is read in one place and no two uses share a key.
//
// The single-key locks (bigint) and the two-key locks (int, int) are
// separate spaces in PostgreSQL (pg_locks.objsubid 1 and 2), so a two-key
// lock never conflicts with a single-key one. Each key is ASCII text read
// as a big-endian integer, which makes it recognisable in pg_locks
// (classid holds the high 32 bits, objid the low ones).
package locks

// Single-key locks (pg_advisory_*(bigint)).
const (
	// Snapshot is taken by Engine.Snapshot, shared, for the transaction
	// in which a snapshot captures its checkpoint, and by compaction,
	// exclusive, for the transaction in which it fixes its boundary: a
	// snapshot's checkpoint is recorded for its client before compaction
	// can pass it. "syncsnap".
	Snapshot int64 = 0x73796e63736e6170
	// Manifest is taken exclusive, for a transaction, while a new schema
	// version is assigned (only when the schema hash changes, never per
	// request). "synchrom".
	Manifest int64 = 0x73796e6368726f6d
	// CompactionRun is tried (pg_try_advisory_lock, session or
	// transaction level depending on the handle compaction is given) for
	// the whole of a compaction run: one run at a time across processes;
	// a run that does not get it is skipped. "synccmpt".
	CompactionRun int64 = 0x73796e63636d7074
	// Migrations is migrations.LockKey, taken exclusive for the
	// transaction of migrations.Migrate. "synchro" (seven bytes).
	Migrations int64 = 0x73796e6368726f
)

// Two-key locks (pg_advisory_*(int, int)): the second key is
// hashtext(slot name).
const (
	// Apply is taken exclusive by the wal consumer for each transaction
	// that writes a batch of the changelog of a slot, by a rule-failure
	// replay and by a backfill, so that they never interleave their edge
	// updates, and by a session reading (and forgetting) the tables its
	// slot recorded, after a backfill in progress. "sync".
	Apply int32 = 0x73796e63
	// SlotSetup is a session lock a consumer holds while it checks,
	// creates or recreates its slot, so that two consumers starting
	// together do not both create (or drop) it. "synd".
	SlotSetup int32 = 0x73796e64
)
