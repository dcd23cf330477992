package synchro

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/synchrosync/synchro/internal/bucket"
	"github.com/synchrosync/synchro/internal/pgident"
)

// bucketAssigner mirrors wal.BucketAssigner, which this package cannot
// import, so that the compiler checks both resolvers against it.
type bucketAssigner interface {
	AssignBuckets(ctx context.Context, table string, recordID string, op Operation, data map[string]any) ([]string, error)
}

var (
	_ OwnershipResolver = (*JoinResolver)(nil)
	_ bucketAssigner    = (*JoinResolver)(nil)
	_ bucketAssigner    = (*SQLBucketResolver)(nil)
)

// bucketFunctionArgs is the argument list every SQL bucket function takes:
// (table_name text, operation text, new_row jsonb, old_row jsonb).
const bucketFunctionArgs = "(text,text,jsonb,jsonb)"

// bucketFunctionCheckTimeout bounds the catalog query NewSQLBucketResolver
// runs, since its signature carries no context.
const bucketFunctionCheckTimeout = 30 * time.Second

// SQLBucketResolverConfig configures SQL-first bucket resolution.
//
// A bucket function has the signature
//
//	(table_name text, operation text, new_row jsonb, old_row jsonb) -> setof text
//
// (a function returning a single text is accepted too). operation is
// "create", "update" or "delete". new_row holds the record's column values as
// a JSON object, NULL when the change carries none; old_row holds the values
// before an update or a delete when the WAL consumer knows them, NULL
// otherwise. Every non-NULL, non-empty text returned is a bucket id.
type SQLBucketResolverConfig struct {
	// DB is used for SQL rule execution and optional fallback lookups.
	// Required. It should be a pool rather than a transaction: a failing
	// bucket function aborts a transaction, and the fallback's queries with
	// it. Under row level security its role needs to read the parent tables
	// (BYPASSRLS, or policies allowing it).
	DB DB
	// Registry provides table config and default ownership metadata.
	// Required. Tables registered after NewSQLBucketResolver are served too,
	// but their BucketFunction is checked only by name, on first use.
	Registry *Registry
	// GlobalFunction is the SQL resolver function used when a table does not
	// define TableConfig.BucketFunction.
	// Signature: (table_name text, operation text, new_row jsonb, old_row jsonb) -> setof text.
	//
	// It applies to every table without a BucketFunction, owner tables
	// included: their BucketByColumn rule is then not used.
	//
	// Defaults to "" (none): such tables get the default buckets of the
	// registry rules, as JoinResolver computes them. The name, "name" or
	// "schema.name", is used exactly as written (it is quoted, so it is
	// case-sensitive); an unqualified name is looked up on the search_path.
	GlobalFunction string
	// EnableGoFallback allows fallback to OwnershipResolver when SQL rule execution fails.
	// Default false for strict SQL-only operation.
	//
	// The fallback is not used when the change's context is done, nor when
	// the record's values cannot be encoded as JSON.
	EnableGoFallback bool
	// GoFallback is used only when EnableGoFallback is true.
	// Defaults to JoinResolver.
	//
	// It is called with DB as its database handle.
	GoFallback OwnershipResolver
	// MaxBucketsPerEvent bounds fanout for a single row change. 0 means unlimited.
	//
	// Defaults to 0. Negative values are refused. A change resolving to more
	// (distinct) buckets fails with an error naming the table and record.
	MaxBucketsPerEvent int
	// Logger receives fallback warnings.
	//
	// Defaults to slog.Default().
	Logger *slog.Logger
}

// SQLBucketResolver resolves row buckets via SQL rules first, then optional Go fallback.
//
// It implements wal.BucketAssigner. For each change it calls the table's
// BucketFunction, or else the configured GlobalFunction; a table with
// neither gets the default buckets of the registry rules (see JoinResolver).
// A SQLBucketResolver is safe for concurrent use.
type SQLBucketResolver struct {
	db         DB
	registry   *Registry
	globalFunc string
	fallback   OwnershipResolver // nil unless EnableGoFallback
	rules      *JoinResolver     // the default buckets, with db
	maxBuckets int
	logger     *slog.Logger

	// queries caches the statement calling each function, by function
	// name as configured.
	queries sync.Map // string -> string
}

// NewSQLBucketResolver creates a SQL-first resolver.
//
// It checks the configuration (DB and Registry set, valid function names,
// MaxBucketsPerEvent not negative), then asks the database, in one catalog
// query, that GlobalFunction and the BucketFunction of every registered table
// exist with the arguments (text, text, jsonb, jsonb) and return text or
// setof text. Any failure is returned, naming the field or the table. The
// catalog query has no caller's context to follow: it is given 30 seconds.
func NewSQLBucketResolver(cfg SQLBucketResolverConfig) (*SQLBucketResolver, error) {
	if cfg.DB == nil {
		return nil, errors.New("synchro: SQLBucketResolverConfig.DB is required")
	}
	if cfg.Registry == nil {
		return nil, errors.New("synchro: SQLBucketResolverConfig.Registry is required")
	}
	if cfg.MaxBucketsPerEvent < 0 {
		return nil, fmt.Errorf("synchro: SQLBucketResolverConfig.MaxBucketsPerEvent is %d, want 0 (unlimited) or more", cfg.MaxBucketsPerEvent)
	}

	// users maps each function name to what configures it, for the errors.
	var names []string
	users := make(map[string]string)
	use := func(name, user string) error {
		if err := pgident.CheckQualified(name); err != nil {
			return fmt.Errorf("synchro: invalid %s %q: %w", user, name, err)
		}
		if _, seen := users[name]; !seen {
			names = append(names, name)
			users[name] = user
		}
		return nil
	}
	if cfg.GlobalFunction != "" {
		if err := use(cfg.GlobalFunction, "SQLBucketResolverConfig.GlobalFunction"); err != nil {
			return nil, err
		}
	}
	for _, t := range cfg.Registry.All() {
		if t.BucketFunction != "" {
			if err := use(t.BucketFunction, fmt.Sprintf("BucketFunction of table %q", t.TableName)); err != nil {
				return nil, err
			}
		}
	}

	r := &SQLBucketResolver{
		db:         cfg.DB,
		registry:   cfg.Registry,
		globalFunc: cfg.GlobalFunction,
		rules:      NewJoinResolverWithDB(cfg.Registry, cfg.DB),
		maxBuckets: cfg.MaxBucketsPerEvent,
		logger:     cfg.Logger,
	}
	if r.logger == nil {
		r.logger = slog.Default()
	}
	if cfg.EnableGoFallback {
		r.fallback = cfg.GoFallback
		if r.fallback == nil {
			r.fallback = r.rules
		}
	}
	if len(names) > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), bucketFunctionCheckTimeout)
		defer cancel()
		if err := checkBucketFunctions(ctx, cfg.DB, names, users); err != nil {
			return nil, err
		}
	}
	for _, name := range names {
		r.queries.Store(name, bucketFunctionQuery(name))
	}
	return r, nil
}

// checkBucketFunctionsSQL looks up each quoted function name (a JSON array
// of texts in $1) with the bucket function arguments. The row of a missing
// function has NULL catalog columns.
const checkBucketFunctionsSQL = `
SELECT f.name, p.prokind::text, format_type(p.prorettype, NULL), p.proretset
  FROM jsonb_array_elements_text($1::jsonb) AS f(name)
  LEFT JOIN pg_catalog.pg_proc AS p
    ON p.oid = to_regprocedure(f.name || '` + bucketFunctionArgs + `')`

// checkBucketFunctions verifies that every named function exists with the
// bucket function arguments and returns text or setof text. users says
// which setting names each function.
func checkBucketFunctions(ctx context.Context, db DB, names []string, users map[string]string) error {
	byQuoted := make(map[string]string, len(names))
	quoted := make([]string, 0, len(names))
	for _, name := range names {
		q := pgident.QuoteQualified(name)
		byQuoted[q] = name
		quoted = append(quoted, q)
	}
	arg, err := json.Marshal(quoted)
	if err != nil {
		return fmt.Errorf("synchro: checking bucket functions: %w", err)
	}
	rows, err := db.QueryContext(ctx, checkBucketFunctionsSQL, string(arg))
	if err != nil {
		return fmt.Errorf("synchro: checking bucket functions: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			q       string
			kind    sql.NullString
			returns sql.NullString
			set     sql.NullBool
		)
		if err := rows.Scan(&q, &kind, &returns, &set); err != nil {
			return fmt.Errorf("synchro: checking bucket functions: %w", err)
		}
		name := byQuoted[q]
		switch {
		case !kind.Valid:
			return fmt.Errorf("synchro: %s: function %s%s does not exist", users[name], q, bucketFunctionArgs)
		case kind.String != "f":
			return fmt.Errorf("synchro: %s: %s%s is not a plain function", users[name], q, bucketFunctionArgs)
		case returns.String != "text":
			ret := returns.String
			if set.Bool {
				ret = "setof " + ret
			}
			return fmt.Errorf("synchro: %s: function %s%s returns %s, want setof text or text", users[name], q, bucketFunctionArgs, ret)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("synchro: checking bucket functions: %w", err)
	}
	return nil
}

// bucketFunctionQuery returns the statement that calls the bucket function
// name, which must have passed pgident.CheckQualified.
func bucketFunctionQuery(name string) string {
	return "SELECT b FROM " + pgident.QuoteQualified(name) + "($1::text, $2::text, $3::jsonb, $4::jsonb) AS b"
}

// query returns the cached statement calling the function name, checking
// names not seen at construction (tables registered later).
func (r *SQLBucketResolver) query(name string) (string, error) {
	if q, ok := r.queries.Load(name); ok {
		return q.(string), nil
	}
	if err := pgident.CheckQualified(name); err != nil {
		return "", fmt.Errorf("invalid function name %q: %w", name, err)
	}
	q := bucketFunctionQuery(name)
	r.queries.Store(name, q)
	return q, nil
}

// AssignBuckets implements wal.BucketAssigner.
//
// It calls the table's bucket function (BucketFunction, else GlobalFunction)
// with the table name, op.String(), data as new_row and, as old_row, the
// values before the change that the WAL consumer passes along with it; a nil
// map is a SQL NULL. When the function fails and EnableGoFallback is set,
// the failure is logged and the buckets come from GoFallback instead; without
// it the error is returned. A table without a function gets the default
// buckets of the registry rules, as JoinResolver computes them with the
// resolver's DB. For those Go rules, a delete reported without data is
// resolved from its old row.
//
// The result has no duplicates and no empty ids, in the order produced. It
// fails when the table is not registered (ErrTableNotRegistered) or when the
// result has more buckets than MaxBucketsPerEvent.
func (r *SQLBucketResolver) AssignBuckets(ctx context.Context, table string, recordID string, op Operation, data map[string]any) ([]string, error) {
	cfg := r.registry.get(table)
	if cfg == nil {
		return nil, fmt.Errorf("%w: %q", ErrTableNotRegistered, table)
	}
	fn := cfg.BucketFunction
	if fn == "" {
		fn = r.globalFunc
	}

	var (
		buckets []string
		err     error
	)
	if fn == "" {
		buckets, err = r.rules.ResolveOwner(ctx, r.db, table, recordID, rulesRow(ctx, op, data))
		if err != nil {
			return nil, fmt.Errorf("synchro: default buckets of %q record %q: %w", table, recordID, err)
		}
	} else {
		buckets, err = r.callFunction(ctx, fn, table, recordID, op, data)
		if err != nil {
			return nil, err
		}
	}

	buckets = bucket.Dedupe(buckets)
	if r.maxBuckets > 0 && len(buckets) > r.maxBuckets {
		return nil, fmt.Errorf("synchro: table %q record %q: bucket fanout %d exceeds MaxBucketsPerEvent %d", table, recordID, len(buckets), r.maxBuckets)
	}
	return buckets, nil
}

// callFunction runs the bucket function fn for one change, falling back to
// the Go rules on failure when that is enabled.
func (r *SQLBucketResolver) callFunction(ctx context.Context, fn, table, recordID string, op Operation, data map[string]any) ([]string, error) {
	newRow, err := jsonArg(data)
	if err != nil {
		return nil, fmt.Errorf("synchro: table %q record %q: encoding new_row for bucket function %s: %w", table, recordID, fn, err)
	}
	old := bucket.OldRow(ctx)
	oldRow, err := jsonArg(old)
	if err != nil {
		return nil, fmt.Errorf("synchro: table %q record %q: encoding old_row for bucket function %s: %w", table, recordID, fn, err)
	}

	buckets, err := r.runFunction(ctx, fn, table, op, newRow, oldRow)
	if err == nil {
		return buckets, nil
	}
	err = fmt.Errorf("synchro: bucket function %s for table %q record %q: %w", fn, table, recordID, err)
	if r.fallback == nil || ctx.Err() != nil {
		return nil, err
	}

	r.logger.WarnContext(ctx, "synchro: bucket function failed, using the Go fallback",
		slog.String("table", table), slog.String("record_id", recordID),
		slog.String("function", fn), slog.Any("error", err))
	buckets, ferr := r.fallback.ResolveOwner(ctx, r.db, table, recordID, rulesRow(ctx, op, data))
	if ferr != nil {
		return nil, fmt.Errorf("%w; the Go fallback failed too: %w", err, ferr)
	}
	return buckets, nil
}

// runFunction executes the bucket function and collects its non-NULL
// results.
func (r *SQLBucketResolver) runFunction(ctx context.Context, fn, table string, op Operation, newRow, oldRow any) ([]string, error) {
	q, err := r.query(fn)
	if err != nil {
		return nil, err
	}
	rows, err := r.db.QueryContext(ctx, q, table, op.String(), newRow, oldRow)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var buckets []string
	for rows.Next() {
		var b sql.NullString
		if err := rows.Scan(&b); err != nil {
			return nil, err
		}
		if b.Valid {
			buckets = append(buckets, b.String)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return buckets, nil
}

// jsonArg encodes row as a JSON object parameter, or nil (SQL NULL) for a
// nil map.
func jsonArg(row map[string]any) (any, error) {
	if row == nil {
		return nil, nil
	}
	b, err := json.Marshal(row)
	if err != nil {
		return nil, err
	}
	return string(b), nil
}

// rulesRow returns the column values the Go bucket rules read for a change:
// data, or for a delete reported without data, the old row carried by ctx
// (see internal/bucket).
func rulesRow(ctx context.Context, op Operation, data map[string]any) map[string]any {
	if data == nil && op == OpDelete {
		return bucket.OldRow(ctx)
	}
	return data
}
