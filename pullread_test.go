package synchro

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/synchrosync/synchro/internal/pgtest"
)

// TestPullRowJSONMatchesRowToJSON checks that pull's hydration, which
// writes each row's JSON object itself from the columns' text, gives
// byte for byte what row_to_json gives (the snapshot's and the previous
// hydration's form), through pgx's own transaction and through
// database/sql's, and in the page statement that reads the changelog and
// the rows at once (pgx's), for every kind of column: integers, bool,
// numbers with NaN and infinities, strings with quotes, backslashes,
// control characters and non-ASCII text, uuid, json and jsonb, dates and
// timestamps (written from their text: BC, years beyond 9999, infinities,
// fractions, offsets of whole hours, of minutes and of seconds, under
// several time zones and a session DateStyle other than ISO; in the page
// statement under UTC from their binary form), and the
// types that go through to_json (arrays, enums, domains, bpchar,
// interval, bytea), NULL in each.
func TestPullRowJSONMatchesRowToJSON(t *testing.T) {
	t.Parallel()
	db := pgtest.NewMigratedDatabase(t)
	pgtest.Exec(t, db.Super, `
CREATE TYPE pj_mood AS ENUM ('happy', 'sad');
CREATE DOMAIN pj_posint AS integer CHECK (VALUE > 0);
CREATE TABLE pj (
	id         bigint PRIMARY KEY,
	user_id    text NOT NULL,
	"Odd ""name"""  text,
	small      smallint,
	big        bigint,
	flag       boolean,
	num        numeric,
	f4         real,
	f8         double precision,
	u          uuid,
	vc         varchar(20),
	bp         char(5),
	js         json,
	jb         jsonb,
	ts         timestamptz,
	tsn        timestamp,
	d          date,
	iv         interval,
	arr        text[],
	mood       pj_mood,
	pos        pj_posint,
	raw        bytea,
	updated_at timestamptz NOT NULL DEFAULT now(),
	deleted_at timestamptz
);
INSERT INTO pj (id, user_id, "Odd ""name""", small, big, flag, num, f4, f8, u, vc, bp, js, jb, ts, tsn, d, iv, arr, mood, pos, raw) VALUES
 (1, 'u1', e'quote " backslash \\ nl \n tab \t cr \r bs \b ff \f bell \x07 us \x1f', -3, 9223372036854775807, true, 12.50, 1.5, 1e100,
  '6f1c9f4e-33b5-4a8e-9c61-7d0c4c6e2a11', 'héllo wörld ✓', 'ab', '{"a": [1, 2.0, "x"],  "b" : null}', '{"z": 1, "a": {"k": [true]}}',
  '2024-03-04 05:06:07.123456+05:30', '2024-03-04 05:06:07', '2024-03-04', '1 day 02:03:04', '{a,"b c",NULL}', 'sad', 7, '\x00ff'),
 (2, 'u1', '', 0, 0, false, 'NaN', 'Infinity', '-Infinity', NULL, '', '', 'null', '[]',
  'infinity', '-infinity', '0044-03-15 BC', '-1 mon', '{}', 'happy', 1, ''),
 (3, 'u1', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
 (4, 'u1', 'x', 1, 1, true, -0.000001, 'NaN', -0.0, NULL, 'x', 'x', '1', '"s"', '1999-12-31 23:59:59.5+00', NULL, NULL, NULL, NULL, NULL, NULL, NULL),
 (5, 'u1', e'\u2028 <script>&', 1, 1, true, 1e-20, 3.4e38, 5e-324, NULL, NULL, NULL, NULL, '1.0e10', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
 (6, 'u1', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, '0044-03-15 12:00:00.5+00 BC', '0044-03-15 12:00:00.25 BC', 'infinity', NULL, NULL, NULL, NULL, NULL),
 (7, 'u1', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, '1850-01-01 00:00:00+00', '12345-06-07 08:09:10', '-infinity', NULL, NULL, NULL, NULL, NULL),
 (8, 'u1', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, '20000-01-01 00:00:00.000001+00', '2024-06-30 23:59:59.999999', '12345-01-01', NULL, NULL, NULL, NULL, NULL),
 (9, 'u1', NULL, -32768, -9223372036854775808, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, '4714-11-24 00:00:00+00 BC', '294276-12-31 23:59:59.999999', NULL, NULL, NULL, NULL, NULL, NULL),
 (10, 'u1', NULL, 32767, -1, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, '0001-01-01 00:00:00+00', '0001-12-31 23:59:59.999999 BC', NULL, NULL, NULL, NULL, NULL, NULL),
 (11, 'u1', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, '294276-12-31 23:59:59.999999+00', '1999-12-31 23:59:59.000001', NULL, NULL, NULL, NULL, NULL, NULL);
INSERT INTO synchro.changelog (bucket_id, table_name, record_id, operation) SELECT 'user:u1', 'pj', g::text, 1 FROM generate_series(1, 11) AS g`)
	reg := NewRegistry()
	reg.Register(&TableConfig{TableName: "pj", OwnerColumn: "user_id"})
	p := ptEngine(t, db, db.Super, reg, nil)
	ctx := t.Context()
	m, err := p.e.schema.get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	info := m.table("pj")
	st, err := info.readSQL(reg, true)
	if err != nil {
		t.Fatal(err)
	}
	ids := []string{"1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11"}
	subs := []string{"global", "user:u1"}

	// The time zones change the offsets (whole hours, minutes, the local
	// mean time of 1850 in seconds), the DateStyle the text output unless
	// the pull sets it.
	for _, tz := range []string{"UTC", "Asia/Kolkata", "America/St_Johns", "Europe/Amsterdam", "Pacific/Chatham"} {
		for _, viaSQL := range []bool{false, true} {
			t.Run(fmt.Sprintf("tz=%s/viaSQL=%v", tz, viaSQL), func(t *testing.T) {
				p.e.pullViaSQL = viaSQL // the subtests run one after the other
				want, got, page := map[string]string{}, map[string]string{}, map[string]string{}
				err := p.e.inPullTx(ctx, true, func(tx pullTx) error {
					if _, native := tx.(*pgxPullTx); native == viaSQL {
						t.Errorf("transaction %T with pullViaSQL %v", tx, viaSQL)
					}
					if err := tx.exec(ctx, `SELECT set_config('DateStyle', 'SQL, DMY', true)`); err != nil {
						return err
					}
					if err := tx.exec(ctx, pullSettingsSQL, "u1"); err != nil {
						return err
					}
					if err := tx.exec(ctx, `SELECT set_config('TimeZone', $1, true)`, tz); err != nil {
						return err
					}
					// What row_to_json gives: the hydration statement the
					// engine used before, still the form of snapshot pages.
					rows, err := tx.query(ctx, st.hydrate, ids, subs)
					if err != nil {
						return err
					}
					for rows.Next() {
						var (
							id, data string
							updated  pgtype.Timestamptz
							whole    pgtype.Text
						)
						if err := rows.Scan(&id, &data, &updated, &whole); err != nil {
							rows.Close()
							return err
						}
						want[id] = string(info.deliveredRow([]byte(data))) // numberform.go
					}
					rows.Close()
					if err := rows.Err(); err != nil {
						return err
					}
					recs, err := tx.hydrate(ctx, info, st.pull, ids, subs)
					if err != nil {
						return err
					}
					for _, r := range recs {
						got[r.ID] = string(r.Data)
					}
					if viaSQL {
						return nil
					}
					// In UTC the page statement's timestamptz columns
					// come in binary (pullFormTypedUTC), elsewhere as
					// text: both forms are compared.
					if zone := tx.(*pgxPullTx).conn.PgConn().ParameterStatus("TimeZone"); isUTCZone(zone) != (tz == "UTC") {
						t.Errorf("the session's TimeZone is %q in the subtest of %s", zone, tz)
					}
					// The page statement reads the rows of the tables
					// the previous page delivered: a page primes it.
					pu := &puller{e: p.e, m: m, userID: "u1", subs: subs, limit: 100}
					if _, err := pu.readPage(ctx, tx, []string{"user:u1"}, 0, 100); err != nil {
						return err
					}
					pg, err := pu.readPage(ctx, tx, []string{"user:u1"}, 0, 100)
					if err != nil {
						return err
					}
					if !pg.hydrated {
						t.Errorf("the page was read without its rows")
					}
					for _, en := range pg.entries {
						if en.record != nil {
							page[en.id] = string(en.record.Data)
						}
					}
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
				if len(want) != len(ids) {
					t.Fatalf("row_to_json statement returned %d rows, want %d", len(want), len(ids))
				}
				for _, id := range slices.Sorted(maps.Keys(want)) {
					if got[id] != want[id] {
						t.Errorf("row %s:\n got %s\nwant %s", id, got[id], want[id])
					}
					if !viaSQL && page[id] != want[id] {
						t.Errorf("row %s in the page statement:\n got %s\nwant %s", id, page[id], want[id])
					}
				}
				if len(got) != len(want) {
					t.Errorf("hydrated %d rows, want %d", len(got), len(want))
				}
			})
		}
	}
}

// TestTimestampBinaryJSON checks appendPGTimestampBinaryJSON against
// to_json in a session in UTC, for timestamptz and timestamp values drawn
// from PostgreSQL's whole range (4714 BC to 294276 AD) and its edges, read
// in binary as the page statement reads them.
func TestTimestampBinaryJSON(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDatabase(t)
	cfg, err := pgx.ParseConfig(db.DSN)
	if err != nil {
		t.Fatal(err)
	}
	cfg.RuntimeParams["timezone"] = "UTC"
	conn, err := pgx.ConnectConfig(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close(context.WithoutCancel(t.Context())) }()
	if zone := conn.PgConn().ParameterStatus("TimeZone"); !isUTCZone(zone) {
		t.Fatalf("TimeZone %q is not UTC", zone)
	}
	const (
		lowest  = -211813488000000000 // 4714-11-24 00:00:00 BC
		highest = 9223371331199999999 // 294276-12-31 23:59:59.999999
	)
	us := []int64{lowest, highest, 0, 1, -1, 999_999, -999_999, 1_000_000, -1_000_000, 10, 100_000,
		-63082281600000000, // 0001-01-01 00:00:00
		-63082281600000001, // 0001-12-31 23:59:59.999999 BC
		math.MaxInt64, math.MinInt64}
	rnd := rand.New(rand.NewPCG(14, 4))
	for range 2000 {
		low := int64(lowest)
		v := int64(uint64(low) + rnd.Uint64N(uint64(highest)+uint64(-low))) // wraps to within the range
		switch rnd.IntN(3) {
		case 0:
			v -= v % 1_000_000 // whole seconds
		case 1:
			v -= v % 1000
		}
		us = append(us, v)
	}
	// The values are built in binary and sent as int8: microseconds
	// after 2000-01-01, the form the page statement reads.
	rows, err := conn.Query(t.Context(), `
SELECT v, to_json(v)::text, v::timestamp, to_json(v::timestamp)::text
  FROM (SELECT CASE r WHEN 9223372036854775807 THEN timestamptz 'infinity'
                      WHEN -9223372036854775808 THEN timestamptz '-infinity'
                      ELSE timestamptz '2000-01-01 00:00:00+00' + (r / 1000000) * interval '1 second' + (r % 1000000) * interval '1 microsecond' END
          FROM unnest($1::int8[]) AS r) AS s(v)`, pgx.QueryResultFormats{pgx.BinaryFormatCode, pgx.TextFormatCode, pgx.BinaryFormatCode, pgx.TextFormatCode}, us)
	n := 0
	eachRawRow(t, rows, err, func(raw [][]byte) {
		for i, w := range []pullWire{wireTimestampUTC, wireTimestamp} {
			got, ok := appendBinaryJSON(nil, w, raw[2*i])
			if !ok || string(got) != string(raw[2*i+1]) {
				t.Errorf("value %d (%x), wire %d: got %s, want %s", n, raw[2*i], w, got, raw[2*i+1])
			}
		}
		n++
	})
	if n != len(us) {
		t.Fatalf("read %d rows, want %d", n, len(us))
	}
}

// TestNumericBinaryJSON checks appendPGNumericJSON against numeric's text
// output (numeric_out) for edge cases and random values of many scales,
// read in binary as the page statement reads them.
func TestNumericBinaryJSON(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDatabase(t)
	conn, err := pgx.Connect(t.Context(), db.DSN)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close(context.WithoutCancel(t.Context())) }()
	rows, err := conn.Query(t.Context(), `
SELECT v, v::text FROM (
  SELECT unnest(ARRAY['0', '0.0000', '-0.000001', '1e-20', '12.50', '1e100', '-1e100', '10000', '9999.9999', '100000000',
                      '0.1', '-123456789012345678901234567890.123456789', '1.' || repeat('0', 1000), '0.' || repeat('0', 500) || '1',
                      'NaN', 'Infinity', '-Infinity', '1', '-1', '99999999', '0.00010000']::numeric[])
  UNION ALL
  SELECT round((random() - 0.5)::numeric * 10::numeric ^ (g % 40 - 10), g % 23) FROM generate_series(1, 3000) AS g
  UNION ALL
  SELECT (random() * 1000)::numeric(12, 2) FROM generate_series(1, 500)) AS s(v)`,
		pgx.QueryResultFormats{pgx.BinaryFormatCode, pgx.TextFormatCode})
	n := 0
	eachRawRow(t, rows, err, func(raw [][]byte) {
		want := string(appendWideNumber(nil, raw[1]))
		if !isJSONNumber(raw[1]) {
			want = `"` + string(raw[1]) + `"`
		}
		if got, ok := appendBinaryJSON(nil, wireNumeric, raw[0]); !ok || string(got) != want {
			t.Errorf("numeric %x: got %s (%v), want %s", raw[0], got, ok, want)
		}
		if got := numericJSONLen(raw[0]); got < len(want) {
			t.Errorf("numeric %s: numericJSONLen %d, shorter than its JSON", want, got)
		}
		n++
	})
	if n < 3500 {
		t.Fatalf("read %d values", n)
	}
	for _, bad := range [][]byte{nil, {0, 1}, {0, 1, 0, 0, 0, 0, 0, 0}, {0, 1, 0, 0, 0x12, 0x34, 0, 0, 0, 1}, {0, 1, 0, 0, 0, 0, 0, 0, 0x27, 0x10}} {
		if got, ok := appendPGNumericJSON(nil, bad); ok {
			t.Errorf("numeric %x: got %s, want a refusal", bad, got)
		}
	}
}

// eachRawRow calls f with the values of each row of rows, as they came
// (err is the query's error), and fails t on an error.
func eachRawRow(t *testing.T, rows pgx.Rows, err error, f func(raw [][]byte)) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		f(rows.RawValues())
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
}

func TestIsJSONNumber(t *testing.T) {
	t.Parallel()
	for s, want := range map[string]bool{
		"0": true, "-0": true, "12": true, "12.50": true, "1e+100": true, "1E-7": true, "-0.000001": true, "5e-324": true,
		"": false, "-": false, "01": false, "1.": false, ".5": false, "1e": false, "NaN": false, "Infinity": false,
		"-Infinity": false, "1 ": false, "+1": false, "0x10": false,
	} {
		if got := isJSONNumber([]byte(s)); got != want {
			t.Errorf("isJSONNumber(%q) = %v, want %v", s, got, want)
		}
	}
}

// TestPullHydrationFailures: a hydration statement that fails before its
// first row (the request canceled between the page and the hydration, an
// id that is not a key) is an error on both ways of reading, never a
// panic; an updated-at of infinity is no version on both.
func TestPullHydrationFailures(t *testing.T) {
	t.Parallel()
	db := pgtest.NewMigratedDatabase(t)
	pgtest.Exec(t, db.Super, `CREATE TABLE ph (id bigint PRIMARY KEY, user_id text NOT NULL, body text, updated_at timestamptz NOT NULL DEFAULT now());
INSERT INTO ph VALUES (1, 'u1', 'a', 'infinity'), (2, 'u1', 'b', '2026-01-02 03:04:05+00')`)
	reg := NewRegistry()
	reg.Register(&TableConfig{TableName: "ph", OwnerColumn: "user_id"})
	p := ptEngine(t, db, db.Super, reg, nil)
	m, err := p.e.schema.get(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	info := m.table("ph")
	st, err := info.readSQL(reg, true)
	if err != nil {
		t.Fatal(err)
	}
	hydrate := func(ctx context.Context, viaSQL, cancelFirst bool, ids []string) (recs []*Record, err error) {
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("panic: %v", r)
			}
		}()
		p.e.pullViaSQL = viaSQL
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		err = p.e.inPullTx(ctx, true, func(tx pullTx) error {
			if err := tx.exec(ctx, pullSettingsSQL, "u1"); err != nil {
				return err
			}
			if cancelFirst {
				cancel() // the client went away between the page and the hydration
			}
			var err error
			recs, err = tx.hydrate(ctx, info, st.pull, ids, []string{"user:u1"})
			return err
		})
		return recs, err
	}
	for _, viaSQL := range []bool{false, true} {
		name := map[bool]string{false: "pgx", true: "database/sql"}[viaSQL]
		if _, err := hydrate(t.Context(), viaSQL, false, []string{"not-a-number"}); err == nil || strings.HasPrefix(err.Error(), "panic") {
			t.Errorf("%s, an id that is not a key: %v, want an error", name, err)
		}
		if _, err := hydrate(t.Context(), viaSQL, true, []string{"1"}); err == nil || strings.HasPrefix(err.Error(), "panic") {
			t.Errorf("%s, canceled: %v, want an error", name, err)
		}
		recs, err := hydrate(t.Context(), viaSQL, false, []string{"1", "2"})
		if err != nil || len(recs) != 2 {
			t.Fatalf("%s: %d records, %v", name, len(recs), err)
		}
		slices.SortFunc(recs, func(a, b *Record) int { return strings.Compare(a.ID, b.ID) })
		if !recs[0].UpdatedAt.IsZero() || !recs[1].UpdatedAt.Equal(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)) {
			t.Errorf("%s: updated_at %v and %v, want zero (infinity) and 2026-01-02T03:04:05Z", name, recs[0].UpdatedAt, recs[1].UpdatedAt)
		}
	}
}

// TestPullUnderExecModes: pgx's database/sql driver can be told how to
// send statements (default_query_exec_mode in the connection string; the
// simple protocol is what PgBouncer's transaction pooling often needs).
// The pull on pgx's own connection sends its statements as batches and
// reads the page's columns from their wire form when the formats are the
// ones it asked for; under every mode a pull over several pages (so the
// page statement reads rows too) must deliver the same records, byte for
// byte, as through database/sql (pullViaSQL), and record the pull.
func TestPullUnderExecModes(t *testing.T) {
	t.Parallel()
	db := pgtest.NewMigratedDatabase(t)
	pgtest.Exec(t, db.Super, `
CREATE TABLE pem (
	id         bigint PRIMARY KEY,
	user_id    text NOT NULL,
	title      text,
	n          numeric,
	flag       boolean,
	ts         timestamptz,
	d          date,
	arr        int[],
	raw        bytea,
	updated_at timestamptz NOT NULL DEFAULT now(),
	deleted_at timestamptz
);
INSERT INTO pem (id, user_id, title, n, flag, ts, d, arr, raw)
SELECT g, 'u1', 'row "' || g || e'"\n', g / 7.0, g % 2 = 0, '2024-03-04 05:06:07.123456+05:30'::timestamptz + g * interval '1 hour',
	'2024-03-04'::date + g, ARRAY[g, -g], '\x00ff'::bytea
FROM generate_series(1, 25) AS g;
UPDATE pem SET title = NULL, ts = 'infinity' WHERE id = 5`)
	reg := NewRegistry()
	reg.Register(&TableConfig{TableName: "pem", OwnerColumn: "user_id"})
	ctx := t.Context()

	// pullAll registers client on an engine over pool, takes a snapshot,
	// then records a change of every row in the changelog (as capture
	// would) and pulls them in pages of 4, returning each record's data.
	pullAll := func(t *testing.T, pool *sql.DB, viaSQL bool, client string) map[string]string {
		t.Helper()
		p := ptEngine(t, db, pool, reg, nil)
		p.e.pullViaSQL = viaSQL
		p.register("u1", client)
		snap, err := p.e.Snapshot(ctx, "u1", &SnapshotRequest{ClientID: client, Limit: 1000, SchemaVersion: p.ver, SchemaHash: p.hash})
		if err != nil || snap.HasMore {
			t.Fatalf("Snapshot: %v", err)
		}
		pgtest.Exec(t, db.Super, `INSERT INTO synchro.changelog (bucket_id, table_name, record_id, operation)
SELECT 'user:u1', 'pem', g::text, 2 FROM generate_series(1, 25) AS g`)
		got := map[string]string{}
		checkpoint := snap.Checkpoint
		for range 100 {
			resp, err := p.e.Pull(ctx, "u1", &PullRequest{ClientID: client, Checkpoint: checkpoint, Limit: 4, SchemaVersion: p.ver, SchemaHash: p.hash})
			if err != nil {
				t.Fatalf("Pull at %d: %v", checkpoint, err)
			}
			if resp.SnapshotRequired {
				t.Fatalf("Pull at %d: snapshot required (%s)", checkpoint, resp.SnapshotReason)
			}
			for _, r := range resp.Changes {
				got[r.ID] = string(r.Data)
			}
			checkpoint = resp.Checkpoint
			if !resp.HasMore {
				break
			}
		}
		// The next pull acknowledges the last page's checkpoint.
		if _, err := p.e.Pull(ctx, "u1", &PullRequest{ClientID: client, Checkpoint: checkpoint, Limit: 4, SchemaVersion: p.ver, SchemaHash: p.hash}); err != nil {
			t.Fatalf("Pull at %d: %v", checkpoint, err)
		}
		var acked int64
		pgtest.QueryRow(t, db.Super, `SELECT acked_seq FROM synchro.clients WHERE client_id = $1`, client).Scan(&acked)
		if acked != checkpoint {
			t.Errorf("client %s: acknowledged checkpoint %d, want %d", client, acked, checkpoint)
		}
		return got
	}
	want := pullAll(t, db.Super, true, "via-sql")
	if len(want) != 25 {
		t.Fatalf("database/sql pull delivered %d records, want 25", len(want))
	}
	for _, mode := range []string{"cache_statement", "cache_describe", "describe_exec", "exec", "simple_protocol"} {
		t.Run(mode, func(t *testing.T) {
			dsn, err := url.Parse(db.DSN)
			if err != nil {
				t.Fatal(err)
			}
			q := dsn.Query()
			q.Set("default_query_exec_mode", mode)
			dsn.RawQuery = q.Encode()
			pool, err := sql.Open("pgx", dsn.String())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = pool.Close() })
			got := pullAll(t, pool, false, "mode-"+mode)
			for _, id := range slices.Sorted(maps.Keys(want)) {
				if got[id] != want[id] {
					t.Errorf("record %s:\n got %s\nwant %s", id, got[id], want[id])
				}
			}
			if len(got) != len(want) {
				t.Errorf("%d records, want %d", len(got), len(want))
			}
		})
	}
}

// TestCommitted: COMMIT answered with ROLLBACK (the transaction had failed)
// is an error, as pgx's Tx.Commit makes it.
func TestCommitted(t *testing.T) {
	t.Parallel()
	if err := committed(pgconn.NewCommandTag("COMMIT"), nil); err != nil {
		t.Errorf("COMMIT: %v", err)
	}
	if err := committed(pgconn.NewCommandTag("ROLLBACK"), nil); !errors.Is(err, pgx.ErrTxCommitRollback) {
		t.Errorf("ROLLBACK: %v, want pgx.ErrTxCommitRollback", err)
	}
	boom := errors.New("boom")
	if err := committed(pgconn.CommandTag{}, boom); !errors.Is(err, boom) {
		t.Errorf("an error: %v, want it wrapped", err)
	}
}

// BenchmarkTimestampJSON measures the JSON writing of binary timestamps
// (appendPGTimestampBinaryJSON), three of which a row of the benchmarks'
// table has: times of this century with microseconds, and whole seconds.
//
//	go test -run '^$' -bench TimestampJSON .
func BenchmarkTimestampJSON(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	values := make([]int64, 1024)
	for i := range values {
		values[i] = r.Int64N(40 * 365 * 86400 * 1_000_000)
		if i%2 == 0 {
			values[i] -= values[i] % 1_000_000
		}
	}
	buf := make([]byte, 0, 64)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		buf = appendPGTimestampBinaryJSON(buf[:0], values[i%len(values)], true)
	}
}
