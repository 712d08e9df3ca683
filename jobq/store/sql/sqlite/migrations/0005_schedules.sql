-- jobq migration 0005: schedules, cron-driven jobs (schema version 5).
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
    call BLOB NOT NULL,                       -- the job each tick puts, as jobq_jobs.call
    call_repr TEXT NOT NULL,
    retry_policy TEXT,
    failure_log_level INTEGER,
    paused INTEGER NOT NULL DEFAULT 0,
    next_tick INTEGER,                        -- NULL: the expression has no more ticks
    last_tick INTEGER,
    last_job_id INTEGER,
    revision INTEGER NOT NULL DEFAULT 1,      -- bumped by every change of the schedule
    created INTEGER NOT NULL,
    updated INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS jobq_schedules_due ON jobq_schedules (next_tick) WHERE paused = 0;
-- One row per enqueued tick: its primary key is what makes a tick put one job, whatever
-- number of workers race for it.
CREATE TABLE IF NOT EXISTS jobq_schedule_ticks (
    schedule TEXT NOT NULL,
    tick INTEGER NOT NULL,
    job_id INTEGER,
    created INTEGER NOT NULL,
    PRIMARY KEY (schedule, tick)
);
CREATE INDEX IF NOT EXISTS jobq_schedule_ticks_created ON jobq_schedule_ticks (created);
