package client_test

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

// workload tracks what the devices and the server did, for the checks at
// the end.
type workload struct {
	mu sync.Mutex
	// created are the items created on devices, with the device.
	created map[string]*device
	// deleted are the items deleted on a device or on the server.
	deleted map[string]bool
}

func (w *workload) create(d *device, id string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.created[id] = d
}

func (w *workload) remove(id string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.deleted[id] = true
}

// createdCount returns the number of items created on devices so far.
func (w *workload) createdCount() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.created)
}

// Many devices of several users, each going offline and online at random,
// some closed abruptly and reopened, write concurrently while the server
// moves lists between users and items between lists, deletes items, and
// adds a column; answers are lost, 503s and cut connections happen. Once
// writes stop and the faults end, every device holds exactly what a new
// device of its user would get, no change is pending, and every item a
// device created is on the server, or in that device's rejections, or
// was deleted.
func TestManyDevicesConverge(t *testing.T) {
	t.Parallel()
	users := []string{"alice", "bob", "carol"}
	s := startServer(t, `INSERT INTO lists (id, user_id, name) VALUES ('a0', 'alice', 'a'), ('b0', 'bob', 'b'), ('c0', 'carol', 'c')`)
	w := &workload{created: map[string]*device{}, deleted: map[string]bool{}}
	const perUser = 3
	duration := 6 * time.Second
	if testing.Short() {
		duration = 2 * time.Second
	}

	type slot struct {
		d *device
		f *flaky
	}
	var devices []*slot
	for _, u := range users {
		for range perUser {
			f := newFlaky()
			d := s.newDevice(t, u, withFlaky(f))
			devices = append(devices, &slot{d: d, f: f})
		}
	}
	s.fail503.Store(30)
	s.abort.Store(20)

	// The workload runs for duration, then on until the devices created
	// minCreated items, for the checks below to have something to check:
	// on a crowded machine under the race detector a device's writes can
	// take hundreds of milliseconds each, and 6s then made fewer than 10
	// items (70 to 140 on an idle one). maxWorkload bounds the wait: a
	// workload that does not run still fails.
	const minCreated = 10
	maxWorkload := 10 * duration
	ctx, stopWork := context.WithCancel(context.Background())
	defer stopWork()
	workStart := time.Now()
	go func() {
		defer stopWork()
		timer := time.NewTimer(duration)
		defer timer.Stop()
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		select {
		case <-timer.C:
		case <-ctx.Done():
			return
		}
		for w.createdCount() < minCreated && time.Since(workStart) < maxWorkload {
			select {
			case <-tick.C:
			case <-ctx.Done():
				return
			}
		}
	}()
	var wg sync.WaitGroup
	for i, sl := range devices {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), uint64(i)))
			sl.f.drop.Store(30)
			stopRun := sl.d.run()
			nextToggle := time.Now()
			for ctx.Err() == nil {
				if time.Now().After(nextToggle) {
					nextToggle = time.Now().Add(time.Duration(200+rng.IntN(600)) * time.Millisecond)
					sl.f.offline.Store(rng.IntN(10) < 3)
					if rng.IntN(10) == 0 { // closed abruptly, reopened
						stopRun()
						sl.d.reopen()
						stopRun = sl.d.run()
					}
				}
				if len(sl.d.c.Tables()) > 0 {
					deviceOp(t, rng, sl.d, w)
				}
				time.Sleep(time.Duration(10+rng.IntN(40)) * time.Millisecond) // the user's pace
			}
			stopRun()
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 99))
		altered := false
		start := time.Now()
		for ctx.Err() == nil {
			if !altered && time.Since(start) > duration*2/5 {
				s.exec(t, `ALTER TABLE items ADD COLUMN priority integer NOT NULL DEFAULT 0`)
				altered = true
			}
			serverOp(t, rng, s, users, w, altered)
			time.Sleep(time.Duration(50+rng.IntN(150)) * time.Millisecond) // the server application's pace
		}
	}()
	wg.Wait()
	worked := time.Since(workStart)

	// Quiet: no faults, every device online, a few rounds each.
	s.fail503.Store(0)
	s.abort.Store(0)
	for _, sl := range devices {
		sl.f.offline.Store(false)
		sl.f.drop.Store(0)
	}
	for range 3 {
		for _, sl := range devices {
			sl.d.syncUntilOK()
		}
		s.captured(t)
	}
	for _, sl := range devices {
		sl.d.sync()
	}

	var rejections, conflicts int
	rejected := map[*device]map[string]bool{}
	for _, sl := range devices {
		d := sl.d
		if p := d.pending(); p != 0 {
			list, _ := d.c.Pending(context.Background())
			t.Errorf("%s: %d changes pending at the end: %+v", d.user, p, list)
		}
		rejected[d] = map[string]bool{}
		for _, r := range d.rejections() {
			if r.Status != "conflict" && r.Status != "rejected_terminal" || r.Reason == "" {
				t.Errorf("%s: rejection without a reason: %+v", d.user, r)
			}
			if r.Status == "conflict" {
				conflicts++
			} else {
				rejections++
			}
			rejected[d][r.ID] = true
		}
		s.converged(t, d)
	}
	var onServer int
	for itemID, d := range w.created {
		if w.deleted[itemID] || rejected[d][itemID] {
			continue
		}
		var n int
		if err := s.db.Super.QueryRow(`SELECT count(*) FROM items WHERE id = $1`, itemID).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 1 {
			t.Errorf("item %s created on a device of %s is neither on the server nor rejected nor deleted", itemID, d.user)
		}
		onServer++
	}
	var moves int
	if err := s.db.Super.QueryRow(`SELECT count(*) FROM synchro.changelog WHERE table_name = 'lists' AND operation = 3`).Scan(&moves); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d items created on devices (%d on the server) in %v, %d rejections, %d conflicts, %d requests, %d list deletes or moves in the changelog",
		len(w.created), onServer, worked.Round(time.Millisecond), rejections, conflicts, s.requests.Load(), moves)
	if len(w.created) < minCreated {
		t.Errorf("only %d items created in %v: the workload did not run", len(w.created), worked.Round(time.Millisecond))
	}
}

// deviceOp makes one random local write on d.
func deviceOp(t *testing.T, rng *rand.Rand, d *device, w *workload) {
	db := d.c.DB()
	randomID := func(table string) string {
		var id string
		err := db.QueryRow(`SELECT id FROM "` + table + `" ORDER BY random() LIMIT 1`).Scan(&id)
		if err != nil && err != sql.ErrNoRows {
			t.Errorf("%s: picking a row: %v", d.user, err)
		}
		return id
	}
	exec := func(query string, args ...any) {
		if _, err := db.Exec(query, args...); err != nil {
			t.Errorf("%s: %s: %v", d.user, query, err)
		}
	}
	switch p := rng.IntN(100); {
	case p < 12:
		exec(`INSERT INTO lists (id, user_id, name, position) VALUES (?, ?, ?, ?)`, id(), d.user, "list", rng.IntN(10))
	case p < 45:
		if list := randomID("lists"); list != "" {
			item := id()
			exec(`INSERT INTO items (id, list_id, title, data) VALUES (?, ?, ?, ?)`, item, list, "item", fmt.Sprintf(`{"n": %d}`, rng.IntN(100)))
			w.create(d, item)
		}
	case p < 70:
		if item := randomID("items"); item != "" {
			exec(`UPDATE items SET title = ?, done = ? WHERE id = ?`, fmt.Sprintf("t%d", rng.IntN(1000)), rng.IntN(2), item)
		}
	case p < 80:
		if list := randomID("lists"); list != "" {
			exec(`UPDATE lists SET name = ? WHERE id = ?`, fmt.Sprintf("n%d", rng.IntN(1000)), list)
		}
	case p < 88:
		if item := randomID("items"); item != "" {
			w.remove(item)
			exec(`DELETE FROM items WHERE id = ?`, item)
		}
	case p < 91:
		if list := randomID("lists"); list != "" {
			exec(`DELETE FROM lists WHERE id = ?`, list)
		}
	case p < 93:
		// Refused by the server's CHECK: rejected, the row goes back.
		if list := randomID("lists"); list != "" {
			exec(`UPDATE lists SET position = -1 WHERE id = ?`, list)
		}
	default:
		if list := randomID("lists"); list != "" {
			exec(`UPDATE lists SET position = ? WHERE id = ?`, rng.IntN(10), list)
		}
	}
}

// serverOp makes one random change on the server, as the application's
// own code would: bucket moves, deletes, edits.
func serverOp(t *testing.T, rng *rand.Rand, s *server, users []string, w *workload, altered bool) {
	db := s.db.Super
	exec := func(query string, args ...any) {
		if _, err := db.Exec(query, args...); err != nil {
			t.Errorf("server: %s: %v", query, err)
		}
	}
	switch p := rng.IntN(100); {
	case p < 30: // a list changes owner: it and its items move
		exec(`UPDATE lists SET user_id = $1 WHERE id = (SELECT id FROM lists WHERE user_id <> '_probe' AND deleted_at IS NULL ORDER BY random() LIMIT 1)`,
			users[rng.IntN(len(users))])
	case p < 55: // an item changes list
		exec(`UPDATE items SET list_id = (SELECT id FROM lists WHERE user_id <> '_probe' ORDER BY random() LIMIT 1)
			WHERE id = (SELECT id FROM items ORDER BY random() LIMIT 1)`)
	case p < 70:
		var item string
		if err := db.QueryRow(`DELETE FROM items WHERE id = (SELECT id FROM items ORDER BY random() LIMIT 1) RETURNING id`).Scan(&item); err == nil {
			w.remove(item)
		}
	case p < 85:
		exec(`UPDATE lists SET name = 'server ' || floor(random() * 100) WHERE id = (SELECT id FROM lists ORDER BY random() LIMIT 1)`)
	default:
		if altered {
			exec(`UPDATE items SET priority = floor(random() * 5) WHERE id = (SELECT id FROM items ORDER BY random() LIMIT 1)`)
		}
	}
}
