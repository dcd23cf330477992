package synchrohttp_test

import (
	"encoding/json"
	"testing"

	"github.com/synchrosync/synchro"
	"github.com/synchrosync/synchro/internal/pgtest"
)

// sdkValuesSchema is a table with the column types whose values the SDKs
// keep in SQLite in another form than they pulled them.
const sdkValuesSchema = `
CREATE TABLE docs (
	id         text PRIMARY KEY,
	user_id    text NOT NULL,
	title      text NOT NULL,
	meta       jsonb,
	tags       json,
	updated_at timestamptz NOT NULL DEFAULT now(),
	deleted_at timestamptz
);`

func sdkValuesRegistry() []*synchro.TableConfig {
	return []*synchro.TableConfig{{TableName: "docs", OwnerColumn: "user_id"}}
}

// asSQLiteText is what the SDKs store in SQLite for a pulled value, and so
// push back with the whole row: an object or an array as its JSON text.
func asSQLiteText(t *testing.T, v any) any {
	t.Helper()
	switch v.(type) {
	case map[string]any, []any:
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	return v
}

// TestConformanceJSONColumnsKeepTheirObjects: a device edits one column of
// a row whose json and jsonb columns hold an object and an array; the SDK
// pushes the whole row with those as the JSON text it keeps in SQLite.
// They must stay an object and an array on the server. Before, a string
// stayed a string, and the first edit of the row by an SDK turned them
// into strings for every device and the application.
func TestConformanceJSONColumnsKeepTheirObjects(t *testing.T) {
	t.Parallel()
	e := confStart(t, sdkValuesSchema, sdkValuesRegistry())
	pgtest.Exec(t, e.db.Super, `INSERT INTO docs (id, user_id, title, meta, tags) VALUES
		('kotlin', 'alice', 'first', '{"tags":["a","b"],"n":1}', '["x", {"y": 2}]'),
		('swift', 'alice', 'first', '{"tags":["a","b"],"n":1}', '["x", {"y": 2}]')`)
	e.caughtUp(t)
	for _, shape := range []string{kotlin, swift} {
		d := e.joined(t, shape, "alice")
		held := d.rows["docs/"+shape]
		if held == nil {
			t.Fatalf("%s: the snapshot lacks docs/%s: %v", shape, shape, d.rows)
		}
		row := map[string]any{}
		for k, v := range held {
			row[k] = asSQLiteText(t, v)
		}
		row["title"] = "edited by " + shape
		wantStatus(t, d.push(record("docs", shape, "update", row, held["updated_at"])), shape, synchro.PushStatusApplied, "")
		var meta, tags, metaType, tagsType string
		pgtest.QueryRow(t, e.db.Super, `SELECT meta::text, tags::text, jsonb_typeof(meta), json_typeof(tags) FROM docs WHERE id = $1`, shape).
			Scan(&meta, &tags, &metaType, &tagsType)
		if metaType != "object" || tagsType != "array" || meta != `{"n": 1, "tags": ["a", "b"]}` {
			t.Errorf("%s: after an edit of the title, meta is the %s %s and tags the %s %s; want the object and the array pulled", shape, metaType, meta, tagsType, tags)
		}
	}
}
