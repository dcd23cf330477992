package synchrohttp

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/synchrosync/synchro"
)

// These tests need no database.

// TestParseTimestamp checks every accepted form and the refusals.
func TestParseTimestamp(t *testing.T) {
	t.Parallel()
	utc := func(y int, mo time.Month, d, h, mi, s, ns int) time.Time {
		return time.Date(y, mo, d, h, mi, s, ns, time.UTC)
	}
	ok := []struct {
		in   string
		want time.Time
	}{
		// RFC 3339, with and without a fraction.
		{"2026-12-02T04:20:23Z", utc(2026, 12, 2, 4, 20, 23, 0)},
		{"2026-12-02T04:20:23.123Z", utc(2026, 12, 2, 4, 20, 23, 123_000_000)},
		{"2026-12-02T04:20:23.5Z", utc(2026, 12, 2, 4, 20, 23, 500_000_000)},
		{"2026-12-02T04:20:23.123456789Z", utc(2026, 12, 2, 4, 20, 23, 123_456_789)},
		{"2026-12-02T04:20:23.1234567891234Z", utc(2026, 12, 2, 4, 20, 23, 123_456_789)},
		{"2026-12-02T04:20:23+02:00", utc(2026, 12, 2, 2, 20, 23, 0)},
		{"2026-12-02T04:20:23.250-05:30", utc(2026, 12, 2, 9, 50, 23, 250_000_000)},
		{"2026-12-02T00:10:00+01:00", utc(2026, 12, 1, 23, 10, 0, 0)},
		{"2026-12-02T04:20:23-00:00", utc(2026, 12, 2, 4, 20, 23, 0)},
		{"2026-12-02t04:20:23z", utc(2026, 12, 2, 4, 20, 23, 0)},
		// SQLite's datetime text, UTC.
		{"2026-12-02 04:20:23", utc(2026, 12, 2, 4, 20, 23, 0)},
		{"2026-12-02 04:20:23.123", utc(2026, 12, 2, 4, 20, 23, 123_000_000)},
		{"2026-12-02 04:20:23Z", utc(2026, 12, 2, 4, 20, 23, 0)},
		{"2026-12-02 04:20:23.1+01:00", utc(2026, 12, 2, 3, 20, 23, 100_000_000)},
		// A "T" without a zone, UTC.
		{"2026-12-02T04:20:23", utc(2026, 12, 2, 4, 20, 23, 0)},
		{"2026-12-02T04:20:23.999999", utc(2026, 12, 2, 4, 20, 23, 999_999_000)},
		// Edges of the calendar.
		{"2024-02-29 23:59:59", utc(2024, 2, 29, 23, 59, 59, 0)},
		{"0001-01-01T00:00:00Z", time.Time{}},
		{"9999-12-31T23:59:59.999Z", utc(9999, 12, 31, 23, 59, 59, 999_000_000)},
	}
	for _, c := range ok {
		got, err := parseTimestamp(c.in)
		if err != nil || !got.Equal(c.want) || got.Location() != time.UTC {
			t.Errorf("parseTimestamp(%q) = %v, %v; want %v", c.in, got, err, c.want)
		}
	}
	for _, in := range []string{
		"", "yesterday", "2026-12-02", "04:20:23", "2026-12-02T04:20", "2026-12-02T04:20Z",
		"2026-12-02_04:20:23", "2026-12-02  04:20:23", " 2026-12-02 04:20:23", "2026-12-02 04:20:23 ",
		"2026-12-02T04:20:23.", "2026-12-02T04:20:23.Z", "2026-12-02T04:20:23,5Z", "2026-12-02T04:20:23+0200",
		"2026-12-02T04:20:23+02", "2026-12-02T04:20:23+24:00", "2026-12-02T04:20:23+02:60", "2026-12-02T04:20:23UTC",
		"2026-12-02T04:20:23ZZ", "2026-13-02T04:20:23Z", "2026-00-02T04:20:23Z", "2026-12-00T04:20:23Z",
		"2026-02-29T04:20:23Z", "2026-04-31T04:20:23Z", "2026-12-02T24:00:00Z", "2026-12-02T04:60:23Z",
		"2026-12-02T04:20:60Z", "26-12-02T04:20:23Z", "+2026-12-02T04:20:23Z", "2026-1-02T04:20:23Z",
		"2026-12-02T4:20:23Z", "２026-12-02T04:20:23Z", "2026/12/02 04:20:23", "1733113223",
		"0000-01-01T00:30:00+01:00", "9999-12-31T23:30:00-01:00",
	} {
		if got, err := parseTimestamp(in); err == nil {
			t.Errorf("parseTimestamp(%q) = %v, want an error", in, got)
		}
	}
}

// FuzzParseTimestamp checks that parsing never panics and that what it
// accepts round-trips through RFC 3339.
func FuzzParseTimestamp(f *testing.F) {
	for _, s := range []string{
		"2026-12-02T04:20:23Z", "2026-12-02 04:20:23.123", "2026-12-02T04:20:23.5+02:00",
		"2026-12-02T04:20:23", "2024-02-29 23:59:59", "2026-12-02T04:20:23.", "", "x",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := parseTimestamp(s)
		if err != nil {
			return
		}
		if got.Location() != time.UTC {
			t.Errorf("parseTimestamp(%q) = %v, not UTC", s, got)
		}
		back, err := parseTimestamp(got.Format(time.RFC3339Nano))
		if err != nil || !back.Equal(got) {
			t.Errorf("parseTimestamp(%q) = %v does not round-trip: %v, %v", s, got, back, err)
		}
	})
}

// TestDecodePushRecord checks how one pushed record is read: what reaches
// the engine and what is rejected, with which reason, message and echo.
func TestDecodePushRecord(t *testing.T) {
	t.Parallel()
	const at = `"client_updated_at":"2026-12-02T04:20:23.123Z"`
	clientAt := time.Date(2026, 12, 2, 4, 20, 23, 123_000_000, time.UTC)
	base := time.Date(2026, 12, 2, 4, 20, 0, 0, time.UTC)

	good := []struct {
		name, in string
		want     synchro.PushRecord
	}{
		{"swift create", `{"id":"a","table_name":"notes","operation":"create","data":{"body":"x"},` + at + `}`,
			synchro.PushRecord{ID: "a", TableName: "notes", Operation: "create", Data: json.RawMessage(`{"body":"x"}`), ClientUpdatedAt: clientAt}},
		{"kotlin delete with nulls", `{"id":"a","table_name":"notes","operation":"delete","data":null,` + at + `,"base_updated_at":null}`,
			synchro.PushRecord{ID: "a", TableName: "notes", Operation: "delete", ClientUpdatedAt: clientAt}},
		{"delete without data", `{"id":"a","table_name":"notes","operation":"delete",` + at + `}`,
			synchro.PushRecord{ID: "a", TableName: "notes", Operation: "delete", ClientUpdatedAt: clientAt}},
		{"delete with any data", `{"id":"a","table_name":"notes","operation":"delete","data":[1],` + at + `}`,
			synchro.PushRecord{ID: "a", TableName: "notes", Operation: "delete", ClientUpdatedAt: clientAt}},
		{"sqlite base", `{"id":"a","table_name":"notes","operation":"update","data":{},` + at + `,"base_updated_at":"2026-12-02 04:20:00"}`,
			synchro.PushRecord{ID: "a", TableName: "notes", Operation: "update", Data: json.RawMessage(`{}`), ClientUpdatedAt: clientAt, BaseUpdatedAt: &base}},
		{"unknown fields", `{"id":"a","table_name":"notes","operation":"update","data":{},` + at + `,"extra":{"x":1},"version":3}`,
			synchro.PushRecord{ID: "a", TableName: "notes", Operation: "update", Data: json.RawMessage(`{}`), ClientUpdatedAt: clientAt}},
		{"no client time", `{"id":"a","table_name":"notes","operation":"update","data":{},"client_updated_at":null}`,
			synchro.PushRecord{ID: "a", TableName: "notes", Operation: "update", Data: json.RawMessage(`{}`)}},
		{"absent id", `{"table_name":"notes","operation":"update","data":{}}`,
			synchro.PushRecord{TableName: "notes", Operation: "update", Data: json.RawMessage(`{}`)}},
	}
	for _, c := range good {
		rec, bad := decodePushRecord(0, json.RawMessage(c.in))
		if bad != nil {
			t.Errorf("%s: rejected %+v", c.name, bad)
			continue
		}
		if rec.ID != c.want.ID || rec.TableName != c.want.TableName || rec.Operation != c.want.Operation ||
			string(rec.Data) != string(c.want.Data) || !rec.ClientUpdatedAt.Equal(c.want.ClientUpdatedAt) ||
			(rec.BaseUpdatedAt == nil) != (c.want.BaseUpdatedAt == nil) ||
			rec.BaseUpdatedAt != nil && !rec.BaseUpdatedAt.Equal(*c.want.BaseUpdatedAt) {
			t.Errorf("%s: got %+v, want %+v", c.name, rec, c.want)
		}
	}

	bad := []struct {
		name, in          string
		reason            string
		id, table, op     string // the echo
		messageMentioning string
	}{
		{"null record", `null`, reasonInvalidData, "", "", "", "changes[4] must be a JSON object, not null"},
		{"array record", `[1]`, reasonInvalidData, "", "", "", "not an array"},
		{"string record", `"a"`, reasonInvalidData, "", "", "", "not a string"},
		{"numeric id", `{"id":7,"table_name":"notes","operation":"create","data":{}}`, reasonInvalidData, "", "notes", "create", `changes[4].id must be a string, not a number`},
		{"object table", `{"id":"a","table_name":{},"operation":"create","data":{}}`, reasonInvalidData, "a", "", "create", `changes[4].table_name`},
		{"numeric operation", `{"id":"a","table_name":"notes","operation":1,"data":{}}`, reasonInvalidOperation, "a", "notes", "", `changes[4].operation must be a string`},
		{"unknown operation", `{"id":"a","table_name":"notes","operation":"upsert","data":{}}`, reasonInvalidOperation, "a", "notes", "upsert", `unknown operation "upsert"`},
		{"upper-case operation", `{"id":"a","table_name":"notes","operation":"CREATE","data":{}}`, reasonInvalidOperation, "a", "notes", "CREATE", `"CREATE"`},
		{"absent operation", `{"id":"a","table_name":"notes","data":{}}`, reasonInvalidOperation, "a", "notes", "", `unknown operation ""`},
		{"create without data", `{"id":"a","table_name":"notes","operation":"create"}`, reasonInvalidData, "a", "notes", "create", `changes[4].data must be a JSON object for a create, not null`},
		{"update with null data", `{"id":"a","table_name":"notes","operation":"update","data":null}`, reasonInvalidData, "a", "notes", "update", `for an update, not null`},
		{"data array", `{"id":"a","table_name":"notes","operation":"create","data":[{}]}`, reasonInvalidData, "a", "notes", "create", `not an array`},
		{"data string", `{"id":"a","table_name":"notes","operation":"update","data":"{}"}`, reasonInvalidData, "a", "notes", "update", `not a string`},
		{"bad client time", `{"id":"a","table_name":"notes","operation":"update","data":{},"client_updated_at":"yesterday"}`, reasonInvalidData, "a", "notes", "update", `changes[4].client_updated_at: "yesterday" is not a timestamp`},
		{"numeric client time", `{"id":"a","table_name":"notes","operation":"update","data":{},"client_updated_at":1733113223}`, reasonInvalidData, "a", "notes", "update", `changes[4].client_updated_at: must be a string, not a number`},
		{"bad base time", `{"id":"a","table_name":"notes","operation":"update","data":{},` + at + `,"base_updated_at":"2026-02-30 00:00:00"}`, reasonInvalidData, "a", "notes", "update", `changes[4].base_updated_at`},
		{"long bad time", `{"id":"a","table_name":"notes","operation":"delete","client_updated_at":"` + strings.Repeat("9", 500) + `"}`, reasonInvalidData, "a", "notes", "delete", `"... is not`},
	}
	for _, c := range bad {
		_, res := decodePushRecord(4, json.RawMessage(c.in))
		if res == nil {
			t.Errorf("%s: accepted", c.name)
			continue
		}
		if res.Status != synchro.PushStatusRejectedTerminal || res.ReasonCode != c.reason ||
			res.ID != c.id || res.TableName != c.table || res.Operation != c.op {
			t.Errorf("%s: result %+v, want %s with echo (%q, %q, %q)", c.name, res, c.reason, c.id, c.table, c.op)
		}
		if !strings.Contains(res.Message, c.messageMentioning) {
			t.Errorf("%s: message %q does not contain %q", c.name, res.Message, c.messageMentioning)
		}
		if len(res.Message) > 400 {
			t.Errorf("%s: message of %d bytes", c.name, len(res.Message))
		}
	}
}
