package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/synchrosync/synchro"
)

// Sync parameters of a device.
const (
	// pageLimit is the records asked for per snapshot or pull page.
	pageLimit = 1000
	// arrivalTimeout bounds the wait for changes to reach a device: the
	// changelog is written by the server's change capture, shortly after
	// the push that made the change.
	arrivalTimeout = 10 * time.Second
	// pollInterval is the pause between pulls while waiting.
	pollInterval = 50 * time.Millisecond
	// appVersion is the version the devices register with.
	appVersion = "1.0.0"
)

// device is one installation of the app: a user, a client id, a local
// SQLite file, and the sync state.
type device struct {
	ident
	api    *api
	db     *sql.DB
	schema *synchro.SchemaResponse
	tables map[string]*synchro.SchemaTable

	checkpoint int64
	// delivered records, for each record the server has sent (snapshot,
	// pull, or the server's version in a conflict), the updated-at it
	// had, or deleted. It only serves the demo's waits.
	delivered map[recordKey]version
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

// openDevice creates the SQLite file of a new device in dir, replacing one
// a previous run left (every run registers new devices), and gives the
// device a new client id.
func openDevice(dir, name, user string) (ident, *sql.DB, error) {
	path := filepath.Join(dir, name+".db")
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return ident{}, nil, err
		}
	}
	db, err := openLocal(path)
	if err != nil {
		return ident{}, nil, err
	}
	return ident{name: name, user: user, clientID: name + "-" + randomHex(4)}, db, nil
}

// newDevice creates a device with its SQLite file in dir.
func newDevice(a *api, dir, name, user string) (*device, error) {
	id, db, err := openDevice(dir, name, user)
	if err != nil {
		return nil, err
	}
	return &device{ident: id, api: a, db: db, delivered: map[recordKey]version{}}, nil
}

func (d *device) close() error { return d.db.Close() }

// register reads the schema contract, creates the local tables from it and
// registers the device with the server.
func (d *device) register(ctx context.Context) error {
	var schema synchro.SchemaResponse
	if err := d.api.call(ctx, d.user, "GET", "/sync/schema", nil, &schema); err != nil {
		return err
	}
	d.schema = &schema
	d.tables = map[string]*synchro.SchemaTable{}
	statements := []string{localBookkeeping}
	for i := range schema.Tables {
		t := &schema.Tables[i]
		stmt, err := createTableSQL(t)
		if err != nil {
			return err
		}
		d.tables[t.TableName] = t
		statements = append(statements, stmt)
	}
	for _, stmt := range statements {
		if _, err := d.db.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("creating the local tables: %w", err)
		}
	}
	name := d.name
	var resp synchro.RegisterResponse
	return d.api.call(ctx, d.user, "POST", "/sync/register", &synchro.RegisterRequest{
		ClientID:      d.clientID,
		ClientName:    &name,
		Platform:      "demo",
		AppVersion:    appVersion,
		SchemaVersion: schema.SchemaVersion,
		SchemaHash:    schema.SchemaHash,
	}, &resp)
}

// bootstrap pages through a snapshot into the local tables and stores its
// checkpoint. It returns the number of records per table.
func (d *device) bootstrap(ctx context.Context) (map[string]int, error) {
	counts := map[string]int{}
	var cursor *synchro.SnapshotCursor
	for {
		var page synchro.SnapshotResponse
		err := d.api.call(ctx, d.user, "POST", "/sync/snapshot", &synchro.SnapshotRequest{
			ClientID:      d.clientID,
			Cursor:        cursor,
			Limit:         pageLimit,
			SchemaVersion: d.schema.SchemaVersion,
			SchemaHash:    d.schema.SchemaHash,
		}, &page)
		if err != nil {
			return nil, err
		}
		err = inTx(ctx, d.db, func(tx *sql.Tx) error {
			for _, rec := range page.Records {
				t, err := d.table(rec.TableName)
				if err != nil {
					return err
				}
				if _, _, err := upsertRecord(ctx, tx, t, rec.ID, rec.Data); err != nil {
					return err
				}
				counts[rec.TableName]++
			}
			if page.HasMore {
				return nil
			}
			return setState(ctx, tx, "checkpoint", strconv.FormatInt(page.Checkpoint, 10))
		})
		if err != nil {
			return nil, err
		}
		for _, rec := range page.Records {
			d.delivered[recordKey{rec.TableName, rec.ID}] = version{updatedAt: rec.UpdatedAt}
		}
		if !page.HasMore {
			d.checkpoint = page.Checkpoint
			return counts, nil
		}
		cursor = page.Cursor
	}
}

// table returns the contract of a table the server sent a record of.
func (d *device) table(name string) (*synchro.SchemaTable, error) {
	t := d.tables[name]
	if t == nil {
		return nil, fmt.Errorf("the server sent a record of table %q, which is not in its schema", name)
	}
	return t, nil
}

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

// pull pulls pages until the server has nothing more, applying each page
// and its checkpoint in one local transaction. It returns what changed
// locally; records that come back as they are (the echo of the device's own
// pushes) are not listed.
func (d *device) pull(ctx context.Context) ([]arrival, error) {
	return d.pullWait(ctx, 0)
}

// pullWait is pull whose first request waits up to wait for a change when
// there is none (live sync: POST /sync/pull?wait=S); wait 0 is pull.
func (d *device) pullWait(ctx context.Context, wait time.Duration) ([]arrival, error) {
	var arrivals []arrival
	for {
		path := "/sync/pull"
		if wait > 0 {
			path += "?wait=" + strconv.FormatFloat(wait.Seconds(), 'f', -1, 64)
			wait = 0 // the next pages are there already
		}
		var page synchro.PullResponse
		err := d.api.call(ctx, d.user, "POST", path, &synchro.PullRequest{
			ClientID:      d.clientID,
			Checkpoint:    d.checkpoint,
			Limit:         pageLimit,
			SchemaVersion: d.schema.SchemaVersion,
			SchemaHash:    d.schema.SchemaHash,
		}, &page)
		if err != nil {
			return nil, err
		}
		if page.SnapshotRequired {
			return nil, fmt.Errorf("the server asks for a new snapshot (%s)", page.SnapshotReason)
		}
		err = inTx(ctx, d.db, func(tx *sql.Tx) error {
			for _, rec := range page.Changes {
				t, err := d.table(rec.TableName)
				if err != nil {
					return err
				}
				before, after, err := upsertRecord(ctx, tx, t, rec.ID, rec.Data)
				if err != nil {
					return err
				}
				if a, changed := describeChange(t, before, after); changed {
					arrivals = append(arrivals, a)
				}
			}
			for _, del := range page.Deletes {
				t, err := d.table(del.TableName)
				if err != nil {
					return err
				}
				before, err := readRow(ctx, tx, t, del.ID)
				if err != nil {
					return err
				}
				if _, err := deleteRow(ctx, tx, t, del.ID); err != nil {
					return err
				}
				if before != nil {
					arrivals = append(arrivals, arrival{table: t.TableName, label: label(t, before), what: "deleted"})
				}
			}
			return setState(ctx, tx, "checkpoint", strconv.FormatInt(page.Checkpoint, 10))
		})
		if err != nil {
			return nil, err
		}
		for _, rec := range page.Changes {
			d.delivered[recordKey{rec.TableName, rec.ID}] = version{updatedAt: rec.UpdatedAt}
		}
		for _, del := range page.Deletes {
			d.delivered[recordKey{del.TableName, del.ID}] = version{deleted: true}
		}
		d.checkpoint = page.Checkpoint
		if !page.HasMore {
			return arrivals, nil
		}
	}
}

// waitFor pulls until every record of want has reached the device in at
// least that version, for at most arrivalTimeout, and returns what changed
// locally meanwhile. The server writes its changelog asynchronously (change
// capture follows the database's WAL), so a change pushed a moment ago may
// need a few pulls to arrive.
func (d *device) waitFor(ctx context.Context, want map[recordKey]version) ([]arrival, error) {
	return waitArrivals(ctx, d.name, want, d.pull, d.holds)
}

// holds returns the version of a record the server has sent the device.
func (d *device) holds(_ context.Context, k recordKey) (version, bool, error) {
	got, ok := d.delivered[k]
	return got, ok, nil
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

// Local writes, made offline: each changes the local table and queues the
// write in the outbox, in one transaction.

// create inserts a new record with a new id and queues it.
func (d *device) create(ctx context.Context, table string, fields map[string]any) (string, error) {
	id := newUUID()
	return id, d.write(ctx, table, id, "create", fields)
}

// update changes columns of a record and queues the change.
func (d *device) update(ctx context.Context, table, id string, fields map[string]any) error {
	return d.write(ctx, table, id, "update", fields)
}

// remove deletes a record and queues the delete.
func (d *device) remove(ctx context.Context, table, id string) error {
	return d.write(ctx, table, id, "delete", nil)
}

// write applies one local write and merges it into the record's outbox
// entry: a create followed by updates stays a create, updates merge their
// columns and keep the first base version, and a delete replaces the rest
// (or cancels a create that was never pushed).
func (d *device) write(ctx context.Context, table, id, op string, fields map[string]any) error {
	t := d.tables[table]
	if t == nil {
		return fmt.Errorf("no table %q", table)
	}
	now := time.Now().UTC()
	return inTx(ctx, d.db, func(tx *sql.Tx) error {
		current, err := readRow(ctx, tx, t, id)
		if err != nil {
			return err
		}
		switch {
		case op == "create" && current != nil:
			return fmt.Errorf("%s %s exists", table, id)
		case op != "create" && current == nil:
			return fmt.Errorf("%s %s does not exist locally", table, id)
		}

		// The local table.
		if op == "delete" {
			if _, err := deleteRow(ctx, tx, t, id); err != nil {
				return err
			}
		} else {
			raw, err := json.Marshal(fields)
			if err != nil {
				return err
			}
			values, err := decodeObject(raw)
			if err != nil {
				return err
			}
			row := localRow{}
			for _, c := range t.Columns {
				v, ok := values[c.Name]
				if !ok {
					continue
				}
				if row[c.Name], err = toSQLite(c.LogicalType, v); err != nil {
					return fmt.Errorf("%s.%s: %w", table, c.Name, err)
				}
			}
			if op == "update" {
				err = updateRow(ctx, tx, t, id, row)
			} else {
				row[t.PrimaryKey[0]] = id
				err = writeRow(ctx, tx, t, row)
			}
			if err != nil {
				return err
			}
		}

		// The outbox.
		var (
			pendingOp   string
			pendingData sql.NullString
			found       = true
		)
		err = tx.QueryRowContext(ctx, `SELECT operation, data FROM _outbox WHERE table_name = ? AND record_id = ?`, table, id).
			Scan(&pendingOp, &pendingData)
		if errors.Is(err, sql.ErrNoRows) {
			found, err = false, nil
		}
		if err != nil {
			return fmt.Errorf("reading the outbox: %w", err)
		}
		if !found {
			var base *string
			if op != "create" && t.UpdatedAtColumn != "" {
				// The version this write starts from: the server's,
				// since nothing is pending for the record.
				if s, ok := current[t.UpdatedAtColumn].(string); ok {
					base = &s
				}
			}
			data, err := encodeData(op, fields)
			if err != nil {
				return err
			}
			_, err = tx.ExecContext(ctx, `INSERT INTO _outbox (table_name, record_id, seq, operation, data, client_updated_at, base_updated_at)
				VALUES (?, ?, (SELECT coalesce(max(seq), 0) + 1 FROM _outbox), ?, ?, ?, ?)`,
				table, id, op, data, now.Format(time.RFC3339Nano), base)
			if err != nil {
				return fmt.Errorf("queueing the write: %w", err)
			}
			return nil
		}
		switch {
		case op == "delete" && pendingOp == "create":
			// Never pushed: nothing to tell the server.
			_, err = tx.ExecContext(ctx, `DELETE FROM _outbox WHERE table_name = ? AND record_id = ?`, table, id)
		case op == "delete":
			_, err = tx.ExecContext(ctx, `UPDATE _outbox SET operation = 'delete', data = NULL, client_updated_at = ?
				WHERE table_name = ? AND record_id = ?`, now.Format(time.RFC3339Nano), table, id)
		default:
			merged := map[string]any{}
			if pendingData.Valid {
				if err := json.Unmarshal([]byte(pendingData.String), &merged); err != nil {
					return fmt.Errorf("reading the outbox: %w", err)
				}
			}
			for k, v := range fields {
				merged[k] = v
			}
			data, encErr := encodeData(pendingOp, merged)
			if encErr != nil {
				return encErr
			}
			_, err = tx.ExecContext(ctx, `UPDATE _outbox SET data = ?, client_updated_at = ? WHERE table_name = ? AND record_id = ?`,
				data, now.Format(time.RFC3339Nano), table, id)
		}
		if err != nil {
			return fmt.Errorf("queueing the write: %w", err)
		}
		return nil
	})
}

// encodeData is the outbox form of a write's columns: none for a delete.
func encodeData(op string, fields map[string]any) (any, error) {
	if op == "delete" {
		return nil, nil
	}
	b, err := json.Marshal(fields)
	if err != nil {
		return nil, err
	}
	return string(b), nil
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
}

// outcomeOf is the outcome of a push result.
func outcomeOf(res synchro.PushResult) pushOutcome {
	o := pushOutcome{
		key: recordKey{res.TableName, res.ID}, op: res.Operation,
		status: res.Status, reason: res.ReasonCode, message: res.Message,
		showKept: res.ServerVersion != nil,
	}
	if res.Status == synchro.PushStatusApplied {
		switch {
		case res.ServerDeletedAt != nil || res.Operation == "delete":
			o.accepted = &version{deleted: true}
		case res.ServerUpdatedAt != nil:
			o.accepted = &version{updatedAt: *res.ServerUpdatedAt}
		}
	}
	return o
}

// push sends the outbox, its oldest pageLimit entries (the server takes at
// most 1000 records a push), and settles each entry by its result: applied
// entries leave the outbox (the record's local updated-at becomes the
// server's, the base of its next write); a conflict leaves it too, and the
// server's version replaces the local row; a terminal rejection is dropped;
// a retryable one stays for the next push.
func (d *device) push(ctx context.Context) ([]pushOutcome, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT table_name, record_id, operation, data, client_updated_at, base_updated_at
		FROM _outbox ORDER BY seq LIMIT ?`, pageLimit)
	if err != nil {
		return nil, fmt.Errorf("reading the outbox: %w", err)
	}
	var changes []synchro.PushRecord
	for rows.Next() {
		var (
			rec        synchro.PushRecord
			data, base sql.NullString
			clientAt   string
		)
		if err := rows.Scan(&rec.TableName, &rec.ID, &rec.Operation, &data, &clientAt, &base); err != nil {
			_ = rows.Close()
			return nil, fmt.Errorf("reading the outbox: %w", err)
		}
		if data.Valid {
			rec.Data = json.RawMessage(data.String)
		}
		if rec.ClientUpdatedAt, err = time.Parse(time.RFC3339Nano, clientAt); err != nil {
			_ = rows.Close()
			return nil, fmt.Errorf("outbox entry %s %s: %w", rec.TableName, rec.ID, err)
		}
		if base.Valid {
			if b, err := time.Parse(time.RFC3339Nano, base.String); err == nil {
				rec.BaseUpdatedAt = &b
			}
		}
		changes = append(changes, rec)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return nil, fmt.Errorf("reading the outbox: %w", err)
	}
	if len(changes) == 0 {
		return nil, nil
	}

	var resp synchro.PushResponse
	err = d.api.call(ctx, d.user, "POST", "/sync/push", &synchro.PushRequest{
		ClientID:      d.clientID,
		Changes:       changes,
		SchemaVersion: d.schema.SchemaVersion,
		SchemaHash:    d.schema.SchemaHash,
	}, &resp)
	if err != nil {
		return nil, err
	}
	var outcomes []pushOutcome
	results := slices.Concat(resp.Accepted, resp.Rejected)
	err = inTx(ctx, d.db, func(tx *sql.Tx) error {
		for _, res := range results {
			t, err := d.table(res.TableName)
			if err != nil {
				return err
			}
			outcomes = append(outcomes, outcomeOf(res))
			if res.Status == synchro.PushStatusRejectedRetryable {
				continue
			}
			if _, err := tx.ExecContext(ctx, `DELETE FROM _outbox WHERE table_name = ? AND record_id = ?`, res.TableName, res.ID); err != nil {
				return fmt.Errorf("settling the outbox: %w", err)
			}
			switch {
			case res.Status == synchro.PushStatusApplied && res.ServerUpdatedAt != nil && res.Operation != "delete" && t.UpdatedAtColumn != "":
				cols := localRow{t.UpdatedAtColumn: res.ServerUpdatedAt.UTC().Format(time.RFC3339Nano)}
				if err := updateRow(ctx, tx, t, res.ID, cols); err != nil {
					return err
				}
			case res.Status == synchro.PushStatusConflict && res.ServerVersion != nil:
				sv := res.ServerVersion
				if sv.DeletedAt != nil {
					if _, err := deleteRow(ctx, tx, t, res.ID); err != nil {
						return err
					}
				} else if _, _, err := upsertRecord(ctx, tx, t, res.ID, sv.Data); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, res := range results {
		if sv := res.ServerVersion; res.Status == synchro.PushStatusConflict && sv != nil {
			d.delivered[recordKey{res.TableName, res.ID}] = version{updatedAt: sv.UpdatedAt, deleted: sv.DeletedAt != nil}
		}
	}
	return outcomes, nil
}

// rows returns the local rows of table, in key order.
func (d *device) rows(ctx context.Context, table string) ([]localRow, error) {
	t := d.tables[table]
	if t == nil {
		return nil, fmt.Errorf("no table %q", table)
	}
	return selectRows(ctx, d.db, t, "")
}

// row returns one local row, nil when there is none.
func (d *device) row(ctx context.Context, table, id string) (localRow, error) {
	t := d.tables[table]
	if t == nil {
		return nil, fmt.Errorf("no table %q", table)
	}
	return readRow(ctx, d.db, t, id)
}

// tableNames returns the names of the synced tables, sorted.
func (d *device) tableNames() []string { return slices.Sorted(maps.Keys(d.tables)) }

// queued returns the number of writes in the outbox.
func (d *device) queued(ctx context.Context) (int, error) {
	var n int
	if err := d.db.QueryRowContext(ctx, `SELECT count(*) FROM _outbox`).Scan(&n); err != nil {
		return 0, fmt.Errorf("reading the outbox: %w", err)
	}
	return n, nil
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
	return wording{queued: "queued", upToDate: "up to date (only its own changes came back)"}
}

// dump lists every local row, one line per row: "table id col=value ...",
// sorted, without the column skip.
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
				if !c.IsPrimaryKey && c.Name != skip {
					parts = append(parts, fmt.Sprintf("%s=%v", c.Name, r[c.Name]))
				}
			}
			lines = append(lines, strings.Join(parts, " "))
		}
	}
	slices.Sort(lines)
	return lines, nil
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
