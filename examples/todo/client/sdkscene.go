package main

import (
	"context"
	"fmt"
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
	return d, s.join(ctx, d)
}

// syncSDK runs one SDK cycle on d (push, then pull) and prints the
// outcome; what the server accepted becomes what the user's devices must
// receive.
func (s *scenario) syncSDK(ctx context.Context, d *sdkDevice) error {
	outcomes, arrivals, err := d.sync(ctx)
	if err != nil {
		return fmt.Errorf("%s: %w", d.name, err)
	}
	s.settle(ctx, d, outcomes)
	s.sayArrivals(d.name, arrivals)
	return nil
}

// sdkScene: the SDK-shaped device creates, updates and deletes items of
// the list, alice's other devices receive them, and a conflict with the
// laptop is resolved by the server.
func (s *scenario) sdkScene(ctx context.Context, sdk *sdkDevice, laptop, phone *device, list string) error {
	if err := s.receive(ctx, sdk); err != nil { // it catches up first
		return err
	}
	butter, jam := newUUID(), newUUID()
	err := s.offline(ctx, sdk, `adds "Butter" and "Jam", ticks "Sourdough bread" off`, func() error {
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
	err = s.offline(ctx, sdk, `renames "Butter" to "Vegan butter", deletes "Jam"`, func() error {
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
	return s.receive(ctx, laptop, phone, sdk)
}
