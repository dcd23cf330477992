//go:build unix

package pgtest

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"
)

// TestLocalServerPortInUse starts a second local cluster on a port that
// something else holds: the start must fail with errPortInUse and leave no
// process behind, and a start on a free port must then succeed.
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
	l, err := newLocalServer(bin, cred)
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
