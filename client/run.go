package client

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"time"
)

// Run syncs until ctx ends or the client is closed, then returns nil (an
// error only when the client was already closed). Each round is a Sync;
// between rounds Run waits for a change: a pull that asks the server to
// hold it until one of the client's buckets changes (Config.PullWait;
// servers without live sync answer at once, and Run then pulls every
// Config.PollInterval), cut short when the application writes to a synced
// table (checked every Config.ChangeCheck), so that local changes are
// pushed at once. A round that fails is tried again after a backoff
// (Config.MinBackoff doubling up to Config.MaxBackoff, with jitter), or
// after the wait the server's Retry-After asks for; Status tells the
// failure meanwhile (offline or error). Changes the server answered
// rejected_retryable are pushed again after the same backoff.
func (c *Client) Run(ctx context.Context) error {
	ctx, done, err := c.enter(ctx)
	if err != nil {
		return err
	}
	defer done()
	failures, retries := 0, 0
	for ctx.Err() == nil {
		err := c.Sync(ctx)
		if ctx.Err() != nil {
			break
		}
		if err != nil {
			failures++
			delay := c.backoff(failures, err)
			c.failed(err, time.Now().Add(delay))
			c.flush()
			c.logger.DebugContext(ctx, "synchro client: round failed", "error", err, "retry_in", delay)
			c.pause(ctx, delay, false)
			continue
		}
		failures = 0
		// Changes answered retryable wait for a backoff of their own.
		var until time.Time
		if c.retryPending() {
			retries++
			until = time.Now().Add(c.backoff(retries, nil))
		} else {
			retries = 0
		}
		if err := c.idle(ctx, until); err != nil && ctx.Err() == nil {
			failures++
			delay := c.backoff(failures, err)
			c.failed(err, time.Now().Add(delay))
			c.flush()
			c.pause(ctx, delay, false)
		}
	}
	return nil
}

// retryPending reports whether the last round kept changes for a retry.
func (c *Client) retryPending() bool { return c.retryAfter.Load() }

// backoff is the wait after the n-th failure in a row: the server's
// Retry-After when err carries one, else MinBackoff doubled n-1 times, at
// most MaxBackoff, less up to a fifth at random.
func (c *Client) backoff(n int, err error) time.Duration {
	var se *ServerError
	if errors.As(err, &se) && se.RetryAfter > 0 {
		return se.RetryAfter
	}
	d := c.cfg.MinBackoff
	for i := 1; i < n && d < c.cfg.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, c.cfg.MaxBackoff)
	return d - time.Duration(rand.Int64N(int64(d)/5+1))
}

// idle waits for a reason to make a round: a change on the server (a pull
// that waits for one, applied here), a local change, or until (zero: no
// deadline of its own). It returns early when ctx ends.
func (c *Client) idle(ctx context.Context, until time.Time) error {
	start := time.Now()
	wait := c.cfg.PullWait
	if !until.IsZero() {
		wait = min(wait, time.Until(until))
	}
	if wait <= 0 {
		// No waiting pulls: poll.
		d := c.cfg.PollInterval
		if !until.IsZero() {
			d = min(d, time.Until(until))
		}
		c.pause(ctx, d, true)
		return nil
	}
	changed, err := c.waitPull(ctx, wait)
	if err != nil || changed || ctx.Err() != nil {
		return err
	}
	// An empty answer sooner than PollInterval: the server does not wait
	// (or not as long); keep to PollInterval.
	rest := c.cfg.PollInterval - time.Since(start)
	if !until.IsZero() {
		rest = min(rest, time.Until(until))
	}
	c.pause(ctx, rest, true)
	return nil
}

// waitPull makes a pull that waits up to wait for a change, without
// holding the round lock, cut short by a local change, and applies what
// it brings. It reports whether a round is due (something came, or the
// application wrote).
func (c *Client) waitPull(ctx context.Context, wait time.Duration) (bool, error) {
	pctx, cancel := context.WithCancel(ctx)
	var local bool
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		local = c.watchChanges(pctx, 0)
		if local {
			cancel()
		}
	}()
	f, err := c.fetchPull(pctx, wait)
	cancel()
	wg.Wait()
	switch {
	case local:
		return true, nil
	case err != nil:
		return false, err
	case f.page.SnapshotRequired:
		return true, nil // the round takes it
	}
	c.mu.Lock()
	more, _, err := c.applyPull(ctx, f)
	c.mu.Unlock()
	c.flush()
	if err != nil {
		return false, err
	}
	return more || len(f.page.Changes)+len(f.page.Deletes) > 0, nil
}

// pause waits d or until ctx ends; with watch, also until the application
// writes to a synced table.
func (c *Client) pause(ctx context.Context, d time.Duration, watch bool) {
	if d <= 0 {
		return
	}
	if watch {
		c.watchChanges(ctx, d)
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// watchChanges checks every ChangeCheck whether the application wrote to
// a synced table since the last push read the outbox, until it did (true),
// ctx ends or, when d is positive, d passes.
func (c *Client) watchChanges(ctx context.Context, d time.Duration) bool {
	seen := c.changes.Load()
	var deadline <-chan time.Time
	if d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		deadline = t.C
	}
	tick := time.NewTicker(c.cfg.ChangeCheck)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return false
		case <-deadline:
			return false
		case <-tick.C:
			n, err := c.store.Changes(ctx)
			if err == nil && n != seen {
				return true
			}
		}
	}
}
