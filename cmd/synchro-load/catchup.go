package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"time"
)

// catchUpChunk is the most rows one transaction of the bulk write inserts.
const catchUpChunk = 50_000

// catchUpRun is the rest of a run with -catchup, after the bootstrap: the
// bulk write and its capture, then the devices' catch-up through the sync
// protocol, then the raw reference's catch-up on the same rows.
func (e *env) catchUpRun(ctx context.Context, rep *Report, clients []*client, drv driver, cm *commits, probe string) error {
	n := e.o.catchup
	// The raw reference reads what changed after this moment: a later
	// transaction's now() is not earlier.
	var mark time.Time
	if err := e.super.QueryRowContext(ctx, `SELECT now()`).Scan(&mark); err != nil {
		return err
	}
	before, err := e.changelogRows(ctx, 0)
	if err != nil {
		return err
	}
	startSeq, err := e.maxSeq(ctx)
	if err != nil {
		return err
	}

	// N new items per user, spread over its lists, in transactions of at
	// most catchUpChunk rows.
	e.logf("catch-up: writing %d new items for each of %d users", n, len(e.users))
	start := time.Now()
	per := max(1, catchUpChunk/len(e.users))
	for lo := 0; lo < n; lo += per {
		hi := min(lo+per, n) - 1
		_, err := e.super.ExecContext(ctx, `
INSERT INTO items (id, list_id, title)
SELECT gen_random_uuid(), l.ids[1 + g % cardinality(l.ids)], 'catch-up ' || g
  FROM (SELECT array_agg(id ORDER BY id) AS ids FROM lists WHERE user_id = ANY($1) GROUP BY user_id) AS l,
       generate_series($2::int, $3::int) AS g`, e.users, lo, hi)
		if err != nil {
			return fmt.Errorf("catch-up: writing items: %w", err)
		}
	}
	wrote := time.Since(start)
	lagEnd, _ := e.lag(ctx)
	// The probe is an item of one of the users: its device pulls one
	// record more than the others (the raw reference does not see it, as
	// the probe does not change updated_at).
	if _, err := e.catchUp(ctx, probe); err != nil {
		return err
	}
	// The probe's row can land before rows of earlier transactions (the
	// changelog's seq is not in commit order): wait for every new item's
	// row too.
	var rows int64
	for {
		if rows, err = e.changelogRows(ctx, startSeq); err != nil {
			return err
		}
		if rows >= int64(n)*int64(len(e.users)) {
			break
		}
		if time.Since(start) > 2*time.Minute {
			return fmt.Errorf("catch-up: change capture recorded %d of %d new items within two minutes", rows, n*len(e.users))
		}
		pause(ctx, 5*time.Millisecond)
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	caught := time.Since(start) - wrote
	after, err := e.changelogRows(ctx, 0)
	if err != nil {
		return err
	}
	var size int64
	if err := e.super.QueryRowContext(ctx, `SELECT pg_total_relation_size('synchro.changelog')`).Scan(&size); err != nil {
		return err
	}
	rep.Capture = Capture{ChangelogRowsWritten: rows, RowsPerSec: float64(rows) / (wrote + caught).Seconds(),
		LagMaxBytes: lagEnd, LagEndBytes: lagEnd, CatchUpSec: caught.Seconds(),
		ChangelogRowsBefore: before, ChangelogRowsAfter: after, ChangelogBytes: size}
	e.logf("catch-up: %d items written in %v, captured %v later (%d changelog rows)", n*len(e.users),
		wrote.Round(time.Millisecond), caught.Round(time.Millisecond), rows)
	// The same start for both sides: statistics, hint bits and the
	// visibility map of what the bulk write and its capture wrote, as
	// autovacuum would leave them.
	if _, err := e.super.ExecContext(ctx, `VACUUM (ANALYZE) lists, items, synchro.changelog, synchro.bucket_edges`); err != nil {
		return fmt.Errorf("catch-up: vacuum: %w", err)
	}

	if e.o.cpuProfile != "" {
		f, err := os.Create(e.o.cpuProfile)
		if err != nil {
			return err
		}
		defer func() { _ = f.Close() }()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
	}
	e.logf("catch-up: %d devices pull their backlog", len(clients))
	rep.Sync = e.drain(ctx, clients, drv)
	if e.o.cpuProfile != "" {
		pprof.StopCPUProfile()
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	e.logf("catch-up: synchro %.0f records/s", rep.Sync.Kinds[kindPull].RecordsPerSec)
	if !e.o.reference {
		return nil
	}

	if e.stopCapture != nil {
		if err := e.stopCapture(); err != nil {
			return fmt.Errorf("stopping change capture: %w", err)
		}
	}
	rd := &rawDriver{db: e.super, pullLimit: e.o.pullLimit, batch: e.o.batch, commits: cm}
	rawClients := e.clients()
	for _, c := range rawClients {
		c.rawAt, c.rawID = mark, ""
	}
	e.logf("raw reference: %d devices read their backlog with plain SQL", len(rawClients))
	raw := e.drain(ctx, rawClients, rd)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	rep.Raw = &raw
	rep.Ratios = ratios(rep.Sync, raw)
	e.logf("catch-up: raw reference %.0f records/s", raw.Kinds[kindPull].RecordsPerSec)
	return nil
}

// drain has every device pull until it has nothing more to read, all at
// once and with no pause, and returns the phase from the first pull to the
// end of the last. A device stops at its first error.
func (e *env) drain(ctx context.Context, clients []*client, drv driver) Phase {
	return allAtOnce(clients, func(c *client, rec *recorder) {
		for ctx.Err() == nil {
			more, err := drv.pull(ctx, c, rec)
			if err != nil {
				if ctx.Err() == nil {
					rec.fail(kindPull, classify(err))
				}
				return
			}
			if !more {
				return
			}
		}
	})
}

// catchUpHealthy reports what -smoke fails on in a catch-up run, besides
// errors: a bootstrap that read nothing, or a side that read fewer records
// than were written for its devices.
func (r *Report) catchUpHealthy() []error {
	var errs []error
	if r.Bootstrap.Kinds[kindSnapshot].Ops == 0 {
		errs = append(errs, errors.New("bootstrap: no snapshot page completed"))
	}
	want := int64(r.Setup.CatchUp) * int64(r.Setup.Clients)
	if got := r.Sync.Kinds[kindPull].Records; got < want {
		errs = append(errs, fmt.Errorf("catch-up: the devices pulled %d records of %d written", got, want))
	}
	if r.Raw != nil {
		if got := r.Raw.Kinds[kindPull].Records; got < want {
			errs = append(errs, fmt.Errorf("catch-up: the raw reference read %d records of %d written", got, want))
		}
	}
	return errs
}

// outputCatchUp prints the report of a catch-up run.
func outputCatchUp(w io.Writer, r *Report) {
	m := r.Machine
	fmt.Fprintf(w, "synchro-load: catch-up of %d new items per device, %d devices, transport %s, pulls of <= %d, no think time\n",
		r.Setup.CatchUp, r.Setup.Clients, r.Setup.Transport, r.Setup.PullLimit)
	fmt.Fprintf(w, "machine: %s/%s, %d CPUs %s, %s; PostgreSQL %s (%s)\n", m.OS, m.Arch, m.CPUs, m.CPUModel, m.GoVersion, m.PostgreSQL, settingsLine(m.Settings))
	printPhase(w, "bootstrap (snapshot pages, before the bulk write)", r.Bootstrap, nil)
	c := r.Capture
	fmt.Fprintf(w, "  capture of the bulk write: %d changelog rows (%.0f/s from the write's start), caught up %.2f s after the write\n",
		c.ChangelogRowsWritten, c.RowsPerSec, c.CatchUpSec)
	fmt.Fprintf(w, "  changelog: %d rows before, %d after, %.1f MB\n", c.ChangelogRowsBefore, c.ChangelogRowsAfter, float64(c.ChangelogBytes)/1e6)
	printPhase(w, "catch-up pull (the whole backlog, flat out)", r.Sync, r.Raw)
	if r.Raw == nil {
		return
	}
	printPhase(w, "raw PostgreSQL reference (the same rows by (updated_at, id), plain SQL)", *r.Raw, nil)
	s, raw := r.Sync.Kinds[kindPull], r.Raw.Kinds[kindPull]
	fmt.Fprintf(w, "\ncatch-up: synchro %.0f records/s (%d records), raw %.0f records/s (%d records), synchro/raw %.2f\n",
		s.RecordsPerSec, s.Records, raw.RecordsPerSec, raw.Records, div(s.RecordsPerSec, raw.RecordsPerSec))
}
