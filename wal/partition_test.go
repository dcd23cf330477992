package wal

import (
	"strings"
	"testing"

	"github.com/synchrosync/synchro"
)

// This file tests the capture of partitioned tables beyond the plain case
// (TestE2EPartitionedTable): the setups Start refuses because changes
// would be skipped or their old rows wrong, and sub-partitioned trees
// (found by a review). Not captured, and documented on ConsumerConfig:
// a TRUNCATE of one partition, and rows that ATTACH or DETACH PARTITION
// (or a partition's DROP) move into or out of the table.

// partedSchema is a table parted of two partitions.
const partedSchema = `CREATE TABLE parted (id text PRIMARY KEY, user_id text, name text,
	updated_at timestamptz NOT NULL DEFAULT now(), deleted_at timestamptz) PARTITION BY LIST (id);
CREATE TABLE parted_a PARTITION OF parted FOR VALUES IN ('a1', 'a2');
CREATE TABLE parted_b PARTITION OF parted FOR VALUES IN ('b1');
`

// partedRegistry is ctRegistry with table (parted or one of its
// partitions) registered, owned by user_id.
func partedRegistry(table string) *synchro.Registry {
	reg := ctRegistry()
	reg.Register(&synchro.TableConfig{TableName: table, OwnerColumn: "user_id"})
	return reg
}

// TestE2ERegisteredPartitionRefused: under publish_via_partition_root a
// partition's changes come under the name of its farthest ancestor the
// publication publishes. A registered partition with such an ancestor (a
// publication FOR ALL TABLES, one of the partitioned table, or the
// partitioned table registered too) had all its changes skipped, and,
// never listed by pg_publication_tables, was added and recorded again by
// every session. Start refuses it; a partition alone in the consumer's
// publication is captured.
func TestE2ERegisteredPartitionRefused(t *testing.T) {
	t.Parallel()
	for _, pub := range []string{
		`CREATE PUBLICATION pub FOR ALL TABLES WITH (publish_via_partition_root = true);`,
		`CREATE PUBLICATION pub FOR TABLE parted WITH (publish_via_partition_root = true);`,
		``, // the consumer's own, with parted registered too
	} {
		reg := partedRegistry("parted_a")
		if pub == "" {
			reg.Register(&synchro.TableConfig{TableName: "parted", OwnerColumn: "user_id"})
		}
		e := e2eNew(t, partedSchema+pub, reg)
		if err := startOnce(t, e.cfg); err == nil || !strings.Contains(err.Error(), "registered partitions") {
			t.Errorf("%q: Start: %v", pub, err)
		}
	}
	// Not refused: a partition alone in the consumer's publication, a
	// sub-partitioned registered root.
	e := e2eNew(t, partedSchema, partedRegistry("parted_a"))
	e.run()
	ctEqual(t, "insert into the registered partition", e.step(`INSERT INTO parted_a (id, user_id) VALUES ('a1', 'pete')`), "user:pete parted_a a1 create")
}

// TestE2EPartitionedReplicaIdentityFull: REPLICA IDENTITY FULL set on a
// partitioned table is not its partitions': the WAL has theirs (default),
// but the Relation message, the root's, says FULL, so the old tuple of a
// key change came with NULLs for every other column, taken for the old
// values. Start refuses partitions whose identity differs from their
// partitioned table's; with FULL on the partitions too the old rows are
// right.
func TestE2EPartitionedReplicaIdentityFull(t *testing.T) {
	t.Parallel()
	reg := ctRegistry()
	reg.Register(&synchro.TableConfig{TableName: "projects"})
	const schema = `
CREATE TABLE projects (id text PRIMARY KEY, team_id text, name text) PARTITION BY LIST (id);
CREATE TABLE projects_1 PARTITION OF projects FOR VALUES IN ('p1', 'p2');
ALTER TABLE projects REPLICA IDENTITY FULL;`
	refused := e2eNew(t, schema+bucketFnSQL, reg)
	if err := startOnce(t, refused.cfg); err == nil || !strings.Contains(err.Error(), "replica identity") {
		t.Fatalf("Start with partitions of another replica identity: %v", err)
	}

	e := e2eNew(t, schema+`ALTER TABLE projects_1 REPLICA IDENTITY FULL;`+bucketFnSQL, reg)
	e.useBucketFn(reg)
	e.run()
	db := e.db.Super
	ctEqual(t, "insert", e.step(`INSERT INTO projects VALUES ('p1', 't1', 'one')`), "team:t1 projects p1 create")
	ctEqual(t, "team change", e.step(`UPDATE projects SET team_id = 't2', name = 'uno' WHERE id = 'p1'`),
		"team:t1 projects p1 delete", "team:t2 projects p1 create")
	_, old := lastSeen(t, db, "projects", "p1")
	jsonEqual(t, "team change: old_row (replica identity full)", old, `{"id":"p1","team_id":"t1","name":"one"}`)
	ctEqual(t, "key change", e.step(`UPDATE projects SET id = 'p2', team_id = 't3' WHERE id = 'p1'`),
		"team:t2 projects p1 delete", "team:t3 projects p2 create")
	_, old = lastSeen(t, db, "projects", "p2")
	jsonEqual(t, "key change: old_row", old, `{"id":"p1","team_id":"t2","name":"uno"}`)
}

// TestE2ESubPartitioned: sub-partitioned trees, a registered root with a
// sub-partitioned partition, and a registered partitioned partition of an
// unregistered root, are captured.
func TestE2ESubPartitioned(t *testing.T) {
	t.Parallel()
	const schema = `CREATE TABLE parted (id text PRIMARY KEY, user_id text, name text,
	updated_at timestamptz NOT NULL DEFAULT now(), deleted_at timestamptz) PARTITION BY LIST (id);
CREATE TABLE parted_a PARTITION OF parted FOR VALUES IN ('a1', 'a2') PARTITION BY LIST (id);
CREATE TABLE parted_a1 PARTITION OF parted_a FOR VALUES IN ('a1');
CREATE TABLE parted_a2 PARTITION OF parted_a FOR VALUES IN ('a2');
INSERT INTO parted (id, user_id) VALUES ('a2', 'olga');`
	e := e2eNew(t, schema, partedRegistry("parted"))
	e.run()
	ctEqual(t, "edges of a2", e.edges("parted", "a2"), "user:olga")
	ctEqual(t, "insert into a leaf", e.step(`INSERT INTO parted_a1 (id, user_id) VALUES ('a1', 'pete')`), "user:pete parted a1 create")
	ctEqual(t, "truncate the root", e.step(`TRUNCATE parted`), "user:pete parted a1 delete", "user:olga parted a2 delete")

	m := e2eNew(t, schema, partedRegistry("parted_a"))
	m.run()
	ctEqual(t, "insert into a leaf of a registered middle", m.step(`INSERT INTO parted_a1 (id, user_id) VALUES ('a1', 'pete')`), "user:pete parted_a a1 create")
}
