// Package bucket is the vocabulary of bucket ids that the engine (package
// synchro) and the change capture (package wal) share and must agree on:
// the ids and prefixes with a meaning of their own, how a column value
// becomes the text of a bucket id or of a record key ([Text]), the two ways
// of tidying a list of ids ([Normalize], [Dedupe]), what a rule may give
// as an id ([CheckID], [CheckStorable]), and the old row of a
// change, carried through a context to the bucket rules ([WithOldRow]).
package bucket

import (
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"
)

// Bucket ids and prefixes with a meaning of their own.
const (
	// UserPrefix starts the personal bucket of a user, "user:<id>" (see
	// [User]). It is also the default TableConfig.BucketPrefix.
	UserPrefix = "user:"

	// Global is the bucket every client follows for rows readable by all.
	Global = "global"

	// ReservedPrefix starts the bucket ids the library keeps for itself;
	// a subscription rule may not return one.
	ReservedPrefix = "synchro:"

	// ClientPrefix starts the private bucket of one client (see [Client]).
	ClientPrefix = ReservedPrefix + "client:"

	// BoundaryMarker is the bucket of the marker changelog row written
	// when the compaction boundary is raised after a lost slot. No client
	// follows it.
	BoundaryMarker = ReservedPrefix + "boundary"
)

// MaxIDLen is the length, in bytes, of the longest bucket id a
// subscription rule may give.
const MaxIDLen = 1024

// CheckID returns why id, given by a subscription rule, cannot be a
// bucket id, or nil: it must pass [CheckStorable] and be at most MaxIDLen
// bytes long. The empty id is left to the caller.
func CheckID(id string) error {
	if err := CheckStorable(id); err != nil {
		return err
	}
	if len(id) > MaxIDLen {
		return fmt.Errorf("bucket id %s is %d bytes long, at most %d are allowed", QuoteID(id), len(id), MaxIDLen)
	}
	return nil
}

// CheckStorable returns why id, given by a rule (a subscription rule, or a
// bucket assigner of change capture), cannot be a bucket id whatever its
// length, or nil: it must be text PostgreSQL can store (valid UTF-8
// without NUL bytes) and must not start with ReservedPrefix. The empty id
// is left to the caller (a subscription rule may not give it; an
// assigner's means no bucket).
func CheckStorable(id string) error {
	switch {
	case !utf8.ValidString(id):
		return fmt.Errorf("bucket id %s is not valid UTF-8", QuoteID(id))
	case strings.IndexByte(id, 0) >= 0:
		return fmt.Errorf("bucket id %s holds a NUL byte", QuoteID(id))
	case strings.HasPrefix(id, ReservedPrefix):
		return fmt.Errorf("bucket id %s is reserved (the prefix %q is the library's)", QuoteID(id), ReservedPrefix)
	}
	return nil
}

// QuoteID quotes an id for an error message, escaping what is not
// printable, and cut to 32 bytes.
func QuoteID(id string) string {
	if len(id) > 32 {
		return fmt.Sprintf("%q...", id[:32])
	}
	return fmt.Sprintf("%q", id)
}

// User returns the personal bucket of a user: every client of the user
// follows it, and push accepts writes only to records in it.
func User(userID string) string { return UserPrefix + userID }

// Client returns the private bucket of one client, given its row id (the
// id column of synchro.clients): the changelog rows that bring it the rows
// of a bucket it gained, or remove those of a bucket it lost. Only that
// client follows it.
func Client(rowID string) string { return ClientPrefix + rowID }

// Normalize returns ids sorted, without duplicates and without empty ids,
// in a new slice (nil for nil): the form in which a client's subscriptions
// and a record's buckets are stored and compared.
func Normalize(ids []string) []string {
	out := slices.DeleteFunc(slices.Clone(ids), func(s string) bool { return s == "" })
	slices.Sort(out)
	return slices.Compact(out)
}

// Dedupe returns ids without empty and repeated ids, keeping the first
// occurrence of each where it was, in a new slice; never nil. Unlike
// [Normalize] it keeps the order, for answers whose order means something
// (a resolver's buckets, in the order of its rules).
func Dedupe(ids []string) []string {
	out := make([]string, 0, len(ids))
	seen := make(map[string]struct{}, len(ids))
	for _, id := range ids {
		if _, dup := seen[id]; id == "" || dup {
			continue
		}
		seen[id] = struct{}{}
		out = append(out, id)
	}
	return out
}
