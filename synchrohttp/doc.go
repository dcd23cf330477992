// Package synchrohttp serves a [synchro.Engine] over HTTP with JSON bodies,
// using the standard library only.
//
// # Overview
//
// A [Handler] built by [New] answers six endpoints:
//
//	POST /sync/register  synchro.RegisterRequest -> synchro.RegisterResponse  (Engine.RegisterClient)
//	POST /sync/pull      synchro.PullRequest     -> synchro.PullResponse      (Engine.Pull, Engine.PullWait)
//	POST /sync/push      synchro.PushRequest     -> synchro.PushResponse      (Engine.Push)
//	POST /sync/snapshot  synchro.SnapshotRequest -> synchro.SnapshotResponse  (Engine.Snapshot)
//	GET  /sync/tables                            -> synchro.TableMetaResponse (Engine.TableMetadata)
//	GET  /sync/schema                            -> synchro.SchemaResponse    (Engine.Schema)
//
// The GET endpoints answer HEAD as well. A success is 200 with the engine's
// response encoded as JSON (Content-Type application/json). Every response,
// success or error, carries Cache-Control: no-store, since it holds one
// user's data. Push and pull also answer 200 in two cases where the engine
// returns an error (see "Stale clients and snapshots"), and push decodes
// its records one by one (see "Push records").
//
// A [Health] built by [NewHealth] answers the health endpoints, liveness
// and readiness, for an orchestrator or a load balancer (see "Health").
//
// # Mounting
//
// [Handler.ServeHTTP] routes on the part of the request path after its last
// "/sync/" (a path without a leading slash is read as if it had one), so the
// handler works under any prefix, directly or behind [http.StripPrefix], as
// long as the path it sees still ends in "/sync/<endpoint>":
//
//	mux.Handle("/sync/", h)                               // /sync/pull
//	mux.Handle("/api/v1/sync/", h)                        // /api/v1/sync/pull
//	mux.Handle("/api/", http.StripPrefix("/api", h))      // /api/sync/pull
//
// Anything else after "/sync/" (a trailing slash, another name, another
// case) is 404 not_found. Stripping "/sync" itself leaves "/pull", which is
// not routed: mount the Serve methods one by one instead. Each of them
// checks its own method, so they can be registered on any pattern:
//
//	mux.HandleFunc("/v2/pull", h.ServePull)
//
// # Authentication
//
// The user is whoever [Config.UserID] says, and nothing else: the handler
// reads no identity header of its own. Every endpoint, the GET ones
// included, calls it after the route, the method and the app version
// are checked and before the body is read; an error, or an id that is
// empty or white space, is 401 unauthenticated. The id is passed to the
// engine exactly as returned (no case folding).
//
// # App version
//
// A request with an X-App-Version header ([AppVersionHeader]) that is not
// empty or white space is checked, on every endpoint (the GET ones and
// register included), by [synchro.Engine.CheckAppVersion] against
// synchro.Config.MinClientVersion: a version below the minimum, or one that
// is not a semantic version, is 426 upgrade_required whose "error" is the
// minimum version itself (the SDKs show it). Without a minimum every value
// passes; a request without the header is not checked. The check comes
// before authentication: the minimum is no secret, and an app too old to
// be served may well also hold credentials the server no longer accepts,
// so telling it to upgrade is the useful answer. Register checks the body's
// app_version as well, as the engine always has.
//
// # Request bodies
//
// A POST body must be one JSON object of the endpoint's request type, at most
// [Config.MaxBodyBytes] long (413 body_too_large otherwise). A Content-Type,
// when present, must be application/json or application/*+json, with no
// charset other than UTF-8 (415 otherwise); an absent one is accepted.
// Unknown fields are ignored, since newer clients add fields. A second
// value or any other data after the object, a value of the wrong type (the
// message names the field, such as "cursor.table_idx"), malformed JSON (the
// message gives the byte offset), an empty body and a body that is not an
// object (null included) are all 400 bad_request. A null value is the same
// as an absent field ("cursor": null, "tables": null ...). Field names
// match case-insensitively and a repeated field keeps its last value, as
// with encoding/json. The engine then validates the values themselves (a
// missing client_id, a negative checkpoint, a snapshot cursor the client
// did not get from the server, an unknown table in a pull filter ...): 400
// bad_request as well.
//
// # Push records
//
// A push body's client_id, schema_version and schema_hash, and its
// "changes" (an array, or null or absent for none), are read as above: a
// fault there is 400 for the whole request, and so is a request of more
// than 1000 records, counting every record. Each record is then decoded
// on its own. A record is rejected by the handler, without reaching the
// engine, when:
//
//   - it is not a JSON object;
//   - its id or table_name is not a string (absent or null count as "",
//     which the engine refuses);
//   - its operation is not a string, or not "create", "update" or
//     "delete";
//   - the data of a create or an update is not a JSON object (a delete's
//     data is not read, and may be null or absent);
//   - its client_updated_at or base_updated_at is neither null (or absent)
//     nor a string in one of the timestamp forms below.
//
// Such a record gets its own result in the response's "rejected" list:
// status rejected_terminal, reason_code invalid_operation for the operation
// and invalid_data for anything else, a message naming the field (such as
// "changes[3].base_updated_at"), and its id, table_name and operation when
// they are strings. The other records go to [synchro.Engine.Push] in their
// order, and are answered as it answers them. The "rejected" list holds
// the handler's results first, in request order, then the engine's. A push
// whose records are all rejected still goes to the engine, with no
// records, so that an unknown client is still 404 and a wrong schema 409.
//
// A null or absent base_updated_at means the device has no base version; a
// null or absent client_updated_at is the zero time, which loses every
// conflict under the default resolver.
//
// # Versions and last write wins
//
// A row's updated_at is its version, and it is the time its latest edit
// was made: for an edit pushed by a device, its client_updated_at (capped
// at the server's clock when the push starts, plus the engine's
// ClockSkewTolerance, or its LWWResolver's when that is less), moved just past the previous version if it is not
// later, so versions only move forward. Pulls deliver it as the row's
// updated_at, and an applied record's result gives the new one as
// server_updated_at: that is what a device sends back as base_updated_at
// with its next edit of the row. Under the default resolver an edit
// replaces the server's row when it was made on the current version
// (base_updated_at equal to it), or else when it was made later than the
// current version's edit; otherwise the record is a conflict
// (server_won_conflict) whose message gives both times and whose
// server_version is the row to keep. So the later edit wins, whichever
// device reached the server first. A device whose clock is behind loses to
// edits made within its lag (unless it sends its base); one whose clock is
// ahead cannot leave a version beyond the server's clock at its push. See
// synchro.LWWResolver and synchro.Conflict.
//
// # Timestamps
//
// client_updated_at and base_updated_at are read in any of these forms:
//
//	2026-12-02T04:20:23Z            RFC 3339, with a zone: Z or ±hh:mm
//	2026-12-02T04:20:23.123+01:00   RFC 3339 with fractional seconds
//	2026-12-02 04:20:23             SQLite's datetime text, read as UTC
//	2026-12-02 04:20:23.123         the same with fractional seconds
//	2026-12-02T04:20:23[.123]       a "T" and no zone: read as UTC
//
// The separator may be "T", "t" or a space, the zone "Z", "z", ±hh:mm or
// nothing (UTC); the fraction has one digit or more (digits beyond the
// nanosecond are dropped). The date and time must be real: a month without
// a 31st, hour 24 or second 60 is refused.
//
// # Pushed values
//
// Each value in a record's data must be in a JSON form its column's type
// accepts; the engine refuses any other as rejected_terminal, invalid_data,
// with a message naming the column and the expected form (`column "title"
// expects a JSON string, got an object`). By logical type of the schema
// contract (the details are in package synchro's documentation, "Pushed
// values"):
//
//	Logical type  Accepted JSON                                    Refused, for example
//	string        a string                                         42, true, {...}, [...]
//	int, int64    a number of integral value in the type's range   1.5, 3000000000 for integer,
//	              (1.0 and 1e3 are 1 and 1000); int64 also a       "7" for integer
//	              string of digits ("9007199254740993")
//	float         a number in the type's range, a string holding   "fast", 1e400, "nan"
//	              one, "NaN", "Infinity", "-Infinity" (numeric(p,s):
//	              no infinities)
//	boolean       true, false, 0, 1                                "true", "1", 2
//	json          any JSON value (a string stays a string)         -
//	bytes         a string: base64 (standard alphabet, padding     12, "AQL_" (URL-safe),
//	              optional) or PostgreSQL's hex "\x0102ff"; the    "\x012"
//	              decoded bytes are stored, pull sends "\x..."
//	date          "YYYY-MM-DD", "infinity", "-infinity"            "2024-02-30", "today",
//	                                                               "2024-02-29T10:00:00Z"
//	time          "HH:MM[:SS[.ffffff]]"; with time zone, a zone    "25:00", "10:00+05" (time)
//	              may follow (none: UTC)
//	datetime      RFC 3339 or SQLite's text:                       1764649223, "now",
//	              "2026-12-02T04:20:23Z",                          "Jan 8 1999",
//	              "2026-12-02 04:20:23[.123]",                     "2024-01-01T24:00:00Z"
//	              "2026-12-02T04:20", "2026-12-02";
//	              no zone means UTC; "infinity"
//	arrays        a JSON array of the element type's forms         "1,2", "{1,2", [1,"x"]
//	              (nulls allowed; nested arrays of equal           for integer[],
//	              lengths for more dimensions, at most 6),         [[1],[2,3]]
//	              or a string holding one ("[1,2]": the SDKs
//	              keep arrays as text in SQLite), or a string
//	              of PostgreSQL's array text ("{1,2}", "{}":
//	              what devices hold for a default an earlier
//	              contract gave in that form), which
//	              PostgreSQL reads
//	any           null (a NOT NULL column then refuses it:         -
//	              create_failed or update_failed, terminal)
//
// Every value of a built-in type that a pull, a snapshot or a
// server_version delivers is accepted back in a push (bytea as "\x..."
// hex, timestamps with their offset, arrays as JSON arrays), so a device
// that sends whole rows is not refused a row it received.
//
// # Push outcomes
//
// Each record of a push ends in "accepted" or "rejected" with a status and,
// for all but a plain success, a reason_code. The SDKs drop a
// rejected_terminal record from the device's queue for good, so terminal
// means the record can never succeed as sent; after a rejected_retryable
// record they retry the whole push later, without pulling first, so every
// retryable reason below says how the device gets out.
//
//	Status              Reason                When; the device's way out
//	applied             (none)                created, updated, deleted, or brought back (a create of a
//	                                          soft-deleted row)
//	applied             already_deleted       a delete of a row already soft-deleted
//	conflict            record_exists         a create of a live row; server_version is the row, which
//	                                          the device keeps
//	conflict            record_deleted        an update of a soft-deleted row; server_version carries it
//	conflict            server_won_conflict   the ConflictResolver kept the server's row (server_version)
//	rejected_terminal   table_not_registered  the table is not synced
//	rejected_terminal   table_read_only       the table's PushPolicy is disabled
//	rejected_terminal   invalid_operation     operation is not create, update or delete (also decided
//	                                          here, before the engine)
//	rejected_terminal   invalid_data          data is not an object, names an unknown or unsynced
//	                                          column, changes a protected, owner or parent column, holds
//	                                          a value not in a form its column accepts (see "Pushed
//	                                          values") or that PostgreSQL refuses for the column's type,
//	                                          creates a row keyed by char(n) under an id not padded to n
//	                                          characters as PostgreSQL prints it, or a timestamp of the
//	                                          record cannot be read (decided here)
//	rejected_terminal   record_not_found      an update or delete of a row that does not exist or that
//	                                          the caller cannot see
//	rejected_terminal   ownership_violation   the row belongs to another user (or, with an engine role that
//	                                          bypasses RLS, the parent a create names)
//	rejected_terminal   parent_deleted        a create's parent (or referred row) is gone: the changelog of the client's
//	                                          buckets records its deletion, or the client's checkpoint is
//	                                          older than the server's history (its next pull tells it to
//	                                          snapshot again, and the SDKs' rebuild starts the queue afresh)
//	rejected_terminal   parent_never_arrived  a record still missing its parent (or referred row) after
//	                                          waiting through 10 pushes of its client that applied
//	                                          nothing, over at least 10 minutes: the queue never delivers it
//	rejected_terminal   stale_client          Hooks.OnStaleClient refused the client (see below)
//	rejected_terminal   create_failed,        PostgreSQL refused the write for good: a constraint (NOT NULL,
//	                    update_failed,        unique, foreign key, check), row-level security, or an
//	                    delete_failed,        exception raised by the application's trigger
//	                    resurrection_failed
//	rejected_retryable  parent_not_found      a create's parent row is not there and may still come
//	                                          (or a row that a foreign key of a create or update refers
//	                                          to, in a table clients push to).
//	                                          The engine tries such records again after the rest of the
//	                                          push, so a parent later in the same request is found. Out:
//	                                          the device pushes the parent; if the parent never comes,
//	                                          its deletion in the changelog, or the client's checkpoint
//	                                          falling behind retention, turns the record into
//	                                          parent_deleted, and at the latest 10 pushes that applied
//	                                          nothing, over 10 minutes, into parent_never_arrived
//	                                          (terminal). The SDKs resend the same batch and pull only
//	                                          after it passes, so that bound is what frees a device
//	                                          whose queue never delivers the parent within the batch: a
//	                                          parent beyond it (over 100 records behind its child in the
//	                                          SDK's queue) cannot arrive, and the child is given up.
//	                                          A parent of another user hidden by RLS is answered so too
//	rejected_retryable  create_failed,        a transient database failure (serialization failure,
//	                    update_failed,        deadlock, lock or statement timeout, shutdown, connection,
//	                    delete_failed,        resources). Out: the retry succeeds once the database does
//	                    resurrection_failed
//	rejected_retryable  internal_error        the ConflictResolver or OwnershipResolver returned an
//	                                          error, or reading the row failed transiently. Out: a
//	                                          transient failure passes; a resolver that always fails is
//	                                          the application's bug, and its fix releases the device
//
// A device whose push fails as a whole (an error status) retries it the
// same way: 503 after Retry-After; 409 after reloading the schema; 426
// after an upgrade.
//
// Concurrent pushes, from several devices of one user or from users
// sharing rows, do not deadlock one another whatever the order of their
// records: before its first record a push locks the rows it will write and
// the parents its creates attach to, in one order common to all pushes
// (tables parents first, rows by key). A push may wait for another that
// holds the same rows, but never in a cycle, so its records are not
// answered rejected_retryable for a deadlock; the few locks this does not
// cover are listed under [synchro.Engine.Push].
//
// # Errors
//
// Every error response has a JSON body of strings
// {"code": "...", "message": "...", "error": "..."}, where "error" repeats
// the message: the SDKs show "error". Two bodies differ: 426
// upgrade_required's "error" is the minimum app version itself (the
// message explains), and 409 schema_mismatch also carries the server's
// contract, twice, as numbers "schema_version" and "server_schema_version"
// and strings "schema_hash" and "server_schema_hash". The codes are stable;
// the messages are for people and may change. For the 4xx codes other than
// unauthenticated the message is the engine's or the decoder's
// explanation, which is safe to show; a 500 or 503 never reveals the
// underlying error, which is logged instead.
//
//	Status  Code                    When
//	400     bad_request             malformed body, a push of more than 1000 records (counting
//	                                those rejected one by one), or the engine refused the request's values
//	                                (an error implementing BadRequest() bool that returns true,
//	                                ErrTableNotRegistered, ErrInvalidOperation), or PostgreSQL
//	                                refused a text value of the request (SQLSTATE 22021, a NUL)
//	401     unauthenticated         Config.UserID failed or returned an empty id
//	403     stale_client            synchro.ErrStaleClient on an endpoint other than pull and push
//	                                (which answer 200, see below); none does today
//	404     not_found               no endpoint at this path
//	404     client_not_registered   synchro.ErrClientNotRegistered: register the client first
//	405     method_not_allowed      wrong method; the Allow header lists the right ones
//	409     schema_mismatch         synchro.ErrSchemaMismatch; the body adds the server's
//	                                "schema_version", "schema_hash", "server_schema_version"
//	                                and "server_schema_hash"
//	410     snapshot_required       synchro.ErrSnapshotRequired on an endpoint other than pull
//	                                (which answers 200, see below)
//	413     body_too_large          the body is longer than Config.MaxBodyBytes
//	415     unsupported_media_type  the Content-Type is not JSON
//	426     upgrade_required        the X-App-Version header or register's app_version is below
//	                                synchro.Config.MinClientVersion, or not a semantic version
//	                                (synchro.ErrUpgradeRequired); "error" is the minimum version.
//	                                No Upgrade header is sent
//	499     canceled                the client went away; it never normally sees this
//	500     internal                anything else; logged with Logger.ErrorContext
//	503     unavailable             a transient database failure; retry after the Retry-After
//	                                header's seconds (Config.RetryAfter)
//
// When one error matches several rows, the first in this order wins:
// canceled, schema_mismatch, client_not_registered, upgrade_required,
// stale_client, snapshot_required, bad_request, unavailable, internal.
// The 400 for SQLSTATE 22021 has a fixed message: PostgreSQL's is not sent.
// 409 means a schema mismatch and nothing else: the SDKs read every 409 as
// one.
//
// # Stale clients and snapshots
//
// When Hooks.OnStaleClient refuses a client (synchro.ErrStaleClient), pull
// answers 200 with "snapshot_required": true, "snapshot_reason":
// "stale_client", empty "changes" and "deletes", "has_more" false, the
// request's checkpoint and the server's schema version and hash. Push
// answers 200 too: every record rejected_terminal with reason_code
// "stale_client" and a message telling the device to snapshot again
// (records the handler rejected while decoding keep their own result),
// "accepted" empty, "checkpoint" 0, and the server's time and schema.
// Nothing of the push is applied. The SDKs push before they pull: a push
// answered with an error status ends their sync cycle before the pull, and
// one with a rejected_retryable record is retried later, again without
// pulling. Only a push answered with terminal results lets them reach the
// pull that tells them to rebuild from a snapshot, and that rebuild clears
// their queue of pending changes anyway, so the terminal answer loses
// nothing the rebuild would have kept. An application that wants a stale
// client's writes returns true from OnStaleClient.
//
// synchro.ErrSnapshotRequired (which the engine does not return today; it
// reports a needed snapshot in the pull response itself) is answered the
// same way by pull, with "snapshot_reason": "snapshot_required", and with
// 410 snapshot_required by the other endpoints.
//
// # Live sync
//
// A pull may ask to wait for a change with the query parameter "wait", in
// seconds: POST /sync/pull?wait=20 (decimals allowed: wait=2.5). When the
// client has something to receive, or must snapshot again, the answer is
// immediate, exactly as without the parameter; otherwise the request is
// held until a change reaches one of the client's buckets (the answer then
// carries it) or the wait passes (the ordinary empty page, 200). A wait
// above [Config.MaxPullWait] (60 s unless the application lowers it) is
// clamped to it; wait=0 is a plain pull. A value that is not a plain
// decimal number of seconds (a sign, an exponent, NaN, the parameter given
// twice) is 400 bad_request. A client that disconnects ends its wait at
// once. Requests without the parameter behave exactly as before, so
// clients that never send it are unaffected. The engine must run
// [synchro.Engine.Listen] for changes to wake a waiting pull at once;
// without it the pull re-reads every second (see synchro.Engine.PullWait).
// The server's http.Server WriteTimeout, and any proxy's read timeout, must
// be longer than the longest wait, or the proxy ends the request first.
//
// # Transient failures
//
// A 503 unavailable is sent for: context.DeadlineExceeded (a deadline set
// by the application, such as http.TimeoutHandler's); driver.ErrBadConn;
// any net.Error; a pgconn error that is safe to retry or a timeout; and a
// PostgreSQL error of SQLSTATE class 08 (connection exception) or 53
// (insufficient resources), or code 40001 (serialization failure), 40P01
// (deadlock), 55P03 (lock not available, also lock_timeout), 57014 (query
// canceled, statement_timeout), 57P01, 57P02 or 57P03 (administrator or
// crash shutdown, cannot connect now). A closed *sql.DB ("sql: database is
// closed") is a server fault: 500.
//
// # Health
//
// [Health] serves two GET (and HEAD) endpoints, without authentication and
// apart from [Handler]:
//
//	health, err := synchrohttp.NewHealth(synchrohttp.HealthConfig{Engine: engine, Consumer: consumer})
//	mux.Handle("/healthz", health) // liveness
//	mux.Handle("/readyz", health)  // readiness
//
// Liveness (/healthz, [Health.ServeLive]) answers 200 whenever the process
// serves HTTP. It reads no database: an outage of PostgreSQL or of change
// capture is not mended by restarting the process, so it must not make an
// orchestrator restart it. Its body is {"live": true, "checked_at": ...,
// "consumer": {...}}, the consumer's status when HealthConfig.Consumer is
// set.
//
// Readiness (/readyz, [Health.ServeReady]) answers 200 when the process
// can serve with its data kept current, 503 when not. Not ready means: the
// process's own consumer (HealthConfig.Consumer, when set) has failed or
// stopped; or the capture status cannot be read from the database; or
// [synchro.Engine.CaptureStatus] is not ready: the slot is missing, is not
// a pgoutput slot of the database, lost (or is about to lose) WAL it
// needs, nobody streams it, or it is behind the server by more than
// HealthConfig.Capture's limits. The capture status is read from the
// database, so every instance of the application gives the same verdict,
// whichever of them (if any) runs the consumer: while nobody captures,
// pushes are still applied, but no device receives them, and a new
// device's snapshot misses what was committed since capture stopped. A
// readiness probe on it takes every instance out of a load balancer while
// nobody captures; an application that prefers to serve stale data then
// watches it as an alert instead. Readiness checks are one short statement
// each (HealthConfig.Timeout bounds it); CaptureStatus measures how long a
// slot has been behind from the positions its earlier calls read, so call
// it periodically (every few seconds) for its lag in time to be exact.
//
// The readiness body:
//
//	ready          boolean: the verdict, as the status code says
//	reason         the first reason not to be ready; absent when ready:
//	                 consumer_failed     the process's consumer failed (message: its error)
//	                 consumer_stopped    the process's consumer is not running
//	                 capture_unknown     the capture status could not be read (capture_error)
//	                 no_slot, slot_mismatch, wal_lost, wal_unreserved, slot_inactive,
//	                 lag_bytes, lag_time: capture.reason (synchro.CaptureReason*)
//	message        the reason explained for people; absent when ready
//	checked_at     when the answer was made (RFC 3339, UTC)
//	capture        synchro.CaptureStatus; absent when it could not be read:
//	  ready, reason, message           its own verdict
//	  server_lsn                       the server's WAL position ("16/B374D848")
//	  server_time                      the database's clock
//	  changelog_last_at                created_at of the newest changelog row; absent when empty
//	  changelog_age_seconds            server_time minus changelog_last_at; absent when empty.
//	                                   Informational: an idle database is ready however old
//	  slots                            one object per slot read (synchro.SlotStatus):
//	    name, ready, reason, message   the slot's verdict
//	    exists, active                 whether the slot exists and a process streams it
//	    active_pid                     the walsender streaming it; absent when inactive
//	    confirmed_lsn, restart_lsn     the slot's positions; absent when it does not exist
//	    wal_status                     reserved, extended, unreserved or lost
//	    retained_bytes                 WAL the server keeps for the slot
//	    lag_bytes                      WAL after confirmed_lsn (0 when caught up)
//	    lag_seconds                    how long, at least, the WAL has been past confirmed_lsn
//	    recorded_lsn, recorded_at      synchro.wal_position: the changelog is complete up to
//	                                   recorded_lsn, written at recorded_at; absent when none
//	capture_error  the database error when the capture status could not be read
//	consumer       the process's consumer (wal.ConsumerStatus), when configured:
//	  state                            starting, streaming, standby (another process streams the
//	                                   slot; it takes over when the slot is free), reconnecting,
//	                                   failed or stopped
//	  since                            when it entered state
//	  slot, attempts                   its slot; failed sessions since it last streamed
//	  failures                         failed sessions (a standby's attempts aside) since it last
//	                                   wrote or confirmed a position: grows while a batch fails
//	                                   each time it is written, though state returns to streaming
//	  applied_lsn, confirmed_lsn       written to the changelog; confirmed to the server
//	  server_lsn                       the server's WAL end as it last heard it
//	  lag_bytes                        server_lsn minus what it wrote or confirmed; -1 (unknown)
//	                                   unless streaming
//	  lag_seconds                      how long since it was last caught up; 0 when caught up
//	  last_commit_at, last_applied_at  commit time of the last transaction it finished, and when
//	                                   it finished it; absent before the first
//	  last_error, last_error_at        the last error that ended a session or Start, kept after
//	                                   it recovers; absent when none
//
// Times are RFC 3339 in UTC, LSNs as PostgreSQL prints a pg_lsn. Fields
// may be added. For example, the process of a standby consumer while
// another process streams the slot:
//
//	{"ready": true, "checked_at": "2026-12-02T08:58:15.645403971Z",
//	 "capture": {"ready": true, "server_lsn": "0/3700568", "server_time": "2026-12-02T08:58:15.643538Z",
//	   "changelog_last_at": "2026-12-02T08:58:15.619833Z", "changelog_age_seconds": 0.024,
//	   "slots": [{"name": "synchro_slot", "ready": true, "exists": true, "active": true,
//	     "active_pid": 22589, "confirmed_lsn": "0/3700568", "restart_lsn": "0/32C0150",
//	     "wal_status": "reserved", "retained_bytes": 4457496, "lag_bytes": 0, "lag_seconds": 0,
//	     "recorded_lsn": "0/3700520", "recorded_at": "2026-12-02T08:58:15.619833Z"}]},
//	 "consumer": {"state": "standby", "since": "2026-12-02T08:58:15.197276154Z", "slot": "synchro_slot",
//	   "attempts": 3, "failures": 0, "applied_lsn": "0/32BF4D8", "confirmed_lsn": "0/0", "server_lsn": "0/3700000",
//	   "lag_bytes": -1, "lag_seconds": 0.472}}
//
// and, with no consumer anywhere after rows were written, 503:
//
//	{"ready": false, "reason": "no_slot",
//	 "message": "replication slot \"synchro_slot\" does not exist: no consumer has streamed it, ...",
//	 "checked_at": "...", "capture": {"ready": false, "reason": "no_slot", ..., "slots": [{"name":
//	   "synchro_slot", "ready": false, "reason": "no_slot", ..., "exists": false, "active": false,
//	   "retained_bytes": 0, "lag_bytes": 0, "lag_seconds": 0}]}}
//
// The bodies name slots and carry error texts, which may name hosts and
// roles: serve the endpoints where only operators and the orchestrator
// reach them. Not-ready answers are logged when readiness changes: once at
// Warn with the reason, and once at Info when it is ready again.
//
// # Logging
//
// Requests that fail with 500 are logged at Error with the error, 503 at
// Warn, every other failure at Debug. Successes are not logged.
package synchrohttp
