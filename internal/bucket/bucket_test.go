package bucket

import (
	"encoding/json"
	"math"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestText(t *testing.T) {
	t.Parallel()
	type named string
	tests := []struct {
		name string
		v    any
		want string // "" means false
	}{
		{"nil", nil, ""},
		{"empty string", "", ""},
		{"string", "héllo", "héllo"},
		{"uuid text", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"},
		{"int64", int64(-9223372036854775808), "-9223372036854775808"},
		{"int", 42, "42"},
		{"int32", int32(-7), "-7"},
		{"uint8", uint8(200), "200"},
		{"bool true", true, "true"},
		{"bool false", false, "false"},
		{"json.Number", json.Number("12345678901234567890.1230"), "12345678901234567890.1230"},
		{"empty json.Number", json.Number(""), ""},
		{"json.RawMessage object", json.RawMessage(`{"a": [1, 2]}`), `{"a": [1, 2]}`},
		{"json.RawMessage string", json.RawMessage(`"x"`), `"x"`},
		{"json.RawMessage keeps whitespace", json.RawMessage(` 5 `), ` 5 `},
		{"empty json.RawMessage", json.RawMessage(``), ""},
		{"[]byte", []byte("ab"), "ab"},
		{"empty []byte", []byte{}, ""},
		// double precision: positional for a decimal exponent in [-4, 15).
		{"float64 1.5", 1.5, "1.5"},
		{"float64 0", 0.0, "0"},
		{"float64 -0", math.Copysign(0, -1), "-0"},
		{"float64 0.1", 0.1, "0.1"},
		{"float64 1234567", 1234567.0, "1234567"},
		{"float64 1e14", 1e14, "100000000000000"},
		{"float64 123456789012345", 123456789012345.0, "123456789012345"},
		{"float64 1e15", 1e15, "1e+15"},
		{"float64 1234567890123456", 1234567890123456.0, "1.234567890123456e+15"},
		{"float64 1e22", 1e22, "1e+22"},
		{"float64 1e100", 1e100, "1e+100"},
		{"float64 0.0001", 0.0001, "0.0001"},
		{"float64 0.00001", 0.00001, "1e-05"},
		{"float64 -1.5e-7", -1.5e-7, "-1.5e-07"},
		{"float64 max", math.MaxFloat64, "1.7976931348623157e+308"},
		{"float64 NaN", math.NaN(), "NaN"},
		{"float64 +Inf", math.Inf(1), "Infinity"},
		{"float64 -Inf", math.Inf(-1), "-Infinity"},
		// real: positional for a decimal exponent in [-4, 6).
		{"float32 0.1", float32(0.1), "0.1"},
		{"float32 123456", float32(123456), "123456"},
		{"float32 1e6", float32(1e6), "1e+06"},
		{"float32 1e-5", float32(1e-5), "1e-05"},
		{"float32 +Inf", float32(math.Inf(1)), "Infinity"},
		{"Stringer", netip.MustParseAddr("192.168.0.1"), "192.168.0.1"},
		{"Stringer time", time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC), "2024-01-02 03:04:05 +0000 UTC"},
		{"named string", named("n"), "n"},
		{"slice", []any{"x", int64(1)}, "[x 1]"},
	}
	for _, tt := range tests {
		got, ok := Text(tt.v)
		if got != tt.want || ok != (tt.want != "") {
			t.Errorf("%s: Text(%#v) = %q, %v; want %q, %v", tt.name, tt.v, got, ok, tt.want, tt.want != "")
		}
	}
}

func TestNormalize(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, want []string
	}{
		{nil, nil},
		{[]string{}, []string{}},
		{[]string{""}, []string{}},
		{[]string{"user:b", "global", "", "user:a", "global"}, []string{"global", "user:a", "user:b"}},
	}
	for _, tt := range tests {
		in := slices.Clone(tt.in)
		got := Normalize(in)
		if !slices.Equal(got, tt.want) || (got == nil) != (tt.want == nil) {
			t.Errorf("Normalize(%q) = %#v, want %#v", tt.in, got, tt.want)
		}
		if !slices.Equal(in, tt.in) {
			t.Errorf("Normalize(%q) changed its argument to %q", tt.in, in)
		}
	}
}

func TestDedupe(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, want []string
	}{
		{nil, []string{}},
		{[]string{""}, []string{}},
		{[]string{"a", "", "b", "a", "c", "b"}, []string{"a", "b", "c"}},
		{[]string{"user:b", "global", "user:a"}, []string{"user:b", "global", "user:a"}},
	}
	for _, tt := range tests {
		if got := Dedupe(tt.in); got == nil || !slices.Equal(got, tt.want) {
			t.Errorf("Dedupe(%q) = %#v, want %#v", tt.in, got, tt.want)
		}
	}
}

func TestIDs(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ got, want string }{
		{User("u1"), "user:u1"},
		{Client("c-1"), "synchro:client:c-1"},
		{ClientPrefix, "synchro:client:"},
		{BoundaryMarker, "synchro:boundary"},
		{Global, "global"},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
}

func TestOldRow(t *testing.T) {
	t.Parallel()
	if got := OldRow(t.Context()); got != nil {
		t.Errorf("OldRow of a bare context = %v, want nil", got)
	}
	old := map[string]any{"id": "r1"}
	if got := OldRow(WithOldRow(t.Context(), old)); got["id"] != "r1" {
		t.Errorf("OldRow = %v, want %v", got, old)
	}
}

func TestCheckID(t *testing.T) {
	t.Parallel()
	for _, id := range []string{"user:u1", "global", "team:é", strings.Repeat("x", MaxIDLen), "synchro"} {
		if err := CheckID(id); err != nil {
			t.Errorf("CheckID(%.20q): %v, want nil", id, err)
		}
	}
	for id, want := range map[string]string{
		"team:\xff\xfe":                    "not valid UTF-8",
		"a\x00b":                           "NUL",
		strings.Repeat("x", MaxIDLen+1):    "1025 bytes long",
		ClientPrefix + "1":                 "reserved",
		BoundaryMarker:                     "reserved",
		strings.Repeat("\xff", MaxIDLen*2): "not valid UTF-8",
	} {
		err := CheckID(id)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("CheckID(%.20q): %v, want an error saying %q", id, err, want)
			continue
		}
		if msg := err.Error(); !utf8.ValidString(msg) || strings.IndexByte(msg, 0) >= 0 || len(msg) > 200 {
			t.Errorf("CheckID(%.20q): the message %q must be short, storable text", id, msg)
		}
		// CheckStorable is CheckID without the length limit.
		if err := CheckStorable(id); (err == nil) != (want == "1025 bytes long") {
			t.Errorf("CheckStorable(%.20q): %v", id, err)
		}
	}
}
