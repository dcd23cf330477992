package wal

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/synchrosync/synchro/internal/pgtest"
	"github.com/synchrosync/synchro/internal/store"
)

// TestEdgeStatementsLookUpByKey checks the plans of the statements that
// read and delete bucket edges by record while bucket_edges has no
// statistics (bulk loaded, never analysed, as after a backfill or an
// import that autovacuum has not reached yet): each must look the records
// up through the primary key, never scan the table. A plain join of the
// unnested keys against bucket_edges, as store.LoadEdges was, is planned here
// as a sequential scan of all the edges, sorted for a merge join, in every
// batch.
func TestEdgeStatementsLookUpByKey(t *testing.T) {
	t.Parallel()
	db := pgtest.NewMigratedDatabase(t)
	pgtest.Exec(t, db.Super, `ALTER TABLE synchro.bucket_edges SET (autovacuum_enabled = off)`)
	pgtest.Exec(t, db.Super, `INSERT INTO synchro.bucket_edges (table_name, record_id, bucket_id)
SELECT 'events', g::text, 'user:u' || (g % 50) FROM generate_series(1, 50000) AS g`)
	const n = 5000 // a batch's records: half stored, half new
	tables, ids, buckets := make([]string, n), make([]string, n), make([]string, n)
	for i := range ids {
		tables[i], ids[i], buckets[i] = "events", fmt.Sprint(47500+i), fmt.Sprintf("user:u%d", (47500+i)%50)
	}
	for _, c := range []struct {
		name string
		sql  string
		args []any
	}{
		{"LoadEdges", store.LoadEdges, []any{tables, ids}},
		{"DeleteEdges", store.DeleteEdges, []any{tables, ids, buckets}},
	} {
		t.Run(c.name, func(t *testing.T) {
			tx, err := db.Super.Begin() // the delete is explained, not run, but stay safe
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = tx.Rollback() }()
			var doc string
			if err := tx.QueryRow(`EXPLAIN (FORMAT JSON) `+c.sql, c.args...).Scan(&doc); err != nil {
				t.Fatal(err)
			}
			var plan []struct{ Plan planNode }
			if err := json.Unmarshal([]byte(doc), &plan); err != nil {
				t.Fatal(err)
			}
			var scans []string
			plan[0].Plan.walk(func(p *planNode) {
				if p.Relation == "bucket_edges" && p.NodeType != "ModifyTable" {
					scans = append(scans, p.NodeType)
				}
			})
			if len(scans) == 0 {
				t.Fatalf("no scan of bucket_edges in the plan:\n%s", doc)
			}
			for _, s := range scans {
				if !strings.HasPrefix(s, "Index") && s != "Tid Scan" {
					t.Fatalf("bucket_edges is read by a %s, want lookups by key; scans %q; plan:\n%s", s, scans, doc)
				}
			}
		})
	}
}

// planNode is a node of an EXPLAIN (FORMAT JSON) plan.
type planNode struct {
	NodeType string     `json:"Node Type"`
	Relation string     `json:"Relation Name"`
	Plans    []planNode `json:"Plans"`
}

func (p *planNode) walk(f func(*planNode)) {
	f(p)
	for i := range p.Plans {
		p.Plans[i].walk(f)
	}
}
