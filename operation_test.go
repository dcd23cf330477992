package synchro

import "testing"

func TestOperationRoundTrip(t *testing.T) {
	t.Parallel()
	for _, op := range []Operation{OpInsert, OpUpdate, OpDelete} {
		got, ok := ParseOperation(op.String())
		if !ok || got != op {
			t.Errorf("ParseOperation(%q) = %v, %v; want %v, true", op.String(), got, ok, op)
		}
	}
}

func TestOperationString(t *testing.T) {
	t.Parallel()
	tests := []struct {
		op   Operation
		want string
	}{
		{OpInsert, "create"},
		{OpUpdate, "update"},
		{OpDelete, "delete"},
		{0, "unknown"},
		{4, "unknown"},
		{-1, "unknown"},
	}
	for _, tt := range tests {
		if got := tt.op.String(); got != tt.want {
			t.Errorf("Operation(%d).String() = %q, want %q", int(tt.op), got, tt.want)
		}
	}
	// The numeric values are the storage format and must never change.
	if OpInsert != 1 || OpUpdate != 2 || OpDelete != 3 {
		t.Fatalf("operation values changed: %d %d %d", OpInsert, OpUpdate, OpDelete)
	}
}

func TestParseOperationRejects(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"", "insert", "Create", "UPDATE", " delete", "delete ", "unknown", "1"} {
		if op, ok := ParseOperation(s); ok {
			t.Errorf("ParseOperation(%q) = %v, true; want false", s, op)
		}
	}
}

func FuzzParseOperation(f *testing.F) {
	for _, s := range []string{"create", "update", "delete", "", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		op, ok := ParseOperation(s)
		if ok != (op.String() == s) {
			t.Fatalf("ParseOperation(%q) = %v, %v but String gives %q", s, op, ok, op.String())
		}
	})
}
