// Package textscan reads fixed-width fields of text, such as the digits of
// a timestamp, without allocating.
package textscan

// Scanner reads fixed-width fields from the start of S, at I; OK turns
// false at the first mismatch and stays false, so a parse reads every
// field and checks OK once.
type Scanner struct {
	S  string
	I  int
	OK bool
}

// Digits reads n decimal digits and returns their value.
func (p *Scanner) Digits(n int) int {
	if !p.OK || p.I+n > len(p.S) {
		p.OK = false
		return 0
	}
	v := 0
	for _, c := range []byte(p.S[p.I : p.I+n]) {
		if !IsDigit(c) {
			p.OK = false
			return 0
		}
		v = v*10 + int(c-'0')
	}
	p.I += n
	return v
}

// Expect reads the byte c.
func (p *Scanner) Expect(c byte) {
	if !p.OK || p.I >= len(p.S) || p.S[p.I] != c {
		p.OK = false
		return
	}
	p.I++
}

// IsDigit reports whether c is an ASCII decimal digit.
func IsDigit(c byte) bool { return '0' <= c && c <= '9' }
