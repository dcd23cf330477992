package synchro

import (
	"fmt"
	"testing"
)

// The hub wakes the waiters of the buckets named and no other; a waiter
// that was reading when one of its buckets was announced reads again, one
// whose buckets were not announced does not.
func TestLiveHubRouting(t *testing.T) {
	h := newLiveHub()
	amy, bob, carol, dave := h.join(), h.join(), h.join(), h.join()
	if h.watch(amy, []string{"user:amy", "global"}) || h.watch(bob, []string{"user:bob", "global"}) {
		t.Fatal("a waiter read again though nothing was announced")
	}
	h.wake([]string{"user:amy", "user:dave"}) // carol and dave are reading
	if !woken(amy) || woken(bob) {
		t.Error("a change to user:amy must wake amy's waiter only")
	}
	if h.watch(carol, []string{"user:carol"}) {
		t.Error("carol read again, though only other users' buckets were announced during her read")
	}
	if !h.watch(dave, []string{"user:dave"}) {
		t.Error("dave must read again: his bucket was announced during his read")
	}
	if h.watch(dave, []string{"user:dave"}) {
		t.Error("dave's second read must clear what he missed")
	}
	h.pend(amy)
	h.wake([]string{"global"})
	if !h.watch(amy, []string{"user:amy", "global"}) {
		t.Error("a wake-up during the read must make the waiter read again")
	}
	if !woken(bob) {
		t.Error("a change to global must wake bob's waiter")
	}
	h.pend(carol)
	var many []string
	for i := range maxMissed + 1 {
		many = append(many, fmt.Sprint("user:x", i))
	}
	h.wake(many)
	if !h.watch(carol, []string{"user:carol"}) {
		t.Error("past maxMissed buckets during a read, any waiter must read again")
	}
	h.wakeAll()
	if !h.watch(carol, []string{"user:carol"}) {
		t.Error("after a wake of all during a read, the waiter must read again")
	}
	for _, w := range []*waiter{amy, bob, carol, dave} {
		h.leave(w)
	}
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
