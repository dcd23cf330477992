package synchro

import (
	"errors"
	"strings"
	"testing"
)

func TestCheckVersion(t *testing.T) {
	t.Parallel()
	tests := []struct {
		client, minimum string
		upgrade         bool   // want ErrUpgradeRequired
		errContains     string // want another error naming this text
	}{
		{client: "1.2.3", minimum: "1.2.3"},
		{client: "1.2.4", minimum: "1.2.3"},
		{client: "2.0.0", minimum: "1.9.9"},
		{client: "1.10.0", minimum: "1.9.0"}, // numeric, not lexical
		{client: "1.2.2", minimum: "1.2.3", upgrade: true},
		{client: "0.9.0", minimum: "1.0.0", upgrade: true},
		{client: "1.9.0", minimum: "1.10.0", upgrade: true},
		{client: "v1.2.3", minimum: "1.2.3"},
		{client: "1.2.3", minimum: "v1.2.3"},
		{client: "v1.2.2", minimum: "v1.2.3", upgrade: true},
		{client: "1.2", minimum: "1.2.0"},
		{client: "1", minimum: "1.0.1", upgrade: true},
		// Pre-releases order below their release.
		{client: "1.0.0-beta", minimum: "1.0.0", upgrade: true},
		{client: "1.0.0-alpha", minimum: "1.0.0-beta", upgrade: true},
		{client: "1.0.0-beta.2", minimum: "1.0.0-beta.11", upgrade: true},
		{client: "1.0.0-rc.1", minimum: "1.0.0-beta"},
		{client: "1.0.1-beta", minimum: "1.0.0"},
		{client: "1.0.0", minimum: "1.0.0-beta"},
		// Build metadata is ignored.
		{client: "1.0.0+build.9", minimum: "1.0.0"},
		// No minimum: everything passes, even garbage.
		{client: "1.0.0", minimum: ""},
		{client: "", minimum: ""},
		{client: "not a version", minimum: ""},
		// Errors name the bad string and are not ErrUpgradeRequired.
		{client: "", minimum: "1.0.0", errContains: "missing client version"},
		{client: "banana", minimum: "1.0.0", errContains: `"banana"`},
		{client: "1.2.3.4", minimum: "1.0.0", errContains: `"1.2.3.4"`},
		{client: "1.0.0", minimum: "latest", errContains: `"latest"`},
	}
	for _, tt := range tests {
		err := CheckVersion(tt.client, tt.minimum)
		switch {
		case tt.upgrade:
			if !errors.Is(err, ErrUpgradeRequired) {
				t.Errorf("CheckVersion(%q, %q) = %v, want ErrUpgradeRequired", tt.client, tt.minimum, err)
			}
		case tt.errContains != "":
			if err == nil || errors.Is(err, ErrUpgradeRequired) || !strings.Contains(err.Error(), tt.errContains) {
				t.Errorf("CheckVersion(%q, %q) = %v, want an error containing %s", tt.client, tt.minimum, err, tt.errContains)
			}
		default:
			if err != nil {
				t.Errorf("CheckVersion(%q, %q) = %v, want nil", tt.client, tt.minimum, err)
			}
		}
	}
}

// TestEngineCheckAppVersion checks CheckAppVersion and MinClientVersion,
// which need no database.
func TestEngineCheckAppVersion(t *testing.T) {
	t.Parallel()
	none := &Engine{}
	for _, v := range []string{"", "0.0.1", "banana"} {
		if err := none.CheckAppVersion(v); err != nil {
			t.Errorf("no minimum: CheckAppVersion(%q) = %v, want nil", v, err)
		}
	}
	if got := none.MinClientVersion(); got != "" {
		t.Errorf("no minimum: MinClientVersion() = %q", got)
	}
	e := &Engine{minVersion: "1.2.0"}
	if got := e.MinClientVersion(); got != "1.2.0" {
		t.Errorf("MinClientVersion() = %q, want 1.2.0", got)
	}
	for v, upgrade := range map[string]bool{
		"1.2.0": false, "v1.3": false, "2.0.0-beta": false,
		"1.1.9": true, "1.2.0-rc.1": true, "": true, "banana": true, "1.2.3.4": true,
	} {
		err := e.CheckAppVersion(v)
		if upgrade != errors.Is(err, ErrUpgradeRequired) || !upgrade && err != nil {
			t.Errorf("CheckAppVersion(%q) = %v, want upgrade required %v", v, err, upgrade)
		}
	}
}
