package todoapp

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// scrape returns p's exposition.
func scrape(t *testing.T, p *Metrics) string {
	t.Helper()
	var b strings.Builder
	if err := p.WriteText(context.Background(), &b); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// must returns v, and panics (failing the test) on err.
func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// TestMetricsExposition checks the whole exposition of a counter, a
// histogram, an observable gauge and a gauge: sums per attribute set,
// histogram buckets, count and sum, names, label escaping and order.
func TestMetricsExposition(t *testing.T) {
	ctx := context.Background()
	p := NewMetrics()
	m := p.Meter("test")

	requests := must(m.Int64Counter("demo.requests", metric.WithUnit("{request}"),
		metric.WithDescription("Requests,\nby status \\ route.")))
	ok := metric.WithAttributeSet(attribute.NewSet(attribute.String("status", "ok")))
	requests.Add(ctx, 2, ok)
	requests.Add(ctx, 3, ok)
	requests.Add(ctx, 1, metric.WithAttributes(attribute.String("status", "failed"), attribute.Int("code", 500)))
	requests.Add(ctx, -4, ok) // dropped: counters only count up
	requests.Add(ctx, 7)      // no attributes
	requests.Add(ctx, 1, metric.WithAttributes(
		attribute.String("route", "a\"b\\c\nd"), // escaped
		attribute.String("1st", "x"),            // key_1st
		attribute.String("a.b", "dot"),          // a_b, joined with the next
		attribute.String("a_b", "underscore"),
		attribute.String("...", "dropped"), // no label name left
	))

	duration := must(m.Float64Histogram("demo.duration", metric.WithUnit("s"),
		metric.WithExplicitBucketBoundaries(1, 0.1)))
	for _, v := range []float64{0.05, 0.1, 0.5, 2} {
		duration.Record(ctx, v)
	}
	duration.Record(ctx, 0.25, metric.WithAttributes(attribute.String("error.type", "canceled")))

	lag := 42
	gauge := must(m.Int64ObservableGauge("demo.lag", metric.WithUnit("By")))
	reg := must(m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		o.ObserveInt64(gauge, int64(lag), metric.WithAttributes(attribute.String("slot", "s1")))
		return nil
	}, gauge))

	temperature := must(m.Float64Gauge("demo.temperature", metric.WithUnit("Cel")))
	temperature.Record(ctx, 20)
	temperature.Record(ctx, 21.5)

	// Created without a value: not exposed.
	must(m.Int64UpDownCounter("demo.idle"))

	want := `# TYPE demo_duration_seconds histogram
demo_duration_seconds_bucket{le="0.1"} 2
demo_duration_seconds_bucket{le="1"} 3
demo_duration_seconds_bucket{le="+Inf"} 4
demo_duration_seconds_sum 2.65
demo_duration_seconds_count 4
demo_duration_seconds_bucket{error_type="canceled",le="0.1"} 0
demo_duration_seconds_bucket{error_type="canceled",le="1"} 1
demo_duration_seconds_bucket{error_type="canceled",le="+Inf"} 1
demo_duration_seconds_sum{error_type="canceled"} 0.25
demo_duration_seconds_count{error_type="canceled"} 1
# TYPE demo_lag_bytes gauge
demo_lag_bytes{slot="s1"} 42
# HELP demo_requests_total Requests,\nby status \\ route.
# TYPE demo_requests_total counter
demo_requests_total 7
demo_requests_total{a_b="dot;underscore",key_1st="x",route="a\"b\\c\nd"} 1
demo_requests_total{code="500",status="failed"} 1
demo_requests_total{status="ok"} 5
# TYPE demo_temperature_celsius gauge
demo_temperature_celsius 21.5
`
	if got := scrape(t, p); got != want {
		t.Errorf("exposition:\n%s\nwant:\n%s", got, want)
	}

	// The gauge is read at every scrape, and no more once unregistered.
	lag = 7
	if got := scrape(t, p); !strings.Contains(got, "demo_lag_bytes{slot=\"s1\"} 7\n") {
		t.Errorf("after the lag changed:\n%s", got)
	}
	if err := reg.Unregister(); err != nil {
		t.Fatal(err)
	}
	if err := reg.Unregister(); err != nil { // again: nothing
		t.Fatal(err)
	}
	if got := scrape(t, p); strings.Contains(got, "demo_lag") {
		t.Errorf("after Unregister:\n%s", got)
	}
}

// TestMetricsObservable checks the observable instruments: callbacks given
// as options, values exposed as observed (the last observation of a set
// winning), a failing callback's observations kept, and observations of
// instruments a callback was not registered for ignored.
func TestMetricsObservable(t *testing.T) {
	p := NewMetrics()
	m := p.Meter("test")
	scrapes := 0
	must(m.Float64ObservableCounter("demo.cpu.time", metric.WithUnit("s"),
		metric.WithFloat64Callback(func(_ context.Context, o metric.Float64Observer) error {
			scrapes++
			o.Observe(float64(scrapes) / 2)
			return nil
		})))
	must(m.Int64ObservableUpDownCounter("demo.connections",
		metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error {
			o.Observe(5, metric.WithAttributes(attribute.String("pool", "a")))
			o.Observe(-2, metric.WithAttributes(attribute.String("pool", "a"))) // the last wins
			return errors.New("kept anyway")
		})))
	util := must(m.Float64ObservableGauge("demo.utilization", metric.WithUnit("1")))
	other := must(m.Int64ObservableGauge("demo.other"))
	must(m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		o.ObserveFloat64(util, 0.75)
		o.ObserveInt64(other, 1) // not registered with this callback: ignored
		return nil
	}, util))

	want := `# TYPE demo_connections gauge
demo_connections{pool="a"} -2
# TYPE demo_cpu_time_seconds_total counter
demo_cpu_time_seconds_total 0.5
# TYPE demo_utilization_ratio gauge
demo_utilization_ratio 0.75
`
	if got := scrape(t, p); got != want {
		t.Errorf("exposition:\n%s\nwant:\n%s", got, want)
	}
	if got := scrape(t, p); !strings.Contains(got, "demo_cpu_time_seconds_total 1\n") {
		t.Errorf("second scrape:\n%s", got)
	}
}

// TestMetricsNames checks the OpenTelemetry to Prometheus names, among
// them synchro's.
func TestMetricsNames(t *testing.T) {
	for _, c := range []struct {
		name, unit string
		kind       kind
		want       string
	}{
		{"synchro.push.records", "{record}", kindCounter, "synchro_push_records_total"},
		{"synchro.pull.duration", "s", kindHistogram, "synchro_pull_duration_seconds"},
		{"synchro.capture.lag", "By", kindObservableGauge, "synchro_capture_lag_bytes"},
		{"synchro.capture.delay", "s", kindObservableGauge, "synchro_capture_delay_seconds"},
		{"synchro.capture.changelog.rows", "{row}", kindCounter, "synchro_capture_changelog_rows_total"},
		{"jobs.total", "", kindCounter, "jobs_total"},                                // no second _total
		{"request.duration.seconds", "s", kindHistogram, "request_duration_seconds"}, // the unit once
		{"cpu.utilization", "1", kindGauge, "cpu_utilization_ratio"},
		{"cpu.utilization", "1", kindCounter, "cpu_utilization_total"},
		{"pool.usage", "1", kindObservableUpDownCounter, "pool_usage"},
		{"io", "By/s", kindUpDownCounter, "io_bytes_per_second"},
		{"rate", "{req}/s", kindGauge, "rate_per_second"},
		{"queue..size", "%", kindGauge, "queue_size_percent"},
		{"2xx.responses", "", kindCounter, "_2xx_responses_total"},
		{"http-server:active", "", kindUpDownCounter, "http_server:active"},
	} {
		if got := promMetricName(c.name, c.unit, c.kind); got != c.want {
			t.Errorf("promMetricName(%q, %q, %s) = %q, want %q", c.name, c.unit, c.kind, got, c.want)
		}
	}
}

// TestMetricsInstruments checks instrument identity: the same name, kind
// and unit is the same aggregate, whatever the meter; a conflicting one
// fails and records nothing.
func TestMetricsInstruments(t *testing.T) {
	ctx := context.Background()
	p := NewMetrics()
	a := must(p.Meter("a").Int64Counter("demo.rows", metric.WithUnit("{row}")))
	b := must(p.Meter("b").Int64Counter("Demo.Rows", metric.WithUnit("{row}")))
	a.Add(ctx, 1)
	b.Add(ctx, 2)
	if !a.Enabled(ctx) {
		t.Error("Enabled = false")
	}

	bad := []func() (interface{ Enabled(context.Context) bool }, error){
		func() (interface{ Enabled(context.Context) bool }, error) {
			return p.Meter("a").Int64Counter("demo.rows", metric.WithUnit("By"))
		},
		func() (interface{ Enabled(context.Context) bool }, error) {
			return p.Meter("a").Float64Histogram("demo.rows", metric.WithUnit("{row}"))
		},
		func() (interface{ Enabled(context.Context) bool }, error) {
			return p.Meter("a").Int64Counter("demo_rows", metric.WithUnit("{row}")) // also demo_rows_total
		},
	}
	for i, f := range bad {
		inst, err := f()
		if err == nil {
			t.Errorf("conflict %d: no error", i)
		}
		if inst.Enabled(ctx) {
			t.Errorf("conflict %d: the instrument returned with the error is enabled", i)
		}
	}
	c, err := p.Meter("a").Int64Counter("demo.rows", metric.WithUnit("By"))
	if err == nil {
		t.Fatal("no error")
	}
	c.Add(ctx, 100) // records nothing, does not panic
	g, err := p.Meter("a").Int64ObservableGauge("demo.rows")
	if err == nil {
		t.Fatal("no error")
	}
	must(p.Meter("a").RegisterCallback(func(_ context.Context, o metric.Observer) error {
		o.ObserveInt64(g, 100)
		return nil
	}, g))

	want := "# TYPE demo_rows_total counter\ndemo_rows_total 3\n"
	if got := scrape(t, p); got != want {
		t.Errorf("exposition:\n%s\nwant:\n%s", got, want)
	}
}

// TestMetricsConcurrent adds, records and scrapes from several goroutines
// (run with -race).
func TestMetricsConcurrent(t *testing.T) {
	ctx := context.Background()
	p := NewMetrics()
	m := p.Meter("test")
	counter := must(m.Int64Counter("demo.adds"))
	hist := must(m.Float64Histogram("demo.values"))
	gauge := must(m.Int64ObservableGauge("demo.gauge"))
	must(m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		o.ObserveInt64(gauge, 1)
		return nil
	}, gauge))
	const goroutines, n = 8, 500
	var wg sync.WaitGroup
	for g := range goroutines {
		set := metric.WithAttributeSet(attribute.NewSet(attribute.Int("g", g%2)))
		wg.Go(func() {
			for i := range n {
				counter.Add(ctx, 1, set)
				hist.Record(ctx, float64(i))
				if i%100 == 0 {
					scrape(t, p)
				}
			}
		})
	}
	wg.Wait()
	got := scrape(t, p)
	for _, line := range []string{
		fmt.Sprintf("demo_adds_total{g=\"0\"} %d\n", goroutines/2*n),
		fmt.Sprintf("demo_adds_total{g=\"1\"} %d\n", goroutines/2*n),
		fmt.Sprintf("demo_values_count %d\n", goroutines*n),
		fmt.Sprintf("demo_values_sum %d\n", goroutines*n*(n-1)/2),
		fmt.Sprintf("demo_values_bucket{le=\"+Inf\"} %d\n", goroutines*n),
		"demo_gauge 1\n",
	} {
		if !strings.Contains(got, line) {
			t.Errorf("no %q in:\n%s", line, got)
		}
	}
}

// TestMetricsOverflow checks the bound on attribute sets.
func TestMetricsOverflow(t *testing.T) {
	ctx := context.Background()
	p := NewMetrics()
	counter := must(p.Meter("test").Int64Counter("demo.ids"))
	for i := range maxSeries + 10 {
		counter.Add(ctx, 1, metric.WithAttributes(attribute.Int("id", i)))
	}
	counter.Add(ctx, 1, metric.WithAttributes(attribute.Int("id", 0))) // a known set still counts apart
	got := scrape(t, p)
	if n := strings.Count(got, "\ndemo_ids_total{"); n != maxSeries+1 {
		t.Errorf("%d series, want %d", n, maxSeries+1)
	}
	for _, line := range []string{"demo_ids_total{otel_metric_overflow=\"true\"} 10\n", "demo_ids_total{id=\"0\"} 2\n"} {
		if !strings.Contains(got, line) {
			t.Errorf("no %q", line)
		}
	}
}

// TestMetricsHTTP checks the handler: GET serves the exposition with the
// text format's content type, other methods are refused.
func TestMetricsHTTP(t *testing.T) {
	p := NewMetrics()
	must(p.Meter("test").Int64Counter("demo.hits")).Add(context.Background(), 1)

	rec := httptest.NewRecorder()
	p.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "text/plain; version=0.0.4; charset=utf-8" ||
		rec.Body.String() != "# TYPE demo_hits_total counter\ndemo_hits_total 1\n" {
		t.Errorf("GET: %d %q %q", rec.Code, rec.Header().Get("Content-Type"), rec.Body.String())
	}

	rec = httptest.NewRecorder()
	p.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/metrics", nil))
	if rec.Code != http.StatusMethodNotAllowed || rec.Header().Get("Allow") != "GET, HEAD" {
		t.Errorf("POST: %d, Allow %q", rec.Code, rec.Header().Get("Allow"))
	}
}
