// Package sqlitecheck holds the tests that need a real SQLite, the
// database of a device: they evaluate in SQLite what the schema contract
// gives devices (a column's sqlite_default_sql) the way the SDKs do.
//
// It is a module of its own (go.mod here, with a replace directive to the
// repository root), so that the SQLite driver (modernc.org/sqlite, large)
// stays out of synchro's go.mod and out of the module graph of every
// application that imports synchro. It has no code besides its tests; make
// test runs them.
package sqlitecheck
