package synchro

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestRegisterDefaults(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  TableConfig
		want TableConfig
	}{
		{
			name: "reference table",
			cfg:  TableConfig{TableName: "categories"},
			want: TableConfig{TableName: "categories", IDColumn: "id", UpdatedAtColumn: "updated_at", DeletedAtColumn: "deleted_at", PushPolicy: PushPolicyDisabled},
		},
		{
			name: "owned table",
			cfg:  TableConfig{TableName: "lists", OwnerColumn: "user_id"},
			want: TableConfig{TableName: "lists", OwnerColumn: "user_id", IDColumn: "id", UpdatedAtColumn: "updated_at", DeletedAtColumn: "deleted_at",
				PushPolicy: PushPolicyOwnerOnly, BucketByColumn: "user_id", BucketPrefix: "user:"},
		},
		{
			name: "owned with global read",
			cfg:  TableConfig{TableName: "notes", OwnerColumn: "owner", AllowGlobalRead: true},
			want: TableConfig{TableName: "notes", OwnerColumn: "owner", AllowGlobalRead: true, GlobalWhenBucketNull: true, IDColumn: "id", UpdatedAtColumn: "updated_at", DeletedAtColumn: "deleted_at",
				PushPolicy: PushPolicyOwnerOnly, BucketByColumn: "owner", BucketPrefix: "user:"},
		},
		{
			name: "child table",
			cfg:  TableConfig{TableName: "items", ParentTable: "lists", ParentFKCol: "list_id"},
			want: TableConfig{TableName: "items", ParentTable: "lists", ParentFKCol: "list_id", IDColumn: "id", UpdatedAtColumn: "updated_at", DeletedAtColumn: "deleted_at", PushPolicy: PushPolicyOwnerOnly},
		},
		{
			name: "explicit values kept",
			cfg: TableConfig{TableName: "docs", OwnerColumn: "user_id", PushPolicy: PushPolicyDisabled, IDColumn: "doc_id", UpdatedAtColumn: "modified_at",
				DeletedAtColumn: "removed_at", BucketByColumn: "team_id", BucketPrefix: "team:"},
			want: TableConfig{TableName: "docs", OwnerColumn: "user_id", PushPolicy: PushPolicyDisabled, IDColumn: "doc_id", UpdatedAtColumn: "modified_at",
				DeletedAtColumn: "removed_at", BucketByColumn: "team_id", BucketPrefix: "team:"},
		},
		{
			name: "bucket function suppresses the owner fast path",
			cfg:  TableConfig{TableName: "docs", OwnerColumn: "user_id", BucketFunction: "app.doc_buckets"},
			want: TableConfig{TableName: "docs", OwnerColumn: "user_id", BucketFunction: "app.doc_buckets", IDColumn: "id", UpdatedAtColumn: "updated_at", DeletedAtColumn: "deleted_at", PushPolicy: PushPolicyOwnerOnly},
		},
		{
			name: "bucket column without owner gets the prefix",
			cfg:  TableConfig{TableName: "posts", BucketByColumn: "org_id"},
			want: TableConfig{TableName: "posts", BucketByColumn: "org_id", BucketPrefix: "user:", IDColumn: "id", UpdatedAtColumn: "updated_at", DeletedAtColumn: "deleted_at", PushPolicy: PushPolicyDisabled},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewRegistry()
			original := tt.cfg.clone()
			r.Register(&tt.cfg)
			got := r.Get(tt.want.TableName)
			if got == nil {
				t.Fatalf("Get(%q) = nil", tt.want.TableName)
			}
			got.protected = nil
			if !equalConfig(*got, tt.want) {
				t.Errorf("registered config\n got %+v\nwant %+v", *got, tt.want)
			}
			if !equalConfig(tt.cfg, *original) {
				t.Errorf("Register modified the caller's config: %+v", tt.cfg)
			}
		})
	}
}

// equalConfig compares the exported fields of two configs.
func equalConfig(a, b TableConfig) bool {
	a.protected, b.protected = nil, nil
	a.updatedAtDefaulted, a.deletedAtDefaulted = false, false
	b.updatedAtDefaulted, b.deletedAtDefaulted = false, false
	return reflect.DeepEqual(a, b)
}

func TestRegistryCopies(t *testing.T) {
	t.Parallel()
	r := NewRegistry()
	cfg := &TableConfig{TableName: "lists", OwnerColumn: "user_id", SyncColumns: []string{"id", "name"}}
	r.Register(cfg)
	cfg.SyncColumns[1] = "changed"
	cfg.OwnerColumn = "changed"
	got := r.Get("lists")
	if got.OwnerColumn != "user_id" || got.SyncColumns[1] != "name" {
		t.Fatalf("registry follows changes to the caller's struct: %+v", got)
	}
	got.SyncColumns[0] = "x"
	got.PushPolicy = PushPolicyDisabled
	if again := r.Get("lists"); again.SyncColumns[0] != "id" || !r.IsPushable("lists") {
		t.Fatalf("changing Get's result changed the registry: %+v", again)
	}
	all := r.All()
	all[0].TableName = "y"
	if r.All()[0].TableName != "lists" {
		t.Fatal("changing All's result changed the registry")
	}
}

func TestRegistryAccessors(t *testing.T) {
	t.Parallel()
	var r Registry // the zero value is usable
	r.Register(&TableConfig{TableName: "users", OwnerColumn: "id"})
	r.Register(&TableConfig{TableName: "categories"})
	r.Register(&TableConfig{TableName: "lists", OwnerColumn: "user_id"})
	r.Register(&TableConfig{TableName: "tags", OwnerColumn: "user_id", PushPolicy: "bogus"})

	if got, want := r.TableNames(), []string{"users", "categories", "lists", "tags"}; !slices.Equal(got, want) {
		t.Errorf("TableNames() = %v, want %v", got, want)
	}
	names := r.TableNames()
	names[0] = "changed"
	if r.TableNames()[0] != "users" {
		t.Error("TableNames returns the registry's own slice")
	}
	var allNames []string
	for _, c := range r.All() {
		allNames = append(allNames, c.TableName)
	}
	if !slices.Equal(allNames, r.TableNames()) {
		t.Errorf("All() order %v differs from TableNames() %v", allNames, r.TableNames())
	}
	for name, want := range map[string]bool{"users": true, "categories": true, "lists": true, "tags": true, "missing": false, "": false} {
		if got := r.IsRegistered(name); got != want {
			t.Errorf("IsRegistered(%q) = %v, want %v", name, got, want)
		}
	}
	for name, want := range map[string]bool{"users": true, "categories": false, "lists": true, "tags": false, "missing": false} {
		if got := r.IsPushable(name); got != want {
			t.Errorf("IsPushable(%q) = %v, want %v", name, got, want)
		}
	}
	if r.Get("missing") != nil {
		t.Error("Get of an unregistered table is not nil")
	}
}

func TestProtectedColumns(t *testing.T) {
	t.Parallel()
	r := NewRegistry()
	r.Register(&TableConfig{TableName: "lists", OwnerColumn: "user_id"})
	r.Register(&TableConfig{
		TableName: "items", ParentTable: "lists", ParentFKCol: "list_id", IDColumn: "item_id",
		UpdatedAtColumn: "modified_at", DeletedAtColumn: "removed_at", ProtectedColumns: []string{"server_note"},
	})
	items := r.Get("items")
	for _, col := range []string{"item_id", "modified_at", "removed_at", "created_at", "updated_at", "deleted_at", "list_id", "server_note"} {
		if !items.IsProtected(col) {
			t.Errorf("items: %q is not protected", col)
		}
	}
	for _, col := range []string{"title", "id", "user_id", ""} {
		if items.IsProtected(col) {
			t.Errorf("items: %q is protected", col)
		}
	}

	data := []string{"title", "modified_at", "item_id", "done", "server_note", "list_id", "created_at", "notes"}
	if got, want := items.AllowedInsertColumns(data), []string{"title", "item_id", "done", "list_id", "notes"}; !slices.Equal(got, want) {
		t.Errorf("AllowedInsertColumns = %v, want %v", got, want)
	}
	if got, want := items.AllowedUpdateColumns(data), []string{"title", "done", "notes"}; !slices.Equal(got, want) {
		t.Errorf("AllowedUpdateColumns = %v, want %v", got, want)
	}
	lists := r.Get("lists")
	data = []string{"name", "user_id", "id", "updated_at"}
	if got, want := lists.AllowedInsertColumns(data), []string{"name", "user_id", "id"}; !slices.Equal(got, want) {
		t.Errorf("lists AllowedInsertColumns = %v, want %v", got, want)
	}
	if got, want := lists.AllowedUpdateColumns(data), []string{"name"}; !slices.Equal(got, want) {
		t.Errorf("lists AllowedUpdateColumns = %v, want %v", got, want)
	}

	// A config built by hand, never registered, still answers.
	manual := &TableConfig{TableName: "x", IDColumn: "id", OwnerColumn: "owner"}
	if !manual.IsProtected("owner") || !manual.IsProtected("id") || manual.IsProtected("name") {
		t.Error("unregistered config: wrong protected set")
	}
	if got := manual.AllowedUpdateColumns(nil); len(got) != 0 {
		t.Errorf("AllowedUpdateColumns(nil) = %v", got)
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	lists := TableConfig{TableName: "lists", OwnerColumn: "user_id"}
	tests := []struct {
		name     string
		tables   []*TableConfig
		sentinel error  // nil: no sentinel expected
		contains string // "" with a nil sentinel: Validate must succeed
	}{
		{name: "empty registry"},
		{name: "valid tree", tables: []*TableConfig{
			{TableName: "lists", OwnerColumn: "user_id"},
			{TableName: "items", ParentTable: "lists", ParentFKCol: "list_id", Dependencies: []string{"lists"}},
			{TableName: "notes", ParentTable: "items", ParentFKCol: "item_id", SyncColumns: []string{"id", "body"}},
			{TableName: "categories"},
			{TableName: "app.settings", OwnerColumn: "user_id", AllowGlobalRead: true, ProtectedColumns: []string{"plan"}},
			{TableName: "Mixed Case", BucketFunction: `app.bucket_for`},
			{TableName: "owner_and_parent", OwnerColumn: "user_id", ParentTable: "lists", ParentFKCol: "list_id"},
		}},
		{name: "nil config", tables: []*TableConfig{nil}, contains: "nil TableConfig"},
		{name: "empty name", tables: []*TableConfig{{TableName: ""}}, contains: "empty TableName"},
		{name: "duplicate name", tables: []*TableConfig{{TableName: "a"}, {TableName: "a"}}, contains: `"a" registered more than once`},
		{name: "too many dots", tables: []*TableConfig{{TableName: "a.b.c"}}, contains: "more than one dot"},
		{name: "empty schema part", tables: []*TableConfig{{TableName: ".b"}}, contains: "invalid TableName"},
		{name: "too long name", tables: []*TableConfig{{TableName: strings.Repeat("t", 64)}}, contains: "longer than 63"},
		{name: "control character", tables: []*TableConfig{{TableName: "a\x00b"}}, contains: "control character"},
		{name: "padded column name", tables: []*TableConfig{{TableName: "a", OwnerColumn: " user_id"}}, contains: "invalid OwnerColumn"},
		{name: "empty sync columns", tables: []*TableConfig{{TableName: "a", SyncColumns: []string{}}}, contains: "SyncColumns is empty"},
		{name: "duplicate sync column", tables: []*TableConfig{{TableName: "a", SyncColumns: []string{"id", "id"}}}, contains: `"id" twice`},
		{name: "empty sync column", tables: []*TableConfig{{TableName: "a", SyncColumns: []string{""}}}, contains: "invalid SyncColumns entry"},
		{name: "invalid push policy", tables: []*TableConfig{{TableName: "a", OwnerColumn: "u", PushPolicy: "everyone"}}, sentinel: ErrInvalidPushPolicy},
		{name: "global when null without global read", tables: []*TableConfig{{TableName: "a", OwnerColumn: "u", GlobalWhenBucketNull: true}}, sentinel: ErrInvalidBucketConfig},
		{name: "bucket column and function", tables: []*TableConfig{{TableName: "a", BucketByColumn: "org", BucketFunction: "f"}}, sentinel: ErrInvalidBucketConfig, contains: "mutually exclusive"},
		{name: "bad bucket function", tables: []*TableConfig{{TableName: "a", BucketFunction: "x.y.z"}}, sentinel: ErrInvalidBucketConfig, contains: "BucketFunction"},
		{name: "redundant created_at", tables: []*TableConfig{{TableName: "a", ProtectedColumns: []string{"created_at"}}}, sentinel: ErrRedundantProtected},
		{name: "redundant id", tables: []*TableConfig{{TableName: "a", IDColumn: "pk", ProtectedColumns: []string{"pk"}}}, sentinel: ErrRedundantProtected},
		{name: "redundant owner", tables: []*TableConfig{{TableName: "a", OwnerColumn: "u", ProtectedColumns: []string{"u"}}}, sentinel: ErrRedundantProtected},
		{name: "redundant custom timestamp", tables: []*TableConfig{{TableName: "a", UpdatedAtColumn: "modified_at", ProtectedColumns: []string{"modified_at"}}}, sentinel: ErrRedundantProtected},
		{name: "redundant parent fk", tables: []*TableConfig{&lists, {TableName: "b", ParentTable: "lists", ParentFKCol: "list_id", ProtectedColumns: []string{"list_id"}}}, sentinel: ErrRedundantProtected},
		{name: "protected listed twice", tables: []*TableConfig{{TableName: "a", ProtectedColumns: []string{"x", "x"}}}, sentinel: ErrRedundantProtected},
		{name: "unregistered parent", tables: []*TableConfig{{TableName: "b", ParentTable: "nowhere", ParentFKCol: "p"}}, sentinel: ErrUnregisteredParent},
		{name: "missing parent fk", tables: []*TableConfig{&lists, {TableName: "b", ParentTable: "lists"}}, sentinel: ErrMissingParentFKCol},
		{name: "fk without parent", tables: []*TableConfig{{TableName: "b", ParentFKCol: "list_id"}}, contains: "without ParentTable"},
		{name: "self parent", tables: []*TableConfig{{TableName: "a", ParentTable: "a", ParentFKCol: "p"}}, sentinel: ErrCycleDetected},
		{name: "two table cycle", tables: []*TableConfig{
			{TableName: "a", ParentTable: "b", ParentFKCol: "b_id"},
			{TableName: "b", ParentTable: "a", ParentFKCol: "a_id"},
		}, sentinel: ErrCycleDetected},
		{name: "cycle above the table", tables: []*TableConfig{
			{TableName: "leaf", ParentTable: "a", ParentFKCol: "a_id"},
			{TableName: "a", ParentTable: "b", ParentFKCol: "b_id"},
			{TableName: "b", ParentTable: "a", ParentFKCol: "a_id"},
		}, sentinel: ErrCycleDetected},
		{name: "orphaned chain", tables: []*TableConfig{
			{TableName: "root"},
			{TableName: "child", ParentTable: "root", ParentFKCol: "root_id"},
		}, sentinel: ErrOrphanedChain},
		{name: "orphaned chain despite an owned middle", tables: []*TableConfig{
			{TableName: "root"},
			{TableName: "mid", OwnerColumn: "u", ParentTable: "root", ParentFKCol: "root_id"},
			{TableName: "leaf", ParentTable: "mid", ParentFKCol: "mid_id"},
		}, sentinel: ErrOrphanedChain},
		{name: "pushable without ownership", tables: []*TableConfig{{TableName: "a", PushPolicy: PushPolicyOwnerOnly}}, sentinel: ErrMissingOwnership},
		{name: "bucket column is not ownership", tables: []*TableConfig{{TableName: "a", PushPolicy: PushPolicyOwnerOnly, BucketByColumn: "org"}}, sentinel: ErrMissingOwnership},
		{name: "unregistered dependency", tables: []*TableConfig{{TableName: "a", Dependencies: []string{"b"}}}, sentinel: ErrTableNotRegistered},
		{name: "self dependency", tables: []*TableConfig{{TableName: "a", Dependencies: []string{"a"}}}, sentinel: ErrTableNotRegistered},
		{name: "first problem wins", tables: []*TableConfig{
			{TableName: "first", OwnerColumn: "u", PushPolicy: "x"},
			{TableName: "second", ParentTable: "second", ParentFKCol: "p"},
		}, sentinel: ErrInvalidPushPolicy, contains: `"first"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewRegistry()
			for _, c := range tt.tables {
				r.Register(c)
			}
			err := r.Validate()
			if tt.sentinel == nil && tt.contains == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatal("Validate() = nil, want an error")
			}
			if tt.sentinel != nil && !errors.Is(err, tt.sentinel) {
				t.Errorf("Validate() = %v, want it to wrap %v", err, tt.sentinel)
			}
			if !strings.Contains(err.Error(), tt.contains) {
				t.Errorf("Validate() = %q, want it to contain %q", err, tt.contains)
			}
			if !strings.HasPrefix(err.Error(), "synchro: ") {
				t.Errorf("Validate() = %q, want the synchro: prefix", err)
			}
			// Errors about one table name it.
			if tt.sentinel != nil {
				var named bool
				for _, c := range tt.tables {
					named = named || (c != nil && strings.Contains(err.Error(), `table "`+c.TableName+`"`))
				}
				if !named {
					t.Errorf("Validate() = %q does not name the table", err)
				}
			}
		})
	}
}
