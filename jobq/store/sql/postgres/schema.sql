-- jobq schema, version 12 (migrations/ upgrade older databases), PostgreSQL.
CREATE TABLE IF NOT EXISTS jobq_schema (version INTEGER NOT NULL);

CREATE TABLE IF NOT EXISTS jobq_jobs (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    queue TEXT NOT NULL,
    status TEXT NOT NULL,
    lane SMALLINT NOT NULL DEFAULT 1,         -- 0: put back (front of the queue), 1: normal
    sort_at TIMESTAMPTZ NOT NULL,             -- max(begin_after, time put): queue order
    begin_after TIMESTAMPTZ NOT NULL,
    begin_by DOUBLE PRECISION,                -- seconds after begin_after, or NULL
    job_class TEXT,
    call BYTEA NOT NULL,
    call_repr TEXT NOT NULL,
    retry_policy TEXT,
    retry_data TEXT NOT NULL DEFAULT '{}',
    failure_log_level INTEGER,
    quota_names TEXT NOT NULL DEFAULT '[]',
    annotations TEXT NOT NULL DEFAULT '{}',
    attempt INTEGER NOT NULL DEFAULT 0,       -- bumped by every claim: the fencing token
    dispatcher_uuid TEXT,
    agent_name TEXT,
    put_by TEXT,
    parent_id BIGINT,
    waiting_on BIGINT,
    result BYTEA,
    result_repr TEXT,
    failed BOOLEAN NOT NULL DEFAULT FALSE,
    failure TEXT,
    created TIMESTAMPTZ NOT NULL,
    assigned_at TIMESTAMPTZ,
    active_start TIMESTAMPTZ,
    active_end TIMESTAMPTZ,
    completed_at TIMESTAMPTZ,
    holds_quota BOOLEAN NOT NULL DEFAULT FALSE,  -- pending with its quota slots kept (put back now)
    has_callbacks BOOLEAN NOT NULL DEFAULT FALSE,  -- set by add_callback: its result releases callbacks
    has_waiters BOOLEAN NOT NULL DEFAULT FALSE,    -- set by wait_on: jobs returned it and adopt its result
    rate_limits TEXT NOT NULL DEFAULT '[]',     -- names of its queue's rate limits (JSON list)
    unique_key TEXT,                          -- put(unique_key=): at most one holder per queue
    unique_while TEXT,                        -- 'pending' or 'pending,active': while it holds the key
    priority SMALLINT NOT NULL DEFAULT 0,         -- -10..10: higher first among due jobs of a lane
    keep_result DOUBLE PRECISION,  -- put(keep_result=): seconds kept once completed
    expires_at TIMESTAMPTZ  -- completed_at + keep_result: pruned after it
);
CREATE INDEX IF NOT EXISTS jobq_jobs_pending ON jobq_jobs (queue, lane, priority DESC, sort_at, id)
    WHERE status = 'pending';
-- The jobs a dispatcher holds. With the id, a fenced write (`id = ... AND dispatcher_uuid =
-- ...`) that the planner takes through this index probes its one row: through
-- (dispatcher_uuid) alone it read every version of the dispatcher's jobs not yet vacuumed.
CREATE INDEX IF NOT EXISTS jobq_jobs_dispatcher ON jobq_jobs (dispatcher_uuid, id)
    WHERE status = 'assigned' OR status = 'active' OR status = 'callbacks';
-- The front-lane jobs a dispatcher holds unstarted: each fenced start checks there are none
-- (start_job) without reading every job the dispatcher holds.
CREATE INDEX IF NOT EXISTS jobq_jobs_held_front ON jobq_jobs (dispatcher_uuid, queue)
    WHERE status = 'assigned' AND lane = 0;
CREATE INDEX IF NOT EXISTS jobq_jobs_parent ON jobq_jobs (parent_id) WHERE parent_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS jobq_jobs_waiting ON jobq_jobs (waiting_on) WHERE waiting_on IS NOT NULL;
CREATE INDEX IF NOT EXISTS jobq_jobs_completed ON jobq_jobs (completed_at) WHERE status = 'completed';
-- Jobs put with keep_result, by the time they expire: retention's delete is a range scan.
CREATE INDEX IF NOT EXISTS jobq_jobs_expires ON jobq_jobs (expires_at)
    WHERE status = 'completed' AND expires_at IS NOT NULL;
-- The jobs holding quota slots of a queue: claimed, running, or pending with a kept slot.
CREATE INDEX IF NOT EXISTS jobq_jobs_quota_holders ON jobq_jobs (queue)
    WHERE quota_names <> '[]'
        AND (status = 'assigned' OR status = 'active' OR (status = 'pending' AND holds_quota));

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

CREATE TABLE IF NOT EXISTS jobq_queues (
    name TEXT PRIMARY KEY,
    paused BOOLEAN NOT NULL DEFAULT FALSE,
    created TIMESTAMPTZ NOT NULL
);

CREATE TABLE IF NOT EXISTS jobq_quotas (
    queue TEXT NOT NULL,
    name TEXT NOT NULL,
    size INTEGER NOT NULL,
    PRIMARY KEY (queue, name)
);

CREATE TABLE IF NOT EXISTS jobq_dispatchers (
    uuid TEXT PRIMARY KEY,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    started TIMESTAMPTZ NOT NULL,
    last_ping TIMESTAMPTZ,
    ping_interval DOUBLE PRECISION NOT NULL,
    death_interval DOUBLE PRECISION NOT NULL,
    activated TIMESTAMPTZ,
    deactivated TIMESTAMPTZ
);

CREATE TABLE IF NOT EXISTS jobq_agents (
    dispatcher_uuid TEXT NOT NULL,
    queue TEXT NOT NULL,
    name TEXT NOT NULL,
    size INTEGER NOT NULL,
    filter TEXT,
    filter_seal TEXT,                         -- the filter's signature with JOBQ_SECRET
    PRIMARY KEY (dispatcher_uuid, queue, name)
);

-- Schedules (db.schedule): a cron expression and the job each of its ticks puts. next_tick is
-- the first tick not yet enqueued (UTC); a worker that enqueues ticks moves it on, only if it
-- still holds the value and revision it read, in the transaction that inserts the jobs.
CREATE TABLE IF NOT EXISTS jobq_schedules (
    name TEXT PRIMARY KEY,
    cron TEXT NOT NULL,
    timezone TEXT NOT NULL,
    queue TEXT NOT NULL,
    missed TEXT NOT NULL,                     -- skip, once or all: ticks no worker saw in time
    catch_up INTEGER NOT NULL,                -- missed="all": at most this many missed ticks
    job_class TEXT,
    call BYTEA NOT NULL,                       -- the job each tick puts, as jobq_jobs.call
    call_repr TEXT NOT NULL,
    retry_policy TEXT,
    failure_log_level INTEGER,
    paused BOOLEAN NOT NULL DEFAULT FALSE,
    next_tick TIMESTAMPTZ,                       -- NULL: the expression has no more ticks
    last_tick TIMESTAMPTZ,
    last_job_id BIGINT,
    revision INTEGER NOT NULL DEFAULT 1,      -- bumped by every change of the schedule
    created TIMESTAMPTZ NOT NULL,
    updated TIMESTAMPTZ NOT NULL,
    priority SMALLINT NOT NULL DEFAULT 0           -- of the jobs its ticks put
);
CREATE INDEX IF NOT EXISTS jobq_schedules_due ON jobq_schedules (next_tick) WHERE NOT paused;
-- One row per enqueued tick: its primary key is what makes a tick put one job, whatever
-- number of workers race for it.
CREATE TABLE IF NOT EXISTS jobq_schedule_ticks (
    schedule TEXT NOT NULL,
    tick TIMESTAMPTZ NOT NULL,
    job_id BIGINT,
    created TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (schedule, tick)
);
CREATE INDEX IF NOT EXISTS jobq_schedule_ticks_created ON jobq_schedule_ticks (created);

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

-- put(unique_key=, unique_for=): the key of a queue is taken until `until` by the job put
-- then, whatever becomes of that job; a put after `until` takes it again. Expired rows are
-- pruned by the retention loop.
CREATE TABLE IF NOT EXISTS jobq_unique_keys (
    queue TEXT NOT NULL,
    unique_key TEXT NOT NULL,
    job_id BIGINT,
    until TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (queue, unique_key)
);
CREATE INDEX IF NOT EXISTS jobq_unique_keys_until ON jobq_unique_keys (until);

-- Jobs pruned at their keep_result expiry, so that reading one says it expired (when, and
-- why) instead of "no such job". Retention forgets a record 7 days after it was written.
CREATE TABLE IF NOT EXISTS jobq_expired (
    id BIGINT PRIMARY KEY,
    queue TEXT NOT NULL,
    completed_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    keep_result DOUBLE PRECISION NOT NULL,
    pruned_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX IF NOT EXISTS jobq_expired_pruned ON jobq_expired (pruned_at);
