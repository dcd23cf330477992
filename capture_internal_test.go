package synchro

import (
	"testing"
	"time"
)

// walSamples tells how long the server's WAL has been past a position,
// from the positions it was given and when.
func TestWALSamplesBehindFor(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var w walSamples
	if got := w.behindFor(0, t0); got != 0 {
		t.Errorf("no samples: %v, want 0", got)
	}
	w.add(100, t0)
	w.add(100, t0.Add(5*time.Second))          // no move: not kept
	w.add(200, t0.Add(10*time.Second))         // kept
	w.add(250, t0.Add(10500*time.Millisecond)) // within the spacing: not kept
	w.add(300, t0.Add(20*time.Second))
	now := t0.Add(30 * time.Second)
	tests := []struct {
		confirmed uint64
		want      time.Duration
	}{
		{50, 30 * time.Second},  // beyond every sample: since the oldest
		{100, 20 * time.Second}, // first passed at 10s
		{199, 20 * time.Second},
		{200, 10 * time.Second},
		{250, 10 * time.Second},
		{300, 0}, // no sample beyond it
		{400, 0},
	}
	for _, tt := range tests {
		if got := w.behindFor(tt.confirmed, now); got != tt.want {
			t.Errorf("behindFor(%d) = %v, want %v", tt.confirmed, got, tt.want)
		}
	}
	// A position going back (another server) starts over.
	w.add(10, t0.Add(25*time.Second))
	if got := w.behindFor(5, now); got != 5*time.Second {
		t.Errorf("after a position went back: %v, want 5s", got)
	}
	// The number of samples is bounded.
	for i := range 3 * maxWALSamples {
		w.add(uint64(1000+i), t0.Add(time.Duration(i)*time.Minute))
	}
	if len(w.s) != maxWALSamples {
		t.Errorf("%d samples kept, want %d", len(w.s), maxWALSamples)
	}
}

func TestLSNText(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		lsn  int64
		want string
	}{{0, "0/0"}, {0x16B374D848, "16/B374D848"}, {0x1000000FF, "1/FF"}} {
		if got := lsnText(tt.lsn); got != tt.want {
			t.Errorf("lsnText(%#x) = %q, want %q", tt.lsn, got, tt.want)
		}
	}
}
