package client_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/synchrosync/synchro/client"
	"github.com/synchrosync/synchro/client/seed"
)

// BenchmarkFirstStart measures a new installation's first start with
// 100,000 rows in its user's buckets (10,000 with -short): from a snapshot
// (Open on a new file, then one Sync that pages through the snapshot over
// HTTP) and from a seed file (Open on a seed, then one Sync that registers
// and pulls the nothing that changed since), and the server's cost of
// writing the seed. The server runs in-process (engine, change capture,
// synchrohttp on httptest) on the same machine.
func BenchmarkFirstStart(b *testing.B) {
	lists, items := 10_000, 90_000
	if testing.Short() {
		lists, items = 1_000, 9_000
	}
	s := startServer(b, fmt.Sprintf(`
INSERT INTO lists (id, user_id, name, position) SELECT 'l' || g, 'alice', 'list number ' || g, g %% 10 FROM generate_series(1, %d) AS g;
INSERT INTO items (id, list_id, title, done, data)
  SELECT 'i' || g, 'l' || (g %% %d + 1), 'item number ' || g, g %% 3 = 0, jsonb_build_object('n', g)
    FROM generate_series(1, %d) AS g;
ANALYZE;`, lists, lists, items))
	rows := lists + items
	dir := b.TempDir()
	newCfg := func(path string) client.Config {
		return client.Config{ServerURL: s.url, Path: path, AppVersion: "1.0.0",
			Token: func(context.Context) (string, error) { return "alice", nil }}
	}
	start := func(b *testing.B, path string) {
		c, err := client.Open(context.Background(), newCfg(path))
		if err != nil {
			b.Fatal(err)
		}
		if err := c.Sync(context.Background()); err != nil {
			b.Fatal(err)
		}
		var n int
		if err := c.DB().QueryRow(`SELECT (SELECT count(*) FROM lists) + (SELECT count(*) FROM items)`).Scan(&n); err != nil || n != rows {
			b.Fatalf("%d rows after the first start (%v), want %d", n, err, rows)
		}
		if err := c.Close(); err != nil {
			b.Fatal(err)
		}
	}
	fileMB := func(path string) float64 {
		st, err := os.Stat(path)
		if err != nil {
			b.Fatal(err)
		}
		return float64(st.Size()) / (1 << 20)
	}

	b.Run("snapshot", func(b *testing.B) {
		var path string
		for i := 0; b.Loop(); i++ {
			path = filepath.Join(dir, fmt.Sprintf("snapshot-%d.db", i))
			start(b, path)
		}
		b.ReportMetric(float64(rows), "rows")
		b.ReportMetric(fileMB(path), "file-MB")
	})
	b.Run("seed-write", func(b *testing.B) {
		var path string
		for i := 0; b.Loop(); i++ {
			path = filepath.Join(dir, fmt.Sprintf("seed-w-%d.db", i))
			if _, err := seed.Write(context.Background(), path, seed.Config{Engine: s.engine.Load(), UserID: "alice"}); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(rows), "rows")
		b.ReportMetric(fileMB(path), "file-MB")
	})
	b.Run("seed-start", func(b *testing.B) {
		var total time.Duration
		n := 0
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			path := filepath.Join(dir, fmt.Sprintf("seed-%d.db", i))
			if _, err := seed.Write(context.Background(), path, seed.Config{Engine: s.engine.Load(), UserID: "alice"}); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			t0 := time.Now()
			start(b, path)
			total += time.Since(t0)
			n++
		}
		b.ReportMetric(float64(rows), "rows")
		b.ReportMetric(float64(total.Milliseconds())/float64(n), "ms/start")
	})
}
