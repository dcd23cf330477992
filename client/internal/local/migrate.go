package local

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/synchrosync/synchro"
)

// ReasonSchemaChanged is the reason code of a pending local change that a
// schema change left without a place: its table is gone, its key changed,
// or its row no longer fits the new table. The client decides it, not the
// server.
const ReasonSchemaChanged = "schema_changed"

// RewindAge is how far back a schema change made in place rewinds the
// checkpoint: the pulls of that last stretch are made again, so that rows
// a server delivered under its previous contract, while it had not yet
// noticed its own schema change (the engine re-reads its catalog every few
// seconds), come again with the new columns.
const RewindAge = time.Minute

// Install creates the synced tables of schema, their base tables and
// triggers, in a file that has none, and stores the contract. A snapshot
// is needed next (its reason "initial").
func (s *Store) Install(ctx context.Context, schema *Schema) error {
	return s.Apply(ctx, func(tx *sql.Tx) error {
		if err := createAll(ctx, tx, schema); err != nil {
			return err
		}
		if err := storeContract(ctx, tx, schema); err != nil {
			return err
		}
		return setMeta(ctx, tx, metaSnapshotNeeded, "initial")
	})
}

// createAll creates every table of schema with its base table and
// triggers.
func createAll(ctx context.Context, tx *sql.Tx, schema *Schema) error {
	for _, t := range schema.Tables() {
		stmts := []string{createTableSQL(t), createBaseSQL(t)}
		stmts = append(stmts, triggersSQL(t)...)
		for _, stmt := range stmts {
			if _, err := tx.ExecContext(ctx, stmt); err != nil {
				return fmt.Errorf("creating the local table %s: %w", t.TableName, err)
			}
		}
	}
	return nil
}

func storeContract(ctx context.Context, tx *sql.Tx, schema *Schema) error {
	b, err := json.Marshal(schema.Contract)
	if err != nil {
		return err
	}
	return setMeta(ctx, tx, metaContract, string(b))
}

// Migration tells how Migrate moved the local tables to a new contract.
type Migration struct {
	// InPlace: the tables were altered, their rows kept; the checkpoint
	// was rewound by RewindAge when columns were added (Rewound).
	InPlace bool
	Rewound bool
	// Otherwise the tables were rebuilt and a snapshot is needed; Rejected
	// lists the pending changes that did not fit the new tables (reason
	// ReasonSchemaChanged), which left the outbox.
	Rejected []Rejection
}

// Migrate moves the local tables from the contract old to next. Changes
// that only add columns (that SQLite can add with their defaults, and
// whose defaults are not computed by the server only), or that change
// nothing the local tables hold (a push policy, dependencies), are made in
// place, keeping every row; when columns were added, the checkpoint is
// rewound (see RewindAge). Any other change (a table added or removed, a
// column removed or retyped, a column added with a default only the
// server computes, a key, the timestamp columns or the bucketing changed)
// rebuilds the tables: see Rebuild.
func (s *Store) Migrate(ctx context.Context, old, next *Schema, now time.Time) (*Migration, error) {
	if compatible(old, next) {
		err := s.Apply(ctx, func(tx *sql.Tx) error { return alterInPlace(ctx, tx, old, next, now) })
		switch {
		case err == nil:
			return &Migration{InPlace: true, Rewound: addsColumns(old, next)}, nil
		case !errors.Is(err, errNotInPlace):
			return nil, err
		}
		// SQLite refused an ALTER, or there is no checkpoint to rewind
		// to: rebuild.
	}
	rejected, err := s.Rebuild(ctx, next)
	if err != nil {
		return nil, err
	}
	return &Migration{Rejected: rejected}, nil
}

// errNotInPlace reports a change that cannot be made in place after all.
var errNotInPlace = errors.New("not possible in place")

// compatible reports whether next differs from old only in ways Migrate
// makes in place. A new column whose default only the server computes
// (server_only, such as gen_random_uuid()) is not: PostgreSQL gave every
// existing row a value the device cannot compute, and only the rows of
// the last RewindAge would come again, so the others would keep NULL.
func compatible(old, next *Schema) bool {
	if len(old.tables) != len(next.tables) {
		return false
	}
	for name, o := range old.tables {
		n := next.tables[name]
		if n != nil {
			for _, nc := range n.Columns {
				if o.Column(nc.Name) == nil && nc.DefaultKind == synchro.DefaultKindServerOnly {
					return false
				}
			}
		}
		if n == nil || n.PK != o.PK || n.UpdatedAtColumn != o.UpdatedAtColumn || n.DeletedAtColumn != o.DeletedAtColumn ||
			n.ParentTable != o.ParentTable || n.ParentFKCol != o.ParentFKCol || n.BucketByColumn != o.BucketByColumn ||
			n.BucketPrefix != o.BucketPrefix || n.GlobalWhenBucketNull != o.GlobalWhenBucketNull ||
			n.AllowGlobalRead != o.AllowGlobalRead || n.BucketFunction != o.BucketFunction {
			return false
		}
		for _, oc := range o.Columns {
			nc := n.Column(oc.Name)
			if nc == nil || columnDef(o, &oc) != columnDef(n, nc) {
				return false
			}
		}
	}
	return true
}

// addsColumns reports whether next has columns old lacks.
func addsColumns(old, next *Schema) bool {
	for name, n := range next.tables {
		if len(n.Columns) != len(old.tables[name].Columns) {
			return true
		}
	}
	return false
}

// alterInPlace adds the new columns of next to the tables and their base
// tables, renews the triggers, stores the contract and rewinds the
// checkpoint when columns were added.
func alterInPlace(ctx context.Context, tx *sql.Tx, old, next *Schema, now time.Time) error {
	for _, n := range next.Tables() {
		o := old.Table(n.TableName)
		for i := range n.Columns {
			c := &n.Columns[i]
			if o.Column(c.Name) != nil {
				continue
			}
			if _, err := tx.ExecContext(ctx, `ALTER TABLE `+quoteIdent(n.TableName)+` ADD COLUMN `+columnDef(n, c)); err != nil {
				return fmt.Errorf("%w: %s.%s: %v", errNotInPlace, n.TableName, c.Name, err)
			}
			if _, err := tx.ExecContext(ctx, `ALTER TABLE `+quoteIdent(baseTable(n.TableName))+` ADD COLUMN `+
				quoteIdent(c.Name)+` `+sqliteType(c.LogicalType)); err != nil {
				return fmt.Errorf("%w: %s.%s: %v", errNotInPlace, n.TableName, c.Name, err)
			}
		}
		stmts := append(dropTriggersSQL(n.TableName), triggersSQL(n)...)
		for _, stmt := range stmts {
			if _, err := tx.ExecContext(ctx, stmt); err != nil {
				return fmt.Errorf("renewing the triggers of %s: %w", n.TableName, err)
			}
		}
	}
	if addsColumns(old, next) {
		done, err := getMeta(ctx, tx, metaSnapshotDone)
		if err != nil {
			return err
		}
		running, err := getMeta(ctx, tx, metaSnapshotCursor)
		if err != nil {
			return err
		}
		if done == "1" && running == "" {
			cp, ok, err := rewindTarget(ctx, tx, now, RewindAge)
			if err != nil {
				return err
			}
			if !ok {
				return fmt.Errorf("%w: no checkpoint of %v ago to pull again from", errNotInPlace, RewindAge)
			}
			if err := setMeta(ctx, tx, metaCheckpoint, fmt.Sprint(cp)); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `DELETE FROM _synchro_checkpoints WHERE checkpoint > ?`, cp); err != nil {
				return err
			}
		}
		// A snapshot under way restarts: its pages so far may lack the
		// new columns.
		if running != "" {
			if err := setMeta(ctx, tx, metaSnapshotNeeded, "schema_changed"); err != nil {
				return err
			}
		}
	}
	return storeContract(ctx, tx, next)
}

// pendingRow is a pending local change with its row, kept across a
// rebuild.
type pendingRow struct {
	table, id, op, clientUpdatedAt string
	row                            map[string]any // nil for a delete
}

// Rebuild replaces the local tables by empty ones built from next, keeping
// the pending local changes that still fit, and asks for a snapshot (its
// reason "schema_changed"). The rows of the pending creates and updates
// are written into the new tables, converted to the new columns' types
// (columns that are gone are left behind, new ones take their defaults);
// the pending deletes stay. A change whose table is gone, or whose key
// column changed, or whose row the new table refuses (a new NOT NULL
// column without a default, say), leaves the outbox as a rejection with
// reason ReasonSchemaChanged and its row kept in the rejection. It returns
// those rejections. Everything else (the base rows, the checkpoint) comes
// from the snapshot.
func (s *Store) Rebuild(ctx context.Context, next *Schema) ([]Rejection, error) {
	var rejected []Rejection
	err := s.Apply(ctx, func(tx *sql.Tx) error {
		rejected = nil
		st, err := stateIn(ctx, tx)
		if err != nil {
			return err
		}
		old := st.Schema
		var kept []pendingRow
		if old != nil {
			if kept, err = readPending(ctx, tx, old); err != nil {
				return err
			}
			for _, t := range old.Tables() {
				stmts := append(dropTriggersSQL(t.TableName),
					`DROP TABLE IF EXISTS `+quoteIdent(t.TableName), `DROP TABLE IF EXISTS `+quoteIdent(baseTable(t.TableName)))
				for _, stmt := range stmts {
					if _, err := tx.ExecContext(ctx, stmt); err != nil {
						return fmt.Errorf("dropping the local table %s: %w", t.TableName, err)
					}
				}
			}
		}
		if err := createAll(ctx, tx, next); err != nil {
			return err
		}
		now := time.Now().UTC().Format(TimeLayout)
		for _, p := range kept {
			reason := ""
			n, o := next.Table(p.table), old.Table(p.table)
			switch {
			case n == nil:
				reason = fmt.Sprintf("table %s is no longer synced", p.table)
			case n.PK != o.PK:
				reason = fmt.Sprintf("the key of table %s changed from %s to %s", p.table, o.PK, n.PK)
			case p.row != nil:
				if err := writeConverted(ctx, tx, o, n, p.row); err != nil {
					reason = fmt.Sprintf("the row does not fit the new table %s: %v", p.table, err)
				}
			}
			if reason == "" {
				continue
			}
			rej := Rejection{Table: p.table, ID: p.id, Operation: p.op, Status: synchro.PushStatusRejectedTerminal,
				ReasonCode: ReasonSchemaChanged, Message: "the server's schema changed: " + reason,
				ClientUpdatedAt: p.clientUpdatedAt, RejectedAt: now}
			if p.row != nil {
				rej.Data = rowJSON(o, p.row)
			}
			if err := insertRejection(ctx, tx, &rej); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `DELETE FROM _synchro_outbox WHERE table_name = ? AND record_id = ?`, p.table, p.id); err != nil {
				return err
			}
			rejected = append(rejected, rej)
		}
		if err := storeContract(ctx, tx, next); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM _synchro_checkpoints`); err != nil {
			return err
		}
		for _, k := range []string{metaSnapshotCursor, metaCheckpoint} {
			if err := deleteMeta(ctx, tx, k); err != nil {
				return err
			}
		}
		return setMeta(ctx, tx, metaSnapshotNeeded, "schema_changed")
	})
	return rejected, err
}

// readPending reads the outbox with the current row of each create and
// update.
func readPending(ctx context.Context, tx *sql.Tx, schema *Schema) ([]pendingRow, error) {
	rows, err := tx.QueryContext(ctx, `SELECT table_name, record_id, operation, client_updated_at FROM _synchro_outbox ORDER BY seq`)
	if err != nil {
		return nil, fmt.Errorf("reading the outbox: %w", err)
	}
	var out []pendingRow
	for rows.Next() {
		var p pendingRow
		if err := rows.Scan(&p.table, &p.id, &p.op, &p.clientUpdatedAt); err != nil {
			_ = rows.Close()
			return nil, fmt.Errorf("reading the outbox: %w", err)
		}
		out = append(out, p)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return nil, fmt.Errorf("reading the outbox: %w", err)
	}
	for i := range out {
		p := &out[i]
		t := schema.Table(p.table)
		if t == nil || p.op == "delete" {
			continue
		}
		if p.row, err = readRow(ctx, tx, t.TableName, t, p.id); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// writeConverted writes row, a row of table o, into table n, which has the
// same name: the columns both have, converted to n's types.
func writeConverted(ctx context.Context, tx *sql.Tx, o, n *Table, row map[string]any) error {
	conv := map[string]any{}
	for _, name := range slices.Sorted(maps.Keys(row)) {
		oc, nc := o.Column(name), n.Column(name)
		if oc == nil || nc == nil {
			continue
		}
		v, err := fromJSON(nc.LogicalType, toJSON(oc.LogicalType, row[name]))
		if err != nil {
			return fmt.Errorf("column %s: %w", name, err)
		}
		conv[name] = v
	}
	// A savepoint, so that a refused row leaves the rest of the rebuild.
	if _, err := tx.ExecContext(ctx, `SAVEPOINT synchro_row`); err != nil {
		return err
	}
	if err := writeValues(ctx, tx, n.TableName, n, conv); err != nil {
		_, rbErr := tx.ExecContext(ctx, `ROLLBACK TO synchro_row`)
		return errors.Join(err, rbErr)
	}
	_, err := tx.ExecContext(ctx, `RELEASE synchro_row`)
	return err
}

// stateIn reads the sync state inside tx.
func stateIn(ctx context.Context, tx *sql.Tx) (*State, error) {
	st := &State{}
	c, err := getMeta(ctx, tx, metaContract)
	if err != nil || c == "" {
		return st, err
	}
	var contract synchro.SchemaResponse
	if err := json.Unmarshal([]byte(c), &contract); err != nil {
		return nil, fmt.Errorf("reading the stored schema contract: %w", err)
	}
	st.Schema, err = NewSchema(contract)
	return st, err
}
