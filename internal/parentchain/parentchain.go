// Package parentchain hands package wal the parent chains of a
// synchro.Registry.
//
// The root package builds a chain for every registered table when it
// validates the registry (chain.go), and its read filter, RLS policies and
// ownership resolver read them. The chains are not part of its documented
// API, and wal may use only that API, so the root package sets Ancestors
// here when it is initialised: the consumer then orders its backfill by the
// same chains instead of following ParentTable itself. wal imports synchro,
// so Ancestors is set before any code of wal runs.
package parentchain

// Ancestors returns the names of the tables above table in registry (a
// *synchro.Registry) through ParentTable, the parent first, as far as the
// chain can be followed; none for an unregistered table.
var Ancestors func(registry any, table string) []string
