package synchro

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// This file reads PostgreSQL's text form of an array ("{1,2}",
// `{"a b",NULL}`, "{{1,2},{3,4}}"), the form of an array column's constant
// default as the catalog prints it and as the schema contract gives it to
// devices: push accepts the text from devices that made rows with such a
// default (convertArrayText). It assumes elements are separated by commas
// (every built-in type but box): only the array texts of dates, times and
// timestamps are read into elements here; the others are left to
// PostgreSQL, which knows each type's delimiter.

// pgArray is an array read from PostgreSQL's text: its items, and whether
// the text gave dimension bounds ("[0:1]={1,2}"), which JSON cannot carry.
type pgArray struct {
	items  []pgArrayItem
	bounds bool
}

// pgArrayItem is an element of an array (its text, or null) or, for an
// array of more dimensions, a sub-array (its items).
type pgArrayItem struct {
	sub   []pgArrayItem
	isSub bool
	text  string
	null  bool
}

// parsePGArray reads s as array_in does, for arrays whose elements are
// separated by commas (every type synchro syncs): optional dimension
// bounds followed by "=", then braces around elements separated by commas
// and sub-arrays, each sub-array of a dimension as long as the others, at
// most maxArrayDims deep; elements in double quotes or bare, a backslash
// taking the next character as it is, whitespace around elements ignored,
// and a bare NULL (in any case, without backslashes) the null element.
// The bounds are not checked against the braces: PostgreSQL does that.
// The error says what is wrong, for a message.
func parsePGArray(s string) (pgArray, error) {
	p := pgArrayParser{s: s}
	var out pgArray
	p.skipSpace()
	if p.peek() == '[' {
		eq := strings.IndexByte(s[p.i:], '=')
		if eq < 0 || strings.Trim(s[p.i:p.i+eq], "[]:+-0123456789 \t\n\r\v\f") != "" {
			return out, errors.New(`malformed dimension bounds (want, for example, "[0:1]=")`)
		}
		out.bounds = true
		p.i += eq + 1
		p.skipSpace()
	}
	if p.peek() != '{' {
		return out, errors.New(`it does not start with "{"`)
	}
	items, _, err := p.array(1)
	if err != nil {
		return out, err
	}
	p.skipSpace()
	if p.i != len(s) {
		return out, errors.New(`text follows the closing "}"`)
	}
	out.items = items
	return out, nil
}

// pgArrayParser is the state of parsePGArray: the text and the position
// in it.
type pgArrayParser struct {
	s string
	i int
}

// peek returns the byte at the position, 0 at the end of the text.
func (p *pgArrayParser) peek() byte {
	if p.i < len(p.s) {
		return p.s[p.i]
	}
	return 0
}

// isArraySpace reports whether array_in skips c as whitespace.
func isArraySpace(c byte) bool {
	switch c {
	case ' ', '\t', '\n', '\r', '\v', '\f':
		return true
	}
	return false
}

func (p *pgArrayParser) skipSpace() {
	for p.i < len(p.s) && isArraySpace(p.s[p.i]) {
		p.i++
	}
}

// array reads the braces at the position, depth dimensions deep, and
// returns their items and their shape (their length, then their
// sub-arrays'). An empty array is only valid at the top, as PostgreSQL
// has it.
func (p *pgArrayParser) array(depth int) ([]pgArrayItem, []int, error) {
	if depth > maxArrayDims {
		return nil, nil, fmt.Errorf("more than %d dimensions", maxArrayDims)
	}
	p.i++ // the "{"
	p.skipSpace()
	if p.peek() == '}' {
		p.i++
		if depth > 1 {
			return nil, nil, errors.New("an empty sub-array")
		}
		return nil, []int{0}, nil
	}
	nested := p.peek() == '{'
	var (
		items []pgArrayItem
		shape []int
	)
	for {
		p.skipSpace()
		switch {
		case p.peek() == '{' && nested:
			sub, subShape, err := p.array(depth + 1)
			if err != nil {
				return nil, nil, err
			}
			if shape == nil {
				shape = append([]int{0}, subShape...)
			} else if !slices.Equal(subShape, shape[1:]) {
				return nil, nil, errors.New("sub-arrays of different lengths")
			}
			items = append(items, pgArrayItem{sub: sub, isSub: true})
		case p.peek() == '{' || nested:
			return nil, nil, errors.New("elements and sub-arrays mixed in one dimension")
		default:
			it, err := p.element()
			if err != nil {
				return nil, nil, err
			}
			items = append(items, it)
		}
		p.skipSpace()
		switch p.peek() {
		case ',':
			p.i++
		case '}':
			p.i++
			if shape == nil {
				shape = []int{0}
			}
			shape[0] = len(items)
			return items, shape, nil
		case 0:
			return nil, nil, errors.New(`a missing "}"`)
		default:
			return nil, nil, fmt.Errorf("an unexpected %q after an element", p.s[p.i])
		}
	}
}

// element reads one element at the position, quoted or bare.
func (p *pgArrayParser) element() (pgArrayItem, error) {
	var b strings.Builder
	if p.peek() == '"' {
		for p.i++; p.i < len(p.s); p.i++ {
			switch c := p.s[p.i]; c {
			case '"':
				p.i++
				return pgArrayItem{text: b.String()}, nil
			case '\\':
				p.i++
				if p.i == len(p.s) {
					return pgArrayItem{}, errors.New("a backslash at the end")
				}
				b.WriteByte(p.s[p.i])
			default:
				b.WriteByte(c)
			}
		}
		return pgArrayItem{}, errors.New("an unterminated quoted element")
	}
	// A bare element ends before a comma or "}"; whitespace at its end is
	// dropped unless escaped.
	kept, escaped := 0, false
	for ; p.i < len(p.s); p.i++ {
		c := p.s[p.i]
		switch {
		case c == ',' || c == '}':
			text := b.String()[:kept]
			if text == "" && !escaped {
				return pgArrayItem{}, errors.New("an empty element")
			}
			return pgArrayItem{text: text, null: !escaped && strings.EqualFold(text, "NULL")}, nil
		case c == '{' || c == '"':
			return pgArrayItem{}, fmt.Errorf("an unexpected %q in an element", c)
		case c == '\\':
			p.i++
			if p.i == len(p.s) {
				return pgArrayItem{}, errors.New("a backslash at the end")
			}
			b.WriteByte(p.s[p.i])
			kept, escaped = b.Len(), true
		case isArraySpace(c):
			b.WriteByte(c)
		default:
			b.WriteByte(c)
			kept = b.Len()
		}
	}
	return pgArrayItem{}, errors.New(`a missing "}"`)
}

// pgArrayJSON returns the JSON text of the array whose PostgreSQL text is
// text, for a column that takes spec: '[]' for '{}', '[1,2]' for '{1,2}';
// false when JSON cannot express it (bounds, an element of no JSON form)
// or the column would refuse it. An array column's default given as its
// text is then also recognised in the JSON forms a device may push it in
// (isColumnDefault).
func pgArrayJSON(spec valueSpec, text string) (string, bool) {
	arr, err := parsePGArray(text)
	if err != nil || arr.bounds {
		return "", false
	}
	out, ok := appendArrayJSON(nil, spec, arr.items)
	if !ok {
		return "", false
	}
	if _, err := convertValue(spec, out); err != nil {
		return "", false
	}
	return string(out), true
}

// appendArrayJSON appends items to dst as a JSON array of their texts as
// elements of kind (appendElementJSON); false when one has no JSON form.
func appendArrayJSON(dst []byte, spec valueSpec, items []pgArrayItem) ([]byte, bool) {
	dst = append(dst, '[')
	for i, it := range items {
		if i > 0 {
			dst = append(dst, ',')
		}
		var ok bool
		switch {
		case it.isSub:
			dst, ok = appendArrayJSON(dst, spec, it.sub)
		case it.null:
			dst, ok = append(dst, "null"...), true
		default:
			dst, ok = appendElementJSON(dst, spec.kind, it.text)
		}
		if !ok {
			return nil, false
		}
	}
	return append(dst, ']'), true
}

// appendElementJSON appends the JSON of an element of kind given as the
// text PostgreSQL writes it in.
func appendElementJSON(dst []byte, kind valueKind, text string) ([]byte, bool) {
	switch kind {
	case valueInt2, valueInt4, valueInt8, valueFloat4, valueFloat8, valueNumeric:
		if _, ok := parseJSONNumber([]byte(text)); ok {
			return append(dst, text...), true
		}
		switch text {
		case "NaN", "Infinity", "-Infinity":
			return appendJSONString(dst, text), true
		}
		return nil, false
	case valueBool:
		switch text {
		case "t", "true":
			return append(dst, "true"...), true
		case "f", "false":
			return append(dst, "false"...), true
		}
		return nil, false
	case valueJSON:
		var buf bytes.Buffer
		if err := json.Compact(&buf, []byte(text)); err != nil || buf.Len() == 0 || buf.Bytes()[0] == '[' {
			return nil, false
		}
		return append(dst, buf.Bytes()...), true
	}
	return appendJSONString(dst, text), true
}

// appendJSONString appends s as a JSON string, without the escapes
// encoding/json adds for HTML (the text goes into SQLite, not a page).
func appendJSONString(dst []byte, s string) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a string always encodes
	return append(dst, bytes.TrimSuffix(buf.Bytes(), []byte("\n"))...)
}
