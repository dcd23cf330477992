package pgtest_test

import (
	"fmt"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/synchrosync/synchro/internal/pgtest"
)

// fatalTB records the failure of a helper instead of failing the test.
type fatalTB struct {
	testing.TB
	msg string
}

func (f *fatalTB) Helper() {}

func (f *fatalTB) Fatal(args ...any) {
	f.msg = fmt.Sprint(args...)
	runtime.Goexit()
}

func (f *fatalTB) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// failure runs f with a fatalTB on a goroutine of its own and returns
// what f failed with, or "" when it did not fail.
func failure(t *testing.T, f func(tb testing.TB)) string {
	t.Helper()
	tb := &fatalTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		f(tb)
	}()
	<-done
	return tb.msg
}

func TestExecQueryRowCount(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDatabase(t)
	pgtest.Exec(t, db.Super, `CREATE TABLE kv (k text PRIMARY KEY, v int); INSERT INTO kv VALUES ('a', 1)`)
	if res := pgtest.Exec(t, db.Super, `INSERT INTO kv VALUES ($1, $2), ($3, $4)`, "b", 2, "c", 3); res == nil {
		t.Fatal("Exec returned no result")
	} else if n, err := res.RowsAffected(); err != nil || n != 2 {
		t.Errorf("RowsAffected = %d, %v; want 2", n, err)
	}
	var (
		k string
		v int
	)
	pgtest.QueryRow(t, db.Super, `SELECT k, v FROM kv WHERE v = $1`, 2).Scan(&k, &v)
	if k != "b" || v != 2 {
		t.Errorf("QueryRow read %q, %d; want b, 2", k, v)
	}
	if n := pgtest.Count(t, db.Super, `SELECT count(*) FROM kv WHERE v > $1`, 1); n != 2 {
		t.Errorf("Count = %d, want 2", n)
	}
	tx, err := db.Super.BeginTx(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback() }()
	pgtest.Exec(t, tx, `DELETE FROM kv`)
	if n := pgtest.Count(t, tx, `SELECT count(*) FROM kv`); n != 0 {
		t.Errorf("Count in the transaction = %d, want 0", n)
	}

	for _, tc := range []struct {
		name string
		f    func(tb testing.TB)
		want string
	}{
		{"Exec", func(tb testing.TB) { pgtest.Exec(tb, db.Super, `INSERT INTO nowhere VALUES (1)`) }, `exec "INSERT INTO nowhere VALUES (1)": `},
		{"QueryRow", func(tb testing.TB) { pgtest.QueryRow(tb, db.Super, `SELECT v FROM kv WHERE k = 'zz'`).Scan(&v) }, "no rows"},
		{"Count of NULL", func(tb testing.TB) { pgtest.Count(tb, db.Super, `SELECT max(v) FROM kv WHERE false`) }, `query "SELECT max(v)`},
	} {
		if got := failure(t, tc.f); !strings.Contains(got, tc.want) {
			t.Errorf("%s failed with %q, want %q in it", tc.name, got, tc.want)
		}
	}
}

func TestWaitFor(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	took := pgtest.WaitFor(t, "three calls", 10*time.Second, func() (bool, string) {
		return calls.Add(1) == 3, ""
	})
	if calls.Load() != 3 || took <= 0 || took > 5*time.Second {
		t.Errorf("WaitFor returned after %d calls and %v; want 3 calls, soon", calls.Load(), took)
	}

	begin := time.Now()
	msg := failure(t, func(tb testing.TB) {
		pgtest.WaitFor(tb, "the impossible", 50*time.Millisecond, func() (bool, string) { return false, "still not" })
	})
	if want := "timed out after 50ms waiting for the impossible (still not)"; msg != want {
		t.Errorf("WaitFor failed with %q, want %q", msg, want)
	}
	if d := time.Since(begin); d < 50*time.Millisecond {
		t.Errorf("WaitFor gave up after %v, before its timeout", d)
	}

	if _, err := pgtest.Poll("nothing", 20*time.Millisecond, func() (bool, string) { return false, "" }); err == nil ||
		err.Error() != "timed out after 20ms waiting for nothing" {
		t.Errorf("Poll = %v, want a timeout", err)
	}
}
