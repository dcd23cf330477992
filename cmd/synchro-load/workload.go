package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"github.com/synchrosync/synchro"
)

// client is one simulated device: one user, one client id, the ids it holds
// and where it is in the changelog.
type client struct {
	user, id string
	rng      *rand.Rand

	// What the device knows of its user's data: its lists and items.
	lists, items []string
	pushed       int // records pushed, to name new ones

	// The sync protocol's checkpoint.
	checkpoint int64
	registered bool

	// dev is the device's client of package client (-transport client).
	dev *device

	// The raw reference's read position: the (updated_at, id) of the last
	// item read.
	rawAt time.Time
	rawID string

	// seen holds the writer's markers this device has pulled already: only
	// the first pull that returns a change counts for commit-to-pull.
	seen map[int64]struct{}
}

// driver performs a client's operations: through the sync protocol, or as
// the raw reference with plain SQL.
type driver interface {
	bootstrap(ctx context.Context, c *client, rec *recorder) error
	// pull reads what changed; more reports that there is more to read now.
	pull(ctx context.Context, c *client, rec *recorder) (more bool, err error)
	push(ctx context.Context, c *client, rec *recorder) error
}

// edit is one change a device makes offline: an update of one of its items,
// or (id not yet known) a new item in one of its lists.
type edit struct {
	id, list string
	create   bool
	title    string
	done     bool
}

// edits makes a batch of n changes of c: one in five creates an item.
func (c *client) edits(n int) []edit {
	out := make([]edit, n)
	now := time.Now().UnixNano()
	// A batch changes an item once: a second change of the same record in
	// one push would lose against the first (its time is older than the
	// server's), which is a property of the batch, not of the server.
	picked := make(map[string]struct{}, n)
	for i := range out {
		c.pushed++
		e := edit{title: fmt.Sprintf("push:%s:%d:%d", c.id, c.pushed, now), done: c.rng.IntN(2) == 0}
		if len(picked) >= len(c.items)/2 || c.rng.IntN(5) == 0 {
			e.create, e.id, e.list = true, newUUID(c.rng), c.lists[c.rng.IntN(len(c.lists))]
			c.items = append(c.items, e.id)
		} else {
			for {
				e.id = c.items[c.rng.IntN(len(c.items))]
				if _, dup := picked[e.id]; !dup {
					break
				}
			}
		}
		picked[e.id] = struct{}{}
		out[i] = e
	}
	return out
}

// newUUID makes a random version 4 UUID from rng.
func newUUID(rng *rand.Rand) string {
	var b [16]byte
	for i := 0; i < 16; i += 8 {
		v := rng.Uint64()
		for j := range 8 {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// commits remembers when the writer committed each marker, for the
// commit-to-pull latency.
type commits struct {
	mu sync.Mutex
	at map[int64]time.Time
}

func newCommits() *commits { return &commits{at: map[int64]time.Time{}} }

// set records t as the commit time of the markers ns.
func (c *commits) set(ns []int64, t time.Time) {
	c.mu.Lock()
	for _, n := range ns {
		c.at[n] = t
	}
	c.mu.Unlock()
}

// since returns how long before now marker n was committed.
func (c *commits) since(n int64, now time.Time) (time.Duration, bool) {
	c.mu.Lock()
	t, ok := c.at[n]
	c.mu.Unlock()
	return max(now.Sub(t), 0), ok
}

// markerPrefix starts the title the writer gives a row: "sql:<n>".
const markerPrefix = "sql:"

// titleMarker finds the writer's marker in an item's JSON data.
var titleMarker = []byte(`"title":"` + markerPrefix)

// markerInJSON returns the writer's marker of an item's JSON data.
func markerInJSON(data []byte) (int64, bool) {
	i := bytes.Index(data, titleMarker)
	if i < 0 {
		return 0, false
	}
	rest := data[i+len(titleMarker):]
	j := bytes.IndexByte(rest, '"')
	if j < 0 {
		return 0, false
	}
	n, err := strconv.ParseInt(string(rest[:j]), 10, 64)
	return n, err == nil
}

// markerInTitle returns the writer's marker of an item's title.
func markerInTitle(title string) (int64, bool) {
	if len(title) <= len(markerPrefix) || title[:len(markerPrefix)] != markerPrefix {
		return 0, false
	}
	n, err := strconv.ParseInt(title[len(markerPrefix):], 10, 64)
	return n, err == nil
}

// arrived records, for the markers a pull returned at now, the latency of
// those c sees for the first time.
func (c *client) arrived(cm *commits, markers []int64, now time.Time, rec *recorder) {
	var ds []time.Duration
	for _, n := range markers {
		if _, dup := c.seen[n]; dup {
			continue
		}
		c.seen[n] = struct{}{}
		if d, ok := cm.since(n, now); ok {
			ds = append(ds, d)
		}
	}
	rec.delivered(ds)
}

// syncDriver runs the sync protocol.
type syncDriver struct {
	s         syncer
	version   int64
	hash      string
	pullLimit int
	batch     int
	commits   *commits
	// wait is how long a pull waits for a change (-wait; 0: plain pulls).
	wait time.Duration
}

func (d *syncDriver) bootstrap(ctx context.Context, c *client, rec *recorder) error {
	if !c.registered {
		err := d.s.register(ctx, c.user, &synchro.RegisterRequest{ClientID: c.id, Platform: "synchro-load", AppVersion: "1.0.0",
			SchemaVersion: d.version, SchemaHash: d.hash})
		if err != nil {
			return fmt.Errorf("register: %w", err)
		}
		c.registered = true
	}
	c.lists, c.items = c.lists[:0], c.items[:0]
	var cur *synchro.SnapshotCursor
	for {
		start := time.Now()
		resp, err := d.s.snapshot(ctx, c.user, &synchro.SnapshotRequest{ClientID: c.id, Cursor: cur, Limit: synchro.MaxSnapshotLimit,
			SchemaVersion: d.version, SchemaHash: d.hash})
		if err != nil {
			return err
		}
		rec.op(kindSnapshot, time.Since(start), len(resp.Records))
		for _, r := range resp.Records {
			switch r.TableName {
			case "lists":
				c.lists = append(c.lists, r.ID)
			case "items":
				c.items = append(c.items, r.ID)
			}
		}
		if !resp.HasMore {
			c.checkpoint = resp.Checkpoint
			return nil
		}
		cur = resp.Cursor
	}
}

func (d *syncDriver) pull(ctx context.Context, c *client, rec *recorder) (bool, error) {
	start := time.Now()
	resp, err := d.s.pull(ctx, c.user, &synchro.PullRequest{ClientID: c.id, Checkpoint: c.checkpoint, Limit: d.pullLimit,
		SchemaVersion: d.version, SchemaHash: d.hash}, d.wait)
	if err != nil {
		return false, err
	}
	now := time.Now()
	if resp.SnapshotRequired {
		rec.fail(kindPull, "snapshot required: "+resp.SnapshotReason)
		return false, d.bootstrap(ctx, c, rec)
	}
	rec.op(kindPull, now.Sub(start), len(resp.Changes)+len(resp.Deletes))
	var markers []int64
	for _, r := range resp.Changes {
		if r.TableName == "items" {
			if n, ok := markerInJSON(r.Data); ok {
				markers = append(markers, n)
			}
		}
	}
	c.arrived(d.commits, markers, now, rec)
	c.checkpoint = resp.Checkpoint
	return resp.HasMore, nil
}

func (d *syncDriver) push(ctx context.Context, c *client, rec *recorder) error {
	if len(c.lists) == 0 {
		return errNoLists
	}
	edits := c.edits(d.batch)
	recs := make([]synchro.PushRecord, len(edits))
	now := time.Now()
	for i, e := range edits {
		op, fields := "update", map[string]any{"title": e.title, "done": e.done}
		if e.create {
			op, fields["list_id"] = "create", e.list
		}
		data, err := json.Marshal(fields)
		if err != nil {
			return err
		}
		recs[i] = synchro.PushRecord{ID: e.id, TableName: "items", Operation: op, Data: data, ClientUpdatedAt: now}
	}
	start := time.Now()
	resp, err := d.s.push(ctx, c.user, &synchro.PushRequest{ClientID: c.id, Changes: recs, SchemaVersion: d.version, SchemaHash: d.hash})
	if err != nil {
		return err
	}
	rec.op(kindPush, time.Since(start), len(resp.Accepted))
	for _, r := range resp.Rejected {
		rec.rejected(kindPush, r.Status, r.ReasonCode)
	}
	return nil
}

// rawDriver is the reference: the same reads and writes as plain batched
// SQL on the same database, as the tables' owner, with no sync machinery. It
// reads changes the way a hand-rolled sync would: rows of the user's lists
// with an (updated_at, id) after the last one read, which is fast but not
// correct (a transaction that commits after a later one started is missed);
// it is a yardstick of what PostgreSQL alone does, not an alternative.
type rawDriver struct {
	db        *sql.DB
	pullLimit int
	batch     int
	commits   *commits
}

// rawItems is the projection the raw reference reads: every column of
// items, as a pull delivers them.
const rawItems = `i.id::text, i.list_id::text, i.title, i.done, i.priority_id, i.created_at, i.updated_at, i.deleted_at`

func (d *rawDriver) bootstrap(ctx context.Context, c *client, rec *recorder) error {
	if err := d.db.QueryRowContext(ctx, `SELECT now()`).Scan(&c.rawAt); err != nil {
		return err
	}
	c.rawID = ""
	c.lists, c.items = c.lists[:0], c.items[:0]
	// Lists, then items, in key order, in pages like a snapshot's.
	pages := []struct {
		query string
		into  *[]string
	}{
		{`SELECT l.id::text, l.user_id, l.name, l.created_at, l.updated_at, l.deleted_at FROM lists l
		  WHERE l.user_id = $1 AND l.id > $2::uuid AND l.deleted_at IS NULL ORDER BY l.id LIMIT $3`, &c.lists},
		{`SELECT ` + rawItems + ` FROM items i JOIN lists l ON l.id = i.list_id
		  WHERE l.user_id = $1 AND i.id > $2::uuid AND i.deleted_at IS NULL ORDER BY i.id LIMIT $3`, &c.items},
	}
	for _, p := range pages {
		after := "00000000-0000-0000-0000-000000000000"
		for {
			start := time.Now()
			n, last, err := d.readPage(ctx, p.query, p.into, c.user, after, synchro.MaxSnapshotLimit)
			if err != nil {
				return err
			}
			rec.op(kindSnapshot, time.Since(start), n)
			if n < synchro.MaxSnapshotLimit {
				break
			}
			after = last
		}
	}
	return nil
}

// readPage reads one page of a bootstrap query, appending the ids to into.
func (d *rawDriver) readPage(ctx context.Context, query string, into *[]string, args ...any) (int, string, error) {
	rows, err := d.db.QueryContext(ctx, query, args...)
	if err != nil {
		return 0, "", err
	}
	defer func() { _ = rows.Close() }()
	cols, _ := rows.Columns()
	vals := make([]any, len(cols))
	var id string
	vals[0] = &id
	for i := 1; i < len(vals); i++ {
		vals[i] = new(any)
	}
	n := 0
	for rows.Next() {
		if err := rows.Scan(vals...); err != nil {
			return 0, "", err
		}
		*into = append(*into, id)
		n++
	}
	return n, id, rows.Err()
}

func (d *rawDriver) pull(ctx context.Context, c *client, rec *recorder) (bool, error) {
	start := time.Now()
	rows, err := d.db.QueryContext(ctx, `SELECT `+rawItems+` FROM items i JOIN lists l ON l.id = i.list_id
		WHERE l.user_id = $1 AND (i.updated_at, i.id::text) > ($2, $3) ORDER BY i.updated_at, i.id::text LIMIT $4`,
		c.user, c.rawAt, c.rawID, d.pullLimit)
	if err != nil {
		return false, err
	}
	defer func() { _ = rows.Close() }()
	var (
		markers      []int64
		n            int
		id, list, pr string
		title        string
		done         bool
		created, upd time.Time
		deleted      sql.NullTime
	)
	for rows.Next() {
		if err := rows.Scan(&id, &list, &title, &done, &pr, &created, &upd, &deleted); err != nil {
			return false, err
		}
		n++
		c.rawAt, c.rawID = upd, id
		if m, ok := markerInTitle(title); ok {
			markers = append(markers, m)
		}
	}
	if err := rows.Err(); err != nil {
		return false, err
	}
	now := time.Now()
	rec.op(kindPull, now.Sub(start), n)
	c.arrived(d.commits, markers, now, rec)
	return n == d.pullLimit, nil
}

func (d *rawDriver) push(ctx context.Context, c *client, rec *recorder) error {
	if len(c.lists) == 0 {
		return errNoLists
	}
	edits := c.edits(d.batch)
	ids, lists, titles, dones := make([]string, len(edits)), make([]string, len(edits)), make([]string, len(edits)), make([]bool, len(edits))
	for i, e := range edits {
		ids[i], titles[i], dones[i] = e.id, e.title, e.done
		lists[i] = e.list
		if !e.create {
			lists[i] = c.lists[0] // unused: an existing row keeps its list
		}
	}
	start := time.Now()
	// One statement: inserts the new items, updates the others; a batch
	// may name an item twice, so the last edit of each id wins.
	res, err := d.db.ExecContext(ctx, `
INSERT INTO items (id, list_id, title, done)
SELECT DISTINCT ON (v.id) v.id, v.list_id, v.title, v.done
  FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::bool[]) WITH ORDINALITY AS v(id, list_id, title, done, ord)
 ORDER BY v.id, v.ord DESC
ON CONFLICT (id) DO UPDATE SET title = excluded.title, done = excluded.done, updated_at = now()`,
		ids, lists, titles, dones)
	if err != nil {
		return err
	}
	n, _ := res.RowsAffected()
	rec.op(kindPush, time.Since(start), int(n))
	return nil
}

// runClient runs c's mix of operations until ctx ends: a push with
// probability pushRatio, else a pull (followed by more pulls while the
// server says there is more), then a pause of think, jittered by ±50%.
// With live set the pulls wait for changes themselves (-wait), and no
// pause follows them.
func runClient(ctx context.Context, c *client, d driver, rec *recorder, pushRatio float64, think time.Duration, live bool) {
	for ctx.Err() == nil {
		pushed := c.rng.Float64() < pushRatio
		if pushed {
			if err := d.push(ctx, c, rec); err != nil && !runOver(ctx) {
				rec.fail(kindPush, classify(err))
				pause(ctx, 50*time.Millisecond)
			}
		} else {
			for ctx.Err() == nil {
				more, err := d.pull(ctx, c, rec)
				if err != nil && !runOver(ctx) {
					rec.fail(kindPull, classify(err))
					pause(ctx, 50*time.Millisecond)
				}
				if !more {
					break
				}
			}
		}
		if think > 0 && (pushed || !live) {
			pause(ctx, time.Duration(float64(think)*(0.5+c.rng.Float64())))
		}
	}
}

// runOver reports whether the run of ctx has ended: ctx is done, or its
// deadline has passed. An operation cut off by the end of the run is not a
// failure, and the deadline can fail one before ctx is done: when the pool
// dials a new connection near the end (database/sql does after a failed
// ping of an idle one), package net refuses a dial past ctx's deadline with
// a timeout that matches context.DeadlineExceeded, checked against the clock
// and not against ctx, whose own timer may not have cancelled it yet.
func runOver(ctx context.Context) bool {
	if ctx.Err() != nil {
		return true
	}
	d, ok := ctx.Deadline()
	return ok && !time.Now().Before(d)
}

// pause sleeps for d or until ctx ends.
func pause(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// writer changes items with plain SQL at a steady rate, as the application's
// own code would, each change giving the item the title "sql:<n>" with a
// new n; the commit time of every n goes to commits.
type writer struct {
	db      *sql.DB
	items   []string // the items it may change
	rate    float64  // changes per second
	batch   int      // changes per transaction
	commits *commits
	rng     *rand.Rand

	mu      sync.Mutex
	written int64
	errs    map[string]int64
	next    int64 // the next marker
}

// run writes until ctx ends. Every 5 ms it writes what is due at the rate
// (in transactions of batch changes): a slow statement delays the writes
// but does not lower the rate over the run, unless the database cannot keep
// up.
func (w *writer) run(ctx context.Context) {
	if w.rate <= 0 || len(w.items) == 0 {
		return
	}
	start := time.Now()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	var done int64
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		due := int64(time.Since(start).Seconds()*w.rate) - done
		for due > 0 && ctx.Err() == nil {
			n := int(min(due, int64(w.batch)))
			if err := w.write(ctx, n); err != nil {
				if runOver(ctx) {
					return
				}
				w.mu.Lock()
				w.errs[classify(err)]++
				w.mu.Unlock()
			}
			done += int64(n)
			due -= int64(n)
		}
	}
}

// write changes n distinct random items in one transaction.
func (w *writer) write(ctx context.Context, n int) error {
	n = min(n, len(w.items))
	picked := make(map[string]struct{}, n)
	ids := make([]string, 0, n)
	titles := make([]string, 0, n)
	markers := make([]int64, 0, n)
	w.mu.Lock()
	for len(ids) < n {
		id := w.items[w.rng.IntN(len(w.items))]
		if _, dup := picked[id]; dup {
			continue
		}
		picked[id] = struct{}{}
		ids = append(ids, id)
		titles = append(titles, markerPrefix+strconv.FormatInt(w.next, 10))
		markers = append(markers, w.next)
		w.next++
	}
	w.mu.Unlock()
	// The time before the commit stands in until the commit returns, so
	// that a pull faster than this goroutine still finds its marker.
	w.commits.set(markers, time.Now())
	_, err := w.db.ExecContext(ctx, `UPDATE items SET title = v.title, updated_at = now()
		FROM unnest($1::uuid[], $2::text[]) AS v(id, title) WHERE items.id = v.id`, ids, titles)
	if err != nil {
		return err
	}
	w.commits.set(markers, time.Now())
	w.mu.Lock()
	w.written += int64(n)
	w.mu.Unlock()
	return nil
}

// counts returns the changes written and the errors so far.
func (w *writer) counts() (int64, map[string]int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	errs := make(map[string]int64, len(w.errs))
	for k, v := range w.errs {
		errs[k] = v
	}
	return w.written, errs
}

// errNoLists reports a client whose user has no list to add items to.
var errNoLists = errors.New("the user has no list")
