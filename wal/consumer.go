// Package wal captures the changes of the registered tables from PostgreSQL
// logical replication (pgoutput) and writes the bucketed changelog that
// Engine.Pull reads.
//
// # Running the consumer
//
//	c, err := wal.NewConsumer(wal.ConsumerConfig{
//		ConnString:  "postgres://replicator@db/app",
//		Registry:    reg,
//		ChangelogDB: db,
//	})
//	if err != nil {
//		return err
//	}
//	go func() {
//		if err := c.Start(ctx); err != nil { // nil when ctx ends
//			log.Printf("change capture stopped: %v", err) // a setup to fix
//		}
//	}()
//
// The server needs wal_level=logical and free replication slots; the role of
// ConnString needs REPLICATION and must read every row of the registered
// tables (bypass row-level security). The consumer creates the publication
// and the slot when they are missing. When it creates the slot it first
// records the buckets of every existing row, reading them in the snapshot
// the slot starts from, so no row is missed and none is counted twice.
//
// A table registered when the slot exists already is added to the
// publication, and its rows' buckets are recorded, with a create for each
// row in each of its buckets, when a session first registers it. A session
// that does not register a table the slot recorded (a deploy rolled back, a
// table no longer synced) skips its changes and forgets it; the next
// session that registers it records it again, and tells clients what
// changed meanwhile from the buckets recorded before: a delete of each row
// deleted since, and of each row in the buckets it left or, soft-deleted
// since, in all of them. Such a record reads the rows as they are, while
// the stream may still hold older changes of the table (published before
// the table left the publication, say): the changes of transactions the
// record's snapshot shows are skipped, the later ones applied on top.
//
// # Guarantees
//
// Every committed change of a registered table is written to
// synchro.changelog exactly once: the changelog rows, the bucket edges and
// the consumer's position are written in one transaction per batch of WAL
// transactions, and the position is confirmed to the server only after that
// transaction commits. After a crash or a restart the consumer resumes at
// its recorded position and skips what it had already written. While idle it
// confirms the server's position, so the slot never holds WAL back.
//
// Connection losses and server restarts are retried with backoff, which
// starts over once a session makes progress (writes or confirms a
// position): a batch that fails each time it is written is retried less
// and less often, up to every 10 s, while Status gives its error
// (LastError), a growing count of Failures and LagTime. A second consumer
// on the same slot stands by, trying the slot about every second, and
// takes over when the first stops or dies (docs/operations.md gives the
// takeover time). A slot that was dropped while the consumer was away is
// recreated with a fresh record of every row's buckets; since changes were
// lost, the compaction boundary is raised so that every client takes a new
// snapshot.
//
// # Monitoring
//
// Consumer.Status reports, without a database round trip, what the
// consumer does (starting, streaming, standby, reconnecting, failed,
// stopped), its positions, how far behind the server it is in bytes and in
// time, and its last error. A consumer that does not stream never reports
// itself caught up: Status gives its lag in bytes as -1 (unknown), Lag as
// math.MaxInt64. synchro.Engine.CaptureStatus tells from the database, on
// any instance of the application, whether somebody captures and keeps up;
// synchrohttp.Health serves both as liveness and readiness endpoints.
//
// # Logs
//
// A condition that repeats is logged once, then at Debug while it lasts: a
// standby's "slot in use by another consumer" at Info, "replication
// interrupted; reconnecting" at Warn, again at their level only once the
// condition changed (the consumer made progress in between, writing or
// confirming a position, or failed with another error, or the other
// condition came). Start's fatal errors are logged at Error.
// Each session that begins streaming logs "wal: streaming" at Info.
//
// # Metrics
//
// With ConsumerConfig.MeterProvider set, the consumer reports
// OpenTelemetry metrics, all with the attribute synchro.capture.slot:
// synchro.capture.rows (by synchro.table and synchro.capture.operation),
// synchro.capture.transactions, synchro.capture.changelog.rows,
// synchro.capture.rule_failures (by synchro.table),
// synchro.capture.batch.duration (seconds), and, while Start runs, the
// gauges synchro.capture.lag (bytes) and synchro.capture.delay (seconds),
// read from Lag. docs/metrics.md in the repository has the table.
package wal

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/synchrosync/synchro/internal/locks"
	"github.com/synchrosync/synchro/internal/pgident"
)

// setupLockKey is the session advisory lock (with a hash of the slot name)
// held while a consumer checks, creates or recreates its slot; see package
// locks.
const setupLockKey = locks.SlotSetup

// idleFlush is how long the stream must pause before received transactions
// are written without waiting for MaxBatchDelay.
const idleFlush = 2 * time.Millisecond

// eagerBatchEvents is how many received row changes are written without
// waiting for MaxBatchDelay when no batch is being written. A batch's
// fixed cost (about ten round trips) is small beside that many rows', and
// not waiting keeps the changelog transaction from standing idle while
// the first batches of a burst fill: BenchmarkCaptureBurst's lag after
// the last commit fell by about a tenth (0.89x, the median of 25
// interleaved pairs; docs/benchmarks.md, "A fourth look").
const eagerBatchEvents = 500

// batchDue reports whether received transactions of events row changes,
// the last received idle ago and the first waiting for waited, should be
// written now (no batch being written): there are enough of them, the
// stream paused, or the first has waited MaxBatchDelay.
func (c *Consumer) batchDue(events int, idle, waited time.Duration) bool {
	return events >= c.cfg.MaxBatchEvents || events >= eagerBatchEvents ||
		idle >= idleFlush || waited >= c.cfg.MaxBatchDelay
}

// Backoff bounds between reconnection attempts.
const (
	minBackoff = 100 * time.Millisecond
	maxBackoff = 10 * time.Second
)

// Consumer streams the changes of the registered tables into the changelog.
type Consumer struct {
	cfg     ConsumerConfig
	applier *applier
	// names are the registered tables when NewConsumer ran; tables
	// registered later are captured by a new consumer.
	names []string

	running sync.Mutex

	// Monitoring, read by Lag.
	appliedLSN   atomic.Uint64
	confirmedLSN atomic.Uint64 // last position confirmed to the server
	serverLSN    atomic.Uint64
	lastCommit   atomic.Int64 // unix nanoseconds of the last applied commit
	pendingSince atomic.Int64 // unix nanoseconds of the oldest unapplied commit, 0 when none
	// streamedFrom is progressMark when the last session began streaming:
	// the session made progress if it moved it (Start's backoff, and
	// Status' Failures). Only Start's goroutine, which runs the stream,
	// uses it.
	streamedFrom pglogrepl.LSN
	// status is the rest of what Status reports (status.go).
	status statusTracker
	// signals are for tests (testsignal.go); they do nothing otherwise.
	signals consumerSignals
}

// NewConsumer validates cfg, fills in its defaults and returns a consumer.
// It does not connect; Start does.
func NewConsumer(cfg ConsumerConfig) (*Consumer, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	a := newApplier(cfg)
	var err error
	if a.metrics, err = newCaptureMetrics(cfg); err != nil {
		return nil, err
	}
	names := make([]string, 0, len(a.tables))
	for _, n := range cfg.Registry.TableNames() {
		if a.tables[n] != nil {
			names = append(names, n)
		}
	}
	c := &Consumer{cfg: cfg, applier: a, names: names}
	a.signals = &c.signals
	c.status.init(time.Now())
	return c, nil
}

// Lag describes how far the changelog is behind the server.
type Lag struct {
	// AppliedLSN is the position up to which the changelog is written.
	AppliedLSN pglogrepl.LSN
	// ServerLSN is the latest server position the consumer heard of.
	ServerLSN pglogrepl.LSN
	// Bytes is how much WAL the server has that the consumer has neither
	// written nor confirmed as irrelevant (0 when caught up). A consumer
	// that does not stream (see Status) cannot know where the server is:
	// Bytes is then math.MaxInt64, so that a check against any threshold
	// fails.
	Bytes int64
	// Delay is how long the oldest received but unwritten transaction has
	// waited, or 0 when everything received is written. A consumer that
	// does not stream reports how long ago it was last caught up instead
	// (ConsumerStatus.LagTime), never 0.
	Delay time.Duration
	// LastCommit is the commit time of the last transaction written.
	LastCommit time.Time
}

// Lag reports the replication lag, for monitoring. It is safe to call from
// any goroutine. Status says more, the consumer's state included.
func (c *Consumer) Lag() Lag {
	l := Lag{AppliedLSN: pglogrepl.LSN(c.appliedLSN.Load()), ServerLSN: pglogrepl.LSN(c.serverLSN.Load())}
	// While idle the consumer confirms positions past its last write (the
	// WAL in between held nothing for it): it is caught up to those too.
	done := max(l.AppliedLSN, pglogrepl.LSN(c.confirmedLSN.Load()))
	if l.ServerLSN > done {
		l.Bytes = int64(l.ServerLSN - done)
	}
	if p := c.pendingSince.Load(); p != 0 {
		l.Delay = time.Since(time.Unix(0, p))
	}
	if t := c.lastCommit.Load(); t != 0 {
		l.LastCommit = time.Unix(0, t)
	}
	if !c.status.is(ConsumerStreaming) {
		l.Bytes = math.MaxInt64
		l.Delay = max(time.Since(c.status.behindSince()), time.Nanosecond)
	}
	return l
}

// fatalError is a configuration problem that retrying cannot fix.
type fatalError struct{ err error }

func (e *fatalError) Error() string { return e.err.Error() }
func (e *fatalError) Unwrap() error { return e.err }

func fatal(format string, args ...any) error {
	return &fatalError{fmt.Errorf(format, args...)}
}

// Start runs the consumer until ctx is cancelled, and then returns nil. It
// returns an error only for a problem that retrying cannot fix (wal_level is
// not logical, a registered table does not exist, the slot belongs to
// another plugin or database, the database is not migrated, row-level
// security applies to the role of ConnString or of ChangelogDB on a
// registered table: it would hide rows, whose changes would then never
// reach the devices). Every other failure (a lost connection, a
// server restart, a slot used by another consumer) is logged and retried
// with backoff. Start may be called again after it returns, but not twice
// at once.
func (c *Consumer) Start(ctx context.Context) (err error) {
	if !c.running.TryLock() {
		return errors.New("wal: Consumer.Start is already running")
	}
	defer c.running.Unlock()
	c.status.starting()
	defer func() { c.status.ended(err) }()
	defer c.applier.metrics.observeLag(c.Lag, c.cfg.Logger)()
	log := c.cfg.Logger
	backoff := minBackoff
	var (
		last    retryKind // the condition of the previous retry, for the log policy
		lastErr string    // its error's text
	)
	for {
		started := time.Now()
		err := c.session(ctx)
		if ctx.Err() != nil {
			return nil
		}
		var fe *fatalError
		if errors.As(err, &fe) {
			log.ErrorContext(ctx, "wal: consumer stopped", "slot", c.cfg.SlotName, "error", err)
			return err
		}
		streamed := c.status.is(ConsumerStreaming)
		// A session that streamed but wrote and confirmed nothing before it
		// failed, such as one whose first batch fails to write each time
		// (a statement PostgreSQL refuses for its data), did not run: the
		// backoff goes on growing rather than retrying it ten times a
		// second, which would load the server and the log for as long as
		// the cause lasts.
		ran := streamed && c.progressMark() > c.streamedFrom || time.Since(started) > time.Minute
		if ran {
			backoff = minBackoff // start over
		}
		c.status.retrying(err)
		kind := retryReconnect
		if errors.Is(err, errSlotInUse) {
			kind = retryStandby
		}
		repeat := repeats(kind, last, err.Error(), lastErr, ran)
		last, lastErr = kind, err.Error()
		wait := backoff/2 + rand.N(backoff/2+1)
		switch {
		case kind == retryStandby:
			// Another process streams the slot: look again soon, so that
			// the takeover after it dies is quick (a standby's attempt is
			// two connections and a few catalog reads).
			wait = standbyPoll/2 + rand.N(standbyPoll/2+1)
			log.Log(ctx, quiet(repeat, slog.LevelInfo), "wal: slot in use by another consumer; standing by", "slot", c.cfg.SlotName, "retry_in", wait)
			c.signals.standby.signal(struct{}{})
		default:
			log.Log(ctx, quiet(repeat, slog.LevelWarn), "wal: replication interrupted; reconnecting", "slot", c.cfg.SlotName, "error", err, "retry_in", wait)
			c.signals.reconnecting.signal(err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
		if kind != retryStandby {
			backoff = min(2*backoff, maxBackoff)
		}
	}
}

// repeats reports whether a failed session (kind, with error text errText)
// repeats the condition of the previous one (last, lastErr), so that it is
// logged at Debug: a condition is logged once at its level, then at Debug
// while it lasts (see the package documentation, "Logs"). It lasts while
// no session ran (made progress, or lasted a minute) and the failures are
// the same: a standby's, or the same error.
func repeats(kind, last retryKind, errText, lastErr string, ran bool) bool {
	return kind == last && !ran && (kind == retryStandby || errText == lastErr)
}

// retryKind is the condition a session ended in, when it is retried.
type retryKind int

const (
	retryNone      retryKind = iota
	retryStandby             // another consumer streams the slot
	retryReconnect           // any other failure
)

// standbyPoll is how often a standby consumer tries the slot again.
const standbyPoll = time.Second

// quiet is level, or Debug when the condition is a repeat.
func quiet(repeat bool, level slog.Level) slog.Level {
	if repeat {
		return slog.LevelDebug
	}
	return level
}

// errSlotInUse reports that another consumer streams the slot.
var errSlotInUse = errors.New("wal: replication slot is in use")

// session connects, prepares the publication and the slot, and streams until
// an error or the end of ctx.
func (c *Consumer) session(ctx context.Context) error {
	c.applier.columnTypes.Reset() // column types are read again: a table may have changed
	c.applier.keyTypes.Reset()
	mgmt, err := c.connect(ctx, false)
	if err != nil {
		return err
	}
	defer mgmt.Close(context.Background())
	tables, pks, unpublished, err := c.prepare(ctx, mgmt)
	if err != nil {
		return err
	}

	repl, err := c.connect(ctx, true)
	if err != nil {
		return err
	}
	defer repl.Close(context.Background())

	// Slot setup runs under a session lock, so that two consumers starting
	// together do not both create (or drop) the slot.
	if _, err := exec(ctx, mgmt, `SELECT pg_advisory_lock($1::int, hashtext($2))`, fmt.Sprint(setupLockKey), c.cfg.SlotName); err != nil {
		return fmt.Errorf("wal: locking slot setup: %w", err)
	}
	start, _, err := c.ensureSlot(ctx, mgmt, repl)
	if _, unlockErr := exec(ctx, mgmt, `SELECT pg_advisory_unlock($1::int, hashtext($2))`, fmt.Sprint(setupLockKey), c.cfg.SlotName); unlockErr != nil && err == nil {
		err = fmt.Errorf("wal: unlocking slot setup: %w", unlockErr)
	}
	if err != nil {
		return err
	}
	c.appliedLSN.Store(uint64(start))
	// Where the server is, for Status until the stream says more.
	sys, err := pglogrepl.IdentifySystem(ctx, repl)
	if err != nil {
		return fmt.Errorf("wal: identifying the server: %w", err)
	}
	c.serverLSN.Store(uint64(sys.XLogPos))

	// The walsender's process id, from the server: the backfill of added
	// tables commits only while the slot's walsender is this one (a pooler
	// in front of the server hands out process ids of its own, and the
	// slot's active_pid, read later, could be another session's that took
	// the slot meanwhile).
	pid, err := repl.Exec(ctx, `SELECT pg_backend_pid()`).ReadAll()
	if err != nil {
		return fmt.Errorf("wal: reading the walsender's process id: %w", err)
	}
	var owner uint64
	if len(pid) == 1 && len(pid[0].Rows) == 1 {
		owner, err = strconv.ParseUint(string(pid[0].Rows[0][0]), 10, 32)
	}
	if owner == 0 || err != nil {
		return fmt.Errorf("wal: reading the walsender's process id: got %v (%v)", pid, err)
	}

	args := []string{"proto_version '1'", "publication_names " + pgident.QuoteLiteral(pgident.Quote(c.cfg.PublicationName))}
	if err := pglogrepl.StartReplication(ctx, repl, c.cfg.SlotName, start, pglogrepl.StartReplicationOptions{PluginArgs: args}); err != nil {
		var pgErr *pgconn.PgError
		if isSlotInUse(err) && errors.As(err, &pgErr) {
			return fmt.Errorf("%w: %s", errSlotInUse, pgErr.Message)
		}
		return fmt.Errorf("wal: starting replication on slot %s: %w", c.cfg.SlotName, err)
	}
	// The slot is ours now: tables it has not recorded can be added.
	stopKeepalive := c.keepalive(ctx, repl, start)
	err = c.addTables(ctx, mgmt, uint32(owner), start, tables, unpublished)
	stopKeepalive()
	if err != nil {
		return err
	}
	c.cfg.Logger.InfoContext(ctx, "wal: streaming", "slot", c.cfg.SlotName, "publication", c.cfg.PublicationName, "from", start)
	c.streamedFrom = c.progressMark()
	c.status.streaming()
	c.signals.streaming.signal(start)
	return c.stream(ctx, repl, newDecoder(tables, pks), start)
}

// connect opens a regular or a replication connection.
func (c *Consumer) connect(ctx context.Context, replication bool) (*pgconn.PgConn, error) {
	cfg, err := pgconn.ParseConfig(c.cfg.ConnString)
	if err != nil {
		return nil, fatal("wal: ConnString: %w", err)
	}
	if replication {
		cfg.RuntimeParams["replication"] = "database"
		pacedDial(cfg, readPause)
	} else {
		delete(cfg.RuntimeParams, "replication")
	}
	conn, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("wal: connecting: %w", err)
	}
	return conn, nil
}

// written is the outcome of the write of one batch of transactions.
type written struct {
	batch []*txn
	err   error
}

// stream receives WAL and writes it, batching transactions, until an error.
//
// Batches are written by a goroutine of their own, one at a time and in
// order, while the stream goes on: the transactions received meanwhile
// form the next batch, written once the previous one has committed (and,
// as always, the stream paused, the oldest waited MaxBatchDelay or the
// batch is full; a full batch stops the receiving until it can be
// written). Receiving and decoding thus overlap writing, and a burst is
// written in batches as large as the writes are slow. Only written batches
// are confirmed to the server. stream returns once the goroutine has ended.
// An error ends the stream and the batches not written with it; the next
// session starts again from the last written one.
func (c *Consumer) stream(ctx context.Context, conn *pgconn.PgConn, dec *decoder, durable pglogrepl.LSN) error {
	var (
		// pending are the transactions received and not yet being written.
		pending       []*txn
		pendingEvents int
		pendingSince  time.Time // when the first of pending was received
		// writing is set while a batch is being written; done receives
		// its outcome.
		writing    bool
		writer     sync.WaitGroup
		done       = make(chan written, 1)
		serverEnd  pglogrepl.LSN
		nextStatus = time.Now().Add(c.cfg.StandbyTimeout)
		lastRecv   time.Time
	)
	// Receives wait under a read deadline of the connection rather than
	// under a context of their own, which would cost a context, a timer and
	// a watch of the connection for each message (each row change is one).
	// The end of ctx and the end of a write end the wait by moving the
	// deadline to now.
	netConn := conn.Conn()
	wake := func() { _ = netConn.SetReadDeadline(time.Now()) }
	// The end of ctx also ends a send blocked on a stalled peer.
	stopWake := context.AfterFunc(ctx, func() { _ = netConn.SetDeadline(time.Now()) })
	defer stopWake()

	writeCtx, stopWriting := context.WithCancel(ctx)
	defer func() {
		// An error ends the stream: a batch being written commits or not,
		// its outcome does not matter.
		stopWriting()
		writer.Wait()
	}()

	sendStatus := func() error {
		pos := durable
		// Idle and caught up (nothing received unwritten, nothing being
		// written): confirm the server's position, so the slot does not
		// hold WAL for changes that do not concern us.
		if len(pending) == 0 && !writing && !dec.inTransaction() && serverEnd > pos {
			pos = serverEnd
		}
		err := pglogrepl.SendStandbyStatusUpdate(ctx, conn, pglogrepl.StandbyStatusUpdate{
			WALWritePosition: pos, WALFlushPosition: pos, WALApplyPosition: pos,
		})
		if err != nil {
			return fmt.Errorf("wal: sending status: %w", err)
		}
		c.noteConfirmed(pos)
		nextStatus = time.Now().Add(c.cfg.StandbyTimeout)
		return nil
	}
	// wrote records a written batch and confirms it.
	wrote := func(batch []*txn) error {
		last := batch[len(batch)-1]
		durable = last.endLSN
		c.appliedLSN.Store(uint64(durable))
		c.lastCommit.Store(last.commitTime.UnixNano())
		c.status.lastApplied.Store(time.Now().UnixNano())
		if len(pending) > 0 {
			c.pendingSince.Store(pendingSince.UnixNano())
		} else {
			c.pendingSince.Store(0)
		}
		return sendStatus()
	}
	// finish takes the outcome of the batch being written.
	finish := func(w written) error {
		writing = false
		if w.err != nil {
			return w.err
		}
		return wrote(w.batch)
	}
	// write starts writing the pending transactions. Transactions without
	// changes to registered tables need no write: confirming them is enough
	// (writing the position for them would itself make WAL, and feed the
	// stream with its own writes).
	write := func() error {
		batch := pending
		pending, pendingEvents = nil, 0
		if !slices.ContainsFunc(batch, func(t *txn) bool { return len(t.events) > 0 }) {
			return wrote(batch)
		}
		writing = true
		writer.Go(func() {
			err := c.applier.apply(writeCtx, batch)
			done <- written{batch, err}
			wake()
		})
		return nil
	}
	due := func(now time.Time) bool {
		return len(pending) > 0 && c.batchDue(pendingEvents, now.Sub(lastRecv), now.Sub(pendingSince))
	}

	for {
		if writing {
			select {
			case w := <-done:
				if err := finish(w); err != nil {
					return err
				}
			default:
				// The next batch is full: receive no more until the
				// current one is written, still telling the server at
				// every StandbyTimeout that the session lives (confirming
				// only what is written), so that a write slower than
				// wal_sender_timeout does not cost the connection.
				for writing && pendingEvents >= c.cfg.MaxBatchEvents {
					status := time.NewTimer(time.Until(nextStatus))
					select {
					case w := <-done:
						status.Stop()
						if err := finish(w); err != nil {
							return err
						}
					case <-ctx.Done():
						status.Stop()
						return ctx.Err()
					case <-status.C:
						if err := sendStatus(); err != nil {
							return err
						}
					}
				}
			}
		}
		if !writing && due(time.Now()) {
			if err := write(); err != nil {
				return err
			}
		}

		deadline := nextStatus
		if !writing && len(pending) > 0 {
			// Write when the stream pauses, or when the oldest pending
			// transaction has waited MaxBatchDelay under a steady stream.
			deadline = pendingSince.Add(c.cfg.MaxBatchDelay)
			if idle := lastRecv.Add(idleFlush); idle.Before(deadline) {
				deadline = idle
			}
		}
		if err := netConn.SetReadDeadline(deadline); err != nil {
			return fmt.Errorf("wal: receiving: %w", err)
		}
		// A wake that came before the deadline was set is not lost: it
		// shows here.
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if writing && len(done) > 0 {
			continue
		}
		msg, err := conn.ReceiveMessage(context.Background())
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if pgconn.Timeout(err) {
				// The deadline, or a wake: the connection is fine.
				if time.Now().After(nextStatus) {
					if err := sendStatus(); err != nil {
						return err
					}
				}
				continue
			}
			return fmt.Errorf("wal: receiving: %w", err)
		}

		lastRecv = time.Now()
		switch m := msg.(type) {
		case *pgproto3.CopyData:
			if len(m.Data) == 0 {
				continue
			}
			switch m.Data[0] {
			case pglogrepl.PrimaryKeepaliveMessageByteID:
				ka, err := pglogrepl.ParsePrimaryKeepaliveMessage(m.Data[1:])
				if err != nil {
					return fmt.Errorf("wal: parsing keepalive: %w", err)
				}
				if ka.ServerWALEnd > serverEnd {
					serverEnd = ka.ServerWALEnd
					c.serverLSN.Store(uint64(serverEnd))
				}
				if ka.ReplyRequested {
					if !writing && len(pending) > 0 {
						if err := write(); err != nil {
							return err
						}
					}
					if err := sendStatus(); err != nil {
						return err
					}
				}
			case pglogrepl.XLogDataByteID:
				xld, err := pglogrepl.ParseXLogData(m.Data[1:])
				if err != nil {
					return fmt.Errorf("wal: parsing XLogData: %w", err)
				}
				if xld.ServerWALEnd > serverEnd {
					serverEnd = xld.ServerWALEnd
					c.serverLSN.Store(uint64(serverEnd))
				}
				t, err := dec.decode(xld.WALData)
				if err != nil {
					return fmt.Errorf("wal: decoding at %s: %w", xld.WALStart, err)
				}
				if t == nil {
					continue
				}
				if t.finalLSN < durable {
					continue // written before a restart; the server sent it again
				}
				if len(pending) == 0 {
					pendingSince = lastRecv
					if !writing {
						c.pendingSince.Store(pendingSince.UnixNano())
					}
				}
				pending = append(pending, t)
				pendingEvents += len(t.events)
			}
		case *pgproto3.ErrorResponse:
			return fmt.Errorf("wal: server error: %w", pgconn.ErrorResponseToPgError(m))
		case *pgproto3.CopyDone:
			return errors.New("wal: the server ended the replication stream")
		}
	}
}

// keepalive answers for conn, streaming but not read yet, until the
// returned function is called: a status update every StandbyTimeout,
// confirming pos (already recorded), so that the server does not end the
// connection after wal_sender_timeout while the session records added
// tables (awaitWriters, backfill). Stopping it does not interrupt a send
// in progress, which would break the connection: it waits for it.
func (c *Consumer) keepalive(ctx context.Context, conn *pgconn.PgConn, pos pglogrepl.LSN) func() {
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(c.cfg.StandbyTimeout)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				if err := pglogrepl.SendStandbyStatusUpdate(ctx, conn, pglogrepl.StandbyStatusUpdate{
					WALWritePosition: pos, WALFlushPosition: pos, WALApplyPosition: pos,
				}); err != nil {
					return // the stream's first read reports the connection's end
				}
			}
		}
	}()
	return func() { close(stop); <-done }
}
