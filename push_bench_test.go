package synchro

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/synchrosync/synchro/internal/pgtest"
)

// BenchmarkPush measures push throughput on one owned table with every check
// in place (savepoint per record, row lock, ownership, conflict resolution,
// column allow-list). It reports records/s.
//
//	go test -run '^$' -bench BenchmarkPush -benchtime 200x .
func BenchmarkPush(b *testing.B) {
	for _, size := range []int{1, 100, 1000} {
		for _, op := range []string{"create", "update"} {
			b.Run(fmt.Sprintf("%s-%d", op, size), func(b *testing.B) { benchPush(b, op, size) })
		}
	}
}

func benchPush(b *testing.B, op string, size int) {
	ctx := context.Background()
	db := pgtest.NewMigratedDatabase(b)
	pgtest.Exec(b, db.Super, `CREATE TABLE bench_lists (
		id uuid PRIMARY KEY, user_id text NOT NULL, name text NOT NULL, position integer NOT NULL DEFAULT 0,
		created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now(), deleted_at timestamptz)`)
	reg := NewRegistry()
	reg.Register(&TableConfig{TableName: "bench_lists", OwnerColumn: "user_id"})
	e, err := newEngine(ctx, Config{DB: db.Super, Registry: reg})
	if err != nil {
		b.Fatal(err)
	}
	v, h, _ := e.CurrentSchemaManifest(ctx)
	if _, err := e.RegisterClient(ctx, "bench-user", &RegisterRequest{ClientID: "dev", SchemaVersion: v, SchemaHash: h}); err != nil {
		b.Fatal(err)
	}
	push := func(recs []PushRecord) {
		resp, err := e.Push(ctx, "bench-user", &PushRequest{ClientID: "dev", Changes: recs, SchemaVersion: v, SchemaHash: h})
		if err != nil {
			b.Fatal(err)
		}
		if len(resp.Accepted) != len(recs) {
			b.Fatalf("%d of %d accepted: %+v", len(resp.Accepted), len(recs), resp.Rejected[0])
		}
	}
	ids := make([]string, size)
	newBatch := func(n int, op string) []PushRecord {
		recs := make([]PushRecord, size)
		for i := range recs {
			if op == "create" {
				ids[i] = fmt.Sprintf("00000000-0000-4000-8000-%012d", n*size+i)
			}
			data, _ := json.Marshal(map[string]any{"name": fmt.Sprintf("list %d/%d", n, i), "position": i})
			recs[i] = PushRecord{ID: ids[i], TableName: "bench_lists", Operation: op, Data: data, ClientUpdatedAt: time.Now().Add(time.Hour)}
		}
		return recs
	}
	if op == "update" {
		push(newBatch(0, "create"))
	}
	b.ResetTimer()
	for n := 1; n <= b.N; n++ {
		batch := newBatch(n, op)
		push(batch)
	}
	b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "records/s")
}
