package wal

import "time"

// testSignalBuffer is how many signals of one kind a test may leave
// unreceived: a standby signals about once a second.
const testSignalBuffer = 1000

// signalTimeout bounds every wait for a signal.
const signalTimeout = 30 * time.Second

// init makes every signal deliver. Call it before Start.
func (s *consumerSignals) init() {
	s.streaming.init()
	s.standby.init()
	s.reconnecting.init()
	s.slotCreated.init()
	s.slotLost.init()
	s.tablesAdded.init()
	s.writersAwaited.init()
	s.backfilled.init()
	s.edgesRaced.init()
}

func (s *testSignal[T]) init() { s.ch = make(chan T, testSignalBuffer) }

// received returns the next signal if one is pending.
func (s *testSignal[T]) received() (T, bool) {
	select {
	case v := <-s.ch:
		return v, true
	default:
		var zero T
		return zero, false
	}
}

// drain receives every pending signal and returns them.
func (s *testSignal[T]) drain() []T {
	var out []T
	for {
		v, ok := s.received()
		if !ok {
			return out
		}
		out = append(out, v)
	}
}

// count receives every pending signal and returns how many there were.
func (s *testSignal[T]) count() int { return len(s.drain()) }

// await receives the next signal s of r's consumer, waiting up to
// signalTimeout. It fails the test when Start returns first, or on the
// timeout.
func await[T any](r *running, what string, s *testSignal[T]) T {
	t := r.t
	t.Helper()
	if s.ch == nil {
		t.Fatalf("waiting for %s: the consumer's signals are not initialised (use newTestConsumer)", what)
	}
	if v, ok := s.received(); ok {
		return v
	}
	timeout := time.NewTimer(signalTimeout)
	defer timeout.Stop()
	select {
	case v := <-s.ch:
		return v
	case <-r.done:
		if v, ok := s.received(); ok { // signalled just before returning
			return v
		}
		t.Fatalf("waiting for %s: Start returned %v", what, r.err)
	case <-timeout.C:
		t.Fatalf("timed out after %v waiting for %s (status %+v)", signalTimeout, what, r.c.Status())
	}
	var zero T
	return zero
}
