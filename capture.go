package synchro

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"time"

	"github.com/synchrosync/synchro/internal/store"
)

// This file answers whether change capture keeps up, from the database
// alone, so that any instance of the application can tell (Engine.CaptureStatus).

// Defaults of CaptureOptions.
const (
	// DefaultCaptureSlot is the replication slot CaptureStatus looks at
	// when no slot is recorded in synchro.wal_position and
	// CaptureOptions.Slot is empty. It is wal.DefaultSlotName.
	DefaultCaptureSlot = "synchro_slot"
	// DefaultCaptureMaxLagBytes is the default CaptureOptions.MaxLagBytes:
	// 1 GiB.
	DefaultCaptureMaxLagBytes = 1 << 30
	// DefaultCaptureMaxLagTime is the default CaptureOptions.MaxLagTime.
	DefaultCaptureMaxLagTime = time.Minute
)

// Reasons of a CaptureStatus that is not ready, in the order they are
// checked for each slot.
const (
	// CaptureReasonNoSlot: the replication slot does not exist. No consumer
	// ever streamed it, or it was dropped (a consumer recreates it, and
	// every client then takes a new snapshot).
	CaptureReasonNoSlot = "no_slot"
	// CaptureReasonSlotMismatch: the slot exists but is not a logical
	// pgoutput slot of this database; a consumer refuses it.
	CaptureReasonSlotMismatch = "slot_mismatch"
	// CaptureReasonWALLost: the server removed WAL the slot still needed
	// (wal_status lost, beyond max_slot_wal_keep_size): the slot is
	// useless and changes are lost.
	CaptureReasonWALLost = "wal_lost"
	// CaptureReasonWALUnreserved: the slot holds more WAL than
	// max_slot_wal_keep_size allows (wal_status unreserved); the server
	// removes it at its next checkpoint unless the consumer catches up.
	CaptureReasonWALUnreserved = "wal_unreserved"
	// CaptureReasonSlotInactive: nobody streams the slot: no consumer
	// runs, or the one that does is reconnecting (see its
	// wal.ConsumerStatus). Committed changes do not reach the changelog,
	// and the slot keeps the WAL since its restart position.
	CaptureReasonSlotInactive = "slot_inactive"
	// CaptureReasonLagBytes: the slot is streamed, but the WAL after its
	// confirmed position is longer than CaptureOptions.MaxLagBytes.
	CaptureReasonLagBytes = "lag_bytes"
	// CaptureReasonLagTime: the slot is streamed, but its confirmed
	// position has been behind the server's for longer than
	// CaptureOptions.MaxLagTime (see SlotStatus.LagTime).
	CaptureReasonLagTime = "lag_time"
)

// CaptureOptions says which slot CaptureStatus reads and when it is behind.
// The zero value uses the defaults.
type CaptureOptions struct {
	// Slot is the replication slot of the consumer
	// (wal.ConsumerConfig.SlotName). Empty: every slot recorded in
	// synchro.wal_position (every slot a consumer has written the
	// changelog from), or DefaultCaptureSlot when none is recorded. A slot
	// recorded there that is no longer used (the consumer's SlotName
	// changed) reads as missing: name the slot here, or delete its row.
	Slot string

	// MaxLagBytes is how much WAL may follow the slot's confirmed
	// position (SlotStatus.LagBytes) while it counts as keeping up.
	// Defaults to DefaultCaptureMaxLagBytes (1 GiB); negative: no limit.
	// A streaming consumer with nothing to write confirms the server's
	// position every wal.ConsumerConfig.StandbyTimeout (10s by default),
	// so the limit should exceed what the server writes in about twice
	// that time.
	MaxLagBytes int64

	// MaxLagTime is how long the slot's confirmed position may stay
	// behind the server's (SlotStatus.LagTime) while it counts as keeping
	// up. Defaults to DefaultCaptureMaxLagTime (1 minute); negative: no
	// limit. As for MaxLagBytes, it should exceed about twice the
	// consumer's StandbyTimeout.
	MaxLagTime time.Duration
}

// withDefaults returns o with its zero fields set to their defaults.
func (o CaptureOptions) withDefaults() CaptureOptions {
	if o.MaxLagBytes == 0 {
		o.MaxLagBytes = DefaultCaptureMaxLagBytes
	}
	if o.MaxLagTime == 0 {
		o.MaxLagTime = DefaultCaptureMaxLagTime
	}
	return o
}

// CaptureStatus tells whether change capture keeps up, as the database
// shows it. See Engine.CaptureStatus.
type CaptureStatus struct {
	// Ready is true when every slot read is ready: it exists, a consumer
	// streams it and it is not behind beyond the options' limits.
	Ready bool
	// Reason is the reason of the first slot that is not ready (one of
	// the CaptureReason constants), empty when Ready.
	Reason string
	// Message explains Reason for people, naming the slot; empty when
	// Ready.
	Message string

	// ServerLSN is the server's current WAL position (pg_current_wal_lsn,
	// or the replay position on a server in recovery), as PostgreSQL
	// prints a pg_lsn ("16/B374D848").
	ServerLSN string
	// ServerTime is the database's clock (now()) when the status was read.
	ServerTime time.Time
	// ChangelogLastAt is the created_at of the newest synchro.changelog
	// row, when the consumer last wrote a change; zero when the changelog
	// is empty.
	ChangelogLastAt time.Time
	// ChangelogAge is ServerTime minus ChangelogLastAt (0 when the
	// changelog is empty). It is for people: a database whose registered
	// tables are not written has an old changelog and is healthy, so it
	// decides nothing by itself.
	ChangelogAge time.Duration

	// Slots are the slots read, by name.
	Slots []SlotStatus
}

// SlotStatus is one replication slot as CaptureStatus read it
// (pg_replication_slots and synchro.wal_position).
type SlotStatus struct {
	// Name is the slot's name.
	Name string
	// Ready, Reason and Message are the slot's own verdict, as in
	// CaptureStatus.
	Ready   bool
	Reason  string
	Message string

	// Exists is false when the server has no slot of that name; the
	// fields read from pg_replication_slots are then zero.
	Exists bool
	// Active is true while a process (the consumer's walsender) streams
	// the slot; ActivePID is that process, 0 when inactive.
	Active    bool
	ActivePID int
	// ConfirmedLSN is the slot's confirmed_flush_lsn: the consumer has
	// written, or found nothing for it in, every change before it.
	ConfirmedLSN string
	// RestartLSN is the slot's restart_lsn: the oldest WAL the server
	// keeps for the slot.
	RestartLSN string
	// WALStatus is the slot's wal_status: reserved, extended, unreserved
	// or lost.
	WALStatus string
	// RetainedBytes is the WAL the server keeps for the slot: the current
	// position minus RestartLSN.
	RetainedBytes int64
	// LagBytes is the WAL after the confirmed position: the current
	// position minus ConfirmedLSN, 0 when caught up.
	LagBytes int64
	// LagTime is how long, at least, the WAL has been past the confirmed
	// position: the time since this Engine's CaptureStatus first saw the
	// server's position beyond it (0 when LagBytes is 0). The database
	// does not record when WAL was written, so the engine remembers the
	// positions its earlier calls read (at most one a second, for the
	// last few minutes); a single call, or the first of an Engine, gives
	// 0. Called periodically (a readiness probe), LagTime is exact to
	// within the period.
	LagTime time.Duration

	// RecordedLSN is the position in synchro.wal_position: the changelog
	// is complete up to it. Empty when none is recorded.
	RecordedLSN string
	// RecordedAt is when RecordedLSN was written (the last changelog
	// write of the slot's consumer); zero when none is recorded.
	RecordedAt time.Time
}

// CaptureStatus reads, in one statement, the replication slot(s) of change
// capture (see CaptureOptions.Slot) from pg_replication_slots, their
// recorded positions in synchro.wal_position, the server's current WAL
// position and the newest changelog row, and decides whether capture keeps
// up. It runs on the engine's pool, from any instance of the application,
// whether or not that instance runs the consumer; the engine's ordinary role
// suffices (pg_replication_slots and pg_current_wal_lsn are open to every
// role, the synchro tables are granted to it).
//
// A slot is ready when it exists, is a logical pgoutput slot of this
// database, its WAL is not lost or about to be (wal_status), a process
// streams it (active), and its confirmed position is behind the server's by
// at most opts.MaxLagBytes and for at most opts.MaxLagTime. The status is
// ready when every slot read is. The first check a slot fails gives its
// Reason (the CaptureReason constants, in the order they are checked).
//
// A database whose registered tables are not written is ready however old
// its newest changelog row: what marks capture as stuck is the server's WAL
// moving past the slot's confirmed position and staying there, since a
// streaming consumer confirms the server's position even when it has
// nothing to write. A slot nobody streams is not ready at once, whether or
// not WAL was written since.
//
// The error is that of the database; a status that could be read is
// returned with a nil error, ready or not.
func (e *Engine) CaptureStatus(ctx context.Context, opts CaptureOptions) (CaptureStatus, error) {
	opts = opts.withDefaults()
	rows, err := e.db.QueryContext(ctx, store.CaptureStatus, opts.Slot, DefaultCaptureSlot)
	if err != nil {
		return CaptureStatus{}, fmt.Errorf("synchro: reading the status of change capture: %w", err)
	}
	defer func() { _ = rows.Close() }()
	var (
		st        CaptureStatus
		serverLSN int64
	)
	for rows.Next() {
		var (
			s                       SlotStatus
			lastAt, recordedAt      sql.NullTime
			plugin, slotType, walSt sql.NullString
			sameDB                  sql.NullBool
			pid                     sql.NullInt64
			confirmed, restart      sql.NullInt64
			recorded                sql.NullInt64
		)
		if err := rows.Scan(&serverLSN, &st.ServerTime, &lastAt,
			&s.Name, &s.Exists, &plugin, &slotType, &sameDB, &s.Active, &pid,
			&confirmed, &restart, &walSt, &recorded, &recordedAt); err != nil {
			return CaptureStatus{}, fmt.Errorf("synchro: reading the status of change capture: %w", err)
		}
		if lastAt.Valid {
			st.ChangelogLastAt = lastAt.Time
			st.ChangelogAge = max(0, st.ServerTime.Sub(lastAt.Time))
		}
		s.ActivePID = int(pid.Int64)
		s.WALStatus = walSt.String
		if confirmed.Valid {
			s.ConfirmedLSN = lsnText(confirmed.Int64)
			s.LagBytes = max(0, serverLSN-confirmed.Int64)
		}
		if restart.Valid {
			s.RestartLSN = lsnText(restart.Int64)
			s.RetainedBytes = max(0, serverLSN-restart.Int64)
		}
		if recorded.Valid {
			s.RecordedLSN = lsnText(recorded.Int64)
			s.RecordedAt = recordedAt.Time
		}
		if s.LagBytes > 0 {
			s.LagTime = e.walSeen.behindFor(uint64(confirmed.Int64), time.Now())
		}
		s.Reason, s.Message = slotVerdict(s, plugin.String, slotType.String, sameDB.Bool, opts)
		s.Ready = s.Reason == ""
		st.Slots = append(st.Slots, s)
	}
	if err := rows.Err(); err != nil {
		return CaptureStatus{}, fmt.Errorf("synchro: reading the status of change capture: %w", err)
	}
	st.ServerLSN = lsnText(serverLSN)
	e.walSeen.add(uint64(serverLSN), time.Now())
	st.Ready = true
	for _, s := range st.Slots {
		if !s.Ready {
			st.Ready, st.Reason, st.Message = false, s.Reason, s.Message
			break
		}
	}
	return st, nil
}

// slotVerdict returns the reason a slot is not ready and its message, or
// two empty strings when it is ready.
func slotVerdict(s SlotStatus, plugin, slotType string, sameDB bool, opts CaptureOptions) (string, string) {
	switch {
	case !s.Exists:
		return CaptureReasonNoSlot, fmt.Sprintf("replication slot %q does not exist: no consumer has streamed it, or it was dropped; "+
			"changes committed meanwhile are not captured", s.Name)
	case plugin != "pgoutput" || slotType != "logical" || !sameDB:
		return CaptureReasonSlotMismatch, fmt.Sprintf("replication slot %q is not a logical pgoutput slot of this database (plugin %q, type %s)",
			s.Name, plugin, slotType)
	case s.WALStatus == "lost":
		return CaptureReasonWALLost, fmt.Sprintf("replication slot %q lost WAL it needed (wal_status lost): changes are lost", s.Name)
	case s.WALStatus == "unreserved":
		return CaptureReasonWALUnreserved, fmt.Sprintf("replication slot %q holds %d bytes of WAL, beyond max_slot_wal_keep_size (wal_status unreserved)",
			s.Name, s.RetainedBytes)
	case !s.Active:
		return CaptureReasonSlotInactive, fmt.Sprintf("nobody streams replication slot %q: no consumer runs, or it is reconnecting; "+
			"%d bytes of WAL after its confirmed position %s are not captured", s.Name, s.LagBytes, s.ConfirmedLSN)
	case opts.MaxLagBytes >= 0 && s.LagBytes > opts.MaxLagBytes:
		return CaptureReasonLagBytes, fmt.Sprintf("replication slot %q is %d bytes behind the server, more than %d",
			s.Name, s.LagBytes, opts.MaxLagBytes)
	case opts.MaxLagTime >= 0 && s.LagTime > opts.MaxLagTime:
		return CaptureReasonLagTime, fmt.Sprintf("replication slot %q has been behind the server for %v, more than %v (%d bytes behind)",
			s.Name, s.LagTime.Round(time.Millisecond), opts.MaxLagTime, s.LagBytes)
	}
	return "", ""
}

// lsnText prints a WAL position as PostgreSQL prints a pg_lsn.
func lsnText(lsn int64) string {
	return fmt.Sprintf("%X/%X", uint64(lsn)>>32, uint32(lsn))
}

// Bounds of walSamples.
const (
	// walSampleSpacing is the least time between two samples kept.
	walSampleSpacing = time.Second
	// maxWALSamples bounds the samples kept: with one a second at most,
	// at least the last few minutes.
	maxWALSamples = 256
)

// walSamples remembers the server's WAL positions that CaptureStatus read,
// with when it read them, to tell how long a slot's confirmed position has
// been behind. Safe for concurrent use; the zero value is empty.
type walSamples struct {
	mu sync.Mutex
	// s is in time order, with increasing positions.
	s []walSample
}

type walSample struct {
	lsn uint64
	at  time.Time
}

// add records that the server's WAL was at lsn at time at. A position
// below the last one (another server, or a restored one) starts over.
func (w *walSamples) add(lsn uint64, at time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if n := len(w.s); n > 0 {
		last := w.s[n-1]
		switch {
		case lsn < last.lsn:
			w.s = w.s[:0]
		case lsn == last.lsn || at.Sub(last.at) < walSampleSpacing:
			return
		}
	}
	if len(w.s) == maxWALSamples {
		w.s = append(w.s[:0], w.s[1:]...)
	}
	w.s = append(w.s, walSample{lsn, at})
}

// behindFor returns how long ago, at least, the server's WAL was first
// seen past confirmed: now minus the time of the oldest sample beyond it,
// 0 when no sample is.
func (w *walSamples) behindFor(confirmed uint64, now time.Time) time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, s := range w.s {
		if s.lsn > confirmed {
			return max(0, now.Sub(s.at))
		}
	}
	return 0
}
