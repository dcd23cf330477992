// Command synchro-load puts a sync server under load and reports what it
// sustains: N simulated devices (-clients, default 50), each of its own
// user, bootstrap with a snapshot and then push and pull for -duration
// while a writer changes their rows with plain SQL at -write-rate changes a
// second, as the application's own code would. Then, unless -reference is
// false, the same devices do the same reads and writes with plain batched
// SQL on the same database (the raw reference), and every figure is also
// given as a ratio to it.
//
//	go -C cmd/synchro-load run .                      # in-process example server, throwaway PostgreSQL
//	go -C cmd/synchro-load run . -transport http      # the same, through its HTTP handler on 127.0.0.1
//	go -C cmd/synchro-load run . -transport client    # devices built on package client, over that HTTP handler
//	go -C cmd/synchro-load run . -server http://127.0.0.1:8080 -database-url postgres://postgres@127.0.0.1:5432/todo
//	go -C cmd/synchro-load run . -smoke               # a few seconds; exits 1 on any error
//
// It is a module of its own (go.mod here, with replace directives to the
// repository root, to examples/todo and to client), so that the SQLite
// driver stays out of synchro's go.mod: run it from its directory (go -C
// does that from the root), where a relative -cpuprofile file lands too.
//
// # What it runs against
//
// The application is the example to-do server (examples/todo): its tables
// (lists owned by user_id, items children of lists), the engine connected as
// a role subject to row-level security, change capture and the HTTP adapter
// with the example's demo authentication. By default it runs in this
// process, on the database of -database-url (a superuser URL; default
// $SYNCHRO_DATABASE_URL) or on a throwaway local PostgreSQL, and the devices
// call the engine's methods (-transport engine) or its HTTP handler on a
// loopback port (-transport http). With -server, the devices call a running
// example server instead, and -database-url must name that server's
// database: the writer, the raw reference and the measures of the changelog
// and of capture lag use it.
//
// # Devices built on package client
//
// With -transport client each device is what an application built on
// package github.com/synchrosync/synchro/client is: a client.Client on its
// own SQLite file (in a temporary directory, removed at the end), syncing
// with the server over HTTP (the in-process server's handler on a loopback
// port, or -server). The figures then include the client's side: SQLite
// writes, triggers, the outbox, applying pages locally.
//
//   - bootstrap: the client's first Sync (schema, registration, every
//     snapshot page, an empty pull), counted as one snapshot operation
//     with the records it wrote locally;
//   - pull: a Sync with nothing to push, which pulls until the server has
//     nothing more (-pull-limit records a page); its records are those
//     the client reports received (EventReceived);
//   - push: the batch's edits written to the local items table with plain
//     SQL in one transaction (the client's triggers queue them), then a
//     Sync, which pushes them (-batch records a push) and pulls; the
//     latency is the Sync's, and conflicts and rejections are the
//     client's events (then deleted from its rejections);
//   - commit-to-pull: from the commit of a writer's change to the end of
//     the Sync that wrote its marker into the device's local items table.
//
// With -catchup, each device's catch-up is one Sync, which pulls the whole
// backlog. -wait does not apply (there is no public waiting pull apart from
// Client.Run's loop).
//
// # What it measures
//
// Per kind of operation (push of -batch records, pull of up to -pull-limit
// records, snapshot page), the operations and records per second and the
// latency p50/p95/p99/max; the commit-to-pull latency (from the commit of a
// writer's change to the response of the first pull of a device that
// returns it; each device counts once per change); the capture lag (bytes of
// WAL the consumer has not confirmed, sampled every second, and the time it
// takes to catch up at the end), the changelog rows written per second and
// the changelog's size; errors by kind. A live progress line goes to
// standard error; the final table, or with -json a JSON document, to
// standard output.
//
// -changelog-rows first fills the changelog with that many rows of other
// buckets (as a long-running server's history would be), to measure how the
// figures change as the changelog grows. The in-process server runs no
// compaction, so they stay; start an external server with a long
// -compact-interval for the same effect.
//
// The devices pause -think (±50%) between operations; with -think 0 they
// run flat out, and measure throughput rather than latency.
//
// # Catch-up
//
// With -catchup N the program measures a device that comes back after a
// while instead: after the bootstrap, N new items are written for each
// device's user with plain SQL (in bulk), change capture records them
// (the program waits until it has), and then every device pulls its whole
// backlog in pulls of -pull-limit, flat out, all devices at once. The raw
// reference does the same work with plain SQL on the same rows: each device
// pages through its user's items changed since the bulk write by
// (updated_at, id), -pull-limit rows a page, with the columns a pull
// delivers. The report gives the records a second of both and synchro's as
// a ratio of the reference's. -duration, -think, -push-ratio and the SQL
// writer do not apply.
//
//	go -C cmd/synchro-load run . -catchup 20000 -clients 4 -pull-limit 1000
package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"syscall"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver

	"github.com/synchrosync/synchro"
	"github.com/synchrosync/synchro/examples/todo/todoapp"
	"github.com/synchrosync/synchro/wal"
)

// options are the command-line flags.
type options struct {
	clients     int
	duration    time.Duration
	refDuration time.Duration
	reference   bool
	pushRatio   float64
	batch       int
	pullLimit   int
	think       time.Duration
	wait        time.Duration
	writeRate   float64
	writeBatch  int
	lists       int
	items       int
	prefill     int64
	catchup     int
	transport   string
	server      string
	databaseURL string
	slot        string
	seed        uint64
	jsonOut     bool
	smoke       bool
	verbose     bool
	cpuProfile  string
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("synchro-load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&o.clients, "clients", 50, "simulated devices, one user each")
	fs.DurationVar(&o.duration, "duration", 30*time.Second, "how long the devices push and pull")
	fs.BoolVar(&o.reference, "reference", true, "also run the raw PostgreSQL reference")
	fs.DurationVar(&o.refDuration, "reference-duration", 0, "how long the raw reference runs (0: half of -duration)")
	fs.Float64Var(&o.pushRatio, "push-ratio", 0.2, "the share of a device's operations that are pushes (the others are pulls)")
	fs.IntVar(&o.batch, "batch", 100, "records per push")
	fs.IntVar(&o.pullLimit, "pull-limit", 1000, "records per pull at most (1-1000)")
	fs.DurationVar(&o.think, "think", 50*time.Millisecond, "a device's pause between operations (±50%)")
	fs.DurationVar(&o.wait, "wait", 0, "live sync: each pull waits up to this long for a change (long polling, ?wait= over HTTP) and no pause follows it; 0: plain pulls")
	fs.Float64Var(&o.writeRate, "write-rate", 1000, "row changes per second made by the SQL writer (0: none)")
	fs.IntVar(&o.writeBatch, "write-batch", 10, "row changes per transaction of the SQL writer")
	fs.IntVar(&o.lists, "lists", 4, "lists of each user at the start")
	fs.IntVar(&o.items, "items", 200, "items of each user at the start, spread over the lists")
	fs.Int64Var(&o.prefill, "changelog-rows", 0, "rows of other buckets written into the changelog before the run")
	fs.IntVar(&o.catchup, "catchup", 0, "catch-up mode: write this many new items for each device's user after the bootstrap, then each device pulls its whole backlog flat out, and the raw reference reads the same rows (0: the push and pull load)")
	fs.StringVar(&o.transport, "transport", "engine", "the devices call the in-process server's engine (engine) or its HTTP handler (http), or are clients of package client, each on its own SQLite file, syncing over HTTP (client)")
	fs.StringVar(&o.server, "server", "", "base `URL` of a running example server (examples/todo); needs -database-url")
	fs.StringVar(&o.databaseURL, "database-url", os.Getenv(todoapp.EnvDatabaseURL), "superuser postgres:// `URL` of the database (default $"+todoapp.EnvDatabaseURL+"; empty: a throwaway local PostgreSQL)")
	fs.StringVar(&o.slot, "slot", wal.DefaultSlotName, "replication slot of the server's change capture")
	fs.Uint64Var(&o.seed, "seed", 1, "seed of the devices' and the writer's random choices")
	fs.BoolVar(&o.jsonOut, "json", false, "print the report as JSON")
	fs.BoolVar(&o.smoke, "smoke", false, "a short run (4 devices, 3 s, small data) that exits 1 on any error")
	fs.BoolVar(&o.verbose, "v", false, "log the server's messages")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the sync phase to `file` (in-process server: the engine's Go side)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	if o.smoke {
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		def := func(name string, apply func()) {
			if !set[name] {
				apply()
			}
		}
		def("clients", func() { o.clients = 4 })
		def("duration", func() { o.duration = 3 * time.Second })
		def("items", func() { o.items = 100 })
		def("write-rate", func() { o.writeRate = 200 })
	}
	if o.refDuration == 0 {
		o.refDuration = o.duration / 2
	}
	return o, o.validate()
}

func (o options) validate() error {
	var errs []error
	check := func(ok bool, msg string) {
		if !ok {
			errs = append(errs, errors.New(msg))
		}
	}
	check(o.clients >= 1 && o.clients <= 10000, "-clients must be 1-10000")
	check(o.duration > 0, "-duration must be positive")
	check(o.refDuration > 0, "-reference-duration must be positive")
	check(o.pushRatio >= 0 && o.pushRatio <= 1, "-push-ratio must be 0-1")
	check(o.batch >= 1 && o.batch <= 1000, "-batch must be 1-1000")
	check(o.pullLimit >= 1 && o.pullLimit <= 1000, "-pull-limit must be 1-1000")
	check(o.think >= 0, "-think must not be negative")
	check(o.wait >= 0 && o.wait <= synchro.MaxPullWait, "-wait must be 0-60s")
	check(o.writeRate >= 0, "-write-rate must not be negative")
	check(o.writeBatch >= 1, "-write-batch must be at least 1")
	check(o.lists >= 1, "-lists must be at least 1")
	check(o.items >= 1, "-items must be at least 1")
	check(o.prefill >= 0, "-changelog-rows must not be negative")
	check(o.catchup >= 0 && o.catchup <= 10_000_000, "-catchup must be 0-10000000")
	check(o.transport == "engine" || o.transport == "http" || o.transport == "client", "-transport must be engine, http or client")
	check(o.transport != "client" || o.wait == 0, "-wait does not apply to -transport client (its pulls are Client.Sync's)")
	check(o.server == "" || o.databaseURL != "", "-server needs -database-url (the server's database)")
	return errors.Join(errs...)
}

func main() {
	opts, err := parseFlags(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "synchro-load:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	report, err := run(ctx, opts, os.Stderr)
	if err == nil {
		err = output(os.Stdout, opts, report)
	}
	if err == nil && opts.smoke {
		err = report.healthy()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "synchro-load:", err)
		os.Exit(1)
	}
}

// Report is the result of a run; -json prints it.
type Report struct {
	Setup     Setup   `json:"setup"`
	Machine   Machine `json:"machine"`
	Bootstrap Phase   `json:"bootstrap"`
	Sync      Phase   `json:"sync"`
	Capture   Capture `json:"capture"`
	Writer    Writer  `json:"writer"`
	// DatabaseXactPerSec is the rate of transactions the database ran
	// during the sync phase, all sessions together (pg_stat_database):
	// the database work the load costs.
	DatabaseXactPerSec float64 `json:"database_xact_per_sec"`
	// The raw reference, when it ran: its bootstrap and its load phase,
	// and synchro's figures divided by its own.
	RawBootstrap *Phase           `json:"raw_bootstrap,omitempty"`
	Raw          *Phase           `json:"raw,omitempty"`
	Ratios       map[string]Ratio `json:"ratios,omitempty"`
}

// Setup echoes the options of the run.
type Setup struct {
	Transport      string  `json:"transport"`
	Clients        int     `json:"clients"`
	DurationSec    float64 `json:"duration_sec"`
	RefDurationSec float64 `json:"reference_duration_sec,omitempty"`
	PushRatio      float64 `json:"push_ratio"`
	Batch          int     `json:"batch"`
	PullLimit      int     `json:"pull_limit"`
	ThinkMs        float64 `json:"think_ms"`
	WaitSec        float64 `json:"wait_sec,omitempty"`
	WriteRate      float64 `json:"write_rate"`
	WriteBatch     int     `json:"write_batch"`
	Lists          int     `json:"lists_per_user"`
	Items          int     `json:"items_per_user"`
	ChangelogRows  int64   `json:"changelog_prefill"`
	CatchUp        int     `json:"catchup,omitempty"`
}

// Machine describes where the run happened.
type Machine struct {
	OS         string            `json:"os"`
	Arch       string            `json:"arch"`
	CPUs       int               `json:"cpus"`
	CPUModel   string            `json:"cpu_model,omitempty"`
	GoVersion  string            `json:"go_version"`
	PostgreSQL string            `json:"postgresql"`
	Settings   map[string]string `json:"settings"`
}

// Capture is what change capture did during the sync phase.
type Capture struct {
	ChangelogRowsWritten int64   `json:"changelog_rows_written"`
	RowsPerSec           float64 `json:"rows_per_sec"`
	LagMaxBytes          int64   `json:"lag_max_bytes"`
	LagEndBytes          int64   `json:"lag_end_bytes"`
	CatchUpSec           float64 `json:"catch_up_sec"`
	ChangelogRowsBefore  int64   `json:"changelog_rows_before"`
	ChangelogRowsAfter   int64   `json:"changelog_rows_after"`
	ChangelogBytes       int64   `json:"changelog_bytes"`
}

// Writer is what the SQL writer did during the sync phase.
type Writer struct {
	Changes   int64            `json:"changes"`
	PerSec    float64          `json:"per_sec"`
	Errors    map[string]int64 `json:"errors,omitempty"`
	RawPerSec float64          `json:"raw_per_sec,omitempty"`
}

// healthy reports the problems -smoke fails on: errors, or a kind of
// operation that never ran.
func (r *Report) healthy() error {
	var errs []error
	phases := map[string]*Phase{"bootstrap": &r.Bootstrap, "sync": &r.Sync, "raw": r.Raw}
	for name, p := range phases {
		if p == nil {
			continue
		}
		for k, n := range p.Errors {
			errs = append(errs, fmt.Errorf("%s: %d errors %s", name, n, k))
		}
		// A conflict lost to the SQL writer is the protocol working; any
		// other refusal of a device's own records is not.
		for k, n := range p.Rejected {
			if !strings.HasSuffix(k, "/server_won_conflict") {
				errs = append(errs, fmt.Errorf("%s: %d records refused %s", name, n, k))
			}
		}
	}
	if r.Setup.CatchUp > 0 {
		return errors.Join(append(errs, r.catchUpHealthy()...)...)
	}
	for _, k := range []string{kindPush, kindPull} {
		if r.Sync.Kinds[k].Ops == 0 {
			errs = append(errs, fmt.Errorf("sync: no %s completed", k))
		}
	}
	if r.Bootstrap.Kinds[kindSnapshot].Ops == 0 {
		errs = append(errs, errors.New("bootstrap: no snapshot page completed"))
	}
	if r.Setup.WriteRate > 0 && r.Sync.CommitToPull.Count == 0 {
		errs = append(errs, errors.New("sync: no change of the SQL writer reached a device"))
	}
	for k, n := range r.Writer.Errors {
		errs = append(errs, fmt.Errorf("writer: %d errors %s", n, k))
	}
	return errors.Join(errs...)
}

// output prints the report: JSON with -json, else tables.
func output(w io.Writer, o options, r *Report) error {
	if o.jsonOut {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	if o.catchup > 0 {
		outputCatchUp(w, r)
		return nil
	}
	m := r.Machine
	fmt.Fprintf(w, "synchro-load: %d devices, transport %s, %v (+ %v raw reference), push ratio %.2f of %d records, pulls of <= %d, think %v, SQL writer %.0f changes/s\n",
		r.Setup.Clients, r.Setup.Transport, o.duration, o.refDuration, r.Setup.PushRatio, r.Setup.Batch, r.Setup.PullLimit, o.think, r.Setup.WriteRate)
	if o.wait > 0 {
		fmt.Fprintf(w, "live sync: pulls wait up to %v for a change\n", o.wait)
	}
	fmt.Fprintf(w, "machine: %s/%s, %d CPUs %s, %s; PostgreSQL %s (%s)\n", m.OS, m.Arch, m.CPUs, m.CPUModel, m.GoVersion, m.PostgreSQL, settingsLine(m.Settings))
	printPhase(w, "bootstrap (snapshot pages)", r.Bootstrap, r.RawBootstrap)
	printPhase(w, "sync", r.Sync, r.Raw)
	c := r.Capture
	fmt.Fprintf(w, "  capture: %d changelog rows written (%.0f/s), lag max %d bytes, at the end %d bytes, caught up %.2f s after\n",
		c.ChangelogRowsWritten, c.RowsPerSec, c.LagMaxBytes, c.LagEndBytes, c.CatchUpSec)
	fmt.Fprintf(w, "  changelog: %d rows before, %d after, %.1f MB\n", c.ChangelogRowsBefore, c.ChangelogRowsAfter, float64(c.ChangelogBytes)/1e6)
	fmt.Fprintf(w, "  SQL writer: %d changes (%.0f/s), %d errors\n", r.Writer.Changes, r.Writer.PerSec, len(r.Writer.Errors))
	fmt.Fprintf(w, "  database: %.0f transactions/s during the sync phase (all sessions, pg_stat_database)\n", r.DatabaseXactPerSec)
	if r.Raw != nil {
		printPhase(w, "raw PostgreSQL reference (plain batched SQL, no sync)", *r.Raw, nil)
	}
	return nil
}

func settingsLine(s map[string]string) string {
	var parts []string
	for _, k := range settingNames {
		if v, ok := s[k]; ok {
			parts = append(parts, k+"="+v)
		}
	}
	return strings.Join(parts, ", ")
}

// settingNames are the PostgreSQL settings the report records.
var settingNames = []string{"fsync", "synchronous_commit", "full_page_writes", "shared_buffers", "wal_level", "max_wal_size", "work_mem"}

// env is what a run works with.
type env struct {
	o      options
	log    io.Writer
	super  *sql.DB // superuser pool: writer, raw reference, measures
	syncer syncer
	// base is the server's URL, when the devices reach it over HTTP.
	base string
	// stopCapture stops the in-process change capture (nil for an external
	// server).
	stopCapture func() error
	users       []string
}

// run sets up the server and the data, runs the phases and returns the
// report.
func run(ctx context.Context, o options, log io.Writer) (rep *Report, err error) {
	e := &env{o: o, log: log}
	cleanup, err := e.open(ctx)
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, cleanup()) }()

	rep = &Report{Setup: Setup{Transport: o.transport, Clients: o.clients, DurationSec: o.duration.Seconds(), PushRatio: o.pushRatio,
		Batch: o.batch, PullLimit: o.pullLimit, ThinkMs: ms(o.think), WaitSec: o.wait.Seconds(), WriteRate: o.writeRate, WriteBatch: o.writeBatch,
		Lists: o.lists, Items: o.items, ChangelogRows: o.prefill, CatchUp: o.catchup}}
	if o.server != "" {
		rep.Setup.Transport = "http " + o.server
		if o.transport == "client" {
			rep.Setup.Transport = "client " + o.server
		}
	}
	if o.reference {
		rep.Setup.RefDurationSec = o.refDuration.Seconds()
	}
	if rep.Machine, err = e.machine(ctx); err != nil {
		return nil, err
	}
	if err := e.prefill(ctx); err != nil {
		return nil, err
	}
	items, err := e.seed(ctx)
	if err != nil {
		return nil, err
	}
	version, hash, err := e.syncer.schema(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading the schema: %w", err)
	}
	cm := newCommits()
	var drv driver = &syncDriver{s: e.syncer, version: version, hash: hash, pullLimit: o.pullLimit, batch: o.batch, commits: cm, wait: o.wait}
	clients := e.clients()
	if o.transport == "client" {
		cd, cerr := newClientDriver(e.base, o.clients, o.pullLimit, o.batch, cm)
		if cerr != nil {
			return nil, cerr
		}
		defer func() { err = errors.Join(err, cd.close(clients)) }()
		drv = cd
	}

	e.logf("bootstrap: %d devices register and snapshot", len(clients))
	rep.Bootstrap = e.bootstrap(ctx, clients, drv)
	if o.catchup > 0 {
		return rep, e.catchUpRun(ctx, rep, clients, drv, cm, items[0])
	}
	before, err := e.changelogRows(ctx, 0)
	if err != nil {
		return nil, err
	}
	startSeq, err := e.maxSeq(ctx)
	if err != nil {
		return nil, err
	}

	w := &writer{db: e.super, items: items, rate: o.writeRate, batch: o.writeBatch, commits: cm,
		rng: rand.New(rand.NewPCG(o.seed, 0x5eed)), errs: map[string]int64{}}
	e.logf("sync: %d devices push and pull for %v", len(clients), o.duration)
	var lagMax int64
	if o.cpuProfile != "" {
		f, err := os.Create(o.cpuProfile)
		if err != nil {
			return nil, err
		}
		defer func() { _ = f.Close() }()
		if err := pprof.StartCPUProfile(f); err != nil {
			return nil, err
		}
	}
	xacts, err := e.xacts(ctx)
	if err != nil {
		return nil, err
	}
	rep.Sync = e.load(ctx, "sync", clients, drv, w, o.duration, &lagMax)
	if after, err := e.xacts(ctx); err == nil {
		rep.DatabaseXactPerSec = float64(after-xacts) / rep.Sync.Seconds
	}
	if o.cpuProfile != "" {
		pprof.StopCPUProfile()
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	written, werrs := w.counts()
	rep.Writer = Writer{Changes: written, PerSec: float64(written) / rep.Sync.Seconds, Errors: werrs}

	// Capture: how long it takes to catch up, and what it wrote.
	lagEnd, _ := e.lag(ctx)
	catchUp, err := e.catchUp(ctx, items[0])
	if err != nil {
		return nil, err
	}
	after, err := e.changelogRows(ctx, 0)
	if err != nil {
		return nil, err
	}
	wrote, err := e.changelogRows(ctx, startSeq)
	if err != nil {
		return nil, err
	}
	var size int64
	if err := e.super.QueryRowContext(ctx, `SELECT pg_total_relation_size('synchro.changelog')`).Scan(&size); err != nil {
		return nil, err
	}
	rep.Capture = Capture{ChangelogRowsWritten: wrote, RowsPerSec: float64(wrote) / (rep.Sync.Seconds + catchUp.Seconds()),
		LagMaxBytes: max(lagMax, lagEnd), LagEndBytes: lagEnd, CatchUpSec: catchUp.Seconds(),
		ChangelogRowsBefore: before, ChangelogRowsAfter: after, ChangelogBytes: size}

	if !o.reference {
		return rep, nil
	}
	// The raw reference: change capture stops first (when it runs here),
	// so that PostgreSQL does nothing but the reference's work.
	if e.stopCapture != nil {
		if err := e.stopCapture(); err != nil {
			return nil, fmt.Errorf("stopping change capture: %w", err)
		}
	}
	rd := &rawDriver{db: e.super, pullLimit: o.pullLimit, batch: o.batch, commits: cm}
	rawClients := e.clients()
	e.logf("raw reference: bootstrap")
	rb := e.bootstrap(ctx, rawClients, rd)
	rep.RawBootstrap = &rb
	rw := &writer{db: e.super, items: items, rate: o.writeRate, batch: o.writeBatch, commits: cm,
		rng: rand.New(rand.NewPCG(o.seed, 0x7a3)), errs: map[string]int64{}, next: w.next}
	e.logf("raw reference: %d devices read and write with plain SQL for %v", len(rawClients), o.refDuration)
	raw := e.load(ctx, "raw", rawClients, rd, rw, o.refDuration, nil)
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	rep.Raw = &raw
	rawWritten, rawErrs := rw.counts()
	rep.Writer.RawPerSec = float64(rawWritten) / raw.Seconds
	for k, n := range rawErrs {
		rep.Writer.Errors["raw: "+k] += n
	}
	rep.Ratios = ratios(rep.Sync, raw)
	if r, ok := ratios(rep.Bootstrap, rb)[kindSnapshot]; ok {
		rep.Ratios[kindSnapshot] = r
	}
	return rep, nil
}

// open starts or reaches the server and the database.
func (e *env) open(ctx context.Context) (func() error, error) {
	if e.o.server != "" {
		db, err := sql.Open("pgx", e.o.databaseURL)
		if err != nil {
			return nil, err
		}
		db.SetMaxOpenConns(e.o.clients + 4)
		db.SetMaxIdleConns(e.o.clients + 4)
		if err := db.PingContext(ctx); err != nil {
			_ = db.Close()
			return nil, fmt.Errorf("connecting to -database-url: %w", err)
		}
		e.super, e.syncer, e.base = db, newHTTPSyncer(e.o.server, e.o.clients), e.o.server
		return db.Close, nil
	}

	level := slog.LevelWarn
	if e.o.verbose {
		level = slog.LevelInfo
	}
	logger := slog.New(slog.NewTextHandler(e.log, &slog.HandlerOptions{Level: level}))
	e.logf("starting the example server in-process")
	app, err := todoapp.Open(ctx, todoapp.Config{DatabaseURL: e.o.databaseURL, Logger: logger, NoCompaction: true})
	if err != nil {
		return nil, err
	}
	closeApp := func() error {
		stopCtx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		return app.Close(stopCtx)
	}
	e.super, e.stopCapture = app.Super, app.StopCapture
	e.super.SetMaxOpenConns(e.o.clients + 4)
	e.super.SetMaxIdleConns(e.o.clients + 4)
	if e.o.transport == "engine" {
		e.syncer = engineSyncer{e: app.Engine}
		return closeApp, nil
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, errors.Join(err, closeApp())
	}
	mux := http.NewServeMux()
	mux.Handle("/sync/", app.Handler)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	e.base = "http://" + ln.Addr().String()
	e.syncer = newHTTPSyncer(e.base, e.o.clients)
	return func() error {
		stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return errors.Join(srv.Shutdown(stopCtx), closeApp())
	}, nil
}

func (e *env) logf(format string, args ...any) {
	fmt.Fprintf(e.log, "synchro-load: "+format+"\n", args...)
}

// machine reads the facts of the machine and the server.
func (e *env) machine(ctx context.Context) (Machine, error) {
	m := Machine{OS: runtime.GOOS, Arch: runtime.GOARCH, CPUs: runtime.NumCPU(), GoVersion: runtime.Version(), Settings: map[string]string{}}
	if raw, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(raw), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if err := e.super.QueryRowContext(ctx, `SHOW server_version`).Scan(&m.PostgreSQL); err != nil {
		return m, fmt.Errorf("reading the server's version: %w", err)
	}
	for _, name := range settingNames {
		var v string
		if err := e.super.QueryRowContext(ctx, `SELECT current_setting($1)`, name).Scan(&v); err != nil {
			return m, fmt.Errorf("reading setting %s: %w", name, err)
		}
		m.Settings[name] = v
	}
	return m, nil
}

// prefill writes -changelog-rows rows of 10000 other users' buckets into the
// changelog, in transactions of a million, then lets PostgreSQL settle
// (statistics, hint bits, visibility map) as on a server that has been
// running.
func (e *env) prefill(ctx context.Context) error {
	n := e.o.prefill
	if n == 0 {
		return nil
	}
	const chunk = 1_000_000
	start := time.Now()
	for done := int64(0); done < n; done += chunk {
		last := min(done+chunk, n)
		e.logf("prefill: changelog rows %d-%d of %d", done+1, last, n)
		_, err := e.super.ExecContext(ctx, `
INSERT INTO synchro.changelog (bucket_id, table_name, record_id, operation)
SELECT 'user:history-' || (g % 10000), 'items', md5(g::text)::uuid::text, 1 + (g % 3)::smallint
  FROM generate_series($1::bigint, $2::bigint) AS g`, done+1, last)
		if err != nil {
			return fmt.Errorf("prefilling the changelog: %w", err)
		}
	}
	for _, stmt := range []string{`ANALYZE synchro.changelog`, `CHECKPOINT`, `VACUUM synchro.changelog`} {
		if _, err := e.super.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("prefill: %s: %w", stmt, err)
		}
	}
	e.logf("prefill: %d rows in %v", n, time.Since(start).Round(time.Millisecond))
	return nil
}

// seed creates the users' lists and items with plain SQL, waits until
// change capture has recorded them (a snapshot reads the bucket edges it
// writes), and returns the ids of the items.
func (e *env) seed(ctx context.Context) ([]string, error) {
	run := fmt.Sprintf("ld%06x", time.Now().UnixNano()/1e6%0xffffff)
	e.users = make([]string, e.o.clients)
	for i := range e.users {
		e.users[i] = fmt.Sprintf("%s-%d", run, i)
	}
	e.logf("seed: %d users with %d lists and %d items each", len(e.users), e.o.lists, e.o.items)
	_, err := e.super.ExecContext(ctx, `
INSERT INTO lists (id, user_id, name)
SELECT gen_random_uuid(), u, 'list ' || l FROM unnest($1::text[]) AS u, generate_series(1, $2::int) AS l`, e.users, e.o.lists)
	if err != nil {
		return nil, fmt.Errorf("seeding lists: %w", err)
	}
	_, err = e.super.ExecContext(ctx, `
INSERT INTO items (id, list_id, title)
SELECT gen_random_uuid(), l.id, 'item ' || g
  FROM (SELECT id, user_id, row_number() OVER (PARTITION BY user_id ORDER BY id) - 1 AS k FROM lists WHERE user_id = ANY($1)) AS l,
       generate_series(0, $2::int - 1) AS g
 WHERE g % $3::int = l.k`, e.users, e.o.items, e.o.lists)
	if err != nil {
		return nil, fmt.Errorf("seeding items: %w", err)
	}
	items, err := ids(ctx, e.super, nil, `SELECT i.id::text FROM items i JOIN lists l ON l.id = i.list_id WHERE l.user_id = ANY($1)`, e.users)
	if err != nil {
		return nil, err
	}
	if _, err := e.catchUp(ctx, items[0]); err != nil {
		return nil, err
	}
	// Statistics of what the seed and its capture wrote, as autovacuum
	// would gather them within a minute or so: without them the planner
	// takes the bucket edges for empty and joins them by a filter.
	if _, err := e.super.ExecContext(ctx, `ANALYZE lists, items, synchro.bucket_edges, synchro.changelog`); err != nil {
		return nil, err
	}
	return items, nil
}

// clients makes a device for each user.
func (e *env) clients() []*client {
	out := make([]*client, len(e.users))
	for i, u := range e.users {
		out[i] = &client{user: u, id: "device-" + u, rng: rand.New(rand.NewPCG(e.o.seed, uint64(i))), seen: map[int64]struct{}{}}
	}
	return out
}

// bootstrap bootstraps every device at once.
func (e *env) bootstrap(ctx context.Context, clients []*client, d driver) Phase {
	return allAtOnce(clients, func(c *client, rec *recorder) {
		if err := d.bootstrap(ctx, c, rec); err != nil && ctx.Err() == nil {
			rec.fail(kindSnapshot, classify(err))
		}
	})
}

// allAtOnce runs do for every device at once, each in its goroutine with a
// recorder they share, and returns the phase from the start to the end of
// the last.
func allAtOnce(clients []*client, do func(*client, *recorder)) Phase {
	rec := newRecorder()
	start := time.Now()
	var wg sync.WaitGroup
	for _, c := range clients {
		wg.Go(func() { do(c, rec) })
	}
	wg.Wait()
	return rec.phase(time.Since(start))
}

// load runs the devices and the writer for d, printing a progress line
// every second; it records the highest capture lag in lagMax when not nil.
func (e *env) load(ctx context.Context, name string, clients []*client, drv driver, w *writer, d time.Duration, lagMax *int64) Phase {
	rec := newRecorder()
	runCtx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	start := time.Now()
	var wg sync.WaitGroup
	for _, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runClient(runCtx, c, drv, rec, e.o.pushRatio, e.o.think, e.o.wait > 0 && name == "sync")
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		w.run(runCtx)
	}()
	e.progress(runCtx, name, start, rec, w, lagMax)
	wg.Wait()
	elapsed := time.Since(start)
	e.endProgress()
	return rec.phase(elapsed)
}

// progress prints a line every second until ctx ends: on a terminal the
// same line, rewritten; elsewhere a line every 5 seconds.
func (e *env) progress(ctx context.Context, name string, start time.Time, rec *recorder, w *writer, lagMax *int64) {
	tty := isTerminal(e.log)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var last [3]int64
	for i := 1; ; i++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		lag, _ := e.lag(ctx)
		if lagMax != nil {
			*lagMax = max(*lagMax, lag)
		}
		var rate [3]int64
		for k := range rate {
			now := rec.ops[k].Load()
			rate[k], last[k] = now-last[k], now
		}
		written, _ := w.counts()
		line := fmt.Sprintf("%s %3.0fs: push %d/s, pull %d/s, writer %d, commit-to-pull p99 %.1f ms, capture lag %d B, errors %d",
			name, time.Since(start).Seconds(), rate[0], rate[1], written, ms(rec.c2pP99()), lag, rec.errs.Load())
		switch {
		case tty:
			fmt.Fprintf(e.log, "\r\033[K%s", line)
		case i%5 == 0:
			fmt.Fprintln(e.log, line)
		}
	}
}

// endProgress ends the rewritten progress line on a terminal.
func (e *env) endProgress() {
	if isTerminal(e.log) {
		fmt.Fprintln(e.log)
	}
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// lag returns the bytes of WAL that change capture has not processed: from
// the server's current position to the furthest of the slot's confirmed
// position and the position recorded with the changelog (the slot's is
// reported every few seconds only when nothing concerns the changelog).
func (e *env) lag(ctx context.Context) (int64, error) {
	var lag sql.NullInt64
	err := e.super.QueryRowContext(ctx, `
SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), greatest(s.confirmed_flush_lsn, p.confirmed_lsn))::bigint
  FROM pg_replication_slots s LEFT JOIN synchro.wal_position p ON p.slot_name = s.slot_name
 WHERE s.slot_name = $1`, e.o.slot).Scan(&lag)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("no replication slot %s (-slot)", e.o.slot)
	}
	return lag.Int64, err
}

// catchUp waits until change capture has recorded everything committed so
// far, at most two minutes, and returns how long that took. It commits a
// probe (a change of item probe) and waits for its changelog row: capture
// records transactions in commit order.
func (e *env) catchUp(ctx context.Context, probe string) (time.Duration, error) {
	start := time.Now()
	var seq int64
	if err := e.super.QueryRowContext(ctx, `SELECT coalesce(max(seq), 0) FROM synchro.changelog`).Scan(&seq); err != nil {
		return 0, err
	}
	if _, err := e.super.ExecContext(ctx, `UPDATE items SET title = 'probe' WHERE id = $1`, probe); err != nil {
		return 0, fmt.Errorf("writing the probe: %w", err)
	}
	for {
		var done bool
		err := e.super.QueryRowContext(ctx, `SELECT EXISTS (SELECT FROM synchro.changelog WHERE table_name = 'items' AND record_id = $1 AND seq > $2)`,
			probe, seq).Scan(&done)
		if err != nil {
			return 0, err
		}
		if done {
			return time.Since(start), nil
		}
		if time.Since(start) > 2*time.Minute {
			return 0, fmt.Errorf("change capture (slot %s) did not record a change within two minutes", e.o.slot)
		}
		pause(ctx, 5*time.Millisecond)
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
	}
}

// changelogRows counts the changelog's rows after seq.
func (e *env) changelogRows(ctx context.Context, after int64) (int64, error) {
	var n int64
	err := e.super.QueryRowContext(ctx, `SELECT count(*) FROM synchro.changelog WHERE seq > $1`, after).Scan(&n)
	return n, err
}

// maxSeq is the changelog's highest seq, 0 when empty.
func (e *env) maxSeq(ctx context.Context) (int64, error) {
	var n int64
	err := e.super.QueryRowContext(ctx, `SELECT coalesce(max(seq), 0) FROM synchro.changelog`).Scan(&n)
	return n, err
}

// xacts reads the number of transactions the database has run, after
// flushing this session's statistics (other sessions flush theirs within
// about a second when idle, every second when busy).
func (e *env) xacts(ctx context.Context) (int64, error) {
	var n int64
	err := e.super.QueryRowContext(ctx, `SELECT pg_stat_force_next_flush()`).Scan(new(any))
	if err == nil {
		err = e.super.QueryRowContext(ctx,
			`SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = current_database()`).Scan(&n)
	}
	if err != nil {
		return 0, fmt.Errorf("reading pg_stat_database: %w", err)
	}
	return n, nil
}
