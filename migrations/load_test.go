package migrations

import (
	"strings"
	"testing"
	"testing/fstest"
)

func TestParseName(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		version int64
		wantErr string // substring; empty means success
	}{
		{name: "0001_init.sql", version: 1},
		{name: "42_add_things.sql", version: 42},
		{name: "9223372036854775807_max.sql", version: 9223372036854775807},
		{name: "init.sql", wantErr: "not of the form"},
		{name: "_init.sql", wantErr: "not of the form"},
		{name: "0001.sql", wantErr: "not of the form"},
		{name: "0001_.sql", wantErr: "not of the form"},
		{name: "0001-init.sql", wantErr: "not of the form"},
		{name: "0001_init.txt", wantErr: "not of the form"},
		{name: "0000_zero.sql", wantErr: "greater than zero"},
		{name: "9223372036854775808_overflow.sql", wantErr: "out of range"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			version, err := parseName(tt.name)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("parseName(%q) error = %v, want one containing %q", tt.name, err, tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.name) {
					t.Errorf("error %q does not name the file %q", err, tt.name)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseName(%q): %v", tt.name, err)
			}
			if version != tt.version {
				t.Errorf("parseName(%q) = %d, want %d", tt.name, version, tt.version)
			}
		})
	}
}

func TestLoad(t *testing.T) {
	t.Parallel()
	sql := &fstest.MapFile{Data: []byte("SELECT 1;\n")}
	tests := []struct {
		name    string
		fsys    fstest.MapFS
		want    []Migration // when wantErr is empty
		wantErr string
	}{
		{
			name: "sorted numerically, other files ignored",
			fsys: fstest.MapFS{
				"10_c.sql":    sql,
				"2_b.sql":     sql,
				"0001_a.sql":  sql,
				"README.md":   {Data: []byte("not a migration")},
				"sub/3_x.sql": sql,
			},
			want: []Migration{{1, "0001_a.sql"}, {2, "2_b.sql"}, {10, "10_c.sql"}},
		},
		{
			name:    "duplicate version",
			fsys:    fstest.MapFS{"0001_a.sql": sql, "1_b.sql": sql},
			wantErr: "same version 1",
		},
		{
			name:    "malformed name",
			fsys:    fstest.MapFS{"0001_a.sql": sql, "b.sql": sql},
			wantErr: `"b.sql"`,
		},
		{
			name:    "empty file",
			fsys:    fstest.MapFS{"0001_a.sql": {Data: []byte(" \n")}},
			wantErr: "0001_a.sql is empty",
		},
		{
			name:    "no files",
			fsys:    fstest.MapFS{},
			wantErr: "no .sql files",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			files, err := load(tt.fsys)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("load error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("load: %v", err)
			}
			if len(files) != len(tt.want) {
				t.Fatalf("load returned %d files, want %d", len(files), len(tt.want))
			}
			for i, f := range files {
				if f.Migration != tt.want[i] {
					t.Errorf("file %d = %+v, want %+v", i, f.Migration, tt.want[i])
				}
				if len(f.checksum) != 64 {
					t.Errorf("checksum of %s = %q, want 64 hex digits", f.Name, f.checksum)
				}
			}
		})
	}
}
