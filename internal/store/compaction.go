package store

// This file holds the statements on synchro.compaction, the single row
// whose boundary_seq is the highest compacted changelog seq: a client whose
// checkpoint is below it must snapshot again.

// boundarySeq reads the compaction boundary, 0 before the first compaction.
// It is the one read of the boundary: the statements that need it embed it
// (PullState, PullFullPage, PullCappedPage, BeginSnapshot, SafeSeq,
// ParentDeleted), each in the same snapshot as what it compares it with.
const boundarySeq = `coalesce((SELECT boundary_seq FROM synchro.compaction WHERE singleton), 0)`

// SafeSeq computes the highest changelog seq no client still needs (see
// synchro's Compactor.SafeSeq): among active clients the lowest of the
// checkpoints they last pulled from and of the checkpoints of their
// snapshots in progress, else the newest seq; never below the recorded
// boundary. It reads synchro.clients and synchro.changelog.
//
// no parameters -> bigint safe seq
const SafeSeq = `
SELECT greatest(
         least((SELECT min(acked_seq) FROM synchro.clients WHERE is_active AND acked_seq IS NOT NULL),
               (SELECT min(snapshot_seq) FROM synchro.clients WHERE is_active AND snapshot_subs IS NOT NULL),
               (SELECT coalesce(max(seq), 0) FROM synchro.changelog)),
         (SELECT ` + boundarySeq + `))`

// AdvanceBoundary records $1 as the boundary when it is above the recorded
// one (Compactor.Compact, given a boundary by its caller): the boundary
// never goes down.
//
// $1 bigint boundary -> rows affected
const AdvanceBoundary = `UPDATE synchro.compaction SET boundary_seq = $1, compacted_at = now() WHERE singleton AND boundary_seq < $1`

// RecordRunBoundary records the boundary a compaction run computed with
// SafeSeq, which is never below the recorded one, and the time of the run
// also when the boundary did not move.
//
// $1 bigint boundary -> rows affected
const RecordRunBoundary = `UPDATE synchro.compaction SET boundary_seq = $1, compacted_at = now() WHERE singleton AND boundary_seq <= $1`

// RaiseBoundaryPastMarker writes a marker row into the changelog, in a
// bucket no client follows, and raises the boundary to its seq: every
// checkpoint handed out so far is then below the boundary, and a snapshot
// taken from now on records at least it, so no client loops. The wal
// consumer runs it when it recreates a lost slot.
//
// $1 text marker bucket -> rows affected
const RaiseBoundaryPastMarker = `
WITH marker AS (
	INSERT INTO synchro.changelog (bucket_id, table_name, record_id, operation)
	VALUES ($1, '', '', 3) RETURNING seq
)
UPDATE synchro.compaction SET boundary_seq = GREATEST(boundary_seq, (SELECT seq FROM marker)), compacted_at = now()`
