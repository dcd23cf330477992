package main

import (
	"context"
	"slices"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/synchrosync/synchro/examples/todo/todoapp"
)

// TestSummarize summarizes the exposition of the example server's
// provider: the synchro_* samples other than 0 as they come, histograms in
// one line.
func TestSummarize(t *testing.T) {
	ctx := context.Background()
	p := todoapp.NewMetrics()
	m := p.Meter("test")
	records, _ := m.Int64Counter("synchro.push.records", metric.WithUnit("{record}"))
	records.Add(ctx, 3, metric.WithAttributes(attribute.String("synchro.push.status", "applied")))
	records.Add(ctx, 0, metric.WithAttributes(attribute.String("synchro.push.status", "conflict")))
	other, _ := m.Int64Counter("other.requests")
	other.Add(ctx, 1)
	duration, _ := m.Float64Histogram("synchro.push.duration", metric.WithUnit("s"))
	duration.Record(ctx, 0.002)
	duration.Record(ctx, 0.004, metric.WithAttributes(attribute.String("error.type", "canceled")))
	var text strings.Builder
	if err := p.WriteText(ctx, &text); err != nil {
		t.Fatal(err)
	}

	s, err := summarize([]byte(text.String()))
	if err != nil {
		t.Fatal(err)
	}
	wantLines := []string{`synchro_push_records_total{synchro_push_status="applied"} 3`}
	wantHist := []string{"push 2 × 3.00 ms"}
	if !slices.Equal(s.lines, wantLines) || !slices.Equal(s.histograms, wantHist) ||
		!s.nonZero["synchro_push_records_total"] || s.nonZero["other_requests_total"] {
		t.Errorf("summarize = %+v\nof:\n%s", s, text.String())
	}
	samples := 0
	for line := range strings.Lines(text.String()) {
		if !strings.HasPrefix(line, "#") {
			samples++
		}
	}
	if s.samples != samples {
		t.Errorf("samples = %d, want %d", s.samples, samples)
	}
}
