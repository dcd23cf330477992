package synchro_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/synchrosync/synchro"
	"github.com/synchrosync/synchro/internal/pgtest"
)

// TestReadPathContractColumns checks that snapshots and pulls deliver
// exactly the contract's columns, in its order: a timestamp column the table
// lacks as null, and a real one that SyncColumns leaves out with its value.
func TestReadPathContractColumns(t *testing.T) {
	reg := synchro.NewRegistry()
	reg.Register(&synchro.TableConfig{TableName: "plain", OwnerColumn: "user_id"})
	reg.Register(&synchro.TableConfig{TableName: "partial", OwnerColumn: "user_id", SyncColumns: []string{"user_id", "title"}})
	reg.Register(&synchro.TableConfig{TableName: "soft", OwnerColumn: "user_id", SyncColumns: []string{"user_id", "note"}})
	rcModes(t, func(t *testing.T, app bool) {
		e := rpStart(t, rpOptions{app: app, registry: reg, schema: `
CREATE TABLE plain (id int PRIMARY KEY, user_id text NOT NULL, body text);
CREATE TABLE partial (id int PRIMARY KEY, user_id text NOT NULL, title text, secret text,
	updated_at timestamptz NOT NULL DEFAULT now(), deleted_at timestamptz);
CREATE TABLE soft (id int PRIMARY KEY, user_id text NOT NULL, note text, secret text, deleted_at timestamptz);
INSERT INTO plain VALUES (1, 'alice', 'b1');
INSERT INTO partial (id, user_id, title, secret) VALUES (1, 'alice', 't1', 's');
INSERT INTO soft (id, user_id, note, secret) VALUES (1, 'alice', 'n1', 's');`})

		schema, err := e.eng.Schema(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		columns := synchro.ContractColumns(schema)
		want := map[string]string{
			"plain":   "id user_id body updated_at deleted_at",
			"partial": "id user_id title updated_at deleted_at",
			"soft":    "id user_id note deleted_at updated_at",
		}
		for table, w := range want {
			if got := strings.Join(columns[table], " "); got != w {
				t.Errorf("%s: contract columns %s, want %s", table, got, w)
			}
		}
		check := func(what string, r synchro.Record) {
			t.Helper()
			if keys := synchro.JSONObjectKeys(t, r.Data); !slices.Equal(keys, columns[r.TableName]) {
				t.Errorf("%s %s/%s: keys %v, want the contract's %v", what, r.TableName, r.ID, keys, columns[r.TableName])
			}
			var row map[string]any
			if err := json.Unmarshal(r.Data, &row); err != nil {
				t.Fatal(err)
			}
			switch r.TableName {
			case "plain":
				if row["updated_at"] != nil || row["deleted_at"] != nil {
					t.Errorf("%s plain: made-up columns not null: %s", what, r.Data)
				}
			case "partial":
				if s, _ := row["updated_at"].(string); s == "" || row["deleted_at"] != nil {
					t.Errorf("%s partial: want the real updated_at and a null deleted_at: %s", what, r.Data)
				}
			case "soft":
				if row["updated_at"] != nil || row["deleted_at"] != nil {
					t.Errorf("%s soft: want null timestamps: %s", what, r.Data)
				}
			}
		}

		e.caughtUp()
		c := e.client("alice", "c1")
		v, h := e.schema()
		snap, err := e.eng.Snapshot(context.Background(), "alice", &synchro.SnapshotRequest{ClientID: "c1", SchemaVersion: v, SchemaHash: h})
		if err != nil {
			t.Fatal(err)
		}
		if len(snap.Records) != 3 {
			t.Fatalf("snapshot: %d records, want 3", len(snap.Records))
		}
		for _, r := range snap.Records {
			check("snapshot", r)
		}

		c.checkpoint = snap.Checkpoint
		pgtest.Exec(t, e.db.Super, `UPDATE plain SET body = 'b2'; UPDATE partial SET title = 't2'; UPDATE soft SET note = 'n2'`)
		e.caughtUp()
		resp := c.pull(100)
		if len(resp.Changes) != 3 {
			t.Fatalf("pull: %d changes, want 3: %+v", len(resp.Changes), resp)
		}
		for _, r := range resp.Changes {
			check("pull", r)
			if !strings.Contains(string(r.Data), `2"`) {
				t.Errorf("pull %s: %s, want the updated row", r.TableName, r.Data)
			}
		}
	})
}
