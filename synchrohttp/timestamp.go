package synchrohttp

import (
	"errors"
	"time"
)

// This file reads the timestamps of pushed records.

// errTimestamp is the error of parseTimestamp; the caller names the field.
var errTimestamp = errors.New("not a timestamp: want RFC 3339 (2006-01-02T15:04:05.000Z) " +
	"or UTC without a zone (2006-01-02 15:04:05.000 or 2006-01-02T15:04:05.000)")

// parseTimestamp reads the timestamp text devices send:
//
//   - RFC 3339, with or without fractional seconds:
//     2006-01-02T15:04:05Z, 2006-01-02T15:04:05.123+02:00;
//   - SQLite's datetime text, read as UTC: 2006-01-02 15:04:05[.123];
//   - the same with a "T" and no zone, read as UTC: 2006-01-02T15:04:05[.123].
//
// The date and time separator may be "T", "t" or a space, and the zone "Z",
// "z" or ±hh:mm, with or without a zone in each case; a missing zone means
// UTC. The fraction has at least one digit; digits beyond nanoseconds are
// dropped. The fields must name a real instant: month 01-12, a day the
// month has, hour 00-23, minute and second 00-59 (no leap second), zone
// offset below 24:00, and the instant in UTC within years 0000-9999. The
// result is in UTC.
func parseTimestamp(s string) (time.Time, error) {
	p := tsParser{s: s, ok: true}
	year := p.digits(4)
	p.expect('-')
	month := p.digits(2)
	p.expect('-')
	day := p.digits(2)
	if p.ok && p.i < len(s) && (s[p.i] == 'T' || s[p.i] == 't' || s[p.i] == ' ') {
		p.i++
	} else {
		p.ok = false
	}
	hour := p.digits(2)
	p.expect(':')
	minute := p.digits(2)
	p.expect(':')
	second := p.digits(2)
	nsec := 0
	if p.ok && p.i < len(s) && s[p.i] == '.' {
		p.i++
		start := p.i
		for scale := 100_000_000; p.i < len(s) && isDigit(s[p.i]); p.i++ {
			nsec += int(s[p.i]-'0') * scale
			scale /= 10
		}
		if p.i == start {
			p.ok = false
		}
	}
	offset := 0 // seconds east of UTC
	if p.ok && p.i < len(s) {
		switch s[p.i] {
		case 'Z', 'z':
			p.i++
		case '+', '-':
			sign := 1
			if s[p.i] == '-' {
				sign = -1
			}
			p.i++
			oh := p.digits(2)
			p.expect(':')
			om := p.digits(2)
			if oh > 23 || om > 59 {
				p.ok = false
			}
			offset = sign * (oh*3600 + om*60)
		default:
			p.ok = false
		}
	}
	if !p.ok || p.i != len(s) ||
		month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || second > 59 {
		return time.Time{}, errTimestamp
	}
	t := time.Date(year, time.Month(month), day, hour, minute, second, nsec, time.UTC)
	if t.Day() != day { // time.Date normalised a day the month lacks
		return time.Time{}, errTimestamp
	}
	t = t.Add(-time.Duration(offset) * time.Second)
	if y := t.Year(); y < 0 || y > 9999 { // beyond what RFC 3339 can write
		return time.Time{}, errTimestamp
	}
	return t, nil
}

// tsParser reads fixed-width fields from the start of s; ok turns false at
// the first mismatch and stays false.
type tsParser struct {
	s  string
	i  int
	ok bool
}

// digits reads n decimal digits.
func (p *tsParser) digits(n int) int {
	if !p.ok || p.i+n > len(p.s) {
		p.ok = false
		return 0
	}
	v := 0
	for _, c := range []byte(p.s[p.i : p.i+n]) {
		if !isDigit(c) {
			p.ok = false
			return 0
		}
		v = v*10 + int(c-'0')
	}
	p.i += n
	return v
}

// expect reads the byte c.
func (p *tsParser) expect(c byte) {
	if !p.ok || p.i >= len(p.s) || p.s[p.i] != c {
		p.ok = false
		return
	}
	p.i++
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }
