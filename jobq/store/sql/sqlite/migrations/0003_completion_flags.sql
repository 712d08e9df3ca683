-- jobq migration 0003: completion flags (schema version 3).
-- store_result decides "callbacks or completed" and whether jobs wait on this one from the
-- locked row's own columns: a subquery would read the statement's snapshot, which (under
-- PostgreSQL's READ COMMITTED) can miss a callback or a waiter committed while the UPDATE
-- waited for the row lock.
ALTER TABLE jobq_jobs ADD COLUMN has_callbacks INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobq_jobs ADD COLUMN has_waiters INTEGER NOT NULL DEFAULT 0;
UPDATE jobq_jobs SET has_callbacks = 1
WHERE id IN (SELECT parent_id FROM jobq_jobs WHERE parent_id IS NOT NULL);
UPDATE jobq_jobs SET has_waiters = 1
WHERE id IN (SELECT waiting_on FROM jobq_jobs WHERE waiting_on IS NOT NULL);
