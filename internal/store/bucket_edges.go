package store

// This file holds the statements on synchro.bucket_edges: the buckets each
// synced record is in now, written by the wal consumer in the same
// transaction as the changelog rows of the change. The reads of the edges
// that name a registered table (synchro's snapshot and pull statements,
// and compaction's pruning of the edges of deleted rows) are built with
// that table's statements.

// LoadEdges reads the stored buckets of records.
//
// Plan: each record is looked up on its own by the primary key of
// bucket_edges: the lateral subquery, which OFFSET 0 keeps from being
// flattened into a join, makes the plan a nested loop over the keys, so
// the cost follows the number of records asked for, never the size of the
// table, whatever the planner's statistics say. A plain join of the
// unnested keys against the table was planned, with statistics missing or
// stale, as a sequential scan and a sort of all of bucket_edges in every
// batch (with 83,000 edges: a 2.8 MB external sort for a batch of 5,600
// new rows; it grows with the table).
//
// $1 text[] tables, $2 text[] record ids -> text table, text record id,
// text bucket
const LoadEdges = `
SELECT k.t, k.r, e.bucket_id
  FROM unnest($1::text[], $2::text[]) AS k(t, r)
 CROSS JOIN LATERAL (
       SELECT e.bucket_id FROM synchro.bucket_edges e
        WHERE e.table_name = k.t AND e.record_id = k.r
       OFFSET 0) AS e`

// DeleteEdges deletes edges. Each is found by the primary key (a lateral
// subquery that LIMIT keeps from being flattened, as in LoadEdges) and
// deleted by its tuple id, so the statement never scans the table.
//
// $1 text[] tables, $2 text[] record ids, $3 text[] buckets -> rows affected
const DeleteEdges = `
DELETE FROM synchro.bucket_edges
 WHERE ctid = ANY (ARRAY(
       SELECT e.ctid
         FROM unnest($1::text[], $2::text[], $3::text[]) AS d(t, r, b)
        CROSS JOIN LATERAL (
              SELECT e.ctid FROM synchro.bucket_edges e
               WHERE e.table_name = d.t AND e.record_id = d.r AND e.bucket_id = d.b
               LIMIT 1) AS e))`

// InsertEdges inserts edges that are not stored; one already stored fails
// it with a unique violation. It costs about 40% less than
// InsertMissingEdges, which checks every edge before inserting it.
//
// $1 text[] tables, $2 text[] record ids, $3 text[] buckets -> rows affected
const InsertEdges = `
INSERT INTO synchro.bucket_edges (table_name, record_id, bucket_id)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[])`

// EdgesCopyColumns are the columns of a COPY into synchro.bucket_edges
// writing what InsertEdges writes, in the order of its parameters (and
// failing as it does on an edge already stored).
var EdgesCopyColumns = []string{"table_name", "record_id", "bucket_id"}

// InsertMissingEdges is InsertEdges leaving the edges already stored as
// they are.
//
// $1 text[] tables, $2 text[] record ids, $3 text[] buckets -> rows affected
const InsertMissingEdges = InsertEdges + ` ON CONFLICT DO NOTHING`

// TableRecords lists the records of a table that are in some bucket (a
// truncated table's records, each to be deleted from its buckets).
//
// $1 text table -> text record id
const TableRecords = `SELECT record_id FROM synchro.bucket_edges WHERE table_name = $1 GROUP BY record_id`

// ClearTableEdges deletes every edge of the tables (before their rows'
// buckets are recorded again).
//
// $1 text[] tables -> rows affected
const ClearTableEdges = `DELETE FROM synchro.bucket_edges WHERE table_name = ANY($1::text[])`

// TakeTableEdges is ClearTableEdges returning the edges it deleted: what
// the clients following their buckets were told last, which a backfill of
// tables whose changes were not captured for a while compares the rows as
// they are now with.
//
// $1 text[] tables -> text table, text record id, text bucket
const TakeTableEdges = ClearTableEdges + ` RETURNING table_name, record_id, bucket_id`
