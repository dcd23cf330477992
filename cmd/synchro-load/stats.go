package main

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The kinds of operation, as the report names them.
const (
	kindPush     = "push"     // one push request of a batch
	kindPull     = "pull"     // one pull request
	kindSnapshot = "snapshot" // one snapshot page request (bootstrap)
)

// kinds is the order of the report's rows.
var kinds = []string{kindPush, kindPull, kindSnapshot}

// recorder collects the latencies and counts of one phase. Safe for
// concurrent use; the hot path takes one mutex per operation, which at the
// rates one machine reaches (tens of thousands a second) costs nothing
// measurable next to a database round trip.
type recorder struct {
	mu      sync.Mutex
	lat     map[string][]time.Duration // per kind
	records map[string]int64           // records moved per kind
	errors  map[string]int64           // per "kind: class"
	reject  map[string]int64           // records the server refused, per "kind: status/reason"
	c2p     []time.Duration            // commit-to-pull latencies

	// Counters read by the progress line.
	ops  [3]atomic.Int64 // indexed like kinds
	errs atomic.Int64
}

func newRecorder() *recorder {
	return &recorder{lat: map[string][]time.Duration{}, records: map[string]int64{}, errors: map[string]int64{}, reject: map[string]int64{}}
}

// op records one successful operation of kind that took d and moved n
// records.
func (r *recorder) op(kind string, d time.Duration, n int) {
	r.mu.Lock()
	r.lat[kind] = append(r.lat[kind], d)
	r.records[kind] += int64(n)
	r.mu.Unlock()
	r.ops[slices.Index(kinds, kind)].Add(1)
}

// fail records one error of class during an operation of kind.
func (r *recorder) fail(kind, class string) {
	r.mu.Lock()
	r.errors[kind+": "+class]++
	r.mu.Unlock()
	r.errs.Add(1)
}

// rejected records one record the server refused during an operation of
// kind: an answer of the protocol (a conflict lost to the SQL writer, say),
// not a failure.
func (r *recorder) rejected(kind, status, reason string) {
	r.mu.Lock()
	r.reject[kind+": "+status+"/"+reason]++
	r.mu.Unlock()
}

// delivered records the commit-to-pull latencies of one pull.
func (r *recorder) delivered(ds []time.Duration) {
	if len(ds) == 0 {
		return
	}
	r.mu.Lock()
	r.c2p = append(r.c2p, ds...)
	r.mu.Unlock()
}

// c2pP99 is the p99 of the commit-to-pull latencies so far, for the progress
// line.
func (r *recorder) c2pP99() time.Duration {
	r.mu.Lock()
	ds := slices.Clone(r.c2p)
	r.mu.Unlock()
	slices.Sort(ds)
	return quantile(ds, 0.99)
}

// quantile returns the q quantile of sorted (nearest rank), 0 when empty.
func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// ms converts d to milliseconds.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// KindStats are the figures of one kind of operation in one phase.
type KindStats struct {
	Ops           int64   `json:"ops"`
	OpsPerSec     float64 `json:"ops_per_sec"`
	Records       int64   `json:"records"`
	RecordsPerSec float64 `json:"records_per_sec"`
	P50Ms         float64 `json:"p50_ms"`
	P95Ms         float64 `json:"p95_ms"`
	P99Ms         float64 `json:"p99_ms"`
	MaxMs         float64 `json:"max_ms"`
}

// Latency is a distribution of latencies.
type Latency struct {
	Count int     `json:"count"`
	P50Ms float64 `json:"p50_ms"`
	P95Ms float64 `json:"p95_ms"`
	P99Ms float64 `json:"p99_ms"`
	MaxMs float64 `json:"max_ms"`
}

func latencyOf(ds []time.Duration) Latency {
	sorted := slices.Sorted(slices.Values(ds))
	l := Latency{Count: len(sorted), P50Ms: ms(quantile(sorted, 0.50)), P95Ms: ms(quantile(sorted, 0.95)), P99Ms: ms(quantile(sorted, 0.99))}
	if len(sorted) > 0 {
		l.MaxMs = ms(sorted[len(sorted)-1])
	}
	return l
}

// Phase is what one phase measured.
type Phase struct {
	Seconds      float64              `json:"seconds"`
	Kinds        map[string]KindStats `json:"kinds"`
	CommitToPull Latency              `json:"commit_to_pull"`
	Errors       map[string]int64     `json:"errors"`
	Rejected     map[string]int64     `json:"rejected,omitempty"`
}

// phase summarizes the recorder over a phase of elapsed seconds.
func (r *recorder) phase(elapsed time.Duration) Phase {
	r.mu.Lock()
	defer r.mu.Unlock()
	secs := elapsed.Seconds()
	p := Phase{Seconds: secs, Kinds: map[string]KindStats{}, CommitToPull: latencyOf(r.c2p), Errors: maps.Clone(r.errors), Rejected: maps.Clone(r.reject)}
	for kind, ds := range r.lat {
		l := latencyOf(ds)
		p.Kinds[kind] = KindStats{
			Ops: int64(len(ds)), OpsPerSec: float64(len(ds)) / secs,
			Records: r.records[kind], RecordsPerSec: float64(r.records[kind]) / secs,
			P50Ms: l.P50Ms, P95Ms: l.P95Ms, P99Ms: l.P99Ms, MaxMs: l.MaxMs,
		}
	}
	return p
}

// Ratio compares synchro's figures of a kind with the raw reference's:
// throughput as synchro/raw (1 = as fast as PostgreSQL alone, 0.5 = half),
// latency as synchro/raw (2 = twice as slow).
type Ratio struct {
	RecordsPerSec float64 `json:"records_per_sec"`
	P50           float64 `json:"p50"`
	P99           float64 `json:"p99"`
}

// div is a/b, 0 when b is 0.
func div(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// ratios compares two phases kind by kind, and the commit-to-pull latency
// under the name "commit_to_pull".
func ratios(s, raw Phase) map[string]Ratio {
	out := map[string]Ratio{}
	for kind, k := range s.Kinds {
		r, ok := raw.Kinds[kind]
		if !ok {
			continue
		}
		out[kind] = Ratio{RecordsPerSec: div(k.RecordsPerSec, r.RecordsPerSec), P50: div(k.P50Ms, r.P50Ms), P99: div(k.P99Ms, r.P99Ms)}
	}
	if s.CommitToPull.Count > 0 && raw.CommitToPull.Count > 0 {
		out["commit_to_pull"] = Ratio{P50: div(s.CommitToPull.P50Ms, raw.CommitToPull.P50Ms), P99: div(s.CommitToPull.P99Ms, raw.CommitToPull.P99Ms)}
	}
	return out
}

// printPhase writes a phase as a table.
func printPhase(w io.Writer, title string, p Phase, ref *Phase) {
	fmt.Fprintf(w, "\n%s (%.1f s)\n", title, p.Seconds)
	fmt.Fprintf(w, "  %-9s %8s %9s %11s %8s %8s %8s %8s", "kind", "ops", "ops/s", "records/s", "p50 ms", "p95 ms", "p99 ms", "max ms")
	if ref != nil {
		fmt.Fprintf(w, "  %12s %10s %10s", "x raw rec/s", "x raw p50", "x raw p99")
	}
	fmt.Fprintln(w)
	for _, kind := range kinds {
		k, ok := p.Kinds[kind]
		if !ok {
			continue
		}
		fmt.Fprintf(w, "  %-9s %8d %9.0f %11.0f %8.2f %8.2f %8.2f %8.2f", kind, k.Ops, k.OpsPerSec, k.RecordsPerSec, k.P50Ms, k.P95Ms, k.P99Ms, k.MaxMs)
		if ref != nil {
			if r, ok := ref.Kinds[kind]; ok {
				fmt.Fprintf(w, "  %12.2f %10.2f %10.2f", div(k.RecordsPerSec, r.RecordsPerSec), div(k.P50Ms, r.P50Ms), div(k.P99Ms, r.P99Ms))
			}
		}
		fmt.Fprintln(w)
	}
	c := p.CommitToPull
	fmt.Fprintf(w, "  commit-to-pull: %d rows seen, p50 %.1f ms, p95 %.1f ms, p99 %.1f ms, max %.1f ms", c.Count, c.P50Ms, c.P95Ms, c.P99Ms, c.MaxMs)
	if ref != nil && ref.CommitToPull.Count > 0 {
		fmt.Fprintf(w, " (x raw p50 %.2f, p99 %.2f)", div(c.P50Ms, ref.CommitToPull.P50Ms), div(c.P99Ms, ref.CommitToPull.P99Ms))
	}
	fmt.Fprintln(w)
	printCounts(w, "errors", p.Errors)
	if len(p.Rejected) > 0 {
		printCounts(w, "records refused by the server", p.Rejected)
	}
}

// printCounts prints counts by class under title.
func printCounts(w io.Writer, title string, counts map[string]int64) {
	if len(counts) == 0 {
		fmt.Fprintf(w, "  %s: none\n", title)
		return
	}
	fmt.Fprintf(w, "  %s:\n", title)
	for _, k := range slices.Sorted(maps.Keys(counts)) {
		fmt.Fprintf(w, "    %-50s %d\n", k, counts[k])
	}
}

// errorClass reduces an error message to a short class for the error
// counts: its first line, cut at 60 bytes.
func errorClass(err error) string {
	s, _, _ := strings.Cut(err.Error(), "\n")
	if len(s) > 60 {
		s = s[:60] + "..."
	}
	return s
}
