//go:build unix

package pglocal

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// TestLocalServerPortInUse starts a local cluster on a port that something
// else holds: the start must fail with errPortInUse and leave no process
// behind, and a start on a free port must then succeed.
func TestLocalServerPortInUse(t *testing.T) {
	t.Parallel()
	bin, err := findBinaries()
	if err != nil {
		t.Skip(err)
	}
	cred, err := serverCredential()
	if err != nil {
		t.Skip(err)
	}
	l, err := newLocalServer(bin, cred, Config{Name: "synchro-pglocal-test"}.withDefaults())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := l.stop(ctx); err != nil {
			t.Error(err)
		}
	})
	if err := l.initCluster(t.Context()); err != nil {
		t.Fatal(err)
	}

	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = taken.Close() }()
	err = l.start(t.Context(), taken.Addr().(*net.TCPAddr).Port)
	if !errors.Is(err, errPortInUse) {
		t.Fatalf("start on a taken port: %v, want errPortInUse", err)
	}
	t.Logf("start on a taken port: %v", err)
	select {
	case <-l.proc.done:
	default:
		t.Fatal("postgres still runs after a failed start")
	}

	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	if err := l.start(t.Context(), port); err != nil {
		t.Fatalf("start on a free port: %v", err)
	}
}

func TestCompareVersions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		a, b string
		want int
	}{
		{"15", "15", 0},
		{"9.6", "15", -1},
		{"16", "15", 1},
		{"10", "9.6", 1},
		{"9.6", "9.5", 1},
	}
	for _, tt := range tests {
		if got := compareVersions(tt.a, tt.b); got != tt.want {
			t.Errorf("compareVersions(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}

// TestStart starts a server through the exported API: it runs with
// wal_level=logical, answers at URL, restarts on the same port, and Stop
// removes its directory and can be called again.
func TestStart(t *testing.T) {
	t.Parallel()
	if _, err := findBinaries(); err != nil {
		t.Skip(err)
	}
	if _, err := serverCredential(); err != nil {
		t.Skip(err)
	}
	ctx := t.Context()
	srv, err := Start(ctx, Config{Name: "synchro-pglocal-test"})
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			_ = srv.Stop(context.Background())
		}
	})
	walLevel := func() string {
		t.Helper()
		conn, err := pgconn.Connect(ctx, srv.URL())
		if err != nil {
			t.Fatalf("connecting to %s: %v", srv.URL(), err)
		}
		defer func() { _ = conn.Close(ctx) }()
		results, err := conn.Exec(ctx, `SHOW wal_level`).ReadAll()
		if err != nil || len(results) != 1 || len(results[0].Rows) != 1 {
			t.Fatalf("SHOW wal_level: %v", err)
		}
		return string(results[0].Rows[0][0])
	}
	if got := walLevel(); got != "logical" {
		t.Errorf("wal_level = %q, want logical", got)
	}
	if err := srv.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if got := walLevel(); got != "logical" {
		t.Errorf("after Restart: wal_level = %q, want logical", got)
	}
	dir := srv.Dir()
	stopped = true
	if err := srv.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the directory remains after Stop: %v", err)
	}
	if err := srv.Stop(ctx); err != nil {
		t.Errorf("a second Stop: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"a/b", "a*", "a?", "a[b"} {
		if err := (Config{Name: name}).withDefaults().validate(); err == nil {
			t.Errorf("Config{Name: %q}: no error", name)
		}
	}
	if err := (Config{}).withDefaults().validate(); err != nil {
		t.Errorf("the zero Config: %v", err)
	}
}

// TestRemoveStaleDirs removes the directories of dead owners and of
// long-abandoned setups, and keeps those of live owners and those being set
// up: a pid file that is empty or unparsable (a writer caught mid-write)
// must not get a fresh directory removed under its owner.
func TestRemoveStaleDirs(t *testing.T) {
	t.Parallel()
	cfg := Config{Dir: t.TempDir(), Name: "stale-test"}.withDefaults()
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Skip(err)
	}
	old := time.Now().Add(-2 * staleUnownedAge)
	dirs := []struct {
		name    string
		pid     *string // nil: no pid file
		old     bool
		removed bool
	}{
		{"live", ptr(strconv.Itoa(os.Getpid())), false, false},
		{"dead", ptr(strconv.Itoa(dead.Process.Pid)), false, true},
		{"no-pid-fresh", nil, false, false},
		{"no-pid-old", nil, true, true},
		{"empty-fresh", ptr(""), false, false},
		{"empty-old", ptr(""), true, true},
		{"garbage-fresh", ptr("12ab"), false, false},
		{"zero-fresh", ptr("0"), false, false},
	}
	for _, d := range dirs {
		dir := filepath.Join(cfg.Dir, "stale-test-"+d.name)
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if d.pid != nil {
			if err := os.WriteFile(filepath.Join(dir, ownerPIDFile), []byte(*d.pid), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if d.old {
			if err := os.Chtimes(dir, old, old); err != nil {
				t.Fatal(err)
			}
		}
	}
	removeStaleDirs(cfg)
	for _, d := range dirs {
		_, err := os.Stat(filepath.Join(cfg.Dir, "stale-test-"+d.name))
		if gone := errors.Is(err, os.ErrNotExist); gone != d.removed {
			t.Errorf("%s: removed = %v, want %v (%v)", d.name, gone, d.removed, err)
		}
	}
}

// TestOwnerPIDWhileCleaning sets up directories while another start cleans
// up concurrently, as two parallel Starts do: no directory being set up may
// vanish.
func TestOwnerPIDWhileCleaning(t *testing.T) {
	t.Parallel()
	cfg := Config{Dir: t.TempDir(), Name: "race-test"}.withDefaults()
	done := make(chan struct{})
	cleaned := make(chan struct{})
	go func() {
		defer close(cleaned)
		for {
			select {
			case <-done:
				return
			default:
				removeStaleDirs(cfg)
			}
		}
	}()
	defer func() { close(done); <-cleaned }()
	for i := range 300 {
		dir, err := os.MkdirTemp(cfg.Dir, dirPattern(cfg))
		if err != nil {
			t.Fatal(err)
		}
		if err := writeOwnerPID(dir); err != nil {
			t.Fatalf("setup %d: %v", i, err)
		}
		b, err := os.ReadFile(filepath.Join(dir, ownerPIDFile))
		if err != nil {
			t.Fatalf("setup %d: the directory was removed: %v", i, err)
		}
		if got := strings.TrimSpace(string(b)); got != strconv.Itoa(os.Getpid()) {
			t.Fatalf("setup %d: %s holds %q", i, ownerPIDFile, got)
		}
		if _, err := os.Stat(filepath.Join(dir, ownerPIDFile+".tmp")); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("setup %d: the temporary pid file remains: %v", i, err)
		}
	}
}

func ptr[T any](v T) *T { return &v }
