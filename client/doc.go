// Package client is an offline-first client of a synchro server: it keeps
// a local SQLite file in sync with the rows of the user's buckets, and the
// application reads and writes that file with plain SQL.
//
// # Overview
//
// [Open] opens (or creates) the file; [Client.Sync] makes one round of
// sync and [Client.Run] keeps syncing in the background. The first round
// reads the server's schema contract (GET /sync/schema), creates the
// synced tables from it, registers the client and fills the tables from a
// snapshot. From then on the application uses [Client.DB] as any
// database/sql database: its INSERT, UPDATE and DELETE on the synced
// tables are captured by triggers into a durable queue (the outbox) and
// pushed; the server's changes are pulled and applied, without being
// captured back. SQLite comes from modernc.org/sqlite (no cgo). The wire
// is the server's documented HTTP API (package synchrohttp), the same one
// the Swift, Kotlin and React Native SDKs speak.
//
// A complete program that syncs a table:
//
//	package main
//
//	import (
//		"context"
//		"fmt"
//		"log"
//		"os"
//
//		"github.com/synchrosync/synchro/client"
//	)
//
//	func main() {
//		ctx := context.Background()
//		c, err := client.Open(ctx, client.Config{
//			ServerURL:  "https://todo.example.com", // where synchrohttp serves /sync/
//			Path:       "todo.db",
//			Token:      func(context.Context) (string, error) { return os.Getenv("TODO_TOKEN"), nil },
//			AppVersion: "1.0.0",
//		})
//		if err != nil {
//			log.Fatal(err)
//		}
//		defer c.Close()
//		if err := c.Sync(ctx); err != nil { // creates the tables, takes the snapshot
//			log.Fatal(err)
//		}
//		// Plain SQL on the synced table: the triggers queue the change.
//		if _, err := c.DB().ExecContext(ctx, `UPDATE items SET done = 1 WHERE title = 'milk'`); err != nil {
//			log.Fatal(err)
//		}
//		if err := c.Sync(ctx); err != nil { // pushes it, pulls the others' changes
//			log.Fatal(err)
//		}
//		var open int
//		if err := c.DB().QueryRowContext(ctx, `SELECT count(*) FROM items WHERE done = 0`).Scan(&open); err != nil {
//			log.Fatal(err)
//		}
//		fmt.Println(open, "items left") // a long-running app runs go c.Run(ctx) instead of Syncs
//	}
//
// A long-running application calls Run in a goroutine of its own instead:
// it keeps the file in sync, pushing local writes at once and receiving
// the server's changes as they happen.
//
// # Local tables
//
// Each table of the contract becomes a table of the same name, with the
// contract's columns in SQLite's types (int, int64 and boolean INTEGER,
// float REAL, bytes BLOB, everything else TEXT), its primary key (one
// column), NOT NULL where the server has it (except for columns whose
// default only the server computes) and the contract's
// sqlite_default_sql defaults, so rows made on the device carry what the
// server would give them. Values read from the server are stored as:
// booleans 1 and 0, json and arrays as their JSON text, bytea as a BLOB
// (decoded from the server's "\x..." hex), timestamps as RFC 3339 text in
// UTC with six fraction digits (2026-12-02T04:20:23.123456Z, so that text
// order is time order), numerics as REAL. A push sends them back in the
// forms the server takes (booleans as JSON booleans, json columns as the
// JSON they hold, blobs in base64).
//
// Write uuid keys in lower case (Go's uuid packages print them so): the
// server keeps a uuid in lower case and delivers it so, and a key the
// application wrote in upper case stays a second local row beside the
// server's copy. (Rewriting keys locally was tried and left out: the
// references of child rows and the application's own triggers would not
// follow.)
//
// The contract does not carry the server's foreign keys, and snapshot pages
// come in table order, not in dependency order, so the synced tables get
// no foreign keys. Every page the client writes is one transaction with
// foreign keys deferred (PRAGMA defer_foreign_keys), so an application
// table that refers to a synced one sees only whole pages; give such
// references ON DELETE CASCADE or SET NULL, since rows leave the synced
// tables when they leave the user's buckets.
//
// The application may add its own indexes (and views) on the synced
// tables. A rebuild (see "Schema changes") drops and creates the tables
// again, and their indexes with them: create them again on an
// EventSchemaChanged whose Reason is "rebuilt". Columns are the contract's:
// do not alter the synced tables.
//
// Beside the synced tables the file holds the client's bookkeeping, in
// tables named _synchro_...: the state (client id, contract, checkpoint, a
// snapshot under way), the outbox, the rejections, and for each synced
// table a base table keeping the server's row of each record with a
// pending change. They are the client's: read them if useful, never write
// them. The triggers on the synced tables are named _synchro_... too;
// Open makes them again, so that a file written by an earlier version of
// the client captures writes as this version does.
//
// [Client.DB] is a pool in WAL mode whose transactions begin IMMEDIATE:
// writers wait for one another (busy timeout ten seconds) rather than fail
// on SQLITE_BUSY, and readers never wait. The file uses synchronous=NORMAL:
// an application crash loses nothing committed; a power loss may lose the
// latest commits, atomically (a row and its outbox entry together).
//
// # Local writes
//
// The triggers queue, per record, one outbox entry:
//
//   - INSERT queues a create;
//   - UPDATE that changes a value queues an update made on the row's
//     updated-at (its base version, sent as base_updated_at);
//   - UPDATE that sets the deleted-at column deletes the row (the SDKs'
//     soft delete), which queues a delete;
//   - UPDATE of the primary key queues a delete of the old key and a
//     create of the new one;
//   - DELETE queues a delete.
//
// INSERT OR REPLACE (and REPLACE) of a row the server has is not an
// update: SQLite removes the old row without firing delete triggers
// (recursive_triggers is off, and turning it on would make the
// application's own triggers that update their table fire themselves), so
// it queues a create, which the server answers record_exists and the
// server's row comes back. Save a row with UPDATE, or with INSERT ... ON
// CONFLICT (id) DO UPDATE, which fires the update trigger.
//
// Changes of one record coalesce: a create then updates stays one create;
// updates keep the base of the first; a create deleted before any push
// sent it is forgotten; a delete followed by an INSERT of the same key is
// an update of the server's row (or a create when the server has none). A
// delete that a push already sent may have been applied, its answer lost
// or not yet back: an INSERT after it is a create, which brings back the
// row the server deleted (and is sent again as an update when the server
// answers that it still has the row).
// A push sends each entry's whole current row, every column of the
// contract, as the SDKs do, with client_updated_at the time of the latest
// change (RFC 3339, milliseconds, UTC) and base_updated_at the version the
// changes were made on, so the server's last-write-wins compares edit
// times (see "Versions and last write wins" in package synchrohttp).
// Entries go in the order of their records' first change, at most
// Config.PushBatch a push, except that the pending create of a row's
// parent (the contract's parent_table and parent_fk_col) goes in the same
// push before it, even when the children were written first (the server
// refuses a child without its parent for now, parent_not_found).
//
// Tables the server takes no pushes to (push_policy "disabled") refuse
// local writes with an SQLite error. Writes the client makes for the
// server are not captured: a flag in _synchro_control, which the triggers'
// WHEN clauses test, is set and reset inside the client's own transactions,
// so no other connection ever sees it set.
//
// # The sync round
//
// [Client.Sync] makes one round:
//
//  1. Once per Client, and again when the server no longer knows it: read
//     the contract (moving the local tables to it when it changed, see
//     "Schema changes"), then register.
//  2. When the file has no snapshot yet, or a snapshot is under way or
//     needed: page through a snapshot. Each page and its cursor are one
//     transaction, so a snapshot cut short (a crash, Close, a lost
//     connection) resumes at its next page; a cursor the server no longer
//     takes starts it again. Rows with pending local changes are kept.
//  3. Push the outbox in batches until it is empty.
//  4. Pull until the server has nothing more: each page with its
//     checkpoint in one transaction, changes as upserts, deletes as
//     deletes. A pull that answers snapshot_required starts a snapshot
//     (whatever the reason: the client keeps its pending changes across
//     it, so there is nothing to ask the application), then pushes and
//     pulls again.
//
// A record with a pending local change is not overwritten by what the
// server sends: the server's row goes to the record's base row, and the
// local change keeps the row until the server settles it.
//
// [Client.Run] repeats rounds until its context ends. Between rounds it
// sends a pull that asks the server to wait for a change
// (POST /sync/pull?wait=S, Config.PullWait); a server without live sync
// answers at once and Run then pulls every Config.PollInterval. A local
// write cuts the wait short (Run checks every Config.ChangeCheck), so it is
// pushed at once. A failed round is tried again after a backoff
// (Config.MinBackoff doubling to Config.MaxBackoff, with jitter) or after
// the server's Retry-After.
//
// # Status and events
//
// [Client.Status] tells what the client does: idle, syncing, offline (the
// server could not be reached, or answered 429, 502, 503 or 504), error
// (anything else: the round's error is in Status.Err, and Run retries), or
// closed. Config.OnEvent receives [Event]s: state changes, conflicts,
// rejections, changes received (by table, for refreshing views),
// snapshots and schema changes. It is called without the client's locks
// held, and may call its methods, but not Close (which waits for the call
// that delivers the event).
//
// # Conflicts and rejections
//
// No local change is dropped without a trace. Each ends in one of:
//
//   - accepted: the server applied it; the row takes the server's version
//     as its updated-at, the entry leaves the outbox. A push whose answer
//     was lost is sent again; the server's answer to the repeat is
//     recognised as the echo of the first (a conflict whose server row is
//     the row sent; a create the server already has, sent again as an
//     update; a delete of a row already gone), so it is neither applied
//     twice nor reported as a conflict.
//   - a conflict the server won (status "conflict"): the server's row
//     replaces the local one (or deletes it), and the change is reported
//     (EventConflict) and kept in the rejections with the server's row.
//   - refused for good (status "rejected_terminal", such as invalid_data, a
//     constraint, ownership_violation): the row goes back to the server's
//     (its base row; deleted when the server has none), and the change is
//     reported (EventRejected) and kept in the rejections.
//   - refused for now (status "rejected_retryable", such as
//     parent_not_found or a transient database failure): it stays queued
//     and is pushed again after a backoff. A create answered
//     parent_not_found three times whose parent row is neither local nor
//     pending is given up as a rejection (ReasonParentMissing): its parent
//     was deleted before it was pushed, or refused.
//
// [Client.Rejections] lists the rejections with the row that was sent,
// [Client.DeleteRejections] removes them once the application has dealt
// with them, and [Client.Pending] lists the outbox. A change made while
// its push was under way stays queued as the newer change: the answer
// settles only what was sent.
//
// A stale_client answer (the server's Hooks.OnStaleClient refused the
// client) keeps the changes queued: the pull that follows asks for a
// snapshot, which keeps them, and the next round pushes them.
//
// # Schema changes
//
// When the server's contract changes (a 409 schema_mismatch, or a new
// contract at registration), the client moves its tables to it:
//
//   - In place, keeping every row and pending change, when the change
//     only adds columns that SQLite can add with their definition (ALTER
//     TABLE ADD COLUMN: nullable, or with a constant default) and whose
//     default is not one only the server computes, or changes nothing
//     the local tables hold (a push policy, dependencies). The
//     server may have delivered rows under its previous contract for a few
//     seconds after its change (the engine re-reads its catalog every few
//     seconds), without the new columns; the client therefore pulls again
//     from the checkpoint it held a minute before (pulls are idempotent),
//     and a snapshot under way starts again. A file that has no checkpoint
//     that old is rebuilt instead.
//   - Otherwise (a table added or removed, a column removed or retyped, a
//     new column SQLite cannot add in place, a new column whose default
//     only the server computes, such as gen_random_uuid(), which the
//     server gave every existing row, a key, a timestamp column or the
//     bucketing changed) the tables are rebuilt empty from the new
//     contract and refilled by a snapshot. Pending changes are kept when
//     they still fit: their rows are copied into the new tables (columns
//     that are gone are left behind, new ones take their defaults, values
//     are converted to the new types) and pushed after the snapshot;
//     pending deletes stay. A change whose table is gone, whose key column
//     changed, or whose row the new table refuses (a new NOT NULL column
//     without a default) leaves the outbox as a rejection with reason
//     ReasonSchemaChanged, its row kept in the rejection. Rejections and
//     the client id are kept; everything else comes from the snapshot.
//
// # Seed files
//
// Package github.com/synchrosync/synchro/client/seed writes, on the
// server, a file holding a user's snapshot; a client opened on it (Path
// naming the file, ClientID empty) starts without a snapshot and pulls
// only what changed since. A seed is for one installation.
//
// # Transport and identity
//
// Every request carries "Authorization: Bearer <token>" from Config.Token
// (called per request), X-App-Version from Config.AppVersion, and JSON
// bodies. Config.HTTPClient may carry the application's transport (proxies,
// TLS, instrumentation). Each request is bounded by Config.RequestTimeout
// (plus the wait of a waiting pull) and by the caller's context. A 426
// answer matches [ErrUpgradeRequired]; every error status is a
// [*ServerError] with the server's code and Retry-After. The client id is
// stored in the file at its first Open (a random UUID unless
// Config.ClientID gives one).
//
// # Concurrency
//
// A Client's methods are safe for concurrent use. Rounds take turns (a
// Sync during Run waits for Run's round, never for its waiting pull). One
// Client at a time may use a file.
package client
