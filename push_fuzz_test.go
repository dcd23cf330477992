package synchro

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/synchrosync/synchro/internal/pgtest"
)

// fuzzPushSchema is the table FuzzPushData creates records in: one column
// of each common kind.
const fuzzPushSchema = `
CREATE TYPE fuzz_mood AS ENUM ('happy', 'sad');
CREATE TABLE fuzz_rows (
	id         uuid PRIMARY KEY,
	user_id    text NOT NULL,
	label      text,
	title      varchar(20),
	count      integer,
	big        bigint,
	amount     numeric(12,2),
	ratio      double precision,
	flag       boolean NOT NULL DEFAULT false,
	doc        jsonb,
	ints       int[],
	tags       text[],
	raw        bytea,
	feel       fuzz_mood,
	at         timestamptz,
	day        date,
	ref        uuid,
	positive   integer CHECK (positive > 0),
	updated_at timestamptz NOT NULL DEFAULT now(),
	deleted_at timestamptz
)`

// FuzzPushData pushes one create with arbitrary data and checks that every
// payload gets a per-record outcome (never an error, never a panic, never a
// retryable or internal failure) and that the row exists exactly when the
// record was applied.
func FuzzPushData(f *testing.F) {
	for _, seed := range []string{
		`{"label":"hello"}`,
		`{}`,
		`{"label":"x","count":1,"big":9007199254740993,"amount":12.34,"ratio":1.5,"flag":true,"doc":{"a":[1,{"b":null}]},"ints":[1,2],"tags":["a","b"],"raw":"\\x00ff","feel":"sad","at":"2024-01-01T00:00:00Z","day":"2024-01-01","ref":"00000000-0000-4000-8000-000000000000","positive":3}`,
		`null`,
		``,
		`   `,
		`[]`,
		`[{"label":"x"}]`,
		`"label"`,
		`42`,
		`true`,
		`{"doc":{"a":{"b":{"c":{"d":{"e":[[[[[[1]]]]]]}}}}}}`,
		`{"big":99999999999999999999999999}`,
		`{"count":1e400}`,
		`{"ratio":1e400}`,
		`{"ratio":-1e-400}`,
		`{"amount":12345678901.999}`,
		`{"label":"` + "\xff\xfe" + `"}`,
		`{"` + "\xff" + `":"x"}`,
		`{"label":"a","label":"b"}`,
		`{"label":1,"label":"two"}`,
		`{"nope":1}`,
		`{"label\u0000":"x"}`,
		`{"label":"a\u0000b"}`,
		`{"doc":{"k\u0000":"v"}}`,
		`{"label":"\ud800"}`,
		`{"count":"abc"}`,
		`{"count":1.5}`,
		`{"count":[1]}`,
		`{"flag":"abc"}`,
		`{"flag":null}`,
		`{"flag":1}`,
		`{"ints":{"a":1}}`,
		`{"ints":[[1],[2,3]]}`,
		`{"ints":[1,"x"]}`,
		`{"tags":"notarray"}`,
		`{"raw":"\\xzz"}`,
		`{"raw":12}`,
		`{"feel":"angry"}`,
		`{"at":"not a time"}`,
		`{"day":"2024-02-30"}`,
		`{"ref":"nope"}`,
		`{"title":"this string is longer than twenty characters"}`,
		`{"positive":0}`,
		`{"user_id":"someone-else"}`,
		`{"user_id":"fuzzer","label":"mine"}`,
		`{"user_id":null}`,
		`{"id":"00000000-0000-4000-8000-000000000000"}`,
		`{"id":null}`,
		`{"updated_at":"2030-01-01T00:00:00Z"}`,
		`{"deleted_at":"2030-01-01T00:00:00Z"}`,
		`{"label":"x"} trailing`,
		`{"label":`,
		`{"label":"x",}`,
		`{"LABEL":"x"}`,
		`{"label":"emoji 🌍 and \u00e9"}`,
		`{"doc":"` + strings.Repeat("x", 5000) + `"}`,
		`{"label":"` + strings.Repeat("é", 3000) + `"}`,
		strings.Repeat(`{"doc":`, 200) + `1` + strings.Repeat(`}`, 200),
		`{"label":{"a":1}}`,
		`{"label":42}`,
		`{"label":` + strings.Repeat(`[`, 3000) + strings.Repeat(`]`, 3000) + `}`,
		`{"raw":"AQL/"}`,
		`{"raw":"aGVsbG8"}`,
		`{"raw":"\\x0102FF"}`,
		`{"at":"2024-01-01 10:00:00"}`,
		`{"at":"now"}`,
		`{"at":1704103200}`,
		`{"ints":"[1,2]"}`,
		`{"ints":"{1,2}"}`,
		`{"flag":"true"}`,
		`{"flag":0}`,
		`{"count":1.0}`,
		`{"big":"9007199254740993"}`,
	} {
		f.Add([]byte(seed))
	}

	// One database and engine for every input.
	db := pgtest.NewMigratedDatabase(f)
	pgtest.Exec(f, db.Super, fuzzPushSchema)
	reg := NewRegistry()
	reg.Register(&TableConfig{TableName: "fuzz_rows", OwnerColumn: "user_id"})
	if err := reg.Validate(); err != nil {
		f.Fatal(err)
	}
	p := ptEngine(f, db, db.Super, reg, nil)
	p.register("fuzzer", "fuzz-client")

	f.Fuzz(func(t *testing.T, data []byte) {
		id := ptID()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		resp, err := p.e.Push(ctx, "fuzzer", &PushRequest{
			ClientID: "fuzz-client",
			Changes: []PushRecord{{
				ID: id, TableName: "fuzz_rows", Operation: "create",
				Data: json.RawMessage(data), ClientUpdatedAt: time.Now(),
			}},
			SchemaVersion: p.ver, SchemaHash: p.hash,
		})
		if err != nil {
			t.Fatalf("Push(%q) returned an error instead of a record status: %v", data, err)
		}
		if resp.Accepted == nil || resp.Rejected == nil || len(resp.Accepted)+len(resp.Rejected) != 1 {
			t.Fatalf("Push(%q): response %+v", data, resp)
		}
		applied := len(resp.Accepted) == 1
		var res PushResult
		if applied {
			res = resp.Accepted[0]
			if res.Status != PushStatusApplied || res.ReasonCode != "" {
				t.Fatalf("Push(%q): accepted result %+v", data, res)
			}
		} else {
			res = resp.Rejected[0]
			if res.Status != PushStatusRejectedTerminal || res.ReasonCode == "" || res.ReasonCode == reasonInternalError {
				t.Fatalf("Push(%q): a client mistake rejected as %s/%s (%s)", data, res.Status, res.ReasonCode, res.Message)
			}
		}
		t.Logf("%q: %s/%s %s", data, res.Status, res.ReasonCode, res.Message)
		if res.ID != id || res.TableName != "fuzz_rows" || res.Operation != "create" {
			t.Fatalf("Push(%q): result does not echo the record: %+v", data, res)
		}

		var rows int
		var owner, label, raw *string
		err = db.Super.QueryRowContext(ctx, `SELECT count(*), max(user_id), max(label), max(encode(raw, 'hex')) FROM fuzz_rows WHERE id = $1::uuid`, id).Scan(&rows, &owner, &label, &raw)
		if err != nil {
			t.Fatalf("reading back %s: %v", id, err)
		}
		if applied != (rows == 1) || rows > 1 {
			t.Fatalf("Push(%q): applied %v but %d rows (%s/%s %s)", data, applied, rows, res.Status, res.ReasonCode, res.Message)
		}
		if !applied {
			return
		}
		if owner == nil || *owner != "fuzzer" {
			t.Fatalf("Push(%q): applied row owned by %v", data, owner)
		}
		// A text value sent as a JSON string is stored as sent, and
		// nothing else is stored in a text column; bytes sent as a string
		// are stored decoded.
		var fields map[string]json.RawMessage
		if utf8.Valid(data) && json.Unmarshal(data, &fields) == nil {
			if v, ok := fields["label"]; ok {
				var want string
				switch {
				case json.Unmarshal(v, &want) == nil:
					if label == nil || *label != want {
						t.Fatalf("Push(%q): label stored as %v, want %q", data, label, want)
					}
				case string(v) != "null":
					t.Fatalf("Push(%q): a label that is not a string was applied", data)
				}
			}
			var sent string
			if v, ok := fields["raw"]; ok && json.Unmarshal(v, &sent) == nil {
				want, err := hex.DecodeString(strings.TrimPrefix(sent, `\x`))
				if !strings.HasPrefix(sent, `\x`) {
					want, err = base64.RawStdEncoding.DecodeString(strings.TrimRight(sent, "="))
				}
				if err != nil || raw == nil || *raw != hex.EncodeToString(want) {
					t.Fatalf("Push(%q): raw stored as %v, want the bytes of %q", data, raw, sent)
				}
			}
		}
	})
}
