package wal

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/synchrosync/synchro"
	"github.com/synchrosync/synchro/internal/changenote"
	"github.com/synchrosync/synchro/internal/pgtest"
)

// TestBackfillPartsAnnounceEveryBucket: a table registered again is
// recorded in parts (of two rows in these tests), each written and
// forgotten before the next; the notification sent with the record's
// transaction must still name the buckets of every part's changelog rows,
// or devices waiting on the earlier parts' buckets would not hear of them
// until their re-check.
func TestBackfillPartsAnnounceEveryBucket(t *testing.T) {
	t.Parallel()
	e := e2eNew(t, otherSchema, otherRegistry())
	e.run()
	e.step(`INSERT INTO other (id, user_id) SELECT 'o' || g, 'u' || g FROM generate_series(1, 5) AS g`)
	e.halt()
	e.cfg.Registry = ctRegistry() // rolled back: the session forgets other
	e.run()
	e.halt()
	pgtest.Exec(t, e.db.Super, `UPDATE other SET user_id = 'v' || substr(id, 2)`)

	ctx := context.Background()
	listener, err := pgx.Connect(ctx, e.db.DSN)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = listener.Close(ctx) }()
	if _, err := listener.Exec(ctx, "LISTEN "+pgx.Identifier{synchro.ChangesChannel}.Sanitize()); err != nil {
		t.Fatal(err)
	}
	e.cfg.Registry = otherRegistry() // rolled forward: recorded again
	e.run()
	var want []string
	for g := 1; g <= 5; g++ {
		want = append(want, fmt.Sprintf("user:u%d", g), fmt.Sprintf("user:v%d", g))
	}
	got := map[string]bool{}
	all := false
	deadline := time.Now().Add(e2eTimeout)
	for !all && slices.ContainsFunc(want, func(b string) bool { return !got[b] }) {
		if time.Now().After(deadline) {
			t.Fatalf("notes named %v, want every one of %v", got, want)
		}
		wctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		n, err := listener.WaitForNotification(wctx)
		cancel()
		if err != nil {
			continue
		}
		note := changenote.Decode(n.Payload)
		all = all || note.All
		for _, b := range note.Buckets {
			got[b] = true
		}
	}
	for id, want := range map[string]string{"o1": "user:v1", "o3": "user:v3", "o5": "user:v5"} {
		ctEqual(t, "edges of "+id, e.edges("other", id), want)
	}
}
