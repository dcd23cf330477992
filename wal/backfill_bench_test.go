package wal

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/synchrosync/synchro/internal/pgtest"
)

// BenchmarkBackfill measures a new slot's record of existing rows (the
// backfill of a first start): N rows of events, one bucket each (50
// users), are in the table before the consumer first starts; an iteration
// creates the slot, records every row's buckets, and stops. It reports
// rows/s and the consumer process's peak Go heap during the record, less
// the heap before it (sampled every 5 ms), per row (heap_B/row) and in
// all (peak_heap_MB): the record is written in parts of MaxBatchEvents
// rows, so the peak should not grow with N. With -short, N is a tenth.
//
//	go test -run '^$' -bench Backfill -benchtime 1x ./wal/
func BenchmarkBackfill(b *testing.B) {
	sizes := []int{100000, 400000, 1000000}
	if testing.Short() {
		sizes = []int{10000, 40000}
	}
	for _, n := range sizes {
		b.Run(fmt.Sprintf("rows=%d", n), func(b *testing.B) {
			var rowsPerSec, perRow, peakMB float64
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				e := newBenchEnv(b)
				writeEvents(b, e.db.Super, 1, n, max(1, n/50000))
				runtime.GC()
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				base := ms.HeapAlloc
				var peak atomic.Uint64
				done := make(chan struct{})
				var wg sync.WaitGroup
				wg.Add(1)
				go func() { // samples the heap while the slot is made
					defer wg.Done()
					t := time.NewTicker(5 * time.Millisecond)
					defer t.Stop()
					for {
						var m runtime.MemStats
						runtime.ReadMemStats(&m)
						if m.HeapAlloc > peak.Load() {
							peak.Store(m.HeapAlloc)
						}
						select {
						case <-done:
							return
						case <-t.C:
						}
					}
				}()
				b.StartTimer()
				start := time.Now()
				stop := e.run(b)
				took := time.Since(start)
				b.StopTimer()
				close(done)
				wg.Wait()
				stop()
				if got := e.changelogCount(b); got != 0 {
					b.Fatalf("the first record wrote %d changelog rows, want none", got)
				}
				if got := pgtestCount(b, e); got != n {
					b.Fatalf("%d bucket edges recorded, want %d", got, n)
				}
				grown := float64(peak.Load()) - float64(base)
				rowsPerSec += float64(n) / took.Seconds()
				perRow += grown / float64(n)
				peakMB += grown / (1 << 20)
			}
			k := float64(b.N)
			b.ReportMetric(rowsPerSec/k, "rows/s")
			b.ReportMetric(perRow/k, "heap_B/row")
			b.ReportMetric(peakMB/k, "peak_heap_MB")
		})
	}
}

// pgtestCount is the number of bucket edges of events.
func pgtestCount(b *testing.B, e *benchEnv) int {
	return pgtest.Count(b, e.db.Super, `SELECT count(*) FROM synchro.bucket_edges WHERE table_name = 'events'`)
}
