-- jobq migration 0007: unique jobs (schema version 7).
ALTER TABLE jobq_jobs ADD COLUMN unique_key TEXT;
ALTER TABLE jobq_jobs ADD COLUMN unique_while TEXT;
-- Unique jobs (put(unique_key=...)): a job holds its key, in its queue, while its status is
-- one of its unique_while states ('pending': pending and never claimed; 'pending,active':
-- pending, claimed or running). The predicate reads only the row's own columns, so every
-- statement that moves a job moves it out of (or within) this index with no change of its
-- own; the insert's ON CONFLICT repeats the predicate (queries.sql, _unique_held).
CREATE UNIQUE INDEX IF NOT EXISTS jobq_jobs_unique ON jobq_jobs (queue, unique_key)
    WHERE unique_key IS NOT NULL
        AND ((unique_while = 'pending' AND status = 'pending' AND attempt = 0)
            OR (unique_while = 'pending,active'
                AND (status = 'pending' OR status = 'assigned' OR status = 'active')));

-- put(unique_key=, unique_for=): the key of a queue is taken until `until` by the job put
-- then, whatever becomes of that job; a put after `until` takes it again. Expired rows are
-- pruned by the retention loop.
CREATE TABLE IF NOT EXISTS jobq_unique_keys (
    queue TEXT NOT NULL,
    unique_key TEXT NOT NULL,
    job_id INTEGER,
    until INTEGER NOT NULL,
    PRIMARY KEY (queue, unique_key)
);
CREATE INDEX IF NOT EXISTS jobq_unique_keys_until ON jobq_unique_keys (until);
