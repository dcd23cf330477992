package wal

import (
	"context"
	"database/sql"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/synchrosync/synchro"
	"github.com/synchrosync/synchro/internal/pgtest"
	"github.com/synchrosync/synchro/internal/store"
)

// This file tests the wait of a session, before it records the rows of
// tables added to the publication, for the transactions writing them
// (awaitWriters); TestE2ETableAddedDuringAWrite is the plain case.

// TestE2ETableAddedDuringAWrite: a transaction writes to other before a
// consumer adds other to the publication (ALTER PUBLICATION ... ADD TABLE
// waits for no writer of the table) and commits later. Its change is
// decoded with the catalog as of the change, when other was not published,
// so the stream never brings it: the backfill must wait for the writer to
// end, or, reading the table before it commits, it records no bucket for
// the row and writes no create (found by a review: o7 was in no bucket).
func TestE2ETableAddedDuringAWrite(t *testing.T) {
	t.Parallel()
	addedDuringAWrite(t, otherSchema, "other", `INSERT INTO other (id, user_id) VALUES ('o7', 'pete')`, "o7")
}

// TestE2EPartitionedTableAddedDuringAWrite: the same for a partitioned
// table whose writer inserted into a partition directly, which locks the
// partition, not the partitioned table: the wait must watch the partitions
// too.
func TestE2EPartitionedTableAddedDuringAWrite(t *testing.T) {
	t.Parallel()
	addedDuringAWrite(t, `CREATE TABLE parted (id text PRIMARY KEY, user_id text, name text,
	updated_at timestamptz NOT NULL DEFAULT now(), deleted_at timestamptz) PARTITION BY LIST (id);
CREATE TABLE parted_a PARTITION OF parted FOR VALUES IN ('a1');`,
		"parted", `INSERT INTO parted_a (id, user_id) VALUES ('a1', 'pete')`, "a1")
}

// addedDuringAWrite runs a consumer on a database with setup, with table
// not registered; then, while a transaction that ran write (a row of id
// for pete) is open, registers table (owned by user_id) with a new
// consumer, lets the session add it to the publication and begin to
// record its rows (or wait for the writer), commits the writer, and
// expects the row in pete's bucket, with its create.
func addedDuringAWrite(t *testing.T, setup, table, write, id string) {
	e := e2eNew(t, setup, nil)
	e.run() // table is not registered
	e.halt()
	ctx := t.Context()
	w, err := e.db.Super.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = w.Rollback() }()
	if _, err := w.ExecContext(ctx, write); err != nil {
		t.Fatal(err)
	}
	reg := ctRegistry()
	reg.Register(&synchro.TableConfig{TableName: table, OwnerColumn: "user_id"})
	e.cfg.Registry = reg
	r := e.launch(newTestConsumer(t, e.cfg))
	await(r, "the consumer to add "+table+" to the publication", &r.c.signals.tablesAdded)
	// The session waits for the writer; without that wait it would record
	// the rows now, before the commit.
	pgtest.WaitFor(t, "the backfill, or its wait for the writer", e2eTimeout, func() (bool, string) {
		if _, ok := r.c.signals.backfilled.received(); ok {
			return true, "backfilled"
		}
		_, ok := r.c.signals.writersAwaited.received()
		return ok, ""
	})
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	r.waitStreaming()
	ctEqual(t, "edges of "+id, e.edges(table, id), "user:pete")
	ctEqual(t, "changelog", e.sync(), "user:pete "+table+" "+id+" create")
}

// otherRegistry is ctRegistry with table other (otherSchema), owned.
func otherRegistry() *synchro.Registry {
	reg := ctRegistry()
	reg.Register(&synchro.TableConfig{TableName: "other", OwnerColumn: "user_id"})
	return reg
}

// TestE2ETableAddedDuringAPreparedWrite: TestE2ETableAddedDuringAWrite
// with a writer that prepared its transaction (two-phase commit) before
// the consumer added other to the publication, and commits it later. A
// prepared transaction keeps its relation locks (pg_locks: pid NULL) and
// holds no lock on its virtual id, so it is waited for until it holds no
// lock at all (a review: with l.pid <> pg_backend_pid(), NULL, it was not
// waited for, and o8 was in no bucket).
func TestE2ETableAddedDuringAPreparedWrite(t *testing.T) {
	srv := pgtest.NewDedicatedServer(t) // max_prepared_transactions needs a restart
	first := srv.NewDatabase(t)
	pgtest.Exec(t, first.Super, `ALTER SYSTEM SET max_prepared_transactions = 5`)
	srv.Restart(t)
	e := e2eNewOn(t, srv.NewMigratedDatabase(t), otherSchema, nil)
	e.run() // other is not registered
	e.halt()

	pgtest.Exec(t, e.db.Super, `BEGIN; INSERT INTO other (id, user_id) VALUES ('o8', 'pete'); PREPARE TRANSACTION 'w8'`)
	t.Cleanup(func() { _, _ = e.db.Super.Exec(`ROLLBACK PREPARED 'w8'`) })
	var vt string
	pgtest.QueryRow(t, e.db.Super, `SELECT virtualtransaction || ' pid=' || coalesce(pid::text, 'NULL') || ' ' || mode FROM pg_locks
 WHERE locktype = 'relation' AND relation = 'other'::regclass`).Scan(&vt)
	t.Logf("the prepared transaction's lock on other: %s", vt)

	e.cfg.Registry = otherRegistry()
	r := e.launch(newTestConsumer(t, e.cfg))
	await(r, "the consumer to add other to the publication", &r.c.signals.tablesAdded)
	pgtest.WaitFor(t, "the backfill, or its wait for the writer", e2eTimeout, func() (bool, string) {
		if _, ok := r.c.signals.backfilled.received(); ok {
			return true, "backfilled"
		}
		_, ok := r.c.signals.writersAwaited.received()
		return ok, ""
	})
	pgtest.Exec(t, e.db.Super, `COMMIT PREPARED 'w8'`)
	r.waitStreaming()
	ctEqual(t, "edges of o8", e.edges("other", "o8"), "user:pete")
	ctEqual(t, "changelog", e.sync(), "user:pete other o8 create")
}

// TestE2EAwaitWritersIgnoresOtherDatabases: pg_locks lists the locks of
// the whole cluster, and relation OIDs are per database: a database made
// from another (CREATE DATABASE ... TEMPLATE, a common way to make staging
// or test copies) has the same OIDs. A writer of the copy's other, which
// has nothing to do with this consumer, held the consumer's session (and
// with it the capture of every table) for as long as it ran (a review).
func TestE2EAwaitWritersIgnoresOtherDatabases(t *testing.T) {
	t.Parallel()
	e := e2eNew(t, otherSchema, nil)
	e.run() // other is not registered; the slot exists before the copy's writer begins
	e.halt()
	// A copy of the database: no one may be connected to it meanwhile.
	e.db.Super.SetMaxIdleConns(0)
	admin, err := sql.Open("pgx", dsnOf(t, e.db.DSN, "postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = admin.Close() }()
	copyName := e.db.Name + "_copy"
	pgtest.Exec(t, admin, `CREATE DATABASE "`+copyName+`" TEMPLATE "`+e.db.Name+`"`)
	e.db.Super.SetMaxIdleConns(2)
	copyDB, err := sql.Open("pgx", dsnOf(t, e.db.DSN, copyName))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = copyDB.Close()
		_, _ = admin.Exec(`DROP DATABASE IF EXISTS "` + copyName + `" WITH (FORCE)`)
	})
	var same bool
	pgtest.QueryRow(t, copyDB, `SELECT 'other'::regclass::oid = $1::oid`, relOID(t, e.db.Super, "other")).Scan(&same)
	if !same {
		t.Fatal("the copy's other has another OID")
	}
	w, err := copyDB.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = w.Rollback() }()
	if _, err := w.Exec(`INSERT INTO other (id, user_id) VALUES ('c1', 'zoe')`); err != nil {
		t.Fatal(err)
	}

	e.cfg.Registry = otherRegistry()
	r := e.launch(newTestConsumer(t, e.cfg))
	await(r, "the consumer to add other to the publication", &r.c.signals.tablesAdded)
	waited := false
	pgtest.WaitFor(t, "the backfill of other (the writer of the copy still runs)", 5*time.Second, func() (bool, string) {
		if _, ok := r.c.signals.writersAwaited.received(); ok {
			waited = true
		}
		_, ok := r.c.signals.backfilled.received()
		return ok, ""
	})
	if waited {
		t.Error("the consumer waited for a transaction of another database")
	}
}

// TestE2EWaitOutlastsWalSenderTimeout: while awaitWriters waits, the
// replication connection, already streaming, is neither read nor answered:
// after wal_sender_timeout (60 s by default; 1 s here) the server ended
// it, and the session, once the writer ended and the backfill was
// written, failed on its first read and was retried (a Warn, the backoff;
// a review). The session now answers the server meanwhile (keepalive). A
// writer that outlasts the timeout is an ordinary long transaction (a
// batch job, a migration), and a long backfill did the same.
func TestE2EWaitOutlastsWalSenderTimeout(t *testing.T) {
	t.Parallel()
	e := e2eNew(t, otherSchema, nil)
	u, err := url.Parse(e.db.DSN)
	if err != nil {
		t.Fatal(err)
	}
	u.RawQuery += "&options=-c%20wal_sender_timeout%3D1s"
	e.cfg.ConnString = u.String()
	e.run()
	e.halt()
	w, err := e.db.Super.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = w.Rollback() }()
	if _, err := w.Exec(`INSERT INTO other (id, user_id) VALUES ('o9', 'pete')`); err != nil {
		t.Fatal(err)
	}
	e.cfg.Registry = otherRegistry()
	r := e.launch(newTestConsumer(t, e.cfg))
	await(r, "the wait for the writer", &r.c.signals.writersAwaited)
	time.Sleep(3 * time.Second) // the writer runs on
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	r.waitStreaming()
	ctEqual(t, "changelog", e.sync(), "user:pete other o9 create")
	if errs := r.c.signals.reconnecting.drain(); len(errs) != 0 {
		t.Errorf("the session failed after the wait and was retried: %v", errs)
	}
}

// dsnOf is dsn for database dbname.
func dsnOf(t *testing.T, dsn, dbname string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + dbname
	return u.String()
}

// relOID returns the OID of relation name.
func relOID(t *testing.T, db *sql.DB, name string) string {
	var oid string
	pgtest.QueryRow(t, db, `SELECT $1::regclass::oid::text`, name).Scan(&oid)
	return oid
}

// TestE2EPartitionedTable: a registered partitioned table's rows are in its
// partitions, whose changes the server published under the partitions'
// names, which the consumer skipped: nothing of the table was captured
// (found by a review). The publication the consumer creates publishes them
// as the root's; an existing one that does not is refused at Start, with
// the statement that fixes it.
func TestE2EPartitionedTable(t *testing.T) {
	t.Parallel()
	const schema = `CREATE TABLE parted (id text PRIMARY KEY, user_id text, name text,
	updated_at timestamptz NOT NULL DEFAULT now(), deleted_at timestamptz) PARTITION BY LIST (id);
CREATE TABLE parted_a PARTITION OF parted FOR VALUES IN ('a1', 'a2');
CREATE TABLE parted_b PARTITION OF parted FOR VALUES IN ('b1');
INSERT INTO parted (id, user_id) VALUES ('a2', 'olga');`
	reg := ctRegistry()
	reg.Register(&synchro.TableConfig{TableName: "parted", OwnerColumn: "user_id"})

	e := e2eNew(t, schema, reg)
	e.run()
	ctEqual(t, "edges of a row that existed", e.edges("parted", "a2"), "user:olga")
	ctEqual(t, "insert into the partitioned table", e.step(`INSERT INTO parted (id, user_id) VALUES ('a1', 'pete')`), "user:pete parted a1 create")
	ctEqual(t, "move", e.step(`UPDATE parted SET user_id = 'quin' WHERE id = 'a1'`), "user:pete parted a1 delete", "user:quin parted a1 create")
	ctEqual(t, "insert into a partition", e.step(`INSERT INTO parted_b (id, user_id) VALUES ('b1', 'pete')`), "user:pete parted b1 create")
	ctEqual(t, "edges of b1", e.edges("parted", "b1"), "user:pete")

	other := e2eNew(t, schema+`CREATE PUBLICATION pub FOR TABLE parted;`, reg)
	err := startOnce(t, other.cfg)
	if err == nil || !strings.Contains(err.Error(), "publish_via_partition_root") {
		t.Fatalf("Start with a publication that publishes partitions under their own names: %v", err)
	}
}

// TestE2EBackfillAfterTakeoverForgot: a session of a version that registers
// other backfills it, held up (here by a lock on the edges), while its
// replication connection is lost and a standby of a version without other
// takes the slot and forgets other. The first session's backfill must not
// record other after that: the standby skips its changes, and the next
// session registering other would then not record it again (found by a
// review: o1's delete meanwhile never reached pete). The forget waits for
// a backfill in progress (the slot's changelog lock), and a backfill
// commits only while its session still streams the slot.
func TestE2EBackfillAfterTakeoverForgot(t *testing.T) {
	t.Parallel()
	e := e2eNew(t, otherSchema, otherRegistry())
	e.run()
	ctEqual(t, "insert", e.step(`INSERT INTO other (id, user_id) VALUES ('o1', 'pete')`), "user:pete other o1 create")
	e.halt()
	e.cfg.Registry = ctRegistry() // rolled back: other forgotten
	e.run()
	e.halt()

	lock := holdTx(t, e.db.Super, `LOCK TABLE synchro.bucket_edges IN ACCESS EXCLUSIVE MODE`)
	withOther := e.cfg
	withOther.Registry = otherRegistry()
	a := startConsumer(t, withOther)
	pgtest.WaitFor(t, "the backfill to wait for the edges", e2eTimeout, func() (bool, string) {
		n := pgtest.Count(t, e.db.Super, `SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation WHERE NOT l.granted AND c.relname = 'bucket_edges'`)
		return n > 0, ""
	})
	pgtest.Exec(t, e.db.Super, `SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = $1`, e.cfg.SlotName)

	e.cfg.Registry = ctRegistry() // a standby of the rolled-back version takes over
	b := e.launch(newTestConsumer(t, e.cfg))
	pgtest.WaitFor(t, "the rolled-back version to take the slot", e2eTimeout, func() (bool, string) {
		n := pgtest.Count(t, e.db.Super, `SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1 AND active`, e.cfg.SlotName)
		return n > 0, ""
	})
	time.Sleep(200 * time.Millisecond) // its session goes on to forget other
	if err := lock.Rollback(); err != nil {
		t.Fatal(err)
	}
	b.waitStreaming()
	pgtest.WaitFor(t, "the first session's backfill to commit or fail", e2eTimeout, func() (bool, string) {
		_, backfilled := a.c.signals.backfilled.received()
		st := a.c.Status()
		return backfilled || st.Failures > 0 || st.State == ConsumerStandby, fmt.Sprintf("%+v", st)
	})
	_ = a.stop()
	e.sync()
	ctEqual(t, "delete while other is not registered", e.step(`DELETE FROM other WHERE id = 'o1'`))
	e.halt()

	e.cfg.Registry = otherRegistry()
	e.run()
	ctEqual(t, "registered again", e.sync(), "user:pete other o1 delete")
	ctEqual(t, "edges of o1", e.edges("other", "o1"))
}

// TestE2EOtherSlotOfTheTablesWarned: a second slot recording the same
// tables (a slot renamed in the configuration, the old one left behind)
// is named at Warn by the sessions of each; a slot dropped is not.
func TestE2EOtherSlotOfTheTablesWarned(t *testing.T) {
	t.Parallel()
	e := e2eNew(t, "", nil)
	e.run()
	e.halt()
	old := e.cfg.SlotName
	e.cfg.SlotName = old + "_new"
	e.run()
	warned := func(other string) bool {
		for _, m := range e.logs.all() {
			if strings.HasPrefix(m, "WARN wal: another replication slot recorded the same tables") &&
				strings.Contains(m, "other_slot="+other+" ") && strings.Contains(m, "tables=categories, items, lists") {
				return true
			}
		}
		return false
	}
	if !warned(old) {
		t.Errorf("the session of %s did not name the slot %s it shares the tables with:\n%s", e.cfg.SlotName, old, strings.Join(e.logs.all(), "\n"))
	}
	e.halt()
	pgtest.Exec(t, e.db.Super, `SELECT pg_drop_replication_slot($1)`, old)
	before := len(e.logs.all())
	e.run()
	for _, m := range e.logs.all()[before:] {
		if strings.Contains(m, "another replication slot") {
			t.Errorf("warned of a dropped slot: %s", m)
		}
	}
}

// keyRewritingProxy proxies the server of dsn byte for byte but for the
// BackendKeyData message, whose process id it changes, as a pooler in
// session mode hands out its own; it returns the proxied DSN.
func keyRewritingProxy(t *testing.T, dsn string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	target := u.Host
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				_ = c.Close()
				continue
			}
			go func() { _, _ = io.Copy(s, c); _ = s.Close() }()
			go func() {
				defer func() { _ = c.Close(); _ = s.Close() }()
				hdr := make([]byte, 5)
				for {
					if _, err := io.ReadFull(s, hdr); err != nil {
						return
					}
					body := make([]byte, binary.BigEndian.Uint32(hdr[1:])-4)
					if _, err := io.ReadFull(s, body); err != nil {
						return
					}
					if hdr[0] == 'K' && len(body) >= 4 {
						binary.BigEndian.PutUint32(body, binary.BigEndian.Uint32(body)^0x5a5a5a)
					}
					if _, err := c.Write(append(hdr, body...)); err != nil {
						return
					}
				}
			}()
		}
	}()
	u.Host = ln.Addr().String()
	q := u.Query()
	q.Set("sslmode", "disable")
	u.RawQuery = q.Encode()
	return u.String()
}

// TestE2EAddedTableBehindAPooler: the backfill of an added table commits
// while the slot's walsender is the session's, known from the server, not
// from the process id the connection was given: behind a pooler, which
// gives its own, every such backfill was refused and capture stood by for
// good (found by a review).
func TestE2EAddedTableBehindAPooler(t *testing.T) {
	t.Parallel()
	e := e2eNew(t, otherSchema, nil)
	e.cfg.ConnString = keyRewritingProxy(t, e.db.DSN)
	e.run() // other is not registered
	ctEqual(t, "a change through the proxy", e.step(`INSERT INTO lists (id, user_id) VALUES ('l1', 'alice')`), "user:alice lists l1 create")
	e.halt()
	pgtest.Exec(t, e.db.Super, `INSERT INTO other (id, user_id) VALUES ('o1', 'pete')`)
	e.cfg.Registry = otherRegistry()
	r := e.launch(newTestConsumer(t, e.cfg))
	pgtest.WaitFor(t, "the consumer to stream", e2eTimeout, func() (bool, string) {
		_, ok := r.c.signals.streaming.received()
		return ok, fmt.Sprintf("%+v", r.c.Status())
	})
	ctEqual(t, "edges of o1", e.edges("other", "o1"), "user:pete")
}

// TestE2ERepublishedParentBesideAReplayAndAMigration: the backfill of a
// parent table added again takes the slot's changelog lock before its
// connection holds any table. It locked the child tables first: a replay
// of rule failures holding the changelog lock and reading items queued
// behind a migration of items, which queued behind the backfill's lock of
// items, while the backfill waited, in the engine, for the changelog lock:
// all three hung, unseen by PostgreSQL (found by a review).
func TestE2ERepublishedParentBesideAReplayAndAMigration(t *testing.T) {
	t.Parallel()
	e := e2eNew(t, "", nil)
	db := e.db.Super
	e.listsMovedUnpublished(true)
	// A failure of items pending replay: the replay reads items.
	pgtest.Exec(t, db, store.InsertRuleFailures, []string{"items"}, []string{"i1"}, []int16{int16(synchro.OpUpdate)}, []string{"test"}, []string{""}, []int16{0}, []int64{0})

	// A writer of lists from before the session adds it back holds the
	// session after it read its recorded tables (awaitWriters).
	writer := holdTx(t, db, `INSERT INTO lists (id, user_id) VALUES ('l2', 'carol')`)
	r := e.launch(newTestConsumer(t, e.cfg))
	await(r, "the session to wait for the writer of lists", &r.c.signals.writersAwaited)

	// The replay takes the changelog lock; a lock on rule_failures holds it
	// there until the migration queued.
	gate := holdTx(t, db, `LOCK TABLE synchro.rule_failures IN ACCESS EXCLUSIVE MODE`)
	replayer, err := NewConsumer(e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	replayed := make(chan error, 1)
	go func() { _, err := replayer.ReplayRuleFailures(context.Background()); replayed <- err }()
	pgtest.WaitFor(t, "the replay to wait for rule_failures", e2eTimeout, func() (bool, string) {
		return pgtest.Count(t, db, `SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = 'synchro.rule_failures'::regclass`) > 0, ""
	})
	if err := writer.Commit(); err != nil {
		t.Fatal(err)
	}
	pgtest.WaitFor(t, "the backfill to wait for the changelog lock", e2eTimeout, func() (bool, string) {
		return advisoryWaits(t, db) > 0, ""
	})

	// A migration of items (ALTER TABLE items ...).
	migrated := migrationOf(t, db, "items")
	if err := gate.Rollback(); err != nil {
		t.Fatal(err)
	}
	migrated("the replay and the backfill")
	if err := <-replayed; err != nil {
		t.Errorf("ReplayRuleFailures: %v", err)
	}
	r.waitStreaming()
	ctEqual(t, "edges of i1", e.edges("items", "i1"), "user:bob")
}

// holdTx begins a transaction on the test database's superuser pool, runs
// stmts in it, and returns it open; it is rolled back at the end of the
// test unless committed.
func holdTx(t *testing.T, db *sql.DB, stmts ...string) *sql.Tx {
	t.Helper()
	tx, err := db.BeginTx(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tx.Rollback() })
	for _, q := range stmts {
		if _, err := tx.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	return tx
}

// migrationOf starts a migration of table (ALTER TABLE: an ACCESS
// EXCLUSIVE lock, lock_timeout 10 s) in the background and waits until it
// holds the lock or waits for it. The function returned waits for the
// lock, reporting a lock timeout as a hang of the migration with others,
// and rolls the migration back.
func migrationOf(t *testing.T, db *sql.DB, table string) func(others string) {
	t.Helper()
	ddl := holdTx(t, db, `SET LOCAL lock_timeout = '10s'`)
	locked := make(chan error, 1)
	go func() {
		_, err := ddl.Exec(`LOCK TABLE ` + table + ` IN ACCESS EXCLUSIVE MODE`)
		locked <- err
	}()
	pgtest.WaitFor(t, "the migration to lock "+table+" or wait for it", e2eTimeout, func() (bool, string) {
		return pgtest.Count(t, db, `SELECT count(*) FROM pg_locks WHERE relation = $1::regclass AND mode = 'AccessExclusiveLock'`, table) > 0, ""
	})
	return func(others string) {
		t.Helper()
		began := time.Now()
		if err := <-locked; err != nil {
			t.Errorf("the migration's lock on %s, after %v: %v (the migration, %s waited for each other)", table, time.Since(began).Round(time.Second), err, others)
		}
		_ = ddl.Rollback()
	}
}

// listsMovedUnpublished captures l1 of alice (with its item i1 when
// withItem), stops the consumer, drops lists from the publication and
// moves l1 to bob: a table that the next session adds back.
func (e *e2eEnv) listsMovedUnpublished(withItem bool) {
	e.t.Helper()
	e.run()
	q := `INSERT INTO lists (id, user_id) VALUES ('l1', 'alice')`
	if withItem {
		q += `; INSERT INTO items (id, list_id, title) VALUES ('i1', 'l1', 'a')`
	}
	e.step(q)
	e.halt()
	pgtest.Exec(e.t, e.db.Super, `ALTER PUBLICATION pub DROP TABLE lists`)
	pgtest.Exec(e.t, e.db.Super, `UPDATE lists SET user_id = 'bob' WHERE id = 'l1'`)
}

// TestE2EReaddedTableBesideAPruneAndAMigration: the backfill of a table
// added again locks the tables it reads before its changelog transaction
// deletes their edges. Read later, other was queued behind a migration of
// other, queued behind a compaction prune of other's edges, which waited
// for the edges the backfill had taken, while the backfill waited, in the
// engine, for the read: all three hung, unseen by PostgreSQL (found by a
// review; older than this session's changes, with ClearTableEdges).
func TestE2EReaddedTableBesideAPruneAndAMigration(t *testing.T) {
	t.Parallel()
	e := e2eNew(t, otherSchema, otherRegistry())
	db := e.db.Super
	e.run()
	e.step(`INSERT INTO other (id, user_id) VALUES ('o1', 'pete')`)
	e.step(`UPDATE other SET deleted_at = now() - interval '1 day' WHERE id = 'o1'`)
	ctEqual(t, "edges of the soft-deleted o1", e.edges("other", "o1"), "user:pete")
	e.halt()
	pgtest.Exec(t, db, `ALTER PUBLICATION pub DROP TABLE shared, other`)

	writer := holdTx(t, db, `INSERT INTO other (id, user_id) VALUES ('o2', 'pete')`)
	r := e.launch(newTestConsumer(t, e.cfg))
	await(r, "the session to wait for the writer of other", &r.c.signals.writersAwaited)
	gate := holdTx(t, db, fmt.Sprintf(`SELECT pg_advisory_xact_lock(%d, hashtext('%s'))`, applyLockKey, e.cfg.SlotName))
	if err := writer.Commit(); err != nil {
		t.Fatal(err)
	}
	pgtest.WaitFor(t, "the backfill to wait for the changelog lock", e2eTimeout, func() (bool, string) {
		return advisoryWaits(t, db) > 0, ""
	})
	slow := holdTx(t, db, `LOCK TABLE shared IN ACCESS EXCLUSIVE MODE`) // holds the backfill's read of shared
	if err := gate.Rollback(); err != nil {
		t.Fatal(err)
	}
	pgtest.WaitFor(t, "the backfill to wait for shared", e2eTimeout, func() (bool, string) {
		return pgtest.Count(t, db, `SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = 'shared'::regclass`) > 0, ""
	})
	pruned := make(chan error, 1) // Engine.pruneStatements' statement for other
	go func() {
		_, err := db.Exec(`DELETE FROM synchro.bucket_edges AS e
 WHERE e.table_name = 'other'
   AND EXISTS (SELECT 1 FROM other AS x WHERE x.id = CAST(e.record_id AS text) AND x.deleted_at < now() - interval '1 hour' OFFSET 0 FOR SHARE SKIP LOCKED)`)
		pruned <- err
	}()
	pgtest.WaitFor(t, "the prune to end or wait", e2eTimeout, func() (bool, string) {
		if len(pruned) > 0 {
			return true, ""
		}
		return pgtest.Count(t, db, `SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'transactionid' AND NOT l.granted AND a.datname = current_database()`) > 0, ""
	})
	migrated := migrationOf(t, db, "other")
	if err := slow.Rollback(); err != nil {
		t.Fatal(err)
	}
	migrated("the prune and the backfill")
	if err := <-pruned; err != nil {
		t.Errorf("prune: %v", err)
	}
	r.waitStreaming()
	ctEqual(t, "edges of o2", e.edges("other", "o2"), "user:pete")
}
