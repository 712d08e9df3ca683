-- jobq migration 0012: the dispatcher index carries the job's id (schema version 12).
-- On PostgreSQL a fenced write (`id = ... AND dispatcher_uuid = ...`) planned through this
-- index read every job its dispatcher held; with the id it probes one row. SQLite finds such
-- a row by its INTEGER PRIMARY KEY, and its index entries already end with the rowid: the
-- index is named the same way here so that both engines keep one schema.
DROP INDEX IF EXISTS jobq_jobs_dispatcher;
CREATE INDEX IF NOT EXISTS jobq_jobs_dispatcher ON jobq_jobs (dispatcher_uuid, id)
    WHERE status = 'assigned' OR status = 'active' OR status = 'callbacks';
