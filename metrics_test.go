package synchro_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"

	"github.com/synchrosync/synchro"
	"github.com/synchrosync/synchro/internal/metrictest"
	"github.com/synchrosync/synchro/internal/pgtest"
	"github.com/synchrosync/synchro/wal"
)

// This file tests the engine's and the consumer's metrics (metrics.go,
// wal/metrics.go) with a recording MeterProvider, against the table of
// docs/metrics.md. Helpers carry the prefix "mt".
//
//	go test -count=1 -run Metrics . ./wal/

// mtDoc is one row of the table in docs/metrics.md.
type mtDoc struct {
	instrument, unit string
	attrs            []string
}

// mtDocs parses the metrics table of docs/metrics.md.
func mtDocs(t *testing.T) map[string]mtDoc {
	t.Helper()
	raw, err := os.ReadFile("docs/metrics.md")
	if err != nil {
		t.Fatal(err)
	}
	code := regexp.MustCompile("`([^`]*)`")
	docs := map[string]mtDoc{}
	for _, line := range strings.Split(string(raw), "\n") {
		cells := strings.Split(line, "|")
		if len(cells) < 7 || !strings.HasPrefix(strings.TrimSpace(cells[1]), "`synchro.") {
			continue
		}
		name := strings.Trim(strings.TrimSpace(cells[1]), "`")
		d := mtDoc{instrument: strings.TrimSpace(cells[2]), unit: strings.Trim(strings.TrimSpace(cells[3]), "`")}
		for _, m := range code.FindAllStringSubmatch(cells[4], -1) {
			d.attrs = append(d.attrs, m[1])
		}
		if _, dup := docs[name]; dup {
			t.Errorf("docs/metrics.md lists %s twice", name)
		}
		docs[name] = d
	}
	if len(docs) == 0 {
		t.Fatal("docs/metrics.md has no metrics table")
	}
	return docs
}

// mtKinds maps the instrument kinds of metrictest to the words of the table.
var mtKinds = map[string]string{
	metrictest.Counter:         "Counter",
	metrictest.Histogram:       "Histogram",
	metrictest.ObservableGauge: "Gauge (observable)",
}

// TestMetricsDocumented checks that the engine and the consumer create
// exactly the instruments of docs/metrics.md, with its instrument kinds
// and units, and histograms with millisecond-scale bucket boundaries.
func TestMetricsDocumented(t *testing.T) {
	t.Parallel()
	db := pgtest.NewMigratedDatabase(t)
	pgtest.Exec(t, db.Super, `CREATE TABLE lists (id bigint PRIMARY KEY, user_id text, name text)`)
	reg := synchro.NewRegistry()
	reg.Register(&synchro.TableConfig{TableName: "lists", OwnerColumn: "user_id"})
	rec := metrictest.NewProvider()
	if _, err := synchro.NewEngine(synchro.Config{DB: db.Super, Registry: reg, MeterProvider: rec}); err != nil {
		t.Fatal(err)
	}
	if _, err := wal.NewConsumer(wal.ConsumerConfig{ConnString: db.DSN, Registry: reg, ChangelogDB: db.Super, MeterProvider: rec}); err != nil {
		t.Fatal(err)
	}
	docs := mtDocs(t)
	created := map[string]bool{}
	for _, in := range rec.Instruments() {
		created[in.Name] = true
		d, ok := docs[in.Name]
		if !ok {
			t.Errorf("instrument %s (%s) is not in docs/metrics.md", in.Name, in.Scope)
			continue
		}
		if d.instrument != mtKinds[in.Kind] || d.unit != in.Unit {
			t.Errorf("%s: created as %s in %q, documented as %s in %q", in.Name, mtKinds[in.Kind], in.Unit, d.instrument, d.unit)
		}
		if in.Description == "" {
			t.Errorf("%s has no description", in.Name)
		}
		if in.Kind == metrictest.Histogram {
			b := in.Boundaries
			if len(b) < 8 || b[0] > 0.001 || b[len(b)-1] < 5 || !slices.IsSorted(b) {
				t.Errorf("%s: bucket boundaries %v do not cover 1ms to 5s", in.Name, b)
			}
		}
		wantScope := "github.com/synchrosync/synchro"
		if strings.HasPrefix(in.Name, "synchro.capture.") {
			wantScope += "/wal"
		}
		if in.Scope != wantScope {
			t.Errorf("%s: scope %q, want %q", in.Name, in.Scope, wantScope)
		}
	}
	for name := range docs {
		if !created[name] {
			t.Errorf("docs/metrics.md lists %s, which nothing creates", name)
		}
	}
}

// mtPushAttrs are the attributes of synchro.push.records for table,
// status and reason ("" leaves the attribute out of the match).
func mtPushAttrs(table, status, reason string) []attribute.KeyValue {
	kvs := []attribute.KeyValue{attribute.String("synchro.push.status", status)}
	if table != "" {
		kvs = append(kvs, attribute.String("synchro.table", table))
	}
	if reason != "" {
		kvs = append(kvs, attribute.String("synchro.push.reason", reason))
	}
	return kvs
}

// TestMetricsRequests runs registrations, a push of records with every
// outcome, snapshots, pulls and captured changes, and checks each counter
// against what the calls returned, each duration histogram's count against
// the number of calls, and every attribute against the documentation.
func TestMetricsRequests(t *testing.T) {
	t.Parallel()
	rec := metrictest.NewProvider()
	e := rpStart(t, rpOptions{
		config:   func(cfg *synchro.Config) { cfg.MeterProvider = rec },
		consumer: func(cfg *wal.ConsumerConfig) { cfg.MeterProvider = rec },
	})
	ctx := context.Background()
	super := e.db.Super
	slot := attribute.String("synchro.capture.slot", e.slot)

	// Change capture: four transactions, written as they come.
	pgtest.Exec(t, super, `INSERT INTO categories VALUES ('a', 'A'), ('b', 'B')`)
	pgtest.Exec(t, super, `INSERT INTO lists (id, user_id, name) VALUES (1, 'alice', 'one'), (2, 'alice', 'two')`)
	pgtest.Exec(t, super, `UPDATE lists SET name = 'uno' WHERE id = 1`)
	pgtest.Exec(t, super, `DELETE FROM categories WHERE id = 'b'`)
	e.caughtUp()
	var changelogRows int
	if err := super.QueryRow(`SELECT count(*) FROM synchro.changelog`).Scan(&changelogRows); err != nil {
		t.Fatal(err)
	}
	// The counters move after the commit the changelog shows: wait for them.
	pgtest.WaitFor(t, "the capture counters", rpTimeout, func() (bool, string) {
		tx, rows := rec.Sum("synchro.capture.transactions"), rec.Sum("synchro.capture.changelog.rows")
		return tx >= 4 && rows >= float64(changelogRows), fmt.Sprintf("%v transactions, %v changelog rows", tx, rows)
	})
	for _, c := range []struct {
		table, op string
		want      float64
	}{
		{"categories", "insert", 2}, {"lists", "insert", 2}, {"lists", "update", 1}, {"categories", "delete", 1},
	} {
		got := rec.Sum("synchro.capture.rows", slot, attribute.String("synchro.table", c.table), attribute.String("synchro.capture.operation", c.op))
		if got != c.want {
			t.Errorf("synchro.capture.rows{%s, %s} = %v, want %v", c.table, c.op, got, c.want)
		}
	}
	if got := rec.Sum("synchro.capture.rows"); got != 6 {
		t.Errorf("synchro.capture.rows = %v in all, want 6", got)
	}
	if got := rec.Sum("synchro.capture.transactions", slot); got != 4 {
		t.Errorf("synchro.capture.transactions = %v, want 4", got)
	}
	if got := rec.Sum("synchro.capture.changelog.rows", slot); got != float64(changelogRows) || changelogRows == 0 {
		t.Errorf("synchro.capture.changelog.rows = %v, want the %d rows of synchro.changelog", got, changelogRows)
	}
	if n := rec.Count("synchro.capture.batch.duration", slot); n < 1 || n > 4 {
		t.Errorf("synchro.capture.batch.duration has %d values, want 1 to 4 (one per batch)", n)
	}
	lag, delay := rec.Observe("synchro.capture.lag", slot), rec.Observe("synchro.capture.delay", slot)
	if len(lag) != 1 || len(delay) != 1 || lag[0].Value < 0 || delay[0].Value < 0 {
		t.Errorf("lag gauges while the consumer runs: lag %+v, delay %+v, want one non-negative value each", lag, delay)
	}

	// Registrations: one that succeeds, one refused as a bad request.
	c := e.client("alice", "c1")
	if _, err := e.eng.RegisterClient(ctx, "alice", &synchro.RegisterRequest{}); err == nil {
		t.Fatal("registering without a client id succeeded")
	}
	if got, bad := rec.Count("synchro.register.duration"), rec.Sum("synchro.register.requests", attribute.String("error.type", "bad_request")); got != 2 || bad != 1 {
		t.Errorf("register: %d durations, %v bad requests, want 2 and 1", got, bad)
	}
	if got := rec.Sum("synchro.register.requests"); got != 2 {
		t.Errorf("synchro.register.requests = %v, want 2", got)
	}

	// A pull before any snapshot is told to snapshot.
	v, h := e.schema()
	resp, err := e.eng.Pull(ctx, "alice", &synchro.PullRequest{ClientID: "c1", SchemaVersion: v, SchemaHash: h})
	if err != nil || !resp.SnapshotRequired {
		t.Fatalf("first pull: %+v, %v; want snapshot_required", resp, err)
	}
	if got := rec.Sum("synchro.pull.requests", attribute.String("synchro.pull.snapshot_reason", synchro.SnapshotReasonInitialSyncRequired)); got != 1 {
		t.Errorf("synchro.pull.requests{initial_sync_required} = %v, want 1", got)
	}

	// Snapshot in pages of one record.
	var (
		pages   int
		records = map[string]float64{}
		cur     *synchro.SnapshotCursor
	)
	for {
		pages++
		resp, err := e.eng.Snapshot(ctx, "alice", &synchro.SnapshotRequest{ClientID: "c1", Cursor: cur, Limit: 1, SchemaVersion: v, SchemaHash: h})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range resp.Records {
			records[r.TableName]++
		}
		c.checkpoint = resp.Checkpoint
		if !resp.HasMore {
			break
		}
		cur = resp.Cursor
	}
	if records["lists"] != 2 || records["categories"] != 1 {
		t.Fatalf("snapshot delivered %v, want 2 lists and 1 category", records)
	}
	if got := rec.Sum("synchro.snapshot.pages"); got != float64(pages) {
		t.Errorf("synchro.snapshot.pages = %v, want %d", got, pages)
	}
	if got := rec.Count("synchro.snapshot.duration"); got != pages {
		t.Errorf("synchro.snapshot.duration has %d values, want %d", got, pages)
	}
	for table, want := range records {
		if got := rec.Sum("synchro.snapshot.records", attribute.String("synchro.table", table)); got != want {
			t.Errorf("synchro.snapshot.records{%s} = %v, want %v", table, got, want)
		}
	}
	if got := rec.Sum("synchro.snapshot.records"); got != 3 {
		t.Errorf("synchro.snapshot.records = %v in all, want 3", got)
	}

	// A push with every status.
	record := func(table, op, id, data string) synchro.PushRecord {
		r := synchro.PushRecord{ID: id, TableName: table, Operation: op, ClientUpdatedAt: time.Now()}
		if data != "" {
			r.Data = json.RawMessage(data)
		}
		return r
	}
	pushed, err := e.eng.Push(ctx, "alice", &synchro.PushRequest{ClientID: "c1", SchemaVersion: v, SchemaHash: h, Changes: []synchro.PushRecord{
		record("lists", "create", "3", `{"name":"three"}`),
		record("lists", "create", "1", `{"name":"again"}`),
		record("nope", "create", "1", `{}`),
		record("lists", "update", "4", `{"name":"four"}`),
		record("items", "create", "00000000-0000-4000-8000-000000000001", `{"list_id":99,"title":"orphan"}`),
		record("lists", "create", "5", `{"name":"five"}`),
		record("lists", "delete", "2", ""),
	}})
	if err != nil {
		t.Fatal(err)
	}
	type key struct{ table, status, reason string }
	want := map[key]float64{
		{"lists", synchro.PushStatusApplied, ""}:                           3,
		{"lists", synchro.PushStatusConflict, "record_exists"}:             1,
		{"", synchro.PushStatusRejectedTerminal, "table_not_registered"}:   1,
		{"lists", synchro.PushStatusRejectedTerminal, "record_not_found"}:  1,
		{"items", synchro.PushStatusRejectedRetryable, "parent_not_found"}: 1,
	}
	got := map[key]float64{}
	for _, r := range slices.Concat(pushed.Accepted, pushed.Rejected) {
		k := key{r.TableName, r.Status, r.ReasonCode}
		if r.TableName == "nope" {
			k.table = ""
		}
		got[k]++
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("push outcomes %v, want %v", got, want)
	}
	for k, n := range want {
		// The table attribute is absent for an unregistered table: match
		// every set, then check the table.
		ms := rec.Measurements("synchro.push.records", mtPushAttrs(k.table, k.status, k.reason)...)
		var sum float64
		for _, m := range ms {
			table, hasTable := m.Attrs.Value("synchro.table")
			reason, hasReason := m.Attrs.Value("synchro.push.reason")
			if hasTable != (k.table != "") || (hasTable && table.AsString() != k.table) ||
				hasReason != (k.reason != "") || (hasReason && reason.AsString() != k.reason) {
				continue
			}
			sum += m.Value
		}
		if sum != n {
			t.Errorf("synchro.push.records{%q, %s, %q} = %v, want %v", k.table, k.status, k.reason, sum, n)
		}
	}
	if got := rec.Sum("synchro.push.records"); got != 7 {
		t.Errorf("synchro.push.records = %v in all, want 7", got)
	}

	// A push that fails whole counts as a request with its error type and
	// no records.
	if _, err := e.eng.Push(ctx, "alice", &synchro.PushRequest{ClientID: "unknown", SchemaVersion: v, SchemaHash: h,
		Changes: []synchro.PushRecord{record("lists", "create", "6", `{"name":"six"}`)}}); err == nil {
		t.Fatal("push of an unregistered client succeeded")
	}
	if got := rec.Sum("synchro.push.requests", attribute.String("error.type", "client_not_registered")); got != 1 {
		t.Errorf("synchro.push.requests{client_not_registered} = %v, want 1", got)
	}
	if got, n := rec.Sum("synchro.push.records"), rec.Count("synchro.push.duration"); got != 7 || n != 2 {
		t.Errorf("after a failed push: %v records, %d durations, want 7 and 2", got, n)
	}

	// A pull of the pushed changes.
	e.caughtUp()
	page := c.pull(100)
	if len(page.Changes) == 0 || len(page.Deletes) == 0 {
		t.Fatalf("pull after the push: %d changes, %d deletes, want some of each", len(page.Changes), len(page.Deletes))
	}
	for kind, list := range map[string][]string{"change": recordTables(page.Changes), "delete": deleteTables(page.Deletes)} {
		counts := map[string]float64{}
		for _, table := range list {
			counts[table]++
		}
		for table, n := range counts {
			got := rec.Sum("synchro.pull.records", attribute.String("synchro.table", table), attribute.String("synchro.pull.kind", kind))
			if got != n {
				t.Errorf("synchro.pull.records{%s, %s} = %v, want %v", table, kind, got, n)
			}
		}
	}
	if got, want := rec.Sum("synchro.pull.records"), float64(len(page.Changes)+len(page.Deletes)); got != want {
		t.Errorf("synchro.pull.records = %v in all, want %v", got, want)
	}
	if got, n := rec.Sum("synchro.pull.requests"), rec.Count("synchro.pull.duration"); got != 2 || n != 2 {
		t.Errorf("pulls: %v requests, %d durations, want 2 and 2", got, n)
	}
	for _, m := range rec.Measurements("synchro.pull.duration") {
		if m.Value <= 0 || m.Value > 60 {
			t.Errorf("synchro.pull.duration value %v s is not a plausible duration", m.Value)
		}
	}

	// Every attribute is documented, and none carries a user or client id.
	docs := mtDocs(t)
	for _, in := range rec.Instruments() {
		ms := rec.Measurements(in.Name)
		if in.Kind == metrictest.ObservableGauge {
			ms = rec.Observe(in.Name)
		}
		for _, m := range ms {
			for _, kv := range m.Attrs.ToSlice() {
				if !slices.Contains(docs[in.Name].attrs, string(kv.Key)) {
					t.Errorf("%s is recorded with the undocumented attribute %s", in.Name, kv.Key)
				}
				if v := kv.Value.String(); v == "alice" || v == "c1" || v == "unknown" {
					t.Errorf("%s carries a user or client id: %s=%s", in.Name, kv.Key, v)
				}
			}
		}
	}
}

func recordTables(rs []synchro.Record) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.TableName
	}
	return out
}

func deleteTables(ds []synchro.DeleteEntry) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.TableName
	}
	return out
}

// TestMetricsCompaction checks that the rows a compaction run deletes are
// counted by target: changelog rows, bucket edges, rule failures.
func TestMetricsCompaction(t *testing.T) {
	t.Parallel()
	rec := metrictest.NewProvider()
	reg := synchro.NewRegistry()
	reg.Register(&synchro.TableConfig{TableName: "lists", OwnerColumn: "user_id"})
	e := rpStart(t, rpOptions{
		schema:   `CREATE TABLE lists (id bigint PRIMARY KEY, user_id text, name text, updated_at timestamptz NOT NULL DEFAULT now(), deleted_at timestamptz);`,
		registry: reg,
		config: func(cfg *synchro.Config) {
			cfg.MeterProvider = rec
			cfg.Compactor = &synchro.CompactorConfig{StaleThreshold: time.Hour, Logger: cpDiscard}
		},
	})
	super := e.db.Super
	pgtest.Exec(t, super, `INSERT INTO lists (id, user_id, name) SELECT g, 'alice', 'l' FROM generate_series(1, 5) g`)
	pgtest.Exec(t, super, `UPDATE lists SET name = 'renamed'`)
	pgtest.Exec(t, super, `UPDATE lists SET deleted_at = now() - interval '1 day' WHERE id <= 2`)
	e.caughtUp()
	pgtest.Exec(t, super, `INSERT INTO synchro.rule_failures (table_name, record_id, operation, error_text, replayed_at)
VALUES ('lists', '9', 1, 'old', now() - interval '1 day'), ('lists', '9', 1, 'old', now() - interval '1 day'), ('lists', '9', 1, 'new', NULL)`)
	count := func(q string) float64 {
		t.Helper()
		var n int64
		if err := super.QueryRow(q).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return float64(n)
	}
	changelog, edges := count(`SELECT count(*) FROM synchro.changelog`), count(`SELECT count(*) FROM synchro.bucket_edges`)
	res, err := e.eng.RunCompaction(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	deletedChangelog := changelog - count(`SELECT count(*) FROM synchro.changelog`)
	deletedEdges := edges - count(`SELECT count(*) FROM synchro.bucket_edges`)
	if deletedChangelog == 0 || deletedEdges != 2 || float64(res.DeletedEntries) != deletedChangelog {
		t.Fatalf("compaction deleted %v changelog rows (result %d) and %v edges; want some rows, 2 edges", deletedChangelog, res.DeletedEntries, deletedEdges)
	}
	for target, want := range map[string]float64{"changelog": deletedChangelog, "bucket_edges": 2, "rule_failures": 2} {
		if got := rec.Sum("synchro.compaction.deleted", attribute.String("synchro.compaction.target", target)); got != want {
			t.Errorf("synchro.compaction.deleted{%s} = %v, want %v", target, got, want)
		}
	}
	// A second run deletes nothing and counts nothing more.
	if _, err := e.eng.RunCompaction(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := rec.Sum("synchro.compaction.deleted"); got != deletedChangelog+4 {
		t.Errorf("after a second run, synchro.compaction.deleted = %v in all, want %v", got, deletedChangelog+4)
	}
}
