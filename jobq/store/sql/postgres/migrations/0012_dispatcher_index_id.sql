-- jobq migration 0012: the dispatcher index carries the job's id (schema version 12).
-- Each fenced write names its job and its dispatcher (`id = ... AND dispatcher_uuid = ...`),
-- and the planner takes it through this partial index, smaller than the primary key: on
-- (dispatcher_uuid) alone that read every job the dispatcher held, and every version of them
-- not yet vacuumed, on each start and each result, so a start grew with the jobs held
-- (docs/benchmarks.md). With the id, the same plan probes its one row.
DROP INDEX IF EXISTS jobq_jobs_dispatcher;
CREATE INDEX IF NOT EXISTS jobq_jobs_dispatcher ON jobq_jobs (dispatcher_uuid, id)
    WHERE status = 'assigned' OR status = 'active' OR status = 'callbacks';
