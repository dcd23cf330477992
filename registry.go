package synchro

import (
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/synchrosync/synchro/internal/bucket"
	"github.com/synchrosync/synchro/internal/pgident"
)

// PushPolicy defines whether a table accepts client writes.
type PushPolicy string

const (
	// PushPolicyDisabled means the table is read-only from clients.
	PushPolicyDisabled PushPolicy = "disabled"
	// PushPolicyOwnerOnly means pushes are allowed when ownership can be resolved.
	PushPolicyOwnerOnly PushPolicy = "owner_only"
)

// Default names applied by Registry.Register.
const (
	defaultIDColumn        = "id"
	defaultUpdatedAtColumn = "updated_at"
	defaultDeletedAtColumn = "deleted_at"
	defaultCreatedAtColumn = "created_at"
)

// TableConfig defines sync behavior for a table.
//
// Names (the table, its columns, BucketFunction) are used exactly as written:
// they are quoted in every statement, so they are case-sensitive. TableName
// and BucketFunction may be schema-qualified as "schema.name".
type TableConfig struct {
	// TableName is the database table name.
	TableName string

	// PushPolicy controls whether pushes are accepted for this table.
	// Default: owner_only when OwnerColumn/ParentTable is set, otherwise disabled.
	PushPolicy PushPolicy

	// OwnerColumn is the column name for user ownership.
	OwnerColumn string

	// ParentTable is the parent table name for child tables.
	ParentTable string

	// ParentFKCol is the foreign key column pointing to the parent table.
	ParentFKCol string

	// SyncColumns specifies which columns to include in pull responses (nil = all columns).
	SyncColumns []string

	// Dependencies lists tables that must sync first (for push ordering).
	Dependencies []string

	// IDColumn is the primary key column name (defaults to "id").
	IDColumn string

	// UpdatedAtColumn is the timestamp column for change tracking (defaults to "updated_at").
	UpdatedAtColumn string

	// DeletedAtColumn is the soft delete column (defaults to "deleted_at").
	DeletedAtColumn string

	// ProtectedColumns are additional columns (beyond defaults) that clients may not write.
	// Default protected: id, created_at, updated_at, deleted_at, OwnerColumn.
	//
	// The default set also holds IDColumn, the configured UpdatedAtColumn and
	// DeletedAtColumn, and ParentFKCol. Listing one of those here is refused by
	// Validate with ErrRedundantProtected.
	ProtectedColumns []string

	// BucketByColumn enables fast-path bucketing without SQL function execution.
	// Bucket ID is formed as BucketPrefix + value(column).
	BucketByColumn string

	// BucketPrefix prefixes fast-path bucket values. Default "user:".
	BucketPrefix string

	// GlobalWhenBucketNull emits "global" when BucketByColumn value is NULL/empty.
	GlobalWhenBucketNull bool

	// AllowGlobalRead enables NULL-owner rows to be readable by all users via RLS.
	// Default false.
	AllowGlobalRead bool

	// BucketFunction optionally overrides the global SQL bucket resolver function
	// for this table. Signature:
	// (table_name text, operation text, new_row jsonb, old_row jsonb) -> setof text.
	BucketFunction string

	// protected is the set of columns clients may not write, computed by
	// Registry.Register. A TableConfig built by hand computes it on demand.
	protected map[string]struct{}
	// updatedAtDefaulted and deletedAtDefaulted record that Register filled
	// in the timestamp column name: a defaulted column may be absent from the
	// table (the feature is then off), an explicitly named one must exist.
	updatedAtDefaulted bool
	deletedAtDefaulted bool
}

// baseProtected returns the columns protected without being listed in
// ProtectedColumns, in a fixed order.
func (c *TableConfig) baseProtected() []string {
	cols := []string{
		defaultCreatedAtColumn, defaultUpdatedAtColumn, defaultDeletedAtColumn,
		c.IDColumn, c.UpdatedAtColumn, c.DeletedAtColumn, c.OwnerColumn, c.ParentFKCol,
	}
	return slices.DeleteFunc(cols, func(s string) bool { return s == "" })
}

func (c *TableConfig) buildProtected() map[string]struct{} {
	set := make(map[string]struct{}, 8+len(c.ProtectedColumns))
	for _, col := range c.baseProtected() {
		set[col] = struct{}{}
	}
	for _, col := range c.ProtectedColumns {
		set[col] = struct{}{}
	}
	return set
}

func (c *TableConfig) protectedSet() map[string]struct{} {
	if c.protected != nil {
		return c.protected
	}
	return c.buildProtected()
}

// IsProtected returns true if the column is protected from client writes.
func (c *TableConfig) IsProtected(col string) bool {
	_, ok := c.protectedSet()[col]
	return ok
}

// AllowedInsertColumns returns the set of columns allowed in an INSERT.
// This includes all non-protected columns plus id, owner col, and parent FK col
// (which are set once on creation).
//
// The result keeps the order of dataCols.
func (c *TableConfig) AllowedInsertColumns(dataCols []string) []string {
	set := c.protectedSet()
	out := make([]string, 0, len(dataCols))
	for _, col := range dataCols {
		_, protected := set[col]
		creationOnly := col != "" && (col == c.IDColumn || col == c.OwnerColumn || col == c.ParentFKCol)
		if !protected || creationOnly {
			out = append(out, col)
		}
	}
	return out
}

// AllowedUpdateColumns returns columns from dataCols that are allowed in an UPDATE.
// Only non-protected columns — no PKs, ownership FKs, or timestamps.
//
// The result keeps the order of dataCols.
func (c *TableConfig) AllowedUpdateColumns(dataCols []string) []string {
	set := c.protectedSet()
	out := make([]string, 0, len(dataCols))
	for _, col := range dataCols {
		if _, protected := set[col]; !protected {
			out = append(out, col)
		}
	}
	return out
}

// clone returns a deep copy of c, so that neither the caller nor the registry
// can change the other's copy.
func (c *TableConfig) clone() *TableConfig {
	cp := *c
	cp.SyncColumns = slices.Clone(c.SyncColumns)
	cp.Dependencies = slices.Clone(c.Dependencies)
	cp.ProtectedColumns = slices.Clone(c.ProtectedColumns)
	// protected is never modified after Register builds it, so sharing is safe.
	return &cp
}

// applyDefaults fills the zero-valued fields of c as documented on Register.
func (c *TableConfig) applyDefaults() {
	if c.IDColumn == "" {
		c.IDColumn = defaultIDColumn
	}
	if c.UpdatedAtColumn == "" {
		c.UpdatedAtColumn = defaultUpdatedAtColumn
		c.updatedAtDefaulted = true
	}
	if c.DeletedAtColumn == "" {
		c.DeletedAtColumn = defaultDeletedAtColumn
		c.deletedAtDefaulted = true
	}
	if c.PushPolicy == "" {
		if c.OwnerColumn != "" || c.ParentTable != "" {
			c.PushPolicy = PushPolicyOwnerOnly
		} else {
			c.PushPolicy = PushPolicyDisabled
		}
	}
	if c.BucketByColumn == "" && c.BucketFunction == "" && c.OwnerColumn != "" {
		c.BucketByColumn = c.OwnerColumn
		if c.AllowGlobalRead {
			c.GlobalWhenBucketNull = true
		}
	}
	if c.BucketByColumn != "" && c.BucketPrefix == "" {
		c.BucketPrefix = bucket.UserPrefix
	}
}

// Registry holds all syncable table configurations.
//
// A Registry is built once at start-up and then read by the engine and the
// consumer; it is safe for concurrent use. The zero value is an empty registry
// ready to use.
type Registry struct {
	mu     sync.RWMutex
	tables map[string]*TableConfig
	order  []string
	// problems are registration mistakes (nil or unnamed configs, duplicate
	// names) that Register cannot return; Validate reports the first one.
	problems []error
	// chains holds the parent chain of every registered table (chain.go),
	// built by Validate, or by the first reader of a registry not validated
	// since its last Register, which drops them.
	chains map[string]*tableChain
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{tables: make(map[string]*TableConfig)}
}

// Register adds a table configuration to the registry.
//
// The registry keeps its own copy of cfg, with the defaults filled in; the
// caller's struct is not modified, and later changes to it have no effect.
// Get and All return the registered copy. The defaults, applied in this order:
//   - IDColumn "id", UpdatedAtColumn "updated_at", DeletedAtColumn "deleted_at";
//   - PushPolicy owner_only when OwnerColumn or ParentTable is set, otherwise
//     disabled;
//   - BucketByColumn = OwnerColumn when neither BucketByColumn nor
//     BucketFunction is set (and then GlobalWhenBucketNull when AllowGlobalRead
//     is set);
//   - BucketPrefix "user:" when BucketByColumn is set.
//
// Register does not return an error: a nil config, an empty table name or a
// name registered twice (the first registration is kept) is recorded and
// reported by Validate, which the engine runs before it starts.
func (r *Registry) Register(cfg *TableConfig) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.tables == nil {
		r.tables = make(map[string]*TableConfig)
	}
	if cfg == nil {
		r.problems = append(r.problems, errors.New("synchro: Register called with a nil TableConfig"))
		return
	}
	if cfg.TableName == "" {
		r.problems = append(r.problems, errors.New("synchro: Register called with an empty TableName"))
		return
	}
	if _, dup := r.tables[cfg.TableName]; dup {
		r.problems = append(r.problems, fmt.Errorf("synchro: table %q registered more than once", cfg.TableName))
		return
	}
	c := cfg.clone()
	c.applyDefaults()
	c.protected = c.buildProtected()
	r.tables[c.TableName] = c
	r.order = append(r.order, c.TableName)
	r.chains = nil
}

// get returns the registered config itself (not a copy), or nil. The caller
// must not modify it.
func (r *Registry) get(name string) *TableConfig {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.tables[name]
}

// Get returns the configuration for a table, or nil if not registered.
//
// The result is a copy: changing it does not change the registry.
func (r *Registry) Get(name string) *TableConfig {
	if c := r.get(name); c != nil {
		return c.clone()
	}
	return nil
}

// All returns all registered table configurations in registration order.
//
// The results are copies: changing them does not change the registry.
func (r *Registry) All() []*TableConfig {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]*TableConfig, 0, len(r.order))
	for _, name := range r.order {
		out = append(out, r.tables[name].clone())
	}
	return out
}

// TableNames returns the names of all registered tables.
// They are in registration order.
func (r *Registry) TableNames() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return slices.Clone(r.order)
}

// IsRegistered returns true if the table is registered.
func (r *Registry) IsRegistered(tableName string) bool {
	return r.get(tableName) != nil
}

// IsPushable returns true if the table accepts push operations.
// That is the case when it is registered with PushPolicy owner_only.
func (r *Registry) IsPushable(tableName string) bool {
	c := r.get(tableName)
	return c != nil && c.PushPolicy == PushPolicyOwnerOnly
}

// Validate checks the registry and returns the first problem found, or nil.
//
// Registration mistakes (a nil config, an empty or duplicate table name) come
// first. Then each table is checked in registration order; its error wraps a
// documented sentinel where one applies and names the table:
//   - a table, column or BucketFunction name PostgreSQL cannot hold (empty
//     column names, more than 63 bytes, control characters, more than one dot);
//   - ErrInvalidPushPolicy: PushPolicy is neither disabled nor owner_only;
//   - ErrInvalidBucketConfig: GlobalWhenBucketNull without AllowGlobalRead, or
//     both BucketByColumn and BucketFunction set, or an invalid BucketFunction
//     name;
//   - ErrRedundantProtected: a ProtectedColumns entry that is protected anyway
//     (created_at, updated_at, deleted_at, IDColumn, the configured timestamp
//     columns, OwnerColumn, ParentFKCol) or listed twice;
//   - ErrUnregisteredParent: ParentTable, or an ancestor further up, is not
//     registered;
//   - ErrMissingParentFKCol: ParentTable set without ParentFKCol (the
//     reverse, ParentFKCol without ParentTable, is refused with a plain error);
//   - ErrCycleDetected: following ParentTable comes back to a table already
//     seen (a table that is its own parent included);
//   - ErrOrphanedChain: the root of the parent chain has no OwnerColumn;
//   - ErrMissingOwnership: a pushable table has neither OwnerColumn nor
//     ParentTable;
//   - ErrTableNotRegistered: a Dependencies entry names an unregistered table
//     or the table itself.
func (r *Registry) Validate() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	// Kept whatever the outcome: GenerateRLSPolicies builds what it can
	// of an invalid registry.
	r.chains = r.buildChains()
	if len(r.problems) > 0 {
		return r.problems[0]
	}
	for _, name := range r.order {
		if err := r.validateTable(r.tables[name]); err != nil {
			return err
		}
	}
	return nil
}

// validateTable checks one table. The caller holds r.mu and has built
// r.chains.
func (r *Registry) validateTable(c *TableConfig) error {
	fail := func(sentinel error, format string, args ...any) error {
		msg := fmt.Sprintf(format, args...)
		if sentinel == nil {
			return fmt.Errorf("synchro: table %q: %s", c.TableName, msg)
		}
		return fmt.Errorf("%w: table %q: %s", sentinel, c.TableName, msg)
	}

	if err := pgident.CheckQualified(c.TableName); err != nil {
		return fail(nil, "invalid TableName: %v", err)
	}
	if err := checkColumnNames(c); err != nil {
		return fail(nil, "%v", err)
	}

	if c.PushPolicy != PushPolicyDisabled && c.PushPolicy != PushPolicyOwnerOnly {
		return fail(ErrInvalidPushPolicy, "PushPolicy %q is neither %q nor %q", c.PushPolicy, PushPolicyDisabled, PushPolicyOwnerOnly)
	}

	if c.GlobalWhenBucketNull && !c.AllowGlobalRead {
		return fail(ErrInvalidBucketConfig, "GlobalWhenBucketNull requires AllowGlobalRead")
	}
	if c.BucketByColumn != "" && c.BucketFunction != "" {
		return fail(ErrInvalidBucketConfig, "BucketByColumn %q and BucketFunction %q are mutually exclusive", c.BucketByColumn, c.BucketFunction)
	}
	if c.BucketFunction != "" {
		if err := pgident.CheckQualified(c.BucketFunction); err != nil {
			return fail(ErrInvalidBucketConfig, "invalid BucketFunction: %v", err)
		}
	}

	base := c.baseProtected()
	seen := make(map[string]bool, len(c.ProtectedColumns))
	for _, col := range c.ProtectedColumns {
		if slices.Contains(base, col) {
			return fail(ErrRedundantProtected, "ProtectedColumns entry %q is always protected", col)
		}
		if seen[col] {
			return fail(ErrRedundantProtected, "ProtectedColumns lists %q twice", col)
		}
		seen[col] = true
	}

	if c.ParentTable != "" {
		if f := r.chains[c.TableName].fault(); f != nil {
			return fail(f.sentinel, "%s", f.msg)
		}
	} else if c.ParentFKCol != "" {
		return fail(nil, "ParentFKCol %q is set without ParentTable", c.ParentFKCol)
	}

	if c.PushPolicy == PushPolicyOwnerOnly && c.OwnerColumn == "" && c.ParentTable == "" {
		return fail(ErrMissingOwnership, "push policy %q needs OwnerColumn or ParentTable", c.PushPolicy)
	}

	for _, dep := range c.Dependencies {
		if dep == c.TableName {
			return fail(ErrTableNotRegistered, "Dependencies lists the table itself")
		}
		if _, ok := r.tables[dep]; !ok {
			return fail(ErrTableNotRegistered, "dependency %q is not registered", dep)
		}
	}
	return nil
}

// checkColumnNames checks every column name the config mentions.
func checkColumnNames(c *TableConfig) error {
	named := []struct{ field, value string }{
		{"IDColumn", c.IDColumn},
		{"UpdatedAtColumn", c.UpdatedAtColumn},
		{"DeletedAtColumn", c.DeletedAtColumn},
	}
	optional := []struct{ field, value string }{
		{"OwnerColumn", c.OwnerColumn},
		{"ParentFKCol", c.ParentFKCol},
		{"BucketByColumn", c.BucketByColumn},
	}
	for _, f := range optional {
		if f.value != "" {
			named = append(named, f)
		}
	}
	for _, f := range named {
		if err := pgident.Check(f.value); err != nil {
			return fmt.Errorf("invalid %s: %w", f.field, err)
		}
	}
	if c.SyncColumns != nil && len(c.SyncColumns) == 0 {
		return errors.New("SyncColumns is empty (use nil for all columns)")
	}
	seen := make(map[string]bool, len(c.SyncColumns))
	for _, col := range c.SyncColumns {
		if err := pgident.Check(col); err != nil {
			return fmt.Errorf("invalid SyncColumns entry: %w", err)
		}
		if seen[col] {
			return fmt.Errorf("SyncColumns lists %q twice", col)
		}
		seen[col] = true
	}
	for _, col := range c.ProtectedColumns {
		if err := pgident.Check(col); err != nil {
			return fmt.Errorf("invalid ProtectedColumns entry: %w", err)
		}
	}
	return nil
}
