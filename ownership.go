package synchro

import "context"

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
