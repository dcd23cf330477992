package local

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/synchrosync/synchro"
)

// Prefix starts the name of every table and trigger the client keeps in
// the local database beside the synced tables.
const Prefix = "_synchro_"

// Schema is a schema contract as the local database uses it.
type Schema struct {
	// Contract is the contract as the server gave it.
	Contract synchro.SchemaResponse
	tables   map[string]*Table
}

// Table is one synced table of a contract.
type Table struct {
	*synchro.SchemaTable
	// PK is the primary key column.
	PK string
	// Pushable reports whether the server takes pushes to the table.
	Pushable bool
	colIdx   map[string]int
	// upsertAll and upsertAllBase write every column into the table and
	// into its base table (upsertSQL with every column set).
	upsertAll, upsertAllBase string
}

// NewSchema checks a contract and indexes it. A table must have a
// primary key of one column that is one of its columns, and name its
// updated-at and deleted-at columns among them; names must not start with
// Prefix.
func NewSchema(c synchro.SchemaResponse) (*Schema, error) {
	s := &Schema{Contract: c, tables: make(map[string]*Table, len(c.Tables))}
	for i := range c.Tables {
		st := &c.Tables[i]
		if st.TableName == "" || strings.HasPrefix(st.TableName, Prefix) {
			return nil, fmt.Errorf("schema contract: table name %q is not usable locally", st.TableName)
		}
		if _, dup := s.tables[st.TableName]; dup {
			return nil, fmt.Errorf("schema contract: table %q is listed twice", st.TableName)
		}
		if len(st.PrimaryKey) != 1 {
			return nil, fmt.Errorf("schema contract: table %q: a primary key of one column is needed, got %q", st.TableName, st.PrimaryKey)
		}
		t := &Table{SchemaTable: st, PK: st.PrimaryKey[0], Pushable: st.PushPolicy != "disabled", colIdx: map[string]int{}}
		for j, col := range st.Columns {
			if col.Name == "" {
				return nil, fmt.Errorf("schema contract: table %q has a column without a name", st.TableName)
			}
			if _, dup := t.colIdx[col.Name]; dup {
				return nil, fmt.Errorf("schema contract: table %q lists column %q twice", st.TableName, col.Name)
			}
			t.colIdx[col.Name] = j
		}
		for _, name := range []string{t.PK, st.UpdatedAtColumn, st.DeletedAtColumn} {
			if _, ok := t.colIdx[name]; !ok {
				return nil, fmt.Errorf("schema contract: table %q names column %q (key, updated_at_column or deleted_at_column), which is not one of its columns", st.TableName, name)
			}
		}
		all := make([]bool, len(st.Columns))
		for j := range all {
			all[j] = true
		}
		t.upsertAll, t.upsertAllBase = upsertSQL(st.TableName, t, all), upsertSQL(baseTable(st.TableName), t, all)
		s.tables[st.TableName] = t
	}
	return s, nil
}

// Table returns the table named name, nil when the contract has none.
func (s *Schema) Table(name string) *Table {
	if s == nil {
		return nil
	}
	return s.tables[name]
}

// Tables returns the tables in contract order.
func (s *Schema) Tables() []*Table {
	out := make([]*Table, 0, len(s.tables))
	for i := range s.Contract.Tables {
		out = append(out, s.tables[s.Contract.Tables[i].TableName])
	}
	return out
}

// Column returns the column named name, nil when the table has none.
func (t *Table) Column(name string) *synchro.SchemaColumn {
	i, ok := t.colIdx[name]
	if !ok {
		return nil
	}
	return &t.Columns[i]
}

// managed reports whether the server sets column name itself, so that a
// pushed value of it is ignored: the updated-at and deleted-at columns and
// the usual created_at.
func (t *Table) managed(name string) bool {
	return name == t.UpdatedAtColumn || name == t.DeletedAtColumn || name == "created_at" || name == "updated_at" || name == "deleted_at"
}

// quoteIdent quotes an SQLite identifier.
func quoteIdent(name string) string {
	return `"` + strings.ReplaceAll(name, `"`, `""`) + `"`
}

// quoteString quotes an SQLite string literal.
func quoteString(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

// baseTable is the name of the table that keeps, for the rows with a
// pending local change, the server's row (see the package doc).
func baseTable(t string) string { return Prefix + "base_" + t }

// bareDefaultRE matches the defaults SQLite takes without parentheses (and
// so in ALTER TABLE ADD COLUMN): numbers, string literals, NULL, TRUE,
// FALSE.
var bareDefaultRE = regexp.MustCompile(`^(?:[+-]?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|'(?:[^']|'')*'|(?i:null|true|false))$`)

// columnDef is the definition of column c in the local table of t.
func columnDef(t *Table, c *synchro.SchemaColumn) string {
	def := quoteIdent(c.Name) + " " + sqliteType(c.LogicalType)
	if c.Name == t.PK {
		def += " PRIMARY KEY NOT NULL"
	} else if !c.Nullable && c.DefaultKind != synchro.DefaultKindServerOnly {
		// A column whose default only the server computes stays nullable:
		// the device cannot give it a value.
		def += " NOT NULL"
	}
	if d := strings.TrimSpace(c.SQLiteDefaultSQL); d != "" {
		if bareDefaultRE.MatchString(d) || strings.HasPrefix(d, "(") {
			def += " DEFAULT " + d
		} else {
			def += " DEFAULT (" + d + ")"
		}
	}
	return def
}

// createTableSQL is the CREATE TABLE statement of t's local table.
func createTableSQL(t *Table) string {
	defs := make([]string, len(t.Columns))
	for i := range t.Columns {
		defs[i] = columnDef(t, &t.Columns[i])
	}
	return "CREATE TABLE " + quoteIdent(t.TableName) + " (\n\t" + strings.Join(defs, ",\n\t") + "\n)"
}

// createBaseSQL is the CREATE TABLE statement of t's base table: the same
// columns and types, no constraints but the key.
func createBaseSQL(t *Table) string {
	defs := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		defs[i] = quoteIdent(c.Name) + " " + sqliteType(c.LogicalType)
		if c.Name == t.PK {
			defs[i] += " PRIMARY KEY NOT NULL"
		}
	}
	return "CREATE TABLE " + quoteIdent(baseTable(t.TableName)) + " (" + strings.Join(defs, ", ") + ")"
}

// triggerNames are the suffixes of the triggers of a synced table.
var triggerNames = []string{"insert", "update", "softdelete", "rekey", "delete"}

// triggerName is the name of trigger kind of table t.
func triggerName(kind, t string) string { return Prefix + kind + "_" + t }

// dropTriggersSQL drops every trigger the client may have made on table t.
func dropTriggersSQL(t string) []string {
	var out []string
	for _, kind := range triggerNames {
		out = append(out, "DROP TRIGGER IF EXISTS "+quoteIdent(triggerName(kind, t)))
	}
	return out
}

// SQL fragments of the triggers.
const (
	// capturing is true unless the client itself is writing (see
	// _synchro_control).
	capturing = `(SELECT applying FROM _synchro_control WHERE id = 1) = 0`
	// bumpChanges counts a captured change.
	bumpChanges = `UPDATE _synchro_control SET changes = changes + 1 WHERE id = 1;`
	// nowSQL is the time of a local change: RFC 3339 in UTC with
	// milliseconds, as the SDKs send client_updated_at.
	nowSQL = `strftime('%Y-%m-%dT%H:%M:%fZ', 'now')`
)

// triggersSQL returns the statements that create t's triggers. Their
// behaviour is described in the package documentation.
func triggersSQL(t *Table) []string {
	tbl, pk := quoteIdent(t.TableName), quoteIdent(t.PK)
	if !t.Pushable {
		var out []string
		for _, ev := range []string{"INSERT", "UPDATE", "DELETE"} {
			kind := map[string]string{"INSERT": "insert", "UPDATE": "update", "DELETE": "delete"}[ev]
			out = append(out, `CREATE TRIGGER `+quoteIdent(triggerName(kind, t.TableName))+` BEFORE `+ev+` ON `+tbl+
				` WHEN `+capturing+` BEGIN SELECT RAISE(ABORT, `+
				quoteString(fmt.Sprintf("synchro: table %s is read-only: the server takes no changes to it", t.TableName))+`); END`)
		}
		return out
	}
	upd, del := quoteIdent(t.UpdatedAtColumn), quoteIdent(t.DeletedAtColumn)
	softDelete := `NEW.` + del + ` IS NOT NULL AND OLD.` + del + ` IS NULL`
	var changed []string
	for _, c := range t.Columns {
		q := quoteIdent(c.Name)
		changed = append(changed, `NEW.`+q+` IS NOT OLD.`+q)
	}
	return []string{
		`CREATE TRIGGER ` + quoteIdent(triggerName("insert", t.TableName)) + ` AFTER INSERT ON ` + tbl +
			` WHEN ` + capturing + ` BEGIN ` + bumpChanges + captureInsert(t, "NEW") + ` END`,
		`CREATE TRIGGER ` + quoteIdent(triggerName("update", t.TableName)) + ` AFTER UPDATE ON ` + tbl +
			` WHEN ` + capturing + ` AND NEW.` + pk + ` IS OLD.` + pk + ` AND NOT (` + softDelete + `) AND (` + strings.Join(changed, ` OR `) + `)` +
			` BEGIN ` + bumpChanges + captureBase(t, "OLD") + `
	INSERT INTO _synchro_outbox (table_name, record_id, operation, base_updated_at, client_updated_at)
	VALUES (` + quoteString(t.TableName) + `, CAST(NEW.` + pk + ` AS TEXT), 'update', OLD.` + upd + `, ` + nowSQL + `)
	ON CONFLICT (table_name, record_id) DO UPDATE SET client_updated_at = excluded.client_updated_at, version = version + 1;
END`,
		// Setting the deleted-at column deletes the row (the delete
		// trigger queues the delete), as the SDKs' soft deletes do.
		`CREATE TRIGGER ` + quoteIdent(triggerName("softdelete", t.TableName)) + ` AFTER UPDATE ON ` + tbl +
			` WHEN ` + capturing + ` AND NEW.` + pk + ` IS OLD.` + pk + ` AND ` + softDelete +
			` BEGIN DELETE FROM ` + tbl + ` WHERE ` + pk + ` = NEW.` + pk + `; END`,
		// A changed key: the old row is deleted, the new one created.
		`CREATE TRIGGER ` + quoteIdent(triggerName("rekey", t.TableName)) + ` AFTER UPDATE ON ` + tbl +
			` WHEN ` + capturing + ` AND NEW.` + pk + ` IS NOT OLD.` + pk +
			` BEGIN ` + bumpChanges + captureDelete(t, "OLD") + captureInsert(t, "NEW") + ` END`,
		`CREATE TRIGGER ` + quoteIdent(triggerName("delete", t.TableName)) + ` AFTER DELETE ON ` + tbl +
			` WHEN ` + capturing + ` BEGIN ` + bumpChanges + captureDelete(t, "OLD") + ` END`,
	}
}

// pendingSQL is an EXISTS test for an outbox entry of the row ref (NEW or
// OLD) of t.
func pendingSQL(t *Table, ref, extra string) string {
	return `EXISTS (SELECT 1 FROM _synchro_outbox WHERE table_name = ` + quoteString(t.TableName) +
		` AND record_id = CAST(` + ref + `.` + quoteIdent(t.PK) + ` AS TEXT)` + extra + `)`
}

// captureBase keeps the row ref of t in its base table when it has no
// pending change yet: it is then the server's row. The deleted-at column is
// kept null: a row the server sent is live.
func captureBase(t *Table, ref string) string {
	cols := make([]string, len(t.Columns))
	vals := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		cols[i] = quoteIdent(c.Name)
		vals[i] = ref + "." + quoteIdent(c.Name)
		if c.Name == t.DeletedAtColumn {
			vals[i] = "NULL"
		}
	}
	return `
	INSERT OR REPLACE INTO ` + quoteIdent(baseTable(t.TableName)) + ` (` + strings.Join(cols, ", ") + `)
	SELECT ` + strings.Join(vals, ", ") + ` WHERE NOT ` + pendingSQL(t, ref, "") + `;`
}

// captureInsert queues the create of the row ref of t. A pending delete
// of the same key becomes an update when the server has the row (its base
// row) and the delete was never sent; a create otherwise. A delete already
// sent may have been applied (its answer lost, or not back yet): the
// server's row is then deleted, and an update of it would be refused
// (record_deleted), while a create brings it back. When the delete never
// arrived, the server answers the create record_exists, and the create is
// sent again as an update (see Settle).
func captureInsert(t *Table, ref string) string {
	name, pk := quoteString(t.TableName), quoteIdent(t.PK)
	onServer := `EXISTS (SELECT 1 FROM ` + quoteIdent(baseTable(t.TableName)) + ` AS b WHERE b.` + pk + ` = ` + ref + `.` + pk + `)`
	asUpdate := `sent_version IS NULL AND ` + onServer
	return `
	INSERT INTO _synchro_outbox (table_name, record_id, operation, client_updated_at)
	VALUES (` + name + `, CAST(` + ref + `.` + pk + ` AS TEXT), 'create', ` + nowSQL + `)
	ON CONFLICT (table_name, record_id) DO UPDATE SET
		operation = CASE WHEN operation <> 'delete' THEN operation WHEN ` + asUpdate + ` THEN 'update' ELSE 'create' END,
		base_updated_at = CASE WHEN operation = 'delete' AND NOT (` + asUpdate + `) THEN NULL ELSE base_updated_at END,
		client_updated_at = excluded.client_updated_at,
		version = version + 1;`
}

// captureDelete queues the delete of the row ref of t. A create never sent
// to the server is simply forgotten.
func captureDelete(t *Table, ref string) string {
	name, pk := quoteString(t.TableName), quoteIdent(t.PK)
	unsent := ` AND operation = 'create' AND sent_version IS NULL`
	return captureBase(t, ref) + `
	INSERT INTO _synchro_outbox (table_name, record_id, operation, base_updated_at, client_updated_at)
	SELECT ` + name + `, CAST(` + ref + `.` + pk + ` AS TEXT), 'delete', ` + ref + `.` + quoteIdent(t.UpdatedAtColumn) + `, ` + nowSQL + `
	WHERE NOT ` + pendingSQL(t, ref, unsent) + `
	ON CONFLICT (table_name, record_id) DO UPDATE SET
		operation = 'delete', client_updated_at = excluded.client_updated_at, version = version + 1;
	DELETE FROM _synchro_outbox WHERE table_name = ` + name + ` AND record_id = CAST(` + ref + `.` + pk + ` AS TEXT)` + unsent + `;`
}

// columnNames returns the quoted names of t's columns.
func columnNames(t *Table) []string {
	out := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		out[i] = quoteIdent(c.Name)
	}
	return out
}
