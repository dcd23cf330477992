package main

import (
	"context"
	"fmt"
	"time"
)

// This file is the part of the demo played by the SDK-shaped devices
// (sdkdevice.go): alice's in Kotlin's shape, bob's in Swift's.

// joinSDK creates an SDK-shaped device speaking shape, builds its local
// store from the schema contract, registers it and bootstraps it from a
// snapshot.
func (s *scenario) joinSDK(ctx context.Context, name, user string, shape sdkShape) (*sdkDevice, error) {
	d, err := newSDKDevice(s.base, s.dir, name, user, shape)
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
	if err := s.settle(ctx, d, outcomes); err != nil {
		return err
	}
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
	butterKey := recordKey{"items", butter}
	butterContest := s.watch(butterKey, `"Butter"`)
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
	if err := s.receive(ctx, laptop, phone, sdk); err != nil {
		return err
	}
	kept, _ := sdk.rowLabel(ctx, "items", butter)
	return s.decide(butterContest, s.expect["alice"][butterKey].updatedAt, kept)
}

// bobScene: bob's SDK-shaped device adds an item to the tablet's list
// "Chores", makes a list of its own and renames the tablet's "Vacuum"; the
// tablet receives it all. Then both edit the same item offline, the tablet
// a moment later; the SDK device pushes first (with a delete), and the
// tablet's later edit wins (last write wins by edit time).
func (s *scenario) bobScene(ctx context.Context, sdk *sdkDevice, tablet *device, chores string) error {
	shelves, garden, leaves := newUUID(), newUUID(), newUUID()
	err := s.offline(ctx, sdk, `adds "Dust shelves" to "Chores", creates list "Garden" with item "Rake leaves", renames "Vacuum" to "Vacuum upstairs"`, func() error {
		if err := sdk.exec(ctx, `INSERT INTO items (id, list_id, title) VALUES (?, ?, ?)`, shelves, chores, "Dust shelves"); err != nil {
			return err
		}
		if err := sdk.exec(ctx, `INSERT INTO lists (id, user_id, name) VALUES (?, ?, ?)`, garden, sdk.user, "Garden"); err != nil {
			return err
		}
		if err := sdk.exec(ctx, `INSERT INTO items (id, list_id, title) VALUES (?, ?, ?)`, leaves, garden, "Rake leaves"); err != nil {
			return err
		}
		vacuum, err := sdk.find(ctx, "items", "Vacuum")
		if err != nil {
			return err
		}
		return sdk.exec(ctx, `UPDATE items SET title = 'Vacuum upstairs' WHERE id = ?`, vacuum)
	})
	if err != nil {
		return err
	}
	if err := s.syncSDK(ctx, sdk); err != nil {
		return err
	}
	if err := s.receive(ctx, tablet); err != nil {
		return err
	}

	// A conflict: the SDK device renames "Dust shelves" and deletes "Rake
	// leaves" offline, the tablet renames "Dust shelves" a moment later;
	// the SDK device syncs first, and the tablet's later edit wins.
	shelvesKey := recordKey{"items", shelves}
	shelvesContest := s.watch(shelvesKey, `"Dust shelves"`)
	err = s.offline(ctx, sdk, `renames "Dust shelves" to "Dust bookshelves", deletes "Rake leaves"`, func() error {
		if err := sdk.exec(ctx, `UPDATE items SET title = 'Dust bookshelves' WHERE id = ?`, shelves); err != nil {
			return err
		}
		return sdk.exec(ctx, `DELETE FROM items WHERE id = ?`, leaves)
	})
	if err != nil {
		return err
	}
	if err := sleep(ctx, 20*time.Millisecond); err != nil {
		return err
	}
	err = s.offline(ctx, tablet, `renames "Dust shelves" to "Dust all shelves" (a moment later)`, func() error {
		return tablet.update(ctx, "items", shelves, map[string]any{"title": "Dust all shelves"})
	})
	if err != nil {
		return err
	}
	if err := s.syncSDK(ctx, sdk); err != nil {
		return err
	}
	if err := s.push(ctx, tablet); err != nil {
		return err
	}
	if err := s.receive(ctx, tablet, sdk); err != nil {
		return err
	}
	kept, _ := sdk.rowLabel(ctx, "items", shelves)
	return s.decide(shelvesContest, s.expect["bob"][shelvesKey].updatedAt, kept)
}
