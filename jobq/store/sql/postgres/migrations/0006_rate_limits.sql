-- jobq migration 0006: rate limits (schema version 6).
ALTER TABLE jobq_jobs ADD COLUMN IF NOT EXISTS rate_limits TEXT NOT NULL DEFAULT '[]';

-- Rate limits (queue.rate_limits): at most max_claims claims of jobs naming one, in any
-- interval of `per` seconds, across every worker. Each claim of such a job writes a row of
-- jobq_rate_limit_claims (its time) in the claim's transaction; the claim counts the rows of
-- the last `per` seconds, and forgets a row a minute after it left the window.
CREATE TABLE IF NOT EXISTS jobq_rate_limits (
    queue TEXT NOT NULL,
    name TEXT NOT NULL,
    max_claims INTEGER NOT NULL,
    per DOUBLE PRECISION NOT NULL,                      -- seconds
    PRIMARY KEY (queue, name)
);
CREATE TABLE IF NOT EXISTS jobq_rate_limit_claims (
    queue TEXT NOT NULL,
    name TEXT NOT NULL,
    at TIMESTAMPTZ NOT NULL,                         -- the claim's time
    job_id BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS jobq_rate_limit_claims_at ON jobq_rate_limit_claims (queue, name, at);
