package synchro

import (
	"fmt"
	"slices"
	"strings"

	"github.com/synchrosync/synchro/internal/parentchain"
	"github.com/synchrosync/synchro/internal/pgident"
)

// This file holds the parent chains of the registered tables: the one walk
// that follows ParentTable (Registry.buildChains, run by Validate), the
// chain it records for each table (tableChain), the one SQL join of a chain
// with its alias scheme (tableChain.join), and the order in which tables
// sync (dependencyOrder).
//
// The read filter (memberPredicate), the RLS policies (rlsGenerator), the
// ownership resolver (JoinResolver), the schema cache (tableInfo.chain, for
// push's segments and the owner id's form) and the consumer's backfill
// (package wal, through internal/parentchain) read these chains instead of
// following ParentTable themselves: the package promises that the read
// filter, the policies and the consumer put a row in the same buckets, and
// they keep that promise only while they agree on the chain.

// Chain aliases: the tables of a joined chain are named chainAliasBase_1
// (the parent), chainAliasBase_2, ... up to the root; chainAliasFallback
// replaces the base when the statement refers to the child row by one of
// those names (see chainAliases).
const (
	chainAliasBase     = "synchro_parent"
	chainAliasFallback = "synchro_ancestor"
)

func init() {
	// Package wal may import only the documented API, of which the chains
	// are no part (internal/parentchain says more).
	parentchain.Ancestors = func(registry any, table string) []string {
		reg, _ := registry.(*Registry)
		if reg == nil {
			return nil
		}
		return reg.chain(table).ancestorNames()
	}
}

// tableChain is the parent chain of one registered table, as the registry
// recorded it. It is never modified once built.
type tableChain struct {
	// child is the table whose chain this is.
	child *TableConfig
	// path holds the ancestors, parent first, as far as ParentTable can be
	// followed: up to a table without a parent, or to where broken says
	// the chain breaks.
	path []*TableConfig
	// broken says why the chain stops before a table without a parent (an
	// unregistered ancestor, a cycle); nil when it does not.
	broken *chainFault
}

// chainFault is what is wrong with a parent chain: the documented sentinel
// and a description, worded as Validate reports it.
type chainFault struct {
	sentinel error
	msg      string
}

// err returns the fault as the error of table, in Validate's form.
func (f *chainFault) err(table string) error {
	return fmt.Errorf("%w: table %q: %s", f.sentinel, table, f.msg)
}

// buildChains follows ParentTable up from every registered table. It is
// the only walk of the parent chains; the caller holds r.mu for writing.
func (r *Registry) buildChains() map[string]*tableChain {
	chains := make(map[string]*tableChain, len(r.order))
	for _, name := range r.order {
		chains[name] = r.walkChain(r.tables[name])
	}
	return chains
}

// walkChain follows ParentTable up from c until a table without a parent,
// an unregistered name or a table already seen. ParentFKCol is not looked
// at: Validate reports a missing one on the table that lacks it, and
// upTo refuses to join through it.
func (r *Registry) walkChain(c *TableConfig) *tableChain {
	ch := &tableChain{child: c}
	seen := map[string]bool{c.TableName: true}
	for cur := c; cur.ParentTable != ""; {
		next, ok := r.tables[cur.ParentTable]
		switch {
		case seen[cur.ParentTable]:
			ch.broken = &chainFault{ErrCycleDetected, fmt.Sprintf("the parent chain returns to %q", cur.ParentTable)}
		case !ok && cur == c:
			ch.broken = &chainFault{ErrUnregisteredParent, fmt.Sprintf("ParentTable %q is not registered", c.ParentTable)}
		case !ok:
			ch.broken = &chainFault{ErrUnregisteredParent, fmt.Sprintf("ancestor %q (parent of %q) is not registered", cur.ParentTable, cur.TableName)}
		}
		if ch.broken != nil {
			return ch
		}
		seen[next.TableName] = true
		ch.path = append(ch.path, next)
		cur = next
	}
	return ch
}

// chain returns the parent chain of the registered table name, or nil. A
// registry that was not validated since its last Register builds its chains
// here, the same way.
func (r *Registry) chain(name string) *tableChain {
	r.mu.RLock()
	ch, built := r.chains[name], r.chains != nil
	r.mu.RUnlock()
	if built {
		return ch
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.chains == nil {
		r.chains = r.buildChains()
	}
	return r.chains[name]
}

// fault returns what Validate reports about the chain of a table with a
// ParentTable, in its order: an unregistered parent, a missing
// ParentFKCol, then a break further up, then a top without OwnerColumn.
func (ch *tableChain) fault() *chainFault {
	c := ch.child
	switch {
	case len(ch.path) == 0 && ch.broken != nil && ch.broken.sentinel == ErrUnregisteredParent:
		return ch.broken
	case c.ParentFKCol == "":
		return &chainFault{ErrMissingParentFKCol, fmt.Sprintf("ParentTable %q needs ParentFKCol", c.ParentTable)}
	case ch.broken != nil:
		return ch.broken
	case len(ch.path) > 0 && ch.path[len(ch.path)-1].OwnerColumn == "":
		return &chainFault{ErrOrphanedChain, fmt.Sprintf("the chain's root %q has no OwnerColumn", ch.path[len(ch.path)-1].TableName)}
	}
	return nil
}

// bucketsRoot is the root of bucketing: the first ancestor with a bucket
// or owner column.
func bucketsRoot(c *TableConfig) bool { return c.BucketByColumn != "" || c.OwnerColumn != "" }

// ownerRoot is the root of ownership: the first ancestor with an owner
// column, as the RLS write policies walk.
func ownerRoot(c *TableConfig) bool { return c.OwnerColumn != "" }

// upTo returns the chain cut after its first ancestor for which isRoot
// holds (bucketsRoot or ownerRoot), which is then its root. It fails when
// the chain cannot be followed that far: a link without ParentFKCol, a
// break, or no such ancestor.
func (ch *tableChain) upTo(isRoot func(*TableConfig) bool) (*tableChain, error) {
	if ch == nil {
		return nil, fmt.Errorf("%w: no parent chain", ErrTableNotRegistered)
	}
	below := ch.child
	for i, a := range ch.path {
		if below.ParentFKCol == "" {
			f := chainFault{ErrMissingParentFKCol, fmt.Sprintf("%q has ParentTable %q but no ParentFKCol", below.TableName, a.TableName)}
			return nil, f.err(ch.child.TableName)
		}
		if isRoot(a) {
			return &tableChain{child: ch.child, path: ch.path[:i+1]}, nil
		}
		below = a
	}
	if ch.broken != nil {
		return nil, ch.broken.err(ch.child.TableName)
	}
	return nil, fmt.Errorf("%w: no ancestor of %q decides its buckets", ErrOrphanedChain, ch.child.TableName)
}

// root returns the last table of a chain that upTo cut.
func (ch *tableChain) root() *TableConfig {
	return ch.path[len(ch.path)-1]
}

// ancestors returns the chain's tables, parent first; none for a nil chain
// (a table built by hand, outside a registry).
func (ch *tableChain) ancestors() []*TableConfig {
	if ch == nil {
		return nil
	}
	return ch.path
}

// ancestorNames returns the names of the chain's tables, parent first.
func (ch *tableChain) ancestorNames() []string {
	var names []string
	for _, a := range ch.ancestors() {
		names = append(names, a.TableName)
	}
	return names
}

// chainSQL is a parent chain joined in SQL.
type chainSQL struct {
	// from joins the chain's tables, the parent first, each on its key
	// equal to the parent key of the table below it.
	from string
	// on is the condition that the parent's key equals the key given.
	on string
	// root is the root's alias.
	root string
}

// rootCol returns column col of the root, qualified by its alias.
func (s chainSQL) rootCol(col string) string {
	return s.root + "." + pgident.Quote(col)
}

// join joins the chain (usually cut by upTo) in SQL for a statement that
// refers to the child row by the name child ("" when it does not) and looks
// the parent up by key, an SQL expression such as the child's parent key
// column.
func (ch *tableChain) join(child, key string) chainSQL {
	alias := chainAliases(child, len(ch.path))
	var b strings.Builder
	for i, a := range ch.path {
		if i > 0 {
			b.WriteString(" JOIN ")
		}
		b.WriteString(pgident.QuoteQualified(a.TableName) + " AS " + alias(i))
		if i > 0 {
			// This ancestor's key = the key to it held by the one below.
			fmt.Fprintf(&b, " ON %s.%s = %s.%s",
				alias(i), pgident.Quote(a.IDColumn), alias(i-1), pgident.Quote(ch.path[i-1].ParentFKCol))
		}
	}
	return chainSQL{
		from: b.String(),
		on:   alias(0) + "." + pgident.Quote(ch.path[0].IDColumn) + " = " + key,
		root: alias(len(ch.path) - 1),
	}
}

// chainAliases returns the quoted alias of the i-th table (0 the parent) of
// a joined chain of n tables. An alias equal to child, the name by which the
// statement refers to the child row, would hide that row from the join
// condition (an RLS policy refers to its table's row by the relation name,
// and a table may be named "synchro_parent_1"), so such a chain takes the
// fallback base.
func chainAliases(child string, n int) func(i int) string {
	base := chainAliasBase
	for i := range n {
		if child == fmt.Sprintf("%s_%d", chainAliasBase, i+1) {
			base = chainAliasFallback
			break
		}
	}
	return func(i int) string { return pgident.Quote(fmt.Sprintf("%s_%d", base, i+1)) }
}

// dependencyOrder lists the registered tables so that every table comes
// after its parent and its Dependencies; ties in name order.
func dependencyOrder(reg *Registry) []string {
	names := slices.Clone(reg.TableNames())
	slices.Sort(names)
	var out []string
	state := map[string]int{} // 1 visiting, 2 done
	var visit func(string)
	visit = func(n string) {
		if state[n] != 0 {
			return
		}
		state[n] = 1
		if cfg := reg.get(n); cfg != nil {
			deps := slices.Clone(cfg.Dependencies)
			if cfg.ParentTable != "" {
				deps = append(deps, cfg.ParentTable)
			}
			slices.Sort(deps)
			for _, d := range deps {
				visit(d)
			}
		}
		state[n] = 2
		out = append(out, n)
	}
	for _, n := range names {
		visit(n)
	}
	return out
}
