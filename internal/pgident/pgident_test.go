package pgident

import (
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	t.Parallel()
	good := []string{"id", "Mixed Case", "ünïcode", `with"quote`, strings.Repeat("a", MaxLen)}
	for _, s := range good {
		if err := Check(s); err != nil {
			t.Errorf("Check(%q) = %v, want nil", s, err)
		}
	}
	bad := []string{"", strings.Repeat("a", MaxLen+1), " lead", "trail ", "tab\there", "nul\x00", "\xff", "del\x7f"}
	for _, s := range bad {
		if err := Check(s); err == nil {
			t.Errorf("Check(%q) = nil, want an error", s)
		}
	}
}

func TestSplitAndQuote(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, schema, name, quoted string
		bad                      bool
	}{
		{in: "items", name: "items", quoted: `"items"`},
		{in: "app.items", schema: "app", name: "items", quoted: `"app"."items"`},
		{in: `My "Table"`, name: `My "Table"`, quoted: `"My ""Table"""`},
		{in: "a.b.c", bad: true},
		{in: ".b", bad: true},
		{in: "a.", bad: true},
		{in: "", bad: true},
	}
	for _, tt := range tests {
		schema, name, err := Split(tt.in)
		if tt.bad {
			if err == nil {
				t.Errorf("Split(%q) = nil error, want one", tt.in)
			}
			continue
		}
		if err != nil || schema != tt.schema || name != tt.name {
			t.Errorf("Split(%q) = %q, %q, %v; want %q, %q", tt.in, schema, name, err, tt.schema, tt.name)
		}
		if got := QuoteQualified(tt.in); got != tt.quoted {
			t.Errorf("QuoteQualified(%q) = %s, want %s", tt.in, got, tt.quoted)
		}
	}
	if got := Quote("a.b"); got != `"a.b"` {
		t.Errorf(`Quote("a.b") = %s`, got)
	}
}

func TestQuoteLiteral(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"": "''", "app.user_id": "'app.user_id'", "it's": "'it''s'", `"pub"`: `'"pub"'`} {
		if got := QuoteLiteral(in); got != want {
			t.Errorf("QuoteLiteral(%q) = %s, want %s", in, got, want)
		}
	}
}
