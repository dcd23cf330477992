package synchro

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/synchrosync/synchro/internal/bucket"
	"github.com/synchrosync/synchro/internal/pgcatalog"
)

// OwnershipResolver determines which buckets a record belongs to.
//
// ResolveOwner returns the bucket ids of the record identified by table and
// recordID, given the record's column values in data (which may be partial).
// db is the handle the caller is working in, usually the push transaction, so
// the answer reflects that transaction's view. Implementations must be safe for
// concurrent use.
type OwnershipResolver interface {
	ResolveOwner(ctx context.Context, db DB, table string, recordID string, data map[string]any) ([]string, error)
}

// JoinResolver is the default OwnershipResolver that uses registry metadata.
//
// Its rules, for a record of table T with column values data:
//   - T has BucketByColumn (the default for a table with OwnerColumn): the
//     bucket is BucketPrefix + the column's value; a NULL or empty value gives
//     "global" when GlobalWhenBucketNull is set, and no bucket otherwise.
//   - T has OwnerColumn but buckets through a BucketFunction: "user:" + owner
//     (BucketPrefix when set); a NULL owner gives "global" with
//     AllowGlobalRead, no bucket otherwise.
//   - T has ParentTable: the parent chain is followed in the database, from
//     data[ParentFKCol] up to the first ancestor with BucketByColumn or
//     OwnerColumn, whose value decides as above. A NULL foreign key or a
//     missing parent gives no bucket.
//   - otherwise (a reference table): "global".
//
// It also implements wal.BucketAssigner when constructed with
// NewJoinResolverWithDB.
type JoinResolver struct {
	registry *Registry
	// db is the handle AssignBuckets resolves parent chains with; nil for a
	// resolver built by NewJoinResolver. ResolveOwner uses its own db
	// argument instead.
	db DB
	// pkTypes caches the type a parent key is cast to for each table's
	// primary key, read from the catalog once: its base type without a
	// modifier, so that lookups use the key's index and never truncate or
	// round a key into another row's.
	pkTypes pgcatalog.CastTypes
}

// NewJoinResolver creates a JoinResolver from a registry.
// The returned resolver can be used as an OwnershipResolver but not as a
// wal.BucketAssigner (no DB handle). Use NewJoinResolverWithDB for WAL
// consumer usage.
func NewJoinResolver(registry *Registry) *JoinResolver {
	return &JoinResolver{registry: registry}
}

// NewJoinResolverWithDB creates a JoinResolver that also satisfies
// wal.BucketAssigner. The db handle is used by AssignBuckets to resolve
// parent-chain ownership.
//
// db should be able to read every table of a parent chain: AssignBuckets runs
// outside any transaction of the caller, so under row level security the
// role needs BYPASSRLS (or policies that let it read the parents).
func NewJoinResolverWithDB(registry *Registry, db DB) *JoinResolver {
	return &JoinResolver{registry: registry, db: db}
}

// AssignBuckets implements wal.BucketAssigner: it returns the buckets of the
// record by the rules of ResolveOwner, resolving parent chains with the
// resolver's own database handle, which must have been given to
// NewJoinResolverWithDB. op does not change the rules. For a delete whose
// data is nil, the old row the WAL consumer passes along with the change (if
// any) is used instead.
//
// The result has no duplicates and no empty ids; its order is that of the
// rules.
func (r *JoinResolver) AssignBuckets(ctx context.Context, table string, recordID string, op Operation, data map[string]any) ([]string, error) {
	if r.db == nil {
		return nil, errors.New("synchro: JoinResolver has no database handle: use NewJoinResolverWithDB")
	}
	buckets, err := r.ResolveOwner(ctx, r.db, table, recordID, rulesRow(ctx, op, data))
	if err != nil {
		return nil, fmt.Errorf("synchro: assigning buckets to %q record %q: %w", table, recordID, err)
	}
	return bucket.Dedupe(buckets), nil
}

// ResolveOwner implements OwnershipResolver. db is used only for tables with
// a ParentTable.
func (r *JoinResolver) ResolveOwner(ctx context.Context, db DB, table string, recordID string, data map[string]any) ([]string, error) {
	cfg := r.registry.get(table)
	if cfg == nil {
		return nil, fmt.Errorf("%w: %q", ErrTableNotRegistered, table)
	}
	switch {
	case bucketsRoot(cfg):
		col, prefix, nullGlobal := bucketRule(cfg)
		return bucketsFor(prefix, data[col], nullGlobal), nil
	case cfg.ParentTable != "":
		fk, ok := bucket.Text(data[cfg.ParentFKCol])
		if !ok {
			return []string{}, nil
		}
		return r.resolveChain(ctx, db, cfg, fk)
	default:
		return []string{bucket.Global}, nil
	}
}

// bucketRule returns how the buckets of a table that decides its own
// (bucketsRoot) are formed: from column col, as prefix + its value, and
// "global" for a NULL or empty value when nullGlobal is set. A bucket
// column rules over the owner column.
func bucketRule(c *TableConfig) (col, prefix string, nullGlobal bool) {
	if c.BucketByColumn != "" {
		return c.BucketByColumn, c.BucketPrefix, c.GlobalWhenBucketNull
	}
	return c.OwnerColumn, cmp.Or(c.BucketPrefix, bucket.UserPrefix), c.AllowGlobalRead
}

// bucketsFor forms the bucket of a bucket-column value.
func bucketsFor(prefix string, v any, nullGlobal bool) []string {
	if s, ok := bucket.Text(v); ok {
		return []string{prefix + s}
	}
	if nullGlobal {
		return []string{bucket.Global}
	}
	return []string{}
}

// resolveChain looks up the root's bucket column through the parent chain.
func (r *JoinResolver) resolveChain(ctx context.Context, db DB, cfg *TableConfig, fk string) ([]string, error) {
	chain, err := r.registry.chain(cfg.TableName).upTo(bucketsRoot)
	if err != nil {
		return nil, err
	}
	col, prefix, nullGlobal := bucketRule(chain.root())
	v, err := r.chainValue(ctx, db, chain, col, fk)
	if err != nil {
		return nil, err
	}
	if v == nil {
		return bucketsFor(prefix, nil, nullGlobal), nil
	}
	return bucketsFor(prefix, *v, nullGlobal), nil
}

// ownerOf returns the user a record belongs to for writes: the value of the
// table's owner column, or of the owner column of the first ancestor that
// has one. vals holds the record's owner and parent key columns. It reports
// false when the record has no owner (a NULL owner or parent key, a missing
// parent).
func (r *JoinResolver) ownerOf(ctx context.Context, db DB, cfg *TableConfig, vals map[string]any) (string, bool, error) {
	if cfg.OwnerColumn != "" {
		owner, ok := bucket.Text(vals[cfg.OwnerColumn])
		return owner, ok, nil
	}
	if cfg.ParentTable == "" {
		return "", false, nil
	}
	fk, ok := bucket.Text(vals[cfg.ParentFKCol])
	if !ok {
		return "", false, nil
	}
	chain, err := r.registry.chain(cfg.TableName).upTo(ownerRoot)
	if err != nil {
		return "", false, err
	}
	v, err := r.chainValue(ctx, db, chain, chain.root().OwnerColumn, fk)
	if err != nil || v == nil {
		return "", false, err
	}
	return *v, *v != "", nil
}

// chainValue reads column col of the root of chain (cut by upTo), joining
// the chain from the parent row whose key is fk. It returns nil when the
// value is NULL or the chain is broken (a missing parent).
func (r *JoinResolver) chainValue(ctx context.Context, db DB, chain *tableChain, col, fk string) (*string, error) {
	cfg := chain.child
	if db == nil {
		return nil, fmt.Errorf("synchro: resolving the parent chain of %q needs a database handle", cfg.TableName)
	}
	pkType, err := r.pkType(ctx, db, chain.path[0])
	if err != nil {
		return nil, err
	}
	j := chain.join("", "CAST($1::text AS "+pkType+")")
	q := "SELECT " + j.rootCol(col) + "::text FROM " + j.from + " WHERE " + j.on
	var v sql.NullString
	err = db.QueryRowContext(ctx, q, fk).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("synchro: resolving the parent chain of %q: %w", cfg.TableName, err)
	}
	if !v.Valid {
		return nil, nil
	}
	return &v.String, nil
}

// pkType returns the type a key of cfg's primary key column given as text
// is cast to (see pgcatalog.CastTypes; tableInfo.pkType is the same for
// push and pull), reading the catalog once per table.
func (r *JoinResolver) pkType(ctx context.Context, db DB, cfg *TableConfig) (string, error) {
	t, err := r.pkTypes.Get(ctx, db, cfg.TableName, cfg.IDColumn)
	if err != nil {
		return "", fmt.Errorf("synchro: reading the primary key type of %q: %w", cfg.TableName, err)
	}
	return t, nil
}
