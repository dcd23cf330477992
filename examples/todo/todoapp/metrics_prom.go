package todoapp

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"fmt"
	"io"
	"maps"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"go.opentelemetry.io/otel/attribute"
)

// This file is the exposition of Metrics: the Prometheus text format,
// served at GET /metrics.

// ServeHTTP answers GET (and HEAD) with WriteText's exposition, running the
// observable instruments' callbacks with the request's context.
func (p *Metrics) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	var buf bytes.Buffer
	_ = p.WriteText(r.Context(), &buf) // writes to a bytes.Buffer do not fail
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	_, _ = w.Write(buf.Bytes())
}

// WriteText runs the registered callbacks with ctx, then writes every
// instrument that has a value to w in the Prometheus text exposition format
// 0.0.4, by name, each with # HELP (its description, when it has one) and
// # TYPE:
//
//   - names follow the OpenTelemetry to Prometheus convention (as the SDK's
//     Prometheus exporter names them): each run of characters other than
//     [a-zA-Z0-9:] becomes one underscore; the unit is appended unless the
//     name already holds it (s: _seconds, ms: _milliseconds, By: _bytes,
//     1 on a gauge: _ratio, X/s: _X_per_second, ...; units in braces such as
//     {row} are dropped); counters end in _total. So synchro.push.records
//     ({record}) is synchro_push_records_total and synchro.capture.lag (By)
//     synchro_capture_lag_bytes;
//   - labels are the attributes, their keys sanitized alike (each run of
//     characters other than [a-zA-Z0-9] becomes one underscore, so
//     synchro.push.status is synchro_push_status; a key starting with a
//     digit gets key_ before it; keys that become the same name have their
//     values joined with ";"), their values escaped (\\, \", \n);
//   - counters are TYPE counter; up-down counters and gauges, gauge;
//     histograms, histogram, with cumulative NAME_bucket{le="..."} series
//     (le="+Inf" last), NAME_sum and NAME_count;
//   - values are written as Go's strconv.FormatFloat(v, 'g', -1, 64), with
//     +Inf, -Inf and NaN, as the Prometheus client does.
//
// Series are sorted by their labels. There are no timestamps, no exemplars,
// and no OpenMetrics (# EOF, _created).
func (p *Metrics) WriteText(ctx context.Context, w io.Writer) error {
	p.mu.Lock()
	insts := slices.Collect(maps.Values(p.instruments))
	ids := slices.Sorted(maps.Keys(p.callbacks))
	cbs := make([]callback, len(ids))
	for i, id := range ids {
		cbs[i] = p.callbacks[id]
	}
	p.mu.Unlock()

	// Outside the lock: a callback may create instruments.
	c := &collection{points: map[*instrument]map[attribute.Distinct]*point{}}
	for _, cb := range cbs {
		_ = cb(ctx, c)
	}

	slices.SortFunc(insts, func(a, b *instrument) int { return cmp.Compare(a.promName, b.promName) })
	bw := bufio.NewWriter(w)
	for _, in := range insts {
		var pts []point
		if in.kind.observable() {
			pts = c.snapshot(in)
		} else {
			pts = in.snapshot()
		}
		if len(pts) > 0 {
			writeFamily(bw, in, pts)
		}
	}
	return bw.Flush()
}

// writeFamily writes one instrument's # HELP, # TYPE and series.
func writeFamily(w *bufio.Writer, in *instrument, pts []point) {
	if in.desc != "" {
		fmt.Fprintf(w, "# HELP %s %s\n", in.promName, helpEscaper.Replace(in.desc))
	}
	fmt.Fprintf(w, "# TYPE %s %s\n", in.promName, in.kind.promType())
	type row struct {
		labels []string // name="value", sorted by name
		pt     *point
	}
	rows := make([]row, len(pts))
	for i := range pts {
		rows[i] = row{labels: promLabels(pts[i].attrs), pt: &pts[i]}
	}
	slices.SortFunc(rows, func(a, b row) int { return slices.Compare(a.labels, b.labels) })
	for _, r := range rows {
		if in.kind != kindHistogram {
			fmt.Fprintf(w, "%s%s %s\n", in.promName, braces(r.labels), formatFloat(r.pt.value))
			continue
		}
		var cumulative uint64
		for b, bound := range in.bounds {
			cumulative += r.pt.buckets[b]
			fmt.Fprintf(w, "%s_bucket%s %d\n", in.promName, braces(r.labels, `le="`+formatFloat(bound)+`"`), cumulative)
		}
		fmt.Fprintf(w, "%s_bucket%s %d\n", in.promName, braces(r.labels, `le="+Inf"`), r.pt.count)
		fmt.Fprintf(w, "%s_sum%s %s\n", in.promName, braces(r.labels), formatFloat(r.pt.sum))
		fmt.Fprintf(w, "%s_count%s %d\n", in.promName, braces(r.labels), r.pt.count)
	}
}

// braces joins labels and extra into {a="x",b="y"}, or nothing when there
// are none.
func braces(labels []string, extra ...string) string {
	all := append(slices.Clip(labels), extra...)
	if len(all) == 0 {
		return ""
	}
	return "{" + strings.Join(all, ",") + "}"
}

var (
	helpEscaper  = strings.NewReplacer(`\`, `\\`, "\n", `\n`)
	valueEscaper = strings.NewReplacer(`\`, `\\`, "\n", `\n`, `"`, `\"`)
)

// promLabels returns the labels of an attribute set as name="value",
// sorted by name; keys that sanitize to the same name have their values
// joined with ";" (in key order), as the SDK's exporter does.
func promLabels(set attribute.Set) []string {
	type label struct{ name, value string }
	var labels []label
	for it := set.Iter(); it.Next(); {
		kv := it.Attribute()
		name := promLabelName(string(kv.Key))
		if name == "" {
			continue
		}
		if i := slices.IndexFunc(labels, func(l label) bool { return l.name == name }); i >= 0 {
			labels[i].value += ";" + kv.Value.String()
			continue
		}
		labels = append(labels, label{name, kv.Value.String()})
	}
	slices.SortFunc(labels, func(a, b label) int { return strings.Compare(a.name, b.name) })
	out := make([]string, len(labels))
	for i, l := range labels {
		out[i] = l.name + `="` + valueEscaper.Replace(l.value) + `"`
	}
	return out
}

// promLabelName sanitizes an attribute key into a label name: each run of
// characters other than [a-zA-Z0-9] becomes one underscore, and a name
// starting with a digit gets key_ before it. It returns "" for a key with
// nothing else.
func promLabelName(key string) string {
	name := sanitize(key, func(r rune) bool { return isAlnum(r) })
	if strings.Trim(name, "_") == "" {
		return ""
	}
	if unicode.IsDigit(rune(name[0])) {
		name = "key_" + name
	}
	return name
}

// promMetricName is the Prometheus name of an instrument, as the SDK's
// exporter builds it (otlptranslator's UnderscoreEscapingWithSuffixes).
func promMetricName(name, unit string, k kind) string {
	valid := func(r rune) bool { return isAlnum(r) || r == ':' }
	tokens := strings.FieldsFunc(name, func(r rune) bool { return !valid(r) })
	mainUnit, perUnit, _ := strings.Cut(unit, "/")
	if u := strings.TrimSpace(mainUnit); u != "" && !strings.ContainsAny(u, "{}") {
		if s, ok := unitNames[u]; ok {
			u = s
		}
		if u = strings.Trim(sanitize(u, valid), "_"); u != "" && !slices.Contains(tokens, u) {
			tokens = append(tokens, u)
		}
	}
	if u := strings.TrimSpace(perUnit); u != "" && !strings.ContainsAny(u, "{}") {
		if s, ok := perUnitNames[u]; ok {
			u = s
		}
		if u = strings.Trim(sanitize(u, valid), "_"); u != "" && !slices.Contains(tokens, "per_"+u) {
			tokens = append(tokens, "per_"+u)
		}
	}
	switch {
	case k == kindCounter || k == kindObservableCounter:
		tokens = append(slices.DeleteFunc(tokens, func(t string) bool { return t == "total" }), "total")
	case unit == "1" && (k == kindGauge || k == kindObservableGauge): // not up-down counters
		tokens = append(slices.DeleteFunc(tokens, func(t string) bool { return t == "ratio" }), "ratio")
	}
	out := strings.Join(tokens, "_")
	if out != "" && unicode.IsDigit(rune(out[0])) {
		out = "_" + out
	}
	return out
}

// sanitize replaces each run of runes that are not valid with one '_'.
func sanitize(s string, valid func(rune) bool) string {
	var b strings.Builder
	under := false
	for _, r := range s {
		if valid(r) {
			b.WriteRune(r)
			under = false
		} else if !under {
			b.WriteByte('_')
			under = true
		}
	}
	return b.String()
}

func isAlnum(r rune) bool {
	return 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9'
}

// unitNames and perUnitNames are the Prometheus names of UCUM units, as
// the OpenTelemetry to Prometheus convention maps them; other units are
// kept (sanitized).
var (
	unitNames = map[string]string{
		"d": "days", "h": "hours", "min": "minutes", "s": "seconds", "ms": "milliseconds", "us": "microseconds", "ns": "nanoseconds",
		"By": "bytes", "KiBy": "kibibytes", "MiBy": "mebibytes", "GiBy": "gibibytes", "TiBy": "tibibytes",
		"KBy": "kilobytes", "MBy": "megabytes", "GBy": "gigabytes", "TBy": "terabytes",
		"m": "meters", "V": "volts", "A": "amperes", "J": "joules", "W": "watts", "g": "grams",
		"Cel": "celsius", "Hz": "hertz", "1": "", "%": "percent",
	}
	perUnitNames = map[string]string{"s": "second", "m": "minute", "h": "hour", "d": "day", "w": "week", "mo": "month", "y": "year"}
)

// formatFloat writes a value as the Prometheus client does.
func formatFloat(v float64) string {
	switch {
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	case math.IsNaN(v):
		return "NaN"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}
