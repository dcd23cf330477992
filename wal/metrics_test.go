package wal

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"go.opentelemetry.io/otel/attribute"

	"github.com/synchrosync/synchro"
	"github.com/synchrosync/synchro/internal/metrictest"
	"github.com/synchrosync/synchro/internal/pgtest"
)

// boomAssigner is the JoinResolver, except that a list whose owner is
// "boom" cannot be placed: its change is recorded as a rule failure.
type boomAssigner struct{ BucketAssigner }

func (a boomAssigner) AssignBuckets(ctx context.Context, table, id string, op synchro.Operation, data map[string]any) ([]string, error) {
	if table == "lists" && data["user_id"] == "boom" {
		return nil, errors.New("boom")
	}
	return a.BucketAssigner.AssignBuckets(ctx, table, id, op, data)
}

// TestMetricsCapture checks the consumer's counters against the changes
// written, the rule failures against synchro.rule_failures, and that the
// lag gauges are reported exactly while Start runs.
func TestMetricsCapture(t *testing.T) {
	t.Parallel()
	rec := metrictest.NewProvider()
	e := e2eNew(t, `INSERT INTO lists (id, user_id) VALUES ('pre', 'boom'), ('ok', 'alice')`, nil)
	e.cfg.MeterProvider = rec
	e.cfg.Assigner = boomAssigner{synchro.NewJoinResolverWithDB(e.reg, e.db.Super)}
	e.run()
	db := e.db.Super
	slot := attribute.String("synchro.capture.slot", e.cfg.SlotName)
	table := func(name string) attribute.KeyValue { return attribute.String("synchro.table", name) }
	op := func(name string) attribute.KeyValue { return attribute.String("synchro.capture.operation", name) }

	// The record of the existing rows fails for one of them.
	if got := rec.Sum("synchro.capture.rule_failures", slot, table("lists")); got != 1 {
		t.Errorf("rule failures of the existing rows: %v, want 1", got)
	}
	start := pgtest.Count(t, db, `SELECT count(*) FROM synchro.changelog`)
	if n := rec.Sum("synchro.capture.rows") + rec.Sum("synchro.capture.transactions"); n != 0 {
		t.Errorf("before any change: %v rows and transactions counted, want none", n)
	}

	e.step(`INSERT INTO lists (id, user_id) VALUES ('l1', 'alice'), ('l2', 'bob')`)
	e.step(`INSERT INTO items (id, list_id, title) VALUES ('i1', 'l1', 'x')`)
	e.step(`UPDATE lists SET user_id = 'boom' WHERE id = 'l1'`) // a rule failure
	e.step(`DELETE FROM lists WHERE id = 'l2'`)
	e.step(`BEGIN; INSERT INTO notes (id, item_id) VALUES (1, 'i1'), (2, 'i1'); TRUNCATE notes; COMMIT`)
	// Each step is a transaction, and so is each of its markers.
	wantTxns := float64(5 + e.marks)
	pgtest.WaitFor(e.t, "the capture counters", e2eTimeout, func() (bool, string) {
		got := rec.Sum("synchro.capture.transactions", slot)
		return got >= wantTxns, fmt.Sprintf("%v transactions counted", got)
	})
	for _, c := range []struct {
		table, op string
		want      float64
	}{
		{"lists", "insert", 2}, {"items", "insert", 1}, {"lists", "update", 1}, {"lists", "delete", 1},
		{"notes", "insert", 2}, {"notes", "truncate", 1}, {"categories", "insert", float64(e.marks)},
	} {
		if got := rec.Sum("synchro.capture.rows", slot, table(c.table), op(c.op)); got != c.want {
			t.Errorf("synchro.capture.rows{%s, %s} = %v, want %v", c.table, c.op, got, c.want)
		}
	}
	if got, want := rec.Sum("synchro.capture.rows"), float64(8+e.marks); got != want {
		t.Errorf("synchro.capture.rows = %v in all, want %v", got, want)
	}
	if got := rec.Sum("synchro.capture.transactions", slot); got != wantTxns {
		t.Errorf("synchro.capture.transactions = %v, want %v", got, wantTxns)
	}
	written := pgtest.Count(t, db, `SELECT count(*) FROM synchro.changelog`) - start
	if got := rec.Sum("synchro.capture.changelog.rows", slot); got != float64(written) {
		t.Errorf("synchro.capture.changelog.rows = %v, want the %d rows written to synchro.changelog", got, written)
	}
	failures := pgtest.Count(t, db, `SELECT count(*) FROM synchro.rule_failures`)
	if got := rec.Sum("synchro.capture.rule_failures", slot, table("lists")); got != 2 || failures != 2 {
		t.Errorf("synchro.capture.rule_failures = %v, synchro.rule_failures holds %d; want 2 and 2", got, failures)
	}
	batches := rec.Measurements("synchro.capture.batch.duration", slot)
	if len(batches) < 1 || len(batches) > int(wantTxns) {
		t.Errorf("synchro.capture.batch.duration has %d values for %v transactions", len(batches), wantTxns)
	}
	for _, b := range batches {
		if _, failed := b.Attrs.Value("error.type"); failed || b.Value <= 0 {
			t.Errorf("batch duration %v s with attributes %v", b.Value, b.Attrs.ToSlice())
		}
	}

	// A replay that fails again records nothing new.
	if n, err := e.cur.c.ReplayRuleFailures(context.Background()); err != nil || n != 0 {
		t.Fatalf("ReplayRuleFailures = %d, %v; want 0 replayed", n, err)
	}
	if got := rec.Sum("synchro.capture.rule_failures"); got != 2 {
		t.Errorf("after a replay that failed again: %v rule failures counted, want 2", got)
	}

	// The lag gauges: one value each while Start runs, none after.
	lag, delay := rec.Observe("synchro.capture.lag", slot), rec.Observe("synchro.capture.delay", slot)
	if len(lag) != 1 || len(delay) != 1 || lag[0].Value < 0 || delay[0].Value < 0 {
		t.Errorf("while running: lag %+v, delay %+v; want one non-negative value each", lag, delay)
	}
	e.halt()
	if n := rec.Callbacks(); n != 0 {
		t.Errorf("%d callbacks registered after Start returned, want 0", n)
	}
	if lag := rec.Observe("synchro.capture.lag"); len(lag) != 0 {
		t.Errorf("after Start returned: lag %+v, want nothing", lag)
	}
}

// TestMetricsCaptureOff checks that a consumer without a MeterProvider has
// no instruments and captures as usual.
func TestMetricsCaptureOff(t *testing.T) {
	t.Parallel()
	e := ctStart(t, "")
	c, err := NewConsumer(e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	if c.applier.metrics != nil {
		t.Fatalf("a consumer without a MeterProvider has metrics: %v", c.applier.metrics)
	}
	pgtest.Exec(t, e.db.Super, `INSERT INTO lists (id, user_id) VALUES ('l1', 'alice')`)
	ctEqual(t, "changelog without metrics", e.waitChangelog(0, 1), "user:alice lists l1 create")
}

// TestMetricsCaptureOffAllocs checks that recording without a
// MeterProvider allocates nothing. (AllocsPerRun needs a test that is not
// parallel.)
func TestMetricsCaptureOffAllocs(t *testing.T) {
	var m *captureMetrics
	txns := []*txn{{events: []event{{kind: evInsert, table: "lists"}}}}
	b := &batch{}
	ctx := context.Background()
	var err2 error
	allocs := testing.AllocsPerRun(100, func() {
		start := m.start()
		m.applied(ctx, txns, b)
		m.batchDone(ctx, start, &err2)
		m.failuresRecorded(ctx, b.failures)
	})
	if allocs != 0 {
		t.Errorf("recording without metrics allocates %v times", allocs)
	}
	if !m.start().IsZero() {
		t.Error("start without metrics reads the clock")
	}
	m.observeLag(func() Lag { t.Error("lag read without metrics"); return Lag{} }, nil)()
}

// TestMetricsApplied checks the counting of a written batch without a
// database: transactions without changes (confirmed along with the others)
// are not counted, a TRUNCATE counts once per table.
func TestMetricsApplied(t *testing.T) {
	t.Parallel()
	rec := metrictest.NewProvider()
	m, err := newCaptureMetrics(ConsumerConfig{MeterProvider: rec, Registry: ctRegistry(), SlotName: "s"})
	if err != nil {
		t.Fatal(err)
	}
	txns := []*txn{
		{events: []event{{kind: evInsert, table: "lists"}, {kind: evUpdate, table: "lists"}, {kind: evInsert, table: "lists"}}},
		{},
		{events: []event{{kind: evTruncate, tables: []string{"items", "notes"}}}},
	}
	b := &batch{rows: make([]clRow, 5), failures: []ruleFailure{{key: recKey{"lists", "1"}}}}
	m.applied(context.Background(), txns, b)
	for _, c := range []struct {
		name  string
		attrs []attribute.KeyValue
		want  float64
	}{
		{"synchro.capture.transactions", nil, 2},
		{"synchro.capture.rows", []attribute.KeyValue{attribute.String("synchro.table", "lists"), attribute.String("synchro.capture.operation", "insert")}, 2},
		{"synchro.capture.rows", []attribute.KeyValue{attribute.String("synchro.table", "lists"), attribute.String("synchro.capture.operation", "update")}, 1},
		{"synchro.capture.rows", []attribute.KeyValue{attribute.String("synchro.table", "items"), attribute.String("synchro.capture.operation", "truncate")}, 1},
		{"synchro.capture.rows", []attribute.KeyValue{attribute.String("synchro.table", "notes"), attribute.String("synchro.capture.operation", "truncate")}, 1},
		{"synchro.capture.rows", nil, 5},
		{"synchro.capture.changelog.rows", nil, 5},
		{"synchro.capture.rule_failures", []attribute.KeyValue{attribute.String("synchro.table", "lists")}, 1},
	} {
		attrs := append([]attribute.KeyValue{attribute.String("synchro.capture.slot", "s")}, c.attrs...)
		if got := rec.Sum(c.name, attrs...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.attrs, got, c.want)
		}
	}
}
