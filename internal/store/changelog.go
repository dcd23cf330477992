package store

import (
	"fmt"
	"strings"
)

// This file holds the statements on synchro.changelog: the captured
// changes, one row per bucket, record and operation (1 create, 2 update,
// 3 delete), whose seq is the pull checkpoint space.

// NewestSeq reads the newest changelog seq, 0 when the changelog is empty.
//
// no parameters -> bigint seq
const NewestSeq = `SELECT coalesce(max(seq), 0) FROM synchro.changelog`

// LockChangelogWrites is taken by a transaction that writes changelog rows
// besides the WAL consumer. It conflicts with the consumer's inserts (ROW
// EXCLUSIVE), so it waits for the consumer's open transaction and keeps the
// next one out until commit: sequence numbers then stay in commit order, and
// a pull that has seen a row has seen every row below it. (LOCK cannot be
// prepared: TestStatementsPrepare runs it in a transaction it rolls back.)
//
// no parameters, inside a transaction
const LockChangelogWrites = `LOCK TABLE synchro.changelog IN SHARE ROW EXCLUSIVE MODE`

// InsertChangelogRows writes changelog rows, in the order of the arrays
// (the seqs follow it).
//
// $1 text[] buckets, $2 text[] tables, $3 text[] record ids, $4 smallint[]
// operations -> rows affected
const InsertChangelogRows = `
INSERT INTO synchro.changelog (bucket_id, table_name, record_id, operation)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::smallint[])`

// CreateBackfillStash creates, for the changelog transaction of a record
// of existing rows, the temporary table its parts' changelog rows wait in
// (StashChangelogRows) until its end (WriteStashedRows): written into
// synchro.changelog part by part, they would hold that table's
// ROW EXCLUSIVE lock from the first part on, and with it every
// LockChangelogWrites (a snapshot start, a resubscription) for the rest of
// the read.
//
// no parameters, inside a transaction
const CreateBackfillStash = `CREATE TEMPORARY TABLE synchro_backfill_stash (
	ord        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	bucket_id  text     NOT NULL,
	table_name text     NOT NULL,
	record_id  text     NOT NULL,
	operation  smallint NOT NULL
) ON COMMIT DROP`

// StashChangelogRows is InsertChangelogRows into the transaction's
// temporary table of CreateBackfillStash.
//
// $1 text[] buckets, $2 text[] tables, $3 text[] record ids, $4 smallint[]
// operations -> rows affected
const StashChangelogRows = `
INSERT INTO pg_temp.synchro_backfill_stash (bucket_id, table_name, record_id, operation)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::smallint[])`

// WriteStashedRows writes the rows $1 to $2 (in the order they were
// stashed, from 1) of the temporary table of CreateBackfillStash into
// synchro.changelog, in that order (the seqs follow it). The caller writes
// them a range at a time, each read by the table's key: one sort or
// buffer of every stashed row would spill to temporary files the size of
// the record, which temp_file_limit may refuse (found by review).
//
// $1 bigint first, $2 bigint last -> rows affected
const WriteStashedRows = `
INSERT INTO synchro.changelog (bucket_id, table_name, record_id, operation)
SELECT bucket_id, table_name, record_id, operation FROM pg_temp.synchro_backfill_stash
 WHERE ord BETWEEN $1 AND $2 ORDER BY ord`

// DropBackfillStash drops the temporary table of CreateBackfillStash, if
// this transaction made one.
//
// no parameters
const DropBackfillStash = `DROP TABLE IF EXISTS pg_temp.synchro_backfill_stash`

// StashEnd reads the last key of the temporary table of
// CreateBackfillStash (identity values may skip some).
//
// no parameters -> bigint
const StashEnd = `SELECT coalesce(max(ord), 0) FROM pg_temp.synchro_backfill_stash`

// CanStash reads whether the current role may create the temporary table
// of CreateBackfillStash (the TEMPORARY privilege on the database, which
// may be revoked from PUBLIC).
//
// no parameters -> boolean
const CanStash = `SELECT has_database_privilege(current_database(), 'TEMPORARY')`

// ChangelogCopyColumns are the columns of a COPY into synchro.changelog
// writing what InsertChangelogRows writes, in the order of its parameters;
// the seqs follow the order of the rows. Change capture writes its rows so
// on pgx's connections (wal/bulk.go).
var ChangelogCopyColumns = []string{"bucket_id", "table_name", "record_id", "operation"}

// NotifyChanges sends, in the changelog transaction, the notes announcing
// its buckets (package changenote) on channel $1, unless PostgreSQL's
// notification queue is more than 90% full: a NOTIFY into a full queue
// fails, and would fail the changelog write with it.
//
// $1 text channel, $2 text[] payloads
const NotifyChanges = `SELECT pg_notify($1, p) FROM unnest($2::text[]) AS p WHERE pg_notification_queue_usage() < 0.9`

// Unsubscribe writes into the client's private bucket $1 a delete for
// every record held through the buckets $2 it lost (recorded there now, or
// changed there after its checkpoint $3) that is in none of the buckets $4
// it keeps, parents last ($5 the tables in dependency order). It reads
// synchro.bucket_edges.
//
// Plan: the records of the lost buckets are read through (bucket_id, ...)
// indexes, each once; whether a record is in a kept bucket is probed per
// record by its key (the OFFSET 0 keeps the NOT EXISTS a subquery of its
// own): flattened into an anti join, PostgreSQL without statistics could
// read every edge of the kept buckets for every record lost, quadratic in
// the user's rows.
//
// $1 text private bucket, $2 text[] lost buckets, $3 bigint checkpoint,
// $4 text[] kept buckets, $5 text[] tables in dependency order -> rows affected
const Unsubscribe = `
INSERT INTO synchro.changelog (bucket_id, table_name, record_id, operation)
SELECT $1, x.table_name, x.record_id, 3
  FROM (SELECT table_name, record_id FROM synchro.bucket_edges WHERE bucket_id = ANY($2::text[])
        UNION
        SELECT table_name, record_id FROM synchro.changelog WHERE bucket_id = ANY($2::text[]) AND seq > $3) AS x
 WHERE NOT EXISTS (SELECT 1 FROM synchro.bucket_edges e
                    WHERE e.table_name = x.table_name AND e.record_id = x.record_id AND e.bucket_id = ANY($4::text[])
                   OFFSET 0)
 ORDER BY array_position($5::text[], x.table_name) DESC NULLS LAST, x.table_name, x.record_id`

// Subscribe writes into the client's private bucket $1 an insert for every
// record of the buckets $2 it gained, parents first ($3 the tables in
// dependency order). It reads synchro.bucket_edges.
//
// Plan: one table, no join: the edges of the gained buckets are read once
// (by the bucket index, or at worst one scan of bucket_edges), distinct and
// sorted; its cost is linear in what it reads whatever the statistics say.
//
// $1 text private bucket, $2 text[] gained buckets, $3 text[] tables in
// dependency order -> rows affected
const Subscribe = `
INSERT INTO synchro.changelog (bucket_id, table_name, record_id, operation)
SELECT $1, x.table_name, x.record_id, 1
  FROM (SELECT DISTINCT table_name, record_id FROM synchro.bucket_edges WHERE bucket_id = ANY($2::text[])) AS x
 ORDER BY array_position($3::text[], x.table_name) NULLS LAST, x.table_name, x.record_id`

// PullFullPage reads a pull's page when every bucket is read as far as a
// page could reach ($4 is the limit): the first $3 entries of the union of
// the buckets' first $4+1. It returns the compaction boundary, NULL for the
// cut, and the entries in seq order, then one row with NULL entry columns
// (also when there are no entries: it carries the boundary). synchro's
// pullPageStatements wraps it to look up the entries' rows.
//
// That last row is a branch of a UNION ALL that PostgreSQL merges with the
// entries in seq order (NULL sorts last), so the page comes out sorted
// from the entries' one sort, and the statement wrapping it needs none:
// the outer join of a row to the entries, which the last row replaces,
// cost a second sort of the page (about 0.3 ms of a page of 1000,
// docs/benchmarks.md, issue 14 item 4).
//
// $1 text[] buckets, $2 bigint checkpoint, $3 int page size, $4 int per
// bucket -> bigint boundary, bigint cut, bigint seq, text table_name,
// text record_id, smallint operation
var PullFullPage = pageStatement("NULL::bigint", unnestedEntries)

// unnestedEntries reads the first $3 entries of the union of the buckets'
// ($1) first $4+1 after the checkpoint $2, in seq order.
const unnestedEntries = `SELECT c.seq, c.table_name, c.record_id, c.operation
           FROM unnest($1::text[]) AS b(id)
          CROSS JOIN LATERAL (SELECT seq, table_name, record_id, operation FROM synchro.changelog
                               WHERE bucket_id = b.id AND seq > $2 ORDER BY seq LIMIT $4 + 1) AS c
          ORDER BY c.seq LIMIT $3`

// pageStatement returns a page statement (see PullFullPage): the
// boundary, the SQL expression cut, then the entries that the query
// entries reads in seq order, then the row with NULL entry columns.
func pageStatement(cut, entries string) string {
	return `
SELECT (SELECT ` + boundarySeq + `), ` + cut + `, p.seq, p.table_name, p.record_id, p.operation
  FROM ((` + entries + `)
        UNION ALL
        SELECT NULL::bigint, NULL::text, NULL::text, NULL::smallint) AS p(seq, table_name, record_id, operation)
 ORDER BY p.seq`
}

// MergedPageBuckets is the most buckets PullMergedPage reads.
const MergedPageBuckets = 8

// PullMergedPage is PullFullPage for 1 to MergedPageBuckets buckets: each
// bucket is read in a UNION ALL branch of its own, which PostgreSQL merges
// in seq order (Merge Append) instead of sorting the buckets' entries (the
// sort was about 0.3 ms of a page of 1000, docs/benchmarks.md, issue 14
// item 4). Its parameters, columns and rows are PullFullPage's. It always
// has MergedPageBuckets branches, a branch past the end of $1 reading
// bucket NULL, which no entry is in: one statement for every number of
// buckets, not one prepared per number on each connection. Each branch
// names its bucket through a subquery, (SELECT $1[i]), whose value the
// planner does not see: like PullFullPage's unnest, its plan cannot follow
// the statistics of one bucket's size (the bucket that held every entry
// when the table was analysed would be read by walking the primary key).
var PullMergedPage = mergedPage()

func mergedPage() string {
	branches := make([]string, MergedPageBuckets)
	for i := range branches {
		branches[i] = fmt.Sprintf(`(SELECT seq, table_name, record_id, operation FROM synchro.changelog
                    WHERE bucket_id = (SELECT ($1::text[])[%d]) AND seq > $2 ORDER BY seq LIMIT $4 + 1)`, i+1)
	}
	return pageStatement("NULL::bigint", `SELECT c.seq, c.table_name, c.record_id, c.operation
           FROM (`+strings.Join(branches, `
                 UNION ALL
                 `)+`) AS c
          ORDER BY c.seq LIMIT $3`)
}

// PullFullPageFor returns the statement of a full page of n buckets:
// PullMergedPage for 1 to MergedPageBuckets, PullFullPage otherwise.
func PullFullPageFor(n int) string {
	if n < 1 || n > MergedPageBuckets {
		return PullFullPage
	}
	return PullMergedPage
}

// PullCappedPage reads a pull's page reading at most $4+1 entries of each
// bucket; the cut is the lowest $4-th seq of a bucket that had more. Its
// columns and rows are PullFullPage's.
//
// The cut is read apart from the page, by the buckets' index alone: for
// each bucket its $4-th entry after the checkpoint, kept when another
// follows it. Numbering each bucket's entries with window functions in
// the page's own read, which then had to be materialised for both, cost
// about a third more (1.3 ms of a page of 1000 over 11 buckets,
// docs/benchmarks.md, issue 14 item 4).
//
// $1 text[] buckets, $2 bigint checkpoint, $3 int page size, $4 int per
// bucket (at least 1) -> bigint boundary, bigint cut, bigint seq, text
// table_name, text record_id, smallint operation
var PullCappedPage = pageStatement(`(SELECT min(n.seq)
          FROM unnest($1::text[]) AS b(id)
         CROSS JOIN LATERAL (SELECT seq FROM synchro.changelog
                              WHERE bucket_id = b.id AND seq > $2 ORDER BY seq OFFSET $4 - 1 LIMIT 1) AS n
         WHERE EXISTS (SELECT FROM synchro.changelog WHERE bucket_id = b.id AND seq > n.seq))`, unnestedEntries)

// ParentDeleted tells a push whether the changelog of the caller's buckets
// records the delete of a parent row, and reads the compaction boundary
// (whether the client's history still shows such deletes). id is the SQL
// text of the record id the parent key $2 names: the key in the text form
// PostgreSQL prints for the parent's key type, the form the changelog
// records (CAST($2::text AS uuid)::text for a uuid key).
//
// $1 text parent table, $2 text parent key, $3 text[] buckets -> boolean
// deleted, bigint boundary
func ParentDeleted(id string) string {
	return `SELECT EXISTS (SELECT FROM synchro.changelog c
		WHERE c.table_name = $1 AND c.record_id = ` + id + ` AND c.bucket_id = ANY($3::text[]) AND c.operation = 3),
	` + boundarySeq
}

// The statements of compaction's deletes, each bounded by one window of
// seqs whatever the statistics say:
//
//   - CompactBelow deletes the rows of the window ($1, $2] (at or below
//     the boundary) and counts them;
//   - CompactNextSeq finds the first seq after $1 up to $2 (the primary
//     key's first entry after $1);
//   - CompactSuperseded deletes, in the window ($1, $2], the rows that a
//     later row of the same record and bucket supersedes. The later row is
//     probed per row through (table_name, record_id, bucket_id, seq); the
//     OFFSET 0 keeps the EXISTS a subquery of its own, since as a semi join
//     PostgreSQL without statistics could read the whole changelog (or the
//     window's every row again) for each row of the window.
const (
	// CompactBelow: $1 bigint after, $2 bigint up to -> bigint deleted
	CompactBelow = `
WITH d AS (DELETE FROM synchro.changelog WHERE seq > $1 AND seq <= $2 RETURNING 1)
SELECT count(*) FROM d`
	// CompactNextSeq: $1 bigint after, $2 bigint up to -> bigint seq or NULL
	CompactNextSeq = `
SELECT min(seq) FROM synchro.changelog WHERE seq > $1 AND seq <= $2`
	// CompactSuperseded: $1 bigint after, $2 bigint up to -> rows affected
	CompactSuperseded = `
DELETE FROM synchro.changelog AS c
 WHERE c.seq > $1 AND c.seq <= $2
   AND EXISTS (SELECT 1 FROM synchro.changelog AS n
                WHERE n.table_name = c.table_name AND n.record_id = c.record_id
                  AND n.bucket_id = c.bucket_id AND n.seq > c.seq
               OFFSET 0)`
)
