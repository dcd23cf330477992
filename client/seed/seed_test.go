package seed_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/synchrosync/synchro"
	"github.com/synchrosync/synchro/client/seed"
)

// Write's configuration errors. Seeds themselves are tested end to end in
// package client (TestSeed, and every convergence check, which compares a
// device with a seed of its user).
func TestWriteConfig(t *testing.T) {
	path := filepath.Join(t.TempDir(), "seed.db")
	for _, cfg := range []seed.Config{
		{UserID: "alice"},
		{Engine: &synchro.Engine{}},
		{Engine: &synchro.Engine{}, UserID: "alice", PageSize: 1001},
		{Engine: &synchro.Engine{}, UserID: "alice", PageSize: -1},
	} {
		if _, err := seed.Write(context.Background(), path, cfg); err == nil {
			t.Errorf("Write(%+v) succeeded", cfg)
		}
	}
}
