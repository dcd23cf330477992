package wal

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/synchrosync/synchro"
	"github.com/synchrosync/synchro/internal/bucket"
	"github.com/synchrosync/synchro/internal/parentchain"
	"github.com/synchrosync/synchro/internal/pgerr"
	"github.com/synchrosync/synchro/internal/pgident"
	"github.com/synchrosync/synchro/internal/store"
)

// This file prepares a session: the publication, the slot and, for a new
// slot, the record of every existing row's buckets.

// exec runs one statement with parameters on a regular connection.
func exec(ctx context.Context, conn *pgconn.PgConn, sql string, args ...string) ([][][]byte, error) {
	params := make([][]byte, len(args))
	for i, a := range args {
		params[i] = []byte(a)
	}
	res := conn.ExecParams(ctx, sql, params, nil, nil, nil).Read()
	if res.Err != nil {
		return nil, res.Err
	}
	return res.Rows, nil
}

// quotedJSON returns the tables names, each quoted as an identifier
// (schema-qualified when given so), as a JSON array: the parameter the
// setup statements resolve with jsonb_array_elements_text and to_regclass.
func quotedJSON(names []string) string {
	quoted := make([]string, len(names))
	for i, n := range names {
		quoted[i] = pgident.QuoteQualified(n)
	}
	arr, _ := json.Marshal(quoted) // strings always marshal
	return string(arr)
}

// firstColumn returns the text of the first column of each of rows (from
// exec).
func firstColumn(rows [][][]byte) []string {
	out := make([]string, len(rows))
	for i, r := range rows {
		out[i] = string(r[0])
	}
	return out
}

// prepare checks the server, resolves the registered tables and creates the
// publication when it is missing. It returns the decoder's table maps and
// the registered tables an existing publication lacks.
func (c *Consumer) prepare(ctx context.Context, conn *pgconn.PgConn) (map[relKey]string, map[string]string, []string, error) {
	rows, err := exec(ctx, conn, `SELECT current_setting('wal_level')`)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("wal: reading wal_level: %w", err)
	}
	if level := string(rows[0][0]); level != "logical" {
		return nil, nil, nil, fatal("wal: the server runs with wal_level=%s; change capture needs wal_level=logical", level)
	}
	if err := c.checkSetup(ctx, conn); err != nil {
		return nil, nil, nil, err
	}

	names := c.names
	arr := quotedJSON(names)
	rows, err = exec(ctx, conn, `
SELECT q.ord::text, n.nspname, c.relname, c.relkind::text
  FROM jsonb_array_elements_text($1::jsonb) WITH ORDINALITY AS q(name, ord)
  LEFT JOIN pg_class c ON c.oid = to_regclass(q.name)
  LEFT JOIN pg_namespace n ON n.oid = c.relnamespace
 ORDER BY q.ord`, arr)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("wal: resolving the registered tables: %w", err)
	}
	tables := map[relKey]string{}
	pks := map[string]string{}
	var rels, partitioned []string
	for i, r := range rows {
		name := names[i]
		if r[1] == nil {
			return nil, nil, nil, fatal("wal: registered table %q does not exist", name)
		}
		if kind := string(r[3]); kind != "r" && kind != "p" {
			return nil, nil, nil, fatal("wal: registered table %q is not a table (relkind %s)", name, kind)
		}
		if string(r[3]) == "p" {
			partitioned = append(partitioned, name)
		}
		k := relKey{string(r[1]), string(r[2])}
		tables[k] = name
		pks[name] = c.applier.tables[name].IDColumn
		rels = append(rels, pgident.Quote(k.schema)+"."+pgident.Quote(k.name))
	}

	// The publication: created with every registered table when missing.
	// Tables it lacks are added by addTables, once this consumer owns the
	// slot (a consumer still streaming it would skip their changes).
	//
	// A partitioned table's rows are in its partitions, whose changes the
	// server publishes under the partitions' names unless the publication
	// publishes them as the root's (publish_via_partition_root): the
	// consumer, which knows the registered table only, would skip them all.
	pub := c.cfg.PublicationName
	rows, err = exec(ctx, conn, `SELECT puballtables::text, pubviaroot::text FROM pg_publication WHERE pubname = $1`, pub)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("wal: reading publication %s: %w", pub, err)
	}
	if len(rows) > 0 && len(partitioned) > 0 && string(rows[0][1]) != "true" {
		return nil, nil, nil, fatal("wal: publication %s does not publish the changes of partitions as their root's, so those of the partitioned tables %s would be skipped; run ALTER PUBLICATION %s SET (publish_via_partition_root = true)",
			pub, strings.Join(partitioned, ", "), pgident.Quote(pub))
	}
	// The WAL carries a partition's replica identity, the Relation message
	// its root's: REPLICA IDENTITY FULL on a partitioned table alone gives
	// old tuples ('O') whose non-key columns are NULLs, not old values.
	if len(partitioned) > 0 {
		mixed, err := exec(ctx, conn, `
SELECT t.relid::regclass::text
  FROM jsonb_array_elements_text($1::jsonb) AS q, pg_partition_tree(to_regclass(q)) AS t
  JOIN pg_class c ON c.oid = t.relid
 WHERE t.isleaf AND c.relreplident <> (SELECT relreplident FROM pg_class WHERE oid = to_regclass(q))
   AND 'f' IN (c.relreplident, (SELECT relreplident FROM pg_class WHERE oid = to_regclass(q)))
 ORDER BY 1`, arr)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("wal: reading the partitions' replica identity: %w", err)
		}
		if len(mixed) > 0 {
			return nil, nil, nil, fatal("wal: the partitions %s have another replica identity than their partitioned table: the old rows of their changes would be wrong; give them the same (ALTER TABLE ... REPLICA IDENTITY)", strings.Join(firstColumn(mixed), ", "))
		}
	}

	// Under publish_via_partition_root a partition's changes come under
	// the name of its farthest ancestor the publication publishes (any, for
	// FOR ALL TABLES): a registered partition with such an ancestor, or
	// with a registered one (added to the publication), would be skipped,
	// and, never listed by pg_publication_tables, added again and recorded
	// again by every session.
	if len(rows) == 0 || string(rows[0][1]) == "true" {
		hidden, err := exec(ctx, conn, `
SELECT r.name
  FROM jsonb_array_elements_text($1::jsonb) WITH ORDINALITY AS r(name, ord)
 WHERE EXISTS (SELECT 1 FROM pg_partition_ancestors(to_regclass(r.name)) a
                WHERE a.relid <> to_regclass(r.name)
                  AND (a.relid IN (SELECT to_regclass(q) FROM jsonb_array_elements_text($1::jsonb) AS q)
                       OR a.relid IN (SELECT to_regclass(format('%I.%I', t.schemaname, t.tablename))
                                        FROM pg_publication_tables t WHERE t.pubname = $2)))
 ORDER BY r.ord`, arr, pub)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("wal: reading the partitions' ancestors: %w", err)
		}
		if len(hidden) > 0 {
			return nil, nil, nil, fatal("wal: publication %s publishes the changes of the registered partitions %s as an ancestor's (publish_via_partition_root), so they would be skipped; register the partitioned table, or use a publication of this consumer's own",
				pub, strings.Join(firstColumn(hidden), ", "))
		}
	}
	var unpublished []string
	if len(rows) == 0 {
		_, err := exec(ctx, conn, `CREATE PUBLICATION `+pgident.Quote(pub)+` FOR TABLE `+strings.Join(rels, ", ")+` WITH (publish_via_partition_root = true)`)
		if err != nil && pgerr.Code(err) != pgerr.DuplicateObject { // created meanwhile by another consumer
			return nil, nil, nil, fmt.Errorf("wal: creating publication %s: %w", pub, err)
		}
		if err == nil {
			c.cfg.Logger.InfoContext(ctx, "wal: created publication", "publication", pub, "tables", len(rels))
		}
	} else if string(rows[0][0]) != "true" {
		have, err := exec(ctx, conn, `SELECT schemaname, tablename FROM pg_publication_tables WHERE pubname = $1`, pub)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("wal: reading publication %s: %w", pub, err)
		}
		in := map[relKey]bool{}
		for _, r := range have {
			in[relKey{string(r[0]), string(r[1])}] = true
		}
		for k, name := range tables {
			if !in[k] {
				unpublished = append(unpublished, name)
			}
		}
		slices.Sort(unpublished)
	}
	return tables, pks, unpublished, nil
}

// ensureSlot returns the position to stream from: the recorded position
// when the slot exists, or the slot's starting point after creating it and
// recording every existing row's buckets (created is then true).
func (c *Consumer) ensureSlot(ctx context.Context, mgmt, repl *pgconn.PgConn) (start pglogrepl.LSN, created bool, err error) {
	slot := c.cfg.SlotName
	rows, err := exec(ctx, mgmt, `
SELECT s.plugin, d.datname = current_database(), s.slot_type
  FROM pg_replication_slots s LEFT JOIN pg_database d ON d.oid = s.datoid
 WHERE s.slot_name = $1`, slot)
	if err != nil {
		return 0, false, fmt.Errorf("wal: reading slot %s: %w", slot, err)
	}
	var pos int64
	hasPosition := false
	err = c.cfg.ChangelogDB.QueryRowContext(ctx, store.SlotPosition, slot).Scan(&pos)
	recorded := pglogrepl.LSN(pos)
	switch {
	case err == nil:
		hasPosition = true
	case errors.Is(err, sql.ErrNoRows):
	default:
		return 0, false, fmt.Errorf("wal: reading the recorded position of slot %s: %w", slot, err)
	}

	if len(rows) > 0 {
		if plugin := string(rows[0][0]); plugin != "pgoutput" || string(rows[0][2]) != "logical" {
			return 0, false, fatal("wal: slot %s uses plugin %q (%s); it needs a logical pgoutput slot", slot, plugin, rows[0][2])
		}
		if string(rows[0][1]) != "t" {
			return 0, false, fatal("wal: slot %s belongs to another database", slot)
		}
		if hasPosition {
			return recorded, false, nil
		}
		// A slot we never consumed from: the rows' buckets were never
		// recorded, and they cannot be recorded consistently with it.
		c.cfg.Logger.WarnContext(ctx, "wal: slot exists without a recorded position; recreating it", "slot", slot)
		if err := pglogrepl.DropReplicationSlot(ctx, repl, slot, pglogrepl.DropReplicationSlotOptions{}); err != nil {
			if isSlotInUse(err) {
				return 0, false, fmt.Errorf("%w: %v", errSlotInUse, err)
			}
			return 0, false, fmt.Errorf("wal: dropping slot %s: %w", slot, err)
		}
	} else if hasPosition {
		c.cfg.Logger.ErrorContext(ctx, "wal: replication slot was dropped; changes since the recorded position are lost. "+
			"Recreating it, recording every row's buckets again and raising the compaction boundary so every client takes a new snapshot",
			"slot", slot, "recorded_position", recorded)
		c.signals.slotLost.signal(struct{}{})
	}

	res, err := pglogrepl.CreateReplicationSlot(ctx, repl, slot, "pgoutput", pglogrepl.CreateReplicationSlotOptions{
		Mode: pglogrepl.LogicalReplication, SnapshotAction: "EXPORT_SNAPSHOT",
	})
	if err != nil {
		if pgerr.Code(err) == pgerr.DuplicateObject {
			return 0, false, fmt.Errorf("%w: created meanwhile by another consumer", errSlotInUse)
		}
		return 0, false, fmt.Errorf("wal: creating slot %s: %w", slot, err)
	}
	start, err = pglogrepl.ParseLSN(res.ConsistentPoint)
	if err != nil {
		return 0, false, fmt.Errorf("wal: slot %s consistent point %q: %w", slot, res.ConsistentPoint, err)
	}
	if err := c.backfill(ctx, mgmt, res.SnapshotName, c.names, start, hasPosition, 0); err != nil {
		// Without the backfill the slot is useless: drop it so the next
		// attempt starts over.
		_ = pglogrepl.DropReplicationSlot(context.Background(), repl, slot, pglogrepl.DropReplicationSlotOptions{})
		return 0, false, err
	}
	c.cfg.Logger.InfoContext(ctx, "wal: created slot", "slot", slot, "consistent_point", start)
	c.signals.slotCreated.signal(start)
	return start, true, nil
}

// addTables handles registered tables this slot has not recorded yet (a
// table registered after the slot was created or registered again, or
// whose recording was interrupted): it adds those the publication lacks,
// then records their existing rows' buckets and writes a create for each
// row in each of its buckets, so that clients already in sync receive them
// (and, for a table captured before, the deletes of what changed while it
// was not: see backfillTable). It runs once the
// consumer streams the slot, so no change of those tables is skipped in
// between; a change streamed afterwards applies on top.
func (c *Consumer) addTables(ctx context.Context, mgmt *pgconn.PgConn, owner uint32, start pglogrepl.LSN, tables map[relKey]string, unpublished []string) error {
	// A table recorded by an earlier session but not registered in this one
	// (a deploy rolled back, a table no longer synced) has its changes
	// skipped from now on: forgotten here, before any batch is written, it
	// is recorded again, and clients told what changed meanwhile, by the
	// first session that registers it again.
	// A table missing from the publication is forgotten too, before it is
	// added: should its backfill fail, the next session records it still.
	kept := slices.DeleteFunc(slices.Clone(c.names), func(n string) bool { return slices.Contains(unpublished, n) })
	recorded, marks, err := c.applier.recordedTables(ctx, kept)
	if err != nil {
		return fmt.Errorf("wal: reading the recorded tables of slot %s: %w", c.cfg.SlotName, err)
	}
	// Records of tables added while the slot streamed that the stream has
	// not passed yet (a session that stopped right after recording them).
	maps.DeleteFunc(marks, func(_ string, m backfillMark) bool { return m.until <= start })
	c.applier.marks.Store(&marks)
	if err := c.warnOtherSlots(ctx); err != nil {
		return err
	}
	// Tables never recorded, and tables just added to the publication
	// (their changes were not streamed until now), are recorded now.
	var missing []string
	for _, name := range c.names {
		if !recorded[name] {
			missing = append(missing, name)
		}
	}
	if len(unpublished) > 0 {
		var rels []string
		for k, name := range tables {
			if slices.Contains(unpublished, name) {
				rels = append(rels, pgident.Quote(k.schema)+"."+pgident.Quote(k.name))
			}
		}
		slices.Sort(rels)
		pub := c.cfg.PublicationName
		if _, err := exec(ctx, mgmt, `ALTER PUBLICATION `+pgident.Quote(pub)+` ADD TABLE `+strings.Join(rels, ", ")); err != nil {
			if pgerr.Code(err) != pgerr.DuplicateObject { // already a member
				return fmt.Errorf("wal: adding tables to publication %s: %w", pub, err)
			}
		}
		c.cfg.Logger.InfoContext(ctx, "wal: added tables to the publication", "publication", pub, "tables", rels)
		c.signals.tablesAdded.signal(rels)
	}
	if len(missing) == 0 {
		return nil
	}
	if err := c.awaitWriters(ctx, mgmt, missing); err != nil {
		return err
	}
	return c.backfill(ctx, mgmt, "", missing, 0, false, owner)
}

// awaitWriters waits until the transactions that, when it is called, hold
// a lock for writing on any of the tables names have ended. A change made
// before its table joined the publication is decoded as not published,
// whenever its transaction commits, so the stream never brings it; the
// backfill that follows reads the table as it is then, and must see what
// such transactions wrote, or their rows would be in no bucket (found by a
// review: a row inserted before ALTER PUBLICATION ... ADD TABLE and
// committed after the backfill's read was lost). Later writes are decoded
// as published. The writers are those of this database (relation ids are
// per database) of the tables or their partitions, prepared transactions
// included (their locks have no pid); each is waited for until it holds no
// lock any more. The session answers the server meanwhile (keepalive),
// logs at Info after a second and at Warn every 30 s after that: a writer
// that never ends (an idle transaction, a forgotten prepared one) holds up
// capture.
func (c *Consumer) awaitWriters(ctx context.Context, mgmt *pgconn.PgConn, names []string) error {
	arr := quotedJSON(names)
	rows, err := exec(ctx, mgmt, `
SELECT coalesce(array_agg(DISTINCT l.virtualtransaction)::text, '{}')
  FROM pg_locks l
 WHERE l.locktype = 'relation' AND l.granted
   AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
   AND l.pid IS DISTINCT FROM pg_backend_pid() -- a prepared transaction's locks have no pid
   AND l.mode IN ('RowExclusiveLock', 'ShareRowExclusiveLock', 'ExclusiveLock', 'AccessExclusiveLock')
   AND l.relation IN (SELECT to_regclass(q) FROM jsonb_array_elements_text($1::jsonb) AS q
                      UNION ALL -- a partitioned table's partitions (none for a plain table)
                      SELECT p.relid FROM jsonb_array_elements_text($1::jsonb) AS q, pg_partition_tree(to_regclass(q)) AS p)`, arr)
	if err != nil {
		return fmt.Errorf("wal: finding the writers of the added tables: %w", err)
	}
	writers := string(rows[0][0])
	if writers == "{}" {
		return nil
	}
	c.signals.writersAwaited.signal(writers)
	began := time.Now()
	var logged time.Time
	pause := 20 * time.Millisecond
	for {
		rows, err := exec(ctx, mgmt, `SELECT count(*) FROM pg_locks WHERE granted AND virtualtransaction = ANY($1::text[])`, writers)
		if err != nil {
			return fmt.Errorf("wal: waiting for the writers of the added tables: %w", err)
		}
		if string(rows[0][0]) == "0" {
			return nil
		}
		switch waited := time.Since(began); {
		case logged.IsZero() && waited > time.Second:
			logged = time.Now()
			c.cfg.Logger.InfoContext(ctx, "wal: waiting for transactions writing the added tables to end before recording their rows", "tables", names, "transactions", writers)
		case !logged.IsZero() && time.Since(logged) > 30*time.Second:
			logged = time.Now()
			c.cfg.Logger.WarnContext(ctx, "wal: still waiting for transactions writing the added tables; capture waits meanwhile (see pg_locks, pg_prepared_xacts)", "tables", names, "transactions", writers, "waited", waited.Round(time.Second))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(pause):
		}
		pause = min(2*pause, time.Second)
	}
}

// isSlotInUse reports whether err is the server refusing a slot another
// connection streams from.
func isSlotInUse(err error) bool {
	return pgerr.Code(err) == pgerr.ObjectInUse
}

// backfill records the buckets of every row of the tables names, replacing
// whatever was recorded for them, in one changelog transaction. With a
// snapshot (exported by a new slot) the rows are read as of the slot's
// starting point, and start is recorded as the position; without one
// (tables added to the publication of an existing slot) they are read as of
// now, and changes streamed later apply on top. raiseBoundary forces every
// client to snapshot again (the slot was lost): the boundary goes to a
// marker row written after every existing one, so every checkpoint taken so
// far is below it. A non-zero owner is the process id of the session's
// walsender (pg_backend_pid on it): the backfill commits only while it
// streams the slot, since a
// session that took the slot meanwhile may have forgotten the tables (see
// recordedTables), and would skip their changes.
func (c *Consumer) backfill(ctx context.Context, mgmt *pgconn.PgConn, snapshot string, names []string, start pglogrepl.LSN, raiseBoundary bool, owner uint32) error {
	if _, err := exec(ctx, mgmt, `BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY`); err != nil {
		return fmt.Errorf("wal: backfill: %w", err)
	}
	defer func() { _, _ = exec(context.Background(), mgmt, `ROLLBACK`) }()
	if snapshot != "" {
		if _, err := exec(ctx, mgmt, `SET TRANSACTION SNAPSHOT `+pgident.QuoteLiteral(snapshot)); err != nil {
			return fmt.Errorf("wal: backfill: using the slot's snapshot: %w", err)
		}
	}

	// The slot's changelog lock comes first, before this connection holds
	// any table: a replay of rule failures holding the lock reads tables,
	// and must not wait (behind a migration, say) for one the backfill
	// holds while the backfill waits for the lock, in the engine, where
	// PostgreSQL cannot see it (found by a review).
	a := c.applier
	conn, tx, err := a.beginLocked(ctx)
	if err != nil {
		return fmt.Errorf("wal: backfill: %w", err)
	}
	defer func() { _ = conn.Close() }()
	defer func() { _ = tx.Rollback() }()

	// Every table this connection reads, locked before the changelog
	// transaction writes anything: the tables recorded and, when clients
	// are told (no snapshot), the child tables whose rows follow their
	// parents (moveChildren). Read later, one of them could be queued
	// behind a migration queued behind a transaction (a compaction's
	// prune) that waits for edges the changelog transaction deleted, while
	// that transaction waits, in the engine, for the read: a deadlock
	// PostgreSQL does not see (found by reviews). Locked first, this
	// connection waits for such a migration while the changelog
	// transaction holds nothing a table's writer waits for.
	// Children before their parents, as a migration adding a foreign key
	// takes them: one that takes them in the other order meets the
	// backfill in a deadlock PostgreSQL sees, and one of the two is
	// retried.
	var read []string
	if snapshot == "" {
		read = a.descendantsBeyond(names)
	}
	for _, cfg := range slices.Backward(a.parentsFirst(names)) {
		read = append(read, pgident.QuoteQualified(cfg.TableName))
	}
	if _, err := exec(ctx, mgmt, `LOCK TABLE `+strings.Join(read, ", ")+` IN ACCESS SHARE MODE`); err != nil {
		return fmt.Errorf("wal: backfill: locking the tables it reads: %w", err)
	}

	// The record's mark (backfillMark) when the rows are read as of now:
	// the first query takes the snapshot, and the position is read after
	// it.
	var mark backfillMark
	var markSnapshot, markUntil any // NULL: read in the slot's snapshot
	if snapshot == "" {
		rows, err := exec(ctx, mgmt, `SELECT pg_current_snapshot()::text, (pg_current_wal_insert_lsn() - '0/0')::bigint::text`)
		if err != nil {
			return fmt.Errorf("wal: backfill: reading its snapshot: %w", err)
		}
		until, err := strconv.ParseInt(string(rows[0][1]), 10, 64)
		if err == nil {
			mark, err = parseBackfillMark(string(rows[0][0]), until)
		}
		if err != nil {
			return fmt.Errorf("wal: backfill: reading its snapshot: %w", err)
		}
		markSnapshot, markUntil = string(rows[0][0]), until
	}
	// Clients in sync hear of a table added to a streaming slot (no
	// snapshot): the edges recorded for it before, if its changes were
	// captured once (a table registered again, or added to the publication
	// again), are what they were told last, which the rows as they are now
	// are compared with. A new slot forgets them: its clients snapshot.
	var taken map[recKey][]string
	if snapshot == "" {
		if taken, err = takeEdges(ctx, tx, names); err != nil {
			return fmt.Errorf("wal: backfill: %w", err)
		}
	} else if _, err := tx.ExecContext(ctx, store.ClearTableEdges, names); err != nil {
		return fmt.Errorf("wal: backfill: clearing bucket edges: %w", err)
	}
	b := a.newBatch(ctx, conn, tx, 0)
	b.rowsConn = mgmt
	b.backfilled = make(map[string]bool, len(names))
	for _, name := range names {
		b.backfilled[name] = true
	}

	total := 0
	order := a.parentsFirst(names)
	for _, cfg := range order {
		n, err := c.backfillTable(ctx, mgmt, b, cfg, snapshot == "", taken)
		if err != nil {
			return err
		}
		total += n
	}
	gone, err := b.deleteGone(order, taken)
	if err != nil {
		return err
	}
	if err := b.flush(start); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, store.RecordTables, a.slot, names, markSnapshot, markUntil); err != nil {
		return fmt.Errorf("wal: backfill: recording the tables: %w", err)
	}
	if snapshot != "" {
		// A new slot: tables recorded for an earlier slot of this name count no more.
		if _, err := tx.ExecContext(ctx, store.ForgetOtherTables, a.slot, names); err != nil {
			return fmt.Errorf("wal: backfill: recording the tables: %w", err)
		}
	}
	if owner != 0 {
		var ours bool
		if err := tx.QueryRowContext(ctx, `SELECT coalesce(bool_or(active_pid = $2), false) FROM pg_replication_slots WHERE slot_name = $1`, a.slot, int64(owner)).Scan(&ours); err != nil {
			return fmt.Errorf("wal: backfill: reading the slot's owner: %w", err)
		}
		if !ours {
			return fmt.Errorf("wal: backfill: %w: another session took slot %s", errSlotInUse, a.slot)
		}
	}
	if raiseBoundary {
		// A marker row in a bucket no client follows takes the next seq:
		// every checkpoint handed out so far is below it, and a snapshot
		// taken from now on records at least it, so no client loops.
		if _, err := tx.ExecContext(ctx, store.RaiseBoundaryPastMarker, bucket.BoundaryMarker); err != nil {
			return fmt.Errorf("wal: backfill: raising the compaction boundary: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("wal: backfill: %w", err)
	}
	marks := map[string]backfillMark{}
	if old := a.marks.Load(); old != nil {
		marks = maps.Clone(*old)
	}
	for _, name := range names {
		delete(marks, name)
		if snapshot == "" {
			marks[name] = mark
		}
	}
	a.marks.Store(&marks)
	a.metrics.failuresRecorded(ctx, b.failures)
	a.metrics.failuresCounted(ctx, b.written.failures)
	failures := int64(len(b.failures))
	for _, n := range b.written.failures {
		failures += n
	}
	c.cfg.Logger.InfoContext(ctx, "wal: recorded the buckets of existing rows", "rows", total, "failures", failures, "gone", gone)
	c.signals.backfilled.signal(names)
	return nil
}

// backfillTable records the buckets of every row of one table. Rows are
// read as JSON in the backfill's snapshot and assigned as inserts. With
// emit, clients are told: each live row gets a create in each of its
// buckets, after a delete in each bucket of its taken edges (what clients
// were told last) it is no longer in, or in every one of them when the row
// is soft-deleted now; and the rows of child tables not backfilled with it
// follow a row whose buckets are not those taken, as they follow a parent's
// move in the stream. A row whose buckets cannot be decided (a rule
// failure, replayed later) keeps its taken edges. The rows found are
// removed from taken.
func (c *Consumer) backfillTable(ctx context.Context, mgmt *pgconn.PgConn, b *batch, cfg *synchro.TableConfig, emit bool, taken map[recKey][]string) (int, error) {
	id, err := b.a.recordID(ctx, b.tx, cfg, "x")
	if err != nil {
		return 0, err
	}
	q := fmt.Sprintf(`SELECT %s, row_to_json(x)::text FROM %s AS x`, id, pgident.QuoteQualified(cfg.TableName))
	rr := mgmt.ExecParams(ctx, q, nil, nil, nil, nil)
	n := 0
	var moved []movedRecord
	// The rows are read in parts of b.a.backfillPart: each part's parent
	// records are read in one statement, and a full part is written and
	// forgotten before the next (batch.flushPart), on the changelog
	// transaction's connection while this one goes on reading.
	type partRow struct {
		id  string
		row rowValues
	}
	part := make([]partRow, 0, min(b.a.backfillPart, 1024))
	// Rows of child tables not recorded with this one follow a row whose
	// buckets changed: the rows moved are kept until the table is read,
	// when there are such tables.
	follow := b.childrenOutside(cfg.TableName)
	record := func() error {
		if err := b.loadParents(cfg, len(part), func(i int) rowValues { return part[i].row }); err != nil {
			return err
		}
		for _, pr := range part {
			k := recKey{cfg.TableName, pr.id}
			was := taken[k]
			delete(taken, k)
			r := b.rec(k)
			r.loaded, r.edges = true, []string{}
			ev := &event{kind: evInsert, table: cfg.TableName, id: pr.id, newRow: pr.row}
			buckets, ok, err := b.assign(cfg, k, ev, synchro.OpInsert)
			if err != nil {
				return err
			}
			if !ok {
				if len(was) > 0 {
					b.setEdges(r, was)
				}
				continue
			}
			if len(buckets) > 0 {
				b.setEdges(r, buckets)
			}
			if !emit {
				continue
			}
			live := !deleted(cfg, ev.newRow)
			for _, bucket := range was {
				if _, in := slices.BinarySearch(buckets, bucket); !in || !live {
					b.rows = append(b.rows, clRow{bucket, k, synchro.OpDelete})
				}
			}
			if live {
				for _, bucket := range buckets {
					b.rows = append(b.rows, clRow{bucket, k, synchro.OpInsert})
				}
			}
			if follow && !slices.Equal(was, buckets) {
				moved = append(moved, movedRecord{k, buckets})
			}
		}
		part = part[:0]
		return nil
	}
	for rr.NextRow() {
		vals := rr.Values()
		id := string(vals[0])
		row, err := decodeRow(string(vals[1]))
		if err != nil {
			_ = stopRead(ctx, mgmt, rr) // the decoding's error is the one to report
			return n, fmt.Errorf("wal: backfill of %s: decoding row %q: %w", cfg.TableName, id, err)
		}
		n++
		part = append(part, partRow{id, row})
		if len(part) < b.a.backfillPart {
			continue
		}
		err = record()
		if err == nil {
			err = b.flushPart()
		}
		if err != nil {
			_ = stopRead(ctx, mgmt, rr) // err is the one to report
			return n, err
		}
	}
	if _, err := rr.Close(); err != nil {
		return n, fmt.Errorf("wal: backfill of %s: %w", cfg.TableName, err)
	}
	if err := record(); err != nil {
		return n, err
	}
	// Once the table is read: the children are read on the same
	// connection, in the same snapshot (see batch.rowsConn).
	for _, m := range moved {
		if err := b.moveChildren(m.key, m.buckets); err != nil {
			return n, err
		}
		if len(b.recs) >= b.a.backfillPart {
			if err := b.flushPart(); err != nil {
				return n, err
			}
		}
	}
	return n, nil
}

// stopRead ends the read of rr on conn before its last row, when the
// backfill fails: PostgreSQL is asked to cancel the statement, so that
// Close does not first read the rest of the table (which it does to leave
// the connection ready), a wait as long as the table is large before the
// error reaches the session.
// It returns Close's error: the cancellation's, when it came in time.
func stopRead(ctx context.Context, conn *pgconn.PgConn, rr *pgconn.ResultReader) error {
	_ = conn.CancelRequest(ctx) // failed, Close reads to the end as before
	_, err := rr.Close()
	return err
}

// descendantsBeyond returns the registered tables, quoted, that descend
// from the tables names (one of their ancestors, by the registry's parent
// chains, is among names) without being among them, deepest first.
func (a *applier) descendantsBeyond(names []string) []string {
	type kid struct {
		name  string
		depth int
	}
	var kids []kid
	for name := range a.tables {
		if slices.Contains(names, name) {
			continue
		}
		up := parentchain.Ancestors(a.reg, name)
		if slices.ContainsFunc(up, func(n string) bool { return slices.Contains(names, n) }) {
			kids = append(kids, kid{name, len(up)})
		}
	}
	slices.SortFunc(kids, func(x, y kid) int { return cmp.Or(cmp.Compare(y.depth, x.depth), strings.Compare(x.name, y.name)) })
	out := make([]string, len(kids))
	for i, k := range kids {
		out[i] = pgident.QuoteQualified(k.name)
	}
	return out
}

// movedRecord is a record whose buckets a backfill changed.
type movedRecord struct {
	key     recKey
	buckets []string
}

// warnOtherSlots logs, at Warn, each other slot of the server that recorded
// some of the registered tables: consumed, it captures every change of
// them a second time, into the same changelog, and the two write each
// other's bucket edges (one behind the other moves records back to the
// buckets of older rows until it catches up, and stays wrong if it stops);
// not consumed, it holds back the server's WAL.
func (c *Consumer) warnOtherSlots(ctx context.Context) error {
	rows, err := c.cfg.ChangelogDB.QueryContext(ctx, store.OtherSlotsOfTables, c.cfg.SlotName, c.names)
	if err != nil {
		return fmt.Errorf("wal: reading the other slots of the registered tables: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var slot, tables string
		if err := rows.Scan(&slot, &tables); err != nil {
			return fmt.Errorf("wal: reading the other slots of the registered tables: %w", err)
		}
		c.cfg.Logger.WarnContext(ctx, "wal: another replication slot recorded the same tables: consumed, it captures their changes a second time and both write their bucket edges; not consumed, it holds back WAL. Drop the one no longer in use (pg_drop_replication_slot)",
			"slot", c.cfg.SlotName, "other_slot", slot, "tables", tables)
	}
	return rows.Err()
}

// recordedTables returns the tables the slot recorded, after forgetting
// those but names, and the marks of those recorded while the slot streamed
// (backfillMark). It reads them under the slot's changelog lock: a
// backfill recording tables, of a session that lost the slot to this one,
// commits first (and is read), or fails (see backfill's owner). Nothing
// to forget, it commits nothing.
func (a *applier) recordedTables(ctx context.Context, names []string) (map[string]bool, map[string]backfillMark, error) {
	conn, tx, err := a.beginLocked(ctx)
	if err != nil {
		return nil, nil, err
	}
	defer func() { _ = conn.Close() }()
	defer func() { _ = tx.Rollback() }()
	tables, err := a.slotTables(ctx, tx)
	if err != nil {
		return nil, nil, err
	}
	recorded, marks := map[string]bool{}, map[string]backfillMark{}
	forget := false
	for _, t := range tables {
		if !slices.Contains(names, t.name) {
			forget = true
			continue
		}
		recorded[t.name] = true
		if t.snapshot.Valid && t.until.Valid {
			m, err := parseBackfillMark(t.snapshot.String, t.until.Int64)
			if err != nil {
				return nil, nil, fmt.Errorf("the record of %s: %w", t.name, err)
			}
			marks[t.name] = m
		}
	}
	if !forget {
		return recorded, marks, nil
	}
	if _, err := tx.ExecContext(ctx, store.ForgetOtherTables, a.slot, names); err != nil {
		return nil, nil, fmt.Errorf("forgetting the tables no longer registered: %w", err)
	}
	return recorded, marks, tx.Commit()
}

// slotTable is a table the slot recorded (store.RecordedTables).
type slotTable struct {
	name     string
	snapshot sql.NullString
	until    sql.NullInt64
}

// slotTables reads the tables the applier's slot recorded, in tx.
func (a *applier) slotTables(ctx context.Context, tx *sql.Tx) ([]slotTable, error) {
	rows, err := tx.QueryContext(ctx, store.RecordedTables, a.slot)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []slotTable
	for rows.Next() {
		var t slotTable
		if err := rows.Scan(&t.name, &t.snapshot, &t.until); err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// takeEdges deletes the recorded edges of the tables names and returns
// them by record, each record's buckets sorted.
func takeEdges(ctx context.Context, tx *sql.Tx, names []string) (map[recKey][]string, error) {
	rows, err := tx.QueryContext(ctx, store.TakeTableEdges, names)
	if err != nil {
		return nil, fmt.Errorf("taking the recorded bucket edges: %w", err)
	}
	defer rows.Close()
	taken := map[recKey][]string{}
	for rows.Next() {
		var k recKey
		var bucket string
		if err := rows.Scan(&k.table, &k.id, &bucket); err != nil {
			return nil, fmt.Errorf("taking the recorded bucket edges: %w", err)
		}
		taken[k] = append(taken[k], bucket)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("taking the recorded bucket edges: %w", err)
	}
	for _, buckets := range taken {
		slices.Sort(buckets)
	}
	return taken, nil
}

// deleteGone writes a delete in each bucket of the taken edges of every
// record the backfill did not find (a row deleted while its table's
// changes were not captured), children's tables first, takes the rows of
// child tables not backfilled out of their buckets, as a parent's delete in
// the stream does, and returns how many records were gone.
func (b *batch) deleteGone(order []*synchro.TableConfig, taken map[recKey][]string) (int, error) {
	for _, cfg := range slices.Backward(order) {
		var keys []recKey
		for k := range taken {
			if k.table == cfg.TableName {
				keys = append(keys, k)
			}
		}
		slices.SortFunc(keys, func(x, y recKey) int { return strings.Compare(x.id, y.id) })
		for _, k := range keys {
			for _, bucket := range taken[k] {
				b.rows = append(b.rows, clRow{bucket, k, synchro.OpDelete})
			}
			if err := b.moveChildren(k, []string{}); err != nil {
				return 0, err
			}
		}
	}
	return len(taken), nil
}

// parentsFirst orders the tables names so that every parent among them
// comes before its children (child buckets are read from the parents'; a
// parent not among them is read from its recorded buckets): each table
// comes after those of its ancestors that are among names, farthest first.
// The ancestors are the registry's parent chains, which the engine's read
// filter and RLS policies follow too.
func (a *applier) parentsFirst(names []string) []*synchro.TableConfig {
	wanted := make(map[string]bool, len(names))
	for _, n := range names {
		wanted[n] = true
	}
	var out []*synchro.TableConfig
	done := map[string]bool{}
	add := func(name string) {
		if cfg := a.tables[name]; cfg != nil && wanted[name] && !done[name] {
			done[name] = true
			out = append(out, cfg)
		}
	}
	for _, n := range names {
		for _, up := range slices.Backward(parentchain.Ancestors(a.reg, n)) {
			add(up)
		}
		add(n)
	}
	return out
}
