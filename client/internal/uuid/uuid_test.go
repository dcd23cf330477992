package uuid

import (
	"regexp"
	"testing"
)

func TestNew(t *testing.T) {
	form := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	a, b := New(), New()
	if !form.MatchString(a) || !form.MatchString(b) || a == b {
		t.Errorf("New() gave %q and %q; want two different version 4 UUIDs", a, b)
	}
}
