package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// This file is a device that speaks exactly the wire of the original Swift
// and Kotlin SDKs (see issue 13 and the shared design note sdk-wire.md),
// in either SDK's shape (sdkShape): requests are JSON maps written here,
// never the Go request types of package synchro; answers are read as maps,
// by the keys the SDKs read. Its local store works the way the SDKs' does:
//
//   - the local tables are built from GET /sync/schema: the contract's
//     columns, their SQLite types and sqlite_default_sql defaults;
//   - triggers fill a pending-changes table, one entry per record, named
//     from the contract's updated_at_column and deleted_at_column: an
//     insert is a create, an update an update (base_updated_at: the row's
//     updated_at before it, as the local text it is), an update that sets
//     deleted_at a delete; a local DELETE becomes that soft delete;
//   - a sync lock turns the triggers off while the device applies what
//     the server sent;
//   - a push sends the oldest 100 pending entries (by client_updated_at,
//     then in the order they were queued), each with the whole local row
//     (its null columns included); applied entries leave the queue and
//     take the server's updated_at/deleted_at, conflicts take the server's
//     version, terminal rejections are dropped, a retryable rejection
//     keeps the queue and skips this cycle's pull;
//   - a pull skips a change whose local updated_at is at least the
//     record's, applies the others and the deletes, and keeps the
//     checkpoint; snapshot_required rebuilds from a snapshot.

// Wire constants of the SDK device.
const (
	sdkBatch      = 100
	sdkPageLimit  = 100
	sdkAppVersion = "1.0.0"
	// sdkNowSQL is the text SQLite writes for "now" in the triggers: RFC
	// 3339 UTC with milliseconds, as the SDKs write client_updated_at.
	sdkNowSQL = `strftime('%Y-%m-%dT%H:%M:%fZ','now')`
)

// sdkShape is the form of the wire an SDK device speaks: the same routes,
// keys and whole rows, but the SDKs differ in what they do with an
// optional field that is null.
type sdkShape int

const (
	// kotlinShape sends such a field as an explicit null ("cursor": null,
	// "tables": null, "known_buckets": null, "base_updated_at": null,
	// "data": null on deletes).
	kotlinShape sdkShape = iota
	// swiftShape leaves such a field out of the request and of its
	// records (a row's own null columns stay in data), and drops a
	// base_updated_at it cannot parse as a timestamp.
	swiftShape
)

// shaped returns body as the shape sends it: as it is for Kotlin; for
// Swift without its null fields, nor those of its records (changes).
func (sh sdkShape) shaped(body map[string]any) map[string]any {
	if sh != swiftShape {
		return body
	}
	out := map[string]any{}
	for k, v := range body {
		if v == nil {
			continue
		}
		if recs, ok := v.([]any); ok && k == "changes" {
			shaped := make([]any, len(recs))
			for i, r := range recs {
				if m, ok := r.(map[string]any); ok {
					r = sh.shaped(m)
				}
				shaped[i] = r
			}
			v = shaped
		}
		out[k] = v
	}
	return out
}

// sdkColumn and sdkTable are the parts of the contract the device uses.
type sdkColumn struct {
	name, logical, sqliteDefault string
}

type sdkTable struct {
	name, pk, updatedAt, deletedAt string
	columns                        []sdkColumn
}

// sdkDevice is the SDK-shaped device.
type sdkDevice struct {
	ident
	shape         sdkShape
	base          string
	http          *http.Client
	db            *sql.DB
	schemaVersion json.Number
	schemaHash    string
	tables        map[string]*sdkTable
	order         []string // table names, in contract order
}

// newSDKDevice creates the device's SQLite file in dir, replacing one a
// previous run left; it speaks the wire in shape.
func newSDKDevice(base, dir, name, user string, shape sdkShape) (*sdkDevice, error) {
	path, err := freshFile(dir, name)
	if err != nil {
		return nil, err
	}
	db, err := openLocal(path)
	if err != nil {
		return nil, err
	}
	id := ident{name: name, user: user, clientID: name + "-" + randomHex(4)}
	return &sdkDevice{
		ident: id, shape: shape,
		base: strings.TrimRight(base, "/"), http: &http.Client{Timeout: requestTimeout}, db: db,
	}, nil
}

func (d *sdkDevice) close() error { return d.db.Close() }

// send makes one request with the SDKs' headers and decodes the answer as
// a map; body goes out in the device's shape. A 503 or 429 is tried again after its Retry-After seconds; any
// other error status is returned as an error quoting the body's `error`,
// the key the SDKs show.
func (d *sdkDevice) send(ctx context.Context, method, path string, body map[string]any) (map[string]any, error) {
	var payload []byte
	if body != nil {
		var err error
		if payload, err = json.Marshal(d.shape.shaped(body)); err != nil {
			return nil, err
		}
	}
	for attempt := 1; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, method, d.base+path, bytes.NewReader(payload))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Authorization", "Bearer "+d.user)
		req.Header.Set("X-App-Version", sdkAppVersion)
		req.Header.Set("Accept", "application/json")
		if body != nil {
			req.Header.Set("Content-Type", "application/json; charset=utf-8")
		}
		resp, err := d.http.Do(req)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", method, path, err)
		}
		data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
		_ = resp.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", method, path, err)
		}
		var out map[string]any
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.UseNumber()
		decErr := dec.Decode(&out)
		if resp.StatusCode == http.StatusOK {
			if decErr != nil {
				return nil, fmt.Errorf("%s %s: decoding the answer: %w", method, path, decErr)
			}
			return out, nil
		}
		msg, _ := out["error"].(string)
		if (resp.StatusCode == http.StatusServiceUnavailable || resp.StatusCode == http.StatusTooManyRequests) && attempt < unavailableAttempts {
			wait := maxRetryWait
			if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s >= 0 {
				wait = min(time.Duration(s)*time.Second, maxRetryWait)
			}
			if err := sleep(ctx, wait); err != nil {
				return nil, err
			}
			continue
		}
		return nil, fmt.Errorf("%s %s: HTTP %d, error %q", method, path, resp.StatusCode, msg)
	}
}

// request returns the fields every request carries, plus fields.
func (d *sdkDevice) request(fields map[string]any) map[string]any {
	m := map[string]any{"client_id": d.clientID, "schema_version": d.schemaVersion, "schema_hash": d.schemaHash}
	for k, v := range fields {
		m[k] = v
	}
	return m
}

// register builds the local store from GET /sync/schema and registers.
func (d *sdkDevice) register(ctx context.Context) error {
	schema, err := d.send(ctx, http.MethodGet, "/sync/schema", nil)
	if err != nil {
		return err
	}
	if err := d.buildLocal(ctx, schema); err != nil {
		return err
	}
	_, err = d.send(ctx, http.MethodPost, "/sync/register", d.request(map[string]any{
		"client_name": d.name, "platform": d.platform(), "app_version": sdkAppVersion,
	}))
	return err
}

// platform is what the device registers as.
func (d *sdkDevice) platform() string {
	if d.shape == swiftShape {
		return "ios"
	}
	return "android"
}

// buildLocal reads the contract and creates the local tables, the pending
// queue and the triggers.
func (d *sdkDevice) buildLocal(ctx context.Context, schema map[string]any) error {
	d.schemaVersion, _ = schema["schema_version"].(json.Number)
	d.schemaHash, _ = schema["schema_hash"].(string)
	tables, _ := schema["tables"].([]any)
	d.tables = map[string]*sdkTable{}
	stmts := []string{
		`CREATE TABLE _sdk_pending (
			table_name        TEXT NOT NULL,
			record_id         TEXT NOT NULL,
			operation         TEXT NOT NULL,
			base_updated_at   TEXT,
			client_updated_at TEXT NOT NULL,
			PRIMARY KEY (table_name, record_id))`,
		`CREATE TABLE _sdk_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)`,
		`INSERT INTO _sdk_meta VALUES ('sync_lock', '0'), ('checkpoint', '0')`,
	}
	for _, raw := range tables {
		tm, _ := raw.(map[string]any)
		t := &sdkTable{}
		t.name, _ = tm["table_name"].(string)
		t.updatedAt, _ = tm["updated_at_column"].(string)
		t.deletedAt, _ = tm["deleted_at_column"].(string)
		if pk, _ := tm["primary_key"].([]any); len(pk) == 1 {
			t.pk, _ = pk[0].(string)
		}
		cols, _ := tm["columns"].([]any)
		for _, rc := range cols {
			cm, _ := rc.(map[string]any)
			var c sdkColumn
			c.name, _ = cm["name"].(string)
			c.logical, _ = cm["logical_type"].(string)
			c.sqliteDefault, _ = cm["sqlite_default_sql"].(string)
			t.columns = append(t.columns, c)
		}
		names := make([]string, len(t.columns))
		for i, c := range t.columns {
			names[i] = c.name
		}
		// The SDKs' triggers name these columns: an empty or unknown name
		// makes them invalid, and the device could never sync the table.
		for _, col := range []string{t.pk, t.updatedAt, t.deletedAt} {
			if col == "" || !slices.Contains(names, col) {
				return fmt.Errorf("the contract's table %s names column %q (key, updated_at_column or deleted_at_column), which is not one of its columns %v: the SDKs' triggers cannot be built", t.name, col, names)
			}
		}
		d.tables[t.name] = t
		d.order = append(d.order, t.name)
		stmts = append(stmts, sdkTableSQL(t)...)
	}
	return inTx(ctx, d.db, func(tx *sql.Tx) error {
		for _, s := range stmts {
			if _, err := tx.ExecContext(ctx, s); err != nil {
				return fmt.Errorf("building the local store: %w\n%s", err, s)
			}
		}
		return nil
	})
}

// sdkTableSQL is the local table of a contract table and its three
// triggers.
func sdkTableSQL(t *sdkTable) []string {
	var defs []string
	for _, c := range t.columns {
		def := quoteIdent(c.name) + " " + sdkSQLiteType(c.logical)
		if c.name == t.pk {
			def += " PRIMARY KEY"
		}
		if c.sqliteDefault != "" {
			def += " DEFAULT (" + c.sqliteDefault + ")"
		}
		defs = append(defs, def)
	}
	tbl, pk := quoteIdent(t.name), quoteIdent(t.pk)
	upd, del := quoteIdent(t.updatedAt), quoteIdent(t.deletedAt)
	lit := "'" + strings.ReplaceAll(t.name, "'", "''") + "'"
	unlocked := `(SELECT value FROM _sdk_meta WHERE key = 'sync_lock') = '0'`
	softDelete := `NEW.` + del + ` IS NOT NULL AND OLD.` + del + ` IS NULL`
	return []string{
		`CREATE TABLE ` + tbl + ` (` + strings.Join(defs, ", ") + `)`,
		// A local insert: a create.
		`CREATE TRIGGER ` + quoteIdent("_sdk_ins_"+t.name) + ` AFTER INSERT ON ` + tbl + ` WHEN ` + unlocked + ` BEGIN
			INSERT INTO _sdk_pending (table_name, record_id, operation, base_updated_at, client_updated_at)
			VALUES (` + lit + `, NEW.` + pk + `, 'create', NULL, ` + sdkNowSQL + `)
			ON CONFLICT (table_name, record_id) DO UPDATE SET
				operation = CASE WHEN _sdk_pending.operation = 'delete' THEN 'update' ELSE _sdk_pending.operation END,
				client_updated_at = excluded.client_updated_at;
		END`,
		// A local update: an update from the row's updated_at, or a delete
		// when it sets deleted_at. A create not pushed yet stays a create
		// (and is dropped when deleted); the first base is kept.
		`CREATE TRIGGER ` + quoteIdent("_sdk_upd_"+t.name) + ` AFTER UPDATE ON ` + tbl + ` WHEN ` + unlocked + ` BEGIN
			INSERT INTO _sdk_pending (table_name, record_id, operation, base_updated_at, client_updated_at)
			SELECT ` + lit + `, NEW.` + pk + `, CASE WHEN ` + softDelete + ` THEN 'delete' ELSE 'update' END,
				OLD.` + upd + `, ` + sdkNowSQL + `
			WHERE NOT (` + softDelete + ` AND EXISTS (SELECT 1 FROM _sdk_pending
				WHERE table_name = ` + lit + ` AND record_id = NEW.` + pk + ` AND operation = 'create'))
			ON CONFLICT (table_name, record_id) DO UPDATE SET
				operation = CASE WHEN _sdk_pending.operation = 'create' THEN 'create' ELSE excluded.operation END,
				base_updated_at = _sdk_pending.base_updated_at,
				client_updated_at = excluded.client_updated_at;
			DELETE FROM _sdk_pending WHERE table_name = ` + lit + ` AND record_id = NEW.` + pk + `
				AND operation = 'create' AND ` + softDelete + `;
		END`,
		// A local delete: a soft delete, which the update trigger queues.
		`CREATE TRIGGER ` + quoteIdent("_sdk_del_"+t.name) + ` BEFORE DELETE ON ` + tbl + ` WHEN ` + unlocked + ` BEGIN
			UPDATE ` + tbl + ` SET ` + del + ` = ` + sdkNowSQL + ` WHERE ` + pk + ` = OLD.` + pk + `;
			SELECT RAISE(IGNORE);
		END`,
	}
}

// sdkSQLiteType is the local column type of a logical type.
func sdkSQLiteType(logical string) string {
	switch logical {
	case "int", "int64", "boolean":
		return "INTEGER"
	case "float":
		return "REAL"
	}
	return "TEXT"
}

// locked runs fn in a transaction with the sync lock on: what the server
// sent is applied without being queued back.
func (d *sdkDevice) locked(ctx context.Context, fn func(*sql.Tx) error) error {
	return inTx(ctx, d.db, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE _sdk_meta SET value = '1' WHERE key = 'sync_lock'`); err != nil {
			return err
		}
		if err := fn(tx); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `UPDATE _sdk_meta SET value = '0' WHERE key = 'sync_lock'`)
		return err
	})
}

// exec runs a local write of the app: plain SQL on the local tables; the
// triggers queue it.
func (d *sdkDevice) exec(ctx context.Context, query string, args ...any) error {
	_, err := d.db.ExecContext(ctx, query, args...)
	return err
}

// queued returns the number of pending changes.
func (d *sdkDevice) queued(ctx context.Context) (int, error) {
	var n int
	err := d.db.QueryRowContext(ctx, `SELECT count(*) FROM _sdk_pending`).Scan(&n)
	return n, err
}

// saveCheckpoint stores the checkpoint of a pull or snapshot page.
func saveCheckpoint(ctx context.Context, tx *sql.Tx, page map[string]any) error {
	next, _ := page["checkpoint"].(json.Number)
	_, err := tx.ExecContext(ctx, `UPDATE _sdk_meta SET value = ? WHERE key = 'checkpoint'`, next.String())
	return err
}

// hasMore reports whether a pull or snapshot page has more pages after it.
func hasMore(page map[string]any) bool {
	more, _ := page["has_more"].(bool)
	return more
}

// checkpoint returns the stored pull checkpoint.
func (d *sdkDevice) checkpoint(ctx context.Context) (json.Number, error) {
	var s string
	err := d.db.QueryRowContext(ctx, `SELECT value FROM _sdk_meta WHERE key = 'checkpoint'`).Scan(&s)
	return json.Number(s), err
}

// upsert writes data (a record of the server) into t with the lock held.
func upsertSDK(ctx context.Context, tx *sql.Tx, t *sdkTable, data map[string]any) error {
	var cols, marks, sets []string
	var args []any
	for _, c := range t.columns {
		v, ok := data[c.name]
		if !ok {
			continue
		}
		cols = append(cols, quoteIdent(c.name))
		marks = append(marks, "?")
		if c.name != t.pk {
			sets = append(sets, quoteIdent(c.name)+" = excluded."+quoteIdent(c.name))
		}
		args = append(args, sdkToSQLite(c.logical, v))
	}
	stmt := `INSERT INTO ` + quoteIdent(t.name) + ` (` + strings.Join(cols, ", ") + `) VALUES (` + strings.Join(marks, ", ") + `)`
	if len(sets) > 0 {
		stmt += ` ON CONFLICT (` + quoteIdent(t.pk) + `) DO UPDATE SET ` + strings.Join(sets, ", ")
	}
	_, err := tx.ExecContext(ctx, stmt, args...)
	return err
}

// sdkToSQLite converts a JSON value of the server to the local value.
func sdkToSQLite(logical string, v any) any {
	switch x := v.(type) {
	case nil:
		return nil
	case bool:
		if x {
			return int64(1)
		}
		return int64(0)
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i
		}
		f, _ := x.Float64()
		return f
	case string:
		return x
	default:
		b, _ := json.Marshal(x)
		return string(b)
	}
}

// readSDKRow reads a local row as column -> SQLite value; nil when none.
func readSDKRow(ctx context.Context, q interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}, t *sdkTable, id string) (map[string]any, error) {
	rows, err := readSDKRows(ctx, q, t, `WHERE `+quoteIdent(t.pk)+` = ?`, id)
	if err != nil || len(rows) == 0 {
		return nil, err
	}
	return rows[0], nil
}

// readSDKRows reads the local rows of t matching where, in key order.
func readSDKRows(ctx context.Context, q interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}, t *sdkTable, where string, args ...any) ([]map[string]any, error) {
	names := make([]string, len(t.columns))
	for i, c := range t.columns {
		names[i] = quoteIdent(c.name)
	}
	rows, err := q.QueryContext(ctx, `SELECT `+strings.Join(names, ", ")+` FROM `+quoteIdent(t.name)+` `+where+
		` ORDER BY `+quoteIdent(t.pk), args...)
	if err != nil {
		return nil, err
	}
	defer func() { _ = rows.Close() }()
	var out []map[string]any
	for rows.Next() {
		vals := make([]any, len(t.columns))
		ptrs := make([]any, len(vals))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		row := map[string]any{}
		for i, c := range t.columns {
			if b, ok := vals[i].([]byte); ok {
				vals[i] = string(b)
			}
			row[c.name] = vals[i]
		}
		out = append(out, row)
	}
	return out, rows.Err()
}

// wireRow is a local row as the SDKs send it: every contract column,
// booleans as JSON booleans, null columns as nulls (in either shape).
func wireRow(t *sdkTable, row map[string]any) map[string]any {
	out := map[string]any{}
	for _, c := range t.columns {
		v := row[c.name]
		if i, ok := v.(int64); ok && c.logical == "boolean" {
			v = i != 0
		}
		out[c.name] = v
	}
	return out
}

// push sends the oldest pending changes (in the order they were queued),
// whole rows, and settles the queue
// by the results. It reports whether a retryable rejection asks for the
// push to be tried again (the SDKs then skip the pull).
func (d *sdkDevice) push(ctx context.Context) ([]pushOutcome, bool, error) {
	type entry struct {
		table, id, op, clientAt string
		base                    any // the base_updated_at sent: a string, or nil
	}
	var entries []entry
	var changes []any
	labels := map[string]string{}
	err := func() error {
		rows, err := d.db.QueryContext(ctx, `SELECT table_name, record_id, operation, base_updated_at, client_updated_at
			FROM _sdk_pending ORDER BY client_updated_at, rowid LIMIT ?`, sdkBatch)
		if err != nil {
			return err
		}
		defer func() { _ = rows.Close() }()
		for rows.Next() {
			var e entry
			var base sql.NullString
			if err := rows.Scan(&e.table, &e.id, &e.op, &base, &e.clientAt); err != nil {
				return err
			}
			// Null when there is none (left out in Swift's shape, as is
			// a value Swift cannot parse).
			var baseV any
			if _, ok := parseStamp(base.String); base.Valid && (ok || d.shape != swiftShape) {
				baseV = base.String
			}
			e.base = baseV
			entries = append(entries, e)
			changes = append(changes, map[string]any{
				"id": e.id, "table_name": e.table, "operation": e.op, "data": nil, // a delete's: null, or none in Swift's shape
				"client_updated_at": e.clientAt, "base_updated_at": baseV,
			})
		}
		return rows.Err()
	}()
	if err != nil {
		return nil, false, fmt.Errorf("reading the pending changes: %w", err)
	}
	if len(entries) == 0 {
		return nil, false, nil
	}
	// Whole rows, read after the queue (the reads need the connection).
	for i, e := range entries {
		t := d.tables[e.table]
		if t == nil {
			continue
		}
		row, err := readSDKRow(ctx, d.db, t, e.id)
		if err != nil {
			return nil, false, err
		}
		if row != nil {
			labels[e.table+"/"+e.id] = sdkLabel(row)
		}
		if e.op != "delete" && row != nil {
			changes[i].(map[string]any)["data"] = wireRow(t, row)
		}
	}

	resp, err := d.send(ctx, http.MethodPost, "/sync/push", d.request(map[string]any{"changes": changes}))
	if err != nil {
		return nil, false, err
	}
	sent := map[recordKey]entry{}
	for _, e := range entries {
		sent[recordKey{e.table, e.id}] = e
	}
	var outcomes []pushOutcome
	retry := false
	err = d.locked(ctx, func(tx *sql.Tx) error {
		for _, key := range []string{"accepted", "rejected"} {
			list, _ := resp[key].([]any)
			for _, raw := range list {
				r, _ := raw.(map[string]any)
				table, _ := r["table_name"].(string)
				id, _ := r["id"].(string)
				// The transcript names the record, and shows the row it
				// holds after any conflict.
				o := pushOutcome{key: recordKey{table, id}, label: labels[table+"/"+id], showKept: true}
				o.op, _ = r["operation"].(string)
				o.status, _ = r["status"].(string)
				o.reason, _ = r["reason_code"].(string)
				o.message, _ = r["message"].(string)
				o.wire = sdkWire(sent[o.key].clientAt, sent[o.key].base, labels[table+"/"+id], r)
				if o.status == "applied" {
					if o.op == "delete" {
						o.accepted = &version{deleted: true}
					} else if at, ok := parseStamp(r["server_updated_at"]); ok {
						o.accepted = &version{updatedAt: at}
					}
				}
				outcomes = append(outcomes, o)
				t := d.tables[table]
				if o.status == "rejected_retryable" {
					retry = true
					continue
				}
				if _, err := tx.ExecContext(ctx, `DELETE FROM _sdk_pending WHERE table_name = ? AND record_id = ?`, table, id); err != nil {
					return err
				}
				if t == nil {
					continue
				}
				switch o.status {
				case "applied":
					for col, key := range map[string]string{t.updatedAt: "server_updated_at", t.deletedAt: "server_deleted_at"} {
						if s, ok := r[key].(string); ok {
							if _, err := tx.ExecContext(ctx, `UPDATE `+quoteIdent(t.name)+` SET `+quoteIdent(col)+` = ? WHERE `+quoteIdent(t.pk)+` = ?`, s, id); err != nil {
								return err
							}
						}
					}
				case "conflict":
					sv, _ := r["server_version"].(map[string]any)
					if data, ok := sv["data"].(map[string]any); ok {
						if err := upsertSDK(ctx, tx, t, data); err != nil {
							return err
						}
					}
				}
			}
		}
		return nil
	})
	return outcomes, retry, err
}

// sdkWire is the pushWire of a record the SDK device pushed: the
// client_updated_at and base_updated_at it sent, the value of the row it
// sent and the record's result r.
func sdkWire(clientAt string, base any, value string, r map[string]any) *pushWire {
	w := &pushWire{value: value}
	w.editedAt, _ = parseStamp(clientAt)
	if b, ok := parseStamp(base); ok {
		w.base = &b
	}
	if op, _ := r["operation"].(string); op == "delete" {
		w.value = ""
	}
	at, ok := parseStamp(r["server_updated_at"])
	if !ok {
		sv, _ := r["server_version"].(map[string]any)
		at, ok = parseStamp(sv["updated_at"])
	}
	if ok {
		w.version = &at
	}
	return w
}

// pull pulls pages until has_more is false, applying each page with its
// checkpoint. A snapshot_required answer rebuilds from a snapshot.
func (d *sdkDevice) pull(ctx context.Context) ([]arrival, error) {
	var arrivals []arrival
	for {
		cp, err := d.checkpoint(ctx)
		if err != nil {
			return nil, err
		}
		page, err := d.send(ctx, http.MethodPost, "/sync/pull", d.request(map[string]any{
			"checkpoint": cp, "tables": nil, "limit": sdkPageLimit, "known_buckets": nil,
		}))
		if err != nil {
			return nil, err
		}
		if b, _ := page["snapshot_required"].(bool); b {
			_, err := d.bootstrap(ctx)
			return arrivals, err
		}
		err = d.locked(ctx, func(tx *sql.Tx) error {
			changes, _ := page["changes"].([]any)
			for _, raw := range changes {
				rec, _ := raw.(map[string]any)
				name, _ := rec["table_name"].(string)
				id, _ := rec["id"].(string)
				data, _ := rec["data"].(map[string]any)
				t := d.tables[name]
				if t == nil || data == nil {
					continue
				}
				before, err := readSDKRow(ctx, tx, t, id)
				if err != nil {
					return err
				}
				// The SDKs' rule: a local row at least as new stays.
				if before != nil {
					local, lok := parseStamp(before[t.updatedAt])
					remote, rok := parseStamp(rec["updated_at"])
					if lok && rok && !local.Before(remote) {
						continue
					}
				}
				if err := upsertSDK(ctx, tx, t, data); err != nil {
					return fmt.Errorf("applying %s %s: %w", name, id, err)
				}
				after, err := readSDKRow(ctx, tx, t, id)
				if err != nil {
					return err
				}
				if a, ok := describeSDK(t, before, after); ok {
					arrivals = append(arrivals, a)
				}
			}
			deletes, _ := page["deletes"].([]any)
			for _, raw := range deletes {
				del, _ := raw.(map[string]any)
				name, _ := del["table_name"].(string)
				id, _ := del["id"].(string)
				t := d.tables[name]
				if t == nil {
					continue
				}
				before, err := readSDKRow(ctx, tx, t, id)
				if err != nil {
					return err
				}
				if _, err := tx.ExecContext(ctx, `DELETE FROM `+quoteIdent(t.name)+` WHERE `+quoteIdent(t.pk)+` = ?`, id); err != nil {
					return err
				}
				// A row this device deleted itself is already gone
				// from its view: only the others' deletes are news.
				if before != nil && before[t.deletedAt] == nil {
					arrivals = append(arrivals, arrival{table: name, label: sdkLabel(before), what: "deleted"})
				}
			}
			return saveCheckpoint(ctx, tx, page)
		})
		if err != nil {
			return nil, err
		}
		if !hasMore(page) {
			return arrivals, nil
		}
	}
}

// bootstrap replaces the local tables with a snapshot, page by page, and
// returns the records per table. The pending queue is cleared, as the
// SDKs' rebuild does.
func (d *sdkDevice) bootstrap(ctx context.Context) (map[string]int, error) {
	counts := map[string]int{}
	var cursor any // null (left out in Swift's shape): the first page
	err := d.locked(ctx, func(tx *sql.Tx) error {
		for _, name := range d.order {
			if _, err := tx.ExecContext(ctx, `DELETE FROM `+quoteIdent(name)); err != nil {
				return err
			}
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM _sdk_pending`)
		return err
	})
	if err != nil {
		return nil, err
	}
	for {
		page, err := d.send(ctx, http.MethodPost, "/sync/snapshot", d.request(map[string]any{"cursor": cursor, "limit": sdkPageLimit}))
		if err != nil {
			return nil, err
		}
		err = d.locked(ctx, func(tx *sql.Tx) error {
			records, _ := page["records"].([]any)
			for _, raw := range records {
				rec, _ := raw.(map[string]any)
				name, _ := rec["table_name"].(string)
				data, _ := rec["data"].(map[string]any)
				if t := d.tables[name]; t != nil && data != nil {
					if err := upsertSDK(ctx, tx, t, data); err != nil {
						return err
					}
					counts[name]++
				}
			}
			if hasMore(page) {
				return nil
			}
			return saveCheckpoint(ctx, tx, page)
		})
		if err != nil {
			return nil, err
		}
		if !hasMore(page) {
			return counts, nil
		}
		cursor = page["cursor"] // sent back as it came
	}
}

// sync is one SDK cycle: push (until the queue is empty, or a retryable
// rejection stops it, which also skips the pull), then pull.
func (d *sdkDevice) sync(ctx context.Context) ([]pushOutcome, []arrival, error) {
	var outcomes []pushOutcome
	for range 10 {
		got, retry, err := d.push(ctx)
		if err != nil {
			return nil, nil, fmt.Errorf("push: %w", err)
		}
		outcomes = append(outcomes, got...)
		if retry {
			return outcomes, nil, nil
		}
		if len(got) == 0 {
			break
		}
	}
	arrivals, err := d.pull(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("pull: %w", err)
	}
	return outcomes, arrivals, nil
}

// holds returns the version of a record the device holds: the local
// updated_at of its row, or deleted when it has none.
func (d *sdkDevice) holds(ctx context.Context, k recordKey) (version, bool, error) {
	t := d.tables[k.table]
	if t == nil {
		return version{}, false, nil
	}
	row, err := readSDKRow(ctx, d.db, t, k.id)
	if err != nil || row == nil {
		return version{deleted: true}, err == nil, err
	}
	at, ok := parseStamp(row[t.updatedAt])
	return version{updatedAt: at}, ok, nil
}

// syncArrivals is one SDK cycle, for what it changed locally.
func (d *sdkDevice) syncArrivals(ctx context.Context) ([]arrival, error) {
	_, arrivals, err := d.sync(ctx)
	return arrivals, err
}

// waitFor syncs until every record of want has reached the device, for at
// most arrivalTimeout, and returns what changed locally meanwhile.
func (d *sdkDevice) waitFor(ctx context.Context, want map[recordKey]version) ([]arrival, error) {
	return waitArrivals(ctx, d.name, want, d.syncArrivals, d.holds)
}

// tableNames returns the names of the synced tables, sorted.
func (d *sdkDevice) tableNames() []string { return slices.Sorted(slices.Values(d.order)) }

// rowLabel names the local row of a record; false when there is none.
func (d *sdkDevice) rowLabel(ctx context.Context, table, id string) (string, bool) {
	t := d.tables[table]
	if t == nil {
		return "", false
	}
	row, err := readSDKRow(ctx, d.db, t, id)
	if err != nil || row == nil {
		return "", false
	}
	return sdkLabel(row), true
}

// words is how the transcript tells what the SDK device does. It is
// compared without created_at: it keeps the created_at it wrote for the
// rows it created, as the server sets its own and the echo of the row is
// skipped by the SDKs' rule (the local updated_at is the server's already).
func (d *sdkDevice) words() wording {
	shape := "Kotlin's shape (JSON maps, explicit nulls"
	if d.shape == swiftShape {
		shape = "Swift's shape (JSON maps, null fields left out"
	}
	return wording{
		joined:   ", speaking the original SDKs' wire in " + shape + ", whole rows, SQLite triggers)",
		queued:   "pending, queued by its triggers",
		upToDate: "up to date",
		aside:    "created_at",
	}
}

// rows returns every local row of table, soft-deleted ones included, in
// key order.
func (d *sdkDevice) rows(ctx context.Context, table string) ([]localRow, error) {
	t := d.tables[table]
	if t == nil {
		return nil, fmt.Errorf("no table %q", table)
	}
	rows, err := readSDKRows(ctx, d.db, t, "")
	out := make([]localRow, len(rows))
	for i, r := range rows {
		out[i] = r
	}
	return out, err
}

// find returns the key of the row of table whose title (or name) is text.
func (d *sdkDevice) find(ctx context.Context, table, text string) (string, error) {
	t := d.tables[table]
	rows, err := readSDKRows(ctx, d.db, t, "")
	if err != nil {
		return "", err
	}
	for _, r := range rows {
		if sdkLabel(r) == text {
			return fmt.Sprint(r[t.pk]), nil
		}
	}
	return "", fmt.Errorf("%s: no %s %q", d.name, noun(table, 1), text)
}

// dump lists the device's live rows (soft-deleted ones are gone from the
// app's view), one line per row in the format of dump, leaving out skip.
func (d *sdkDevice) dump(ctx context.Context, skip string) ([]string, error) {
	var lines []string
	for _, name := range d.tableNames() {
		t := d.tables[name]
		rows, err := readSDKRows(ctx, d.db, t, `WHERE `+quoteIdent(t.deletedAt)+` IS NULL`)
		if err != nil {
			return nil, err
		}
		for _, r := range rows {
			parts := []string{name, fmt.Sprint(r[t.pk])}
			for _, c := range t.columns {
				if c.name == t.pk || c.name == skip {
					continue
				}
				v := r[c.name]
				if c.logical == "datetime" {
					if ts, ok := parseStamp(v); ok {
						v = ts.UTC().Format(time.RFC3339Nano)
					}
				}
				parts = append(parts, fmt.Sprintf("%s=%v", c.name, v))
			}
			lines = append(lines, strings.Join(parts, " "))
		}
	}
	slices.Sort(lines)
	return lines, nil
}

// parseStamp reads a timestamp as the SDKs do (ISO 8601), also in
// SQLite's own text; false for null or anything else.
func parseStamp(v any) (time.Time, bool) {
	s, ok := v.(string)
	if !ok {
		return time.Time{}, false
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02 15:04:05.999999999", "2006-01-02T15:04:05.999999999"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// sdkLabel names a row for the transcript.
func sdkLabel(row map[string]any) string {
	for _, col := range []string{"title", "name", "label"} {
		if s, ok := row[col].(string); ok {
			return s
		}
	}
	return "?"
}

// describeSDK compares a row before and after a pull on the columns a user
// sees.
func describeSDK(t *sdkTable, before, after map[string]any) (arrival, bool) {
	if before == nil {
		return arrival{table: t.name, label: sdkLabel(after), what: "new"}, true
	}
	var diffs []string
	for _, c := range t.columns {
		if c.name == t.pk || c.name == t.updatedAt || c.name == t.deletedAt || c.name == "created_at" {
			continue
		}
		if b, a := before[c.name], after[c.name]; fmt.Sprint(b) != fmt.Sprint(a) {
			diffs = append(diffs, fmt.Sprintf("%s %s → %s", c.name, show(c.logical, b), show(c.logical, a)))
		}
	}
	if len(diffs) == 0 {
		return arrival{}, false
	}
	return arrival{table: t.name, label: sdkLabel(before), what: strings.Join(diffs, ", ")}, true
}
