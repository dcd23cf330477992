package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	synclient "github.com/synchrosync/synchro/client"
)

// clientDriver runs the devices on package client (-transport client):
// each simulated device is a client.Client on its own SQLite file in a
// temporary directory, syncing with the server over HTTP. A bootstrap is
// the client's first Sync (schema, register, the snapshot's pages, an
// empty pull); a pull is a Sync with nothing to push (it pulls until the
// server has nothing more); a push writes the batch's edits to the local
// items table with plain SQL, in one transaction (the client's triggers
// queue them), then Syncs (the push, then a pull). A writer's change
// counts as arrived, for commit-to-pull, when the Sync that wrote its
// marker into the local items table returns.
type clientDriver struct {
	base      string // the server, http://host:port
	dir       string // the devices' files
	hc        *http.Client
	pullLimit int
	batch     int
	commits   *commits
}

// newClientDriver makes the devices' directory and an HTTP client that
// keeps a connection per device.
func newClientDriver(base string, conns, pullLimit, batch int, cm *commits) (*clientDriver, error) {
	dir, err := os.MkdirTemp("", "synchro-load-clients-*")
	if err != nil {
		return nil, err
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = conns + 8
	tr.MaxIdleConnsPerHost = conns + 8
	return &clientDriver{base: base, dir: dir, hc: &http.Client{Transport: tr}, pullLimit: pullLimit, batch: batch, commits: cm}, nil
}

// device is a simulated device's client, and the events of its current
// round.
type device struct {
	c      *synclient.Client
	mu     sync.Mutex
	events []synclient.Event
	closed bool
}

func (d *device) onEvent(ev synclient.Event) {
	d.mu.Lock()
	d.events = append(d.events, ev)
	d.mu.Unlock()
}

// sync makes a round of d's client and returns its events.
func (d *device) sync(ctx context.Context) ([]synclient.Event, error) {
	d.mu.Lock()
	d.events = nil
	d.mu.Unlock()
	err := d.c.Sync(ctx)
	d.mu.Lock()
	defer d.mu.Unlock()
	evs := d.events
	d.events = nil
	return evs, err
}

// close closes the clients of devices, removing their files.
func (d *clientDriver) close(devices ...[]*client) error {
	var errs []error
	for _, cs := range devices {
		for _, c := range cs {
			if c.dev != nil && !c.dev.closed {
				c.dev.closed = true
				errs = append(errs, c.dev.c.Close())
			}
		}
	}
	return errors.Join(append(errs, os.RemoveAll(d.dir))...)
}

func (d *clientDriver) bootstrap(ctx context.Context, c *client, rec *recorder) error {
	if c.dev == nil {
		dev := &device{}
		cl, err := synclient.Open(ctx, synclient.Config{
			ServerURL:     d.base,
			Path:          filepath.Join(d.dir, c.id+".db"),
			Token:         func(context.Context) (string, error) { return c.user, nil },
			HTTPClient:    d.hc,
			ClientID:      c.id,
			Platform:      "synchro-load",
			AppVersion:    "1.0.0",
			PushBatch:     d.batch,
			PullLimit:     d.pullLimit,
			SnapshotLimit: synclient.DefaultSnapshotLimit,
			OnEvent:       dev.onEvent,
		})
		if err != nil {
			return err
		}
		dev.c, c.dev = cl, dev
	}
	start := time.Now()
	evs, err := c.dev.sync(ctx)
	if err != nil {
		return err
	}
	rec.op(kindSnapshot, time.Since(start), received(evs))
	db := c.dev.c.DB()
	if c.lists, err = ids(ctx, db, c.lists[:0], `SELECT id FROM lists`); err != nil {
		return err
	}
	c.items, err = ids(ctx, db, c.items[:0], `SELECT id FROM items`)
	if err != nil {
		return err
	}
	_, err = d.arrivals(ctx, c, time.Now(), rec)
	return err
}

// ids appends the ids query (with args) reads to into.
func ids(ctx context.Context, db *sql.DB, into []string, query string, args ...any) ([]string, error) {
	rows, err := db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer func() { _ = rows.Close() }()
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		into = append(into, id)
	}
	return into, rows.Err()
}

// received counts the records the events of a round wrote locally.
func received(evs []synclient.Event) int {
	n := 0
	for _, ev := range evs {
		if ev.Kind == synclient.EventReceived {
			for _, k := range ev.Tables {
				n += k
			}
		}
	}
	return n
}

// arrivals records the writer's markers now in c's local items that it
// has not seen yet, as arrived at now.
func (d *clientDriver) arrivals(ctx context.Context, c *client, now time.Time, rec *recorder) (int, error) {
	rows, err := c.dev.c.DB().QueryContext(ctx, `SELECT title FROM items WHERE title LIKE ?`, markerPrefix+"%")
	if err != nil {
		return 0, err
	}
	defer func() { _ = rows.Close() }()
	var markers []int64
	for rows.Next() {
		var title string
		if err := rows.Scan(&title); err != nil {
			return 0, err
		}
		if n, ok := markerInTitle(title); ok {
			markers = append(markers, n)
		}
	}
	if err := rows.Err(); err != nil {
		return 0, err
	}
	c.arrived(d.commits, markers, now, rec)
	return len(markers), nil
}

func (d *clientDriver) pull(ctx context.Context, c *client, rec *recorder) (bool, error) {
	if c.dev == nil {
		return false, errors.New("the device has no client: its bootstrap failed")
	}
	start := time.Now()
	evs, err := c.dev.sync(ctx)
	if err != nil {
		return false, err
	}
	now := time.Now()
	rec.op(kindPull, now.Sub(start), received(evs))
	if err := d.settle(ctx, c, evs, rec); err != nil {
		return false, err
	}
	if received(evs) > 0 {
		_, err = d.arrivals(ctx, c, now, rec)
	}
	return false, err // Sync pulls until the server has nothing more
}

func (d *clientDriver) push(ctx context.Context, c *client, rec *recorder) error {
	if c.dev == nil {
		return errors.New("the device has no client: its bootstrap failed")
	}
	if len(c.lists) == 0 {
		return errNoLists
	}
	edits := c.edits(d.batch)
	db := c.dev.c.DB()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	for _, e := range edits {
		if e.create {
			_, err = tx.ExecContext(ctx, `INSERT INTO items (id, list_id, title, done) VALUES (?, ?, ?, ?)`, e.id, e.list, e.title, e.done)
		} else {
			_, err = tx.ExecContext(ctx, `UPDATE items SET title = ?, done = ? WHERE id = ?`, e.title, e.done, e.id)
		}
		if err != nil {
			return errors.Join(fmt.Errorf("writing locally: %w", err), tx.Rollback())
		}
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	start := time.Now()
	evs, err := c.dev.sync(ctx)
	if err != nil {
		return err
	}
	now := time.Now()
	refused := 0
	for _, ev := range evs {
		if ev.Kind == synclient.EventConflict || ev.Kind == synclient.EventRejected {
			refused++
		}
	}
	rec.op(kindPush, now.Sub(start), max(len(edits)-refused, 0))
	if err := d.settle(ctx, c, evs, rec); err != nil {
		return err
	}
	if received(evs) > 0 {
		_, err = d.arrivals(ctx, c, now, rec)
	}
	return err
}

// settle records the conflicts and rejections of a round, and deletes
// them from the client's list of rejections (the device has dealt with
// them).
func (d *clientDriver) settle(ctx context.Context, c *client, evs []synclient.Event, rec *recorder) error {
	var seqs []int64
	for _, ev := range evs {
		if ev.Kind == synclient.EventConflict || ev.Kind == synclient.EventRejected {
			rec.rejected(kindPush, ev.Rejection.Status, ev.Rejection.Reason)
			seqs = append(seqs, ev.Rejection.Seq)
		}
	}
	if len(seqs) == 0 {
		return nil
	}
	return c.dev.c.DeleteRejections(ctx, seqs...)
}
