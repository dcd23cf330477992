package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/synchrosync/synchro"
)

// This file tells the truth about the demo's conflicts: each push of a
// record two devices edited offline is explained by the engine's rule of
// last write wins (synchro.LWWResolver), from what went over the wire: the
// client_updated_at and base_updated_at the device sent, and the result
// the server answered (status, reason, server_updated_at or the conflict's
// server_version). The demo applies the rule itself to what it knows of
// the row's version (the server's earlier answers) and fails when the
// server's answer contradicts it.

// serverSkewTolerance is the example server's Config.ClockSkewTolerance:
// the default, none (todoapp/app.go sets none).
const serverSkewTolerance = 0

// contest is a record two devices edit offline, a conflict scene: the
// transcript explains each push of it (settle), and decide tells which
// edit won.
type contest struct {
	key    recordKey
	what   string // the record, as the transcript names it: `"Milk"`
	pushes []contestPush
}

// contestPush is one push of a contest's record.
type contestPush struct {
	who  string
	wire pushWire
}

// watch opens a contest over the record k, which the transcript calls
// what. The first one also states the rule.
func (s *scenario) watch(k recordKey, what string) *contest {
	if !s.ruleStated {
		s.ruleStated = true
		s.out.say("rule", "last write wins by edit time. A row's version (its updated_at) is the edit time of the write that made it:")
		s.out.more(
			fmt.Sprintf("a pushed edit's client_updated_at, capped at the server's clock when the push starts (plus ClockSkewTolerance, %v here),", time.Duration(serverSkewTolerance)),
			"so a device clock ahead cannot leave a version beyond the server's clock; moved just past the previous version if not later.",
			"A device sends the version it edited as base_updated_at: its edit wins when that is still the row's version, else when it was made later.")
	}
	c := &contest{key: k, what: what}
	s.contests[k] = c
	return c
}

// explain returns the lines that explain the outcome o of a push of a
// contest's record by who, made while the row's version was current (as
// the server's earlier answers gave it), and an error when the server's
// answer contradicts the rule.
func (c *contest) explain(who string, o pushOutcome, current time.Time) ([]string, error) {
	w := o.wire
	if w == nil {
		return nil, fmt.Errorf("%s: %s: the push was not seen on the wire", who, c.what)
	}
	c.pushes = append(c.pushes, contestPush{who: who, wire: *w})
	edit := w.editedAt.Truncate(time.Microsecond) // the engine keeps microseconds
	base := "no base_updated_at"
	if w.base != nil {
		base = "base_updated_at " + stamp(*w.base) + " (the version it was made on)"
	}
	lines := []string{fmt.Sprintf("%q: sent client_updated_at %s (its edit time), %s", w.value, stamp(w.editedAt), base)}

	// The rule (synchro.LWWResolver), on the version the row has.
	var clientWins bool
	var why string
	since := "" // who made the current version, when this contest did
	for _, p := range c.pushes[:len(c.pushes)-1] {
		if p.wire.version != nil && p.wire.version.Equal(current) {
			since = " since " + p.who + "'s edit"
		}
	}
	switch {
	case w.base != nil && w.base.Equal(current):
		clientWins, why = true, "the base is still the row's version (nobody changed the row since), so the client wins"
	case w.base != nil && w.base.After(current):
		why = fmt.Sprintf("the base is ahead of the row's version %s, so the server wins", stamp(current))
	case edit.After(current):
		clientWins, why = true, fmt.Sprintf("the row's version is %s%s, not the base, and this edit is later, so it wins", stamp(current), since)
	default:
		why = fmt.Sprintf("the row's version is %s%s, not the base, and this edit is not later, so the server wins", stamp(current), since)
	}

	if w.version == nil {
		return nil, fmt.Errorf("%s: %s: the server's answer (%s) gives no version", who, c.what, o.status)
	}
	got := *w.version
	if !clientWins {
		if o.status != synchro.PushStatusConflict || o.reason != "server_won_conflict" {
			return nil, fmt.Errorf("%s: %s: the server answered %s (%s), but by the rule the server wins: %s", who, c.what, o.status, o.reason, why)
		}
		if !got.Equal(current) {
			return nil, fmt.Errorf("%s: %s: the conflict's server_version has updated_at %s, not the row's version %s", who, c.what, stamp(got), stamp(current))
		}
		return append(lines, fmt.Sprintf("%s: %s; server_version's updated_at %s: the row is unchanged", o.status, why, stamp(got))), nil
	}
	if o.status != synchro.PushStatusApplied {
		return nil, fmt.Errorf("%s: %s: the server answered %s (%s: %s), but by the rule the client wins: %s", who, c.what, o.status, o.reason, o.message, why)
	}
	// The new version: the edit time, capped at the database clock at the
	// push (plus the tolerance), or just past the current version when not
	// later than it.
	var became string
	switch next := current.Add(time.Microsecond); {
	case got.Equal(edit) && edit.After(current):
		became = "the new version is its edit time"
	case got.Equal(next) && !edit.After(current):
		became = "just past the previous version, its edit time being no later"
	case got.After(current) && got.Before(edit):
		became = "its edit time, capped at the server's clock at the push"
	default:
		return nil, fmt.Errorf("%s: %s: the server gave the row version %s; by the rule it is the edit time %s (at most; just past %s if not later)",
			who, c.what, stamp(got), stamp(edit), stamp(current))
	}
	return append(lines, fmt.Sprintf("%s: %s; server_updated_at %s: %s", o.status, why, stamp(got), became)), nil
}

// decide says which of the contest's two edits the server kept, by what
// the server answered, and checks it against the row's version now
// (current) and what the devices show (kept): the later edit must have
// won, whichever was pushed first. It closes the contest.
func (s *scenario) decide(c *contest, current time.Time, kept string) error {
	delete(s.contests, c.key)
	if len(c.pushes) != 2 {
		return fmt.Errorf("%s: %d pushes seen, want 2", c.what, len(c.pushes))
	}
	order := []string{"pushed first", "pushed second"}
	win, lose := 1, 0
	if c.pushes[0].wire.editedAt.After(c.pushes[1].wire.editedAt) {
		win, lose = 0, 1
	}
	w, l := c.pushes[win], c.pushes[lose]
	s.out.say("outcome", "%s: the later edit won: %s's %q (edited %s, %s) over %s's %q (edited %s, %s);",
		c.what, w.who, w.wire.value, stamp(w.wire.editedAt), order[win], l.who, l.wire.value, stamp(l.wire.editedAt), order[lose])
	s.out.more(fmt.Sprintf("the row's version is %s, and the devices show %q", stamp(current), kept))
	var errs []error
	if kept != w.wire.value {
		errs = append(errs, fmt.Errorf("%s: the devices show %q, not the later edit %q", c.what, kept, w.wire.value))
	}
	if w.wire.version == nil || !w.wire.version.Equal(current) {
		errs = append(errs, fmt.Errorf("%s: the row's version %s is not the one the later edit's push was given", c.what, stamp(current)))
	}
	return errors.Join(errs...)
}

// stamp renders a time of the transcript's explanations: UTC, to the
// microsecond, as the engine keeps versions.
func stamp(t time.Time) string {
	return t.UTC().Format("15:04:05.000000Z")
}
