package main

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// This file is the part of the demo played by the SDK-shaped device
// (sdkdevice.go).

// joinSDK creates an SDK-shaped device, builds its local store from the
// schema contract, registers it and bootstraps it from a snapshot.
func (s *scenario) joinSDK(ctx context.Context, name, user string) (*sdkDevice, error) {
	d, err := newSDKDevice(s.base, s.dir, name, user)
	if err != nil {
		return nil, err
	}
	s.sdkDevices = append(s.sdkDevices, d)
	if err := d.register(ctx); err != nil {
		return nil, fmt.Errorf("%s: registering: %w", name, err)
	}
	counts, err := d.snapshot(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s: snapshot: %w", name, err)
	}
	s.out.say(name, "registered as user %s, speaking the original SDKs' wire (JSON maps, whole rows, SQLite triggers); snapshot: %s",
		user, countText(counts, slices.Sorted(maps.Keys(d.tables))))
	return d, nil
}

// offlineSDK makes local writes on d with plain SQL; its triggers queue
// them.
func (s *scenario) offlineSDK(ctx context.Context, d *sdkDevice, what string, writes func() error) error {
	if err := writes(); err != nil {
		return fmt.Errorf("%s: writing offline: %w", d.name, err)
	}
	n, err := d.pending(ctx)
	if err != nil {
		return err
	}
	s.out.say(d.name, "offline: %s (%d pending, queued by its triggers)", what, n)
	return nil
}

// syncSDK runs one SDK cycle on d (push, then pull), prints the outcome,
// and records what the server accepted as what the user's devices must
// receive.
func (s *scenario) syncSDK(ctx context.Context, d *sdkDevice) error {
	outcomes, arrivals, err := d.sync(ctx)
	if err != nil {
		return fmt.Errorf("%s: %w", d.name, err)
	}
	want := s.expect[d.user]
	if want == nil {
		want = map[recordKey]version{}
		s.expect[d.user] = want
	}
	var applied []string
	for _, o := range outcomes {
		key := recordKey{o.table, o.id}
		switch o.status {
		case "applied":
			applied = append(applied, o.op+" "+noun(o.table, 1))
			if o.op == "delete" {
				want[key] = version{deleted: true}
			} else if at, ok := parseStamp(o.serverUpdatedAt); ok {
				want[key] = version{updatedAt: at}
			}
		case "conflict":
			kept := ""
			if t := d.tables[o.table]; t != nil {
				if row, err := readSDKRow(ctx, d.db, t, o.id); err == nil && row != nil {
					kept = fmt.Sprintf("; the server kept %q, now on this device too", sdkLabel(row))
				}
			}
			s.out.say(d.name, "push: %s %s %q is a conflict (%s: %s)%s", o.op, noun(o.table, 1), o.label, o.reason, o.message, kept)
		default:
			s.out.say(d.name, "push: %s %s %q %s (%s: %s)", o.op, noun(o.table, 1), o.label, o.status, o.reason, o.message)
		}
	}
	if len(applied) > 0 {
		s.out.say(d.name, "push: %d applied (%s)", len(applied), strings.Join(applied, ", "))
	}
	s.sayArrivals(d, arrivals)
	return nil
}

// receiveSDK syncs d until everything the server accepted from its user
// has arrived.
func (s *scenario) receiveSDK(ctx context.Context, d *sdkDevice) error {
	arrivals, err := d.waitFor(ctx, s.expect[d.user])
	if err != nil {
		return err
	}
	if len(arrivals) == 0 {
		s.out.say(d.name, "pull: up to date")
		return nil
	}
	s.sayArrivals(d, arrivals)
	return nil
}

func (s *scenario) sayArrivals(d *sdkDevice, arrivals []sdkArrival) {
	if len(arrivals) == 0 {
		return
	}
	texts := make([]string, len(arrivals))
	for i, a := range arrivals {
		texts[i] = a.String()
	}
	s.out.say(d.name, "pull: %s", strings.Join(texts, "; "))
}

// sdkScene: the SDK-shaped device creates, updates and deletes items of
// the list, alice's other devices receive them, and a conflict with the
// laptop is resolved by the server.
func (s *scenario) sdkScene(ctx context.Context, sdk *sdkDevice, laptop, phone *device, list string) error {
	if err := s.receiveSDK(ctx, sdk); err != nil { // it catches up first
		return err
	}
	butter, jam := newUUID(), newUUID()
	err := s.offlineSDK(ctx, sdk, `adds "Butter" and "Jam", ticks "Sourdough bread" off`, func() error {
		for id, title := range map[string]string{butter: "Butter", jam: "Jam"} {
			if err := sdk.exec(ctx, `INSERT INTO items (id, list_id, title) VALUES (?, ?, ?)`, id, list, title); err != nil {
				return err
			}
		}
		bread, err := sdk.find(ctx, "items", "Sourdough bread")
		if err != nil {
			return err
		}
		return sdk.exec(ctx, `UPDATE items SET done = 1 WHERE id = ?`, bread)
	})
	if err != nil {
		return err
	}
	if err := s.syncSDK(ctx, sdk); err != nil {
		return err
	}
	if err := s.receive(ctx, laptop); err != nil {
		return err
	}

	// A conflict: the SDK device renames "Butter" offline, then the laptop
	// renames it too and pushes first; the SDK device also deletes "Jam"
	// (a local DELETE, which its trigger turns into a soft delete).
	err = s.offlineSDK(ctx, sdk, `renames "Butter" to "Vegan butter", deletes "Jam"`, func() error {
		if err := sdk.exec(ctx, `UPDATE items SET title = 'Vegan butter' WHERE id = ?`, butter); err != nil {
			return err
		}
		return sdk.exec(ctx, `DELETE FROM items WHERE id = ?`, jam)
	})
	if err != nil {
		return err
	}
	if err := sleep(ctx, 20*time.Millisecond); err != nil {
		return err
	}
	err = s.offline(ctx, laptop, `renames "Butter" to "Salted butter" (a moment later)`, func() error {
		return laptop.update(ctx, "items", butter, map[string]any{"title": "Salted butter"})
	})
	if err != nil {
		return err
	}
	if err := s.push(ctx, laptop); err != nil {
		return err
	}
	if err := s.syncSDK(ctx, sdk); err != nil {
		return err
	}
	for _, d := range []*device{laptop, phone} {
		if err := s.receive(ctx, d); err != nil {
			return err
		}
	}
	return s.receiveSDK(ctx, sdk)
}
