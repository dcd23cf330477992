package wal

// Fault tests of change capture against a real PostgreSQL: consumers
// stopped at random points, a server restart under the consumer, two
// consumers on one slot, an idle consumer among other WAL traffic, a slot
// dropped while the consumer was away, and the errors that must not be
// retried. They check SPEC §4 invariant 3: every committed change of a
// registered table is written to the changelog exactly once.
//
// The writers of these tests record the changelog rows each committed
// change must produce (lists are owned by user_id, so a row has exactly one
// bucket, user:<owner>), and the changelog is compared record by record:
// the same rows, in commit order, none missing, none twice.
//
// Every wait has a deadline. Helper names start with fault so that they do
// not collide with the other test files of the package.

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/synchrosync/synchro"
	"github.com/synchrosync/synchro/internal/bucket"
	"github.com/synchrosync/synchro/internal/pgerr"
	"github.com/synchrosync/synchro/internal/pgtest"
)

// faultTimeout bounds every wait of these tests.
const faultTimeout = 30 * time.Second

// faultStandby is the StandbyTimeout of the consumers of these tests.
const faultStandby = 200 * time.Millisecond

// faultLogs records the logs of one or several consumers.
type faultLogs struct {
	mu    sync.Mutex
	lines []string
}

func (l *faultLogs) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// count returns how many log lines contain s.
func (l *faultLogs) count(s string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, line := range l.lines {
		if strings.Contains(line, s) {
			n++
		}
	}
	return n
}

// grep returns the lines that contain one of subs.
func (l *faultLogs) grep(subs ...string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, line := range l.lines {
		for _, s := range subs {
			if strings.Contains(line, s) {
				out = append(out, line)
				break
			}
		}
	}
	return strings.Join(out, "\n")
}

// tail returns the last n lines.
func (l *faultLogs) tail(n int) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines[max(0, len(l.lines)-n):], "\n")
}

// newFaultLogs returns a log record that is printed when t fails. Create it
// before the consumers that write to it, so that it is printed after they
// stopped.
func newFaultLogs(t *testing.T, name string) *faultLogs {
	l := &faultLogs{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("last logs of %s:\n%s", name, l.tail(80))
		}
	})
	return l
}

// faultStart starts a consumer with cfg (see startConsumer), logging to
// logs under name.
func faultStart(t *testing.T, cfg ConsumerConfig, logs *faultLogs, name string) *running {
	t.Helper()
	cfg.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})).With("consumer", name)
	return startConsumer(t, cfg)
}

// faultEnv is a database with ctSchema and the configuration of its
// consumers.
type faultEnv struct {
	t   *testing.T
	db  *pgtest.Database
	cfg ConsumerConfig
}

func newFaultEnv(t *testing.T, db *pgtest.Database, setup string) *faultEnv {
	t.Helper()
	pgtest.Exec(t, db.Super, ctSchema)
	if setup != "" {
		pgtest.Exec(t, db.Super, setup)
	}
	return &faultEnv{t: t, db: db, cfg: ConsumerConfig{
		ConnString:      db.DSN,
		SlotName:        "s_" + strings.ReplaceAll(db.Name, "-", "_"),
		PublicationName: "pub",
		Registry:        ctRegistry(),
		ChangelogDB:     db.Super,
		StandbyTimeout:  faultStandby,
	}}
}

// slotState reads the slot: whether it exists, its active pid (0 when
// inactive) and whether its confirmed_flush_lsn reached lsn (when not "").
func (e *faultEnv) slotState(lsn string) (exists bool, pid int, reached bool, err error) {
	var (
		p  sql.NullInt64
		r  sql.NullBool
		cf sql.NullString
	)
	if lsn == "" {
		lsn = "0/0"
	}
	err = e.db.Super.QueryRow(`
SELECT active_pid, confirmed_flush_lsn >= $2::pg_lsn, confirmed_flush_lsn::text
  FROM pg_replication_slots WHERE slot_name = $1`, e.cfg.SlotName, lsn).Scan(&p, &r, &cf)
	if errors.Is(err, sql.ErrNoRows) {
		return false, 0, false, nil
	}
	return err == nil, int(p.Int64), r.Bool, err
}

// waitActive waits until a walsender other than notPID streams the slot,
// and returns its pid.
func (e *faultEnv) waitActive(notPID int, timeout time.Duration) int {
	e.t.Helper()
	var pid int
	pgtest.WaitFor(e.t, "a consumer to stream the slot", timeout, func() (bool, string) {
		exists, p, _, err := e.slotState("")
		pid = p
		return err == nil && p != 0 && p != notPID, fmt.Sprintf("exists=%v active_pid=%d err=%v", exists, p, err)
	})
	return pid
}

// walLSN returns the server's current WAL insert position: the end of
// every transaction committed so far. (pg_current_wal_lsn, the write
// position, may lag behind it with synchronous_commit=off, as the test
// servers run.)
func (e *faultEnv) walLSN() string {
	e.t.Helper()
	var lsn string
	if err := e.db.Super.QueryRow(`SELECT pg_current_wal_insert_lsn()::text`).Scan(&lsn); err != nil {
		e.t.Fatal(err)
	}
	return lsn
}

// waitConfirmed waits until the slot is confirmed up to lsn: the consumer
// has written everything committed before lsn.
func (e *faultEnv) waitConfirmed(lsn string, timeout time.Duration) time.Duration {
	e.t.Helper()
	return pgtest.WaitFor(e.t, "the slot to be confirmed up to "+lsn, timeout, func() (bool, string) {
		var confirmed, applied string
		err := e.db.Super.QueryRow(`
SELECT coalesce((SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1), 'no slot'),
       coalesce((SELECT pg_lsn '0/0' + confirmed_lsn FROM synchro.wal_position WHERE slot_name = $1)::text, 'none')`,
			e.cfg.SlotName).Scan(&confirmed, &applied)
		_, _, reached, err2 := e.slotState(lsn)
		return err == nil && err2 == nil && reached,
			fmt.Sprintf("confirmed_flush_lsn %s, wal_position %s, errors %v %v", confirmed, applied, err, err2)
	})
}

// changelog returns the changelog rows of table as "bucket op" by record,
// in seq order.
func (e *faultEnv) changelog(table string) (map[string][]string, int) {
	e.t.Helper()
	rows, err := e.db.Super.Query(`SELECT record_id, bucket_id, operation FROM synchro.changelog WHERE table_name = $1 ORDER BY seq`, table)
	if err != nil {
		e.t.Fatal(err)
	}
	defer rows.Close()
	out := map[string][]string{}
	n := 0
	for rows.Next() {
		var id, bucket string
		var op synchro.Operation
		if err := rows.Scan(&id, &bucket, &op); err != nil {
			e.t.Fatal(err)
		}
		out[id] = append(out[id], bucket+" "+op.String())
		n++
	}
	if err := rows.Err(); err != nil {
		e.t.Fatal(err)
	}
	return out, n
}

// checkExactlyOnce waits until the changelog of lists holds as many rows as
// want expects (bounded), then compares it with want record by record. It
// reports whether they are equal.
func (e *faultEnv) checkExactlyOnce(want map[string][]string) bool {
	e.t.Helper()
	total := 0
	for _, w := range want {
		total += len(w)
	}
	// Rows still missing after the wait are reported by the comparison.
	_, _ = pgtest.Poll("the changelog rows", 10*time.Second, func() (bool, string) {
		_, n := e.changelog("lists")
		return n >= total, ""
	})
	// Anything written late would be a duplicate: give it a moment.
	time.Sleep(2 * faultStandby)
	got, n := e.changelog("lists")
	return faultCompare(e.t, got, n, want, total)
}

// faultCompare reports the records whose changelog rows differ from want,
// and whether there are none.
func faultCompare(t *testing.T, got map[string][]string, n int, want map[string][]string, total int) bool {
	t.Helper()
	var bad []string
	dup, missing := 0, 0
	ids := slices.Sorted(func(yield func(string) bool) {
		seen := map[string]bool{}
		for _, m := range []map[string][]string{got, want} {
			for id := range m {
				if !seen[id] {
					seen[id] = true
					if !yield(id) {
						return
					}
				}
			}
		}
	})
	for _, id := range ids {
		g, w := got[id], want[id]
		if slices.Equal(g, w) {
			continue
		}
		if len(g) > len(w) {
			dup++
		} else {
			missing++
		}
		bad = append(bad, fmt.Sprintf("%s:\n    got  %q\n    want %q", id, g, w))
	}
	if len(bad) > 0 {
		t.Errorf("changelog of lists: %d rows, want %d; %d of %d records differ (%d with extra rows, %d with missing or other rows); first ones:\n  %s",
			n, total, len(bad), len(ids), dup, missing, strings.Join(bad[:min(len(bad), 8)], "\n  "))
	}
	return len(bad) == 0
}

// faultModel is what a writer committed to the lists table, and the
// changelog rows it must produce.
type faultModel struct {
	prefix string
	next   int
	owner  map[string]string // live rows
	ids    []string          // live rows, for random picks
	want   map[string][]string
	writes int // committed row changes
}

func newFaultModel(prefix string) *faultModel {
	return &faultModel{prefix: prefix, owner: map[string]string{}, want: map[string][]string{}}
}

func (m *faultModel) newID() string {
	m.next++
	return fmt.Sprintf("%s%05d", m.prefix, m.next)
}

func (m *faultModel) inserted(id, owner string) {
	m.owner[id] = owner
	m.ids = append(m.ids, id)
	m.want[id] = append(m.want[id], "user:"+owner+" create")
	m.writes++
}

func (m *faultModel) updated(id string) {
	m.want[id] = append(m.want[id], "user:"+m.owner[id]+" update")
	m.writes++
}

func (m *faultModel) moved(id, to string) {
	m.want[id] = append(m.want[id], "user:"+m.owner[id]+" delete", "user:"+to+" create")
	m.owner[id] = to
	m.writes++
}

func (m *faultModel) deleted(id string) {
	m.want[id] = append(m.want[id], "user:"+m.owner[id]+" delete")
	delete(m.owner, id)
	i := slices.Index(m.ids, id)
	m.ids[i] = m.ids[len(m.ids)-1]
	m.ids = m.ids[:len(m.ids)-1]
	m.writes++
}

// pick returns up to n distinct live rows.
func (m *faultModel) pick(rng *rand.Rand, n int) []string {
	n = min(n, len(m.ids))
	out := make([]string, 0, n)
	for _, i := range rng.Perm(len(m.ids))[:n] {
		out = append(out, m.ids[i])
	}
	return out
}

// otherOwner returns an owner different from the row's.
func (m *faultModel) otherOwner(rng *rand.Rand, id string) string {
	for {
		if o := faultOwner(rng); o != m.owner[id] {
			return o
		}
	}
}

func faultOwner(rng *rand.Rand) string { return fmt.Sprintf("u%d", rng.IntN(5)) }

// merge adds the expectations of models to one map.
func faultMerge(models ...*faultModel) map[string][]string {
	out := map[string][]string{}
	for _, m := range models {
		for id, w := range m.want {
			out[id] = w
		}
	}
	return out
}

// faultWriteTxn commits one transaction of size row changes on lists: set
// statements of inserts, name updates, owner changes and deletes in random
// order (a row may be touched by several of them), and records them in m.
func faultWriteTxn(ctx context.Context, db *sql.DB, m *faultModel, rng *rand.Rand, size int) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	insert := func(n int) error {
		if n <= 0 {
			return nil
		}
		ids, owners := make([]string, n), make([]string, n)
		for i := range ids {
			ids[i], owners[i] = m.newID(), faultOwner(rng)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO lists (id, user_id, name) SELECT i, o, 'new' FROM unnest($1::text[], $2::text[]) AS v(i, o)`, ids, owners); err != nil {
			return err
		}
		for i, id := range ids {
			m.inserted(id, owners[i])
		}
		return nil
	}
	nIns := size/4 + rng.IntN(size/4+1)
	left := size - nIns
	nUpd := rng.IntN(left + 1)
	nMove := rng.IntN(left - nUpd + 1)
	nDel := left - nUpd - nMove
	done := nIns
	steps := []func() error{
		func() error { return insert(nIns) },
		func() error {
			ids := m.pick(rng, nUpd)
			if len(ids) == 0 {
				return nil
			}
			if _, err := tx.ExecContext(ctx, `UPDATE lists SET name = name || '+' WHERE id = ANY($1::text[])`, ids); err != nil {
				return err
			}
			for _, id := range ids {
				m.updated(id)
			}
			done += len(ids)
			return nil
		},
		func() error {
			ids := m.pick(rng, nMove)
			if len(ids) == 0 {
				return nil
			}
			to := make([]string, len(ids))
			for i, id := range ids {
				to[i] = m.otherOwner(rng, id)
			}
			if _, err := tx.ExecContext(ctx, `UPDATE lists SET user_id = v.o FROM unnest($1::text[], $2::text[]) AS v(i, o) WHERE lists.id = v.i`, ids, to); err != nil {
				return err
			}
			for i, id := range ids {
				m.moved(id, to[i])
			}
			done += len(ids)
			return nil
		},
		func() error {
			ids := m.pick(rng, nDel)
			if len(ids) == 0 {
				return nil
			}
			if _, err := tx.ExecContext(ctx, `DELETE FROM lists WHERE id = ANY($1::text[])`, ids); err != nil {
				return err
			}
			for _, id := range ids {
				m.deleted(id)
			}
			done += len(ids)
			return nil
		},
	}
	rng.Shuffle(len(steps), func(i, j int) { steps[i], steps[j] = steps[j], steps[i] })
	for _, step := range steps {
		if err := step(); err != nil {
			return err
		}
	}
	// Too few live rows for the planned updates and deletes: make up with
	// inserts, so that every transaction has size changes.
	if err := insert(size - done); err != nil {
		return err
	}
	return tx.Commit()
}

// faultRand returns a random source whose seed t logs.
func faultRand(t *testing.T) *rand.Rand {
	seed := uint64(time.Now().UnixNano())
	t.Logf("random seed %d", seed)
	return rand.New(rand.NewPCG(seed, seed>>1))
}

// TestFaultKillMidStream stops the consumer at random points while a
// writer commits 20000 row changes in 500 transactions, starting a new
// consumer each time (sometimes before the old one has returned). Every
// change must be in the changelog exactly once, in commit order per record.
func TestFaultKillMidStream(t *testing.T) {
	t.Parallel()
	const (
		txns        = 500
		perTxn      = 40
		minRestarts = 15
		maxRestarts = 30
	)
	e := newFaultEnv(t, pgtest.NewMigratedDatabase(t), "")
	// Small batches: many changelog commits for the stops to fall between.
	e.cfg.MaxBatchEvents = 100
	rng := faultRand(t)
	logs := newFaultLogs(t, "the consumers")
	cur := faultStart(t, e.cfg, logs, "c0")
	cur.waitStreaming()
	runs := []*running{cur}

	m := newFaultModel("r")
	writerRNG := rand.New(rand.NewPCG(rng.Uint64(), rng.Uint64()))
	writerDone := make(chan error, 1)
	begin := time.Now()
	go func() {
		for i := range txns {
			if err := faultWriteTxn(t.Context(), e.db.Super, m, writerRNG, perTxn); err != nil {
				writerDone <- fmt.Errorf("transaction %d: %w", i, err)
				return
			}
			// Spread the writes over the restarts.
			time.Sleep(time.Duration(writerRNG.IntN(8)) * time.Millisecond)
		}
		writerDone <- nil
	}()

	restarts, overlapped := 0, 0
	writing := true
	var writerErr error
	for restarts < maxRestarts && (writing || restarts < minRestarts) {
		time.Sleep(time.Duration(5+rng.IntN(196)) * time.Millisecond)
		old := cur
		restarts++
		name := fmt.Sprintf("c%d", restarts)
		if rng.IntN(3) == 0 {
			// The next one starts before the old one stops, as in a
			// rolling deployment: it finds the slot in use and waits.
			cur = faultStart(t, e.cfg, logs, name)
			time.Sleep(time.Duration(rng.IntN(30)) * time.Millisecond)
			old.cancel()
			overlapped++
		} else {
			if err := old.stop(); err != nil {
				t.Errorf("consumer c%d: %v", restarts-1, err)
			}
			cur = faultStart(t, e.cfg, logs, name)
		}
		runs = append(runs, cur)
		if writing {
			select {
			case writerErr = <-writerDone:
				writing = false
			default:
			}
		}
	}
	if writing {
		writerErr = <-writerDone
	}
	if writerErr != nil {
		t.Fatalf("writer: %v", writerErr)
	}
	t.Logf("%d row changes in %d transactions in %v, %d consumer restarts (%d overlapping)",
		m.writes, txns, time.Since(begin).Round(time.Millisecond), restarts, overlapped)
	if m.writes != txns*perTxn {
		t.Fatalf("the writer made %d row changes, want %d", m.writes, txns*perTxn)
	}

	target := e.walLSN()
	took := e.waitConfirmed(target, faultTimeout)
	standby, lost := 0, 0
	for _, r := range runs {
		standby += r.c.signals.standby.count()
		lost += r.c.signals.slotLost.count()
	}
	t.Logf("caught up %v after the last write; the consumers found the slot in use %d times",
		took.Round(time.Millisecond), standby)
	if !e.checkExactlyOnce(m.want) {
		t.Logf("where each consumer started streaming, and when it found the slot in use:\n%s",
			logs.grep(`msg="wal: streaming"`, "slot in use"))
	}
	// Start's errors fail the test when the consumers are stopped.
	if lost > 0 {
		t.Errorf("the consumers found the slot gone %d times", lost)
	}
}

// TestFaultPostgresRestart restarts PostgreSQL under a streaming consumer
// while three writers commit single-row changes. The consumer must log the
// interruption, reconnect by itself, and capture every change committed
// before, during and after the restart exactly once. A write whose outcome
// the restart hid is resolved by reading the row back.
func TestFaultPostgresRestart(t *testing.T) {
	srv := pgtest.NewDedicatedServer(t) // not parallel: restarts a server
	e := newFaultEnv(t, srv.NewMigratedDatabase(t), "")
	logs := newFaultLogs(t, "the consumer")
	run := faultStart(t, e.cfg, logs, "c")
	run.waitStreaming()
	pid := e.waitActive(0, faultTimeout)
	rng := faultRand(t)

	const (
		before = iota
		during
		after
	)
	var (
		phase     atomic.Int32
		stop      atomic.Bool
		committed [3]atomic.Int64
		failed    atomic.Int64
		wg        sync.WaitGroup
	)
	// The writers stop before the database is dropped, even on failure.
	t.Cleanup(func() { stop.Store(true); wg.Wait() })
	models := make([]*faultModel, 3)
	errs := make([]error, 3)
	for w := range models {
		m := newFaultModel(fmt.Sprintf("w%d-", w))
		models[w] = m
		wrng := rand.New(rand.NewPCG(rng.Uint64(), rng.Uint64()))
		wg.Go(func() {
			for !stop.Load() {
				p := phase.Load()
				ok, err := faultWriteOne(t.Context(), e.db.Super, m, wrng)
				if err != nil {
					errs[w] = err
					return
				}
				if ok {
					committed[p].Add(1)
				} else {
					failed.Add(1)
				}
				time.Sleep(time.Millisecond)
			}
		})
	}
	waitWrites := func(p int, n int64) {
		pgtest.WaitFor(t, "writes", faultTimeout, func() (bool, string) {
			return committed[p].Load() >= n || stop.Load(), fmt.Sprintf("%d committed", committed[p].Load())
		})
	}
	waitWrites(before, 300)
	phase.Store(during)
	begin := time.Now()
	srv.Restart(t)
	t.Logf("PostgreSQL restarted in %v", time.Since(begin).Round(time.Millisecond))
	phase.Store(after)
	newPID := e.waitActive(pid, faultTimeout)
	run.waitStreaming()
	t.Logf("the consumer streams again %v after the restart began", time.Since(begin).Round(time.Millisecond))
	waitWrites(after, 300)
	stop.Store(true)
	wg.Wait()
	for w, err := range errs {
		if err != nil {
			t.Fatalf("writer %d: %v", w, err)
		}
	}
	t.Logf("committed %d before, %d during and %d after the restart; %d writes failed",
		committed[before].Load(), committed[during].Load(), committed[after].Load(), failed.Load())

	select {
	case <-run.done:
		t.Fatalf("Start returned %v after the restart; it must retry", run.err)
	default:
	}
	if run.c.signals.reconnecting.count() == 0 {
		t.Error("the consumer did not reconnect after the interruption")
	}
	if newPID == pid {
		t.Error("the slot is streamed by the same walsender as before the restart")
	}
	e.waitConfirmed(e.walLSN(), faultTimeout)
	e.checkExactlyOnce(faultMerge(models...))
}

// faultWriteOne commits one single-row change on lists (autocommit) and
// records it in m. When the statement fails (the server is restarting), it
// waits for the server, reads the row back to learn whether the change was
// committed, records it if so, and reports false. It returns an error only
// when the server does not come back.
func faultWriteOne(ctx context.Context, db *sql.DB, m *faultModel, rng *rand.Rand) (bool, error) {
	var (
		id     string
		q      string
		args   []any
		record func()
		// applied tells from the row (nil when absent) whether the change
		// was committed.
		applied func(row *[2]string) bool
	)
	k := rng.IntN(100)
	switch {
	case len(m.ids) < 5 || k < 40:
		id = m.newID()
		owner := faultOwner(rng)
		q, args = `INSERT INTO lists (id, user_id, name) VALUES ($1, $2, 'new')`, []any{id, owner}
		record = func() { m.inserted(id, owner) }
		applied = func(row *[2]string) bool { return row != nil }
	case k < 65:
		id = m.pick(rng, 1)[0]
		name := fmt.Sprintf("n%d", rng.Uint64())
		q, args = `UPDATE lists SET name = $2 WHERE id = $1`, []any{id, name}
		record = func() { m.updated(id) }
		applied = func(row *[2]string) bool { return row != nil && row[1] == name }
	case k < 85:
		id = m.pick(rng, 1)[0]
		to := m.otherOwner(rng, id)
		q, args = `UPDATE lists SET user_id = $2 WHERE id = $1`, []any{id, to}
		record = func() { m.moved(id, to) }
		applied = func(row *[2]string) bool { return row != nil && row[0] == to }
	default:
		id = m.pick(rng, 1)[0]
		q, args = `DELETE FROM lists WHERE id = $1`, []any{id}
		record = func() { m.deleted(id) }
		applied = func(row *[2]string) bool { return row == nil }
	}
	if _, err := db.ExecContext(ctx, q, args...); err == nil {
		record()
		return true, nil
	}
	// This runs on a writer's goroutine: Poll, not WaitFor.
	var (
		row   *[2]string
		known bool // whether the row was read (or found absent)
	)
	_, err := pgtest.Poll("the server to come back", faultTimeout, func() (bool, string) {
		var r [2]string
		err := db.QueryRowContext(ctx, `SELECT user_id, name FROM lists WHERE id = $1`, id).Scan(&r[0], &r[1])
		if err == nil {
			row = &r
		}
		known = err == nil || errors.Is(err, sql.ErrNoRows)
		return known || ctx.Err() != nil, fmt.Sprint(err)
	})
	switch {
	case known:
		if applied(row) {
			record()
		}
		return false, nil
	case ctx.Err() != nil:
		return false, ctx.Err()
	}
	return false, err
}

// TestFaultTwoConsumersOneSlot runs two consumers with the same
// configuration: one streams while the other waits; when the first stops
// the second takes over within 15s, and no change is lost or duplicated.
// The first streams long enough (13s) for the second's backoff to reach its
// maximum, 10s.
func TestFaultTwoConsumersOneSlot(t *testing.T) {
	t.Parallel()
	e := newFaultEnv(t, pgtest.NewMigratedDatabase(t), "")
	rng := faultRand(t)
	logsA, logsB := newFaultLogs(t, "consumer A"), newFaultLogs(t, "consumer B")
	a := faultStart(t, e.cfg, logsA, "A")
	a.waitStreaming()
	pidA := e.waitActive(0, faultTimeout)
	b := faultStart(t, e.cfg, logsB, "B")
	b.waitStandby()

	m := newFaultModel("r")
	for range 100 {
		if err := faultWriteTxn(t.Context(), e.db.Super, m, rng, 5); err != nil {
			t.Fatal(err)
		}
		// Only A streams, all along.
		if _, pid, _, err := e.slotState(""); err != nil || pid != pidA {
			t.Fatalf("the slot is streamed by pid %d (%v), want A's walsender %d", pid, err, pidA)
		}
		time.Sleep(130 * time.Millisecond)
	}
	e.waitConfirmed(e.walLSN(), faultTimeout)
	if n := b.c.signals.streaming.count(); n != 0 {
		t.Fatalf("B streamed %d times while A was streaming", n)
	}
	if n := a.c.signals.streaming.count(); n != 0 { // after the one waited for
		t.Fatalf("A started streaming %d times, want once", 1+n)
	}

	if err := a.stop(); err != nil {
		t.Fatalf("A: %v", err)
	}
	stopped := time.Now()
	// Changes made while nobody streams are captured by B.
	for range 20 {
		if err := faultWriteTxn(t.Context(), e.db.Super, m, rng, 5); err != nil {
			t.Fatal(err)
		}
	}
	e.waitActive(pidA, 15*time.Second)
	b.waitStreaming()
	t.Logf("B took over %v after A stopped, after %d attempts", time.Since(stopped).Round(time.Millisecond),
		1+b.c.signals.standby.count()) // the one waited for, and the others
	for range 100 {
		if err := faultWriteTxn(t.Context(), e.db.Super, m, rng, 5); err != nil {
			t.Fatal(err)
		}
	}
	e.waitConfirmed(e.walLSN(), faultTimeout)
	e.checkExactlyOnce(m.want)
	if err := b.stop(); err != nil {
		t.Errorf("B: %v", err)
	}
}

// faultHooks intercepts the statements of a ChangelogDB pool.
type faultHooks struct {
	// afterQuery runs after each query (not exec) succeeded.
	afterQuery func(query string)
	// afterCommit runs after each transaction committed.
	afterCommit func()
	// beforeCommit runs before each commit; an error it returns rolls
	// the transaction back and is returned by Commit.
	beforeCommit func() error
}

// faultHookedDB opens a pool on dsn whose connections call hooks.
func faultHookedDB(t *testing.T, dsn string, hooks *faultHooks) *sql.DB {
	t.Helper()
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(faultConnector{stdlib.GetConnector(*cfg), hooks})
	t.Cleanup(func() { _ = db.Close() })
	return db
}

type faultConnector struct {
	driver.Connector
	hooks *faultHooks
}

func (c faultConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return hookedPgxConn{&faultConn{conn.(*stdlib.Conn), c.hooks}}, nil
}

// hookedPgxConn is a faultConn that gives pgx's connection through
// sql.Conn.Raw, as pgx's driver does (faultConn's field Conn hides the
// method), so that the consumer writes by COPY through it.
type hookedPgxConn struct{ *faultConn }

func (c hookedPgxConn) Conn() *pgx.Conn { return c.faultConn.Conn.Conn() }

// faultConn is a pgx connection (all its driver interfaces are promoted)
// with hooks after queries and commits.
type faultConn struct {
	*stdlib.Conn
	hooks *faultHooks
}

func (c *faultConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	rows, err := c.Conn.QueryContext(ctx, query, args)
	if err == nil && c.hooks.afterQuery != nil {
		c.hooks.afterQuery(query)
	}
	return rows, err
}

func (c *faultConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	tx, err := c.Conn.BeginTx(ctx, opts)
	if err != nil {
		return nil, err
	}
	return &faultTx{tx, c.hooks}, nil
}

type faultTx struct {
	driver.Tx
	hooks *faultHooks
}

func (tx *faultTx) Commit() error {
	if tx.hooks.beforeCommit != nil {
		if err := tx.hooks.beforeCommit(); err != nil {
			_ = tx.Tx.Rollback()
			return err
		}
	}
	err := tx.Tx.Commit()
	if err == nil && tx.hooks.afterCommit != nil {
		tx.hooks.afterCommit()
	}
	return err
}

// TestFaultTwoConsumersStalePosition forces the interleaving that makes a
// waiting consumer start from a stale position: B reads the recorded
// position, A then writes a batch and loses its replication connection
// before it confirms the batch to the server, and B starts streaming from
// the position it read. The server sends the batch again and B must not
// write it twice. The hooks rely on the consumer reading
// synchro.wal_position through ChangelogDB when it sets up its session.
func TestFaultTwoConsumersStalePosition(t *testing.T) {
	t.Parallel()
	e := newFaultEnv(t, pgtest.NewMigratedDatabase(t), "")
	super := e.db.Super

	var armA atomic.Bool
	bRead := make(chan struct{})
	releaseB := make(chan struct{})
	release := sync.OnceFunc(func() { close(releaseB) })
	var bOnce sync.Once
	hooksA := &faultHooks{}
	hooksB := &faultHooks{afterQuery: func(q string) {
		if strings.Contains(q, "FROM synchro.wal_position") {
			// B has read the position: hold it there once.
			bOnce.Do(func() {
				close(bRead)
				select {
				case <-releaseB:
				case <-time.After(faultTimeout):
				}
			})
		}
	}}
	var hookErr, hookState atomic.Value
	hooksA.afterCommit = func() {
		if !armA.CompareAndSwap(true, false) {
			return
		}
		// A committed a batch and has not confirmed it yet: its
		// replication connection goes away now.
		fail := func(err error) { hookErr.Store(err); release() }
		var pid int
		if err := super.QueryRow(`SELECT active_pid FROM pg_replication_slots WHERE slot_name = $1`, e.cfg.SlotName).Scan(&pid); err != nil {
			fail(err)
			return
		}
		if _, err := super.Exec(`SELECT pg_terminate_backend($1)`, pid); err != nil {
			fail(err)
			return
		}
		// This runs on A's goroutine: Poll, not WaitFor.
		deadline := time.Now().Add(faultTimeout)
		if _, err := pgtest.Poll("the slot to be released", faultTimeout, func() (bool, string) {
			_, p, _, err := e.slotState("")
			return err == nil && p == 0, fmt.Sprintf("pid %d, %v", p, err)
		}); err != nil {
			fail(err)
			return
		}
		// What the server and the changelog hold now.
		var state string
		if err := super.QueryRow(`
SELECT format('slot confirmed up to %s, changelog complete up to %s',
       (SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = $1),
       (SELECT pg_lsn '0/0' + confirmed_lsn FROM synchro.wal_position WHERE slot_name = $1))`, e.cfg.SlotName).Scan(&state); err != nil {
			fail(err)
			return
		}
		hookState.Store(state)
		// B goes on with the position it read, and streams before A's
		// reconnection.
		release()
		// B not streaming in time fails the test below.
		_, _ = pgtest.Poll("B to stream", time.Until(deadline), func() (bool, string) {
			_, p, _, err := e.slotState("")
			return err == nil && p != 0 && p != pid, ""
		})
	}

	logsA, logsB := newFaultLogs(t, "consumer A"), newFaultLogs(t, "consumer B")
	cfgA, cfgB := e.cfg, e.cfg
	cfgA.ChangelogDB = faultHookedDB(t, e.db.DSN, hooksA)
	cfgB.ChangelogDB = faultHookedDB(t, e.db.DSN, hooksB)
	faultStart(t, cfgA, logsA, "A").waitStreaming()

	m := newFaultModel("r")
	rng := faultRand(t)
	if err := faultWriteTxn(t.Context(), super, m, rng, 4); err != nil {
		t.Fatal(err)
	}
	e.waitConfirmed(e.walLSN(), faultTimeout)

	b := faultStart(t, cfgB, logsB, "B")
	t.Cleanup(release) // runs before B is stopped
	select {
	case <-bRead:
	case <-time.After(faultTimeout):
		t.Fatal("B did not read the recorded position")
	}
	armA.Store(true)
	before := map[string]int{}
	for id, w := range m.want {
		before[id] = len(w)
	}
	if err := faultWriteTxn(t.Context(), super, m, rng, 4); err != nil {
		t.Fatal(err)
	}
	var batch []string
	for id, w := range m.want {
		if len(w) > before[id] {
			batch = append(batch, id)
		}
	}
	slices.Sort(batch)
	var from pglogrepl.LSN
	pgtest.WaitFor(t, "A's batch and B's start", faultTimeout, func() (bool, string) {
		var streams bool
		from, streams = b.c.signals.streaming.received()
		return streams || hookErr.Load() != nil, fmt.Sprintf("B: %+v", b.c.Status())
	})
	if err, _ := hookErr.Load().(error); err != nil {
		t.Fatalf("hook of A: %v", err)
	}
	t.Logf("A wrote the batch of %v and lost its replication connection before confirming it: %v; B streams from %s",
		batch, hookState.Load(), from)
	if err := faultWriteTxn(t.Context(), super, m, rng, 4); err != nil {
		t.Fatal(err)
	}
	e.waitConfirmed(e.walLSN(), faultTimeout)
	e.checkExactlyOnce(m.want)
}

// TestFaultIdleConsumerConfirms writes only to a table that is not
// registered: the consumer has nothing to write, but must still confirm the
// server's position so that the slot does not hold WAL back.
func TestFaultIdleConsumerConfirms(t *testing.T) {
	t.Parallel()
	e := newFaultEnv(t, pgtest.NewMigratedDatabase(t), `CREATE TABLE unregistered (id serial PRIMARY KEY, v text)`)
	faultStart(t, e.cfg, newFaultLogs(t, "the consumer"), "c").waitStreaming()
	var position int64
	if err := e.db.Super.QueryRow(`SELECT confirmed_lsn FROM synchro.wal_position WHERE slot_name = $1`, e.cfg.SlotName).Scan(&position); err != nil {
		t.Fatal(err)
	}

	for i := range 200 {
		pgtest.Exec(t, e.db.Super, `INSERT INTO unregistered (v) VALUES ($1)`, fmt.Sprint(i))
	}
	target := e.walLSN()
	// The server streams only flushed WAL, and flushes asynchronously
	// (synchronous_commit=off): the consumer's clock starts at the flush.
	pgtest.WaitFor(t, "the WAL to be flushed", faultTimeout, func() (bool, string) {
		var flushed bool
		err := e.db.Super.QueryRow(`SELECT pg_current_wal_flush_lsn() >= $1::pg_lsn`, target).Scan(&flushed)
		return err == nil && flushed, fmt.Sprint(err)
	})
	took := e.waitConfirmed(target, 3*faultStandby)
	t.Logf("the slot was confirmed up to %s %v after the WAL was flushed", target, took.Round(time.Millisecond))

	var rows, after int64
	if err := e.db.Super.QueryRow(`SELECT (SELECT count(*) FROM synchro.changelog), (SELECT confirmed_lsn FROM synchro.wal_position WHERE slot_name = $1)`,
		e.cfg.SlotName).Scan(&rows, &after); err != nil {
		t.Fatal(err)
	}
	if rows != 0 || after != position {
		t.Errorf("after writes to an unregistered table: %d changelog rows, position %d (was %d); want none and the same", rows, after, position)
	}
}

// dropSlot drops the consumer's slot once its walsender released it.
func (e *faultEnv) dropSlot() {
	e.t.Helper()
	pgtest.WaitFor(e.t, "the slot to be dropped", faultTimeout, func() (bool, string) {
		_, err := e.db.Super.Exec(`SELECT pg_drop_replication_slot($1)`, e.cfg.SlotName)
		if err != nil && pgerr.Code(err) != pgerr.ObjectInUse {
			e.t.Fatalf("dropping the slot: %v", err)
		}
		return err == nil, fmt.Sprint(err)
	})
}

// edges returns the bucket edges of lists and items as "table id bucket".
func (e *faultEnv) edges(q string) []string {
	e.t.Helper()
	rows, err := e.db.Super.Query(q)
	if err != nil {
		e.t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var tb, id, bucket string
		if err := rows.Scan(&tb, &id, &bucket); err != nil {
			e.t.Fatal(err)
		}
		out = append(out, tb+" "+id+" "+bucket)
	}
	if err := rows.Err(); err != nil {
		e.t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

const (
	faultEdgesQuery = `SELECT table_name, record_id, bucket_id FROM synchro.bucket_edges WHERE table_name IN ('lists', 'items')`
	// faultRowBuckets is the bucket every current row of lists and items
	// belongs to.
	faultRowBuckets = `
SELECT 'lists', id, 'user:' || user_id FROM lists
UNION ALL
SELECT 'items', i.id, 'user:' || l.user_id FROM items i JOIN lists l ON l.id = i.list_id`
)

func faultMaxSeq(t *testing.T, db *sql.DB) int64 {
	t.Helper()
	var seq int64
	if err := db.QueryRow(`SELECT coalesce(max(seq), 0) FROM synchro.changelog`).Scan(&seq); err != nil {
		t.Fatal(err)
	}
	return seq
}

func faultBoundary(t *testing.T, db *sql.DB) int64 {
	t.Helper()
	var seq int64
	if err := db.QueryRow(`SELECT boundary_seq FROM synchro.compaction`).Scan(&seq); err != nil {
		t.Fatal(err)
	}
	return seq
}

// waitRows waits until the changelog has n rows after seq and returns
// them as "bucket table id op".
func (e *faultEnv) waitRows(after int64, n int) []string {
	e.t.Helper()
	var out []string
	pgtest.WaitFor(e.t, fmt.Sprintf("%d changelog rows after seq %d", n, after), faultTimeout, func() (bool, string) {
		rows, err := e.db.Super.Query(`SELECT bucket_id, table_name, record_id, operation FROM synchro.changelog WHERE seq > $1 ORDER BY seq`, after)
		if err != nil {
			e.t.Fatal(err)
		}
		defer rows.Close()
		out = out[:0]
		for rows.Next() {
			var b, tb, id string
			var op synchro.Operation
			if err := rows.Scan(&b, &tb, &id, &op); err != nil {
				e.t.Fatal(err)
			}
			out = append(out, fmt.Sprintf("%s %s %s %s", b, tb, id, op))
		}
		return len(out) >= n, fmt.Sprint(out)
	})
	return out
}

// faultDroppedSlot stops the consumer of a database with lists and items,
// changes rows while it is away, drops its slot and starts a consumer
// again. It returns the environment and the highest changelog seq before
// the slot was dropped.
func faultDroppedSlot(t *testing.T) (*faultEnv, *running, int64) {
	t.Helper()
	e := newFaultEnv(t, pgtest.NewMigratedDatabase(t), `
INSERT INTO lists (id, user_id, name) VALUES ('l1', 'alice', 'one'), ('l2', 'bob', 'two');
INSERT INTO items (id, list_id, title) VALUES ('i1', 'l1', 'a'), ('i2', 'l2', 'b');`)
	logs := newFaultLogs(t, "the consumers")
	first := faultStart(t, e.cfg, logs, "first")
	first.waitStreaming()
	pgtest.Exec(t, e.db.Super, `INSERT INTO lists (id, user_id, name) VALUES ('l3', 'carol', 'three')`)
	ctEqual(t, "change before the drop", e.waitRows(0, 1), "user:carol lists l3 create")
	if err := first.stop(); err != nil {
		t.Fatal(err)
	}
	maxSeq := faultMaxSeq(t, e.db.Super)

	// While the consumer is away: a move (its child follows), a delete
	// (its child is deleted by cascade), an insert.
	pgtest.Exec(t, e.db.Super, `
UPDATE lists SET user_id = 'dave' WHERE id = 'l1';
DELETE FROM lists WHERE id = 'l2';
INSERT INTO lists (id, user_id, name) VALUES ('l4', 'erin', 'four');
INSERT INTO items (id, list_id, title) VALUES ('i4', 'l4', 'd');`)
	e.dropSlot()
	second := faultStart(t, e.cfg, logs, "second")
	second.waitStreaming()
	return e, second, maxSeq
}

// TestFaultDroppedSlot drops the slot while the consumer is away: the
// consumer recreates it, records the buckets of every current row again
// (rows deleted meanwhile have none), raises the compaction boundary to the
// changelog's end and captures later changes.
func TestFaultDroppedSlot(t *testing.T) {
	t.Parallel()
	e, second, maxSeq := faultDroppedSlot(t)
	if second.c.signals.slotLost.count() == 0 {
		t.Error("the consumer did not notice the loss of the slot")
	}
	ctEqual(t, "bucket edges after the slot was recreated", e.edges(faultEdgesQuery),
		"items i1 user:dave", "items i4 user:erin", "lists l1 user:dave", "lists l3 user:carol", "lists l4 user:erin")
	ctEqual(t, "bucket edges against the rows", e.edges(faultEdgesQuery), e.edges(faultRowBuckets)...)
	// The recreation writes one marker row, in a bucket no client follows,
	// and raises the boundary to it.
	marker := faultMaxSeq(t, e.db.Super)
	var markerBucket string
	if err := e.db.Super.QueryRow(`SELECT bucket_id FROM synchro.changelog WHERE seq = $1`, marker).Scan(&markerBucket); err != nil ||
		marker <= maxSeq || markerBucket != bucket.BoundaryMarker {
		t.Errorf("after the recreation: max seq %d (was %d) in bucket %q (%v), want one marker row in %q", marker, maxSeq, markerBucket, err, bucket.BoundaryMarker)
	}
	if b := faultBoundary(t, e.db.Super); b != marker {
		t.Errorf("compaction boundary %d, want the marker's seq %d", b, marker)
	}
	maxSeq = marker

	pgtest.Exec(t, e.db.Super, `UPDATE lists SET name = 'x' WHERE id = 'l1'; INSERT INTO lists (id, user_id, name) VALUES ('l5', 'frank', 'five')`)
	ctEqual(t, "changes after the recreation", e.waitRows(maxSeq, 2), "user:dave lists l1 update", "user:frank lists l5 create")
	seq := faultMaxSeq(t, e.db.Super)
	pgtest.Exec(t, e.db.Super, `UPDATE lists SET user_id = 'gina' WHERE id = 'l4'`)
	ctEqual(t, "a move after the recreation", e.waitRows(seq, 4),
		"user:erin lists l4 delete", "user:gina lists l4 create", "user:erin items i4 delete", "user:gina items i4 create")
}

// TestFaultDroppedSlotCaughtUpClient: a client that had pulled everything
// before the slot was lost holds a checkpoint at the changelog's end. The
// changes made while the slot was gone are not in the changelog, so that
// client must be told to snapshot again: its checkpoint must be older than
// the compaction boundary (SPEC §4 invariant 4: a client at or past the
// boundary never gets snapshot_required).
func TestFaultDroppedSlotCaughtUpClient(t *testing.T) {
	t.Parallel()
	e, _, maxSeq := faultDroppedSlot(t)
	checkpoint := maxSeq // the last row, user:carol's l3, was pulled by carol
	if b := faultBoundary(t, e.db.Super); b <= checkpoint {
		t.Errorf("compaction boundary %d after the slot was recreated: a client at checkpoint %d (caught up before the loss) "+
			"is not older than the boundary, so it is never told to snapshot again and misses the changes made while the slot was gone", b, checkpoint)
	}
}

// TestFaultStartErrors checks the errors that retrying cannot fix: Start
// returns them at once.
func TestFaultStartErrors(t *testing.T) {
	t.Parallel()
	t.Run("missing table", func(t *testing.T) {
		t.Parallel()
		db := pgtest.NewMigratedDatabase(t)
		pgtest.Exec(t, db.Super, ctSchema)
		reg := ctRegistry()
		reg.Register(&synchro.TableConfig{TableName: "missing_table"})
		e := &faultEnv{t: t, db: db}
		e.cfg = ConsumerConfig{ConnString: db.DSN, SlotName: "s_" + db.Name, Registry: reg, ChangelogDB: db.Super, StandbyTimeout: faultStandby}
		err := faultStartErr(t, e.cfg)
		if err == nil || !strings.Contains(err.Error(), `"missing_table" does not exist`) {
			t.Errorf("Start with a missing table: %v, want an error naming the table", err)
		}
		if exists, _, _, err := e.slotState(""); err != nil || exists {
			t.Errorf("a slot was created (%v)", err)
		}
	})
	t.Run("slot of another plugin", func(t *testing.T) {
		t.Parallel()
		db := pgtest.NewMigratedDatabase(t)
		e := newFaultEnv(t, db, "")
		if _, err := db.Super.Exec(`SELECT pg_create_logical_replication_slot($1, 'test_decoding')`, e.cfg.SlotName); err != nil {
			t.Skipf("no test_decoding plugin: %v", err)
		}
		err := faultStartErr(t, e.cfg)
		if err == nil || !strings.Contains(err.Error(), "test_decoding") {
			t.Errorf("Start on a test_decoding slot: %v, want an error naming the plugin", err)
		}
	})
	t.Run("already running", func(t *testing.T) {
		t.Parallel()
		e := newFaultEnv(t, pgtest.NewMigratedDatabase(t), "")
		r := faultStart(t, e.cfg, newFaultLogs(t, "the consumer"), "c")
		r.waitStreaming()
		ctx, cancel := context.WithTimeout(t.Context(), faultTimeout)
		defer cancel()
		if err := r.c.Start(ctx); err == nil || !strings.Contains(err.Error(), "already running") {
			t.Errorf("a second Start: %v, want an error", err)
		}
	})
}

// faultStartErr runs Start and returns its error, which must come quickly.
func faultStartErr(t *testing.T, cfg ConsumerConfig) error {
	t.Helper()
	logs := newFaultLogs(t, "the consumer")
	cfg.Logger = slog.New(slog.NewTextHandler(logs, nil))
	c, err := NewConsumer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), faultTimeout)
	defer cancel()
	begin := time.Now()
	err = c.Start(ctx)
	if ctx.Err() != nil {
		t.Fatalf("Start retried for %v instead of returning the error", faultTimeout)
	}
	t.Logf("Start returned after %v: %v", time.Since(begin).Round(time.Millisecond), err)
	return err
}

// TestFaultNewConsumerRefusesInvalidConfigs checks the validation of
// ConsumerConfig.
func TestFaultNewConsumerRefusesInvalidConfigs(t *testing.T) {
	t.Parallel()
	db, err := sql.Open("pgx", "postgres://nobody@127.0.0.1:1/none") // never connected
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = db.Close() }()
	valid := func() ConsumerConfig {
		return ConsumerConfig{ConnString: "postgres://nobody@127.0.0.1:1/none", Registry: ctRegistry(), ChangelogDB: db}
	}
	if _, err := NewConsumer(valid()); err != nil {
		t.Fatalf("a valid config: %v", err)
	}
	tests := []struct {
		name   string
		change func(*ConsumerConfig)
		want   string
	}{
		{"no ConnString", func(c *ConsumerConfig) { c.ConnString = "" }, "ConnString"},
		{"bad ConnString", func(c *ConsumerConfig) { c.ConnString = "postgres://%zz" }, "ConnString"},
		{"no Registry", func(c *ConsumerConfig) { c.Registry = nil }, "Registry"},
		{"empty Registry", func(c *ConsumerConfig) { c.Registry = synchro.NewRegistry() }, "Registry"},
		{"no ChangelogDB", func(c *ConsumerConfig) { c.ChangelogDB = nil }, "ChangelogDB"},
		{"slot name with capitals and a dash", func(c *ConsumerConfig) { c.SlotName = "Bad-Name" }, "SlotName"},
		{"slot name too long", func(c *ConsumerConfig) { c.SlotName = strings.Repeat("s", 64) }, "SlotName"},
		{"publication name too long", func(c *ConsumerConfig) { c.PublicationName = strings.Repeat("p", 64) }, "PublicationName"},
		{"StandbyTimeout 1ms", func(c *ConsumerConfig) { c.StandbyTimeout = time.Millisecond }, "StandbyTimeout"},
		{"negative StandbyTimeout", func(c *ConsumerConfig) { c.StandbyTimeout = -time.Second }, "StandbyTimeout"},
		{"negative MaxBatchEvents", func(c *ConsumerConfig) { c.MaxBatchEvents = -1 }, "MaxBatchEvents"},
		{"negative MaxBatchDelay", func(c *ConsumerConfig) { c.MaxBatchDelay = -time.Millisecond }, "MaxBatchDelay"},
	}
	for _, tt := range tests {
		cfg := valid()
		tt.change(&cfg)
		c, err := NewConsumer(cfg)
		if err == nil || c != nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: NewConsumer = %v, %v; want an error about %s", tt.name, c, err, tt.want)
		}
	}
}

// holdCommits makes the consumer's changelog writes of e commit through a
// hook: once hold is set, the next commit closes held and waits until
// release is called (or faultTimeout passes).
func (e *faultEnv) holdCommits(t *testing.T) (hold *atomic.Bool, held chan struct{}, release func()) {
	t.Helper()
	hold, held = new(atomic.Bool), make(chan struct{})
	released := make(chan struct{})
	release = sync.OnceFunc(func() { close(released) })
	hooks := &faultHooks{beforeCommit: func() error {
		if hold.CompareAndSwap(true, false) {
			close(held)
			select {
			case <-released:
			case <-time.After(faultTimeout):
			}
		}
		return nil
	}}
	e.cfg.ChangelogDB = faultHookedDB(t, e.db.DSN, hooks)
	return hold, held, release
}

// TestFaultStreamGoesOnWhileWriting holds the commit of a batch. Meanwhile
// the consumer keeps receiving (it hears of WAL written after the batch),
// and the positions it confirms stay before the batch, even though the
// server moved on and nothing else is waiting to be written: a batch is
// confirmed only once committed. Transactions received while it is held
// are written after it, each once and in commit order.
func TestFaultStreamGoesOnWhileWriting(t *testing.T) {
	t.Parallel()
	e := newFaultEnv(t, pgtest.NewMigratedDatabase(t), `CREATE TABLE unregistered (id serial PRIMARY KEY, v text)`)
	hold, held, releaseOnce := e.holdCommits(t)
	logs := newFaultLogs(t, "the consumer")
	r := faultStart(t, e.cfg, logs, "c")
	t.Cleanup(releaseOnce) // runs before the consumer is stopped
	r.waitStreaming()
	m, rng := newFaultModel("r"), faultRand(t)
	if err := faultWriteTxn(t.Context(), e.db.Super, m, rng, 4); err != nil {
		t.Fatal(err)
	}
	e.waitConfirmed(e.walLSN(), faultTimeout)

	hold.Store(true)
	if err := faultWriteTxn(t.Context(), e.db.Super, m, rng, 4); err != nil {
		t.Fatal(err)
	}
	// Past the end of the held transaction: confirming this far would say
	// it is written. (Up to its commit the consumer may confirm: a slot's
	// position counts the transactions that commit before it.)
	committed := e.walLSN()
	select {
	case <-held:
	case <-time.After(faultTimeout):
		t.Fatal("the batch was not written")
	}
	// WAL the consumer has nothing to write for.
	for i := range 50 {
		pgtest.Exec(t, e.db.Super, `INSERT INTO unregistered (v) VALUES ($1)`, fmt.Sprint(i))
	}
	e.waitReceived(r, e.walLSN())
	// Several status intervals: a confirmation past the held batch would
	// show in the slot by now.
	time.Sleep(3 * faultStandby) // an observation window, not a synchronisation
	_, _, past, err := e.slotState(committed)
	if err != nil {
		t.Fatal(err)
	}
	if confirmed := pglogrepl.LSN(r.c.confirmedLSN.Load()); past || confirmed >= faultParseLSN(t, committed) {
		t.Fatalf("confirmed up to %s (the slot: %v, the consumer: %s) while the transaction ending before it was not written", committed, past, confirmed)
	}

	// More transactions while the batch is held: received, written later.
	for range 5 {
		if err := faultWriteTxn(t.Context(), e.db.Super, m, rng, 4); err != nil {
			t.Fatal(err)
		}
	}
	e.waitReceived(r, e.walLSN())
	if errs := r.c.signals.reconnecting.drain(); len(errs) != 0 {
		t.Fatalf("the stream was interrupted %d times: %v", len(errs), errs)
	}
	releaseOnce()
	e.waitConfirmed(e.walLSN(), faultTimeout)
	e.checkExactlyOnce(m.want)
}

// TestFaultStatusWhileNextBatchFull holds the commit of a batch while more
// transactions than MaxBatchEvents arrive: the consumer stops receiving
// until the batch is written, yet keeps sending the server its status at
// every StandbyTimeout (a write slower than wal_sender_timeout would
// otherwise cost the connection). The walsender's reply_time moves on
// while the batch is held.
func TestFaultStatusWhileNextBatchFull(t *testing.T) {
	t.Parallel()
	e := newFaultEnv(t, pgtest.NewMigratedDatabase(t), "")
	e.cfg.MaxBatchEvents = 4
	hold, held, releaseOnce := e.holdCommits(t)
	logs := newFaultLogs(t, "the consumer")
	r := faultStart(t, e.cfg, logs, "c")
	t.Cleanup(releaseOnce) // runs before the consumer is stopped
	r.waitStreaming()
	m, rng := newFaultModel("r"), faultRand(t)

	hold.Store(true)
	if err := faultWriteTxn(t.Context(), e.db.Super, m, rng, 4); err != nil {
		t.Fatal(err)
	}
	select {
	case <-held:
	case <-time.After(faultTimeout):
		t.Fatal("the batch was not written")
	}
	// A full next batch, and more behind it.
	for range 4 {
		if err := faultWriteTxn(t.Context(), e.db.Super, m, rng, 4); err != nil {
			t.Fatal(err)
		}
	}
	replyTime := func() time.Time {
		var at sql.NullTime
		if err := e.db.Super.QueryRow(`SELECT r.reply_time FROM pg_stat_replication r
			JOIN pg_replication_slots s ON s.active_pid = r.pid WHERE s.slot_name = $1`, e.cfg.SlotName).Scan(&at); err != nil {
			t.Fatal(err)
		}
		return at.Time
	}
	time.Sleep(2 * faultStandby) // let the consumer fill the next batch and stop receiving
	before := replyTime()
	pgtest.WaitFor(t, "a status sent while the batch is held", 10*faultStandby, func() (bool, string) {
		now := replyTime()
		return now.After(before), fmt.Sprintf("reply_time %v, before %v", now, before)
	})
	releaseOnce()
	e.waitConfirmed(e.walLSN(), faultTimeout)
	e.checkExactlyOnce(m.want)
}

// TestFaultFailedWrite makes the commit of a batch fail once while more
// transactions arrive: the consumer must not write what came after the
// failed batch ahead of it, but start over from its position, and every
// change ends in the changelog once, in commit order.
func TestFaultFailedWrite(t *testing.T) {
	t.Parallel()
	e := newFaultEnv(t, pgtest.NewMigratedDatabase(t), "")
	var fail atomic.Bool
	failing := make(chan struct{})
	hooks := &faultHooks{beforeCommit: func() error {
		if fail.CompareAndSwap(true, false) {
			close(failing)
			// Let the stream receive what is written meanwhile.
			time.Sleep(100 * time.Millisecond) // widens the window the test is about
			return errInjected
		}
		return nil
	}}
	e.cfg.ChangelogDB = faultHookedDB(t, e.db.DSN, hooks)
	r := faultStart(t, e.cfg, newFaultLogs(t, "the consumer"), "c")
	r.waitStreaming()
	m, rng := newFaultModel("r"), faultRand(t)
	fail.Store(true)
	if err := faultWriteTxn(t.Context(), e.db.Super, m, rng, 6); err != nil {
		t.Fatal(err)
	}
	select {
	case <-failing:
	case <-time.After(faultTimeout):
		t.Fatal("no batch was written")
	}
	for range 10 {
		if err := faultWriteTxn(t.Context(), e.db.Super, m, rng, 6); err != nil {
			t.Fatal(err)
		}
	}
	e.waitConfirmed(e.walLSN(), faultTimeout)
	e.checkExactlyOnce(m.want)
	errs := r.c.signals.reconnecting.drain()
	if !slices.ContainsFunc(errs, func(err error) bool { return errors.Is(err, errInjected) }) {
		t.Errorf("the consumer did not retry after the failure: retried after %v", errs)
	}
}

// errInjected is the commit failure of TestFaultFailedWrite.
var errInjected = errors.New("injected commit failure")

// errInjectedOther is another commit failure, for TestFaultPoisonBatchBacksOff.
var errInjectedOther = errors.New("another injected commit failure")

// TestFaultEdgeStoredMeanwhile stores, between the batch's reading of the
// bucket edges and its writing them, an edge the batch is about to insert
// (as a writer that does not take the slot's lock could): the batch must
// still commit, without an interruption of the stream, and the edge be
// there once.
func TestFaultEdgeStoredMeanwhile(t *testing.T) {
	t.Parallel()
	for _, insertOnly := range []bool{false, true} {
		t.Run(fmt.Sprintf("insertOnly=%v", insertOnly), func(t *testing.T) {
			t.Parallel()
			testEdgeStoredMeanwhile(t, insertOnly)
		})
	}
}

// testEdgeStoredMeanwhile is TestFaultEdgeStoredMeanwhile with the edges
// written by COPY, or by INSERT (insertOnly).
func testEdgeStoredMeanwhile(t *testing.T, insertOnly bool) {
	e := newFaultEnv(t, pgtest.NewMigratedDatabase(t), "")
	var arm atomic.Bool
	var hookErr atomic.Value
	hooks := &faultHooks{afterQuery: func(q string) {
		if strings.Contains(q, "CROSS JOIN LATERAL") && arm.CompareAndSwap(true, false) {
			if _, err := e.db.Super.Exec(`INSERT INTO synchro.bucket_edges (table_name, record_id, bucket_id) VALUES ('lists', 'l9', 'user:alice')`); err != nil {
				hookErr.Store(err)
			}
		}
	}}
	e.cfg.ChangelogDB = faultHookedDB(t, e.db.DSN, hooks)
	r := faultStart(t, e.cfg, newFaultLogs(t, "the consumer"), "c")
	r.waitStreaming()
	r.c.applier.insertOnly.Store(insertOnly)
	arm.Store(true)
	pgtest.Exec(t, e.db.Super, `INSERT INTO lists (id, user_id, name) VALUES ('l9', 'alice', 'nine'), ('l10', 'alice', 'ten')`)
	e.waitConfirmed(e.walLSN(), faultTimeout)
	if err, _ := hookErr.Load().(error); err != nil {
		t.Fatalf("storing the edge: %v", err)
	}
	if arm.Load() {
		t.Fatal("the batch did not read the edges")
	}
	if errs := r.c.signals.reconnecting.drain(); len(errs) != 0 {
		t.Fatalf("the stream was interrupted %d times: %v", len(errs), errs)
	}
	if n := r.c.signals.edgesRaced.count(); n != 1 {
		t.Errorf("the conflict was met %d times, want once", n)
	}
	rows := e.waitRows(0, 2)
	ctEqual(t, "changelog", rows, "user:alice lists l9 create", "user:alice lists l10 create")
	ctEqual(t, "edges", e.edges(faultEdgesQuery), "lists l10 user:alice", "lists l9 user:alice")
}

// waitReceived waits until consumer r has received the server's WAL up to
// lsn (it may not have written it).
func (e *faultEnv) waitReceived(r *running, lsn string) {
	e.t.Helper()
	target := faultParseLSN(e.t, lsn)
	// The server streams only flushed WAL, and flushes asynchronously
	// (synchronous_commit=off).
	pgtest.WaitFor(e.t, "the WAL to be flushed", faultTimeout, func() (bool, string) {
		var flushed bool
		err := e.db.Super.QueryRow(`SELECT pg_current_wal_flush_lsn() >= $1::pg_lsn`, lsn).Scan(&flushed)
		return err == nil && flushed, fmt.Sprint(err)
	})
	pgtest.WaitFor(e.t, "the consumer to receive WAL up to "+lsn, faultTimeout, func() (bool, string) {
		got := r.c.Lag().ServerLSN
		return got >= target, "received up to " + got.String()
	})
}

func faultParseLSN(t *testing.T, s string) pglogrepl.LSN {
	t.Helper()
	lsn, err := pglogrepl.ParseLSN(s)
	if err != nil {
		t.Fatal(err)
	}
	return lsn
}

// TestFaultPoisonBatchBacksOff makes every commit of a batch fail, as a
// batch whose data PostgreSQL refuses would: the consumer streams, fails
// to write, and starts over each time without progress. Its retries must
// back off (the backoff used to start over at each session that streamed,
// about ten retries a second) and be logged at Warn once; once the batch
// is written, a new failure is retried at once and logged again.
func TestFaultPoisonBatchBacksOff(t *testing.T) {
	t.Parallel()
	e := newFaultEnv(t, pgtest.NewMigratedDatabase(t), "")
	var poison, otherError, failOnce atomic.Bool
	hooks := &faultHooks{beforeCommit: func() error {
		if otherError.Load() {
			return errInjectedOther
		}
		if poison.Load() || failOnce.CompareAndSwap(true, false) {
			return errInjected
		}
		return nil
	}}
	e.cfg.ChangelogDB = faultHookedDB(t, e.db.DSN, hooks)
	logs := newFaultLogs(t, "the consumer")
	r := faultStart(t, e.cfg, logs, "c")
	r.waitStreaming()
	m, rng := newFaultModel("p"), faultRand(t)
	poison.Store(true)
	if err := faultWriteTxn(t.Context(), e.db.Super, m, rng, 3); err != nil {
		t.Fatal(err)
	}
	const interrupted = `msg="wal: replication interrupted; reconnecting"`
	pgtest.WaitFor(t, "five failed writes", faultTimeout, func() (bool, string) {
		n := logs.count(interrupted)
		return n >= 5, fmt.Sprintf("%d failures", n)
	})
	waits := retryWaits(t, logs.grep(interrupted))
	// Waits are drawn from [backoff/2, backoff], the backoff doubling from
	// 100 ms: the fifth is at least 800 ms; starting over, at most 100 ms.
	if len(waits) < 5 || waits[4] < 800*time.Millisecond {
		t.Errorf("retry waits %v: want them to grow, the fifth at least 800ms", waits)
	}
	if warn := logs.count(`level=WARN ` + interrupted); warn != 1 {
		t.Errorf("%d of %d failures logged at Warn; want the first only:\n%s", warn, len(waits), logs.grep(interrupted))
	}
	if s := r.c.Status(); !strings.Contains(s.LastError, errInjected.Error()) || s.Failures < len(waits) {
		t.Errorf("status while failing: %+v; want the error and at least %d failures", s, len(waits))
	}
	// Another error is another condition: logged at Warn once too.
	otherError.Store(true)
	pgtest.WaitFor(t, "a failure with the other error", faultTimeout, func() (bool, string) {
		n := logs.count(errInjectedOther.Error())
		return n >= 2, fmt.Sprintf("%d failures with it", n)
	})
	if warn := logs.count(`level=WARN ` + interrupted); warn != 2 {
		t.Errorf("%d failures logged at Warn; want the first of each error:\n%s", warn, logs.grep(interrupted))
	}
	otherError.Store(false)

	poison.Store(false)
	e.waitConfirmed(e.walLSN(), faultTimeout)
	e.checkExactlyOnce(m.want)
	if s := r.c.Status(); s.Failures != 0 {
		t.Errorf("status once the batch is written: %+v; want no failures", s)
	}
	// Progress made: the next failure is a new condition.
	before := logs.count(interrupted)
	failOnce.Store(true)
	if err := faultWriteTxn(t.Context(), e.db.Super, m, rng, 3); err != nil {
		t.Fatal(err)
	}
	e.waitConfirmed(e.walLSN(), faultTimeout)
	e.checkExactlyOnce(m.want)
	lines := strings.Split(logs.grep(interrupted), "\n")
	if len(lines) <= before {
		t.Fatalf("no failure logged after the progress:\n%s", logs.grep(interrupted))
	}
	next := lines[before]
	if w := retryWaits(t, next); !strings.Contains(next, "level=WARN") || len(w) != 1 || w[0] > 100*time.Millisecond {
		t.Errorf("the failure after progress: %s; want it at Warn, retried within 100ms", next)
	}
}

// retryWaits returns the retry_in values of log lines.
func retryWaits(t *testing.T, lines string) []time.Duration {
	t.Helper()
	var out []time.Duration
	for _, m := range regexp.MustCompile(`retry_in=(\S+)`).FindAllStringSubmatch(lines, -1) {
		d, err := time.ParseDuration(m[1])
		if err != nil {
			t.Fatalf("retry_in %q: %v", m[1], err)
		}
		out = append(out, d)
	}
	return out
}
