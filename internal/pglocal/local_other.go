//go:build !unix

package pglocal

import (
	"context"
	"fmt"
	"os"
	"runtime"
)

// Server is a PostgreSQL server run from the local binaries. It cannot be
// started on this platform: see Start.
type Server struct{}

// errUnsupported is the error of Start here: running the local binaries
// relies on Unix process management.
var errUnsupported = fmt.Errorf("%w: running the local PostgreSQL binaries is not supported on %s", ErrUnavailable, runtime.GOOS)

// Start is not supported here: it returns an error wrapping ErrUnavailable.
func Start(context.Context, Config) (*Server, error) {
	return nil, errUnsupported
}

// URL returns "": there is no server.
func (*Server) URL() string { return "" }

// Port returns 0: there is no server.
func (*Server) Port() int { return 0 }

// Dir returns "": there is no server.
func (*Server) Dir() string { return "" }

// BinDir returns "": there is no server.
func (*Server) BinDir() string { return "" }

// Stop does nothing: there is no server.
func (*Server) Stop(context.Context) error { return nil }

// Restart fails: there is no server.
func (*Server) Restart(context.Context) error { return errUnsupported }

// defaultDir is os.TempDir().
func defaultDir() string { return os.TempDir() }
