package store

// This file holds the statements on synchro.rule_failures: the changes
// whose buckets could not be decided, with their payload, kept for replay.

// InsertRuleFailure records a change whose buckets could not be decided.
//
// $1 text table, $2 text record id, $3 smallint operation, $4 text error,
// $5 jsonb payload or NULL, $6 bigint lsn -> rows affected
const InsertRuleFailure = `
INSERT INTO synchro.rule_failures (table_name, record_id, operation, error_text, payload, lsn)
VALUES ($1, $2, $3, $4, $5::jsonb, $6)`

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
