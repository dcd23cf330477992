-- 0004_parent_wait.sql: the pushed records of a client that wait for their
-- parent.
--
-- A pushed record whose parent row (or the row a foreign key of it refers
-- to) is missing is rejected as retryable (parent_not_found): the parent
-- may come later in the device's queue. A device whose queue never
-- delivers it (the parent was dropped on the device, or its SDK keeps
-- resending a batch the parent is not in) must not be stuck forever. The
-- engine keeps, per client, the records answered parent_not_found by its
-- last push: for each, how many pushes of the client since it first waited
-- applied nothing at all, and since when it waits. A record that has
-- waited through enough such pushes over enough time is answered as
-- terminal.
--
--   parent_waits  a JSON array of {"table", "id", "stalled", "since"}: the
--                 records of the client's last push still waiting for
--                 their parent; [] when none
--
-- Idempotent (IF NOT EXISTS).

ALTER TABLE synchro.clients ADD COLUMN IF NOT EXISTS parent_waits jsonb NOT NULL DEFAULT '[]';

COMMENT ON COLUMN synchro.clients.parent_waits IS
    'Records of the client''s last push waiting for their parent: [{"table","id","stalled","since"}].';
