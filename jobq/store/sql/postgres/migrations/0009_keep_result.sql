-- jobq migration 0009: per-job result expiry (schema version 9).
ALTER TABLE jobq_jobs ADD COLUMN keep_result DOUBLE PRECISION;
ALTER TABLE jobq_jobs ADD COLUMN expires_at TIMESTAMPTZ;
CREATE INDEX IF NOT EXISTS jobq_jobs_expires ON jobq_jobs (expires_at)
    WHERE status = 'completed' AND expires_at IS NOT NULL;
CREATE TABLE IF NOT EXISTS jobq_expired (
    id BIGINT PRIMARY KEY,
    queue TEXT NOT NULL,
    completed_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    keep_result DOUBLE PRECISION NOT NULL,
    pruned_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX IF NOT EXISTS jobq_expired_pruned ON jobq_expired (pruned_at);
