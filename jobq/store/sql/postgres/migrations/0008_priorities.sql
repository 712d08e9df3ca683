-- jobq migration 0008: job priorities (schema version 8).
-- put(..., priority=N), N in -10..10 (default 0): among the due jobs of a lane, higher
-- priorities are claimed first, then by sort_at. The pending index gains the priority after
-- the lane, so that a claim reads each (lane, priority) level's due jobs in order and stops
-- at the first not yet due, as before. Existing rows get priority 0: their order is kept.
ALTER TABLE jobq_jobs ADD COLUMN IF NOT EXISTS priority SMALLINT NOT NULL DEFAULT 0;
DROP INDEX IF EXISTS jobq_jobs_pending;
CREATE INDEX IF NOT EXISTS jobq_jobs_pending ON jobq_jobs (queue, lane, priority DESC, sort_at, id)
    WHERE status = 'pending';
-- A schedule's jobs have its priority (db.schedule(..., priority=N)).
ALTER TABLE jobq_schedules ADD COLUMN IF NOT EXISTS priority SMALLINT NOT NULL DEFAULT 0;
