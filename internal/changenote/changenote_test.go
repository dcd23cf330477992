package changenote

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

func TestEncodeDecode(t *testing.T) {
	if got := Encode(nil); got != nil {
		t.Errorf("Encode(nil) = %q; want none", got)
	}
	in := []string{"user:amy", "global", `odd "quoted" \ bucket`, "ünïcode\n"}
	p := Encode(in)
	if len(p) != 1 {
		t.Fatalf("Encode(%q) = %d payloads; want 1", in, len(p))
	}
	if n := Decode(p[0]); n.All || !slices.Equal(n.Buckets, in) {
		t.Errorf("Decode(%s) = %+v; want the buckets %q", p[0], n, in)
	}
}

func TestEncodeSplits(t *testing.T) {
	var in []string
	for i := range 2000 {
		in = append(in, fmt.Sprintf("user:%08d", i))
	}
	ps := Encode(in)
	if len(ps) < 2 || len(ps) > MaxNotes {
		t.Fatalf("%d payloads; want between 2 and %d", len(ps), MaxNotes)
	}
	var out []string
	for _, p := range ps {
		if len(p) > MaxPayload {
			t.Errorf("payload of %d bytes; at most %d", len(p), MaxPayload)
		}
		n := Decode(p)
		if n.All {
			t.Fatalf("a split payload decoded as all: %s", p)
		}
		out = append(out, n.Buckets...)
	}
	if !slices.Equal(out, in) {
		t.Errorf("the split payloads name %d buckets; want the %d given, in order", len(out), len(in))
	}
}

func TestEncodeTooMany(t *testing.T) {
	var in []string
	for i := range MaxNotes * MaxPayload / 8 {
		in = append(in, fmt.Sprintf("u:%05d", i))
	}
	if ps := Encode(in); len(ps) != 1 || !Decode(ps[0]).All {
		t.Errorf("Encode of %d buckets = %d payloads; want one all note", len(in), len(ps))
	}
	long := strings.Repeat("x", MaxPayload)
	if ps := Encode([]string{"a", long}); len(ps) != 1 || !Decode(ps[0]).All {
		t.Errorf("Encode of a bucket id longer than a payload = %q; want one all note", ps)
	}
}

func TestDecodeUnreadable(t *testing.T) {
	for _, p := range []string{"", "not json", `{"buckets":[]}`, `{"buckets":"x"}`, `{"all":true}`} {
		if n := Decode(p); !n.All {
			t.Errorf("Decode(%q) = %+v; want all", p, n)
		}
	}
}
