package client_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/synchrosync/synchro/client"
	"github.com/synchrosync/synchro/client/seed"
)

// A device started from a seed file takes no snapshot: it registers, pulls
// what changed since the seed was written, and syncs on from there.
func TestSeed(t *testing.T) {
	t.Parallel()
	s := startServer(t, `INSERT INTO lists (id, user_id, name) SELECT 'l' || g, 'alice', 'list ' || g FROM generate_series(1, 300) AS g;
		INSERT INTO items (id, list_id, title) SELECT 'i' || g, 'l' || (g % 300 + 1), 'item ' || g FROM generate_series(1, 700) AS g;
		INSERT INTO lists (id, user_id, name) VALUES ('bobs', 'bob', 'not alice''s')`)
	path := filepath.Join(t.TempDir(), "alice.db")
	res, err := seed.Write(context.Background(), path, seed.Config{Engine: s.engine.Load(), UserID: "alice", AppVersion: "1.0.0"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Records != 1000 || res.ClientID == "" {
		t.Fatalf("seed result %+v", res)
	}
	for _, p := range []string{path + "-wal", path + "-shm"} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("the seed left %s beside the file", p)
		}
	}

	// Changes after the seed was written.
	s.exec(t, `UPDATE lists SET name = 'renamed after the seed' WHERE id = 'l7'`)
	s.exec(t, `DELETE FROM items WHERE id = 'i9'`)
	s.exec(t, `INSERT INTO lists (id, user_id, name) VALUES ('new', 'alice', 'new after the seed')`)
	s.captured(t)

	d := s.newDevice(t, "alice", func(c *client.Config) { c.Path = path })
	if d.c.ClientID() != res.ClientID {
		t.Fatalf("client id %q, want the seed's %q", d.c.ClientID(), res.ClientID)
	}
	before := s.requests.Load()
	d.sync()
	if got := d.eventsOf(client.EventSnapshot); len(got) != 0 {
		t.Fatalf("a device started from a seed took a snapshot: %+v", got)
	}
	if n := s.requests.Load() - before; n > 5 {
		t.Errorf("%d requests for the first sync from a seed", n)
	}
	var name string
	if err := d.c.DB().QueryRow(`SELECT name FROM lists WHERE id = 'l7'`).Scan(&name); err != nil || name != "renamed after the seed" {
		t.Fatalf("l7: %q, %v", name, err)
	}
	s.converged(t, d)

	// It pushes like any device.
	d.exec(`INSERT INTO items (id, list_id, title) VALUES ('from-seed', 'l1', 'x')`)
	d.sync()
	var n int
	if err := s.db.Super.QueryRow(`SELECT count(*) FROM items WHERE id = 'from-seed'`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("the device's item on the server: %d, %v", n, err)
	}

	// A seed is one installation's: another client id is refused.
	if err := d.c.Close(); err != nil {
		t.Fatal(err)
	}
	cfg := d.cfg
	cfg.ClientID = "someone-else"
	if c, err := client.Open(context.Background(), cfg); err == nil {
		_ = c.Close()
		t.Fatal("Open took a file of another client id")
	}
}
