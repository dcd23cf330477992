//go:build !unix

package pgtest

import (
	"context"
	"fmt"
	"runtime"
)

// startDedicated is not supported here: see startLocal.
func startDedicated(context.Context) (*server, func(context.Context) error, error) {
	return nil, nil, fmt.Errorf("%w: running the local PostgreSQL binaries is not supported on %s", errUnavailable, runtime.GOOS)
}
