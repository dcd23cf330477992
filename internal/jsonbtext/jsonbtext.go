// Package jsonbtext tells whether PostgreSQL's jsonb input surely takes a
// JSON text.
//
// PostgreSQL's json type checks only JSON's grammar, so a json column (or
// a client) can hold text that jsonb refuses: a \u0000 escape, a lone
// surrogate escape, a number beyond numeric's range, an escape of a
// character the server's encoding lacks, nesting past the server's stack,
// or containers with more elements than jsonb's parser can hold. Judge
// reads a text and answers Surely only where jsonb takes it whatever the
// server's settings (within their defaults); where it cannot tell, it
// answers Unsure, and the caller keeps the text some other way.
package jsonbtext

// Verdict is Judge's answer.
type Verdict int8

const (
	// Unsure: jsonb may refuse the text.
	Unsure Verdict = iota
	// IfUTF8: jsonb takes the text in a database whose encoding is UTF8;
	// it holds an escape of a character above U+007F, which another
	// encoding may lack.
	IfUTF8
	// Surely: jsonb takes the text.
	Surely
)

// Bounds within which jsonb surely takes a number: numeric_in refuses a
// value whose weight or display scale overflows its 16-bit fields (about
// 131,000 digits before the point, 16,383 after it). A token of at most
// maxNumberLen bytes with an exponent of at most maxExponent in magnitude
// stays far inside both.
const (
	maxNumberLen = 1000
	maxExponent  = 10000
)

// MaxDepth bounds the nesting Judge lets jsonb parse. PostgreSQL's parser
// recurses per level and stops at max_stack_depth; a thousand levels are
// far inside its default.
const MaxDepth = 1000

// MaxLen is the longest text Judge lets jsonb parse: jsonb's parser keeps
// a container's elements in an array that doubles as it fills, and fails
// (XX000, an allocation past 1 GB) past about 16.7 million elements in one
// array or 8.4 million keys in one object, some 33 MB of text.
const MaxLen = 16 << 20

// Judge says whether jsonb surely takes p, a valid JSON text.
func Judge(p []byte) Verdict {
	if len(p) == 0 || len(p) > MaxLen {
		return Unsure
	}
	verdict := Surely
	depth := 0
	for i := 0; i < len(p); {
		switch c := p[i]; {
		case c == '"':
			end, v := judgeString(p, i+1)
			if v == Unsure {
				return Unsure
			}
			verdict = min(verdict, v)
			i = end
		case c == '-' || (c >= '0' && c <= '9'):
			end, ok := judgeNumber(p, i)
			if !ok {
				return Unsure
			}
			i = end
		case c == '{' || c == '[':
			if depth++; depth > MaxDepth {
				return Unsure
			}
			i++
		case c == '}' || c == ']':
			depth--
			i++
		default: // , : whitespace, true, false, null
			i++
		}
	}
	return verdict
}

// judgeString reads the string whose text starts at p[i] (after its
// opening quote) and returns the index after its closing quote with the
// verdict for its escapes: jsonb refuses \u0000 and a surrogate escape
// that is not a high one followed by a low one, and, in a database whose
// encoding is not UTF8, an escape of a character that encoding may lack
// (any above U+007F). Raw characters came from the database's own text,
// so its encoding has them.
func judgeString(p []byte, i int) (int, Verdict) {
	verdict := Surely
	for i < len(p) {
		switch p[i] {
		case '"':
			return i + 1, verdict
		case '\\':
			if i+1 < len(p) && p[i+1] == 'u' {
				r, ok := hex4(p, i+2)
				switch {
				case !ok || r == 0:
					return len(p), Unsure
				case r >= 0xDC00 && r <= 0xDFFF:
					return len(p), Unsure
				case r >= 0xD800 && r <= 0xDBFF:
					if i+11 < len(p) && p[i+6] == '\\' && p[i+7] == 'u' {
						if lo, ok := hex4(p, i+8); ok && lo >= 0xDC00 && lo <= 0xDFFF {
							verdict = IfUTF8
							i += 12
							continue
						}
					}
					return len(p), Unsure
				case r > 0x7F:
					verdict = IfUTF8
				}
				i += 6
				continue
			}
			i += 2
		default:
			i++
		}
	}
	return len(p), Unsure // unterminated: not JSON after all
}

// hex4 reads the four hex digits at p[i:i+4].
func hex4(p []byte, i int) (rune, bool) {
	if i+4 > len(p) {
		return 0, false
	}
	var r rune
	for _, c := range p[i : i+4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}

// judgeNumber reads the number token at p[i] and returns the index after
// it, and whether jsonb surely takes it (see maxNumberLen).
func judgeNumber(p []byte, i int) (int, bool) {
	start := i
	for i < len(p) && (p[i] == '-' || p[i] == '+' || p[i] == '.' || p[i] == 'e' || p[i] == 'E' || (p[i] >= '0' && p[i] <= '9')) {
		i++
	}
	tok := p[start:i]
	if len(tok) > maxNumberLen {
		return i, false
	}
	e := 0
	for e < len(tok) && tok[e] != 'e' && tok[e] != 'E' {
		e++
	}
	if e == len(tok) {
		return i, true
	}
	exp := 0
	for _, c := range tok[e+1:] {
		if c < '0' || c > '9' {
			continue // the exponent's sign
		}
		if exp = exp*10 + int(c-'0'); exp > maxExponent {
			return i, false
		}
	}
	return i, true
}
