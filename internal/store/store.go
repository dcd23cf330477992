package store

// OlderThan is the SQL cutoff "now minus $1 microseconds", for statements
// that take an age as $1 bigint: durations travel as a number of
// microseconds, which PostgreSQL reads exactly for any duration (a Go
// duration string is not an interval it accepts). It is a fragment,
// embedded in DeactivateStaleClients, PruneRuleFailures and synchro's
// per-table statements that prune the bucket edges of deleted rows.
const OlderThan = `now() - $1::bigint * interval '1 microsecond'`
