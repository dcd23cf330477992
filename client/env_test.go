package client_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/synchrosync/synchro"
	"github.com/synchrosync/synchro/client"
	"github.com/synchrosync/synchro/client/seed"
	"github.com/synchrosync/synchro/internal/pgtest"
	"github.com/synchrosync/synchro/internal/waltest"
	"github.com/synchrosync/synchro/synchrohttp"
	"github.com/synchrosync/synchro/wal"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// The application of the tests: lists owned by users, items in lists.
const appSchema = `
CREATE TABLE lists (
	id         text PRIMARY KEY,
	user_id    text NOT NULL,
	name       text NOT NULL,
	position   integer NOT NULL DEFAULT 0 CHECK (position >= 0),
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now(),
	deleted_at timestamptz
);
CREATE TABLE items (
	id         text PRIMARY KEY,
	list_id    text NOT NULL REFERENCES lists (id) ON DELETE CASCADE,
	title      text,
	done       boolean NOT NULL DEFAULT false,
	data       jsonb,
	updated_at timestamptz NOT NULL DEFAULT now(),
	deleted_at timestamptz
);
CREATE INDEX ON items (list_id);
CREATE INDEX ON lists (user_id);`

func appRegistry() *synchro.Registry {
	reg := synchro.NewRegistry()
	reg.Register(&synchro.TableConfig{TableName: "lists", OwnerColumn: "user_id"})
	reg.Register(&synchro.TableConfig{TableName: "items", ParentTable: "lists", ParentFKCol: "list_id"})
	return reg
}

// server is the application's server in-process: an engine on its own
// database, change capture, the engine's change listener, and the HTTP
// handler on an httptest server, behind a front that can inject faults.
type server struct {
	t      testing.TB
	db     *pgtest.Database
	url    string
	engine atomic.Pointer[synchro.Engine]
	inner  atomic.Pointer[http.Handler]
	// fail503 answers that share of requests 503 (per mille); abort cuts
	// that share of connections without an answer.
	fail503, abort atomic.Int32
	requests       atomic.Int64
	rng            lockedRand
	stopListen     func()
	slot           string
}

// lockedRand is a rand source safe for concurrent use.
type lockedRand struct {
	mu sync.Mutex
	r  *rand.Rand
}

func (l *lockedRand) IntN(n int) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.r == nil {
		l.r = rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	}
	return l.r.IntN(n)
}

// startServer starts a server on a new database; setup runs first (as the
// superuser), for data that exists before change capture starts.
func startServer(t testing.TB, setup string) *server {
	t.Helper()
	return startServerOn(t, pgtest.NewMigratedDatabase(t), setup)
}

func startServerOn(t testing.TB, db *pgtest.Database, setup string) *server {
	t.Helper()
	ctx := context.Background()
	if _, err := db.Super.ExecContext(ctx, appSchema); err != nil {
		t.Fatalf("creating the schema: %v", err)
	}
	if setup != "" {
		if _, err := db.Super.ExecContext(ctx, setup); err != nil {
			t.Fatalf("setup: %v", err)
		}
	}
	s := &server{t: t, db: db}
	s.newEngine()

	slot := "client_" + strings.ReplaceAll(db.Name, "-", "_")
	s.slot = slot
	c, err := wal.NewConsumer(wal.ConsumerConfig{
		ConnString: db.DSN, SlotName: slot, PublicationName: "pub_" + slot, Registry: appRegistry(),
		ChangelogDB: db.Super, StandbyTimeout: 200 * time.Millisecond, Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatalf("NewConsumer: %v", err)
	}
	waltest.Run(t, c, db.Super, slot, 60*time.Second)

	front := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
		if n := s.abort.Load(); n > 0 && s.rng.IntN(1000) < int(n) {
			panic(http.ErrAbortHandler) // the connection is cut: no answer
		}
		if n := s.fail503.Load(); n > 0 && s.rng.IntN(1000) < int(n) {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Retry-After", "0.05")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`{"code":"unavailable","message":"injected","error":"injected"}`))
			return
		}
		(*s.inner.Load()).ServeHTTP(w, r)
	})
	srv := httptest.NewServer(front)
	t.Cleanup(srv.Close)
	s.url = srv.URL
	return s
}

// newEngine builds an engine, its listener and handler, and serves them:
// a restart of the application's process, as far as the devices can tell.
func (s *server) newEngine() {
	s.t.Helper()
	if s.stopListen != nil {
		s.stopListen()
	}
	engine, err := synchro.NewEngine(synchro.Config{DB: s.db.Super, Registry: appRegistry(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		s.t.Fatalf("NewEngine: %v", err)
	}
	lctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = engine.Listen(lctx, synchro.ListenConfig{Recheck: 2 * time.Second})
	}()
	s.stopListen = func() { cancel(); <-done }
	h, err := synchrohttp.New(synchrohttp.Config{Engine: engine, UserID: bearerUser, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		s.t.Fatalf("synchrohttp.New: %v", err)
	}
	var hh http.Handler = h
	s.engine.Store(engine)
	s.inner.Store(&hh)
	s.t.Cleanup(func() {
		if s.stopListen != nil {
			s.stopListen()
			s.stopListen = nil
		}
	})
}

// bearerUser is the tests' authentication: the bearer token is the user.
func bearerUser(r *http.Request) (string, error) {
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || token == "" {
		return "", errors.New("no bearer token")
	}
	return token, nil
}

// exec runs a statement on the server's database as the superuser.
func (s *server) exec(t testing.TB, query string, args ...any) {
	t.Helper()
	if _, err := s.db.Super.ExecContext(context.Background(), query, args...); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}

// device is a client of the tests, with its configuration kept so that
// it can be reopened.
type device struct {
	t    testing.TB
	cfg  client.Config
	c    *client.Client
	user string

	mu     sync.Mutex
	events []client.Event
}

// newDevice opens a device of user on s, in a file of its own; mod may
// change its configuration.
func (s *server) newDevice(t testing.TB, user string, mod func(*client.Config)) *device {
	t.Helper()
	d := &device{t: t, user: user}
	d.cfg = client.Config{
		ServerURL:      s.url,
		Path:           filepath.Join(t.TempDir(), user+"-"+fmt.Sprint(time.Now().UnixNano())+".db"),
		Token:          func(context.Context) (string, error) { return user, nil },
		AppVersion:     "1.0.0",
		PullWait:       2 * time.Second,
		PollInterval:   200 * time.Millisecond,
		ChangeCheck:    20 * time.Millisecond,
		RequestTimeout: 10 * time.Second,
		MinBackoff:     20 * time.Millisecond,
		MaxBackoff:     300 * time.Millisecond,
		OnEvent:        d.record,
	}
	if mod != nil {
		mod(&d.cfg)
	}
	d.open()
	return d
}

func (d *device) record(ev client.Event) {
	d.mu.Lock()
	d.events = append(d.events, ev)
	d.mu.Unlock()
}

// eventsOf returns the events of kind so far.
func (d *device) eventsOf(kind client.EventKind) []client.Event {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []client.Event
	for _, ev := range d.events {
		if ev.Kind == kind {
			out = append(out, ev)
		}
	}
	return out
}

// open opens the device's client on its file.
func (d *device) open() {
	d.t.Helper()
	c, err := client.Open(context.Background(), d.cfg)
	if err != nil {
		d.t.Fatalf("client.Open: %v", err)
	}
	d.c = c
	d.t.Cleanup(func() { _ = c.Close() })
}

// reopen closes the client, abruptly or not, and opens the file again.
func (d *device) reopen() {
	d.t.Helper()
	if err := d.c.Close(); err != nil {
		d.t.Fatalf("Close: %v", err)
	}
	d.open()
}

// sync runs one round and fails the test on an error.
func (d *device) sync() {
	d.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := d.c.Sync(ctx); err != nil {
		d.t.Fatalf("%s: Sync: %v", d.user, err)
	}
}

// syncUntilOK runs rounds until one succeeds (faults may fail some).
func (d *device) syncUntilOK() {
	d.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err := d.c.Sync(ctx)
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("%s: no round succeeded within 60s; last: %v", d.user, err)
		}
		time.Sleep(10 * time.Millisecond) // a retry's pause, not a synchronisation
	}
}

// exec runs a local statement.
func (d *device) exec(query string, args ...any) {
	d.t.Helper()
	if _, err := d.c.DB().Exec(query, args...); err != nil {
		d.t.Fatalf("%s: %s: %v", d.user, query, err)
	}
}

// pending returns the number of queued local changes.
func (d *device) pending() int {
	d.t.Helper()
	p, err := d.c.Pending(context.Background())
	if err != nil {
		d.t.Fatal(err)
	}
	return len(p)
}

// rejections returns the device's rejections.
func (d *device) rejections() []client.Rejection {
	d.t.Helper()
	r, err := d.c.Rejections(context.Background())
	if err != nil {
		d.t.Fatal(err)
	}
	return r
}

// captured waits until change capture has written to the changelog every
// change committed before the call: it commits a probe row (of a user no
// device has) and waits for it, since capture follows commit order.
func (s *server) captured(t testing.TB) {
	t.Helper()
	probe := "probe-" + id()
	s.exec(t, `INSERT INTO lists (id, user_id, name) VALUES ($1, '_probe', 'probe')`, probe)
	pgtest.WaitUntil(t, "change capture to catch up", 60*time.Second, func() bool {
		var ok bool
		err := s.db.Super.QueryRow(`SELECT EXISTS (SELECT 1 FROM synchro.changelog WHERE record_id = $1)`, probe).Scan(&ok)
		return err == nil && ok
	})
}

// expected writes, into a file of the test, what a new device of user
// holds after a snapshot taken now (a seed, written by the engine), and
// returns its database.
func (s *server) expected(t testing.TB, user string) *sql.DB {
	t.Helper()
	path := filepath.Join(t.TempDir(), "expected-"+user+"-"+fmt.Sprint(time.Now().UnixNano())+".db")
	if _, err := seed.Write(context.Background(), path, seed.Config{Engine: s.engine.Load(), UserID: user}); err != nil {
		t.Fatalf("seed.Write: %v", err)
	}
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close(); _ = os.Remove(path) })
	return db
}

// dump lists every row of the synced tables of db, one line each, sorted,
// with the columns the server sets on its own left out (created_at).
func dump(t testing.TB, db *sql.DB, tables []synchro.SchemaTable) []string {
	t.Helper()
	var out []string
	for _, tbl := range tables {
		var cols []string
		isJSON := map[int]bool{}
		for _, c := range tbl.Columns {
			if c.Name != "created_at" {
				isJSON[len(cols)] = c.LogicalType == "json"
				cols = append(cols, `"`+c.Name+`"`)
			}
		}
		rows, err := db.Query(`SELECT ` + strings.Join(cols, ", ") + ` FROM "` + tbl.TableName + `" ORDER BY 1`)
		if err != nil {
			t.Fatalf("dumping %s: %v", tbl.TableName, err)
		}
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			parts := []string{tbl.TableName}
			for i, v := range vals {
				if b, ok := v.([]byte); ok {
					v = string(b)
				}
				if s, ok := v.(string); ok && isJSON[i] {
					// Compared as JSON values: a row the device wrote keeps
					// its text until the server's echo of it comes.
					var x any
					if json.Unmarshal([]byte(s), &x) == nil {
						b, _ := json.Marshal(x)
						v = string(b)
					}
				}
				parts = append(parts, fmt.Sprintf("%s=%v", cols[i], v))
			}
			out = append(out, strings.Join(parts, " "))
		}
		if err := rows.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// converged checks that d's tables hold exactly what a snapshot of its
// user gives now.
func (s *server) converged(t testing.TB, d *device) {
	t.Helper()
	tables := d.c.Tables()
	want := dump(t, s.expected(t, d.user), tables)
	got := dump(t, d.c.DB(), tables)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("device of %s diverged from the server:\n%s", d.user, diffLines(got, want))
	}
}

// diffLines shows the lines only in got (-) and only in want (+).
func diffLines(got, want []string) string {
	in := func(list []string) map[string]bool {
		m := map[string]bool{}
		for _, l := range list {
			m[l] = true
		}
		return m
	}
	g, w := in(got), in(want)
	var b strings.Builder
	n := 0
	for _, l := range got {
		if !w[l] && n < 20 {
			fmt.Fprintf(&b, "  - device: %s\n", l)
			n++
		}
	}
	for _, l := range want {
		if !g[l] && n < 40 {
			fmt.Fprintf(&b, "  + server: %s\n", l)
			n++
		}
	}
	fmt.Fprintf(&b, "  (%d rows on the device, %d on the server)", len(got), len(want))
	return b.String()
}

// id returns a new random id.
func id() string {
	return fmt.Sprintf("%016x", rand.Uint64())
}
