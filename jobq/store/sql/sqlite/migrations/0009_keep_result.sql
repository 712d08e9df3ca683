-- jobq migration 0009: per-job result expiry (schema version 9).
ALTER TABLE jobq_jobs ADD COLUMN keep_result REAL;
ALTER TABLE jobq_jobs ADD COLUMN expires_at INTEGER;
CREATE INDEX IF NOT EXISTS jobq_jobs_expires ON jobq_jobs (expires_at)
    WHERE status = 'completed' AND expires_at IS NOT NULL;
CREATE TABLE IF NOT EXISTS jobq_expired (
    id INTEGER PRIMARY KEY,
    queue TEXT NOT NULL,
    completed_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    keep_result REAL NOT NULL,
    pruned_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS jobq_expired_pruned ON jobq_expired (pruned_at);
