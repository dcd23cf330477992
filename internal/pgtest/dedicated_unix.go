//go:build unix

package pgtest

import (
	"context"
	"fmt"
)

// startDedicated starts a local server of its own for a DedicatedServer and
// returns it with its restart function.
func startDedicated(ctx context.Context) (*server, func(context.Context) error, error) {
	bin, err := findBinaries()
	if err != nil {
		return nil, nil, err
	}
	cred, err := serverCredential()
	if err != nil {
		return nil, nil, err
	}
	l, port, err := launchLocal(ctx, bin, cred)
	if err != nil {
		return nil, nil, err
	}
	srv, err := newServer(ctx, localBase(port), l.stop, fmt.Sprintf("dedicated local PostgreSQL on port %d in %s", port, l.dir))
	if err != nil {
		return nil, nil, err
	}
	srv.local = true
	restart := func(ctx context.Context) error {
		if err := l.shutdown(ctx); err != nil {
			return fmt.Errorf("stopping: %w", err)
		}
		if err := l.start(ctx, port); err != nil {
			return fmt.Errorf("starting again on port %d: %w", port, err)
		}
		return nil
	}
	return srv, restart, nil
}
