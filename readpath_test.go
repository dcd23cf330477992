package synchro_test

import (
	"context"
	"testing"

	"github.com/synchrosync/synchro"
	"github.com/synchrosync/synchro/internal/pgtest"
)

func TestReadPathBasicFlow(t *testing.T) {
	t.Parallel()
	for _, app := range []bool{false, true} {
		name := "superuser"
		if app {
			name = "app role"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e := rpStart(t, rpOptions{app: app})
			db := e.db.Super
			pgtest.Exec(t, db, `INSERT INTO categories VALUES ('work', 'Work');
INSERT INTO lists (id, user_id, name) VALUES (1, 'alice', 'a1'), (2, 'bob', 'b1');
INSERT INTO items (id, list_id, title, secret) VALUES ('00000000-0000-0000-0000-000000000001', 1, 'i1', 's'), ('00000000-0000-0000-0000-000000000002', 2, 'i2', 's');
INSERT INTO notes VALUES ('n1', '00000000-0000-0000-0000-000000000001', 'note');
INSERT INTO tips VALUES (1, NULL, 'for all'), (2, 'bob', 'bob only')`)
			e.caughtUp()

			alice := e.client("alice", "phone")
			resp := alice.pull(0)
			if !resp.SnapshotRequired || resp.SnapshotReason != synchro.SnapshotReasonInitialSyncRequired {
				t.Fatalf("first pull: %+v", resp)
			}
			alice.snapshot(2)
			rpSameRows(t, "alice after snapshot", alice.rows, e.expected("alice"))

			pgtest.Exec(t, db, `UPDATE lists SET name = 'a1 renamed' WHERE id = 1;
INSERT INTO lists (id, user_id, name) VALUES (3, 'alice', 'a3');
UPDATE lists SET user_id = 'alice' WHERE id = 2;
DELETE FROM notes WHERE id = 'n1'`)
			e.caughtUp()
			alice.pullAll(2)
			rpSameRows(t, "alice after pulls", alice.rows, e.expected("alice"))

			bob := e.client("bob", "laptop")
			bob.snapshot(100)
			rpSameRows(t, "bob after snapshot", bob.rows, e.expected("bob"))

			pgtest.Exec(t, db, `UPDATE lists SET user_id = 'bob' WHERE id = 1; UPDATE lists SET deleted_at = now() WHERE id = 3`)
			e.caughtUp()
			alice.pullAll(3)
			bob.pullAll(3)
			rpSameRows(t, "alice at the end", alice.rows, e.expected("alice"))
			rpSameRows(t, "bob at the end", bob.rows, e.expected("bob"))

			// An empty pull keeps the checkpoint.
			before := alice.checkpoint
			resp = alice.pull(10)
			if len(resp.Changes)+len(resp.Deletes) != 0 || resp.HasMore || resp.Checkpoint != before {
				t.Errorf("empty pull: %+v (checkpoint before %d)", resp, before)
			}
			_ = context.Background()
		})
	}
}
