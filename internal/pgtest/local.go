package pgtest

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"

	"github.com/synchrosync/synchro/internal/pglocal"
)

// envTmpDir names the directory local servers live in (see the package
// documentation).
const envTmpDir = "SYNCHRO_TEST_TMPDIR"

// localConfig is where local servers live: a directory named
// synchro-pgtest-* under SYNCHRO_TEST_TMPDIR when set, else under pglocal's
// default (/dev/shm when writable, else os.TempDir). It must not be
// t.TempDir: when the tests run as root the server runs as the postgres OS
// user, which cannot reach the test's temporary directories.
func localConfig() pglocal.Config {
	return pglocal.Config{Dir: os.Getenv(envTmpDir), Name: "synchro-pgtest"}
}

// startLocal starts a server from the local binaries (package pglocal) in
// a temporary directory on a free port.
func startLocal(ctx context.Context) (*server, error) {
	l, err := pglocal.Start(ctx, localConfig())
	if err != nil {
		return nil, err
	}
	srv, err := newServer(ctx, localBase(l.Port()), l.Stop,
		fmt.Sprintf("local PostgreSQL from %s on port %d in %s", l.BinDir(), l.Port(), l.Dir()))
	if err != nil {
		return nil, err
	}
	srv.local = true
	return srv, nil
}

// startDedicated starts a local server of its own for a DedicatedServer and
// returns it with its restart function.
func startDedicated(ctx context.Context) (*server, func(context.Context) error, error) {
	l, err := pglocal.Start(ctx, localConfig())
	if err != nil {
		return nil, nil, err
	}
	srv, err := newServer(ctx, localBase(l.Port()), l.Stop,
		fmt.Sprintf("dedicated local PostgreSQL on port %d in %s", l.Port(), l.Dir()))
	if err != nil {
		return nil, nil, err
	}
	srv.local = true
	return srv, l.Restart, nil
}

// localBase is the superuser URL of the maintenance database of a local
// server on port.
func localBase(port int) url.URL {
	return url.URL{
		Scheme:   "postgres",
		User:     url.User("postgres"),
		Host:     net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		Path:     "/postgres",
		RawQuery: "sslmode=disable",
	}
}
