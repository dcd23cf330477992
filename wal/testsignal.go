package wal

import "github.com/jackc/pglogrepl"

// consumerSignals are the events of a Consumer that tests wait for, so
// that they need neither read its logs nor sleep. Their zero value does
// nothing: unless a test initialised them (before Start), a signal costs
// a nil check.
type consumerSignals struct {
	// streaming: a session streams, from this position.
	streaming testSignal[pglogrepl.LSN]
	// standby: a session found the slot in use by another consumer; it
	// tries again.
	standby testSignal[struct{}]
	// reconnecting: a session ended in this error (not a standby); it is
	// retried.
	reconnecting testSignal[error]
	// slotCreated: the slot was created, starting at this position, and
	// the buckets of the existing rows recorded.
	slotCreated testSignal[pglogrepl.LSN]
	// slotLost: the recorded position has no slot any more (it was
	// dropped); it is about to be recreated.
	slotLost testSignal[struct{}]
	// tablesAdded: these tables were added to the publication.
	tablesAdded testSignal[[]string]
	// writersAwaited: before recording the rows of added tables, the
	// session waits for these transactions (virtual ids, an array's text)
	// writing them to end.
	writersAwaited testSignal[string]
	// backfilled: the buckets of the existing rows of these tables were
	// recorded.
	backfilled testSignal[[]string]
	// edgesRaced: a batch found some of the bucket edges it inserts stored
	// meanwhile, and inserted the others.
	edgesRaced testSignal[struct{}]
}

// testSignal is one event of consumerSignals, delivered on a buffered
// channel that only tests create.
type testSignal[T any] struct {
	ch chan T
}

// signal delivers v to the test that initialised s, if any. It never
// blocks: a test that lets the buffer fill up is stopped with a panic,
// since the events it counts would no longer be true.
func (s *testSignal[T]) signal(v T) {
	if s.ch == nil {
		return
	}
	select {
	case s.ch <- v:
	default:
		panic("wal: the buffer of a test signal is full: the test does not receive what it initialised")
	}
}
