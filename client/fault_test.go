package client_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/synchrosync/synchro/client"
	"github.com/synchrosync/synchro/internal/pgtest"
)

// flaky is a RoundTripper that can be offline (every request fails
// without reaching the server) and can drop answers: it performs the
// request, reads the whole answer, and returns an error instead of it, as
// a connection lost just before the answer arrived.
type flaky struct {
	base    http.RoundTripper
	offline atomic.Bool
	// drop drops that share of answers (per mille).
	drop atomic.Int32
	rng  lockedRand
	// before, when set, runs before each request is sent; an error fails
	// the request unsent.
	before atomic.Pointer[func(*http.Request) error]
	// after, when set, runs after each answer came, with it; an error
	// drops it.
	after atomic.Pointer[func(*http.Request) error]
	sent  atomic.Int64
}

func newFlaky() *flaky { return &flaky{base: http.DefaultTransport.(*http.Transport).Clone()} }

var errDropped = errors.New("test: the answer was lost")

func (f *flaky) RoundTrip(r *http.Request) (*http.Response, error) {
	if f.offline.Load() {
		return nil, errors.New("test: offline")
	}
	if fn := f.before.Load(); fn != nil {
		if err := (*fn)(r); err != nil {
			return nil, err
		}
	}
	f.sent.Add(1)
	resp, err := f.base.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	drop := false
	if n := f.drop.Load(); n > 0 && f.rng.IntN(1000) < int(n) {
		drop = true
	}
	if fn := f.after.Load(); fn != nil && (*fn)(r) != nil {
		drop = true
	}
	if drop {
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		return nil, errDropped
	}
	return resp, nil
}

// withFlaky gives a device the transport f.
func withFlaky(f *flaky) func(*client.Config) {
	return func(c *client.Config) { c.HTTPClient = &http.Client{Transport: f} }
}

// Lost answers, 503s and cut connections lose nothing: every push whose
// answer was lost is taken as what it did (its echo is not a conflict,
// a create is not made twice), and the devices converge.
func TestFaultsLoseNothing(t *testing.T) {
	t.Parallel()
	s := startServer(t, "")
	f := newFlaky()
	a := s.newDevice(t, "alice", withFlaky(f))
	b := s.newDevice(t, "alice", nil)
	a.syncUntilOK()
	b.sync()

	// Every answer of A dropped once: the server applied each push, A
	// never heard.
	var n atomic.Int32
	dropAll := func(r *http.Request) error {
		if strings.HasSuffix(r.URL.Path, "/push") && n.Add(1) <= 2 {
			return errDropped
		}
		return nil
	}
	f.after.Store(&dropAll)
	a.exec(`INSERT INTO lists (id, user_id, name) VALUES ('l1', 'alice', 'one')`)
	a.exec(`INSERT INTO items (id, list_id, title) VALUES ('i1', 'l1', 'x')`)
	if err := a.c.Sync(context.Background()); err == nil {
		t.Fatal("a Sync whose push answer was lost succeeded")
	} else if st := a.c.Status(); st.State != client.StateOffline {
		t.Fatalf("status after a lost answer: %+v", st)
	}
	// And again, after another change to the row the lost push made.
	a.exec(`UPDATE lists SET name = 'one, edited' WHERE id = 'l1'`)
	if err := a.c.Sync(context.Background()); err == nil {
		t.Fatal("a Sync whose push answer was lost succeeded")
	}
	a.exec(`UPDATE items SET title = 'x, edited' WHERE id = 'i1'`)
	a.syncUntilOK()
	if rej := a.rejections(); len(rej) != 0 {
		t.Fatalf("lost answers became rejections: %+v", rej)
	}
	if p := a.pending(); p != 0 {
		t.Fatalf("%d changes pending", p)
	}
	var name, title string
	if err := s.db.Super.QueryRow(`SELECT l.name, i.title FROM lists l JOIN items i ON i.list_id = l.id`).Scan(&name, &title); err != nil ||
		name != "one, edited" || title != "x, edited" {
		t.Fatalf("on the server: %q %q, %v", name, title, err)
	}

	// Random faults on both sides, with Run.
	f.after.Store(nil)
	f.drop.Store(150)
	s.fail503.Store(100)
	s.abort.Store(50)
	stopA, stopB := a.run(), b.run()
	for i := range 40 {
		d := a
		if i%2 == 1 {
			d = b
		}
		listID := id()
		d.exec(`INSERT INTO lists (id, user_id, name, position) VALUES (?, 'alice', 'L', ?)`, listID, i)
		d.exec(`INSERT INTO items (id, list_id, title) VALUES (?, ?, 'item')`, id(), listID)
		d.exec(`UPDATE lists SET name = ? WHERE id = 'l1'`, "by "+d.user+" "+string(rune('a'+i%26)))
		time.Sleep(40 * time.Millisecond) // writes spread over time
	}
	pgtest.WaitUntil(t, "the devices to push everything under faults", 30*time.Second, func() bool { return a.pending() == 0 && b.pending() == 0 })
	f.drop.Store(0)
	s.fail503.Store(0)
	s.abort.Store(0)
	stopA()
	stopB()
	for range 2 {
		a.syncUntilOK()
		b.syncUntilOK()
		s.captured(t)
	}
	a.sync()
	b.sync()
	var lists, items int
	if err := s.db.Super.QueryRow(`SELECT (SELECT count(*) FROM lists WHERE user_id = 'alice'), (SELECT count(*) FROM items)`).Scan(&lists, &items); err != nil || lists != 41 || items != 41 {
		t.Fatalf("the server holds %d lists and %d items (%v), want 41 each", lists, items, err)
	}
	for _, d := range []*device{a, b} {
		if p := d.pending(); p != 0 {
			t.Errorf("%d changes pending", p)
		}
		for _, r := range d.rejections() {
			// The only rejections allowed are conflicts of the concurrent
			// renames of l1.
			if r.Status != "conflict" || r.ID != "l1" {
				t.Errorf("rejection %+v", r)
			}
		}
		s.converged(t, d)
	}
}

// A client closed in the middle of a snapshot resumes it where it
// stopped; one closed after its push reached the server, before the
// answer was applied, does not push twice or report conflicts.
func TestKilledMidSync(t *testing.T) {
	t.Parallel()
	s := startServer(t, `INSERT INTO lists (id, user_id, name) SELECT 'l' || g, 'alice', 'list ' || g FROM generate_series(1, 2500) AS g`)
	f := newFlaky()
	var snapshots atomic.Int32
	var killed sync.Once
	var d *device
	kill := make(chan struct{})
	cut := func(r *http.Request) error {
		if strings.HasSuffix(r.URL.Path, "/snapshot") && snapshots.Add(1) == 10 {
			killed.Do(func() { close(kill) })
			<-r.Context().Done() // hangs until the client is closed
			return r.Context().Err()
		}
		return nil
	}
	f.before.Store(&cut)
	d = s.newDevice(t, "alice", func(c *client.Config) { withFlaky(f)(c); c.SnapshotLimit = 100 })
	errc := make(chan error, 1)
	go func() { errc <- d.c.Sync(context.Background()) }()
	<-kill
	if err := d.c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err == nil {
		t.Fatal("a Sync cut by Close succeeded")
	}
	f.before.Store(nil)
	d.open()
	var rows int
	// The 10th page was asked for while the 9th was written (the next
	// page is fetched ahead): 8 or 9 pages are in.
	if err := d.c.DB().QueryRow(`SELECT count(*) FROM lists`).Scan(&rows); err != nil || (rows != 800 && rows != 900) {
		t.Fatalf("after the cut, %d rows (%v); want the 8 or 9 pages applied", rows, err)
	}
	d.sync()
	// 2500 rows in pages of 100: 25 or 26 pages. Resumed, the pages are
	// asked once each, plus the one or two cut; restarted, 8 more.
	if got := snapshots.Load(); got > 28 {
		t.Errorf("%d snapshot requests: the snapshot started again instead of resuming", got)
	}
	s.converged(t, d)

	// A push that reached the server, whose answer the client never
	// applied: closed meanwhile.
	for i := range 30 {
		d.exec(`INSERT INTO items (id, list_id, title) VALUES (?, 'l1', 'x')`, id())
		d.exec(`UPDATE lists SET name = ? WHERE id = ?`, "renamed", "l"+string(rune('1'+i%9)))
	}
	pushed := make(chan struct{})
	var once sync.Once
	hold := func(r *http.Request) error {
		if strings.HasSuffix(r.URL.Path, "/push") {
			once.Do(func() { close(pushed) })
			<-r.Context().Done()
			return r.Context().Err()
		}
		return nil
	}
	f.after.Store(&hold)
	go func() { errc <- d.c.Sync(context.Background()) }()
	<-pushed
	if err := d.c.Close(); err != nil {
		t.Fatal(err)
	}
	<-errc
	f.after.Store(nil)
	d.open()
	if p := d.pending(); p != 39 {
		t.Fatalf("%d changes pending after the cut, want 39", p)
	}
	d.sync()
	if p := d.pending(); p != 0 {
		t.Fatalf("%d changes pending", p)
	}
	if rej := d.rejections(); len(rej) != 0 {
		t.Fatalf("rejections: %+v", rej)
	}
	var items int
	if err := s.db.Super.QueryRow(`SELECT count(*) FROM items`).Scan(&items); err != nil || items != 30 {
		t.Fatalf("%d items on the server (%v)", items, err)
	}
	s.captured(t)
	d.sync()
	s.converged(t, d)
}

// A restart of PostgreSQL and of the application's process (a new
// engine and handler on the same address) while devices run and write:
// they ride it out (offline or in error meanwhile) and converge.
func TestServerRestart(t *testing.T) {
	t.Parallel()
	pg := pgtest.NewDedicatedServer(t)
	s := startServerOn(t, pg.NewMigratedDatabase(t), "")
	a := s.newDevice(t, "alice", nil)
	b := s.newDevice(t, "alice", nil)
	a.run()
	b.run()
	a.ready()
	b.ready()
	write := func(d *device, n int) {
		for range n {
			listID := id()
			d.exec(`INSERT INTO lists (id, user_id, name) VALUES (?, 'alice', 'L')`, listID)
			d.exec(`INSERT INTO items (id, list_id, title) VALUES (?, ?, 'x')`, id(), listID)
		}
	}
	write(a, 5)
	write(b, 5)
	pg.Restart(t)
	write(a, 5)
	s.newEngine()
	write(b, 5)
	pgtest.WaitUntil(t, "every change to reach the server", 60*time.Second, func() bool {
		var n int
		err := s.db.Super.QueryRow(`SELECT count(*) FROM items`).Scan(&n)
		return err == nil && n == 20 && a.pending() == 0 && b.pending() == 0
	})
	s.captured(t)
	pgtest.WaitUntil(t, "both devices to hold every item", 30*time.Second, func() bool {
		return a.count(`SELECT count(*) FROM items`) == 20 && b.count(`SELECT count(*) FROM items`) == 20
	})
	for _, d := range []*device{a, b} {
		if rej := d.rejections(); len(rej) != 0 {
			t.Errorf("rejections: %+v", rej)
		}
		s.converged(t, d)
	}
}

// A delete pushed, then the same key inserted again (an undo, a toggle),
// whether the delete's answer came, was lost (the server deleted the
// row), or its request never reached the server (the row is still
// live): the row inserted again ends on the device and the server. With
// the answer lost, the entry used to become an update of the row the
// server had deleted; the server answered record_deleted and the client
// took it as a lost conflict, deleting the row the user had just made.
func TestDeleteThenInsertAgain(t *testing.T) {
	t.Parallel()
	for _, fault := range []string{"none", "answer_lost", "request_lost"} {
		t.Run(fault, func(t *testing.T) {
			t.Parallel()
			s := startServer(t, `INSERT INTO lists (id, user_id, name) VALUES ('l1', 'alice', 'one')`)
			f := newFlaky()
			d := s.newDevice(t, "alice", withFlaky(f))
			d.sync()

			d.exec(`DELETE FROM lists WHERE id = 'l1'`)
			if fault == "none" {
				d.sync()
			} else {
				var n int
				fail := func(r *http.Request) error {
					if strings.HasSuffix(r.URL.Path, "/push") && n == 0 {
						n++
						return errDropped
					}
					return nil
				}
				if fault == "answer_lost" {
					f.after.Store(&fail)
				} else {
					f.before.Store(&fail)
				}
				if err := d.c.Sync(context.Background()); err == nil {
					t.Fatal("the Sync whose push failed succeeded")
				}
			}
			d.exec(`INSERT INTO lists (id, user_id, name) VALUES ('l1', 'alice', 'again')`)
			d.syncUntilOK()
			s.captured(t)
			d.sync()

			var local, server string
			_ = d.c.DB().QueryRow(`SELECT name FROM lists WHERE id = 'l1'`).Scan(&local)
			_ = s.db.Super.QueryRow(`SELECT name FROM lists WHERE id = 'l1' AND deleted_at IS NULL`).Scan(&server)
			if local != "again" || server != "again" || d.pending() != 0 {
				var why []string
				for _, r := range d.rejections() {
					why = append(why, r.Operation+" "+r.Status+" "+r.Reason)
				}
				t.Errorf("the row inserted again: device %q, server %q (want \"again\" on both), %d pending; rejections: %v", local, server, d.pending(), why)
			}
			s.converged(t, d)
		})
	}
}
