package synchrohttp

import (
	"errors"
	"time"

	"github.com/synchrosync/synchro/internal/textscan"
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
	p := textscan.Scanner{S: s, OK: true}
	year := p.Digits(4)
	p.Expect('-')
	month := p.Digits(2)
	p.Expect('-')
	day := p.Digits(2)
	if p.OK && p.I < len(s) && (s[p.I] == 'T' || s[p.I] == 't' || s[p.I] == ' ') {
		p.I++
	} else {
		p.OK = false
	}
	hour := p.Digits(2)
	p.Expect(':')
	minute := p.Digits(2)
	p.Expect(':')
	second := p.Digits(2)
	nsec := 0
	if p.OK && p.I < len(s) && s[p.I] == '.' {
		p.I++
		start := p.I
		for scale := 100_000_000; p.I < len(s) && textscan.IsDigit(s[p.I]); p.I++ {
			nsec += int(s[p.I]-'0') * scale
			scale /= 10
		}
		if p.I == start {
			p.OK = false
		}
	}
	offset := 0 // seconds east of UTC
	if p.OK && p.I < len(s) {
		switch s[p.I] {
		case 'Z', 'z':
			p.I++
		case '+', '-':
			sign := 1
			if s[p.I] == '-' {
				sign = -1
			}
			p.I++
			oh := p.Digits(2)
			p.Expect(':')
			om := p.Digits(2)
			if oh > 23 || om > 59 {
				p.OK = false
			}
			offset = sign * (oh*3600 + om*60)
		default:
			p.OK = false
		}
	}
	if !p.OK || p.I != len(s) ||
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
