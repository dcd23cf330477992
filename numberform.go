package synchro

import "bytes"

// This file holds the form of the numbers in the rows the engine delivers
// (pull, snapshot, a conflict's server_version).
//
// PostgreSQL writes a float8 of 0.00001 as 1e-05 and one of 10^20 as
// 1e+20, and a numeric of scale 0 as its digits, however many. All are
// JSON numbers, but the Kotlin SDK decodes a number without a '.' as a
// Long: 1e-05, 1e+20 and an integer past 2^63 fail its decoder, and with
// it the whole page, which the SDK does not retry; the device could never
// get past that page. So a number the engine delivers has a '.' unless it
// is an integer that fits in 64 bits: 1e-05 is sent as 1.0e-05, 1e+20 as
// 1.0e+20, and 123456789012345678901234 as 123456789012345678901234.0, the
// same values; so are the elements of arrays of floats and numerics, and
// the numbers in arrays of types that are not built in (of a domain over a
// float, of a composite). The contents of json and jsonb columns are
// delivered as stored.

// appendWideNumber appends tok, a JSON number, in that form.
func appendWideNumber(b, tok []byte) []byte {
	if bytes.IndexByte(tok, '.') >= 0 {
		return append(b, tok...)
	}
	if e := bytes.IndexAny(tok, "eE"); e >= 0 {
		b = append(b, tok[:e]...)
		b = append(b, ".0"...)
		return append(b, tok[e:]...)
	}
	b = append(b, tok...)
	if !fitsInt64(tok) {
		b = append(b, ".0"...)
	}
	return b
}

// fitsInt64 reports whether tok, an integer in JSON's grammar (no leading
// zeros), is within int64's range.
func fitsInt64(tok []byte) bool {
	limit := "9223372036854775807"
	if len(tok) > 0 && tok[0] == '-' {
		tok, limit = tok[1:], "9223372036854775808"
	}
	switch {
	case len(tok) < len(limit):
		return true
	case len(tok) > len(limit):
		return false
	}
	return string(tok) <= limit
}

// widenNumbers returns obj, the JSON object of a row as PostgreSQL's
// row_to_json wrote it, with its members' numbers in the form above; obj
// itself when none needed it. Members that are objects, arrays or strings
// are left as they are, but for those whose keys (quoted, as in obj) are
// in arrays, whose numbers are all written so. obj that is not such an
// object is returned as it is.
func widenNumbers(obj []byte, arrays map[string]bool) []byte {
	var out []byte // nil until a number changes
	last := 0      // obj[:last] is in out
	key := -1      // where the last string began: a member's key before ':'
	for i := 0; i < len(obj); {
		c := obj[i]
		switch {
		case c == '"':
			key = i
			i = skipJSONString(obj, i)
			continue
		case c == '{' || c == '[':
			if i == 0 {
				i++ // the row's own object
				continue
			}
			end := skipJSONContainer(obj, i)
			if key >= 0 && arrays[string(memberKey(obj, key))] {
				if wide := appendWideNumbers(nil, obj[i:end]); len(wide) != end-i {
					out = append(out, obj[last:i]...)
					out = append(out, wide...)
					last = end
				}
			}
			i = end
		case c == '-' || (c >= '0' && c <= '9'):
			end := i
			for end < len(obj) && isNumberByte(obj[end]) {
				end++
			}
			tok := obj[i:end]
			if wide := appendWideNumber(nil, tok); len(wide) != len(tok) {
				out = append(out, obj[last:i]...)
				out = append(out, wide...)
				last = end
			}
			i = end
		default:
			i++
		}
	}
	if out == nil {
		return obj
	}
	return append(out, obj[last:]...)
}

func isNumberByte(c byte) bool {
	return (c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E'
}

// skipJSONString returns the index after the string that starts at
// obj[i] (its opening quote), or len(obj) when it does not end.
func skipJSONString(obj []byte, i int) int {
	for i++; i < len(obj); i++ {
		switch obj[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return len(obj)
}

// skipJSONContainer returns the index after the object or array that
// starts at obj[i], or len(obj) when it does not end.
func skipJSONContainer(obj []byte, i int) int {
	depth := 0
	for i < len(obj) {
		switch obj[i] {
		case '"':
			i = skipJSONString(obj, i)
			continue
		case '{', '[':
			depth++
		case '}', ']':
			if depth--; depth == 0 {
				return i + 1
			}
		}
		i++
	}
	return len(obj)
}

// appendWideNumbers appends text, JSON, with every number in it (outside
// strings) in the form above.
func appendWideNumbers(b, text []byte) []byte {
	last := 0
	for i := 0; i < len(text); {
		switch c := text[i]; {
		case c == '"':
			i = skipJSONString(text, i)
		case c == '-' || (c >= '0' && c <= '9'):
			end := i
			for end < len(text) && isNumberByte(text[end]) {
				end++
			}
			b = append(b, text[last:i]...)
			b = appendWideNumber(b, text[i:end])
			last, i = end, end
		default:
			i++
		}
	}
	return append(b, text[last:]...)
}

// memberKey returns the string that starts at obj[at], quotes included.
func memberKey(obj []byte, at int) []byte {
	return obj[at:skipJSONString(obj, at)]
}

// deepNumbers reports whether the values of c hold numbers that the
// delivered form rewrites inside them: arrays of floats or numerics, and
// arrays of types that are not built in (to_json writes an array of a
// domain over a float as an array of floats, of a composite as objects).
func deepNumbers(c columnInfo) bool {
	switch c.value.kind {
	case valueFloat4, valueFloat8, valueNumeric:
		return c.value.array
	case valueAny:
		return true
	}
	return false
}

// deliveredRow returns obj, a row of t as row_to_json wrote it, with its
// numbers in the delivered form (widenNumbers); a table none of whose
// columns can need it is not scanned.
func (t *tableInfo) deliveredRow(obj []byte) []byte {
	if !t.widens {
		return obj
	}
	return widenNumbers(obj, t.deepNumbers)
}
