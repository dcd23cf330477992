package bucket

import "context"

// This file carries the old row of a change from the WAL consumer to a
// bucket resolver through the context, so that BucketAssigner keeps its
// documented signature while SQL bucket functions still receive old_row.

type oldRowKey struct{}

// WithOldRow returns ctx carrying the row's values before the change
// (updates and deletes). A nil row means the old values are unknown.
func WithOldRow(ctx context.Context, old map[string]any) context.Context {
	return context.WithValue(ctx, oldRowKey{}, old)
}

// OldRow returns the old row carried by ctx, or nil.
func OldRow(ctx context.Context) map[string]any {
	old, _ := ctx.Value(oldRowKey{}).(map[string]any)
	return old
}
