package synchro

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/synchrosync/synchro/internal/pgident"
)

// authSettingName is the PostgreSQL setting that carries the authenticated
// user id into row level security policies.
const authSettingName = "app.user_id"

// Policy name prefixes. The relation name of the table follows the prefix.
const (
	policyPrefixRead   = "synchro_read_"
	policyPrefixInsert = "synchro_insert_"
	policyPrefixUpdate = "synchro_update_"
	policyPrefixDelete = "synchro_delete_"
)

// policyHashLen is the number of hexadecimal digits of the hash appended to a
// policy name that had to be shortened.
const policyHashLen = 8

// SetAuthContext sets app.user_id for the current transaction (set_config(..., true)).
//
// tx must be a transaction (a *sql.Tx, or a connection inside an explicit
// BEGIN): the setting is transaction-local and vanishes at commit or
// rollback, so on a bare pool it would only last for the one statement that
// sets it. The policies of [GenerateRLSPolicies] compare owner columns with
// this setting; an empty userID is refused, since it would read as "no user".
func SetAuthContext(ctx context.Context, tx DB, userID string) error {
	if tx == nil {
		return errors.New("synchro: setting auth context: nil DB")
	}
	if userID == "" {
		return errors.New("synchro: setting auth context: empty user id")
	}
	if _, err := tx.ExecContext(ctx, `SELECT set_config(`+pgident.QuoteLiteral(authSettingName)+`, $1, true)`, userID); err != nil {
		return fmt.Errorf("synchro: setting auth context: %w", err)
	}
	return nil
}

// setReadContext prepares a read transaction of the engine: the auth
// context of userID, as SetAuthContext, and no JIT compilation. The engine's
// reads are short index lookups whose cost PostgreSQL overestimates under
// row-level security or through a large table; above jit_above_cost it
// then spends more time compiling a statement (tens to hundreds of
// milliseconds, measured with cmd/synchro-load) than running it.
//
// settings are further SQL expressions run in the same statement, such as
// indexWalk.
func setReadContext(ctx context.Context, tx DB, userID string, settings ...string) error {
	if userID == "" {
		return errors.New("synchro: setting auth context: empty user id")
	}
	q := strings.Join(append([]string{readContextSQL}, settings...), ", ")
	if _, err := tx.ExecContext(ctx, q, userID); err != nil {
		return fmt.Errorf("synchro: setting auth context: %w", err)
	}
	return nil
}

// readContextSQL sets the auth context of a read transaction to $1, turns
// JIT off and reads bytea in hex (hexBytes); further settings may follow it
// in its select list.
const readContextSQL = `SELECT set_config('` + authSettingName + `', $1, true), ` + noJIT + `, ` + hexBytes

// hexBytes makes bytea values read as text take the hex form ("\x0102ff")
// for the rest of the transaction, whatever the server's or the role's
// bytea_output: the form a device receives is the one push reads back as
// bytes (with bytea_output=escape, "abcd" would also read as base64).
const hexBytes = `set_config('bytea_output', 'hex', true)`

// noJIT is the SQL expression that turns JIT compilation off for the rest
// of the transaction (see setReadContext).
const noJIT = `set_config('jit', 'off', true)`

// indexWalk is the SQL that rules sequential and bitmap scans out for the
// rest of the transaction (off makes them the last resort), so that a
// statement ordered by an index and limited walks the index and stops:
// every statement of a snapshot page reads by an index and stops after the
// page, and without statistics (a bulk import autovacuum has not analysed
// yet) PostgreSQL took a table of 22,000 rows for one row and scanned (or
// bitmap-scanned the key range) and sorted all of it for every page. A
// cached generic plan is built under the same settings, since only
// snapshot pages run these statements.
const indexWalk = `set_config('enable_seqscan', 'off', true), set_config('enable_bitmapscan', 'off', true)`

// GenerateRLSPolicies generates SQL statements to enable RLS and create policies for all registered tables based on registry configuration.
//
// Ownership comparisons use text equality instead of hard-coded UUID casts so integrations can use non-UUID user identifiers.
//
// # Applying the statements
//
// The function only builds SQL; it runs nothing. Each element is one
// statement. Run them, in order, as the owner of the tables (ALTER TABLE and
// CREATE POLICY need ownership), typically in the application's own
// migrations after the synchro migrations, preferably in one transaction:
//
//	for _, stmt := range synchro.GenerateRLSPolicies(reg) {
//		if _, err := tx.ExecContext(ctx, stmt); err != nil {
//			return err
//		}
//	}
//
// The statements can be applied any number of times: every table gets
// ALTER TABLE ... ENABLE ROW LEVEL SECURITY, and every one of its four
// policies is dropped if it exists (DROP POLICY IF EXISTS) before it is
// created again, so re-applying after a configuration change also removes
// policies that no longer apply. Policies are named synchro_read_<table>,
// synchro_insert_<table>, synchro_update_<table> and synchro_delete_<table>
// after the relation part of the table name; a name longer than 63 bytes is
// shortened and ends with a hash of the full table name. Tables come in
// registration order and the output depends only on the registry.
//
// # Roles
//
// FORCE ROW LEVEL SECURITY is not used: the tables' owner (usually the
// migration role) and superusers keep reading and writing every row, which is
// how the application maintains reference tables. RLS is a second wall
// behind the engine's own checks only when the engine connects as a role that
// is neither the tables' owner, nor a superuser, nor has BYPASSRLS; such a
// role sees nothing unless [SetAuthContext] ran in its transaction, which
// the engine does for push, pull and snapshot. The WAL consumer (package wal)
// and the compactor read every user's rows, so they need a role that bypasses
// RLS (BYPASSRLS, or the tables' owner).
//
// # Predicates
//
// The policies follow the bucketing rules of the registry, so that a user can
// read exactly the rows of the buckets "user:<id>" and "global" and write
// rows only where ownership resolves to them. The user is the setting
// app.user_id; "owner matches" below means
//
//	<owner>::text = NULLIF(current_setting('app.user_id', true), '')
//
// a text comparison, so user ids need not be UUIDs (an unset or empty
// setting matches nothing). A cast of a non-text owner column prevents a plain index
// on it from serving the policy; an expression index on (<owner>::text)
// does.
//
//   - A table whose bucketing column is its OwnerColumn (the default) reads
//     rows whose owner matches and, when AllowGlobalRead is set, rows whose
//     owner is NULL or empty (the "global" bucket).
//   - A child table (ParentTable, no OwnerColumn, no bucketing of its own)
//     reads through an EXISTS chain that joins each parent on its IDColumn =
//     the child's ParentFKCol, up to the first ancestor with an OwnerColumn or
//     a BucketByColumn, as the bucketing walk does. That root's owner must
//     match or, when the root's AllowGlobalRead is set, be NULL or empty.
//   - A table with neither OwnerColumn nor ParentTable, nor bucketing of its
//     own, is a reference table: everybody reads it (USING (true)) and no
//     write policy is created, so only its owner writes it.
//   - Write policies (INSERT WITH CHECK, UPDATE USING and WITH CHECK, DELETE
//     USING) exist only for pushable tables (PushPolicy owner_only) and never
//     include the global rows: an owned table requires the owner to match,
//     and if it also has a ParentTable, either a NULL parent key or a parent
//     whose chain resolves to the same user (nobody attaches rows to another
//     user's parent); a child table requires its chain to resolve to the
//     user, up to the first ancestor with an OwnerColumn.
//
// Limitation: rows bucketed by a BucketFunction, or by a BucketByColumn other
// than the OwnerColumn (on the table itself or on the root of its parent
// chain), cannot be expressed as a policy in general. Such a table gets no
// read policy, so roles subject to RLS read none of its rows (and cannot use
// INSERT ... RETURNING on it); the application must write its own read
// policy for it. The same holds when the application buckets through a
// global SQL bucket function, which the registry does not know about. Write
// policies are still generated from OwnerColumn and ParentTable.
//
// The parent tables queried by a chain are subject to their own policies,
// so a child row is visible only if its parents are.
//
// Call [Registry.Validate] first. A table whose configuration cannot be
// resolved (an unregistered or cyclic parent chain, a chain without an
// owner) still gets RLS enabled but only the policies that can be built,
// which denies rather than allows; a table whose name is not a valid
// "table" or "schema.table" is skipped. A nil registry gives no statements.
func GenerateRLSPolicies(registry *Registry) []string {
	if registry == nil {
		return nil
	}
	g := &rlsGenerator{reg: registry}
	var stmts []string
	for _, c := range registry.All() {
		stmts = append(stmts, g.tableStatements(c)...)
	}
	return stmts
}

// rlsGenerator builds the policies of one registry.
type rlsGenerator struct {
	reg *Registry
}

// tableStatements returns the statements for one table, or nil when the
// table name cannot be quoted.
func (g *rlsGenerator) tableStatements(c *TableConfig) []string {
	_, relation, err := pgident.Split(c.TableName)
	if err != nil {
		return nil
	}
	table := pgident.QuoteQualified(c.TableName)

	stmts := []string{"ALTER TABLE " + table + " ENABLE ROW LEVEL SECURITY"}
	policy := func(prefix, command, clauses string, ok bool) {
		name := pgident.Quote(policyName(prefix, relation, c.TableName))
		stmts = append(stmts, "DROP POLICY IF EXISTS "+name+" ON "+table)
		if ok {
			stmts = append(stmts, "CREATE POLICY "+name+" ON "+table+
				" AS PERMISSIVE FOR "+command+" TO PUBLIC "+clauses)
		}
	}

	read, readOK := g.readPredicate(c, relation)
	policy(policyPrefixRead, "SELECT", "USING ("+read+")", readOK)

	write, writeOK := "", false
	if c.PushPolicy == PushPolicyOwnerOnly {
		write, writeOK = g.writePredicate(c, relation)
	}
	policy(policyPrefixInsert, "INSERT", "WITH CHECK ("+write+")", writeOK)
	policy(policyPrefixUpdate, "UPDATE", "USING ("+write+") WITH CHECK ("+write+")", writeOK)
	policy(policyPrefixDelete, "DELETE", "USING ("+write+")", writeOK)
	return stmts
}

// readPredicate returns the SELECT predicate of c, mirroring the bucketing
// decision, and false when bucketing cannot be expressed as a predicate.
// relation is the unqualified table name, by which the policy expression
// refers to the table's own row.
func (g *rlsGenerator) readPredicate(c *TableConfig, relation string) (string, bool) {
	switch {
	case c.BucketFunction != "":
		return "", false
	case c.BucketByColumn != "":
		if c.BucketByColumn != c.OwnerColumn {
			return "", false
		}
		return ownerReadPredicate(pgident.Quote(c.OwnerColumn), c.AllowGlobalRead), true
	case c.OwnerColumn != "":
		return ownerReadPredicate(pgident.Quote(c.OwnerColumn), c.AllowGlobalRead), true
	case c.ParentTable != "":
		chain, ok := g.ancestors(c, bucketsRoot)
		if !ok {
			return "", false
		}
		root := chain.root()
		if root.OwnerColumn == "" || (root.BucketByColumn != "" && root.BucketByColumn != root.OwnerColumn) {
			return "", false
		}
		return chainPredicate(c, relation, chain, func(owner string) string {
			return ownerReadPredicate(owner, root.AllowGlobalRead)
		}), true
	default:
		return "true", true
	}
}

// writePredicate returns the INSERT, UPDATE and DELETE predicate of c, and
// false when c has no ownership path that resolves.
func (g *rlsGenerator) writePredicate(c *TableConfig, relation string) (string, bool) {
	switch {
	case c.OwnerColumn != "":
		own := ownerMatches(pgident.Quote(c.OwnerColumn))
		if c.ParentTable == "" {
			return own, true
		}
		chain, ok := g.ancestors(c, ownerRoot)
		if !ok {
			return "", false
		}
		parent := chainPredicate(c, relation, chain, ownerMatches)
		return own + " AND (" + pgident.Quote(c.ParentFKCol) + " IS NULL OR " + parent + ")", true
	case c.ParentTable != "":
		chain, ok := g.ancestors(c, ownerRoot)
		if !ok {
			return "", false
		}
		return chainPredicate(c, relation, chain, ownerMatches), true
	default:
		return "", false
	}
}

// ancestors returns the parent chain of c cut at its root (see
// tableChain.upTo), and false when the chain cannot be followed that far: a
// missing ParentFKCol, an unregistered ancestor, a cycle, or no root before
// the top.
func (g *rlsGenerator) ancestors(c *TableConfig, isRoot func(*TableConfig) bool) (*tableChain, bool) {
	chain, err := g.reg.chain(c.TableName).upTo(isRoot)
	return chain, err == nil
}

// chainPredicate returns an EXISTS predicate that joins the ancestors of
// child up to the root of chain and applies rootCond to the root's owner
// column, given as a qualified, quoted column reference. The subquery
// refers to the child's row by its relation name.
func chainPredicate(child *TableConfig, relation string, chain *tableChain, rootCond func(owner string) string) string {
	j := chain.join(relation, pgident.Quote(relation)+"."+pgident.Quote(child.ParentFKCol))
	return "EXISTS (SELECT 1 FROM " + j.from + " WHERE " + j.on + " AND (" + rootCond(j.rootCol(chain.root().OwnerColumn)) + "))"
}

// ownerMatches returns the predicate "owner is the current user" for the
// quoted column reference owner. An unset or empty setting matches nothing.
func ownerMatches(owner string) string {
	return owner + "::text = NULLIF(current_setting(" + pgident.QuoteLiteral(authSettingName) + ", true), '')"
}

// ownerReadPredicate returns ownerMatches, extended with the rows of the
// global bucket (a NULL or empty owner, as bucketing treats them) when
// global is set.
func ownerReadPredicate(owner string, global bool) string {
	if !global {
		return ownerMatches(owner)
	}
	return ownerMatches(owner) + " OR " + owner + " IS NULL OR " + owner + "::text = ''"
}

// policyName returns prefix + relation, shortened to pgident.MaxLen bytes
// when needed: the relation is then cut (on a character boundary) and a hash
// of the full table name is appended, so that the names of different tables
// stay distinct.
func policyName(prefix, relation, fullTable string) string {
	name := prefix + relation
	if len(name) <= pgident.MaxLen {
		return name
	}
	sum := sha256.Sum256([]byte(fullTable))
	suffix := "_" + hex.EncodeToString(sum[:])[:policyHashLen]
	keep := pgident.MaxLen - len(prefix) - len(suffix)
	for keep > 0 && !utf8.RuneStart(relation[keep]) {
		keep--
	}
	return prefix + relation[:keep] + suffix
}
