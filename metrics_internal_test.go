package synchro

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"go.opentelemetry.io/otel/metric/noop"
)

// TestMetricsOff runs every kind of call on an engine without a
// MeterProvider: it has no instruments, nothing fails, and the recording
// calls allocate nothing.
func TestMetricsOff(t *testing.T) {
	t.Parallel()
	p := ptNewEnv(t, func(cfg *Config) { cfg.Compactor = &CompactorConfig{} })
	if p.e.metrics != nil || p.e.compactor.metrics != nil {
		t.Fatalf("an engine without a MeterProvider has metrics: %v, %v", p.e.metrics, p.e.compactor.metrics)
	}
	ctx := context.Background()
	p.register("alice", "c1")
	list := ptID()
	resp := p.push("alice", "c1", ptCreate("lists", list, `{"name":"one"}`), ptCreate("nope", "x", `{}`))
	if len(resp.Accepted) != 1 || len(resp.Rejected) != 1 {
		t.Errorf("push: %+v, want one accepted and one rejected", resp)
	}
	if _, err := p.pushErr("alice", "unknown", ptCreate("lists", ptID(), `{"name":"two"}`)); !errors.Is(err, ErrClientNotRegistered) {
		t.Errorf("push of an unknown client: %v, want ErrClientNotRegistered", err)
	}
	if _, err := p.e.Snapshot(ctx, "alice", &SnapshotRequest{ClientID: "c1", SchemaVersion: p.ver, SchemaHash: p.hash}); err != nil {
		t.Errorf("snapshot: %v", err)
	}
	if _, err := p.e.Pull(ctx, "alice", &PullRequest{ClientID: "c1", SchemaVersion: p.ver, SchemaHash: p.hash}); err != nil {
		t.Errorf("pull: %v", err)
	}
	if _, err := p.e.RunCompaction(ctx); err != nil {
		t.Errorf("compaction: %v", err)
	}
}

// TestMetricsOffAllocs checks that recording without a MeterProvider
// allocates nothing and reads no clock. (AllocsPerRun needs a test that
// is not parallel.)
func TestMetricsOffAllocs(t *testing.T) {
	ctx := context.Background()
	resp := &PushResponse{Accepted: []PushResult{{TableName: "lists", Status: PushStatusApplied}}}
	page := &PullResponse{Changes: []Record{{TableName: "lists"}}}
	failed := errors.New("failed")
	var m *engineMetrics
	allocs := testing.AllocsPerRun(100, func() {
		start := m.start()
		m.pushed(ctx, start, resp, nil)
		m.pulled(ctx, start, page, nil)
		m.snapshotted(ctx, start, nil, failed)
		m.registered(ctx, start, nil)
		m.compacted(ctx, compactionChangelog, 1)
	})
	if allocs != 0 {
		t.Errorf("recording without metrics allocates %v times", allocs)
	}
	if !m.start().IsZero() {
		t.Error("start without metrics reads the clock")
	}
	if got, err := newEngineMetrics(nil, []string{"lists"}); got != nil || err != nil {
		t.Errorf("newEngineMetrics(nil) = %v, %v; want nil, nil", got, err)
	}
}

// TestMetricsErrorType checks the bounded values of error.type.
func TestMetricsErrorType(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		err  error
		want string
	}{
		{context.Canceled, "canceled"},
		{fmt.Errorf("synchro: push: %w", context.DeadlineExceeded), "deadline_exceeded"},
		{fmt.Errorf("pulling: %w", ErrSchemaMismatch), "schema_mismatch"},
		{ErrClientNotRegistered, "client_not_registered"},
		{ErrStaleClient, "stale_client"},
		{fmt.Errorf("%w: too old", ErrUpgradeRequired), "upgrade_required"},
		{badRequestWrap(ErrTableNotRegistered, "synchro: tables: %q", "x"), "table_not_registered"},
		{badRequest("synchro: client_id is required"), "bad_request"},
		{errors.New("synchro: committing push: connection reset"), "_OTHER"},
	} {
		if got := errorType(c.err); got != c.want {
			t.Errorf("errorType(%v) = %q, want %q", c.err, got, c.want)
		}
	}
}

// BenchmarkMetricsPushed measures the recording of one push's outcome of
// 100 records over 2 tables, with and without a MeterProvider's metrics.
func BenchmarkMetricsPushed(b *testing.B) {
	resp := &PushResponse{}
	for i := range 100 {
		r := PushResult{TableName: []string{"lists", "items"}[i%2], Status: PushStatusApplied}
		if i%10 == 0 {
			r.Status, r.ReasonCode = PushStatusConflict, reasonServerWon
		}
		resp.Accepted = append(resp.Accepted, r)
	}
	ctx := context.Background()
	b.Run("off", func(b *testing.B) {
		var m *engineMetrics
		for b.Loop() {
			m.pushed(ctx, m.start(), resp, nil)
		}
	})
	b.Run("noop", func(b *testing.B) {
		m, err := newEngineMetrics(noop.NewMeterProvider(), []string{"lists", "items"})
		if err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			m.pushed(ctx, m.start(), resp, nil)
		}
	})
}
