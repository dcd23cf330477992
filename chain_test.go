package synchro

import (
	"errors"
	"slices"
	"testing"
)

func TestChainRebuiltAfterRegister(t *testing.T) {
	t.Parallel()
	reg := NewRegistry()
	reg.Register(&TableConfig{TableName: "lists", OwnerColumn: "user_id"})
	if err := reg.Validate(); err != nil {
		t.Fatal(err)
	}
	if ch := reg.chain("items"); ch != nil {
		t.Fatalf("chain of an unregistered table: %+v", ch)
	}
	// A table registered after Validate gets its chain on the next read.
	reg.Register(&TableConfig{TableName: "items", ParentTable: "lists", ParentFKCol: "list_id"})
	if got := reg.chain("items").ancestorNames(); !slices.Equal(got, []string{"lists"}) {
		t.Fatalf("ancestors of items = %q, want [lists]", got)
	}
}

func TestChainUpTo(t *testing.T) {
	t.Parallel()
	reg := NewRegistry()
	for _, c := range []*TableConfig{
		{TableName: "users", OwnerColumn: "id"},
		{TableName: "teams", BucketByColumn: "team_id", ParentTable: "users", ParentFKCol: "user_id"},
		{TableName: "projects", ParentTable: "teams", ParentFKCol: "team_id"},
		{TableName: "loose", ParentTable: "teams"},
		{TableName: "under_loose", ParentTable: "loose", ParentFKCol: "loose_id"},
		{TableName: "a", ParentTable: "b", ParentFKCol: "b_id"},
		{TableName: "b", ParentTable: "a", ParentFKCol: "a_id"},
		{TableName: "refs"},
		{TableName: "under_refs", ParentTable: "refs", ParentFKCol: "ref_id"},
	} {
		reg.Register(c)
	}
	for _, tc := range []struct {
		table  string
		isRoot func(*TableConfig) bool
		want   []string
		err    error
	}{
		{"projects", bucketsRoot, []string{"teams"}, nil},
		{"projects", ownerRoot, []string{"teams", "users"}, nil},
		{"under_loose", ownerRoot, nil, ErrMissingParentFKCol},
		{"a", ownerRoot, nil, ErrCycleDetected},
		{"under_refs", ownerRoot, nil, ErrOrphanedChain},
		{"nowhere", ownerRoot, nil, ErrTableNotRegistered},
	} {
		ch, err := reg.chain(tc.table).upTo(tc.isRoot)
		if !errors.Is(err, tc.err) || (err == nil && !slices.Equal(ch.ancestorNames(), tc.want)) {
			t.Errorf("%s: upTo = %v, %v; want %q, %v", tc.table, ch.ancestorNames(), err, tc.want, tc.err)
		}
	}
}

func TestChainJoinAliases(t *testing.T) {
	t.Parallel()
	reg := NewRegistry()
	reg.Register(&TableConfig{TableName: "app.lists", OwnerColumn: "user_id"})
	reg.Register(&TableConfig{TableName: "items", ParentTable: "app.lists", ParentFKCol: "list_id"})
	reg.Register(&TableConfig{TableName: "notes", ParentTable: "items", ParentFKCol: "item_id"})
	ch, err := reg.chain("notes").upTo(ownerRoot)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ child, from, on, root string }{
		{"x",
			`"items" AS "synchro_parent_1" JOIN "app"."lists" AS "synchro_parent_2" ON "synchro_parent_2"."id" = "synchro_parent_1"."list_id"`,
			`"synchro_parent_1"."id" = k`, `"synchro_parent_2"`},
		// A statement that names the child row like an alias gets the others.
		{"synchro_parent_2",
			`"items" AS "synchro_ancestor_1" JOIN "app"."lists" AS "synchro_ancestor_2" ON "synchro_ancestor_2"."id" = "synchro_ancestor_1"."list_id"`,
			`"synchro_ancestor_1"."id" = k`, `"synchro_ancestor_2"`},
	} {
		j := ch.join(tc.child, "k")
		if j.from != tc.from || j.on != tc.on || j.root != tc.root {
			t.Errorf("join for child %q:\n got %q %q %q\nwant %q %q %q", tc.child, j.from, j.on, j.root, tc.from, tc.on, tc.root)
		}
	}
}
