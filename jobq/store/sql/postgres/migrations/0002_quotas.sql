-- jobq migration 0002: quotas enforced in claims (schema version 2).
-- holds_quota: a pending job put back at the front after an interruption (or a claimed job
-- released before it started) keeps its quota slots until it is claimed again.
ALTER TABLE jobq_jobs ADD COLUMN IF NOT EXISTS holds_quota BOOLEAN NOT NULL DEFAULT FALSE;
-- The jobs holding quota slots of a queue: claimed, running, or pending with a kept slot.
CREATE INDEX IF NOT EXISTS jobq_jobs_quota_holders ON jobq_jobs (queue)
    WHERE quota_names <> '[]' AND (status IN ('assigned', 'active') OR (status = 'pending' AND holds_quota));
