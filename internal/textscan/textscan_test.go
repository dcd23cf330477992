package textscan

import "testing"

func TestScanner(t *testing.T) {
	p := Scanner{S: "2026-12-02x", OK: true}
	y := p.Digits(4)
	p.Expect('-')
	m := p.Digits(2)
	p.Expect('-')
	d := p.Digits(2)
	if !p.OK || y != 2026 || m != 12 || d != 2 || p.I != 10 {
		t.Fatalf("read %d %d %d at %d, ok %v", y, m, d, p.I, p.OK)
	}
	p.Expect('-') // 'x'
	if p.OK {
		t.Error("a mismatch left OK set")
	}
	if v := p.Digits(1); v != 0 || p.OK {
		t.Error("reading after a mismatch")
	}
	short := Scanner{S: "1", OK: true}
	if short.Digits(2); short.OK {
		t.Error("two digits read from one")
	}
	bad := Scanner{S: "1a", OK: true}
	if bad.Digits(2); bad.OK {
		t.Error("a letter read as a digit")
	}
}
