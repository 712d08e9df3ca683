-- jobq migration 0004: partial index predicates as ORs of equalities (schema version 4).
-- SQLite evaluates a partial index's predicate for every row it inserts or updates, and an IN
-- list there builds a lookup table each time: a completion's UPDATE took 6.8 µs, 3.6 µs with
-- equalities joined by OR. Queries name the same terms, so that SQLite reads the dispatcher
-- index where it scanned the whole table: the sweep of every ping (a worker's own jobs,
-- orphaned jobs) took 150 ms with 1M completed rows, now 0.3 ms. PostgreSQL gets the same
-- definitions, so that both schemas read alike.
DROP INDEX IF EXISTS jobq_jobs_dispatcher;
CREATE INDEX IF NOT EXISTS jobq_jobs_dispatcher ON jobq_jobs (dispatcher_uuid)
    WHERE status = 'assigned' OR status = 'active' OR status = 'callbacks';
DROP INDEX IF EXISTS jobq_jobs_quota_holders;
CREATE INDEX IF NOT EXISTS jobq_jobs_quota_holders ON jobq_jobs (queue)
    WHERE quota_names <> '[]'
        AND (status = 'assigned' OR status = 'active' OR (status = 'pending' AND holds_quota));
