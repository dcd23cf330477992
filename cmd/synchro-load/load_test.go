package main

import (
	"context"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

func TestParseFlags(t *testing.T) {
	o, err := parseFlags(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.clients != 50 || o.duration != 30*time.Second || o.refDuration != 15*time.Second || o.batch != 100 {
		t.Errorf("defaults: %+v", o)
	}
	o, err = parseFlags([]string{"-smoke", "-clients", "7"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.clients != 7 || o.duration != 3*time.Second || o.items != 100 {
		t.Errorf("-smoke with -clients 7: %+v", o)
	}
	for _, bad := range [][]string{
		{"-clients", "0"}, {"-batch", "1001"}, {"-pull-limit", "0"}, {"-push-ratio", "1.5"},
		{"-transport", "grpc"}, {"-server", "http://x"}, {"-items", "0"}, {"-think", "-1s"}, {"extra"},
		{"-transport", "client", "-wait", "1s"}, {"-catchup", "-1"}, {"-catchup", "10000001"}, {"-catchup", "x"},
	} {
		if _, err := parseFlags(bad, io.Discard); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestParseFlagsCatchUp(t *testing.T) {
	o, err := parseFlags(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.catchup != 0 {
		t.Errorf("catch-up by default: %d", o.catchup)
	}
	o, err = parseFlags([]string{"-catchup", "20000", "-clients", "4", "-pull-limit", "1000"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.catchup != 20000 || o.clients != 4 || o.pullLimit != 1000 || !o.reference {
		t.Errorf("-catchup 20000 -clients 4 -pull-limit 1000: %+v", o)
	}
	o, err = parseFlags([]string{"-smoke", "-catchup", "500"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.catchup != 500 || o.clients != 4 {
		t.Errorf("-smoke -catchup 500: %+v", o)
	}
}

// A catch-up run needs no push and no writer, but every written record on
// both sides.
func TestHealthyCatchUp(t *testing.T) {
	ok := func() *Report {
		return &Report{
			Setup:     Setup{Clients: 2, CatchUp: 100},
			Bootstrap: Phase{Kinds: map[string]KindStats{kindSnapshot: {Ops: 1}}},
			Sync:      Phase{Kinds: map[string]KindStats{kindPull: {Ops: 2, Records: 201}}},
			Raw:       &Phase{Kinds: map[string]KindStats{kindPull: {Ops: 2, Records: 200}}},
		}
	}
	if err := ok().healthy(); err != nil {
		t.Errorf("a healthy catch-up: %v", err)
	}
	r := ok()
	r.Sync.Kinds[kindPull] = KindStats{Ops: 2, Records: 199}
	if err := r.healthy(); err == nil || !strings.Contains(err.Error(), "pulled 199 records of 200") {
		t.Errorf("a short pull: %v", err)
	}
	r = ok()
	r.Raw.Kinds[kindPull] = KindStats{Ops: 1, Records: 100}
	if err := r.healthy(); err == nil || !strings.Contains(err.Error(), "raw reference read 100") {
		t.Errorf("a short raw read: %v", err)
	}
	r = ok()
	r.Raw.Errors = map[string]int64{"pull: timeout": 1}
	if err := r.healthy(); err == nil {
		t.Error("an error passed")
	}
}

func TestMarkers(t *testing.T) {
	for data, want := range map[string]int64{
		`{"id":"x","title":"sql:42","done":false}`: 42,
		`{"title":"sql:7"}`:                        7,
		`{"title":"push:dev:1"}`:                   -1,
		`{"title":"sql:x"}`:                        -1,
		`{"title":"sql:`:                           -1,
	} {
		n, ok := markerInJSON([]byte(data))
		if (want < 0) == ok || (ok && n != want) {
			t.Errorf("markerInJSON(%s) = %d, %v; want %d", data, n, ok, want)
		}
	}
	if n, ok := markerInTitle("sql:12"); !ok || n != 12 {
		t.Errorf("markerInTitle(sql:12) = %d, %v", n, ok)
	}
	if _, ok := markerInTitle("sql:"); ok {
		t.Error("markerInTitle(sql:) found a marker")
	}
}

func TestQuantile(t *testing.T) {
	var ds []time.Duration
	for i := 1; i <= 100; i++ {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	if q := quantile(ds, 0.5); q != 50*time.Millisecond {
		t.Errorf("p50 = %v", q)
	}
	if q := quantile(ds, 0.99); q != 99*time.Millisecond {
		t.Errorf("p99 = %v", q)
	}
	if q := quantile(nil, 0.99); q != 0 {
		t.Errorf("p99 of nothing = %v", q)
	}
}

// A batch never changes one item twice, and new items join the device's
// items.
func TestEditsDistinct(t *testing.T) {
	c := &client{id: "d", rng: rand.New(rand.NewPCG(1, 2)), lists: []string{"l1", "l2"}}
	for range 10 {
		c.items = append(c.items, newUUID(c.rng))
	}
	for range 20 {
		seen := map[string]bool{}
		before := len(c.items)
		creates := 0
		for _, e := range c.edits(30) {
			if seen[e.id] {
				t.Fatalf("item %s twice in one batch", e.id)
			}
			seen[e.id] = true
			if e.create {
				creates++
				if e.list == "" {
					t.Fatal("a new item without a list")
				}
			}
		}
		if len(c.items) != before+creates {
			t.Fatalf("%d items after %d creates, had %d", len(c.items), creates, before)
		}
	}
}

func TestHealthy(t *testing.T) {
	ok := func() *Report {
		return &Report{
			Setup:     Setup{WriteRate: 100},
			Bootstrap: Phase{Kinds: map[string]KindStats{kindSnapshot: {Ops: 1}}},
			Sync: Phase{Kinds: map[string]KindStats{kindPush: {Ops: 1}, kindPull: {Ops: 1}}, CommitToPull: Latency{Count: 1},
				Rejected: map[string]int64{"push: conflict/server_won_conflict": 3}},
		}
	}
	if err := ok().healthy(); err != nil {
		t.Errorf("a healthy run: %v", err)
	}
	r := ok()
	r.Sync.Rejected["push: rejected_terminal/ownership_violation"] = 1
	if err := r.healthy(); err == nil || !strings.Contains(err.Error(), "ownership_violation") {
		t.Errorf("a refused record: %v", err)
	}
	r = ok()
	r.Sync.Errors = map[string]int64{"pull: timeout": 1}
	if err := r.healthy(); err == nil {
		t.Error("an error passed")
	}
	r = ok()
	r.Sync.CommitToPull.Count = 0
	if err := r.healthy(); err == nil {
		t.Error("no delivery of the writer's changes passed")
	}
}

// deadlineOnly has a deadline but is never done, as a timer context is for
// the moment between its deadline and its timer's cancel.
type deadlineOnly struct {
	context.Context
	d time.Time
}

func (c deadlineOnly) Deadline() (time.Time, bool) { return c.d, true }

func TestRunOver(t *testing.T) {
	bg := context.Background()
	if runOver(bg) {
		t.Error("a context without deadline, not done: over")
	}
	if runOver(deadlineOnly{bg, time.Now().Add(time.Hour)}) {
		t.Error("deadline ahead: over")
	}
	if !runOver(deadlineOnly{bg, time.Now().Add(-time.Millisecond)}) {
		t.Error("deadline passed, context not yet done: not over")
	}
	done, cancel := context.WithCancel(bg)
	cancel()
	if !runOver(done) {
		t.Error("a done context: not over")
	}
}
