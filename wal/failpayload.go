package wal

// This file decides how a rule failure's payload goes into
// synchro.rule_failures.payload (jsonb) without a savepoint.
//
// The payload is the row as JSON. PostgreSQL's json type checks only the
// grammar, so a json column can hold text that jsonb refuses: a \u0000
// escape, a lone surrogate escape, a number beyond numeric's range, an
// escape of a character the server's encoding lacks. A refused payload
// used to be caught by a savepoint per failure; past 64 of them in one
// transaction (a broken rule meeting a bulk update, or a first start's
// record of a large table) the transaction's subtransactions overflow
// PostgreSQL's per-backend cache, and every snapshot taken on the server
// costs more until it commits. Instead, judgePayload reads the text and
// keeps it as jsonb only where jsonb surely takes it; any other payload
// is kept as a JSON string of its text (to_jsonb of text, which takes
// any text), so nothing of it is lost and nothing can fail the statement.

// How a payload is written (the verdicts of judgePayload and the codes
// of store.InsertRuleFailures).
const (
	payloadNone     int16 = 0 // no payload: NULL
	payloadAsString int16 = 1 // a JSON string of the text
	payloadIfUTF8   int16 = 2 // as jsonb when the server's encoding is UTF8, else as a string
	payloadAsJSONB  int16 = 3 // as jsonb
)

// Bounds within which jsonb surely takes a number: numeric_in refuses a
// value whose weight or display scale overflows its 16-bit fields (about
// 131,000 digits before the point, 16,383 after it). A token of at most
// maxPayloadNumberLen bytes with an exponent of at most maxPayloadExponent
// in magnitude stays far inside both.
const (
	maxPayloadNumberLen = 1000
	maxPayloadExponent  = 10000
)

// maxPayloadDepth bounds the nesting judgePayload lets jsonb parse: deeper
// text is kept as a string, which jsonb does not parse. PostgreSQL's
// parser recurses per level and stops at max_stack_depth; a thousand
// levels are far inside its default.
const maxPayloadDepth = 1000

// maxPayloadParsed is the largest payload judgePayload lets jsonb parse:
// jsonb's parser keeps a container's elements in an array that doubles as
// it fills, and fails (XX000, an allocation past 1 GB) past about 16.7
// million elements in one array or 8.4 million keys in one object, some
// 33 MB of text. Larger payloads are kept as strings, which jsonb does not
// parse.
const maxPayloadParsed = 16 << 20

// maxPayloadLen is the largest payload kept at all. A jsonb string, like a
// jsonb container, holds at most 2^28-1 bytes; a row that large is kept
// without its payload rather than failing capture.
const maxPayloadLen = 1 << 27

// judgePayload says how p, a JSON text (valid: encoding/json wrote it),
// goes into the payload column. It answers payloadAsJSONB or
// payloadIfUTF8 only when jsonb surely takes p; where it cannot tell,
// it answers payloadAsString.
func judgePayload(p []byte) int16 {
	switch {
	case len(p) == 0:
		return payloadNone
	case len(p) > maxPayloadLen:
		return payloadNone
	case len(p) > maxPayloadParsed:
		return payloadAsString
	}
	verdict := payloadAsJSONB
	depth := 0
	for i := 0; i < len(p); {
		switch c := p[i]; {
		case c == '"':
			end, v := judgeString(p, i+1)
			if v == payloadAsString {
				return payloadAsString
			}
			verdict = min(verdict, v)
			i = end
		case c == '-' || (c >= '0' && c <= '9'):
			end, ok := judgeNumber(p, i)
			if !ok {
				return payloadAsString
			}
			i = end
		case c == '{' || c == '[':
			if depth++; depth > maxPayloadDepth {
				return payloadAsString
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
func judgeString(p []byte, i int) (int, int16) {
	verdict := payloadAsJSONB
	for i < len(p) {
		switch p[i] {
		case '"':
			return i + 1, verdict
		case '\\':
			if i+1 < len(p) && p[i+1] == 'u' {
				r, ok := hex4(p, i+2)
				switch {
				case !ok || r == 0:
					return len(p), payloadAsString
				case r >= 0xDC00 && r <= 0xDFFF:
					return len(p), payloadAsString
				case r >= 0xD800 && r <= 0xDBFF:
					if i+11 < len(p) && p[i+6] == '\\' && p[i+7] == 'u' {
						if lo, ok := hex4(p, i+8); ok && lo >= 0xDC00 && lo <= 0xDFFF {
							verdict = payloadIfUTF8
							i += 12
							continue
						}
					}
					return len(p), payloadAsString
				case r > 0x7F:
					verdict = payloadIfUTF8
				}
				i += 6
				continue
			}
			i += 2
		default:
			i++
		}
	}
	return len(p), payloadAsString // unterminated: not JSON after all
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
// it, and whether jsonb surely takes it (see maxPayloadNumberLen).
func judgeNumber(p []byte, i int) (int, bool) {
	start := i
	for i < len(p) && (p[i] == '-' || p[i] == '+' || p[i] == '.' || p[i] == 'e' || p[i] == 'E' || (p[i] >= '0' && p[i] <= '9')) {
		i++
	}
	tok := p[start:i]
	if len(tok) > maxPayloadNumberLen {
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
		if exp = exp*10 + int(c-'0'); exp > maxPayloadExponent {
			return i, false
		}
	}
	return i, true
}
