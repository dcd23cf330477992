package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// demoMetrics are the metric families that the demo certainly moves: the
// client fails when one of them has no series with a non-zero value (the
// server's MeterProvider is not wired, say).
var demoMetrics = []string{
	"synchro_push_records_total",
	"synchro_pull_records_total",
	"synchro_snapshot_records_total",
	"synchro_capture_rows_total",
}

// metrics prints a summary of the server's metrics (GET /metrics, the
// Prometheus text format): the synchro_* series with a non-zero value, as
// they come, except the histograms, summed up in one line (calls and mean);
// their counts are those of the *_requests_total counters. It fails unless
// the answer is 200 with every one of demoMetrics.
func metrics(ctx context.Context, a *api, out *transcript) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.base+"/metrics", nil)
	if err != nil {
		return err
	}
	resp, err := a.http.Do(req)
	if err != nil {
		return fmt.Errorf("GET /metrics: %w", err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return fmt.Errorf("GET /metrics: reading the response: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET /metrics: %s, want 200 OK", resp.Status)
	}
	s, err := summarize(body)
	if err != nil {
		return fmt.Errorf("GET /metrics: %w", err)
	}
	out.say("server", "GET /metrics: %s, %d samples; the synchro_* ones other than 0, histograms summed up:", resp.Status, s.samples)
	for _, line := range s.lines {
		out.more(line)
	}
	if len(s.histograms) > 0 {
		out.more("durations (calls, mean): " + strings.Join(s.histograms, "; "))
	}
	for _, name := range demoMetrics {
		if !s.nonZero[name] {
			return fmt.Errorf("GET /metrics: no %s with a value: the server reports no metrics of the demo's requests", name)
		}
	}
	return nil
}

// metricsSummary is what metrics prints of an exposition.
type metricsSummary struct {
	samples    int             // every sample line
	lines      []string        // the synchro_* samples other than histograms' with a value other than 0
	histograms []string        // per synchro_* histogram: "name N × mean"
	nonZero    map[string]bool // the families of lines
}

// summarize reads a Prometheus text exposition.
func summarize(text []byte) (*metricsSummary, error) {
	s := &metricsSummary{nonZero: map[string]bool{}}
	types := map[string]string{} // family -> TYPE
	type hist struct{ count, sum float64 }
	hists := map[string]*hist{}
	var histNames []string
	sc := bufio.NewScanner(bytes.NewReader(text))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if f, ok := strings.CutPrefix(line, "# TYPE "); ok {
			if name, typ, ok := strings.Cut(f, " "); ok {
				types[name] = typ
			}
			continue
		}
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		s.samples++
		sample, raw, ok := cutLast(line, " ")
		if !ok {
			return nil, fmt.Errorf("not a sample: %q", line)
		}
		v, err := strconv.ParseFloat(raw, 64)
		if err != nil {
			return nil, fmt.Errorf("not a sample: %q", line)
		}
		name, _, _ := strings.Cut(sample, "{")
		if !strings.HasPrefix(name, "synchro_") {
			continue
		}
		if family, part, ok := cutLast(name, "_"); ok && types[family] == "histogram" {
			h := hists[family]
			if h == nil {
				h = &hist{}
				hists[family] = h
				histNames = append(histNames, family)
			}
			switch part {
			case "count":
				h.count += v
			case "sum":
				h.sum += v
			}
			continue
		}
		if v != 0 {
			s.lines = append(s.lines, line)
			s.nonZero[name] = true
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	for _, family := range slices.Sorted(slices.Values(histNames)) {
		h := hists[family]
		if h.count == 0 {
			continue
		}
		short := strings.TrimPrefix(family, "synchro_")
		if base, ok := strings.CutSuffix(short, "_duration_seconds"); ok {
			s.histograms = append(s.histograms, fmt.Sprintf("%s %.0f × %.2f ms", base, h.count, 1000*h.sum/h.count))
		} else {
			s.histograms = append(s.histograms, fmt.Sprintf("%s %.0f × %g", short, h.count, h.sum/h.count))
		}
	}
	return s, nil
}

// cutLast slices s around the last sep.
func cutLast(s, sep string) (before, after string, found bool) {
	if i := strings.LastIndex(s, sep); i >= 0 {
		return s[:i], s[i+len(sep):], true
	}
	return s, "", false
}
