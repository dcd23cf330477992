package synchrohttp_test

import (
	"encoding/json"
	"maps"
	"strings"
	"testing"

	"github.com/synchrosync/synchro"
)

// confTypedSchema is a table with a column of each kind that needs a
// conversion between what SQLite holds and what PostgreSQL stores.
const confTypedSchema = `
CREATE TABLE blobs (
	id         uuid PRIMARY KEY,
	user_id    text NOT NULL,
	payload    bytea,
	taken_at   timestamptz,
	day        date,
	flag       boolean NOT NULL DEFAULT false,
	big        bigint,
	amount     numeric(12,2),
	tags       text[],
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now(),
	deleted_at timestamptz
);
`

// sqliteRow is a pulled row as an SDK holds it in SQLite and pushes it
// back: arrays and objects as their JSON text, the rest as they came.
func sqliteRow(t *testing.T, row map[string]any) map[string]any {
	t.Helper()
	out := maps.Clone(row)
	for k, v := range out {
		switch v.(type) {
		case []any, map[string]any:
			b, err := json.Marshal(v)
			if err != nil {
				t.Fatal(err)
			}
			out[k] = string(b)
		}
	}
	return out
}

// TestConformanceTypedValues pushes a row in the forms the SDKs send from
// SQLite (a blob as base64, SQLite's timestamp text, an array as JSON
// text), checks what PostgreSQL stores, pulls it on a second device (bytes
// come back as "\\x..." hex), and has that device push the row it holds
// back with one change (a boolean sent as 0, as a React Native driver
// does): applied, every other value unchanged. Values in a form their
// column does not accept are refused alone, terminally, naming the column.
func TestConformanceTypedValues(t *testing.T) {
	t.Parallel()
	for _, shape := range []string{kotlin, swift} {
		t.Run(shape, func(t *testing.T) {
			t.Parallel()
			e := confStart(t, confTypedSchema, []*synchro.TableConfig{{TableName: "blobs", OwnerColumn: "user_id"}})
			a, b := e.joined(t, shape, "alice"), e.joined(t, shape, "alice")

			id := newID()
			now := localStamp(shape)
			row := map[string]any{
				"id": id, "user_id": "alice", "payload": "AQL/", "taken_at": "2026-12-02 04:20:23.5", "day": "2026-12-02",
				"flag": true, "big": json.Number("9007199254740993"), "amount": json.Number("12.5"), "tags": `["a","b c"]`,
				"created_at": now, "updated_at": now, "deleted_at": nil,
			}
			wantStatus(t, a.push(record("blobs", id, "create", row, nil)), id, synchro.PushStatusApplied, "")
			stored := func() string {
				var s string
				err := e.db.Super.QueryRowContext(t.Context(), `SELECT concat_ws('|', encode(payload, 'hex'),
					to_char(taken_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.MS'), day, flag, big, amount, tags)
					FROM blobs WHERE id = $1::uuid`, id).Scan(&s)
				if err != nil {
					t.Fatal(err)
				}
				return s
			}
			if got, want := stored(), `0102ff|2026-12-02 04:20:23.500|2026-12-02|t|9007199254740993|12.50|{a,"b c"}`; got != want {
				t.Fatalf("stored %s, want %s", got, want)
			}

			b.pullUntil("the row", func() bool { return b.rows["blobs/"+id] != nil })
			pulled := b.rows["blobs/"+id]
			if pulled["payload"] != `\x0102ff` || pulled["big"] != json.Number("9007199254740993") {
				t.Errorf("pulled payload %v, big %v", pulled["payload"], pulled["big"])
			}
			if tags, ok := pulled["tags"].([]any); !ok || len(tags) != 2 {
				t.Errorf("pulled tags %#v, want a JSON array", pulled["tags"])
			}

			back := sqliteRow(t, pulled)
			back["flag"] = json.Number("0")
			base := pulled["updated_at"]
			wantStatus(t, b.push(record("blobs", id, "update", back, base)), id, synchro.PushStatusApplied, "")
			if got, want := stored(), `0102ff|2026-12-02 04:20:23.500|2026-12-02|f|9007199254740993|12.50|{a,"b c"}`; got != want {
				t.Errorf("after pushing the pulled row back: stored %s, want %s", got, want)
			}

			// One bad value refuses its record only.
			good := newID()
			records := []map[string]any{record("blobs", good, "create", map[string]any{"id": good, "user_id": "alice", "payload": "aGk="}, nil)}
			bad := map[string]struct {
				col string
				val any
			}{
				newID(): {"payload", 12},
				newID(): {"flag", "yes"},
				newID(): {"taken_at", 1764649223},
				newID(): {"tags", "{a,b"}, // PostgreSQL's array text, malformed
				newID(): {"big", 1.5},
			}
			for bid, c := range bad {
				records = append(records, record("blobs", bid, "create", map[string]any{"id": bid, "user_id": "alice", c.col: c.val}, nil))
			}
			resp := a.push(records...)
			wantStatus(t, resp, good, synchro.PushStatusApplied, "")
			for bid, c := range bad {
				r := wantStatus(t, resp, bid, synchro.PushStatusRejectedTerminal, "invalid_data")
				if msg, _ := r["message"].(string); !strings.Contains(msg, `column "`+c.col+`" expects`) {
					t.Errorf("%s = %v: message %q does not name the column and the form it expects", c.col, c.val, msg)
				}
			}
		})
	}
}
