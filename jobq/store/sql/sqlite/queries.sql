-- jobq queries for SQLite. Each block starts with "-- name: <query>"; parameters are :named.
-- Writes run inside BEGIN IMMEDIATE, so one writer at a time: no row locks are needed.

-- name: _job_columns
-- Every column a job's row is read with (claims, get_job, the monitor): a new column of
-- jobq_jobs that jobs carry is added here once.
id, queue, status, lane, begin_after, begin_by, job_class, call, call_repr, retry_policy,
    retry_data, failure_log_level, quota_names, annotations, attempt, dispatcher_uuid,
    agent_name, put_by, parent_id, waiting_on, result_repr, failed, failure, created,
    assigned_at, active_start, active_end, completed_at, rate_limits

-- name: schema_version
SELECT version FROM jobq_schema;

-- name: set_schema_version
INSERT INTO jobq_schema (version) VALUES (:version);

-- name: insert_job_row
-- Every insert of a job, with positional parameters in this order (binding fifteen named ones
-- costs SQLite an eighth more per insert). A batch repeats the VALUES tuple, up to
-- INSERT_PART rows per statement (sqlite.py). The new id is the cursor's lastrowid (RETURNING
-- costs a sixth more); a batch's ids are consecutive (AUTOINCREMENT, inside one write
-- transaction), read back with last_insert_rowid.
INSERT INTO jobq_jobs (queue, status, lane, sort_at, begin_after, begin_by, job_class, call,
    call_repr, retry_policy, retry_data, failure_log_level, quota_names, put_by, parent_id,
    created)
VALUES (?, ?, 1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?);

-- name: last_insert_id
SELECT last_insert_rowid() AS id;

-- name: count_ids_between
SELECT count(*) AS n FROM jobq_jobs WHERE id BETWEEN :first AND :last;

-- name: set_rate_limits
-- A put naming rate limits: its new jobs get their names in the insert's transaction (so no
-- claim ever sees them without), leaving the insert of every other job as it was.
UPDATE jobq_jobs SET rate_limits = :rate_limits WHERE id IN (SELECT value FROM json_each(:ids));

-- name: queue_exists
SELECT 1 AS found FROM jobq_queues WHERE name = :queue;

-- name: ensure_queue
INSERT INTO jobq_queues (name, created) VALUES (:queue, :now) ON CONFLICT (name) DO NOTHING;

-- name: get_job
SELECT /*_job_columns*/
FROM jobq_jobs WHERE id = :id;

-- name: get_result
SELECT result FROM jobq_jobs WHERE id = :id;

-- name: lock_job
-- SQLite's writer lock already serializes writers; this is a plain read.
SELECT status, queue, failed, quota_names FROM jobq_jobs WHERE id = :id;

-- name: pending_jobs
-- Queue order: put-back jobs first, then by sort_at (when the job was put or became due).
SELECT /*_job_columns*/
FROM jobq_jobs WHERE queue = :queue AND status = 'pending'
ORDER BY lane, sort_at, id LIMIT :limit OFFSET :offset;

-- name: pending_jobs_reversed
SELECT id FROM jobq_jobs WHERE queue = :queue AND status = 'pending'
ORDER BY lane DESC, sort_at DESC, id DESC LIMIT 1 OFFSET :offset;

-- name: count_pending
SELECT count(*) AS n FROM jobq_jobs WHERE queue = :queue AND status = 'pending';

-- name: unqueue
-- pull / remove: a pending job becomes "new" again, out of the queue.
UPDATE jobq_jobs SET status = 'new', put_by = NULL, holds_quota = 0
WHERE id = :id AND queue = :queue AND status = 'pending';

-- name: requeue
-- put of a stored job that is "new" again (pulled): it keeps its id and its begin_after
-- (and its quota and rate limit names, unless new ones are given).
UPDATE jobq_jobs SET status = 'pending', queue = :queue, lane = 1, sort_at = :sort_at,
    begin_after = :begin_after, begin_by = :begin_by, put_by = :put_by,
    quota_names = COALESCE(:quota_names, quota_names), holds_quota = 0,
    rate_limits = COALESCE(:rate_limits, rate_limits)
WHERE id = :id AND status = 'new' AND parent_id IS NULL;

-- name: put_back
UPDATE jobq_jobs SET status = 'pending', queue = :queue, lane = 0, sort_at = :now
WHERE id = :id AND status = 'new' AND parent_id IS NULL;

-- name: claim
-- With :active_only, a dispatcher presumed dead (deactivated by a sweep) takes nothing: what it
-- took would only be handed on again.
-- The first :start jobs in queue order go straight to active (the claimer has a free thread for
-- each and runs them at once), saving the start transaction; the others (claimed ahead) stay
-- assigned until their thread's fenced start, as does a job past its begin_by deadline, to be
-- failed unstarted. The subquery choosing them is uncorrelated: evaluated once, before any
-- row is updated.
-- Take up to :limit due jobs, in queue order, for one agent; every claim bumps the attempt.
-- A queue with quotas or rate limits claims through the quota path instead: here the NOT
-- EXISTS (two index probes) make this claim take nothing.
-- `lane IN (0, 1)` (the only lanes: 0 put back at the front, 1 the rest) lets the index
-- (queue, lane, sort_at, id) be read lane by lane up to :now, in order: a backlog of jobs
-- scheduled for later costs nothing.
UPDATE jobq_jobs
SET status = CASE WHEN id IN (
        SELECT id FROM jobq_jobs
        WHERE queue = :queue AND status = 'pending' AND lane IN (0, 1) AND sort_at <= :now
        ORDER BY lane, sort_at, id LIMIT :start)
        AND NOT (begin_by IS NOT NULL AND begin_after + CAST(begin_by * 1000000 AS INTEGER) < :now) THEN 'active' ELSE 'assigned' END,
    active_start = CASE WHEN id IN (
        SELECT id FROM jobq_jobs
        WHERE queue = :queue AND status = 'pending' AND lane IN (0, 1) AND sort_at <= :now
        ORDER BY lane, sort_at, id LIMIT :start)
        AND NOT (begin_by IS NOT NULL AND begin_after + CAST(begin_by * 1000000 AS INTEGER) < :now) THEN :now END,
    attempt = attempt + 1, dispatcher_uuid = :dispatcher,
    agent_name = :agent, assigned_at = :now
WHERE id IN (
    SELECT id FROM jobq_jobs
    WHERE queue = :queue AND status = 'pending' AND lane IN (0, 1) AND sort_at <= :now
        AND NOT EXISTS (SELECT 1 FROM jobq_quotas WHERE queue = :queue)
        AND NOT EXISTS (SELECT 1 FROM jobq_rate_limits WHERE queue = :queue)
        AND (NOT :active_only OR EXISTS (SELECT 1 FROM jobq_dispatchers
            WHERE uuid = :dispatcher AND activated IS NOT NULL))
    ORDER BY lane, sort_at, id LIMIT :limit)
RETURNING /*_job_columns*/, sort_at;

-- name: claim_callbacks
-- A callback slot: an agent whose threads are all busy with long jobs takes up to :limit
-- callbacks due at the front of its queue (lane 0, where a parent's result puts them) for a
-- thread of its own, so finishing a job's callbacks never waits behind unrelated long jobs.
-- Callbacks naming quotas wait for the agent's own threads (the quota path counts slots).
UPDATE jobq_jobs
SET status = CASE WHEN NOT (begin_by IS NOT NULL AND begin_after + CAST(begin_by * 1000000 AS INTEGER) < :now) THEN 'active' ELSE 'assigned' END,
    active_start = CASE WHEN NOT (begin_by IS NOT NULL AND begin_after + CAST(begin_by * 1000000 AS INTEGER) < :now) THEN :now END,
    attempt = attempt + 1, dispatcher_uuid = :dispatcher,
    agent_name = :agent, assigned_at = :now
WHERE id IN (
    SELECT id FROM jobq_jobs
    WHERE queue = :queue AND status = 'pending' AND lane = 0 AND sort_at <= :now
        AND parent_id IS NOT NULL AND quota_names = '[]'
        AND EXISTS (SELECT 1 FROM jobq_dispatchers
            WHERE uuid = :dispatcher AND activated IS NOT NULL)
    ORDER BY sort_at, id LIMIT :limit)
RETURNING /*_job_columns*/, sort_at;

-- name: claim_candidates
-- For agents with a filter: due jobs in queue order, judged in Python before claim_ids.
-- Nothing for a queue with quotas or rate limits (as in claim): those take the quota path.
SELECT /*_job_columns*/
FROM jobq_jobs
WHERE queue = :queue AND status = 'pending' AND lane IN (0, 1) AND sort_at <= :now
    AND NOT EXISTS (SELECT 1 FROM jobq_quotas WHERE queue = :queue)
    AND NOT EXISTS (SELECT 1 FROM jobq_rate_limits WHERE queue = :queue)
ORDER BY lane, sort_at, id LIMIT :limit;

-- name: claim_ids
-- The jobs of :start_ids (those the claimer has a free thread for) go straight to active.
UPDATE jobq_jobs
SET status = CASE WHEN id IN (SELECT value FROM json_each(:start_ids)) AND NOT (begin_by IS NOT NULL AND begin_after + CAST(begin_by * 1000000 AS INTEGER) < :now) THEN 'active' ELSE 'assigned' END,
    active_start = CASE WHEN id IN (SELECT value FROM json_each(:start_ids)) AND NOT (begin_by IS NOT NULL AND begin_after + CAST(begin_by * 1000000 AS INTEGER) < :now) THEN :now END,
    attempt = attempt + 1, dispatcher_uuid = :dispatcher,
    agent_name = :agent, assigned_at = :now
WHERE status = 'pending' AND id IN (SELECT value FROM json_each(:ids))
RETURNING /*_job_columns*/, sort_at;

-- name: queue_has_limits
-- Asked only when a claim found nothing: was it because the queue has quotas or rate limits?
SELECT EXISTS (SELECT 1 FROM jobq_quotas WHERE queue = :queue)
    OR EXISTS (SELECT 1 FROM jobq_rate_limits WHERE queue = :queue) AS has;

-- name: lock_queue_quotas
-- The quota path of a claim: its BEGIN IMMEDIATE already serializes it with every other
-- writer (quota changes included), so counting slots and taking jobs cannot race. Nothing
-- to lock.
SELECT :queue AS queue;

-- name: quota_holders
-- Jobs of a queue holding quota slots: claimed or running, or pending with their slots kept
-- (put back "now" after an interruption). Matches the partial index jobq_jobs_quota_holders.
SELECT /*_job_columns*/, holds_quota
FROM jobq_jobs
WHERE queue = :queue AND quota_names <> '[]' AND (status = 'assigned' OR status = 'active' OR (status = 'pending' AND holds_quota = 1))
ORDER BY id;

-- name: quota_slots_held
-- Slots held now per quota name of a queue (same rows as quota_holders), leaving out claimed
-- jobs past their deadline: their worker fails them unstarted. A damaged quota_names (not
-- JSON) names no quota here and in claim_quota_candidates: its claimer fails that job.
SELECT n.value AS name, count(DISTINCT j.id) AS held
FROM jobq_jobs AS j,
    json_each(CASE WHEN json_valid(j.quota_names) THEN j.quota_names ELSE '[]' END) AS n
WHERE j.queue = :queue AND j.quota_names <> '[]' AND (j.status = 'assigned' OR j.status = 'active' OR (j.status = 'pending' AND j.holds_quota = 1))
    AND NOT (j.status = 'assigned' AND j.begin_by IS NOT NULL
        AND j.begin_after + CAST(j.begin_by * 1000000 AS INTEGER) < :now)
GROUP BY n.value;

-- name: claim_quota_candidates
-- The quota path: due jobs in queue order, leaving out those naming a full quota (:full, a
-- JSON array), unless they hold their slots already or missed their deadline (failed
-- unstarted, so quotas are not consulted), and those naming a rate limit with no claim left
-- (:exhausted), unless they missed their deadline. The claim judges these in Python.
SELECT /*_job_columns*/, holds_quota
FROM jobq_jobs
WHERE queue = :queue AND status = 'pending' AND lane IN (0, 1) AND sort_at <= :now
    AND (quota_names = '[]' OR holds_quota = 1
        OR NOT EXISTS (SELECT 1 FROM json_each(CASE WHEN json_valid(jobq_jobs.quota_names)
                           THEN jobq_jobs.quota_names ELSE '[]' END) AS n
                       WHERE n.value IN (SELECT value FROM json_each(:full)))
        OR (begin_by IS NOT NULL AND begin_after + CAST(begin_by * 1000000 AS INTEGER) < :now))
    AND (rate_limits = '[]'
        OR NOT EXISTS (SELECT 1 FROM json_each(CASE WHEN json_valid(jobq_jobs.rate_limits)
                           THEN jobq_jobs.rate_limits ELSE '[]' END) AS n
                       WHERE n.value IN (SELECT value FROM json_each(:exhausted)))
        OR (begin_by IS NOT NULL AND begin_after + CAST(begin_by * 1000000 AS INTEGER) < :now))
ORDER BY lane, sort_at, id LIMIT :limit;

-- name: queue_quotas
SELECT name, size FROM jobq_quotas WHERE queue = :queue ORDER BY name;

-- name: create_quota
INSERT INTO jobq_quotas (queue, name, size) VALUES (:queue, :name, :size)
ON CONFLICT (queue, name) DO NOTHING;

-- name: resize_quota
UPDATE jobq_quotas SET size = :size WHERE queue = :queue AND name = :name;

-- name: remove_quota
DELETE FROM jobq_quotas WHERE queue = :queue AND name = :name;

-- name: rate_limit_use
-- The quota path of a claim, for a queue's rate limits: each limit with the claims recorded
-- in the last `per` seconds before :now (or after it: a claimer that waited for the lock may
-- claim at an earlier time than one that went before it, and those claims count too, so that
-- no interval of `per` seconds holds more than max_claims claims whatever their order).
SELECT l.name, l.max_claims, l.per, count(c.at) AS used, min(c.at) AS oldest
FROM jobq_rate_limits AS l LEFT JOIN jobq_rate_limit_claims AS c
    ON c.queue = l.queue AND c.name = l.name AND c.at > :now - CAST(round(l.per * 1000000) AS INTEGER)
WHERE l.queue = :queue
GROUP BY l.name, l.max_claims, l.per
ORDER BY l.name;

-- name: record_rate_limit_claim
INSERT INTO jobq_rate_limit_claims (queue, name, at, job_id)
VALUES (:queue, :name, :now, :job_id);

-- name: prune_rate_limit_claims
-- Forget the claims of a limit older than its window and a minute more (claims of a queue
-- with rate limits are serialized here, so the minute is only a margin). An index range
-- scan of the rows it deletes.
DELETE FROM jobq_rate_limit_claims
WHERE queue = :queue AND name = :name
    AND at < :now - CAST(round((:per + 60) * 1000000) AS INTEGER);

-- name: queue_rate_limits
SELECT name, max_claims, per FROM jobq_rate_limits WHERE queue = :queue ORDER BY name;

-- name: create_rate_limit
INSERT INTO jobq_rate_limits (queue, name, max_claims, per)
VALUES (:queue, :name, :max_claims, :per)
ON CONFLICT (queue, name) DO NOTHING;

-- name: change_rate_limit
UPDATE jobq_rate_limits SET max_claims = :max_claims, per = :per
WHERE queue = :queue AND name = :name;

-- name: remove_rate_limit
DELETE FROM jobq_rate_limits WHERE queue = :queue AND name = :name;

-- name: forget_rate_limit_claims
DELETE FROM jobq_rate_limit_claims WHERE queue = :queue AND name = :name;

-- name: jobs_naming_rate_limit
-- Pending jobs of a queue that name a rate limit:
-- :quoted is the name as JSON ("smtp"); names cannot hold quotes or backslashes, so the
-- text matches only that element. Reads the queue's pending jobs (an operator's question).
SELECT count(*) AS n FROM jobq_jobs
WHERE queue = :queue AND status = 'pending' AND rate_limits <> '[]' AND instr(rate_limits, :quoted) > 0;

-- name: remove_agent
DELETE FROM jobq_agents WHERE dispatcher_uuid = :uuid AND queue = :queue AND name = :name;

-- name: update_schema_version
UPDATE jobq_schema SET version = :version;

-- name: start_job
-- Fenced: only the claim of this attempt, by this dispatcher, may start the job. A job claimed
-- ahead from the back lane does not start while a job put back at the front of its queue
-- (lane 0: rescheduled "now", or a callback whose parent just finished) is due and free to
-- claim, or held by this same dispatcher unstarted (its agent claimed it ahead, for the front
-- of its own line): its claimer gives it back instead, so the put-back job starts first.
-- A put-back job naming a rate limit holds nothing back (its limit's window may be full).
UPDATE jobq_jobs SET status = 'active', active_start = :now
WHERE id = :id AND attempt = :attempt AND dispatcher_uuid = :dispatcher AND status = 'assigned'
    AND (lane = 0 OR (NOT EXISTS (SELECT 1 FROM jobq_jobs AS p
        WHERE p.queue = jobq_jobs.queue AND p.status = 'pending' AND p.lane = 0
            AND p.sort_at <= :now AND (p.quota_names = '[]' OR p.holds_quota)
            AND p.rate_limits = '[]')
        AND NOT EXISTS (SELECT 1 FROM jobq_jobs AS h
            WHERE h.dispatcher_uuid = :dispatcher AND h.status = 'assigned' AND h.lane = 0
                AND h.queue = jobq_jobs.queue)));

-- name: check_owner
SELECT 1 AS owned FROM jobq_jobs
WHERE id = :id AND attempt = :attempt AND dispatcher_uuid = :dispatcher AND status = 'active';

-- name: store_result
-- Fenced: a worker that lost its claim (reassigned after a false death) writes nothing.
-- A job without callbacks completes in this one statement; RETURNING tells the caller what
-- else to do (release callbacks, free quota slots, tell a parent, hand the result to jobs
-- waiting on this one). The decision reads the row's own flags, not a subquery: the row is
-- the one this UPDATE locked, so a callback or waiter added just before is always seen.
UPDATE jobq_jobs
SET status = CASE WHEN has_callbacks = 1 THEN 'callbacks' ELSE 'completed' END,
    completed_at = CASE WHEN has_callbacks = 1 THEN NULL ELSE :now END,
    result = :result, result_repr = :result_repr, failed = :failed,
    failure = :failure, retry_data = :retry_data, active_end = :now,
    waiting_on = NULL
WHERE id = :id AND attempt = :attempt AND dispatcher_uuid = :dispatcher
    AND status = 'active'
RETURNING status, queue, parent_id, quota_names, has_waiters;

-- name: mark_has_callbacks
UPDATE jobq_jobs SET has_callbacks = 1 WHERE id = :id;

-- name: mark_has_waiters
UPDATE jobq_jobs SET has_waiters = 1 WHERE id = :id;

-- name: fail_unstarted
UPDATE jobq_jobs
SET status = 'callbacks', result = NULL, result_repr = :result_repr, failed = 1,
    failure = :failure, active_end = :now
WHERE id = :id AND status IN ('new', 'pending', 'assigned');

-- name: reschedule
-- Fenced: back to pending, at the front (lane 0, keeping its quota slots) or at :begin_after
-- (its slots freed).
UPDATE jobq_jobs
SET status = 'pending', lane = :lane, begin_after = :begin_after, sort_at = :begin_after,
    holds_quota = (:lane = 0),
    retry_data = :retry_data, active_start = NULL, dispatcher_uuid = NULL, agent_name = NULL
WHERE id = :id AND attempt = :attempt AND dispatcher_uuid = :dispatcher AND status = 'active';

-- name: wait_on
-- Fenced: the job stays active, adopting :inner's result once it has one.
UPDATE jobq_jobs SET waiting_on = :inner, retry_data = :retry_data
WHERE id = :id AND attempt = :attempt AND dispatcher_uuid = :dispatcher AND status = 'active';

-- name: release_callbacks
-- A job got its result: its waiting callbacks become pending at the front of its queue
-- (lane 0, as put-back jobs), so the next free thread of any worker runs them before the
-- jobs waiting there: finishing a job's callbacks never waits behind unrelated jobs.
UPDATE jobq_jobs SET status = 'pending', lane = 0, sort_at = :now, begin_after = :now
WHERE parent_id = :id AND status = 'new';

-- name: count_open_callbacks
SELECT count(*) AS n FROM jobq_jobs WHERE parent_id = :id AND status <> 'completed';

-- name: mark_completed
UPDATE jobq_jobs SET status = 'completed', completed_at = :now
WHERE id = :id AND status = 'callbacks';

-- name: parent_of
SELECT parent_id FROM jobq_jobs WHERE id = :id;

-- name: wait_links
-- What a job still needs before it can finish: its parent's result (a callback) and the job
-- it waits on.
SELECT status, parent_id, waiting_on FROM jobq_jobs WHERE id = :id;

-- name: waiters
SELECT id FROM jobq_jobs WHERE waiting_on = :id AND status = 'active';

-- name: adopt_result
-- Copy :inner's result to a job that returned it (the original's "job returns a job").
UPDATE jobq_jobs
SET status = 'callbacks', waiting_on = NULL, active_end = :now,
    result = (SELECT result FROM jobq_jobs WHERE id = :inner),
    result_repr = (SELECT result_repr FROM jobq_jobs WHERE id = :inner),
    failed = (SELECT failed FROM jobq_jobs WHERE id = :inner),
    failure = (SELECT failure FROM jobq_jobs WHERE id = :inner)
WHERE id = :id AND status = 'active';

-- name: set_annotation
UPDATE jobq_jobs SET annotations = :annotations WHERE id = :id;

-- name: get_annotations
SELECT annotations FROM jobq_jobs WHERE id = :id;

-- name: register_dispatcher
INSERT INTO jobq_dispatchers (uuid, host, pid, started, last_ping, ping_interval,
    death_interval, activated, deactivated)
VALUES (:uuid, :host, :pid, :now, :now, :ping_interval, :death_interval, :now, NULL)
ON CONFLICT (uuid) DO UPDATE SET host = excluded.host, pid = excluded.pid,
    started = excluded.started, last_ping = excluded.last_ping, activated = excluded.activated,
    deactivated = NULL;

-- name: get_dispatcher
SELECT uuid, host, pid, started, last_ping, ping_interval, death_interval, activated,
    deactivated
FROM jobq_dispatchers WHERE uuid = :uuid;

-- name: ping_dispatcher
-- No row updated means a sibling deactivated this dispatcher (presumed dead): reactivate.
UPDATE jobq_dispatchers SET last_ping = :now
WHERE uuid = :uuid AND activated IS NOT NULL;

-- name: lock_dispatcher
SELECT uuid, host, pid, started, last_ping, ping_interval, death_interval, activated,
    deactivated
FROM jobq_dispatchers WHERE uuid = :uuid;

-- name: reactivate_dispatcher
UPDATE jobq_dispatchers SET activated = :now, last_ping = :now, deactivated = NULL
WHERE uuid = :uuid;

-- name: dead_dispatchers
-- Activated dispatchers whose last ping is older than their own death interval (whether the
-- judge itself was in reach all that while is judged in Python).
SELECT uuid, death_interval FROM jobq_dispatchers WHERE activated IS NOT NULL
    AND last_ping + CAST(death_interval * 1000000 AS INTEGER) < :now;

-- name: deactivate_if_dead
-- Only one sweeper wins: the row is updated once, under its lock.
UPDATE jobq_dispatchers SET activated = NULL, deactivated = :now
WHERE uuid = :uuid AND activated IS NOT NULL
    AND last_ping + CAST(death_interval * 1000000 AS INTEGER) < :now;

-- name: set_intervals
UPDATE jobq_dispatchers SET ping_interval = :ping_interval,
    death_interval = :death_interval
WHERE uuid = :uuid;

-- name: orphan_jobs
-- Jobs claimed or running under a dispatcher that is no longer activated (dead and swept,
-- stopped, or never registered). Jobs waiting on an inner job are left to adopt its result.
SELECT /*_job_columns*/
FROM jobq_jobs
WHERE (status = 'assigned' OR status = 'active') AND waiting_on IS NULL
    AND dispatcher_uuid IS NOT NULL
    AND NOT EXISTS (SELECT 1 FROM jobq_dispatchers d
                    WHERE d.uuid = jobq_jobs.dispatcher_uuid AND d.activated IS NOT NULL)
ORDER BY lane, sort_at, id LIMIT :limit;

-- name: dispatcher_jobs
SELECT /*_job_columns*/
FROM jobq_jobs
WHERE dispatcher_uuid = :uuid AND (status = 'assigned' OR status = 'active')
    AND waiting_on IS NULL
ORDER BY lane, sort_at, id;

-- name: release_job
-- Fenced: a claimed job that never started goes back to its queue as it was: its lane and its
-- place there (so a job claimed ahead never jumps ahead of one put back meanwhile), keeping
-- its quota slots.
UPDATE jobq_jobs SET status = 'pending', dispatcher_uuid = NULL, agent_name = NULL,
    holds_quota = 1
WHERE id = :id AND attempt = :attempt AND dispatcher_uuid = :dispatcher
    AND status = 'assigned';

-- name: deactivate_dispatcher
UPDATE jobq_dispatchers SET activated = NULL, deactivated = :now WHERE uuid = :uuid;

-- name: set_agent
INSERT INTO jobq_agents (dispatcher_uuid, queue, name, size, filter)
VALUES (:uuid, :queue, :name, :size, :filter)
ON CONFLICT (dispatcher_uuid, queue, name) DO UPDATE SET size = excluded.size,
    filter = excluded.filter;

-- name: clear_agents
DELETE FROM jobq_agents WHERE dispatcher_uuid = :uuid;

-- name: list_agents
SELECT dispatcher_uuid, queue, name, size, filter FROM jobq_agents
WHERE dispatcher_uuid = :uuid ORDER BY queue, name;

-- name: upsert_schedule
-- Create a schedule or replace its definition (a pause is kept); its next tick starts over.
INSERT INTO jobq_schedules (name, cron, timezone, queue, missed, catch_up, job_class, call,
    call_repr, retry_policy, failure_log_level, next_tick, created, updated)
VALUES (:name, :cron, :timezone, :queue, :missed, :catch_up, :job_class, :call, :call_repr,
    :retry_policy, :failure_log_level, :next_tick, :now, :now)
ON CONFLICT (name) DO UPDATE SET cron = excluded.cron, timezone = excluded.timezone,
    queue = excluded.queue, missed = excluded.missed, catch_up = excluded.catch_up,
    job_class = excluded.job_class, call = excluded.call, call_repr = excluded.call_repr,
    retry_policy = excluded.retry_policy, failure_log_level = excluded.failure_log_level,
    next_tick = excluded.next_tick, revision = jobq_schedules.revision + 1,
    updated = excluded.updated;

-- name: get_schedule
SELECT * FROM jobq_schedules WHERE name = :name;

-- name: list_schedules
SELECT * FROM jobq_schedules ORDER BY name;

-- name: delete_schedule
DELETE FROM jobq_schedules WHERE name = :name;

-- name: delete_schedule_ticks
DELETE FROM jobq_schedule_ticks WHERE schedule = :name;

-- name: set_schedule_paused
UPDATE jobq_schedules SET paused = :paused, next_tick = :next_tick, revision = revision + 1,
    updated = :now
WHERE name = :name;

-- name: due_schedules
SELECT * FROM jobq_schedules WHERE paused = 0 AND next_tick <= :now
ORDER BY next_tick LIMIT :limit;

-- name: earliest_schedule_tick
SELECT min(next_tick) AS next_tick FROM jobq_schedules WHERE paused = 0;

-- name: advance_schedule
-- Taken by one worker only: the others read the same next_tick and revision, and find them
-- changed (SQLite: after this transaction; PostgreSQL: this row's lock, then a re-check).
UPDATE jobq_schedules SET next_tick = :next_tick, last_tick = coalesce(:last_tick, last_tick)
WHERE name = :name AND revision = :revision AND next_tick = :expected AND paused = 0;

-- name: insert_schedule_tick
INSERT INTO jobq_schedule_ticks (schedule, tick, created) VALUES (:schedule, :tick, :now)
ON CONFLICT (schedule, tick) DO NOTHING;

-- name: set_schedule_tick_job
UPDATE jobq_schedule_ticks SET job_id = :job_id WHERE schedule = :schedule AND tick = :tick;

-- name: set_schedule_last_job
UPDATE jobq_schedules SET last_job_id = :job_id WHERE name = :name;

-- name: schedule_ticks
SELECT schedule, tick, job_id FROM jobq_schedule_ticks WHERE schedule = :schedule
ORDER BY tick;

-- name: prune_schedule_ticks
DELETE FROM jobq_schedule_ticks WHERE created < :before;
