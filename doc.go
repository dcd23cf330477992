// Package synchro keeps client devices that hold a local SQLite copy in sync
// with an application's own PostgreSQL tables, offline first.
//
// # Overview
//
// PostgreSQL stays the source of truth. Clients register a device, bootstrap
// with a paged snapshot of the tables they may see, push the writes they made
// offline and pull a bucketed changelog after a checkpoint. The changelog is
// built from logical replication by the consumer in package wal, not by push:
//
//	client push      -> Engine.Push     -> application tables (one transaction)
//	application tables -> WAL (pgoutput) -> wal.Consumer -> synchro.changelog
//	client pull      -> Engine.Pull     -> changelog rows of the client's buckets
//	                                    -> current row contents -> client
//	client bootstrap -> Engine.Snapshot (paged, stateless cursor)
//
// A bucket is a named set of rows a client may follow, such as "user:<id>"
// for the rows a user owns and "global" for rows everybody reads.
//
// # Registering tables
//
// Every synced table is described by a [TableConfig] added to a [Registry]
// with [Registry.Register], which fills in the defaults (see the field docs).
// [Registry.Validate] checks the whole registry and returns the first problem,
// wrapping one of the documented sentinels (such as [ErrCycleDetected]) so
// callers can branch with errors.Is:
//
//	reg := synchro.NewRegistry()
//	reg.Register(&synchro.TableConfig{TableName: "lists", OwnerColumn: "user_id"})
//	reg.Register(&synchro.TableConfig{TableName: "items", ParentTable: "lists", ParentFKCol: "list_id"})
//	if err := reg.Validate(); err != nil {
//		return err
//	}
//
// Table names are used exactly as written (case-sensitive, quoted in every
// statement); "schema.table" names a table outside the search path.
//
// # The engine
//
// [NewEngine] checks the registry, reads the catalog once for every
// registered table (primary key, columns, types, defaults) and records the
// schema contract, so a table that cannot be synced fails at start-up, not on
// a request. [Engine.RegisterClient] records a device; [Engine.Push] applies
// its offline writes, each record with its own outcome (see [Engine.Push] for
// the statuses and reason codes). The engine checks ownership itself, so a
// user never changes another user's rows even when the database role
// bypasses row-level security.
//
// # The schema contract
//
// [Engine.Schema] describes every registered table for the clients, which
// build their local SQLite tables from it: the columns with their
// PostgreSQL and logical types, nullability and defaults, the primary key
// and the bucketing configuration. A column's default is its own or, when
// it has none and its type is a domain, the domain's: what PostgreSQL
// gives an insert that leaves the column out. A column is not nullable
// when it is NOT NULL or a domain of its type (the domains it is declared
// over included) is NOT NULL or CHECK (VALUE IS NOT NULL). A column's
// sqlite_default_sql is an SQLite default with the same effect, where one
// exists; a timestamp column whose default is the current time (now(),
// CURRENT_TIMESTAMP, ...) gets (strftime('%Y-%m-%dT%H:%M:%fZ','now')), RFC
// 3339 text in UTC, so rows a device makes carry timestamps the server
// parses. An array column's constant default is given as PostgreSQL
// prints it, its array text ('{}', '{1,2}'), which a push takes back as
// the array (see "Pushed values").
//
// A table's columns in the contract are exactly the keys of the row objects
// that pulls, snapshots and push's server_version deliver: the synced
// columns ([TableConfig.SyncColumns] with the primary key, or every column
// in table order), then the updated-at and the deleted-at column when
// SyncColumns leaves them out.
//
// updated_at_column and deleted_at_column always name the configured
// columns (by default updated_at and deleted_at), and the column list always
// holds them. A table need not have them in PostgreSQL; for one it lacks,
// the contract adds a made-up column after the real ones: type "timestamp
// with time zone", logical type datetime, nullable, without a default. The
// engine delivers it as null in every row and ignores it in a push. It is
// there because the SDKs' local triggers name both columns. Null is what
// keeps such a table syncing: a device skips a pulled change when the
// updated_at it stored for the row is the same as or later than the
// record's, and never when it stored null, which is all a made-up column
// ever gives it. The table still works as one without the column:
// without updated_at the last push wins, without deleted_at deletes are hard
// deletes.
//
// The contract's hash is the SHA-256 of its canonical JSON, and its version
// increases whenever the hash changes. This version of the library builds a
// different contract from earlier ones (the made-up columns, the timestamp
// defaults, column lists limited to the delivered columns), so the hash
// differs: a device holding an earlier contract gets the usual schema
// mismatch ([ErrSchemaMismatch], 409 schema_mismatch over HTTP) and reloads
// the schema.
//
// # Pushed values
//
// The data of a pushed create or update holds one JSON value per column.
// Each column accepts the JSON forms listed here for its type, chosen for
// what devices send from SQLite and for what pulls, snapshots and push's
// server_version deliver, so that a device can always send back a row it
// received. Anything else is refused before anything is written: the
// record is rejected_terminal with reason invalid_data, and the message
// names the column and the form it expects, such as
//
//	column "title" expects a JSON string, got an object
//	column "tags" element [2] expects a JSON string, got 7
//
// Accepted values are stored exactly; the engine rewrites some of them into
// the text PostgreSQL reads as the same value (an integer's digits, the
// bytes of a base64 string, UTC made explicit). By logical type of the
// schema contract:
//
//   - string (text, varchar, char, uuid, enums, interval, inet, citext and
//     the other types read from text): a JSON string. PostgreSQL then
//     checks the text itself (a uuid's syntax, an enum's labels, a length
//     limit); its refusal is invalid_data too, with its own message.
//   - int (smallint, integer) and int64 (bigint): a JSON number of integral
//     value within the column's type's range: 7, -7, 1.0 and 1e3 (stored
//     as 1 and 1000), never 1.5. A bigint also takes a string of one,
//     "9007199254740993", for clients whose numbers are doubles. The digits
//     are kept exactly, never passed through a float64.
//   - float (real, double precision): a JSON number within the type's range
//     (1e400 and 1e-400 are refused), a string holding one ("2.5"), or one
//     of the strings "NaN", "Infinity" and "-Infinity".
//   - float (numeric): a JSON number or a string holding one, digits kept
//     exactly ("1.50" stays 1.50; a numeric(p,s) rounds to its scale, as
//     PostgreSQL does, and refuses a number too large for it), or "NaN";
//     "Infinity" and "-Infinity" unless the type has a precision.
//   - boolean: true and false, and the numbers 0 and 1 (SQLite stores
//     booleans as integers). Strings, "true" and "1" included, are refused:
//     the SDKs send booleans, and a string means the app wrote text into
//     the column.
//   - json (json, jsonb): any JSON value, stored as jsonb writes it (a json
//     column loses its key order, spacing and duplicate keys). A string
//     that holds the JSON text of an object or an array is that object or
//     array: the SDKs keep a json column's object in SQLite as its text
//     and push it back as a string. Any other string is a string, one that
//     holds a number's or a boolean's text included.
//   - bytes (bytea): a string, either PostgreSQL's hex text "\x0102ff"
//     (either case; the form pull delivers) or base64 in the standard
//     alphabet (RFC 4648, as the SDKs encode SQLite blobs), padded or not,
//     without line breaks, spaces or the URL-safe alphabet. The decoded
//     bytes are stored. Pull delivers them as "\x..." hex text.
//   - date: a string "YYYY-MM-DD" (the year has four to seven digits; a
//     year before 1 is written with a " BC" suffix, as PostgreSQL writes
//     it), or "infinity" or "-infinity".
//   - time: a string "HH:MM", "HH:MM:SS" or "HH:MM:SS.ffffff", hour 00-23
//     or 24:00:00, without a zone; a time with time zone takes a zone too
//     ("Z", ±HH, ±HH:MM, ±HHMM or ±HH:MM:SS) and is in UTC without one.
//   - datetime (timestamp, timestamptz): a string in RFC 3339 or SQLite's
//     forms: the date as above, then optionally a time as above (hour
//     00-23) after "T", "t" or a space, then optionally a zone as above;
//     "2026-12-02T04:20:23.123Z", "2026-12-02 04:20:23",
//     "2026-12-02T04:20" and "2026-12-02" are all accepted, as are
//     "infinity" and "-infinity". A timestamp without a zone is UTC (as
//     SQLite's CURRENT_TIMESTAMP writes it), whatever the database
//     session's time zone; a timestamp without time zone column given a
//     zone stores the UTC time it names (PostgreSQL alone would drop the
//     zone). Numbers (Unix times) and words ("now", "today") are refused;
//     so are a day the month lacks, hour 24 and second 60. PostgreSQL keeps
//     microseconds and rounds further digits.
//   - arrays (logical type json): a JSON array whose elements are in the
//     forms of the element type, or null; nested arrays for more
//     dimensions, as many as PostgreSQL allows (6), each sub-array of a
//     dimension as long as the others. A string holding such an array as
//     JSON text ("[1,2]") is accepted too: the SDKs store the arrays they
//     pull as text in SQLite and send that text back. So is a string
//     holding PostgreSQL's own array text ("{}", "{1,2}",
//     "{\"a b\",NULL}", "{{1,2},{3,4}}"), which a device holds for a row
//     it made without the column (the schema contract gives an array
//     column's default in that form). PostgreSQL reads that text with the
//     column's type, its
//     elements in PostgreSQL's text forms (a bad element is refused by
//     PostgreSQL, invalid_data with its message); text with unbalanced
//     braces or quotes, an empty element or sub-arrays of unequal lengths
//     is refused as "malformed array text". Elements of date, time and
//     timestamp arrays given that way must be in the forms above (a
//     timestamp without a zone is UTC), as in a JSON array. The elements
//     of json and jsonb arrays, and of arrays of types other than the
//     built-in ones (enums, domains, composites), are left to PostgreSQL.
//   - null: passes for every column. A NOT NULL column refuses it in
//     PostgreSQL (create_failed or update_failed, terminal), as it refuses
//     a create that leaves the column out.
//
// Text anywhere in the data, JSON values included, must be valid UTF-8,
// without the escape \u0000 or a UTF-16 surrogate escape that is not part
// of a pair: PostgreSQL cannot store them. Deeply nested values are safe:
// the checks never recurse deeper than an array's dimensions.
//
// The same forms are compared when an update repeats a protected, owner or
// parent column (see [Engine.Push]): 1 is the stored true, a base64 string
// the stored bytes it decodes to, "2026-12-02 04:20:23" the stored instant
// 2026-12-02T05:20:23+01:00, and an array's text ("[1,2]", or "{1,2}" as
// PostgreSQL reads it) the stored array.
//
// A device keeps some values in SQLite in another form than it received
// them, and pushes them back so with the whole row: a json column's value
// as text (5 comes back as "5", true as "1", an object as its text), a
// numeric as a 64-bit float (12.50 as 12.5, 9007199254740993 as
// 9007199254740992). An update whose value for a json or numeric column is
// the stored value in that form leaves the stored value as it is, so the
// edit of another column does not change its type or its digits; a
// device that means to write that very form (the string "5" over the
// number 5) cannot.
//
// The rows snapshots, pulls and a conflict's server_version deliver hold
// each column as row_to_json writes it, but for one thing: a number
// column's value without a '.' is an integer within int64's range. A
// float PostgreSQL writes with an exponent gets ".0" before it (1e-05 is
// 1.0e-05, 1e+20 is 1.0e+20) and an integer past int64's range gets ".0"
// after it (a numeric of scale 0): the same values, in a form the Kotlin
// SDK decodes, whose decoder reads a number without '.' as a 64-bit
// integer and fails the whole page otherwise. So are domains over those
// types and the elements of arrays of them. The contents of json and jsonb
// columns are delivered as stored.
//
// A record id is the row's primary key as PostgreSQL prints it: the form
// snapshots, pulls (changes and deletes) and the row data deliver. For a
// char(n) key (or a domain over one) that is the key padded with spaces to
// n characters, "a   " in a char(4), never the trimmed text key::text gives.
// A create in such a table must send its id in that form: any other ("a",
// or "abcd " and "abcde", which PostgreSQL would cut) is rejected_terminal,
// invalid_data, with a message naming the key and the form it expects,
//
//	record id "a" is not key "id" (character(4)) as PostgreSQL prints it: send the id padded with spaces to 4 characters, "a   "
//
// so that a device never holds the row under an id no delivery uses.
// Updates and deletes find the row by key, and a char key compares without
// its trailing spaces: "a" and "a   " name the same row there, as they do
// in a parent key.
//
// # Reading: snapshot, pull, subscriptions
//
// A new device pages through [Engine.Snapshot] until HasMore is false, then
// calls [Engine.Pull] from the snapshot's checkpoint until HasMore is false,
// applying Changes as upserts and Deletes as deletes. Repeating that keeps
// its copy equal to the rows of its buckets. Each pull page is read in one
// read-only transaction and its checkpoint never passes a change it did not
// deliver, so a lost response is simply asked again.
//
// A client follows the buckets [Config.Subscriptions] decides, by default
// "user:<id>" and "global"; when the answer changes, the next pulls deliver
// the rows of the buckets gained and delete those only held through buckets
// lost. A row goes to a client only while it is in one of the client's
// buckets both as the change capture recorded it and as its current
// contents place it (by the rules of [JoinResolver], or of
// [Config.Ownership] when set: it must give the same buckets as the
// consumer's bucket assigner). Compaction may remove history: a client behind
// the boundary is told to snapshot again ([PullResponse.SnapshotRequired]).
//
// # Live sync
//
// [Engine.PullWait] is a pull that, when there is nothing to deliver, waits
// for a change (long polling; synchrohttp serves it as POST
// /sync/pull?wait=S). Change capture announces the buckets of every
// changelog transaction with a PostgreSQL NOTIFY on [ChangesChannel];
// [Engine.Listen], run once per process, receives them and wakes only the
// waiting pulls of those buckets, in every process on the database. A
// waiting pull holds no connection; a missed notification costs latency,
// not a change (a waiting pull re-reads every [ListenConfig.Recheck]).
//
// # Row-level security
//
// [GenerateRLSPolicies] returns statements that enable row-level security on
// the registered tables with policies matching the bucketing rules; the
// application runs them as the tables' owner, as often as it likes (they are
// idempotent), for example in its own migrations. [SetAuthContext] sets the
// user (the setting app.user_id) for a transaction; the engine does it for
// every push. For RLS to be a second wall, the engine's role must be neither
// the tables' owner, nor a superuser, nor BYPASSRLS. The WAL consumer and the
// compactor read every user's rows: give them a role that bypasses RLS.
//
// # Owner ids
//
// The engine spells the caller's user id as PostgreSQL prints the owner
// columns' type before using it anywhere (ownership checks, the bucket
// "user:<id>", subscriptions, the RLS setting, the clients table): when
// every registered OwnerColumn is a uuid, an id such as
// "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11" or "{a0eebc999c0b4ef8bb6d6bb9bd380a11}"
// becomes "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"; when every one is
// smallint, integer or bigint, "0042" becomes "42". With text owner
// columns, or owner columns of several types, the id is used as the auth
// layer returned it (the engine logs a warning for several types: the auth
// layer must then spell ids as PostgreSQL prints each owner column, since
// the generated RLS policies compare text). Bucket ids are "user:" followed
// by the owner value's PostgreSQL text form, so a subscription rule should
// build them from the user id it is given (already in that form). Client
// rows registered under another spelling by an earlier version are not
// found under the new one: such devices register again (the SDKs do at
// every start).
//
// # Conflicts and versions
//
// A row's version is its updated-at column, and the engine writes it: it is
// the edit time of the write that produced the row. For a record applied by
// [Engine.Push] that is the record's client_updated_at (when the device made
// the change), capped at the database clock at the start of the push plus
// Config.ClockSkewTolerance, or just after the current version when that
// is not later, so that a row's versions only move forward; for a write
// made outside synchro, whatever it stored in the column. Devices receive
// the version with every row (and as server_updated_at after a push) and
// send the version their copy had as base_updated_at.
//
// A push that updates a row the server holds goes through a
// [ConflictResolver], which sees both edit times and the base in a
// [Conflict]. [LWWResolver] (the default) is last-write-wins by edit time:
// when the base equals the current version, nobody changed the row since
// the device saw it and the device wins; otherwise the later edit wins,
// whichever reached the server first, and a tie goes to the server.
// [ServerWinsResolver] always keeps the server row. A device whose clock
// runs ahead wins the conflicts it pushes but cannot leave a version later
// than the server's clock at its push, so it cannot win against edits made
// after that; one whose clock runs behind loses against edits made within
// its lag unless it sends its base. Deletes always win.
//
// Concurrent pushes do not deadlock one another: a push locks the rows it
// will write ahead, in one order for every push (the registry's dependency
// order, then primary key); see [Engine.Push] for what is covered.
//
// [CheckVersion] compares client application versions with semantic
// versioning rules.
//
// # Migrations
//
// The library keeps its own state in the PostgreSQL schema "synchro". The
// application creates and upgrades it by calling migrations.Migrate from
// package github.com/synchrosync/synchro/migrations; the library never
// migrates on its own initiative.
//
// # Running the consumer
//
// Change capture runs in package github.com/synchrosync/synchro/wal. It needs
// a server with wal_level=logical and a role allowed to replicate.
//
// Without it the engine still applies pushes, but no device receives them
// and a new device's snapshot misses what was committed since capture
// stopped. [Engine.CaptureStatus] tells, from any instance, whether somebody
// captures and keeps up (package synchrohttp serves it as a readiness
// endpoint); wal.Consumer.Status tells what a consumer does.
//
// # Metrics
//
// With [Config.MeterProvider] set, the engine reports OpenTelemetry
// metrics through it (the consumer's ConsumerConfig.MeterProvider does the
// same for change capture); without it, none. The table of every metric,
// with its instrument, unit, attributes and meaning, is docs/metrics.md in
// the repository; in short:
//
//	synchro.register.requests, .duration      RegisterClient calls, seconds
//	synchro.push.requests, .duration          Push calls, seconds
//	synchro.push.records                      records of committed pushes by
//	                                          synchro.table, synchro.push.status
//	                                          and synchro.push.reason
//	synchro.pull.requests, .records, .duration
//	synchro.snapshot.pages, .records, .duration
//	synchro.compaction.deleted                rows deleted, by synchro.compaction.target
//	synchro.capture.*                         (package wal) rows, transactions,
//	                                          changelog rows, batch duration,
//	                                          rule failures, lag in bytes and seconds
//
// Counters have units in braces ({record}), durations are histograms in
// seconds with bucket boundaries from 0.5ms to 10s, failed calls carry
// error.type. Attribute values come from bounded sets: registered table
// names, statuses, reason codes; never user or client ids.
//
// # Logs
//
// The engine logs through Config.Logger (slog.Default when nil). Setup
// problems it can live with are logged once at Warn when found (a role
// that bypasses row-level security, at NewEngine); refusals are returned
// as errors instead. A condition that repeats is logged once at its level,
// then at Debug until it changes: compaction runs that find nothing to do
// (Info), tables whose bucket edges compaction cannot prune (Warn). Package
// wal follows the same policy for change capture. docs/operations.md in
// the repository is the operator's guide.
//
// # Testing
//
// The tests run against a real PostgreSQL with wal_level=logical: the URL in
// SYNCHRO_TEST_DATABASE_URL, a container when a Docker engine answers, or the
// local PostgreSQL binaries, in that order. Run them with "make test".
package synchro
