package synchro

import (
	"fmt"
	"testing"
)

// The hub wakes the waiters of the buckets named and no other, and a
// wake-up that arrives while a waiter reads makes it read again.
func TestLiveHubRouting(t *testing.T) {
	h := newLiveHub()
	amy, bob, reading := h.join(), h.join(), h.join()
	if h.watch(amy, []string{"user:amy", "global"}) || h.watch(bob, []string{"user:bob", "global"}) {
		t.Fatal("a waiter reported a wake-up nobody sent")
	}
	h.wake([]string{"user:amy"})
	if !woken(amy) || woken(bob) {
		t.Error("a change to user:amy must wake amy's waiter only")
	}
	if !woken(reading) {
		t.Error("a waiter that is reading must be woken by any change")
	}
	h.pend(amy)
	h.wake([]string{"global"})
	if !h.watch(amy, []string{"user:amy"}) {
		t.Error("a wake-up during the read must make the waiter read again")
	}
	if !woken(bob) {
		t.Error("a change to global must wake bob's waiter")
	}
	h.leave(amy)
	h.leave(bob)
	h.leave(reading)
	if n := h.waiting(); n != 0 || len(h.byBucket) != 0 {
		t.Errorf("after every waiter left: %d waiting, %d buckets filed", n, len(h.byBucket))
	}
}

// woken reports and consumes a pending wake-up of w.
func woken(w *waiter) bool {
	select {
	case <-w.wake:
		return true
	default:
		return false
	}
}

// BenchmarkLiveWake is the cost of routing one notification of one bucket
// with 10,000 waiting pulls filed under their own user's bucket and a
// shared one: it must not grow with the waiters.
func BenchmarkLiveWake(b *testing.B) {
	for _, n := range []int{100, 10000} {
		b.Run(fmt.Sprint("waiters=", n), func(b *testing.B) {
			h := newLiveHub()
			ws := make([]*waiter, n)
			for i := range ws {
				ws[i] = h.join()
				h.watch(ws[i], []string{fmt.Sprint("user:", i), "global"})
			}
			note := []string{"user:7"}
			b.ResetTimer()
			for range b.N {
				h.wake(note)
				<-ws[7].wake
			}
		})
	}
}
