// Command benchreport turns the JSON reports of cmd/synchro-load into the
// data files of the plot in docs/benchmarks.md and prints its tables in
// Markdown. It belongs to docs/bench/sweep.sh, which runs the sweeps, this
// program and gnuplot.
//
//	go run ./internal/benchreport -out docs/bench/data clients=docs/bench/data/clients-*.json changelog=docs/bench/data/changelog-*.json
//
// Each argument is SERIES=FILE...; a series' files become the rows of
// OUT/SERIES.tsv, ordered by their x value: the number of devices for the
// series "clients", the changelog's size at the start of the load phase for
// any other.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// report is the part of synchro-load's JSON report this program reads.
type report struct {
	Setup struct {
		Clients int `json:"clients"`
	} `json:"setup"`
	Bootstrap phase  `json:"bootstrap"`
	Sync      phase  `json:"sync"`
	Raw       *phase `json:"raw"`
	RawBoot   *phase `json:"raw_bootstrap"`
	Capture   struct {
		RowsPerSec          float64 `json:"rows_per_sec"`
		LagMaxBytes         int64   `json:"lag_max_bytes"`
		CatchUpSec          float64 `json:"catch_up_sec"`
		ChangelogRowsBefore int64   `json:"changelog_rows_before"`
	} `json:"capture"`
	Writer struct {
		PerSec float64 `json:"per_sec"`
	} `json:"writer"`
}

type phase struct {
	Kinds        map[string]kind `json:"kinds"`
	CommitToPull latency         `json:"commit_to_pull"`
	Errors       map[string]int  `json:"errors"`
}

type kind struct {
	OpsPerSec     float64 `json:"ops_per_sec"`
	RecordsPerSec float64 `json:"records_per_sec"`
	P50Ms         float64 `json:"p50_ms"`
	P99Ms         float64 `json:"p99_ms"`
}

type latency struct {
	P50Ms float64 `json:"p50_ms"`
	P99Ms float64 `json:"p99_ms"`
}

// column is one column of the data files and the tables.
type column struct {
	name string
	get  func(r *report) float64
}

var columns = []column{
	{"push_records_per_s", func(r *report) float64 { return r.Sync.Kinds["push"].RecordsPerSec }},
	{"push_p50_ms", func(r *report) float64 { return r.Sync.Kinds["push"].P50Ms }},
	{"push_p99_ms", func(r *report) float64 { return r.Sync.Kinds["push"].P99Ms }},
	{"pull_per_s", func(r *report) float64 { return r.Sync.Kinds["pull"].OpsPerSec }},
	{"pull_records_per_s", func(r *report) float64 { return r.Sync.Kinds["pull"].RecordsPerSec }},
	{"pull_p50_ms", func(r *report) float64 { return r.Sync.Kinds["pull"].P50Ms }},
	{"pull_p99_ms", func(r *report) float64 { return r.Sync.Kinds["pull"].P99Ms }},
	{"commit_to_pull_p50_ms", func(r *report) float64 { return r.Sync.CommitToPull.P50Ms }},
	{"commit_to_pull_p99_ms", func(r *report) float64 { return r.Sync.CommitToPull.P99Ms }},
	{"snapshot_rows_per_s", func(r *report) float64 { return r.Bootstrap.Kinds["snapshot"].RecordsPerSec }},
	{"snapshot_p99_ms", func(r *report) float64 { return r.Bootstrap.Kinds["snapshot"].P99Ms }},
	{"capture_rows_per_s", func(r *report) float64 { return r.Capture.RowsPerSec }},
	{"capture_catch_up_s", func(r *report) float64 { return r.Capture.CatchUpSec }},
	{"writer_per_s", func(r *report) float64 { return r.Writer.PerSec }},
	{"raw_push_records_per_s", func(r *report) float64 { return rawKind(r.Raw, "push").RecordsPerSec }},
	{"raw_push_p99_ms", func(r *report) float64 { return rawKind(r.Raw, "push").P99Ms }},
	{"raw_pull_p99_ms", func(r *report) float64 { return rawKind(r.Raw, "pull").P99Ms }},
	{"raw_commit_to_pull_p99_ms", func(r *report) float64 {
		if r.Raw == nil {
			return 0
		}
		return r.Raw.CommitToPull.P99Ms
	}},
	{"errors", func(r *report) float64 {
		n := 0
		for _, v := range r.Sync.Errors {
			n += v
		}
		return float64(n)
	}},
}

func rawKind(p *phase, name string) kind {
	if p == nil {
		return kind{}
	}
	return p.Kinds[name]
}

func main() {
	out := flag.String("out", ".", "directory of the data files")
	flag.Parse()
	if flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: benchreport -out DIR SERIES=FILE...")
		os.Exit(2)
	}
	series := map[string][]string{}
	var order []string
	for _, arg := range flag.Args() {
		name, file, ok := strings.Cut(arg, "=")
		if !ok {
			fmt.Fprintf(os.Stderr, "benchreport: %q is not SERIES=FILE\n", arg)
			os.Exit(2)
		}
		if _, seen := series[name]; !seen {
			order = append(order, name)
		}
		series[name] = append(series[name], file)
	}
	for _, name := range order {
		if err := write(*out, name, series[name], os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "benchreport:", err)
			os.Exit(1)
		}
	}
}

type row struct {
	x float64
	r *report
}

// write reads a series' reports, writes DIR/NAME.tsv and prints its table.
func write(dir, name string, files []string, md io.Writer) error {
	var rows []row
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		r := new(report)
		if err := json.Unmarshal(raw, r); err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
		x := float64(r.Capture.ChangelogRowsBefore)
		if name == "clients" {
			x = float64(r.Setup.Clients)
		}
		rows = append(rows, row{x, r})
	}
	slices.SortFunc(rows, func(a, b row) int {
		switch {
		case a.x < b.x:
			return -1
		case a.x > b.x:
			return 1
		}
		return 0
	})
	var tsv strings.Builder
	tsv.WriteString("# x")
	for _, c := range columns {
		tsv.WriteString("\t" + c.name)
	}
	tsv.WriteString("\n")
	fmt.Fprintf(md, "\n| %s |", name)
	for _, c := range columns {
		fmt.Fprintf(md, " %s |", strings.ReplaceAll(c.name, "_", " "))
	}
	fmt.Fprintf(md, "\n|---|%s\n", strings.Repeat("---:|", len(columns)))
	for _, r := range rows {
		fmt.Fprintf(&tsv, "%.0f", r.x)
		fmt.Fprintf(md, "| %.0f |", r.x)
		for _, c := range columns {
			v := c.get(r.r)
			fmt.Fprintf(&tsv, "\t%.3f", v)
			fmt.Fprintf(md, " %s |", format(v))
		}
		tsv.WriteString("\n")
		fmt.Fprintln(md)
	}
	return os.WriteFile(filepath.Join(dir, name+".tsv"), []byte(tsv.String()), 0o644)
}

// format prints v with the precision a table needs.
func format(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.2f", v)
}
