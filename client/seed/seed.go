// Package seed writes seed files: client-ready SQLite files for one user,
// made on the server from its engine, so that a new installation starts
// from a file (bundled with a download, or fetched at first start) instead
// of paging through a snapshot.
//
// A seed holds what package client keeps after a complete snapshot: the
// synced tables built from the schema contract, with their capture
// triggers and the client's bookkeeping, the rows of the user's buckets,
// the checkpoint of the snapshot, and the client id it was taken for. The
// engine registers that client id for the user and records the snapshot
// as the client's, so a client opened on the file (client.Open with
// Config.Path naming it, Config.ClientID empty or the same) registers
// again, finds nothing to snapshot, and pulls only what changed since the
// seed was written.
//
// One seed file is for one installation: two devices started from copies
// of one file would share a client id, and the server would take them for
// one device. Write a seed per installation (for example on the request
// that downloads it), with a new client id each time, the default.
//
// The package lives in the client's module (it needs SQLite), beside
// package client, so that the server's module does not depend on SQLite;
// a server that writes seeds imports it.
//
//	res, err := seed.Write(ctx, "/tmp/alice.db", seed.Config{Engine: engine, UserID: "alice"})
//	// serve the file; the device opens it with client.Open
package seed

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/synchrosync/synchro"
	"github.com/synchrosync/synchro/client/internal/local"
	"github.com/synchrosync/synchro/client/internal/uuid"
)

// DefaultPageSize is Config.PageSize's default: the engine's largest
// snapshot page.
const DefaultPageSize = synchro.MaxSnapshotLimit

// Config configures Write.
type Config struct {
	// Engine is the server's engine. Required.
	Engine *synchro.Engine
	// UserID is the user whose buckets the seed holds, as the
	// application's authentication would give it. Required.
	UserID string
	// ClientID is the client id the seed is taken for, which the device
	// then uses. Defaults to a new random id.
	ClientID string
	// ClientName, Platform and AppVersion register the client; the
	// device registers again with its own at its first sync. Platform
	// defaults to "seed".
	ClientName, Platform, AppVersion string
	// PageSize is the records per snapshot page read from the engine.
	// Defaults to DefaultPageSize; at most synchro.MaxSnapshotLimit.
	PageSize int
}

// Result describes a seed written.
type Result struct {
	// ClientID is the client id the seed is for.
	ClientID string
	// Checkpoint is the snapshot's checkpoint: the device pulls from it.
	Checkpoint int64
	// Records counts the rows written.
	Records int
	// SchemaVersion and SchemaHash are the contract of the tables.
	SchemaVersion int64
	SchemaHash    string
}

// Write writes the seed of cfg.UserID to path, replacing any file there
// once the seed is complete (it is written beside it first, so that a
// failed Write leaves no partial seed at path). A schema change while it
// runs makes it start again, once.
func Write(ctx context.Context, path string, cfg Config) (*Result, error) {
	if cfg.Engine == nil {
		return nil, errors.New("seed: Config.Engine is required")
	}
	if cfg.UserID == "" {
		return nil, errors.New("seed: Config.UserID is required")
	}
	if cfg.PageSize == 0 {
		cfg.PageSize = DefaultPageSize
	}
	if cfg.PageSize < 0 || cfg.PageSize > synchro.MaxSnapshotLimit {
		return nil, fmt.Errorf("seed: Config.PageSize must be 1 to %d, got %d", synchro.MaxSnapshotLimit, cfg.PageSize)
	}
	if cfg.ClientID == "" {
		cfg.ClientID = uuid.New()
	}
	if cfg.Platform == "" {
		cfg.Platform = "seed"
	}
	var res *Result
	var err error
	for attempt := 0; attempt < 2; attempt++ {
		if res, err = write(ctx, path, cfg); !errors.Is(err, synchro.ErrSchemaMismatch) {
			break
		}
	}
	return res, err
}

func write(ctx context.Context, path string, cfg Config) (res *Result, err error) {
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+"."+uuid.New()[:8]+".tmp")
	store, err := local.Open(ctx, tmp)
	if err != nil {
		return nil, fmt.Errorf("seed: %w", err)
	}
	defer func() {
		err = errors.Join(err, store.Close())
		if err != nil {
			for _, p := range []string{tmp, tmp + "-wal", tmp + "-shm"} {
				_ = os.Remove(p)
			}
			return
		}
		if rerr := os.Rename(tmp, path); rerr != nil {
			err = fmt.Errorf("seed: %w", rerr)
			_ = os.Remove(tmp)
		}
	}()

	e := cfg.Engine
	contract, err := e.Schema(ctx)
	if err != nil {
		return nil, fmt.Errorf("seed: reading the schema contract: %w", err)
	}
	schema, err := local.NewSchema(*contract)
	if err != nil {
		return nil, fmt.Errorf("seed: %w", err)
	}
	if err := store.Install(ctx, schema); err != nil {
		return nil, fmt.Errorf("seed: creating the tables: %w", err)
	}
	if err := store.SetClientID(ctx, cfg.ClientID); err != nil {
		return nil, fmt.Errorf("seed: %w", err)
	}
	reg := &synchro.RegisterRequest{ClientID: cfg.ClientID, Platform: cfg.Platform, AppVersion: cfg.AppVersion,
		SchemaVersion: contract.SchemaVersion, SchemaHash: contract.SchemaHash}
	if cfg.ClientName != "" {
		reg.ClientName = &cfg.ClientName
	}
	if _, err := e.RegisterClient(ctx, cfg.UserID, reg); err != nil {
		return nil, fmt.Errorf("seed: registering client %s: %w", cfg.ClientID, err)
	}
	if err := store.BeginSnapshot(ctx, schema); err != nil {
		return nil, fmt.Errorf("seed: %w", err)
	}
	res = &Result{ClientID: cfg.ClientID, SchemaVersion: contract.SchemaVersion, SchemaHash: contract.SchemaHash}
	var cursor *synchro.SnapshotCursor
	for {
		page, err := e.Snapshot(ctx, cfg.UserID, &synchro.SnapshotRequest{ClientID: cfg.ClientID, Cursor: cursor, Limit: cfg.PageSize,
			SchemaVersion: contract.SchemaVersion, SchemaHash: contract.SchemaHash})
		if err != nil {
			return nil, fmt.Errorf("seed: snapshot: %w", err)
		}
		if _, err := store.ApplySnapshotPage(ctx, schema, cursor, page); err != nil {
			return nil, fmt.Errorf("seed: writing a snapshot page: %w", err)
		}
		res.Records += len(page.Records)
		if !page.HasMore {
			res.Checkpoint = page.Checkpoint
			return res, nil
		}
		cursor = page.Cursor
	}
}
