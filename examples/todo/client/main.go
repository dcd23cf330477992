// Command client is the scripted demo client of the example server
// examples/todo: five devices, each with its own local SQLite file, sync
// through the server's HTTP API and print a transcript.
//
//	cd examples/todo                         # a module of its own
//	go run . &                               # the server, on 127.0.0.1:8080
//	go run ./client                          # the demo against it
//
// make demo runs both. The script: two devices of alice and one of bob
// register and bootstrap from a snapshot; alice writes offline on both of her
// devices and syncs (push, then pull until nothing more), and the changes
// arrive on the other device; both of her devices edit the same item offline,
// and the server resolves the conflict by last write wins: a row's version
// is the edit time of the write that made it (the client_updated_at of the
// push that won, capped at the server's clock), and an edit wins when it
// was made on the row's version (its base_updated_at) or later than it.
// Each push of a conflict scene is explained from what went over the wire
// (lww.go), and checked against that rule. A third device of alice, alice-sdk
// (sdkdevice.go), speaks exactly the wire of the original Swift and Kotlin
// SDKs, in Kotlin's shape: JSON maps rather than our request types, explicit
// nulls, whole rows, change capture by SQLite triggers built from the
// schema contract; it creates, updates and deletes items and loses a
// conflict to the laptop. bob has a tablet and bob-sdk, the same SDK device
// in Swift's shape (null fields left out of its requests): bob-sdk receives
// the tablet's list, adds to it, makes a list of its own, renames and
// deletes items and wins a conflict with the tablet. bob sees none of
// alice's rows and cannot change them. At the end each user's devices must
// hold the same rows, equal to what a fresh device of that user gets from
// the server (the SDK devices without created_at, see compare); the client
// exits with status 1 when they differ or anything fails. Last, it prints
// the server's readiness answer (GET /readyz), which says whether change
// capture streams and keeps up, and a summary of the server's metrics (GET
// /metrics, metrics.go): what the engine and change capture counted of the
// demo.
//
// The other devices (laptop, phone, tablet; device.go) are built on
// package github.com/synchrosync/synchro/client: each is a client.Open on
// its own SQLite file, which the package fills from the server's schema
// contract and a snapshot. The devices write their tables with plain SQL
// (the package's triggers queue the changes), sync with Client.Sync, learn
// what arrived and what the server refused from the client's events
// (Config.OnEvent) and local queries, and the phone waits for changes
// live with Client.Run. The files live in a temporary directory removed at
// exit, unless -dir names one.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/synchrosync/synchro"
	"github.com/synchrosync/synchro/client"
)

func main() {
	server := flag.String("server", "http://127.0.0.1:8080", "base `URL` of the example server")
	dir := flag.String("dir", "", "`directory` for the devices' SQLite files, kept after the run (replaced by the next); default: a temporary directory, removed at exit")
	wait := flag.Duration("wait", 30*time.Second, "how long to wait for the server to answer")
	timeout := flag.Duration("timeout", 45*time.Second, "bound of the whole run")
	flag.Parse()
	if flag.NArg() > 0 {
		flag.Usage()
		os.Exit(2)
	}

	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	if err := run(ctx, os.Stdout, *server, *dir, *wait); err != nil {
		fmt.Fprintf(os.Stderr, "demo FAILED: %v\n", err)
		cancel()
		os.Exit(1)
	}
}

// transcript prints one line per event, after the name of the device (or
// of whatever else speaks).
type transcript struct {
	w     io.Writer
	start time.Time
}

func (t *transcript) say(who, format string, args ...any) {
	fmt.Fprintf(t.w, "%5.2fs  %-12s  %s\n", time.Since(t.start).Seconds(), who, fmt.Sprintf(format, args...))
}

// more prints lines that continue the event said last, indented under its
// text.
func (t *transcript) more(lines ...string) {
	for _, line := range lines {
		fmt.Fprintf(t.w, "%22s  %s\n", "", line)
	}
}

// run plays the demo against the server at base.
func run(ctx context.Context, w io.Writer, base, dir string, wait time.Duration) (err error) {
	out := &transcript{w: w, start: time.Now()}
	a := newAPI(base)
	schema, err := waitForServer(ctx, a, wait)
	if err != nil {
		return err
	}
	names := make([]string, len(schema.Tables))
	for i, t := range schema.Tables {
		names[i] = t.TableName
	}
	out.say("server", "%s answers: schema version %d, tables %s", base, schema.SchemaVersion, strings.Join(names, ", "))

	if dir == "" {
		if dir, err = os.MkdirTemp("", "synchro-todo-client-*"); err != nil {
			return err
		}
		defer func() { err = errors.Join(err, os.RemoveAll(dir)) }()
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}

	s := &scenario{out: out, api: a, schema: schema, base: base, dir: dir,
		expect: map[string]map[recordKey]version{}, contests: map[recordKey]*contest{}}
	defer func() {
		for _, d := range s.members {
			err = errors.Join(err, d.close())
		}
	}()
	if err := s.play(ctx); err != nil {
		return err
	}
	if err := readiness(ctx, a, out); err != nil {
		return err
	}
	return metrics(ctx, a, out)
}

// readiness prints the server's readiness answer (GET /readyz: whether
// change capture streams and keeps up, see synchrohttp.Health) as it comes,
// and fails unless it is 200: the server's consumer streams all along.
func readiness(ctx context.Context, a *api, out *transcript) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.base+"/readyz", nil)
	if err != nil {
		return err
	}
	resp, err := a.http.Do(req)
	if err != nil {
		return fmt.Errorf("GET /readyz: %w", err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return fmt.Errorf("GET /readyz: reading the response: %w", err)
	}
	out.say("server", "GET /readyz: %s %s", resp.Status, bytes.TrimSpace(body))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET /readyz: %s, want 200 OK: change capture does not keep up", resp.Status)
	}
	return nil
}

// waitForServer polls the schema endpoint until the server answers, for at
// most wait.
func waitForServer(ctx context.Context, a *api, wait time.Duration) (*synchro.SchemaResponse, error) {
	deadline := time.Now().Add(wait)
	for {
		var schema synchro.SchemaResponse
		err := a.call(ctx, "demo", "GET", "/sync/schema", nil, &schema)
		if err == nil {
			return &schema, nil
		}
		var apiErr *apiError
		if errors.As(err, &apiErr) || time.Now().After(deadline) {
			return nil, fmt.Errorf("the server at %s does not answer: %w", a.base, err)
		}
		if err := sleep(ctx, 100*time.Millisecond); err != nil {
			return nil, err
		}
	}
}

// scenario is the state of the demo.
type scenario struct {
	out    *transcript
	api    *api
	schema *synchro.SchemaResponse // the server's contract, as the demo began
	base   string
	dir    string
	// members are the devices that joined, of either kind.
	members []member
	// expect holds, per user, the version of every record the server
	// accepted from the user's devices: what each of the user's devices
	// must eventually receive.
	expect map[string]map[recordKey]version
	// contests are the records of the conflict scenes, whose pushes the
	// transcript explains (lww.go); ruleStated whether it stated the rule.
	contests   map[recordKey]*contest
	ruleStated bool
}

// member is a device of either kind, as the scenario drives it: a device
// (device.go: package client) or an sdkDevice (sdkdevice.go: the original
// SDKs' JSON maps, triggers).
type member interface {
	id() ident
	// register builds the local tables from the schema contract and
	// registers the device.
	register(ctx context.Context) error
	// bootstrap fills the local tables from a snapshot and returns the
	// records per table.
	bootstrap(ctx context.Context) (map[string]int, error)
	tableNames() []string
	// rows returns every local row of a table, in key order.
	rows(ctx context.Context, table string) ([]localRow, error)
	// queued returns the number of local writes waiting for a push.
	queued(ctx context.Context) (int, error)
	// waitFor syncs until every record of want has arrived and returns
	// what changed locally meanwhile.
	waitFor(ctx context.Context, want map[recordKey]version) ([]arrival, error)
	// rowLabel names the local row of a record; false when there is none.
	rowLabel(ctx context.Context, table, id string) (string, bool)
	// dump lists the local rows the app shows, one line per row ("table
	// id col=value ...", sorted), without the column skip.
	dump(ctx context.Context, skip string) ([]string, error)
	words() wording
	close() error
}

// wording is how the transcript tells what a kind of device does, and the
// column its rows are compared without.
type wording struct {
	joined   string // after "registered as user U"
	queued   string // after the number of local writes not pushed yet
	upToDate string // a pull that changed nothing
	aside    string // the column compare leaves out, if any
}

// play runs the script.
func (s *scenario) play(ctx context.Context) error {
	laptop, err := s.joinDevice(ctx, "alice-laptop", "alice")
	if err != nil {
		return err
	}
	phone, err := s.joinDevice(ctx, "alice-phone", "alice")
	if err != nil {
		return err
	}
	tablet, err := s.joinDevice(ctx, "bob-tablet", "bob")
	if err != nil {
		return err
	}
	android, err := s.joinSDK(ctx, "alice-sdk", "alice", kotlinShape)
	if err != nil {
		return err
	}
	ios, err := s.joinSDK(ctx, "bob-sdk", "bob", swiftShape)
	if err != nil {
		return err
	}

	// 1. The laptop creates a list offline; the phone receives it.
	var list, milk, bread, eggs string
	err = s.offline(ctx, laptop, `creates list "Groceries" with items "Milk" and "Bread" (high priority)`, func() error {
		var err error
		if list, err = laptop.create(ctx, "lists", map[string]any{"user_id": "alice", "name": "Groceries"}); err != nil {
			return err
		}
		if milk, err = laptop.create(ctx, "items", map[string]any{"list_id": list, "title": "Milk"}); err != nil {
			return err
		}
		bread, err = laptop.create(ctx, "items", map[string]any{"list_id": list, "title": "Bread", "priority_id": "high"})
		return err
	})
	if err != nil {
		return err
	}
	if err := s.push(ctx, laptop); err != nil {
		return err
	}
	if err := s.receive(ctx, phone, android); err != nil {
		return err
	}

	// 2. Both of alice's devices write offline, then sync.
	err = s.offline(ctx, phone, `checks "Milk" off and adds "Eggs"`, func() error {
		if err := phone.update(ctx, "items", milk, map[string]any{"done": true}); err != nil {
			return err
		}
		var err error
		eggs, err = phone.create(ctx, "items", map[string]any{"list_id": list, "title": "Eggs"})
		return err
	})
	if err != nil {
		return err
	}
	err = s.offline(ctx, laptop, `renames "Bread" to "Sourdough bread"`, func() error {
		return laptop.update(ctx, "items", bread, map[string]any{"title": "Sourdough bread"})
	})
	if err != nil {
		return err
	}
	if err := s.push(ctx, phone, laptop); err != nil {
		return err
	}
	if err := s.receive(ctx, laptop, phone); err != nil {
		return err
	}

	// 3. A conflict: both edit the same item offline, the phone a moment
	// after the laptop; the laptop pushes first.
	milkKey := recordKey{"items", milk}
	milkContest := s.watch(milkKey, `"Milk"`)
	err = s.offline(ctx, laptop, `renames "Milk" to "Oat milk"`, func() error {
		return laptop.update(ctx, "items", milk, map[string]any{"title": "Oat milk"})
	})
	if err != nil {
		return err
	}
	if err := sleep(ctx, 20*time.Millisecond); err != nil {
		return err
	}
	err = s.offline(ctx, phone, `renames "Milk" to "Almond milk" (a moment later)`, func() error {
		return phone.update(ctx, "items", milk, map[string]any{"title": "Almond milk"})
	})
	if err != nil {
		return err
	}
	if err := s.push(ctx, laptop, phone); err != nil {
		return err
	}
	if err := s.receive(ctx, laptop, phone); err != nil {
		return err
	}
	var shown string
	for _, d := range []*device{laptop, phone} {
		row, err := d.row(ctx, "items", milk)
		if err != nil {
			return err
		}
		shown = label(d.tables["items"], row)
		s.out.say(d.name, "shows %q", shown)
	}
	if err := s.decide(milkContest, s.expect["alice"][milkKey].updatedAt, shown); err != nil {
		return err
	}

	// 4. A delete travels too.
	err = s.offline(ctx, phone, `deletes "Eggs"`, func() error {
		return phone.remove(ctx, "items", eggs)
	})
	if err != nil {
		return err
	}
	if err := s.push(ctx, phone); err != nil {
		return err
	}
	if err := s.receive(ctx, laptop); err != nil {
		return err
	}

	// 5. Live sync: the phone waits for changes; the laptop's next push
	// reaches it at once.
	if err := s.liveScene(ctx, phone, laptop, list); err != nil {
		return err
	}

	// 5b. The SDK-shaped device writes its local tables with plain SQL
	// (its triggers queue the changes), then syncs: push whole rows, pull.
	if err := s.sdkScene(ctx, android, laptop, phone, list); err != nil {
		return err
	}

	// 6. Bob: his own lists, shared by his two devices, none of alice's
	// rows, no way to change them.
	var chores string
	err = s.offline(ctx, tablet, `creates list "Chores" with item "Vacuum"`, func() error {
		var err error
		chores, err = tablet.create(ctx, "lists", map[string]any{"user_id": "bob", "name": "Chores"})
		if err != nil {
			return err
		}
		_, err = tablet.create(ctx, "items", map[string]any{"list_id": chores, "title": "Vacuum"})
		return err
	})
	if err != nil {
		return err
	}
	if err := s.push(ctx, tablet); err != nil {
		return err
	}
	if err := s.receive(ctx, tablet, ios); err != nil {
		return err
	}
	if err := s.bobScene(ctx, ios, tablet, chores); err != nil {
		return err
	}
	for _, d := range []member{tablet, ios} {
		if err := s.checkHoldings(ctx, d, "bob"); err != nil {
			return err
		}
	}
	if err := s.checkForeignWrite(ctx, tablet, milk); err != nil {
		return err
	}

	// 7. Everything settled: each user's devices must be equal, to each
	// other and to the server's view.
	if err := s.compare(ctx, laptop, phone, android); err != nil {
		return err
	}
	return s.compare(ctx, tablet, ios)
}

// joinDevice creates a device, registers it and bootstraps it from a
// snapshot.
func (s *scenario) joinDevice(ctx context.Context, name, user string) (*device, error) {
	d, err := newDevice(ctx, s.base, s.dir, name, user)
	if err != nil {
		return nil, err
	}
	return d, s.join(ctx, d)
}

// join registers d, of either kind, and bootstraps it from a snapshot.
func (s *scenario) join(ctx context.Context, d member) error {
	s.members = append(s.members, d)
	name, user := d.id().name, d.id().user
	if err := d.register(ctx); err != nil {
		return fmt.Errorf("%s: registering: %w", name, err)
	}
	counts, err := d.bootstrap(ctx)
	if err != nil {
		return fmt.Errorf("%s: snapshot: %w", name, err)
	}
	s.out.say(name, "registered as user %s%s; snapshot: %s", user, d.words().joined, countText(counts, d.tableNames()))
	return nil
}

// offline makes local writes on d, which stay queued on it until it
// pushes.
func (s *scenario) offline(ctx context.Context, d member, what string, writes func() error) error {
	name := d.id().name
	if err := writes(); err != nil {
		return fmt.Errorf("%s: writing offline: %w", name, err)
	}
	n, err := d.queued(ctx)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	s.out.say(name, "offline: %s (%d %s)", what, n, d.words().queued)
	return nil
}

// push syncs each device, which pushes its local changes (and pulls), and
// prints the outcomes, then what the pull changed, if anything.
func (s *scenario) push(ctx context.Context, devices ...*device) error {
	for _, d := range devices {
		outcomes, arrivals, err := d.push(ctx)
		if err != nil {
			return fmt.Errorf("%s: push: %w", d.name, err)
		}
		if err := s.settle(ctx, d, outcomes); err != nil {
			return err
		}
		s.sayArrivals(d.name, arrivals)
	}
	return nil
}

// settle prints the outcome of each record d pushed, and explains those of
// a conflict scene by last write wins (lww.go); what the server accepted
// becomes what the user's devices must receive. It fails when the
// server's answer contradicts the rule.
func (s *scenario) settle(ctx context.Context, d member, outcomes []pushOutcome) error {
	name, user := d.id().name, d.id().user
	want := s.expect[user]
	if want == nil {
		want = map[recordKey]version{}
		s.expect[user] = want
	}
	// The lines explaining an applied record follow the line of the
	// applied ones, those of any other its own line.
	var applied, explained []string
	for _, o := range outcomes {
		var lines []string
		if c := s.contests[o.key]; c != nil {
			current, ok := want[o.key]
			if !ok || current.deleted {
				return fmt.Errorf("%s: %s: no version of the row known", name, c.what)
			}
			var err error
			if lines, err = c.explain(name, o, current.updatedAt); err != nil {
				return err
			}
		}
		what := o.op + " " + noun(o.key.table, 1)
		if o.label != "" {
			what += fmt.Sprintf(" %q", o.label)
		}
		switch o.status {
		case synchro.PushStatusApplied:
			applied = append(applied, o.op+" "+noun(o.key.table, 1))
			explained = append(explained, lines...)
			if o.accepted != nil {
				want[o.key] = *o.accepted
			}
		case synchro.PushStatusConflict:
			kept := ""
			if o.showKept {
				if l, ok := d.rowLabel(ctx, o.key.table, o.key.id); ok {
					kept = fmt.Sprintf("; the server kept %q, now on this device too", l)
				}
			}
			s.out.say(name, "push: %s is a conflict (%s: %s)%s", what, o.reason, o.message, kept)
			s.out.more(lines...)
		default:
			s.out.say(name, "push: %s %s (%s: %s)", what, o.status, o.reason, o.message)
			s.out.more(lines...)
		}
	}
	if len(applied) > 0 {
		s.out.say(name, "push: %d applied (%s)", len(applied), strings.Join(applied, ", "))
	}
	s.out.more(explained...)
	return nil
}

// receive syncs each device until everything the server accepted from its
// user has arrived, and prints what changed locally.
func (s *scenario) receive(ctx context.Context, devices ...member) error {
	for _, d := range devices {
		arrivals, err := d.waitFor(ctx, s.expect[d.id().user])
		if err != nil {
			return err
		}
		if len(arrivals) == 0 {
			s.out.say(d.id().name, "pull: %s", d.words().upToDate)
			continue
		}
		s.sayArrivals(d.id().name, arrivals)
	}
	return nil
}

// sayArrivals prints what a pull changed on the device name, if anything.
func (s *scenario) sayArrivals(name string, arrivals []arrival) {
	if len(arrivals) == 0 {
		return
	}
	texts := make([]string, len(arrivals))
	for i, a := range arrivals {
		texts[i] = a.String()
	}
	s.out.say(name, "pull: %s", strings.Join(texts, "; "))
}

// checkHoldings shows that d (of user), once it has received everything
// of user, holds no row of another user.
func (s *scenario) checkHoldings(ctx context.Context, d member, user string) error {
	name := d.id().name
	if _, err := d.waitFor(ctx, s.expect[user]); err != nil {
		return err
	}
	lists, err := d.rows(ctx, "lists")
	if err != nil {
		return err
	}
	own := map[string]bool{}
	for _, l := range lists {
		if l["user_id"] != user {
			return fmt.Errorf("%s holds list %v of user %v", name, l["id"], l["user_id"])
		}
		own[fmt.Sprint(l["id"])] = true
	}
	items, err := d.rows(ctx, "items")
	if err != nil {
		return err
	}
	for _, it := range items {
		if !own[fmt.Sprint(it["list_id"])] {
			return fmt.Errorf("%s holds item %v of another user's list", name, it["id"])
		}
	}
	priorities, err := d.rows(ctx, "priorities")
	if err != nil {
		return err
	}
	s.out.say(name, "holds %s and %s, all his own, and the %s everybody shares: nothing of alice's",
		count(len(lists), "lists"), count(len(items), "items"), count(len(priorities), "priorities"))
	return nil
}

// checkForeignWrite shows that the server refuses d's attempt to change
// another user's item.
func (s *scenario) checkForeignWrite(ctx context.Context, d *device, foreignItem string) error {
	// Knowing the id of alice's item is not enough to change it. The
	// device's client would never send this (it pushes only changes of
	// its own rows): the request is made by hand, with its client id.
	var resp synchro.PushResponse
	err := s.api.call(ctx, d.user, "POST", "/sync/push", &synchro.PushRequest{
		ClientID: d.c.ClientID(),
		Changes: []synchro.PushRecord{{
			ID: foreignItem, TableName: "items", Operation: "update",
			Data: []byte(`{"title":"Hacked"}`), ClientUpdatedAt: time.Now().UTC(),
		}},
		SchemaVersion: s.schema.SchemaVersion,
		SchemaHash:    s.schema.SchemaHash,
	}, &resp)
	if err != nil {
		return fmt.Errorf("%s: push: %w", d.name, err)
	}
	if len(resp.Rejected) != 1 || len(resp.Accepted) != 0 {
		return fmt.Errorf("%s: an update of alice's item was not rejected: %+v", d.name, resp)
	}
	r := resp.Rejected[0]
	s.out.say(d.name, "push: an update of alice's item, by its id: %s (%s: %s)", r.Status, r.ReasonCode, r.Message)
	return nil
}

// compare waits until the devices (of one user) have received everything
// and pushed all their writes, bootstraps a fresh device of the same user
// as the server's view, and checks that all of them hold the same rows
// (each without its kind's aside column).
func (s *scenario) compare(ctx context.Context, devices ...member) error {
	user := devices[0].id().user
	for _, d := range devices {
		if _, err := d.waitFor(ctx, s.expect[user]); err != nil {
			return err
		}
		n, err := d.queued(ctx)
		if err != nil {
			return err
		}
		if n != 0 {
			return fmt.Errorf("%s still has %d writes %s", d.id().name, n, d.words().queued)
		}
	}
	fresh, err := s.joinDevice(ctx, user+"-check", user)
	if err != nil {
		return err
	}
	if _, _, err := fresh.sync(ctx); err != nil {
		return err
	}

	failed := false
	var names []string
	for _, d := range devices {
		aside, note := d.words().aside, ""
		if aside != "" {
			note = " (" + aside + " aside)"
		}
		names = append(names, d.id().name+note)
		want, err := fresh.dump(ctx, aside)
		if err != nil {
			return err
		}
		got, err := d.dump(ctx, aside)
		if err != nil {
			return err
		}
		if diff := diffLines(got, want); len(diff) > 0 {
			failed = true
			s.out.say(d.id().name, "DIFFERS from the server's view%s:", note)
			for _, line := range diff {
				fmt.Fprintln(s.out.w, "        "+line)
			}
		}
	}
	if failed {
		return errors.New("the final states differ")
	}
	ref, err := fresh.dump(ctx, "")
	if err != nil {
		return err
	}
	counts := map[string]int{}
	for _, line := range ref {
		counts[strings.SplitN(line, " ", 2)[0]]++
	}
	s.out.say("final", "%s and a fresh snapshot of %s hold the same %d rows (%s): in sync",
		strings.Join(names, ", "), user, len(ref), countText(counts, slices.Sorted(maps.Keys(counts))))
	return nil
}

// diffLines lists the lines only in got ("+") or only in want ("-").
func diffLines(got, want []string) []string {
	in := func(lines []string) map[string]bool {
		m := map[string]bool{}
		for _, l := range lines {
			m[l] = true
		}
		return m
	}
	g, w := in(got), in(want)
	var diff []string
	for _, l := range got {
		if !w[l] {
			diff = append(diff, "+ "+l)
		}
	}
	for _, l := range want {
		if !g[l] {
			diff = append(diff, "- "+l)
		}
	}
	return diff
}

// countText renders counts per table: "3 priorities, 1 list".
func countText(counts map[string]int, tables []string) string {
	parts := make([]string, len(tables))
	for i, t := range tables {
		parts[i] = count(counts[t], t)
	}
	return strings.Join(parts, ", ")
}

// count renders n rows of a table: "1 list", "2 lists", "1 priority".
func count(n int, table string) string {
	return fmt.Sprintf("%d %s", n, noun(table, n))
}

// noun is the name of n rows of table: the table's name for n != 1, else
// its singular.
func noun(table string, n int) string {
	if n == 1 {
		if s, ok := strings.CutSuffix(table, "ies"); ok {
			return s + "y"
		}
		return strings.TrimSuffix(table, "s")
	}
	return table
}

// liveScene shows live sync: listener, up to date, runs its client's
// background loop (Client.Run), which between rounds waits for a change
// with a long-poll pull (POST /sync/pull?wait=10), while writer adds an
// item to list and pushes; the change reaches listener as soon as change
// capture has written it, without polling: the client reports it with an
// EventReceived.
func (s *scenario) liveScene(ctx context.Context, listener, writer *device, list string) error {
	if err := s.receive(ctx, listener); err != nil {
		return err
	}
	before, err := listener.allRows(ctx)
	if err != nil {
		return err
	}
	events := make(chan client.Event, 64)
	listener.mu.Lock()
	listener.live = events
	listener.mu.Unlock()
	listener.takeEvents()
	runCtx, stop := context.WithCancel(ctx)
	ran := make(chan error, 1)
	go func() { ran <- listener.c.Run(runCtx) }()
	stopRun := sync.OnceValue(func() error {
		stop()
		err := <-ran
		listener.mu.Lock()
		listener.live = nil
		listener.mu.Unlock()
		return err
	})
	defer func() { _ = stopRun() }()

	// Run's first round (push, pull) ends idle; then it waits.
	if _, err := nextEvent(ctx, events, func(ev client.Event) bool {
		return ev.Kind == client.EventState && ev.Status.State == client.StateIdle
	}); err != nil {
		return fmt.Errorf("%s: Run: %w", listener.name, err)
	}
	s.out.say(listener.name, "runs its client (client.Run), which waits for changes (POST /sync/pull?wait=10: the server holds the request until one comes)")
	if err := sleep(ctx, 300*time.Millisecond); err != nil { // the request is waiting
		return err
	}
	err = s.offline(ctx, writer, `adds "Coffee"`, func() error {
		_, err := writer.create(ctx, "items", map[string]any{"list_id": list, "title": "Coffee"})
		return err
	})
	if err != nil {
		return err
	}
	if err := s.push(ctx, writer); err != nil {
		return err
	}
	writer.mu.Lock()
	pushed := writer.pushAnswered
	writer.mu.Unlock()
	heard, err := nextEvent(ctx, events, func(ev client.Event) bool {
		return ev.Kind == client.EventReceived && ev.Tables["items"] > 0
	})
	if err != nil {
		return fmt.Errorf("%s: no change arrived: %w", listener.name, err)
	}
	_, arrivals, err := listener.settle(ctx, nil, before, listener.takeEvents())
	if err != nil {
		return err
	}
	s.out.say(listener.name, "hears of it live (an event: %s), %d ms after the push was answered:",
		received(heard.Tables), max(heard.at.Sub(pushed).Milliseconds(), 0))
	s.sayArrivals(listener.name, arrivals)
	if err := stopRun(); err != nil {
		return fmt.Errorf("%s: Run: %w", listener.name, err)
	}
	return s.receive(ctx, listener)
}

// heardEvent is an event and when it came.
type heardEvent struct {
	client.Event
	at time.Time
}

// nextEvent waits for the next event of events that match accepts, for at
// most arrivalTimeout.
func nextEvent(ctx context.Context, events <-chan client.Event, match func(client.Event) bool) (heardEvent, error) {
	timer := time.NewTimer(arrivalTimeout)
	defer timer.Stop()
	for {
		select {
		case ev := <-events:
			if match(ev) {
				return heardEvent{ev, time.Now()}, nil
			}
		case <-timer.C:
			return heardEvent{}, fmt.Errorf("nothing within %v", arrivalTimeout)
		case <-ctx.Done():
			return heardEvent{}, ctx.Err()
		}
	}
}

// received renders the counts of an EventReceived: "1 item".
func received(tables map[string]int) string {
	return countText(tables, slices.Sorted(maps.Keys(tables)))
}
