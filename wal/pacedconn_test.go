package wal

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/synchrosync/synchro/internal/pgtest"
)

// tcpPair returns the two ends of a loopback TCP connection, the reading
// end paced by pause.
func tcpPair(t *testing.T, pause time.Duration) (reader *pacedConn, writer net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ln.Close() }()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			accepted <- nil
			return
		}
		accepted <- c
	}()
	dialed, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	writer = <-accepted
	if writer == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { _ = dialed.Close(); _ = writer.Close() })
	return newPacedConn(dialed, pause), writer
}

// TestPacedConnGathersSmallWrites: small messages sent one by one while
// the reader waits after each read that emptied the socket arrive in a
// few reads, whole and in order.
func TestPacedConnGathersSmallWrites(t *testing.T) {
	const pause = 20 * time.Millisecond
	r, w := tcpPair(t, pause)
	const msgs = 200
	go func() {
		for i := range msgs {
			if _, err := w.Write([]byte{byte(i)}); err != nil {
				return
			}
			time.Sleep(200 * time.Microsecond)
		}
		_ = w.Close()
	}()
	var got []byte
	reads := 0
	buf := make([]byte, 8192)
	for {
		n, err := r.Read(buf)
		reads++
		got = append(got, buf[:n]...)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(got) != msgs {
		t.Fatalf("read %d bytes, want %d", len(got), msgs)
	}
	for i, b := range got {
		if b != byte(i) {
			t.Fatalf("byte %d is %d", i, b)
		}
	}
	// 200 sends 200 us apart take at least 40 ms: unpaced, a reader
	// waiting for each would make about 200 reads; paced by 20 ms, a few.
	if reads > 20 {
		t.Errorf("%d reads for %d small writes, want at most 20", reads, msgs)
	}
}

// TestPacedConnFullReadsDoNotWait: a read that fills its buffer is not
// followed by a wait.
func TestPacedConnFullReadsDoNotWait(t *testing.T) {
	r, w := tcpPair(t, time.Hour)
	if _, err := w.Write(make([]byte, 64)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 16)
	if err := r.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	for range 4 {
		if _, err := io.ReadFull(r, buf); err != nil {
			t.Fatal(err)
		}
	}
}

// drainedPacedConn returns a paced connection (pausing an hour) whose
// last read emptied its socket: its next read waits.
func drainedPacedConn(t *testing.T) *pacedConn {
	t.Helper()
	r, w := tcpPair(t, time.Hour)
	if _, err := w.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 16)
	if n, err := r.Read(buf); err != nil || n != 1 {
		t.Fatalf("first read: %d bytes, %v", n, err)
	}
	return r
}

// TestPacedConnWaitEndsAtDeadline: after a short read, the wait ends at
// the read deadline, which the next read then reports.
func TestPacedConnWaitEndsAtDeadline(t *testing.T) {
	r := drainedPacedConn(t)
	if err := r.SetReadDeadline(time.Now().Add(50 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	readHitsDeadline(t, r, "the deadline")
}

// readHitsDeadline reads from r, which must report its deadline within
// 10 s: the wait ended at what (a deadline that passed, a wake).
func readHitsDeadline(t *testing.T, r *pacedConn, what string) {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		_, err := r.Read(make([]byte, 16))
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("read ended by %s: %v, want a deadline error", what, err)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("%s did not end the wait", what)
	}
}

// TestPacedConnWokenDuringWait: moving the deadline to now from another
// goroutine ends a wait in progress, as the consumer wakes its receive at
// the end of a write or of its context.
func TestPacedConnWokenDuringWait(t *testing.T) {
	r := drainedPacedConn(t)
	if err := r.SetReadDeadline(time.Time{}); err != nil {
		t.Fatal(err)
	}
	woke := time.AfterFunc(50*time.Millisecond, func() { _ = r.SetReadDeadline(time.Now()) })
	defer woke.Stop()
	readHitsDeadline(t, r, "the wake")
}

// TestPacedConnWaitBounds: a read after the stream was idle for longer
// than the pause is not delayed; a read right after one that emptied the
// socket returns about the pause after that read, not later.
func TestPacedConnWaitBounds(t *testing.T) {
	const pause = 200 * time.Millisecond
	r, w := tcpPair(t, pause)
	buf := make([]byte, 16)
	write := func(s string) {
		t.Helper()
		if _, err := w.Write([]byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	read := func() {
		t.Helper()
		if _, err := r.Read(buf); err != nil {
			t.Fatal(err)
		}
	}
	write("a")
	read() // short: the next read waits, counting from now
	time.Sleep(2 * pause)
	write("b")
	start := time.Now()
	read()
	if took := time.Since(start); took > pause/4 {
		t.Errorf("a read after the stream was idle took %v, want no wait", took)
	}
	write("c")
	read()
	if took := time.Since(start); took < pause*9/10 || took > 2*pause {
		t.Errorf("a read after one that emptied the socket returned %v after it, want about %v", took, pause)
	}
}

// TestPacedConnStaleWakeDoesNotCutAWait: a wake that came while the read
// waited in the socket (the consumer's wake after each batch) is not left
// to end the next read's wait at once.
func TestPacedConnStaleWakeDoesNotCutAWait(t *testing.T) {
	const pause = 300 * time.Millisecond
	r, w := tcpPair(t, pause)
	buf := make([]byte, 16)
	woke := time.AfterFunc(20*time.Millisecond, func() { _ = r.SetReadDeadline(time.Now()) })
	defer woke.Stop()
	if _, err := r.Read(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("woken read: %v, want a deadline error", err)
	}
	if err := r.SetReadDeadline(time.Time{}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("a")); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Read(buf); err != nil { // short: the next read waits
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("b")); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := r.Read(buf); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < pause/2 {
		t.Errorf("the read returned after %v, want about %v: the earlier wake ended its wait", took, pause)
	}
}

// TestConsumerPacesReplicationReads: the consumer's replication
// connection paces its reads; its other connections do not.
func TestConsumerPacesReplicationReads(t *testing.T) {
	t.Parallel()
	db := pgtest.NewMigratedDatabase(t)
	c := newTestConsumer(t, ConsumerConfig{ConnString: db.DSN, SlotName: "s", PublicationName: "pub",
		Registry: ctRegistry(), ChangelogDB: db.Super})
	ctx := context.Background()
	for _, replication := range []bool{true, false} {
		conn, err := c.connect(ctx, replication)
		if err != nil {
			t.Fatal(err)
		}
		_, paced := conn.Conn().(*pacedConn)
		_ = conn.Close(ctx)
		if paced != replication {
			t.Errorf("replication connection %v: paced %v, want %v", replication, paced, replication)
		}
	}
}
