package main

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/synchrosync/synchro"
	"github.com/synchrosync/synchro/client"
)

// This file is the plain Go device: an installation of the app built on
// package github.com/synchrosync/synchro/client. The package keeps the
// local SQLite file in sync (tables from the schema contract, triggers
// that queue the app's writes, snapshot, push, pull, conflicts); the
// device writes its tables with plain SQL, syncs with Client.Sync (or
// Client.Run for live sync) and learns what happened from the client's
// events and from local queries.

// Sync parameters of a device.
const (
	// arrivalTimeout bounds the wait for changes to reach a device: the
	// changelog is written by the server's change capture, shortly after
	// the push that made the change.
	arrivalTimeout = 10 * time.Second
	// pollInterval is the pause between syncs while waiting.
	pollInterval = 50 * time.Millisecond
	// liveWait is how long Run's pulls ask the server to wait for a
	// change (POST /sync/pull?wait=10).
	liveWait = 10 * time.Second
	// appVersion is the version the devices register with.
	appVersion = "1.0.0"
)

// device is one installation of the app: a user and a client of package
// client on its own SQLite file.
type device struct {
	ident
	c      *client.Client
	tables map[string]*synchro.SchemaTable // after the first Sync

	mu sync.Mutex
	// events are the client's events since the last take.
	events []client.Event
	// live, when set, receives a copy of each event (liveScene).
	live chan client.Event
	// pushAnswered is when the last answer to a push arrived (seen by
	// the device's http.RoundTripper).
	pushAnswered time.Time
	// pushes are the pushes since the last take, as they went over the
	// wire (seen by the device's http.RoundTripper).
	pushes []pushExchange
}

// pushExchange is one push of a device as it went over the wire: what the
// device's client sent and what the server answered.
type pushExchange struct {
	req  synchro.PushRequest
	resp synchro.PushResponse
}

// newDevice opens a client on a new SQLite file in dir, replacing one a
// previous run left (every run registers new devices), with a new client
// id. It does not reach the server yet.
func newDevice(ctx context.Context, base, dir, name, user string) (*device, error) {
	path, err := freshFile(dir, name)
	if err != nil {
		return nil, err
	}
	d := &device{ident: ident{name: name, user: user, clientID: name + "-" + randomHex(4)}}
	d.c, err = client.Open(ctx, client.Config{
		ServerURL: base,
		Path:      path,
		// The demo server's authentication: the bearer token is the
		// user name (see todoapp/auth.go). A real app returns a real
		// token.
		Token:      func(context.Context) (string, error) { return user, nil },
		HTTPClient: &http.Client{Transport: pushClock{d}},
		ClientID:   d.clientID,
		ClientName: name,
		Platform:   "demo",
		AppVersion: appVersion,
		PullWait:   liveWait,
		OnEvent:    d.onEvent,
	})
	if err != nil {
		return nil, err
	}
	return d, nil
}

// freshFile returns the path of the SQLite file of device name in dir,
// removing one a previous run left.
func freshFile(dir, name string) (string, error) {
	path := filepath.Join(dir, name+".db")
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return "", err
		}
	}
	return path, nil
}

// pushClock is the device's http.RoundTripper: it notes when the answer
// to a push arrives, for the latency the live scene shows, and keeps each
// push's request and answer (pushExchange), for the transcript to tell
// what was sent and what the server answered.
type pushClock struct{ d *device }

func (p pushClock) RoundTrip(req *http.Request) (*http.Response, error) {
	if !strings.HasSuffix(req.URL.Path, "/sync/push") {
		return http.DefaultTransport.RoundTrip(req)
	}
	var x pushExchange
	if req.GetBody != nil { // set by http.NewRequest for the client's bytes.Reader
		body, err := req.GetBody()
		if err != nil {
			return nil, err
		}
		err = json.NewDecoder(body).Decode(&x.req)
		_ = body.Close()
		if err != nil {
			return nil, fmt.Errorf("reading the push request: %w", err)
		}
	}
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	answered := time.Now()
	if resp.StatusCode == http.StatusOK {
		body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
		_ = resp.Body.Close()
		if err != nil {
			return nil, err
		}
		resp.Body = io.NopCloser(bytes.NewReader(body))
		if err := json.Unmarshal(body, &x.resp); err != nil {
			return nil, fmt.Errorf("reading the push answer: %w", err)
		}
	}
	p.d.mu.Lock()
	p.d.pushAnswered = answered
	if resp.StatusCode == http.StatusOK {
		p.d.pushes = append(p.d.pushes, x)
	}
	p.d.mu.Unlock()
	return resp, nil
}

// takePushes returns the pushes since the last take.
func (d *device) takePushes() []pushExchange {
	d.mu.Lock()
	defer d.mu.Unlock()
	xs := d.pushes
	d.pushes = nil
	return xs
}

// onEvent is the client's Config.OnEvent.
func (d *device) onEvent(ev client.Event) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.events = append(d.events, ev)
	if d.live != nil {
		select {
		case d.live <- ev:
		default:
		}
	}
}

// takeEvents returns the events since the last take.
func (d *device) takeEvents() []client.Event {
	d.mu.Lock()
	defer d.mu.Unlock()
	evs := d.events
	d.events = nil
	return evs
}

func (d *device) close() error { return d.c.Close() }

// register makes the client's first round: it reads the schema contract,
// creates the local tables from it, registers the device and fills the
// tables from a snapshot.
func (d *device) register(ctx context.Context) error {
	if err := d.c.Sync(ctx); err != nil {
		return err
	}
	d.takeEvents()
	d.tables = map[string]*synchro.SchemaTable{}
	for _, t := range d.c.Tables() {
		d.tables[t.TableName] = &t
	}
	return nil
}

// bootstrap counts the rows the snapshot of register brought, per table.
func (d *device) bootstrap(ctx context.Context) (map[string]int, error) {
	counts := map[string]int{}
	for name := range d.tables {
		var n int
		if err := d.c.DB().QueryRowContext(ctx, "SELECT count(*) FROM "+quoteIdent(name)).Scan(&n); err != nil {
			return nil, err
		}
		counts[name] = n
	}
	return counts, nil
}

// Local writes, made offline: plain SQL on the client's database, whose
// triggers queue each change for the next push.

// create inserts a new record with a new id.
func (d *device) create(ctx context.Context, table string, fields map[string]any) (string, error) {
	t := d.tables[table]
	if t == nil {
		return "", fmt.Errorf("no table %q", table)
	}
	id := newUUID()
	cols, marks, args := []string{quoteIdent(t.PrimaryKey[0])}, []string{"?"}, []any{id}
	for _, name := range slices.Sorted(maps.Keys(fields)) {
		cols, marks, args = append(cols, quoteIdent(name)), append(marks, "?"), append(args, sqlValue(fields[name]))
	}
	_, err := d.c.DB().ExecContext(ctx, "INSERT INTO "+quoteIdent(table)+" ("+strings.Join(cols, ", ")+") VALUES ("+strings.Join(marks, ", ")+")", args...)
	return id, err
}

// update changes columns of a record.
func (d *device) update(ctx context.Context, table, id string, fields map[string]any) error {
	t := d.tables[table]
	if t == nil {
		return fmt.Errorf("no table %q", table)
	}
	var sets []string
	var args []any
	for _, name := range slices.Sorted(maps.Keys(fields)) {
		sets, args = append(sets, quoteIdent(name)+" = ?"), append(args, sqlValue(fields[name]))
	}
	res, err := d.c.DB().ExecContext(ctx, "UPDATE "+quoteIdent(table)+" SET "+strings.Join(sets, ", ")+" WHERE "+quoteIdent(t.PrimaryKey[0])+" = ?", append(args, id)...)
	return oneRow(res, err, table, id)
}

// remove deletes a record.
func (d *device) remove(ctx context.Context, table, id string) error {
	t := d.tables[table]
	if t == nil {
		return fmt.Errorf("no table %q", table)
	}
	res, err := d.c.DB().ExecContext(ctx, "DELETE FROM "+quoteIdent(table)+" WHERE "+quoteIdent(t.PrimaryKey[0])+" = ?", id)
	return oneRow(res, err, table, id)
}

// oneRow checks that a write changed a row.
func oneRow(res interface{ RowsAffected() (int64, error) }, err error, table, id string) error {
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return errors.Join(fmt.Errorf("%s %s does not exist locally", table, id), err)
	}
	return nil
}

// sqlValue is the SQLite value of a Go value of the demo's writes:
// booleans as 1 and 0.
func sqlValue(v any) any {
	if b, ok := v.(bool); ok {
		if b {
			return 1
		}
		return 0
	}
	return v
}

// sync makes one round of the client (push, then pull) and tells what
// happened: the outcome of each change it pushed, and what changed
// locally from the server. The client reports conflicts and rejections as
// events; a change that left the outbox without one was applied, and the
// row's updated-at is then the server's version of it.
func (d *device) sync(ctx context.Context) ([]pushOutcome, []arrival, error) {
	pending, err := d.c.Pending(ctx)
	if err != nil {
		return nil, nil, err
	}
	before, err := d.allRows(ctx)
	if err != nil {
		return nil, nil, err
	}
	d.takeEvents()
	d.takePushes()
	if err := d.c.Sync(ctx); err != nil {
		return nil, nil, err
	}
	return d.settle(ctx, pending, before, d.takeEvents())
}

// settle tells what a round (of Sync, or of Run) did, from the changes
// pending before it, the rows before it and its events.
func (d *device) settle(ctx context.Context, pending []client.Pending, before map[recordKey]localRow, evs []client.Event) ([]pushOutcome, []arrival, error) {
	rejected := map[recordKey]*client.Rejection{}
	received := false
	for _, ev := range evs {
		switch ev.Kind {
		case client.EventConflict, client.EventRejected:
			rejected[recordKey{ev.Rejection.Table, ev.Rejection.ID}] = ev.Rejection
		case client.EventReceived:
			received = true
		}
	}
	// What went over the wire, per record: the latest push of it.
	wires := map[recordKey]*pushWire{}
	for _, x := range d.takePushes() {
		for k, w := range wiresOf(x) {
			wires[k] = w
		}
	}
	still, err := d.c.Pending(ctx)
	if err != nil {
		return nil, nil, err
	}
	waiting := map[recordKey]client.Pending{}
	for _, p := range still {
		waiting[recordKey{p.Table, p.ID}] = p
	}

	var outcomes []pushOutcome
	var seqs []int64
	own := map[recordKey]bool{}
	for _, p := range pending {
		k := recordKey{p.Table, p.ID}
		own[k] = true
		o := pushOutcome{key: k, op: p.Operation, wire: wires[k]}
		if r := rejected[k]; r != nil {
			o.status, o.reason, o.message = r.Status, r.Reason, r.Message
			o.showKept = r.Status == synchro.PushStatusConflict && r.ServerData != nil
			seqs = append(seqs, r.Seq)
		} else if w, ok := waiting[k]; ok {
			if !w.Sent {
				continue // not pushed: changed again meanwhile, say
			}
			o.status, o.reason = synchro.PushStatusRejectedRetryable, w.LastError
		} else {
			o.status = synchro.PushStatusApplied
			if w := o.wire; w != nil && w.version != nil && p.Operation != "delete" {
				o.accepted = &version{updatedAt: *w.version} // server_updated_at
			} else {
				v, _, err := d.holds(ctx, k)
				if err != nil {
					return nil, nil, err
				}
				o.accepted = &v
			}
		}
		outcomes = append(outcomes, o)
	}
	// The rejections are reported: the app has dealt with them.
	if err := d.c.DeleteRejections(ctx, seqs...); err != nil {
		return nil, nil, err
	}
	if !received {
		return outcomes, nil, nil
	}
	after, err := d.allRows(ctx)
	if err != nil {
		return nil, nil, err
	}
	return outcomes, d.arrivals(before, after, own), nil
}

// arrivals lists what changed between two readings of the local rows,
// leaving out the device's own changes: new and changed rows in the order
// of their versions (the order the server committed them), then deleted
// ones.
func (d *device) arrivals(before, after map[recordKey]localRow, own map[recordKey]bool) []arrival {
	type stamped struct {
		arrival
		at string
	}
	var changed []stamped
	var deleted []arrival
	for k, row := range after {
		t := d.tables[k.table]
		if a, ok := describeChange(t, before[k], row); ok && !own[k] {
			at, _ := row[t.UpdatedAtColumn].(string)
			changed = append(changed, stamped{a, at})
		}
	}
	for k, row := range before {
		if _, ok := after[k]; !ok && !own[k] {
			deleted = append(deleted, arrival{table: k.table, label: label(d.tables[k.table], row), what: "deleted"})
		}
	}
	slices.SortFunc(changed, func(a, b stamped) int {
		// Rows of one transaction share their version.
		return cmp.Or(strings.Compare(a.at, b.at), strings.Compare(a.table, b.table), strings.Compare(a.label, b.label))
	})
	slices.SortFunc(deleted, func(a, b arrival) int { return strings.Compare(a.table+a.label, b.table+b.label) })
	out := make([]arrival, 0, len(changed)+len(deleted))
	for _, c := range changed {
		out = append(out, c.arrival)
	}
	return append(out, deleted...)
}

// allRows reads every local row of the synced tables.
func (d *device) allRows(ctx context.Context) (map[recordKey]localRow, error) {
	out := map[recordKey]localRow{}
	for name, t := range d.tables {
		rows, err := selectRows(ctx, d.c.DB(), t, "")
		if err != nil {
			return nil, err
		}
		for _, r := range rows {
			out[recordKey{name, fmt.Sprint(r[t.PrimaryKey[0]])}] = r
		}
	}
	return out, nil
}

// push pushes the device's local changes (a round of sync, which pulls
// too) and tells what happened.
func (d *device) push(ctx context.Context) ([]pushOutcome, []arrival, error) {
	return d.sync(ctx)
}

// syncArrivals is one round, for what it changed locally.
func (d *device) syncArrivals(ctx context.Context) ([]arrival, error) {
	_, arrivals, err := d.sync(ctx)
	return arrivals, err
}

// waitFor syncs until every record of want has reached the device in at
// least that version, for at most arrivalTimeout, and returns what changed
// locally meanwhile. The server writes its changelog asynchronously
// (change capture follows the database's WAL), so a change pushed a moment
// ago may need a few rounds to arrive.
func (d *device) waitFor(ctx context.Context, want map[recordKey]version) ([]arrival, error) {
	return waitArrivals(ctx, d.name, want, d.syncArrivals, d.holds)
}

// holds returns the version of a record the device holds: the updated-at
// of its local row (the server's version once the server has settled the
// row), or deleted when it has none.
func (d *device) holds(ctx context.Context, k recordKey) (version, bool, error) {
	t := d.tables[k.table]
	if t == nil {
		return version{}, false, nil
	}
	row, err := readRow(ctx, d.c.DB(), t, k.id)
	if err != nil || row == nil {
		return version{deleted: true}, err == nil, err
	}
	at, ok := parseStamp(row[t.UpdatedAtColumn])
	return version{updatedAt: at}, ok, nil
}

// rows returns the local rows of table, in key order.
func (d *device) rows(ctx context.Context, table string) ([]localRow, error) {
	t := d.tables[table]
	if t == nil {
		return nil, fmt.Errorf("no table %q", table)
	}
	return selectRows(ctx, d.c.DB(), t, "")
}

// row returns one local row, nil when there is none.
func (d *device) row(ctx context.Context, table, id string) (localRow, error) {
	t := d.tables[table]
	if t == nil {
		return nil, fmt.Errorf("no table %q", table)
	}
	return readRow(ctx, d.c.DB(), t, id)
}

// tableNames returns the names of the synced tables, sorted.
func (d *device) tableNames() []string { return slices.Sorted(maps.Keys(d.tables)) }

// queued returns the number of local changes waiting for a push.
func (d *device) queued(ctx context.Context) (int, error) {
	p, err := d.c.Pending(ctx)
	return len(p), err
}

// rowLabel names the local row of a record; false when there is none.
func (d *device) rowLabel(ctx context.Context, table, id string) (string, bool) {
	row, err := d.row(ctx, table, id)
	if err != nil || row == nil {
		return "", false
	}
	return label(d.tables[table], row), true
}

// words is how the transcript tells what this kind of device does.
func (d *device) words() wording {
	return wording{joined: " (package client)", queued: "queued", upToDate: "up to date (only its own changes came back)"}
}

// dump lists every local row, one line per row: "table id col=value ...",
// sorted, without the column skip; timestamps as sdkDevice.dump shows
// them.
func (d *device) dump(ctx context.Context, skip string) ([]string, error) {
	var lines []string
	for _, name := range d.tableNames() {
		t := d.tables[name]
		rows, err := d.rows(ctx, name)
		if err != nil {
			return nil, err
		}
		for _, r := range rows {
			parts := []string{name, fmt.Sprint(r[t.PrimaryKey[0]])}
			for _, c := range t.Columns {
				if c.IsPrimaryKey || c.Name == skip {
					continue
				}
				v := r[c.Name]
				if c.LogicalType == "datetime" {
					if ts, ok := parseStamp(v); ok {
						v = ts.UTC().Format(time.RFC3339Nano)
					}
				}
				parts = append(parts, fmt.Sprintf("%s=%v", c.Name, v))
			}
			lines = append(lines, strings.Join(parts, " "))
		}
	}
	slices.Sort(lines)
	return lines, nil
}

// recordKey names a record.
type recordKey struct{ table, id string }

// version is a record's state on the server: its updated-at, or deleted.
type version struct {
	updatedAt time.Time
	deleted   bool
}

// ident names a device: for the transcript, its user, its client id.
type ident struct{ name, user, clientID string }

func (i ident) id() ident { return i }

// arrival is a record a pull changed locally, for the transcript.
type arrival struct {
	table, label string
	what         string // "new", "deleted", or the changes ("done: 0 → 1")
}

func (a arrival) String() string {
	n := noun(a.table, 1)
	switch a.what {
	case "new":
		return fmt.Sprintf("new %s %q", n, a.label)
	case "deleted":
		return fmt.Sprintf("%s %q deleted", n, a.label)
	}
	return fmt.Sprintf("%s %q: %s", n, a.label, a.what)
}

// waitArrivals runs step (a pull, or a sync) until every record of want
// has reached the device named name in at least that version (have tells
// which version it holds of a record), for at most arrivalTimeout, and
// returns what changed locally meanwhile.
func waitArrivals(ctx context.Context, name string, want map[recordKey]version,
	step func(context.Context) ([]arrival, error),
	have func(context.Context, recordKey) (version, bool, error),
) ([]arrival, error) {
	deadline := time.Now().Add(arrivalTimeout)
	var arrivals []arrival
	for {
		got, err := step(ctx)
		if err != nil {
			return nil, err
		}
		arrivals = append(arrivals, got...)
		missing, err := missingRecords(ctx, want, have)
		if err != nil {
			return nil, err
		}
		if len(missing) == 0 {
			return arrivals, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%s: %d changes did not arrive within %v, such as %s %s", name, len(missing), arrivalTimeout, missing[0].table, missing[0].id)
		}
		if err := sleep(ctx, pollInterval); err != nil {
			return nil, err
		}
	}
}

// missingRecords lists, in order, the records of want a device does not
// hold in at least that version; have returns the version it holds of a
// record, false when none.
func missingRecords(ctx context.Context, want map[recordKey]version, have func(context.Context, recordKey) (version, bool, error)) ([]recordKey, error) {
	var out []recordKey
	for k, v := range want {
		got, ok, err := have(ctx, k)
		if err != nil {
			return nil, err
		}
		switch {
		case v.deleted && ok && got.deleted:
		case !v.deleted && ok && !got.deleted && !got.updatedAt.Before(v.updatedAt):
		default:
			out = append(out, k)
		}
	}
	slices.SortFunc(out, func(a, b recordKey) int { return strings.Compare(a.table+a.id, b.table+b.id) })
	return out, nil
}

// pushOutcome is what happened to one pushed record, as both kinds of
// device report it.
type pushOutcome struct {
	key                         recordKey
	op, status, reason, message string
	// label names the record after its table in the transcript; "" leaves
	// it out.
	label string
	// accepted is the version of an applied record that the user's devices
	// must receive; nil when the answer tells none.
	accepted *version
	// showKept: the line of a conflict shows the row the device holds
	// now, the server's version.
	showKept bool
	// wire is what went over the wire for the record; nil when the device
	// did not see it.
	wire *pushWire
}

// pushWire is one pushed record as it went over the wire: what the device
// sent and what the server answered, for the transcript's explanation of
// last write wins (lww.go).
type pushWire struct {
	// editedAt is the client_updated_at sent: when the device made the
	// edit, by its clock.
	editedAt time.Time
	// base is the base_updated_at sent: the version of the row the edit
	// was made on; nil when none was sent.
	base *time.Time
	// value names the row sent (its title or name); "" for a delete.
	value string
	// version is the row's version the server answered: for an applied
	// record its server_updated_at, for a conflict the updated_at of its
	// server_version; nil when the answer has none.
	version *time.Time
}

// wiresOf returns the pushWire of each record of a push of package
// client.
func wiresOf(x pushExchange) map[recordKey]*pushWire {
	out := map[recordKey]*pushWire{}
	for _, c := range x.req.Changes {
		w := &pushWire{editedAt: c.ClientUpdatedAt, base: c.BaseUpdatedAt}
		var data map[string]any
		if c.Operation != "delete" && json.Unmarshal(c.Data, &data) == nil {
			w.value = sdkLabel(data)
		}
		out[recordKey{c.TableName, c.ID}] = w
	}
	for _, r := range slices.Concat(x.resp.Accepted, x.resp.Rejected) {
		w := out[recordKey{r.TableName, r.ID}]
		if w == nil {
			continue
		}
		switch {
		case r.ServerUpdatedAt != nil:
			w.version = r.ServerUpdatedAt
		case r.ServerVersion != nil:
			at := r.ServerVersion.UpdatedAt
			w.version = &at
		}
	}
	return out
}

// describeChange compares a row before and after a pull applied it, on the
// columns a user sees (not the key and the timestamps), and reports whether
// it changed.
func describeChange(t *synchro.SchemaTable, before, after localRow) (arrival, bool) {
	if before == nil {
		return arrival{table: t.TableName, label: label(t, after), what: "new"}, true
	}
	var diffs []string
	for _, c := range t.Columns {
		if hidden(t, c.Name) {
			continue
		}
		a, ok := after[c.Name]
		if !ok {
			continue
		}
		if b := before[c.Name]; fmt.Sprint(b) != fmt.Sprint(a) {
			diffs = append(diffs, fmt.Sprintf("%s %s → %s", c.Name, show(c.LogicalType, b), show(c.LogicalType, a)))
		}
	}
	if len(diffs) == 0 {
		return arrival{}, false
	}
	return arrival{table: t.TableName, label: label(t, before), what: strings.Join(diffs, ", ")}, true
}

// hidden reports the columns the transcript does not show: the key and the
// timestamps the server maintains.
func hidden(t *synchro.SchemaTable, col string) bool {
	return col == t.PrimaryKey[0] || col == t.UpdatedAtColumn || col == t.DeletedAtColumn || col == "created_at"
}

// show renders a local value for the transcript.
func show(logical string, v any) string {
	switch {
	case v == nil:
		return "null"
	case logical == "boolean":
		if fmt.Sprint(v) == "1" {
			return "true"
		}
		return "false"
	}
	if s, ok := v.(string); ok {
		return strconv.Quote(s)
	}
	return fmt.Sprint(v)
}

// label names a row for the transcript: its title, name or label.
func label(t *synchro.SchemaTable, row localRow) string {
	for _, col := range []string{"title", "name", "label"} {
		if s, ok := row[col].(string); ok {
			return s
		}
	}
	return fmt.Sprint(row[t.PrimaryKey[0]])
}

// newUUID returns a random (version 4) UUID.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// randomHex returns n random bytes in hexadecimal.
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails
	return fmt.Sprintf("%x", b)
}
