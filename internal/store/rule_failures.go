package store

// This file holds the statements on synchro.rule_failures: the changes
// whose buckets could not be decided, with their payload, kept for replay.

// InsertRuleFailures records changes whose buckets could not be decided,
// in one statement and without a savepoint (see wal's failpayload.go).
// Each payload goes in as its code says: 0 NULL, 1 a JSON string of the
// text (to_jsonb of text, which takes any text), 2 the text as jsonb when
// the server's encoding is UTF8 and as a string otherwise, 3 the text as
// jsonb. The failures get their ids in the arrays' order.
//
// $1 text[] tables, $2 text[] record ids, $3 smallint[] operations,
// $4 text[] errors, $5 text[] payloads, $6 smallint[] payload codes,
// $7 bigint[] lsns -> rows affected
const InsertRuleFailures = `
INSERT INTO synchro.rule_failures (table_name, record_id, operation, error_text, payload, lsn)
SELECT f.tbl, f.id, f.op, f.err,
       CASE WHEN f.how = 3 OR (f.how = 2 AND current_setting('server_encoding') = 'UTF8') THEN f.payload::jsonb
            WHEN f.how > 0 THEN to_jsonb(f.payload) END,
       f.lsn
  FROM unnest($1::text[], $2::text[], $3::smallint[], $4::text[], $5::text[], $6::smallint[], $7::bigint[])
       WITH ORDINALITY AS f(tbl, id, op, err, payload, how, lsn, n)
 ORDER BY f.n`

// PendingRuleFailures lists, locking them, the failures not yet replayed,
// oldest first.
//
// no parameters -> bigint id, text table, text record id
const PendingRuleFailures = `
SELECT id, table_name, record_id FROM synchro.rule_failures
 WHERE replayed_at IS NULL ORDER BY id FOR UPDATE`

// MarkRuleFailuresReplayed records failures as replayed.
//
// $1 bigint[] ids -> rows affected
const MarkRuleFailuresReplayed = `UPDATE synchro.rule_failures SET replayed_at = now() WHERE id = ANY($1::bigint[])`

// PruneRuleFailures deletes the failures replayed more than the age $1
// ago; failures not yet replayed are kept.
//
// $1 bigint age in microseconds -> rows affected
const PruneRuleFailures = `DELETE FROM synchro.rule_failures WHERE replayed_at < ` + OlderThan
