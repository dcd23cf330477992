package synchro

import (
	"strings"
	"testing"

	"github.com/synchrosync/synchro/internal/store"
)

// TestPushClientReadsBytesInHex: the push's read of its client sets
// bytea_output as the engine's read transactions do (hexBytes); package
// store spells the setting out, since it cannot import this package.
func TestPushClientReadsBytesInHex(t *testing.T) {
	if !strings.Contains(store.LockClientForPush, hexBytes) {
		t.Errorf("store.LockClientForPush does not set %s:\n%s", hexBytes, store.LockClientForPush)
	}
}
