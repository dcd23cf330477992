// Package pgident checks and quotes PostgreSQL identifiers.
//
// Every table, column and function name the library puts into SQL text goes
// through this package: names are validated once (at registration) and always
// quoted, so they are used exactly as written, case included.
package pgident

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
)

// MaxLen is the longest identifier PostgreSQL keeps (NAMEDATALEN - 1 bytes);
// longer names are silently truncated by the server, so they are refused here.
const MaxLen = 63

// Check reports whether s can be used as one quoted identifier: non-empty,
// valid UTF-8, at most MaxLen bytes, without control characters and without
// leading or trailing white space (almost always a typing mistake).
func Check(s string) error {
	switch {
	case s == "":
		return errors.New("empty name")
	case len(s) > MaxLen:
		return fmt.Errorf("name %q is longer than %d bytes", s, MaxLen)
	case !utf8.ValidString(s):
		return fmt.Errorf("name %q is not valid UTF-8", s)
	case strings.TrimSpace(s) != s:
		return fmt.Errorf("name %q has leading or trailing white space", s)
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("name %q contains a control character", s)
		}
	}
	return nil
}

// Split splits a possibly schema-qualified name "schema.name" into its parts
// and checks each one. A name without a dot has an empty schema. Names with
// more than one dot are refused.
func Split(qualified string) (schema, name string, err error) {
	parts := strings.Split(qualified, ".")
	switch len(parts) {
	case 1:
		name = parts[0]
	case 2:
		schema, name = parts[0], parts[1]
		if err := Check(schema); err != nil {
			return "", "", fmt.Errorf("schema part of %q: %w", qualified, err)
		}
	default:
		return "", "", fmt.Errorf("name %q has more than one dot (want name or schema.name)", qualified)
	}
	if err := Check(name); err != nil {
		return "", "", err
	}
	return schema, name, nil
}

// CheckQualified reports whether s is a valid "name" or "schema.name".
func CheckQualified(s string) error {
	_, _, err := Split(s)
	return err
}

// Quote returns s quoted as one identifier.
func Quote(s string) string {
	return pgx.Identifier{s}.Sanitize()
}

// QuoteQualified quotes a possibly schema-qualified name "schema.name" as
// "schema"."name". It does not validate; call CheckQualified first.
func QuoteQualified(qualified string) string {
	if schema, name, ok := strings.Cut(qualified, "."); ok {
		return pgx.Identifier{schema, name}.Sanitize()
	}
	return pgx.Identifier{qualified}.Sanitize()
}

// QuoteLiteral returns s as an SQL string literal (standard_conforming_strings
// on, as every supported server has by default), for the few places where a
// value cannot be a parameter: utility commands and replication options.
func QuoteLiteral(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}
