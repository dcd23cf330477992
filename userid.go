package synchro

import (
	"strconv"
	"strings"
)

// This file gives the caller's user id the text form PostgreSQL gives the
// owner columns, so that an id the auth layer spells differently (an
// upper-case UUID) still names the same owner.

// ownerForm is how user ids are spelled for the registry's owner columns.
type ownerForm int

const (
	// ownerFormAsIs keeps the id as the auth layer returned it: text owner
	// columns, owner columns of several types, or no owner column.
	ownerFormAsIs ownerForm = iota
	// ownerFormUUID spells the id as PostgreSQL prints a uuid: lower case,
	// with dashes (8-4-4-4-12).
	ownerFormUUID
	// ownerFormInteger spells the id as PostgreSQL prints an integer: no
	// sign for positive values, no leading zeros.
	ownerFormInteger
)

// ownerFormOf returns the form of the owner columns of the registered
// tables: uuid or integer when every owner column has that type, else as is.
func ownerFormOf(info map[string]*tableInfo) ownerForm {
	forms := ownerForms(info)
	if len(forms) == 1 {
		for f := range forms {
			return f
		}
	}
	return ownerFormAsIs
}

// ownerForms returns the forms of the owner columns of the registered
// tables.
func ownerForms(info map[string]*tableInfo) map[ownerForm]bool {
	forms := map[ownerForm]bool{}
	for _, t := range info {
		if col := t.column(t.cfg.OwnerColumn); t.cfg.OwnerColumn != "" && col != nil {
			forms[formOfColumn(col)] = true
		}
	}
	return forms
}

// formOfColumn returns the form PostgreSQL prints values of col in, as far
// as canonical knows it, by its type after looking through domains (a
// domain over uuid prints as uuid); nil (no such column) is ownerFormAsIs.
func formOfColumn(col *columnInfo) ownerForm {
	if col == nil || col.base.schema != "pg_catalog" {
		return ownerFormAsIs
	}
	switch col.base.name {
	case "uuid":
		return ownerFormUUID
	case "int2", "int4", "int8":
		return ownerFormInteger
	}
	return ownerFormAsIs
}

// ownerForm returns the form of the owner column that decides who owns the
// rows of t: its own OwnerColumn, or that of the nearest ancestor that has
// one (the root of its parent chain).
func (m *manifest) ownerForm(t *tableInfo) ownerForm {
	if t.cfg.OwnerColumn != "" {
		return formOfColumn(t.column(t.cfg.OwnerColumn))
	}
	if chain, err := t.chain.upTo(ownerRoot); err == nil {
		if a := m.table(chain.root().TableName); a != nil {
			return formOfColumn(a.column(a.cfg.OwnerColumn))
		}
	}
	return ownerFormAsIs
}

// mixedOwnerTypes reports whether the owner columns of the registered
// tables have types of different text forms (such as uuid and text): user
// ids are then used as the auth layer returns them.
func mixedOwnerTypes(info map[string]*tableInfo) bool {
	return len(ownerForms(info)) > 1
}

// canonical returns id in form f. An id that is not a valid value of the
// owner type is returned unchanged: it owns nothing either way.
func (f ownerForm) canonical(id string) string {
	switch f {
	case ownerFormUUID:
		if u, ok := canonicalUUID(id); ok {
			return u
		}
	case ownerFormInteger:
		s := strings.TrimSpace(id)
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			return strconv.FormatInt(n, 10)
		}
	}
	return id
}

// canonicalUUID reads a UUID as PostgreSQL's uuid input does (any case,
// optional braces, dashes between groups of four digits or none) and
// returns its lower-case, dashed form.
func canonicalUUID(s string) (string, bool) {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "{") && strings.HasSuffix(s, "}") {
		s = s[1 : len(s)-1]
	}
	var hex [32]byte
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '-':
			// PostgreSQL accepts a dash after any group of four digits.
			if n == 0 || n%4 != 0 || i+1 == len(s) || s[i+1] == '-' {
				return "", false
			}
			continue
		case '0' <= c && c <= '9', 'a' <= c && c <= 'f':
		case 'A' <= c && c <= 'F':
			c += 'a' - 'A'
		default:
			return "", false
		}
		if n == len(hex) {
			return "", false
		}
		hex[n] = c
		n++
	}
	if n != len(hex) {
		return "", false
	}
	h := string(hex[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32], true
}
