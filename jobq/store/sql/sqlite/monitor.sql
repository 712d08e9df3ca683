-- jobq monitoring queries for SQLite (read models, operator actions, retention).
-- Same "-- name:" format as queries.sql. A block whose name starts with "_" is a fragment,
-- pasted where a query says /*_name*/ (at load time: still bound parameters only).
-- Times are integer microseconds since the epoch (UTC); durations are returned in seconds.

-- name: _job_filter
-- The filters of the catalogue (8.3). A NULL parameter means "no such filter". Globs arrive
-- as LIKE patterns (escape character backslash); LIKE is case-insensitive on SQLite.
-- agent/uuid do not restrict pending jobs here: the monitor layer judges those with the
-- agents' filters. :call_name matches the callable's full dotted name, :call_short its last
-- part (the text after the last dot of the name, which ends where the arguments begin).
status IN (SELECT value FROM json_each(:states))
    AND (:failed IS NULL OR status <> 'completed' OR failed = :failed)
    AND (:queue IS NULL OR queue LIKE :queue ESCAPE '\')
    AND (:agent IS NULL OR status = 'pending' OR agent_name LIKE :agent ESCAPE '\')
    AND (:uuid IS NULL OR status = 'pending' OR dispatcher_uuid = :uuid)
    AND (:queues IS NULL OR queue IN (SELECT value FROM json_each(:queues)))
    AND (:call_name IS NULL
        OR substr(call_repr, 1, instr(call_repr || '(', '(') - 1) LIKE :call_name ESCAPE '\')
    AND (:call_short IS NULL
        OR substr(substr(call_repr, 1, instr(call_repr || '(', '(') - 1),
            length(rtrim(substr(call_repr, 1, instr(call_repr || '(', '(') - 1),
                replace(substr(call_repr, 1, instr(call_repr || '(', '(') - 1), '.', ''))) + 1)
            LIKE :call_short ESCAPE '\')
    AND (:requested_since IS NULL OR begin_after > :requested_since)
    AND (:requested_before IS NULL OR begin_after < :requested_before)
    AND (:start_since IS NULL OR (status <> 'pending' AND active_start > :start_since))
    AND (:start_before IS NULL OR (status <> 'pending' AND active_start < :start_before))
    AND (:end_since IS NULL
        OR (status IN ('callbacks', 'completed') AND active_end > :end_since))
    AND (:end_before IS NULL
        OR (status IN ('callbacks', 'completed') AND active_end < :end_before))
    AND (:completed_since IS NULL OR (status = 'completed' AND completed_at > :completed_since))
    AND (:completed_before IS NULL
        OR (status = 'completed' AND completed_at < :completed_before))
    AND (:priority_min IS NULL OR priority >= :priority_min)
    AND (:priority_max IS NULL OR priority <= :priority_max)

-- name: _job_order
-- Pending jobs first in queue order (put back, then higher priorities, then by when they
-- became due), then jobs held
-- by agents by start (or claim) time, oldest first, then completed jobs, newest first.
CASE status WHEN 'pending' THEN 0 WHEN 'completed' THEN 2 ELSE 1 END,
    CASE WHEN status = 'pending' THEN lane END,
    CASE WHEN status = 'pending' THEN priority END DESC,
    CASE WHEN status = 'pending' THEN sort_at END,
    CASE WHEN status IN ('assigned', 'active', 'callbacks')
        THEN coalesce(active_start, assigned_at, created) END,
    CASE WHEN status = 'completed' THEN completed_at END DESC,
    CASE WHEN status = 'completed' THEN -id ELSE id END

-- name: monitor_jobs
SELECT /*_job_columns*/ FROM jobq_jobs WHERE /*_job_filter*/
ORDER BY /*_job_order*/ LIMIT :limit OFFSET :offset;

-- name: monitor_completed_jobs
-- monitor_jobs when only completed jobs are asked for (`jobq jobs completed`, lastcompleted):
-- the same order for such rows, newest first, read backwards along the completed index
-- (`status = 'completed'` as its own term, so that the planner may use it), stopping at the
-- limit instead of sorting every completed row (1.3 s with 2M rows on SQLite).
SELECT /*_job_columns*/ FROM jobq_jobs WHERE status = 'completed' AND /*_job_filter*/
ORDER BY completed_at DESC, id DESC LIMIT :limit OFFSET :offset;

-- name: monitor_pending_queues
-- The queues that have pending jobs, narrowed by the queue filters: one probe of the pending
-- index per queue (a loose index scan), not a read of every pending row.
WITH RECURSIVE pending(queue) AS (
    SELECT min(queue) FROM jobq_jobs WHERE status = 'pending'
    UNION ALL
    SELECT (SELECT min(queue) FROM jobq_jobs WHERE status = 'pending' AND queue > pending.queue)
    FROM pending WHERE pending.queue IS NOT NULL)
SELECT queue FROM pending
WHERE queue IS NOT NULL
    AND (:queue IS NULL OR queue LIKE :queue ESCAPE '\')
    AND (:queues IS NULL OR queue IN (SELECT value FROM json_each(:queues)));

-- name: monitor_pending_jobs
-- monitor_jobs when only pending jobs are asked for (`jobq jobs pending`, nextpending), in
-- one queue of monitor_pending_queues: its pending index read in queue order (the general
-- order for such rows), stopping after :first rows; the store merges the queues' rows by the
-- sort_at read here. Without it, a listing sorted every pending row (0.5 s with 1M).
SELECT /*_job_columns*/, sort_at FROM jobq_jobs
WHERE queue = :pending_queue AND status = 'pending' AND /*_job_filter*/
ORDER BY lane, priority DESC, sort_at, id LIMIT :first;

-- name: monitor_held_jobs
-- monitor_jobs when only jobs held by workers are asked for (assigned, active, callbacks: `jobq
-- jobs active`): read from the dispatcher index (its predicate as its own term), the same
-- order for such rows, oldest start first, instead of every row (0.21 s with 2M rows on
-- SQLite).
SELECT /*_job_columns*/ FROM jobq_jobs
WHERE (status = 'assigned' OR status = 'active' OR status = 'callbacks') AND /*_job_filter*/
ORDER BY coalesce(active_start, assigned_at, created), id LIMIT :limit OFFSET :offset;

-- name: monitor_count
SELECT count(*) AS n FROM jobq_jobs WHERE /*_job_filter*/;

-- name: monitor_state_counts
SELECT status, failed, count(*) AS n FROM jobq_jobs WHERE /*_job_filter*/
GROUP BY status, failed;

-- name: monitor_wait_extremes
-- Wait: from begin_after to the start (or to the end of a job failed before it started, or
-- to now). Real minimums, unlike the original (which computed the longest twice).
SELECT
    (SELECT id FROM jobq_jobs WHERE /*_job_filter*/
        ORDER BY coalesce(active_start, active_end, :now) - begin_after DESC, id LIMIT 1)
        AS longest_id,
    (SELECT id FROM jobq_jobs WHERE /*_job_filter*/
        ORDER BY coalesce(active_start, active_end, :now) - begin_after ASC, id LIMIT 1)
        AS shortest_id;

-- name: monitor_active_extremes
-- Active: from the start to the end (or to now), for jobs that started.
SELECT
    (SELECT id FROM jobq_jobs WHERE /*_job_filter*/ AND active_start IS NOT NULL
        ORDER BY coalesce(active_end, :now) - active_start DESC, id LIMIT 1) AS longest_id,
    (SELECT id FROM jobq_jobs WHERE /*_job_filter*/ AND active_start IS NOT NULL
        ORDER BY coalesce(active_end, :now) - active_start ASC, id LIMIT 1) AS shortest_id;

-- name: monitor_children
-- A job's callbacks (parent_id) and the jobs it waits on or waited for, in creation order.
SELECT /*_job_columns*/ FROM jobq_jobs WHERE parent_id = :id ORDER BY id;

-- name: monitor_waiting_for
SELECT id FROM jobq_jobs WHERE waiting_on = :id ORDER BY id;

-- name: monitor_dispatchers
SELECT uuid, host, pid, started, last_ping, ping_interval, death_interval, activated,
    deactivated
FROM jobq_dispatchers ORDER BY (activated IS NULL), started DESC, uuid;

-- name: monitor_agents
SELECT dispatcher_uuid, queue, name, size, filter FROM jobq_agents
ORDER BY dispatcher_uuid, queue, name;

-- name: monitor_agent_load
-- Jobs each agent holds now (uses the dispatcher index). An active job waiting on the job it
-- returned runs on no thread: it counts apart, as "waiting".
SELECT dispatcher_uuid, queue, agent_name,
    CASE WHEN status = 'active' AND waiting_on IS NOT NULL THEN 'waiting' ELSE status END
        AS state,
    count(*) AS n FROM jobq_jobs
WHERE (status = 'assigned' OR status = 'active' OR status = 'callbacks')
    AND dispatcher_uuid IS NOT NULL
GROUP BY dispatcher_uuid, queue, agent_name, state;

-- name: monitor_queues
SELECT name, paused FROM jobq_queues ORDER BY name;

-- name: monitor_queue_counts
-- Counts by queue and state for `jobq status` and the metrics: pending, held and completed
-- rows each read through their own partial index, and grouped apart (the pending index is in
-- queue order: no sort). One GROUP BY of the whole table sorted every row by queue, status and failed:
-- 1.07 s against 0.45 s with 1M pending and 1M completed rows. Jobs pulled from their queue
-- ("new") are not counted.
SELECT queue, 'pending' AS status, 0 AS failed, count(*) AS n FROM jobq_jobs
WHERE status = 'pending' GROUP BY queue
UNION ALL
SELECT queue, status, 0, count(*) FROM jobq_jobs
WHERE status = 'assigned' OR status = 'active' OR status = 'callbacks' GROUP BY queue, status
UNION ALL
SELECT queue, 'completed', failed, count(*) FROM jobq_jobs
WHERE status = 'completed' GROUP BY queue, failed;

-- name: monitor_due_counts
SELECT queue, count(*) AS n FROM jobq_jobs WHERE status = 'pending' AND sort_at <= :now
GROUP BY queue;

-- name: monitor_buckets
-- Completed jobs per time bucket since :since (bucket i covers since + i*width seconds).
SELECT (completed_at - :since) / CAST(:width * 1000000 AS INTEGER) AS bucket, failed,
    count(*) AS n FROM jobq_jobs
WHERE status = 'completed' AND completed_at >= :since
GROUP BY bucket, failed ORDER BY bucket;

-- name: monitor_totals
-- For metrics: per queue and outcome, the completed jobs since :since with their summed
-- durations (seconds), retries (claims beyond the first) and interruptions.
SELECT queue, failed, count(*) AS n,
    coalesce(sum(CASE WHEN active_start IS NOT NULL
        THEN (active_end - active_start) / 1000000.0 END), 0) AS active_sum,
    coalesce(max(CASE WHEN active_start IS NOT NULL
        THEN (active_end - active_start) / 1000000.0 END), 0) AS active_max,
    coalesce(sum((coalesce(active_start, active_end) - begin_after) / 1000000.0), 0)
        AS wait_sum,
    coalesce(sum(CASE WHEN attempt > 1 THEN attempt - 1 ELSE 0 END), 0) AS retries,
    coalesce(sum(coalesce(json_extract(retry_data, '$.interruptions'), 0)), 0)
        AS interruptions
FROM jobq_jobs WHERE status = 'completed' AND completed_at >= :since
GROUP BY queue, failed;

-- name: monitor_set_paused
UPDATE jobq_queues SET paused = :paused WHERE name = :queue;

-- name: monitor_paused_queues
SELECT name FROM jobq_queues WHERE paused <> 0;

-- name: monitor_set_agent_size
UPDATE jobq_agents SET size = :size
WHERE queue = :queue AND name = :name AND (:uuid IS NULL OR dispatcher_uuid = :uuid);

-- name: monitor_set_quota
INSERT INTO jobq_quotas (queue, name, size) VALUES (:queue, :name, :size)
ON CONFLICT (queue, name) DO UPDATE SET size = excluded.size;

-- name: monitor_quotas
SELECT queue, name, size FROM jobq_quotas ORDER BY queue, name;

-- name: monitor_rate_limit_queues
SELECT DISTINCT queue FROM jobq_rate_limits ORDER BY queue;

-- name: monitor_prune_jobs
-- One batch of completed jobs (not put with keep_result: those expire by
-- monitor_expired_jobs) finished before :before (the completed index), skipping any
-- job with a callback still open (it will read its parent's result).
DELETE FROM jobq_jobs WHERE id IN (
    SELECT j.id FROM jobq_jobs AS j
    WHERE j.status = 'completed' AND j.keep_result IS NULL AND j.completed_at < :before
        AND NOT EXISTS (SELECT 1 FROM jobq_jobs AS c
            WHERE c.parent_id = j.id AND c.status <> 'completed')
    LIMIT :limit);

-- name: monitor_prunable_dispatchers
-- Records not activated (stopped or swept) whose last sign of life is older than :before,
-- and that hold no unfinished job.
SELECT d.uuid FROM jobq_dispatchers AS d
WHERE d.activated IS NULL AND coalesce(d.deactivated, d.last_ping, d.started) < :before
    AND NOT EXISTS (SELECT 1 FROM jobq_jobs AS j WHERE j.dispatcher_uuid = d.uuid
        AND (j.status = 'assigned' OR j.status = 'active' OR j.status = 'callbacks'))
LIMIT :limit;

-- name: monitor_delete_dispatcher
DELETE FROM jobq_dispatchers WHERE uuid = :uuid AND activated IS NULL;

-- name: monitor_delete_agents
DELETE FROM jobq_agents WHERE dispatcher_uuid = :uuid;

-- name: monitor_expired_jobs
-- One batch of the jobs put with keep_result whose time is up (the expires index, in
-- expiry order), skipping any job a callback or a job that returned it still needs.
SELECT j.id FROM jobq_jobs AS j
WHERE j.status = 'completed' AND j.expires_at IS NOT NULL AND j.expires_at <= :now
    AND NOT EXISTS (SELECT 1 FROM jobq_jobs AS c
        WHERE c.parent_id = j.id AND c.status <> 'completed')
    AND NOT (j.has_waiters = 1 AND EXISTS (SELECT 1 FROM jobq_jobs AS w
        WHERE w.waiting_on = j.id AND w.status = 'active'))
ORDER BY j.expires_at
LIMIT :limit;

-- name: monitor_record_expired
-- What a read of an expired job says instead of "no such job" (get_expired).
INSERT INTO jobq_expired (id, queue, completed_at, expires_at, keep_result, pruned_at)
SELECT id, queue, completed_at, expires_at, keep_result, :now
FROM jobq_jobs WHERE id IN (SELECT value FROM json_each(:ids))
ON CONFLICT (id) DO NOTHING;

-- name: monitor_delete_jobs
DELETE FROM jobq_jobs WHERE id IN (SELECT value FROM json_each(:ids));

-- name: monitor_forget_expired
-- One batch of expired jobs' records older than the cutoff (the pruned_at index).
DELETE FROM jobq_expired WHERE id IN (
    SELECT id FROM jobq_expired WHERE pruned_at < :before LIMIT :limit);
