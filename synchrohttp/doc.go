// Package synchrohttp serves a [synchro.Engine] over HTTP with JSON bodies,
// using the standard library only.
//
// # Overview
//
// A [Handler] built by [New] answers six endpoints:
//
//	POST /sync/register  synchro.RegisterRequest -> synchro.RegisterResponse  (Engine.RegisterClient)
//	POST /sync/pull      synchro.PullRequest     -> synchro.PullResponse      (Engine.Pull)
//	POST /sync/push      synchro.PushRequest     -> synchro.PushResponse      (Engine.Push)
//	POST /sync/snapshot  synchro.SnapshotRequest -> synchro.SnapshotResponse  (Engine.Snapshot)
//	GET  /sync/tables                            -> synchro.TableMetaResponse (Engine.TableMetadata)
//	GET  /sync/schema                            -> synchro.SchemaResponse    (Engine.Schema)
//
// The GET endpoints answer HEAD as well. A success is 200 with the engine's
// response encoded as JSON (Content-Type application/json). Every response,
// success or error, carries Cache-Control: no-store, since it holds one
// user's data.
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
// included, calls it after the route and the method are checked and before
// the body is read; an error, or an id that is empty or white space, is 401
// unauthenticated. The id is passed to the engine exactly as returned (no
// case folding).
//
// # Request bodies
//
// A POST body must be one JSON object of the endpoint's request type, at most
// [Config.MaxBodyBytes] long. A Content-Type, when present, must be
// application/json or application/*+json, with no charset other than UTF-8
// (415 otherwise); an absent one is accepted. Decoding is strict: unknown
// fields, a second value or any other data after the object, a value of the
// wrong type (the message names the field, such as "cursor.table_idx"),
// malformed JSON (the message gives the byte offset), an empty body and a
// body that is not an object (null included) are all 400 bad_request.
// Field names match case-insensitively and a repeated field keeps its last
// value, as with encoding/json. The
// engine then validates the values themselves (a missing client_id, a
// negative checkpoint, a snapshot cursor the client did not get from the
// server, an unknown table in a pull filter ...): 400 bad_request as well.
//
// # Errors
//
// Every error response has a JSON body {"code": "...", "message": "..."}.
// The codes are stable; the messages are for people and may change. For the
// 4xx codes other than unauthenticated the message is the engine's or the
// decoder's explanation, which is safe to show; a 500 or 503 never reveals
// the underlying error, which is logged instead.
//
//	Status  Code                    When
//	400     bad_request             malformed body, or the engine refused the request's values
//	                                (an error implementing BadRequest() bool that returns true,
//	                                ErrTableNotRegistered, ErrInvalidOperation), or PostgreSQL
//	                                refused a text value of the request (SQLSTATE 22021, a NUL)
//	401     unauthenticated         Config.UserID failed or returned an empty id
//	404     not_found               no endpoint at this path
//	404     client_not_registered   synchro.ErrClientNotRegistered: register the client first
//	405     method_not_allowed      wrong method; the Allow header lists the right ones
//	409     schema_mismatch         synchro.ErrSchemaMismatch; the body adds the server's
//	                                "schema_version" and "schema_hash"
//	409     stale_client            synchro.ErrStaleClient: Hooks.OnStaleClient refused the client;
//	                                it should snapshot again
//	409     snapshot_required       synchro.ErrSnapshotRequired; the engine normally reports this
//	                                in the pull response (snapshot_required) instead
//	413     body_too_large          the body is longer than Config.MaxBodyBytes
//	415     unsupported_media_type  the Content-Type is not JSON
//	426     upgrade_required        synchro.ErrUpgradeRequired: the app version is below
//	                                synchro.Config.MinClientVersion (no Upgrade header is sent)
//	499     canceled                the client went away; it never normally sees this
//	500     internal                anything else; logged with Logger.ErrorContext
//	503     unavailable             a transient database failure; retry after the Retry-After
//	                                header's seconds (Config.RetryAfter)
//
// When one error matches several rows, the first in this order wins:
// canceled, schema_mismatch, client_not_registered, upgrade_required,
// stale_client, snapshot_required, bad_request, unavailable, internal.
// The 400 for SQLSTATE 22021 has a fixed message: PostgreSQL's is not sent.
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
// # Logging
//
// Requests that fail with 500 are logged at Error with the error, 503 at
// Warn, every other failure at Debug. Successes are not logged.
package synchrohttp
