package locks

import (
	"testing"

	"github.com/synchrosync/synchro/migrations"
)

// TestKeysDistinct: no two uses share a key in either space.
func TestKeysDistinct(t *testing.T) {
	single := map[int64]string{}
	for name, k := range map[string]int64{"Snapshot": Snapshot, "Manifest": Manifest, "CompactionRun": CompactionRun, "Migrations": Migrations} {
		if other, dup := single[k]; dup {
			t.Errorf("%s and %s share key %#x", name, other, k)
		}
		single[k] = name
	}
	if Apply == SlotSetup {
		t.Errorf("Apply and SlotSetup share key %#x", Apply)
	}
}

// TestMigrationsKey: package migrations exports its key as a literal, for
// operators reading go doc; it is the one listed here.
func TestMigrationsKey(t *testing.T) {
	if migrations.LockKey != Migrations {
		t.Errorf("migrations.LockKey %#x, locks.Migrations %#x", migrations.LockKey, Migrations)
	}
}
