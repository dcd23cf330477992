package synchro_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/synchrosync/synchro"
	"github.com/synchrosync/synchro/internal/pgtest"
)

// This file holds a model-based convergence test of the read path: random
// pushes, direct SQL writes, pulls and snapshots by several clients of
// several users, and compaction runs, checking isolation at every response,
// honest retention at every pull and compaction run, and convergence at
// checks along the way and at the end. Helpers carry the prefix "md".
//
// Compaction runs as a step (exact checks: the boundary cannot move during
// a pull), and in a third variant also in a goroutine, in a loop, during
// the whole run. A step makes clients look idle for longer than the stale
// threshold (their last activity two thresholds ago): the next run
// deactivates them, and they may then fall behind the boundary and be told
// to snapshot again, which they do. A pull is told so exactly when its
// checkpoint is below the boundary. A client that syncs (the model's stale
// flag is clear) must never be passed by the boundary: neither the
// checkpoint it pulls from nor the one of its snapshot in progress; with
// background compaction no client is made idle, and none may ever be told
// to snapshot again. Another step soft-deletes a row as if long ago, so
// that compaction prunes its bucket edges.
//
// Run it longer, or with another seed, with for example
//
//	go test -run ConvergenceModel -readpath.seed=7 -readpath.steps=5000 .

var (
	mdSeed  = flag.Uint64("readpath.seed", 1, "seed of TestReadPathConvergenceModel")
	mdSteps = flag.Int("readpath.steps", 200, "number of random steps of TestReadPathConvergenceModel")
)

// mdUsers are the users of the model and their devices.
var mdUsers = []struct {
	user    string
	devices []string
}{
	{"alice", []string{"a1", "a2", "a3"}},
	{"bob", []string{"b1", "b2"}},
	{"carol", []string{"c1", "c2"}},
}

// mdMaxRows bounds each table: an insert into a table that holds as many
// rows deletes one instead.
const mdMaxRows = 40

// mdLogSize is how many steps the failure report shows.
const mdLogSize = 50

// mdStaleThreshold is the compactor's stale threshold in the model; a
// client made to look idle last synced twice as long ago.
const mdStaleThreshold = time.Hour

func TestReadPathConvergenceModel(t *testing.T) {
	t.Parallel()
	seed, steps := *mdSeed, *mdSteps
	for _, v := range []struct {
		name            string
		app, background bool
	}{
		{"superuser", false, false},
		{"app role", true, false},
		{"superuser, background compaction", false, true},
	} {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			t.Logf("seed %d, %d steps (-readpath.seed, -readpath.steps)", seed, steps)
			req := &mdRequired{last: map[string]mdRequiredCall{}}
			e := rpStart(t, rpOptions{app: v.app, config: func(cfg *synchro.Config) {
				cfg.Compactor = &synchro.CompactorConfig{StaleThreshold: mdStaleThreshold, Logger: slog.New(slog.DiscardHandler)}
				cfg.Hooks.OnSnapshotRequired = req.record
			}})
			m := mdNew(t, e, seed)
			m.required = req
			start := time.Now()
			for range 15 { // step 0: some rows before the clients come
				m.sqlStep()
			}
			if v.background {
				m.startBackgroundCompaction()
			}
			for m.step = 1; m.step <= steps; m.step++ {
				m.randomStep()
			}
			m.step = steps + 1
			m.finish()
			m.stopBackgroundCompaction()
			t.Logf("%d steps in %v: %v", steps, time.Since(start).Round(time.Millisecond), m.statLine())
		})
	}
}

// mdRequired records the last call of Hooks.OnSnapshotRequired for each
// client id (the model's client ids are unique across users).
type mdRequired struct {
	mu   sync.Mutex
	last map[string]mdRequiredCall
}

// mdRequiredCall is a call of Hooks.OnSnapshotRequired.
type mdRequiredCall struct {
	checkpoint, minSeq int64
	reason             string
}

func (r *mdRequired) record(_ context.Context, clientID string, checkpoint, minSeq int64, reason string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.last[clientID] = mdRequiredCall{checkpoint, minSeq, reason}
}

// take returns and forgets the last call for clientID.
func (r *mdRequired) take(clientID string) (mdRequiredCall, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, ok := r.last[clientID]
	delete(r.last, clientID)
	return c, ok
}

// mdModel is the state of one run: the environment, the random source, the
// clients and the step log.
type mdModel struct {
	t       *testing.T
	e       *rpEnv
	db      *sql.DB // the superuser pool
	rng     *rand.Rand
	seed    uint64
	step    int
	log     []mdLogLine
	clients []*mdClient
	next    map[string]int // id counters per table
	ver     int64
	hash    string
	stats   map[string]int
	// required records the snapshot-required answers (the hook).
	required *mdRequired
	// background is set while compaction also runs in a goroutine; the
	// boundary may then move at any moment.
	background bool
	// stopBackground stops that goroutine and returns what it saw.
	stopBackground func() mdBackground
}

// mdLogLine is a line of the step log.
type mdLogLine struct {
	step int
	text string
}

// mdClient is a device: its local copy (in the embedded rpClient) and where
// it stands with snapshots.
type mdClient struct {
	*rpClient
	name string
	// snapshotted tells whether the server recorded a completed snapshot
	// of the client.
	snapshotted bool
	// valid tells whether rows and checkpoint form a state to pull from:
	// false from the start of an in-place snapshot until one completes.
	valid bool
	// snap is the snapshot in progress, or nil.
	snap *mdSnap
	// stale tells that the model made the client look idle (its last sync
	// older than the stale threshold) and it has not synced since: a
	// compaction run may deactivate it and pass its checkpoint. Pulls
	// recorded by the server, snapshots starting (they reactivate the
	// client) and completing clear it.
	stale bool
}

// mdSnap is a snapshot in progress.
type mdSnap struct {
	cursor     *synchro.SnapshotCursor
	checkpoint int64
	limit      int
	// staged snapshots collect their pages apart and keep the client's
	// copy until they complete; in-place ones replace it from the start.
	staged bool
	rows   map[string]json.RawMessage
	seen   map[string]bool
	pages  int
}

// mdDB is what both *sql.DB and *sql.Tx offer.
type mdDB interface {
	pgtest.Execer
	pgtest.Querier
	Query(string, ...any) (*sql.Rows, error)
	QueryRow(string, ...any) *sql.Row
}

func mdNew(t *testing.T, e *rpEnv, seed uint64) *mdModel {
	m := &mdModel{t: t, e: e, db: e.db.Super, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		seed: seed, next: map[string]int{}, stats: map[string]int{}}
	m.ver, m.hash = e.schema()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("failed with -readpath.seed=%d at step %d; reproduce with\n\tgo test -count=1 -run '^%s$' -readpath.seed=%d -readpath.steps=%d .\nthe last %d steps:\n%s",
				m.seed, m.step, t.Name(), m.seed, *mdSteps, mdLogSize, m.logText())
		}
	})
	for _, u := range mdUsers {
		for _, d := range u.devices {
			c := &mdClient{rpClient: e.client(u.user, d), name: u.user + "/" + d}
			m.clients = append(m.clients, c)
		}
	}
	return m
}

// logf appends a line to the step log, which keeps the lines of the last
// mdLogSize steps.
func (m *mdModel) logf(format string, args ...any) {
	m.log = append(m.log, mdLogLine{m.step, fmt.Sprintf(format, args...)})
	drop := 0
	for drop < len(m.log) && m.log[drop].step <= m.step-mdLogSize {
		drop++
	}
	if drop > len(m.log)/2 {
		m.log = slices.Clone(m.log[drop:])
	}
}

// logText returns the lines of the last mdLogSize steps.
func (m *mdModel) logText() string {
	var b strings.Builder
	for _, l := range m.log {
		if l.step > m.step-mdLogSize {
			fmt.Fprintf(&b, "%5d %s\n", l.step, l.text)
		}
	}
	return b.String()
}

// fatalf stops the run, naming the seed and step.
func (m *mdModel) fatalf(format string, args ...any) {
	m.t.Helper()
	m.t.Fatalf("seed %d step %d: %s", m.seed, m.step, fmt.Sprintf(format, args...))
}

func (m *mdModel) statLine() string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m.stats)) {
		parts = append(parts, fmt.Sprintf("%s=%d", k, m.stats[k]))
	}
	return strings.Join(parts, " ")
}

// choose returns an index drawn with the given weights.
func (m *mdModel) choose(weights ...int) int {
	total := 0
	for _, w := range weights {
		total += w
	}
	r := m.rng.IntN(total)
	for i, w := range weights {
		if r < w {
			return i
		}
		r -= w
	}
	panic("unreachable")
}

// pick returns a random element of ids, "" when there is none.
func (m *mdModel) pick(ids []string) string {
	if len(ids) == 0 {
		return ""
	}
	return ids[m.rng.IntN(len(ids))]
}

func (m *mdModel) pickClient() *mdClient { return m.clients[m.rng.IntN(len(m.clients))] }

func (m *mdModel) word() string { return fmt.Sprintf("w%d", m.rng.IntN(100000)) }

// newID returns an id never used before in table.
func (m *mdModel) newID(table string) string {
	m.next[table]++
	n := m.next[table]
	switch table {
	case "items":
		return fmt.Sprintf("00000000-0000-4000-8000-%012d", n)
	case "notes":
		return fmt.Sprintf("n%d", n)
	case "categories":
		return fmt.Sprintf("c%d", n)
	}
	return fmt.Sprint(n) // lists, tips
}

// insertID returns the id of a row to insert into table: mostly a new one,
// sometimes the id of a row deleted earlier (a hard delete or TRUNCATE
// followed by an insert of the same key).
func (m *mdModel) insertID(x mdDB, table string) string {
	if m.rng.IntN(4) > 0 || m.next[table] == 0 {
		return m.newID(table)
	}
	n := m.next[table]
	m.next[table] = m.rng.IntN(n) // newID increments it again
	id := m.newID(table)
	m.next[table] = n
	var exists bool
	if err := x.QueryRow(`SELECT EXISTS (SELECT 1 FROM `+table+` WHERE id::text = $1)`, id).Scan(&exists); err != nil {
		m.fatalf("reading %s/%s: %v", table, id, err)
	}
	if exists {
		return m.newID(table)
	}
	return id
}

// owner returns an owner value for lists and tips: mostly a user, sometimes
// NULL or empty.
func (m *mdModel) owner() any {
	switch m.choose(8, 1, 1) {
	case 0:
		return mdUsers[m.rng.IntN(len(mdUsers))].user
	case 1:
		return nil
	}
	return ""
}

func mdFmtOwner(v any) string {
	if v == nil {
		return "NULL"
	}
	return fmt.Sprintf("%q", v)
}

// ids runs a query returning one text column.
func (m *mdModel) ids(x mdDB, q string, args ...any) []string {
	m.t.Helper()
	rows, err := x.Query(q, args...)
	if err != nil {
		m.fatalf("query %q: %v", q, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			m.fatalf("query %q: %v", q, err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		m.fatalf("query %q: %v", q, err)
	}
	return out
}

func (m *mdModel) count(x mdDB, table string) int {
	m.t.Helper()
	return pgtest.Count(m.t, x, `SELECT count(*) FROM `+table)
}

// randomStep runs one step of the model.
func (m *mdModel) randomStep() {
	switch m.choose(35, 25, 27, 9, 3, 2, 6, 3, 1) {
	case 0:
		m.sqlStep()
	case 1:
		m.pushStep()
	case 2:
		m.pullStep()
	case 3:
		m.snapshotStep()
	case 4:
		m.checkStep()
	case 5:
		// Let the consumer catch up, so that the next pulls see the
		// latest writes (it lags by a few steps otherwise).
		m.e.caughtUp()
		m.stats["caught up"]++
		m.logf("the consumer caught up")
	case 6:
		m.compactStep()
	case 7:
		m.ageStep()
	default:
		m.oldSoftDeleteStep()
	}
}

// ---------------------------------------------------------------------------
// Direct SQL writes by the application (the superuser).

// sqlStep runs one to three random writes in one transaction.
func (m *mdModel) sqlStep() {
	n := 1
	if m.rng.IntN(10) < 3 {
		n = 2 + m.rng.IntN(2)
	}
	tx, err := m.db.Begin()
	if err != nil {
		m.fatalf("begin: %v", err)
	}
	defer func() { _ = tx.Rollback() }()
	var descs []string
	for range n {
		descs = append(descs, m.sqlOp(tx))
	}
	if err := tx.Commit(); err != nil {
		m.fatalf("commit: %v", err)
	}
	m.stats["sql"]++
	m.logf("sql: %s", strings.Join(descs, "; "))
}

func (m *mdModel) sqlOp(x mdDB) string {
	switch m.choose(3, 10, 10, 6, 5, 1) {
	case 0:
		return m.sqlCategory(x)
	case 1:
		return m.sqlList(x)
	case 2:
		return m.sqlItem(x)
	case 3:
		return m.sqlNote(x)
	case 4:
		return m.sqlTip(x)
	}
	table := []string{"notes", "tips"}[m.rng.IntN(2)]
	pgtest.Exec(m.t, x, `TRUNCATE `+table)
	m.stats["truncate"]++
	return "TRUNCATE " + table
}

// full reports whether an insert into table should delete a row instead.
func (m *mdModel) full(x mdDB, table string) bool { return m.count(x, table) >= mdMaxRows }

func (m *mdModel) sqlCategory(x mdDB) string {
	all := m.ids(x, `SELECT id FROM categories ORDER BY id`)
	op := m.choose(2, 1, 1)
	if len(all) == 0 {
		op = 0
	} else if op == 0 && m.full(x, "categories") {
		op = 2
	}
	switch op {
	case 0:
		id, name := m.newID("categories"), m.word()
		pgtest.Exec(m.t, x, `INSERT INTO categories (id, name) VALUES ($1, $2)`, id, name)
		return "insert categories/" + id
	case 1:
		id, name := m.pick(all), m.word()
		pgtest.Exec(m.t, x, `UPDATE categories SET name = $2 WHERE id = $1`, id, name)
		return "update categories/" + id
	}
	id := m.pick(all)
	pgtest.Exec(m.t, x, `DELETE FROM categories WHERE id = $1`, id)
	return "delete categories/" + id
}

func (m *mdModel) sqlList(x mdDB) string {
	all := m.ids(x, `SELECT id::text FROM lists ORDER BY id`)
	op := m.choose(4, 2, 3, 1, 2, 2, 1, 1)
	if len(all) == 0 {
		op = 0
	} else if op == 0 && m.full(x, "lists") {
		op = 6
	}
	switch op {
	case 0:
		id, owner, name := m.insertID(x, "lists"), m.owner(), m.word()
		pgtest.Exec(m.t, x, `INSERT INTO lists (id, user_id, name) VALUES ($1, $2, $3)`, id, owner, name)
		return fmt.Sprintf("insert lists/%s owner %s", id, mdFmtOwner(owner))
	case 1:
		id, name := m.pick(all), m.word()
		pgtest.Exec(m.t, x, `UPDATE lists SET name = $2, updated_at = now() WHERE id = $1`, id, name)
		return "update lists/" + id
	case 2:
		id, owner := m.pick(all), m.owner()
		pgtest.Exec(m.t, x, `UPDATE lists SET user_id = $2 WHERE id = $1`, id, owner)
		return fmt.Sprintf("owner lists/%s -> %s", id, mdFmtOwner(owner))
	case 3:
		from, to := mdUsers[m.rng.IntN(len(mdUsers))].user, m.owner()
		pgtest.Exec(m.t, x, `UPDATE lists SET user_id = $2 WHERE user_id = $1`, from, to)
		return fmt.Sprintf("owner of every list of %s -> %s", from, mdFmtOwner(to))
	case 4:
		id := m.pick(m.ids(x, `SELECT id::text FROM lists WHERE deleted_at IS NULL ORDER BY id`))
		if id == "" {
			id = m.pick(all)
		}
		pgtest.Exec(m.t, x, `UPDATE lists SET deleted_at = now() WHERE id = $1`, id)
		return "soft delete lists/" + id
	case 5:
		id := m.pick(m.ids(x, `SELECT id::text FROM lists WHERE deleted_at IS NOT NULL ORDER BY id`))
		if id == "" {
			id = m.pick(all)
		}
		pgtest.Exec(m.t, x, `UPDATE lists SET deleted_at = NULL WHERE id = $1`, id)
		return "resurrect lists/" + id
	case 6:
		id := m.pick(all)
		pgtest.Exec(m.t, x, `DELETE FROM lists WHERE id = $1`, id)
		return "hard delete lists/" + id + " (cascade)"
	}
	id, owner, name := m.pick(all), m.owner(), m.word()
	pgtest.Exec(m.t, x, `DELETE FROM lists WHERE id = $1`, id)
	pgtest.Exec(m.t, x, `INSERT INTO lists (id, user_id, name) VALUES ($1, $2, $3)`, id, owner, name)
	return fmt.Sprintf("delete and reinsert lists/%s owner %s", id, mdFmtOwner(owner))
}

// parent returns a random id of the rows of q, or nil (NULL) one time in
// ten or when there is none.
func (m *mdModel) parent(x mdDB, q string) any {
	all := m.ids(x, q)
	if m.rng.IntN(10) == 0 || len(all) == 0 {
		return nil
	}
	return m.pick(all)
}

func mdFmtParent(v any) string {
	if v == nil {
		return "NULL"
	}
	return fmt.Sprint(v)
}

func (m *mdModel) sqlItem(x mdDB) string {
	all := m.ids(x, `SELECT id::text FROM items ORDER BY id`)
	op := m.choose(4, 2, 1, 3, 2, 2, 1)
	if len(all) == 0 {
		op = 0
	} else if op == 0 && m.full(x, "items") {
		op = 6
	}
	switch op {
	case 0:
		id, list, title, secret := m.insertID(x, "items"), m.parent(x, `SELECT id::text FROM lists ORDER BY id`), m.word(), m.word()
		pgtest.Exec(m.t, x, `INSERT INTO items (id, list_id, title, secret) VALUES ($1, $2, $3, $4)`, id, list, title, secret)
		return fmt.Sprintf("insert items/%s list %s", id, mdFmtParent(list))
	case 1:
		id, title := m.pick(all), m.word()
		pgtest.Exec(m.t, x, `UPDATE items SET title = $2, updated_at = now() WHERE id = $1`, id, title)
		return "update items/" + id
	case 2:
		id, secret := m.pick(all), m.word()
		pgtest.Exec(m.t, x, `UPDATE items SET secret = $2 WHERE id = $1`, id, secret)
		return "update secret of items/" + id
	case 3:
		id, list := m.pick(all), m.parent(x, `SELECT id::text FROM lists ORDER BY id`)
		pgtest.Exec(m.t, x, `UPDATE items SET list_id = $2 WHERE id = $1`, id, list)
		return fmt.Sprintf("move items/%s to list %s", id, mdFmtParent(list))
	case 4:
		id := m.pick(m.ids(x, `SELECT id::text FROM items WHERE deleted_at IS NULL ORDER BY id`))
		if id == "" {
			id = m.pick(all)
		}
		pgtest.Exec(m.t, x, `UPDATE items SET deleted_at = now() WHERE id = $1`, id)
		return "soft delete items/" + id
	case 5:
		id := m.pick(m.ids(x, `SELECT id::text FROM items WHERE deleted_at IS NOT NULL ORDER BY id`))
		if id == "" {
			id = m.pick(all)
		}
		pgtest.Exec(m.t, x, `UPDATE items SET deleted_at = NULL WHERE id = $1`, id)
		return "resurrect items/" + id
	}
	id := m.pick(all)
	pgtest.Exec(m.t, x, `DELETE FROM items WHERE id = $1`, id)
	return "hard delete items/" + id + " (cascade)"
}

func (m *mdModel) sqlNote(x mdDB) string {
	all := m.ids(x, `SELECT id FROM notes ORDER BY id`)
	op := m.choose(3, 2, 2, 1)
	if len(all) == 0 {
		op = 0
	} else if op == 0 && m.full(x, "notes") {
		op = 3
	}
	switch op {
	case 0:
		id, item, body := m.insertID(x, "notes"), m.parent(x, `SELECT id::text FROM items ORDER BY id`), m.word()
		pgtest.Exec(m.t, x, `INSERT INTO notes (id, item_id, body) VALUES ($1, $2, $3)`, id, item, body)
		return fmt.Sprintf("insert notes/%s item %s", id, mdFmtParent(item))
	case 1:
		id, body := m.pick(all), m.word()
		pgtest.Exec(m.t, x, `UPDATE notes SET body = $2 WHERE id = $1`, id, body)
		return "update notes/" + id
	case 2:
		id, item := m.pick(all), m.parent(x, `SELECT id::text FROM items ORDER BY id`)
		pgtest.Exec(m.t, x, `UPDATE notes SET item_id = $2 WHERE id = $1`, id, item)
		return fmt.Sprintf("move notes/%s to item %s", id, mdFmtParent(item))
	}
	id := m.pick(all)
	pgtest.Exec(m.t, x, `DELETE FROM notes WHERE id = $1`, id)
	return "delete notes/" + id
}

func (m *mdModel) sqlTip(x mdDB) string {
	all := m.ids(x, `SELECT id::text FROM tips ORDER BY id`)
	op := m.choose(2, 1, 2, 1)
	if len(all) == 0 {
		op = 0
	} else if op == 0 && m.full(x, "tips") {
		op = 3
	}
	switch op {
	case 0:
		id, owner, body := m.insertID(x, "tips"), m.owner(), m.word()
		pgtest.Exec(m.t, x, `INSERT INTO tips (id, user_id, body) VALUES ($1, $2, $3)`, id, owner, body)
		return fmt.Sprintf("insert tips/%s owner %s", id, mdFmtOwner(owner))
	case 1:
		id, body := m.pick(all), m.word()
		pgtest.Exec(m.t, x, `UPDATE tips SET body = $2 WHERE id = $1`, id, body)
		return "update tips/" + id
	case 2:
		id, owner := m.pick(all), m.owner()
		pgtest.Exec(m.t, x, `UPDATE tips SET user_id = $2 WHERE id = $1`, id, owner)
		return fmt.Sprintf("owner tips/%s -> %s", id, mdFmtOwner(owner))
	}
	id := m.pick(all)
	pgtest.Exec(m.t, x, `DELETE FROM tips WHERE id = $1`, id)
	return "delete tips/" + id
}

// ---------------------------------------------------------------------------
// Pushes.

// Expected push outcomes ("status/reason"); mdRefused is any
// rejected_terminal outcome that leaves the row as it was.
const (
	mdApplied        = "applied"
	mdAlreadyDeleted = "applied/already_deleted"
	mdRecordExists   = "conflict/record_exists"
	mdRecordDeleted  = "conflict/record_deleted"
	mdInvalidData    = "rejected_terminal/invalid_data"
	mdNotFound       = "rejected_terminal/record_not_found"
	mdRefused        = "refused"
)

// mdPushExp is a pushed record and what must come of it.
type mdPushExp struct {
	rec  synchro.PushRecord
	want string
	// before is the row (row_to_json) before the push, "" when absent.
	before string
	// field and value are checked on the row after an applied create or
	// update.
	field, value string
}

// mdRowState is a row as push decides on it.
type mdRowState struct {
	exists, deleted bool
	owner           sql.NullString // the owner of the row or of the root of its chain
	json            string
}

// mdOwnerSQL reads a row's owner (through its parent chain), whether it is
// soft-deleted, and the row, by id as text.
var mdOwnerSQL = map[string]string{
	"lists": `SELECT t.user_id, t.deleted_at IS NOT NULL, row_to_json(t)::text FROM lists t WHERE t.id::text = $1`,
	"items": `SELECT l.user_id, t.deleted_at IS NOT NULL, row_to_json(t)::text
	            FROM items t LEFT JOIN lists l ON l.id = t.list_id WHERE t.id::text = $1`,
	"notes": `SELECT l.user_id, false, row_to_json(t)::text
	            FROM notes t LEFT JOIN items i ON i.id = t.item_id LEFT JOIN lists l ON l.id = i.list_id WHERE t.id = $1`,
}

// mdOwnedSQL lists the ids of a table whose rows a user owns.
var mdOwnedSQL = map[string]string{
	"lists": `SELECT id::text FROM lists WHERE user_id = $1 ORDER BY id`,
	"items": `SELECT i.id::text FROM items i JOIN lists l ON l.id = i.list_id WHERE l.user_id = $1 ORDER BY i.id`,
	"notes": `SELECT n.id FROM notes n JOIN items i ON i.id = n.item_id JOIN lists l ON l.id = i.list_id WHERE l.user_id = $1 ORDER BY n.id`,
}

// mdParent describes the parent column of a pushable child table.
var mdParent = map[string]struct{ col, table string }{"items": {"list_id", "lists"}, "notes": {"item_id", "items"}}

// mdField is the column a push writes in each table.
var mdField = map[string]string{"lists": "name", "items": "title", "notes": "body"}

func (m *mdModel) rowState(table, id string) mdRowState {
	m.t.Helper()
	var s mdRowState
	err := m.db.QueryRow(mdOwnerSQL[table], id).Scan(&s.owner, &s.deleted, &s.json)
	if errors.Is(err, sql.ErrNoRows) {
		return mdRowState{}
	}
	if err != nil {
		m.fatalf("reading %s/%s: %v", table, id, err)
	}
	s.exists = true
	return s
}

func (s mdRowState) ownedBy(user string) bool {
	return s.exists && s.owner.Valid && s.owner.String == user
}

// pickRow returns an existing row of table, one the user owns seven times
// in ten when there is one; "" when the table is empty.
func (m *mdModel) pickRow(table, user string) string {
	owned := m.ids(m.db, mdOwnedSQL[table], user)
	all := m.ids(m.db, `SELECT id::text FROM `+table+` ORDER BY id`)
	if m.rng.IntN(10) < 7 && len(owned) > 0 {
		return m.pick(owned)
	}
	return m.pick(all)
}

// otherUser returns a user other than user.
func (m *mdModel) otherUser(user string) string {
	for {
		if u := mdUsers[m.rng.IntN(len(mdUsers))].user; u != user {
			return u
		}
	}
}

// jsonValue is how an id goes into pushed data: lists ids are numbers.
func mdJSONID(table, id string) any {
	if table == "lists" {
		return json.Number(id)
	}
	return id
}

// pushRecord draws one record for user to push and works out its outcome
// from the rows as they are before the push.
func (m *mdModel) pushRecord(user string) mdPushExp {
	table := []string{"lists", "lists", "items", "items", "notes"}[m.rng.IntN(5)]
	kind := m.choose(3, 1, 3, 2, 1) // create new, create existing, update, delete, missing row
	variant := m.rng.IntN(10)
	field, value := mdField[table], m.word()
	data := map[string]any{field: value}
	id := ""
	if kind >= 1 && kind <= 3 {
		if id = m.pickRow(table, user); id == "" {
			kind = 0
		}
	}
	at := time.Now().Add(time.Hour) // the client's writes are the newest
	x := mdPushExp{field: field, value: value}
	switch kind {
	case 0: // create of a new row
		id = m.newID(table)
		owned := true
		if p, ok := mdParent[table]; ok {
			var parent string
			if variant == 9 {
				parent = m.newID(p.table) // a parent that does not exist
			} else {
				parent = m.pickRow(p.table, user)
			}
			if parent != "" {
				data[p.col] = mdJSONID(p.table, parent)
			}
			owned = parent != "" && m.rowState(p.table, parent).ownedBy(user)
		} else {
			switch variant {
			case 7:
				data["user_id"] = user
			case 8:
				data["user_id"] = m.otherUser(user)
				owned = false
			case 9:
				data["user_id"] = nil
				owned = false
			}
		}
		x.want = mdRefused
		if owned {
			x.want = mdApplied
		}
		if table == "items" && variant == 8 {
			data["secret"] = "s" // not a synced column
			x.want = mdInvalidData
		}
		x.rec = synchro.PushRecord{ID: id, TableName: table, Operation: "create", ClientUpdatedAt: at}
	case 1: // create of an existing row
		s := m.rowState(table, id)
		x.before = s.json
		switch {
		case !s.ownedBy(user):
			x.want = mdRefused
		case s.deleted:
			x.want = mdApplied // a resurrection
		default:
			x.want = mdRecordExists
		}
		x.rec = synchro.PushRecord{ID: id, TableName: table, Operation: "create", ClientUpdatedAt: at}
	case 2: // update
		s := m.rowState(table, id)
		x.before = s.json
		switch {
		case !s.ownedBy(user):
			x.want = mdRefused
		case s.deleted:
			x.want = mdRecordDeleted
		default:
			x.want = mdApplied
		}
		var stored map[string]any
		if err := json.Unmarshal([]byte(s.json), &stored); err != nil {
			m.fatalf("decoding %s: %v", s.json, err)
		}
		col := "user_id"
		if p, ok := mdParent[table]; ok {
			col = p.col
		}
		switch variant {
		case 6: // repeating the owner or parent unchanged is accepted
			data[col] = stored[col]
		case 7: // changing it is not
			if p, ok := mdParent[table]; ok {
				data[col] = mdJSONID(p.table, m.newID(p.table))
			} else {
				data[col] = m.otherUser(user)
			}
			if x.want == mdApplied {
				x.want = mdInvalidData
			}
		case 8:
			if table == "items" {
				data["secret"] = "s"
				x.want = mdInvalidData
			}
		}
		x.rec = synchro.PushRecord{ID: id, TableName: table, Operation: "update", ClientUpdatedAt: at}
	case 3: // delete
		s := m.rowState(table, id)
		x.before = s.json
		switch {
		case !s.ownedBy(user):
			x.want = mdRefused
		case s.deleted:
			x.want = mdAlreadyDeleted
		default:
			x.want = mdApplied
		}
		data = nil
		x.rec = synchro.PushRecord{ID: id, TableName: table, Operation: "delete", ClientUpdatedAt: at}
	default: // update or delete of a row that does not exist
		id = m.newID(table)
		op := "update"
		if variant < 5 {
			op, data = "delete", nil
		}
		x.want = mdNotFound
		x.rec = synchro.PushRecord{ID: id, TableName: table, Operation: op, ClientUpdatedAt: at}
	}
	if data != nil {
		raw, err := json.Marshal(data)
		if err != nil {
			m.fatalf("encoding push data: %v", err)
		}
		x.rec.Data = raw
	}
	return x
}

// pushStep pushes one to four records, each on its own row, by a random
// client, and checks each outcome and what it did to the row.
func (m *mdModel) pushStep() {
	c := m.pickClient()
	n := 1 + m.rng.IntN(4)
	var exps []mdPushExp
	used := map[string]bool{}
	for range n {
		x := m.pushRecord(c.user)
		k := x.rec.TableName + "/" + x.rec.ID
		if used[k] {
			continue // records of one push touch distinct rows, so each outcome is known in advance
		}
		used[k] = true
		exps = append(exps, x)
	}
	recs := make([]synchro.PushRecord, len(exps))
	for i, x := range exps {
		recs[i] = x.rec
	}
	resp, err := m.e.eng.Push(context.Background(), c.user, &synchro.PushRequest{ClientID: c.id, Changes: recs, SchemaVersion: m.ver, SchemaHash: m.hash})
	if err != nil {
		m.fatalf("push by %s: %v", c.name, err)
	}
	if len(resp.Accepted)+len(resp.Rejected) != len(recs) {
		m.fatalf("push by %s of %d records returned %d results: %+v", c.name, len(recs), len(resp.Accepted)+len(resp.Rejected), resp)
	}
	var descs []string
	for _, x := range exps {
		res, accepted := m.findResult(resp, x.rec)
		got := res.Status
		if res.ReasonCode != "" {
			got += "/" + res.ReasonCode
		}
		descs = append(descs, fmt.Sprintf("%s %s/%s %s -> %s", x.rec.Operation, x.rec.TableName, x.rec.ID, x.rec.Data, got))
		m.stats["push "+got]++
		what := fmt.Sprintf("push by %s: %s %s/%s %s", c.name, x.rec.Operation, x.rec.TableName, x.rec.ID, x.rec.Data)
		if accepted != (res.Status == synchro.PushStatusApplied) {
			m.fatalf("%s: status %q listed under the wrong array", what, res.Status)
		}
		switch {
		case x.want == mdRefused:
			// A create whose parent the caller cannot read may wait for it
			// (the parent may still come, or its edges may not be
			// captured yet); the dedicated push tests pin down which.
			waiting := x.rec.Operation == "create" && res.Status == synchro.PushStatusRejectedRetryable && res.ReasonCode == "parent_not_found"
			if res.Status != synchro.PushStatusRejectedTerminal && !waiting {
				m.fatalf("%s: got %s (%s), want a rejection: the caller does not own the row", what, got, res.Message)
			}
		case got != x.want:
			m.fatalf("%s: got %s (%s), want %s", what, got, res.Message, x.want)
		}
		if res.ServerVersion != nil {
			m.checkServerVersion(c, what, x, res.ServerVersion)
		}
		if x.want == mdRefused && (res.ServerVersion != nil || res.ServerUpdatedAt != nil || res.ServerDeletedAt != nil) {
			m.fatalf("%s: a refused record carries the server's row: %+v", what, res)
		}
		m.checkPushEffect(c, what, x, res)
	}
	m.stats["push"]++
	m.logf("push by %s: %s", c.name, strings.Join(descs, "; "))
}

// findResult returns the result of rec and whether it was accepted.
func (m *mdModel) findResult(resp *synchro.PushResponse, rec synchro.PushRecord) (synchro.PushResult, bool) {
	var found []synchro.PushResult
	var accepted bool
	for i, r := range slices.Concat(resp.Accepted, resp.Rejected) {
		if r.ID == rec.ID && r.TableName == rec.TableName {
			found = append(found, r)
			accepted = i < len(resp.Accepted)
		}
	}
	if len(found) != 1 {
		m.fatalf("%d results for %s/%s in %+v", len(found), rec.TableName, rec.ID, resp)
	}
	if found[0].Operation != rec.Operation {
		m.fatalf("result of %s/%s echoes operation %q, want %q", rec.TableName, rec.ID, found[0].Operation, rec.Operation)
	}
	return found[0], accepted
}

// checkServerVersion checks the row a conflict carries: only for a row the
// caller owns, its synced columns, its current contents.
func (m *mdModel) checkServerVersion(c *mdClient, what string, x mdPushExp, sv *synchro.Record) {
	if x.want != mdRecordExists && x.want != mdRecordDeleted {
		m.fatalf("%s: unexpected server_version %s", what, sv.Data)
	}
	if sv.ID != x.rec.ID || sv.TableName != x.rec.TableName {
		m.fatalf("%s: server_version names %s/%s", what, sv.TableName, sv.ID)
	}
	var d map[string]any
	if err := json.Unmarshal(sv.Data, &d); err != nil {
		m.fatalf("%s: server_version data %s: %v", what, sv.Data, err)
	}
	if _, ok := d["secret"]; ok {
		m.fatalf("%s: server_version carries the column secret: %s", what, sv.Data)
	}
	if x.rec.TableName == "lists" && d["user_id"] != c.user {
		m.fatalf("%s: server_version of another user's row: %s", what, sv.Data)
	}
}

// checkPushEffect checks the row after the push: unchanged unless the
// record was applied, and then carrying the change.
func (m *mdModel) checkPushEffect(c *mdClient, what string, x mdPushExp, res synchro.PushResult) {
	table, id := x.rec.TableName, x.rec.ID
	after := m.rowState(table, id)
	if res.Status != synchro.PushStatusApplied || res.ReasonCode == "already_deleted" {
		if after.json != x.before {
			m.fatalf("%s: %s, but the row changed from %q to %q", what, res.Status, x.before, after.json)
		}
		return
	}
	if x.rec.Operation == "delete" {
		switch {
		case table == "notes" && after.exists:
			m.fatalf("%s: applied, but the row is still there: %s", what, after.json)
		case table != "notes" && !after.deleted:
			m.fatalf("%s: applied, but the row is not soft-deleted: %q", what, after.json)
		}
		return
	}
	var d map[string]any
	if err := json.Unmarshal([]byte(after.json), &d); err != nil {
		m.fatalf("%s: applied, but the row reads %q: %v", what, after.json, err)
	}
	if d[x.field] != x.value || after.deleted || !after.ownedBy(c.user) {
		m.fatalf("%s: applied, but the row is %s", what, after.json)
	}
}

// ---------------------------------------------------------------------------
// Pulls and snapshots.

// pullStep pulls a few pages with a small limit by a random client, which
// may stop while more remain. A client without a state to pull from
// snapshots instead.
func (m *mdModel) pullStep() {
	c := m.pickClient()
	limit, pages := 1+m.rng.IntN(5), 1+m.rng.IntN(4)
	var tables []string
	if m.rng.IntN(5) == 0 {
		for _, tb := range []string{"categories", "items", "lists", "notes", "tips"} {
			if m.rng.IntN(2) == 0 {
				tables = append(tables, tb)
			}
		}
	}
	// The response of page lost, when below pages, does not arrive; the
	// client asks for it again at once, or at a later step.
	lost := m.rng.IntN(10)
	if !c.snapshotted {
		m.pullPage(c, limit, nil, false) // must answer snapshot_required
	}
	if !c.valid {
		m.snapshotFor(c)
		return
	}
	for i := range pages {
		if i == lost {
			m.pullPage(c, limit, tables, true)
			if m.rng.IntN(3) == 0 {
				// The client asks again at a later step: the server
				// recorded a checkpoint the client does not stand at.
				return
			}
		}
		if resp := m.pullPage(c, limit, tables, false); !resp.HasMore || !c.valid {
			break
		}
	}
}

// pullPage pulls one page for c, checks it and applies it, unless lost:
// then the response does not reach the client, which asks again.
func (m *mdModel) pullPage(c *mdClient, limit int, tables []string, lost bool) *synchro.PullResponse {
	m.t.Helper()
	req := &synchro.PullRequest{ClientID: c.id, Checkpoint: c.checkpoint, Tables: tables, Limit: limit,
		KnownBuckets: []string{"global", "user:" + c.user}, SchemaVersion: m.ver, SchemaHash: m.hash}
	// Without background compaction the boundary cannot move during the
	// pull; with it, it can only go up.
	boundary := m.boundary()
	resp, err := m.e.eng.Pull(context.Background(), c.user, req)
	if err != nil {
		m.fatalf("pull by %s: %v", c.name, err)
	}
	what := fmt.Sprintf("pull by %s from %d, limit %d, tables %v", c.name, req.Checkpoint, limit, tables)
	if resp.SnapshotRequired {
		if resp.Checkpoint != req.Checkpoint || resp.HasMore || len(resp.Changes)+len(resp.Deletes) != 0 {
			m.fatalf("%s: snapshot required with a page: %+v", what, resp)
		}
		call, called := m.required.take(c.id)
		if !called || call.checkpoint != req.Checkpoint || call.reason != resp.SnapshotReason {
			m.fatalf("%s: snapshot required (%s), but OnSnapshotRequired got %+v (called %v)", what, resp.SnapshotReason, call, called)
		}
		switch {
		case !c.snapshotted:
			if resp.SnapshotReason != synchro.SnapshotReasonInitialSyncRequired {
				m.fatalf("%s: snapshot reason %q, want %q", what, resp.SnapshotReason, synchro.SnapshotReasonInitialSyncRequired)
			}
		case resp.SnapshotReason != synchro.SnapshotReasonCheckpointBeforeLimit:
			m.fatalf("%s: snapshot required (%s) after a completed snapshot", what, resp.SnapshotReason)
		case call.minSeq <= req.Checkpoint:
			m.fatalf("%s: snapshot required (%s), but the checkpoint is at or past the boundary %d", what, resp.SnapshotReason, call.minSeq)
		case !m.background && call.minSeq != boundary:
			m.fatalf("%s: snapshot required with the boundary %d, the boundary is %d", what, call.minSeq, boundary)
		case m.background:
			// No client is made idle in this variant: each syncs, and
			// compaction must keep what each needs.
			m.fatalf("%s: snapshot required (%s, boundary %d), but the client never stopped syncing (its row: %s)",
				what, resp.SnapshotReason, call.minSeq, m.clientRow(c))
		}
		if c.snapshotted && !lost {
			// Its copy is behind the boundary: it must snapshot again.
			c.valid = false
		}
		m.stats["pull snapshot_required "+resp.SnapshotReason]++
		m.logf("%s: snapshot required (%s)", what, resp.SnapshotReason)
		return resp
	}
	if !c.snapshotted {
		m.fatalf("%s: the client never completed a snapshot, but the pull returned a page", what)
	}
	if req.Checkpoint < boundary {
		m.fatalf("%s: a page, but the checkpoint is below the boundary %d", what, boundary)
	}
	c.stale = false // the server recorded the pull, lost or not
	if !c.valid {
		m.fatalf("%s: the model pulls from a replaced copy (test bug)", what)
	}
	if resp.BucketUpdates != nil {
		m.fatalf("%s: bucket updates %+v, the subscriptions never change", what, resp.BucketUpdates)
	}
	n := len(resp.Changes) + len(resp.Deletes)
	switch {
	case resp.Checkpoint < req.Checkpoint:
		m.fatalf("%s: checkpoint went back to %d", what, resp.Checkpoint)
	case n == 0 && resp.Checkpoint != req.Checkpoint:
		m.fatalf("%s: an empty page moved the checkpoint to %d", what, resp.Checkpoint)
	case n > 0 && resp.Checkpoint == req.Checkpoint:
		m.fatalf("%s: a page of %d records kept the checkpoint", what, n)
	case n > limit:
		m.fatalf("%s: %d records", what, n)
	case n == 0 && resp.HasMore:
		m.fatalf("%s: an empty page with has_more", what)
	}
	seen := map[string]bool{}
	keys := make([]string, 0, n)
	for _, r := range resp.Changes {
		keys = append(keys, r.TableName+"/"+r.ID)
	}
	for _, d := range resp.Deletes {
		keys = append(keys, d.TableName+"/"+d.ID)
	}
	for _, k := range keys {
		if seen[k] {
			m.fatalf("%s: %s appears twice in one page", what, k)
		}
		seen[k] = true
		if tables != nil && !slices.Contains(tables, k[:strings.IndexByte(k, '/')]) {
			m.fatalf("%s: %s is outside the tables filter", what, k)
		}
	}
	m.checkRecords(c, what, resp.Changes)
	if lost {
		m.stats["pull lost"]++
		m.logf("%s -> %d: %d changes, %d deletes, lost", what, resp.Checkpoint, len(resp.Changes), len(resp.Deletes))
		return resp
	}
	for _, r := range resp.Changes {
		c.rows[r.TableName+"/"+r.ID] = r.Data
	}
	for _, d := range resp.Deletes {
		delete(c.rows, d.TableName+"/"+d.ID)
	}
	c.checkpoint = resp.Checkpoint
	m.stats["pull"]++
	more := ""
	if resp.HasMore {
		more = ", more"
	}
	m.logf("%s -> %d: %d changes %v, %d deletes %v%s", what, resp.Checkpoint, len(resp.Changes), keys[:len(resp.Changes)],
		len(resp.Deletes), keys[len(resp.Changes):], more)
	return resp
}

// mdItemColumns are the keys of an item's data: its sync columns.
var mdItemColumns = []string{"deleted_at", "id", "list_id", "title", "updated_at"}

// checkRecords checks records a pull or snapshot page returned to c. The
// test goroutine is the only writer of the application's tables, so the
// database still holds what the engine read: every record must be, right
// now, in c's buckets with exactly these contents. That is the isolation
// invariant, checked strictly for every table, plus freshness.
func (m *mdModel) checkRecords(c *mdClient, what string, recs []synchro.Record) {
	m.t.Helper()
	if len(recs) == 0 {
		return
	}
	want := m.e.expected(c.user)
	for _, r := range recs {
		k := r.TableName + "/" + r.ID
		dec := json.NewDecoder(strings.NewReader(string(r.Data)))
		dec.UseNumber()
		var d map[string]any
		if err := dec.Decode(&d); err != nil || d == nil {
			m.fatalf("%s: %s: data %s is not a JSON object (%v)", what, k, r.Data, err)
		}
		if _, ok := d["secret"]; ok {
			m.fatalf("%s: %s carries the column secret, which is not synced: %s", what, k, r.Data)
		}
		if fmt.Sprint(d["id"]) != r.ID {
			m.fatalf("%s: %s has data id %v", what, k, d["id"])
		}
		if r.DeletedAt != nil {
			m.fatalf("%s: %s has deleted_at %v", what, k, r.DeletedAt)
		}
		switch r.TableName {
		case "categories":
		case "lists":
			if d["user_id"] != c.user || d["deleted_at"] != nil {
				m.fatalf("%s: %s is not a live list of %s: %s", what, k, c.user, r.Data)
			}
		case "items":
			if keys := slices.Sorted(maps.Keys(d)); !slices.Equal(keys, mdItemColumns) {
				m.fatalf("%s: %s has columns %v, want %v", what, k, keys, mdItemColumns)
			}
			if d["list_id"] == nil || d["deleted_at"] != nil {
				m.fatalf("%s: %s is not a live item in a list: %s", what, k, r.Data)
			}
		case "notes":
			if d["item_id"] == nil {
				m.fatalf("%s: %s is a note without an item: %s", what, k, r.Data)
			}
		case "tips":
			if u := d["user_id"]; u != nil && u != "" && u != c.user {
				m.fatalf("%s: %s is a tip of another user: %s", what, k, r.Data)
			}
		default:
			m.fatalf("%s: record of unknown table %s", what, k)
		}
		if s, ok := d["updated_at"].(string); ok {
			ts, err := time.Parse(time.RFC3339Nano, s)
			if err != nil || !ts.Equal(r.UpdatedAt) {
				m.fatalf("%s: %s has updated_at %v, its data %q", what, k, r.UpdatedAt, s)
			}
		}
		w, ok := want[k]
		if !ok {
			m.fatalf("%s: returned %s = %s, which is not in the buckets of %s (isolation)", what, k, r.Data, c.user)
		}
		if !rpJSONEqual(r.Data, w) {
			m.fatalf("%s: returned %s = %s, the row is %s", what, k, r.Data, w)
		}
	}
}

// snapshotStep continues, abandons, restarts or starts a snapshot of a
// random client.
func (m *mdModel) snapshotStep() { m.snapshotFor(m.pickClient()) }

// snapshotFor continues, abandons, restarts or starts a snapshot of c.
func (m *mdModel) snapshotFor(c *mdClient) {
	r := m.rng.IntN(10)
	limit, pages, complete, staged := 1+m.rng.IntN(4), 1+m.rng.IntN(3), m.rng.IntN(4) == 0, m.rng.IntN(2) == 0
	lost := m.rng.IntN(10)
	switch {
	case c.snap != nil && r < 3:
		m.logf("snapshot of %s abandoned after %d pages (staged %v)", c.name, c.snap.pages, c.snap.staged)
		m.stats["snapshot abandoned"]++
		c.snap = nil // an in-place one leaves c.valid false: the next sync starts afresh
	case c.snap != nil && r < 6:
		old := c.snap
		m.logf("snapshot of %s restarted after %d pages (staged %v)", c.name, old.pages, old.staged)
		m.stats["snapshot restarted"]++
		c.snap = nil
		m.snapshotStart(c, limit, staged)
		m.snapshotPage(c, false)
		if c.snap != nil && old.cursor != nil && old.checkpoint != c.snap.checkpoint {
			m.staleCursor(c, old)
		}
		if c.snap != nil {
			m.snapshotRun(c, limit, pages-1, complete, staged, lost)
		}
	default:
		m.snapshotRun(c, limit, pages, complete, staged, lost)
	}
}

// clientRow returns the engine's bookkeeping of c, for failure messages.
func (m *mdModel) clientRow(c *mdClient) string {
	var row string
	err := m.db.QueryRow(`SELECT row_to_json(x)::text FROM (SELECT snapshot_seq, snapshot_subs, snapshot_completed_at,
       last_pull_seq, acked_seq, bucket_subs, is_active FROM synchro.clients WHERE user_id = $1 AND client_id = $2) x`, c.user, c.id).Scan(&row)
	if err != nil {
		return err.Error()
	}
	return row
}

// staleCursor checks that the cursor of a snapshot that another one
// replaced is refused.
func (m *mdModel) staleCursor(c *mdClient, old *mdSnap) {
	_, err := m.e.eng.Snapshot(context.Background(), c.user, &synchro.SnapshotRequest{ClientID: c.id, Cursor: old.cursor, Limit: old.limit,
		SchemaVersion: m.ver, SchemaHash: m.hash})
	var bad interface{ BadRequest() bool }
	if err == nil || !errors.As(err, &bad) || !bad.BadRequest() {
		m.fatalf("snapshot of %s with the cursor %+v of a replaced snapshot: got %v, want a bad request", c.name, *old.cursor, err)
	}
	m.stats["snapshot stale cursor refused"]++
	m.logf("snapshot of %s with a replaced cursor refused: %v", c.name, err)
}

// snapshotRun starts a snapshot of c unless one is in progress, then reads
// pages of it: at most pages, or all when complete. The response of page
// lost does not reach the client, which asks for it again.
func (m *mdModel) snapshotRun(c *mdClient, limit, pages int, complete, staged bool, lost int) {
	if c.snap == nil {
		m.snapshotStart(c, limit, staged)
	}
	for i := 0; c.snap != nil && (complete || i < pages); i++ {
		if i > 100000 {
			m.fatalf("the snapshot of %s does not end", c.name)
		}
		if i == lost && m.snapshotPage(c, true) {
			// The server recorded the snapshot complete, but the page
			// asked again may now have more after it. Complete it before
			// pulling: see TestReadPathSnapshotRetriedLastPage.
			complete = true
		}
		m.snapshotPage(c, false)
	}
}

// snapshotStart begins a snapshot of c. A staged one keeps the client's
// copy (it can go on pulling) and needs a copy to keep.
func (m *mdModel) snapshotStart(c *mdClient, limit int, staged bool) {
	s := &mdSnap{limit: limit, staged: staged && c.valid, rows: map[string]json.RawMessage{}, seen: map[string]bool{}}
	if !s.staged {
		c.rows, c.valid = s.rows, false
	}
	c.snap = s
	m.stats["snapshot started"]++
}

// snapshotPage reads and checks the next page of c's snapshot. A lost
// page does not reach the client, which asks for it again: the first page
// starts another snapshot, a later one repeats its cursor. It returns
// whether the page lost was the last.
func (m *mdModel) snapshotPage(c *mdClient, lost bool) bool {
	m.t.Helper()
	s := c.snap
	resp, err := m.e.eng.Snapshot(context.Background(), c.user, &synchro.SnapshotRequest{ClientID: c.id, Cursor: s.cursor, Limit: s.limit,
		SchemaVersion: m.ver, SchemaHash: m.hash})
	what := fmt.Sprintf("snapshot page %d of %s (limit %d, staged %v, cursor %+v)", s.pages+1, c.name, s.limit, s.staged, s.cursor)
	if err != nil {
		m.fatalf("%s: %v (the client's row: %s)", what, err, m.clientRow(c))
	}
	if s.cursor == nil || !resp.HasMore {
		// A snapshot starting reactivates the client; one completing
		// records a sync.
		c.stale = false
	}
	if s.cursor == nil {
		s.checkpoint = resp.Checkpoint
	} else if resp.Checkpoint != s.checkpoint {
		m.fatalf("%s: checkpoint %d, the snapshot started at %d", what, resp.Checkpoint, s.checkpoint)
	}
	if len(resp.Records) > s.limit {
		m.fatalf("%s: %d records", what, len(resp.Records))
	}
	if resp.HasMore && (resp.Cursor == nil || resp.Cursor.Checkpoint != s.checkpoint) {
		m.fatalf("%s: has_more with cursor %+v", what, resp.Cursor)
	}
	keys := make([]string, 0, len(resp.Records))
	if lost {
		m.checkRecords(c, what, resp.Records)
		if !resp.HasMore {
			c.snapshotted = true // the server recorded it complete
		}
		m.stats["snapshot page lost"]++
		m.logf("%s at %d: %d records, has_more %v, lost", what, resp.Checkpoint, len(resp.Records), resp.HasMore)
		return !resp.HasMore
	}
	for _, r := range resp.Records {
		k := r.TableName + "/" + r.ID
		if s.seen[k] {
			m.fatalf("%s: %s returned twice", what, k)
		}
		s.seen[k] = true
		keys = append(keys, k)
	}
	m.checkRecords(c, what, resp.Records)
	for _, r := range resp.Records {
		s.rows[r.TableName+"/"+r.ID] = r.Data
	}
	s.pages++
	m.stats["snapshot page"]++
	if resp.HasMore {
		s.cursor = resp.Cursor
		m.logf("%s at %d: %v", what, s.checkpoint, keys)
		return false
	}
	c.rows, c.checkpoint, c.valid, c.snapshotted, c.snap = s.rows, s.checkpoint, true, true, nil
	m.stats["snapshot completed"]++
	m.logf("%s at %d: %v, complete with %d rows", what, s.checkpoint, keys, len(c.rows))
	return false
}

// sync brings c up to date: it completes a snapshot when it has no state
// to pull from or one is in progress, then pulls until has_more is false.
func (m *mdModel) sync(c *mdClient, limit int) {
	m.t.Helper()
	if !c.snapshotted {
		m.pullPage(c, limit, nil, false) // must answer snapshot_required
	}
	for i := 0; ; i++ {
		if i > 100000 {
			m.fatalf("the pulls of %s do not end", c.name)
		}
		if !c.valid || c.snap != nil {
			m.snapshotRun(c, limit, 0, true, false, -1)
		}
		// A client behind the compaction boundary is told to snapshot
		// again: it does, and pulls on.
		if resp := m.pullPage(c, limit, nil, false); !resp.SnapshotRequired && !resp.HasMore {
			return
		}
	}
}

// checkStep waits for the consumer, syncs a random client and compares its
// copy with the rows of its buckets.
func (m *mdModel) checkStep() {
	c, limit := m.pickClient(), 1+m.rng.IntN(5)
	m.e.caughtUp()
	m.sync(c, limit)
	m.stats["check"]++
	m.logf("check of %s: %d rows", c.name, len(c.rows))
	rpSameRows(m.t, fmt.Sprintf("seed %d step %d: %s after sync", m.seed, m.step, c.name), c.rows, m.e.expected(c.user))
	if m.t.Failed() {
		m.fatalf("%s did not converge", c.name)
	}
}

// finish syncs every client once writes have stopped and the consumer has
// caught up, and compares each copy with the rows of its buckets; a pull
// after that returns nothing.
func (m *mdModel) finish() {
	m.logf("final sync")
	m.e.caughtUp()
	for _, c := range m.clients {
		m.sync(c, 1+m.rng.IntN(5))
		rpSameRows(m.t, fmt.Sprintf("seed %d: %s at the end", m.seed, c.name), c.rows, m.e.expected(c.user))
	}
	// Every client synced: a compaction run now passes none of them.
	m.compactStep()
	for _, c := range m.clients {
		before := c.checkpoint
		resp := m.pullPage(c, 5, nil, false)
		if len(resp.Changes)+len(resp.Deletes) != 0 || resp.HasMore || resp.Checkpoint != before {
			m.t.Errorf("seed %d: %s: the pull after the final sync is not empty: %+v", m.seed, c.name, resp)
		}
	}
}

// TestReadPathSnapshotRetriedLastPage reproduces a sequence the model found
// (seed 8, 1500 steps, under load): the response to the last page of a
// snapshot is lost, the client asks for that page again with the same
// cursor, and meanwhile rows were added after the cursor, so the repeated
// page is no longer the last: it comes with has_more and a cursor. The
// server, however, recorded the snapshot as complete when it served the
// page the first time (snapshot_subs NULL). A client that keeps its old
// copy while the new snapshot runs and pulls from a checkpoint at or past
// the snapshot's then has its snapshot_seq cleared by recordPull, and the
// cursor the server itself handed out is refused, although no other
// snapshot of the client started and the client made nothing up.
func TestReadPathSnapshotRetriedLastPage(t *testing.T) {
	t.Parallel()
	e := rpStart(t, rpOptions{})
	pgtest.Exec(t, e.db.Super, `INSERT INTO categories VALUES ('a', 'A'), ('b', 'B')`)
	e.caughtUp()
	c := e.client("alice", "phone")
	c.snapshot(100) // the copy the client keeps while the next snapshot runs
	v, h := e.schema()
	page := func(cur *synchro.SnapshotCursor) (*synchro.SnapshotResponse, error) {
		return e.eng.Snapshot(context.Background(), "alice", &synchro.SnapshotRequest{ClientID: "phone", Cursor: cur, Limit: 1, SchemaVersion: v, SchemaHash: h})
	}
	var cur *synchro.SnapshotCursor
	var last *synchro.SnapshotCursor // the cursor of the last page
	for i := 0; ; i++ {
		if i > 20 {
			t.Fatal("the snapshot does not end")
		}
		resp, err := page(cur)
		if err != nil {
			t.Fatalf("snapshot page %d: %v", i+1, err)
		}
		if !resp.HasMore {
			last = cur
			break
		}
		cur = resp.Cursor
	}
	if last == nil {
		t.Fatal("the snapshot ended on its first page")
	}
	// The response of the last page is lost. Rows arrive after its cursor
	// (tips is the last table) before the client asks for it again.
	pgtest.Exec(t, e.db.Super, `INSERT INTO tips VALUES (1, 'alice', 'x'), (2, 'alice', 'y')`)
	e.caughtUp()
	resp, err := page(last)
	if err != nil {
		t.Fatalf("asking for the last page again: %v", err)
	}
	if !resp.HasMore {
		return // the repeated last page is still the last: nothing to continue
	}
	next := resp.Cursor
	// The client still pulls with its old copy, and then from a checkpoint
	// at or past the snapshot's.
	c.pullAll(10)
	if c.checkpoint < next.Checkpoint {
		t.Fatalf("checkpoint %d is below the snapshot's %d: the sequence does not arise", c.checkpoint, next.Checkpoint)
	}
	c.pull(10)
	if _, err := page(next); err != nil {
		t.Errorf("the cursor the server returned for the repeated last page is refused after a pull: %v", err)
	}
}

// ---------------------------------------------------------------------------
// Compaction.

// boundary returns the recorded compaction boundary.
func (m *mdModel) boundary() int64 {
	m.t.Helper()
	var b int64
	if err := m.db.QueryRow(`SELECT boundary_seq FROM synchro.compaction WHERE singleton`).Scan(&b); err != nil {
		m.fatalf("reading the compaction boundary: %v", err)
	}
	return b
}

// compactStep runs a compaction cycle and checks it: the boundary only
// goes up and is the one recorded, no changelog row at or below it is left
// nor a superseded row among those written before the run, and the
// boundary passed no checkpoint of a client that syncs: neither the one
// its copy stands at, nor the one of its snapshot in progress.
func (m *mdModel) compactStep() {
	m.t.Helper()
	before := m.boundary()
	var maxBefore int64
	if err := m.db.QueryRow(`SELECT coalesce(max(seq), 0) FROM synchro.changelog`).Scan(&maxBefore); err != nil {
		m.fatalf("reading the changelog: %v", err)
	}
	wasActive := m.activeClients()
	res, err := m.e.eng.RunCompaction(context.Background())
	if err != nil {
		m.fatalf("compaction: %v", err)
	}
	if res.Skipped {
		if !m.background {
			m.fatalf("compaction skipped, but no other run is in progress")
		}
		m.stats["compaction skipped"]++
		m.logf("compaction skipped: another run is in progress")
		return
	}
	after := m.boundary()
	switch {
	case res.SafeSeq < before:
		m.fatalf("compaction: the boundary went down from %d to %d", before, res.SafeSeq)
	case after < res.SafeSeq || !m.background && after != res.SafeSeq:
		m.fatalf("compaction: SafeSeq %d, the recorded boundary is %d", res.SafeSeq, after)
	}
	var below, superseded int
	if err := m.db.QueryRow(`
SELECT (SELECT count(*) FROM synchro.changelog WHERE seq <= $1),
       (SELECT count(*) FROM (SELECT 1 FROM synchro.changelog WHERE seq <= $2
                               GROUP BY table_name, record_id, bucket_id HAVING count(*) > 1) AS d)`,
		res.SafeSeq, maxBefore).Scan(&below, &superseded); err != nil {
		m.fatalf("reading the changelog: %v", err)
	}
	if below != 0 || superseded != 0 {
		m.fatalf("compaction %+v left %d rows at or below the boundary and %d records with superseded rows", res, below, superseded)
	}
	isActive := m.activeClients()
	for _, c := range m.clients {
		// What the boundary passed while the client was stale stays
		// passed: only what it passes now counts.
		if c.stale {
			continue
		}
		if !isActive[c.name] {
			m.fatalf("compaction %+v: %s is inactive, but it synced since it was last idle (a pull, or a snapshot, which reactivates; its row: %s)",
				res, c.name, m.clientRow(c))
		}
		if c.snapshotted && c.valid && c.checkpoint >= before && c.checkpoint < res.SafeSeq {
			m.fatalf("compaction moved the boundary from %d to %d, past the checkpoint %d of %s, which syncs (its row: %s)",
				before, res.SafeSeq, c.checkpoint, c.name, m.clientRow(c))
		}
		if c.snap != nil && c.snap.checkpoint >= before && c.snap.checkpoint < res.SafeSeq {
			m.fatalf("compaction moved the boundary from %d to %d, past the checkpoint %d of the snapshot in progress of %s, which syncs (its row: %s)",
				before, res.SafeSeq, c.snap.checkpoint, c.name, m.clientRow(c))
		}
	}
	m.stats["compaction"]++
	m.stats["compaction deleted"] += int(res.DeletedEntries)
	m.stats["compaction deactivated"] += int(res.DeactivatedClients)
	var deactivated []string
	for _, c := range m.clients {
		if wasActive[c.name] && !isActive[c.name] {
			deactivated = append(deactivated, c.name)
		}
	}
	m.logf("compaction: boundary %d -> %d, %d rows deleted, %d clients deactivated %v", before, res.SafeSeq, res.DeletedEntries,
		res.DeactivatedClients, deactivated)
}

// activeClients returns the clients the server holds active.
func (m *mdModel) activeClients() map[string]bool {
	m.t.Helper()
	out := map[string]bool{}
	for _, name := range m.ids(m.db, `SELECT user_id || '/' || client_id FROM synchro.clients WHERE is_active`) {
		out[name] = true
	}
	return out
}

// ageStep makes one to three random clients look idle for longer than the
// stale threshold: the next compaction run deactivates them, unless they
// sync first. With background compaction it runs a compaction step
// instead.
func (m *mdModel) ageStep() {
	if m.background {
		m.compactStep()
		return
	}
	var names []string
	for range 1 + m.rng.IntN(3) {
		c := m.pickClient()
		// Every time of activity goes back, as if the client had been
		// idle (the engine skips writing a pull that changes nothing
		// shortly after the last one it recorded).
		pgtest.Exec(m.t, m.db, `
UPDATE synchro.clients SET last_sync_at = now() - 2 * $3::bigint * interval '1 microsecond',
       last_pull_at = CASE WHEN last_pull_at IS NOT NULL THEN now() - 2 * $3::bigint * interval '1 microsecond' END,
       last_push_at = CASE WHEN last_push_at IS NOT NULL THEN now() - 2 * $3::bigint * interval '1 microsecond' END
 WHERE user_id = $1 AND client_id = $2`, c.user, c.id, mdStaleThreshold.Microseconds())
		c.stale = true
		names = append(names, c.name)
		m.stats["idle"]++
	}
	m.logf("%v look idle: their last sync was two stale thresholds ago", names)
}

// oldSoftDeleteStep soft-deletes a live list or item as if long ago (two
// stale thresholds): compaction then prunes its bucket edges. It runs
// alone, once the consumer has caught up: pruning reads the tables, not
// the changelog, and would otherwise remove edges the consumer still needs
// for the row's earlier changes (an artifact of writing a deleted_at in the
// past, which an application deleting rows now does not do).
func (m *mdModel) oldSoftDeleteStep() {
	table := []string{"lists", "items"}[m.rng.IntN(2)]
	m.e.caughtUp()
	id := m.pick(m.ids(m.db, `SELECT id::text FROM `+table+` WHERE deleted_at IS NULL ORDER BY id`))
	if id == "" {
		m.logf("no live row of %s to soft-delete long ago", table)
		return
	}
	pgtest.Exec(m.t, m.db, `UPDATE `+table+` SET deleted_at = now() - 2 * $2::bigint * interval '1 microsecond' WHERE id::text = $1`,
		id, mdStaleThreshold.Microseconds())
	m.stats["sql"]++
	m.stats["old soft delete"]++
	m.logf("sql: soft delete %s/%s two stale thresholds ago", table, id)
}

// mdBackground is what the background compaction saw.
type mdBackground struct {
	runs, skipped, deactivated int
	err                        error
}

// startBackgroundCompaction runs compaction in a goroutine, in a loop with
// random pauses, until stopBackgroundCompaction (or the test's end).
func (m *mdModel) startBackgroundCompaction() {
	m.background = true
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan mdBackground, 1)
	eng, rng := m.e.eng, rand.New(rand.NewPCG(m.seed, 0x636f6d70616374))
	go func() {
		var bg mdBackground
		for ctx.Err() == nil {
			res, err := eng.RunCompaction(ctx)
			switch {
			case err != nil:
				if ctx.Err() == nil && bg.err == nil {
					bg.err = err
				}
			case res.Skipped:
				bg.skipped++
			default:
				bg.runs++
				bg.deactivated += int(res.DeactivatedClients)
			}
			select {
			case <-ctx.Done():
			case <-time.After(time.Duration(rng.IntN(30)) * time.Millisecond):
			}
		}
		done <- bg
	}()
	var once sync.Once
	var bg mdBackground
	m.stopBackground = func() mdBackground {
		once.Do(func() {
			cancel()
			bg = <-done
		})
		return bg
	}
	m.t.Cleanup(func() { m.stopBackground() }) // before the environment's cleanups
}

// stopBackgroundCompaction stops the background compaction and checks
// what it saw: no error, no client deactivated.
func (m *mdModel) stopBackgroundCompaction() {
	if m.stopBackground == nil {
		return
	}
	bg := m.stopBackground()
	m.stats["background compaction"] = bg.runs
	m.stats["background compaction skipped"] = bg.skipped
	if bg.err != nil {
		m.t.Errorf("background compaction: %v", bg.err)
	}
	if bg.deactivated != 0 {
		m.t.Errorf("background compaction deactivated %d clients, but every client syncs", bg.deactivated)
	}
}
