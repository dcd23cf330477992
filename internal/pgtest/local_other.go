//go:build !unix

package pgtest

import (
	"context"
	"fmt"
	"runtime"
)

// startLocal is not supported here: running the local binaries relies on
// Unix process management.
func startLocal(context.Context) (*server, error) {
	return nil, fmt.Errorf("%w: running the local PostgreSQL binaries is not supported on %s", errUnavailable, runtime.GOOS)
}
