-- 0004_parent_wait.sql: how long a client has been waiting for a parent.
--
-- A pushed create whose parent row is missing is rejected as retryable
-- (parent_not_found): the parent may come later in the device's queue. A
-- device whose queue never delivers it (the parent was dropped on the
-- device, or its SDK keeps resending the same batch) must not be stuck
-- forever: the engine counts the consecutive pushes of the client that
-- were answered parent_not_found, and since when, and after enough of
-- them over enough time answers such records as terminal.
--
--   parent_waits       consecutive pushes answered with parent_not_found,
--                      0 after a push without one
--   parent_wait_since  when the first of them was answered, NULL when none
--
-- Idempotent (IF NOT EXISTS).

ALTER TABLE synchro.clients ADD COLUMN IF NOT EXISTS parent_waits integer NOT NULL DEFAULT 0;
ALTER TABLE synchro.clients ADD COLUMN IF NOT EXISTS parent_wait_since timestamptz NULL;

COMMENT ON COLUMN synchro.clients.parent_waits IS
    'Consecutive pushes of the client answered with a retryable parent_not_found; 0 after one without.';
COMMENT ON COLUMN synchro.clients.parent_wait_since IS
    'When the first of those pushes was answered; NULL when parent_waits is 0.';
