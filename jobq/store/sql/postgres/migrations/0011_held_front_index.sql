-- jobq migration 0011: an index of the front-lane jobs held unstarted (schema version 11).
-- A fenced start of a job claimed ahead checks that its dispatcher holds no front-lane job
-- unstarted (start_job); through the dispatcher index that check read every job the worker
-- held, assigned or active, on each start (about 50 rows at the default agent, more at a
-- larger one, inside SQLite's write lock). Only put-back jobs claimed ahead are in this one.
CREATE INDEX IF NOT EXISTS jobq_jobs_held_front ON jobq_jobs (dispatcher_uuid, queue)
    WHERE status = 'assigned' AND lane = 0;
