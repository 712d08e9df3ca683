-- jobq queries for PostgreSQL. Each block starts with "-- name: <query>"; parameters are
-- %(named)s. Claims skip rows other claimers hold (FOR UPDATE SKIP LOCKED); writes that
-- decide from another row's state lock that row first (lock_job), always inner before outer.

-- name: _job_columns
-- Every column a job's row is read with (claims, get_job, the monitor): a new column of
-- jobq_jobs that jobs carry is added here once.
id, queue, status, lane, begin_after, begin_by, job_class, call, call_repr, retry_policy,
    retry_data, failure_log_level, quota_names, annotations, attempt, dispatcher_uuid,
    agent_name, put_by, parent_id, waiting_on, result_repr, failed, failure, created,
    assigned_at, active_start, active_end, completed_at, rate_limits, unique_key, unique_while, priority, keep_result, expires_at

-- name: schema_version
SELECT version FROM jobq_schema;

-- name: set_schema_version
INSERT INTO jobq_schema (version) VALUES (%(version)s);

-- name: insert_job
INSERT INTO jobq_jobs (queue, status, lane, sort_at, begin_after, begin_by, job_class, call,
    call_repr, retry_policy, retry_data, failure_log_level, quota_names, put_by, parent_id,
    created, priority, keep_result, rate_limits)
VALUES (%(queue)s, %(status)s, 1, %(sort_at)s, %(begin_after)s, %(begin_by)s, %(job_class)s, %(call)s,
    %(call_repr)s, %(retry_policy)s, %(retry_data)s, %(failure_log_level)s, %(quota_names)s,
    %(put_by)s, %(parent_id)s, %(now)s, %(priority)s, %(keep_result)s, %(rate_limits)s)
RETURNING id;

-- name: _unique_held
-- A job holding its unique key: the predicate of the partial unique index jobq_jobs_unique,
-- repeated as it is in ON CONFLICT (which then uses that index as its arbiter).
unique_key IS NOT NULL
        AND ((unique_while = 'pending' AND status = 'pending' AND attempt = 0)
            OR (unique_while = 'pending,active'
                AND (status = 'pending' OR status = 'assigned' OR status = 'active')))

-- name: insert_unique
-- A job put with a unique key: the insert and the conflict check are this one statement, so
-- two producers putting the same key at once make one job (the second waits for the first's
-- commit, then finds the conflict). No row returned: a job holds the key (unique_holder).
INSERT INTO jobq_jobs (queue, status, lane, sort_at, begin_after, begin_by, job_class, call,
    call_repr, retry_policy, retry_data, failure_log_level, quota_names, put_by, parent_id,
    created, unique_key, unique_while, rate_limits, priority, keep_result)
VALUES (%(queue)s, %(status)s, 1, %(sort_at)s, %(begin_after)s, %(begin_by)s, %(job_class)s,
    %(call)s, %(call_repr)s, %(retry_policy)s, %(retry_data)s, %(failure_log_level)s,
    %(quota_names)s, %(put_by)s, %(parent_id)s, %(now)s, %(unique_key)s, %(unique_while)s, %(rate_limits)s,
    %(priority)s, %(keep_result)s)
ON CONFLICT (queue, unique_key) WHERE /*_unique_held*/ DO NOTHING
RETURNING id;

-- name: unique_holder
-- The job holding a key of a queue (locked: a replace changes it only while it holds it).
SELECT id, status FROM jobq_jobs
WHERE queue = %(queue)s AND unique_key = %(unique_key)s AND /*_unique_held*/
FOR UPDATE;

-- name: replace_unique
-- on_conflict="replace": the pending holder takes the new put's call, class, policy and
-- times (a job put back at the front keeps its place there).
UPDATE jobq_jobs SET call = %(call)s, call_repr = %(call_repr)s, job_class = %(job_class)s,
    retry_policy = %(retry_policy)s,
    begin_after = %(begin_after)s, begin_by = %(begin_by)s,
    sort_at = CASE WHEN lane = 0 THEN sort_at ELSE %(sort_at)s END
WHERE id = %(id)s AND status = 'pending';

-- name: take_unique_window
-- put(unique_for=): take the key of the queue until %(until)s, unless a put took it for a
-- period not over yet (then no row is returned: unique_window_job names its job).
INSERT INTO jobq_unique_keys (queue, unique_key, job_id, until)
VALUES (%(queue)s, %(unique_key)s, NULL, %(until)s)
ON CONFLICT (queue, unique_key) DO UPDATE SET job_id = NULL, until = excluded.until
WHERE jobq_unique_keys.until <= %(now)s
RETURNING unique_key;

-- name: unique_window_job
SELECT job_id FROM jobq_unique_keys WHERE queue = %(queue)s AND unique_key = %(unique_key)s;

-- name: set_unique_window_job
UPDATE jobq_unique_keys SET job_id = %(job_id)s
WHERE queue = %(queue)s AND unique_key = %(unique_key)s;

-- name: prune_unique_keys
DELETE FROM jobq_unique_keys WHERE until <= %(now)s;

-- name: queue_exists
SELECT 1 AS found FROM jobq_queues WHERE name = %(queue)s;

-- name: ensure_queue
INSERT INTO jobq_queues (name, created) VALUES (%(queue)s, %(now)s) ON CONFLICT (name) DO NOTHING;

-- name: get_job
SELECT /*_job_columns*/
FROM jobq_jobs WHERE id = %(id)s;

-- name: get_result
SELECT result FROM jobq_jobs WHERE id = %(id)s;

-- name: lock_job
SELECT status, queue, failed, quota_names FROM jobq_jobs WHERE id = %(id)s FOR UPDATE;

-- name: pending_jobs
-- Queue order: put-back jobs first, then higher priorities first, then by sort_at (when the
-- job was put or became due).
SELECT /*_job_columns*/
FROM jobq_jobs WHERE queue = %(queue)s AND status = 'pending'
ORDER BY lane, priority DESC, sort_at, id LIMIT %(limit)s OFFSET %(offset)s;

-- name: pending_jobs_reversed
SELECT id FROM jobq_jobs WHERE queue = %(queue)s AND status = 'pending'
ORDER BY lane DESC, priority, sort_at DESC, id DESC LIMIT 1 OFFSET %(offset)s;

-- name: count_pending
SELECT count(*) AS n FROM jobq_jobs WHERE queue = %(queue)s AND status = 'pending';

-- name: unqueue
-- pull / remove: a pending job becomes "new" again, out of the queue.
UPDATE jobq_jobs SET status = 'new', put_by = NULL, holds_quota = FALSE
WHERE id = %(id)s AND queue = %(queue)s AND status = 'pending';

-- name: requeue
-- put of a stored job that is "new" again (pulled): it keeps its id and its begin_after
-- (and its quota and rate limit names, unless new ones are given).
UPDATE jobq_jobs SET status = 'pending', queue = %(queue)s, lane = 1, sort_at = %(sort_at)s,
    begin_after = %(begin_after)s, begin_by = %(begin_by)s, put_by = %(put_by)s,
    quota_names = COALESCE(%(quota_names)s::text, quota_names), holds_quota = FALSE,
    rate_limits = COALESCE(%(rate_limits)s::text, rate_limits),
    priority = %(priority)s
WHERE id = %(id)s AND status = 'new' AND parent_id IS NULL;

-- name: put_back
UPDATE jobq_jobs SET status = 'pending', queue = %(queue)s, lane = 0, sort_at = %(now)s
WHERE id = %(id)s AND status = 'new' AND parent_id IS NULL;

-- name: _pending_levels
-- The (lane, priority) levels of a queue's pending jobs, in queue order (lane 0 first, then
-- higher priorities first), found one probe of the pending index each (a loose index scan:
-- PostgreSQL before 18 has no skip scan). A claim joins each level to a range scan of that
-- level's due jobs (queue, lane, priority, sort_at <= now) and stops once it has enough:
-- the recursion is evaluated only as far as the claim reads it, so a queue whose jobs all
-- have priority 0 costs one probe more than a claim without levels, and a level whose jobs
-- are all scheduled for later costs two probes, however many it holds. Priorities are
-- -10..10, so a claim visits at most 42 levels.
levels(lane, priority) AS (
    (SELECT lane, priority FROM jobq_jobs WHERE queue = %(queue)s AND status = 'pending'
        ORDER BY lane, priority DESC LIMIT 1)
    UNION ALL
    SELECT n.lane, n.priority FROM levels CROSS JOIN LATERAL (
        (SELECT lane, priority FROM jobq_jobs WHERE queue = %(queue)s AND status = 'pending'
            AND lane = levels.lane AND priority < levels.priority
            ORDER BY priority DESC LIMIT 1)
        UNION ALL
        (SELECT lane, priority FROM jobq_jobs WHERE queue = %(queue)s AND status = 'pending'
            AND lane > levels.lane ORDER BY lane, priority DESC LIMIT 1)
        LIMIT 1) AS n)

-- name: _front_levels
-- The priorities of a queue's pending jobs at the front (lane 0), highest first, one probe
-- each, as in _pending_levels; the last row is NULL (no more).
front(priority) AS (
    (SELECT priority FROM jobq_jobs WHERE queue = %(queue)s AND status = 'pending' AND lane = 0
        ORDER BY priority DESC LIMIT 1)
    UNION ALL
    SELECT (SELECT p.priority FROM jobq_jobs AS p
            WHERE p.queue = %(queue)s AND p.status = 'pending' AND p.lane = 0
                AND p.priority < front.priority
            ORDER BY p.priority DESC LIMIT 1)
    FROM front WHERE front.priority IS NOT NULL)

-- name: claim
-- With %(active_only)s, a dispatcher presumed dead (deactivated by a sweep) takes nothing: what it
-- took would only be handed on again.
-- The first %(start)s jobs in queue order go straight to active (the claimer has a free thread
-- for each and runs them at once), saving the start transaction; the others (claimed ahead)
-- stay assigned until their thread's fenced start, as does a job past its begin_by deadline,
-- to be failed unstarted.
-- Take up to %(limit)s due jobs, in queue order, for one agent; every claim bumps the attempt.
-- The CTE with FOR UPDATE SKIP LOCKED is evaluated once (a fence): concurrent claimers skip
-- each other's rows instead of waiting, and the planner cannot re-run the LIMIT per row.
-- A queue with quotas or rate limits claims through the quota path instead
-- (lock_queue_quotas): here the NOT EXISTS (two index probes, evaluated once per statement)
-- make this claim take nothing. Race-free: a job can name a quota or rate limit only once it
-- exists, so a snapshot without it cannot see such a job either.
-- Queue order is (lane, priority DESC, sort_at, id): each (lane, priority) level of
-- _pending_levels is read on its own, in index order, so the scan stops at the first job not
-- yet due: a backlog of jobs scheduled for later costs nothing. The nested loop reads the
-- levels in their order and each level's jobs in index order, and the LIMIT stops it there:
-- the rows locked are the first %(limit)s due in queue order, no more (a sort would read every
-- level's due jobs first).
WITH RECURSIVE ok AS (
    SELECT 1 WHERE NOT EXISTS (SELECT 1 FROM jobq_quotas WHERE queue = %(queue)s)
        AND NOT EXISTS (SELECT 1 FROM jobq_rate_limits WHERE queue = %(queue)s)
        AND (NOT %(active_only)s OR EXISTS (SELECT 1 FROM jobq_dispatchers
            WHERE uuid = %(dispatcher)s AND activated IS NOT NULL))),
/*_pending_levels*/,
picked AS (
    SELECT j.id, j.lane, j.priority, j.sort_at FROM levels CROSS JOIN LATERAL (
        SELECT id, lane, priority, sort_at FROM jobq_jobs
        WHERE queue = %(queue)s AND status = 'pending' AND lane = levels.lane
            AND priority = levels.priority AND sort_at <= %(now)s
        ORDER BY sort_at, id LIMIT %(limit)s
        FOR UPDATE SKIP LOCKED) AS j
    WHERE EXISTS (SELECT 1 FROM ok)
    LIMIT %(limit)s),
started AS (
    SELECT id FROM picked ORDER BY lane, priority DESC, sort_at, id LIMIT %(start)s)
UPDATE jobq_jobs
SET status = CASE WHEN jobq_jobs.id = ANY (ARRAY(SELECT id FROM started)) AND NOT (begin_by IS NOT NULL AND begin_after + make_interval(secs => begin_by) < %(now)s) THEN 'active' ELSE 'assigned' END,
    active_start = CASE WHEN jobq_jobs.id = ANY (ARRAY(SELECT id FROM started)) AND NOT (begin_by IS NOT NULL AND begin_after + make_interval(secs => begin_by) < %(now)s) THEN %(now)s END,
    attempt = attempt + 1, dispatcher_uuid = %(dispatcher)s,
    agent_name = %(agent)s, assigned_at = %(now)s
-- An array of ids: the planner then updates them by primary key, whatever their number.
WHERE jobq_jobs.id = ANY (ARRAY(SELECT id FROM picked))
RETURNING /*_job_columns*/, sort_at;

-- name: claim_callbacks
-- A callback slot: an agent whose threads are all busy with long jobs takes up to %(limit)s
-- callbacks due at the front of its queue (lane 0, where a parent's result puts them) for a
-- thread of its own, so finishing a job's callbacks never waits behind unrelated long jobs.
-- Callbacks naming quotas wait for the agent's own threads (the quota path counts slots).
-- Priority by priority (_front_levels), as the claim reads its levels.
WITH RECURSIVE /*_front_levels*/,
picked AS (
    SELECT j.id FROM front CROSS JOIN LATERAL (
        SELECT id FROM jobq_jobs
        WHERE queue = %(queue)s AND status = 'pending' AND lane = 0
            AND priority = front.priority AND sort_at <= %(now)s
            AND parent_id IS NOT NULL AND quota_names = '[]'
        ORDER BY sort_at, id LIMIT %(limit)s
        FOR UPDATE SKIP LOCKED) AS j
    WHERE EXISTS (SELECT 1 FROM jobq_dispatchers
        WHERE uuid = %(dispatcher)s AND activated IS NOT NULL)
    LIMIT %(limit)s)
UPDATE jobq_jobs
SET status = CASE WHEN NOT (begin_by IS NOT NULL AND begin_after + make_interval(secs => begin_by) < %(now)s) THEN 'active' ELSE 'assigned' END,
    active_start = CASE WHEN NOT (begin_by IS NOT NULL AND begin_after + make_interval(secs => begin_by) < %(now)s) THEN %(now)s END,
    attempt = attempt + 1, dispatcher_uuid = %(dispatcher)s,
    agent_name = %(agent)s, assigned_at = %(now)s
WHERE jobq_jobs.id = ANY (ARRAY(SELECT id FROM picked))
RETURNING /*_job_columns*/, sort_at;

-- name: claim_candidates
-- For agents with a filter: due jobs in queue order, judged in Python before claim_ids.
-- Nothing for a queue with quotas or rate limits (as in claim): those take the quota path.
-- Level by level, as in claim: jobs scheduled for later are never read.
WITH RECURSIVE /*_pending_levels*/,
picked AS (
    SELECT j.* FROM levels CROSS JOIN LATERAL (
        SELECT /*_job_columns*/, sort_at FROM jobq_jobs
        WHERE queue = %(queue)s AND status = 'pending' AND lane = levels.lane
            AND priority = levels.priority AND sort_at <= %(now)s
        ORDER BY sort_at, id LIMIT %(limit)s
        FOR UPDATE SKIP LOCKED) AS j
    WHERE NOT EXISTS (SELECT 1 FROM jobq_quotas WHERE queue = %(queue)s)
        AND NOT EXISTS (SELECT 1 FROM jobq_rate_limits WHERE queue = %(queue)s)
    LIMIT %(limit)s)
SELECT * FROM picked ORDER BY lane, priority DESC, sort_at, id;

-- name: claim_ids
-- The jobs of %(start_ids)s (those the claimer has a free thread for) go straight to active.
-- Deadlines are judged at %(now)s (the claimer's time); the claim's times are %(stamp)s.
UPDATE jobq_jobs
SET status = CASE WHEN id = ANY(%(start_ids)s) AND NOT (begin_by IS NOT NULL AND begin_after + make_interval(secs => begin_by) < %(now)s) THEN 'active' ELSE 'assigned' END,
    active_start = CASE WHEN id = ANY(%(start_ids)s) AND NOT (begin_by IS NOT NULL AND begin_after + make_interval(secs => begin_by) < %(now)s) THEN %(stamp)s::timestamptz END,
    attempt = attempt + 1, dispatcher_uuid = %(dispatcher)s,
    agent_name = %(agent)s, assigned_at = %(stamp)s
WHERE status = 'pending' AND id = ANY(%(ids)s)
RETURNING /*_job_columns*/, sort_at;

-- name: queue_has_limits
-- Asked only when a claim found nothing: was it because the queue has quotas or rate limits?
SELECT EXISTS (SELECT 1 FROM jobq_quotas WHERE queue = %(queue)s)
    OR EXISTS (SELECT 1 FROM jobq_rate_limits WHERE queue = %(queue)s) AS has;

-- name: lock_queue_quotas
-- The quota path of a claim starts here: a transaction-scoped advisory lock on the queue
-- (key 727472632 + hash of its name), held until the claim commits; creating a quota takes it
-- too. Race-free because every later statement of the claim (READ COMMITTED) takes a fresh
-- snapshot after the lock is granted: the quotas and the slots held that it reads include
-- every claim committed before it, and no claim of this queue commits meanwhile, so two
-- claimers cannot both take the same free slot. A quota cannot appear during a claim either
-- (creation waits for the lock), so a job naming a quota the claim did not read cannot exist
-- yet. Resizing or removing a quota needs no lock: the claim then happened just before it.
-- One lock per queue: quota claims of a queue take turns (claims without quotas never come
-- here). Hash collisions only make two queues take turns.
SELECT pg_advisory_xact_lock(727472632, hashtext(%(queue)s));

-- name: lock_queue_for_claim
-- lock_queue_quotas for the quota path of a claim, with what the claim reads next: the time
-- after the lock is granted (the database's clock, the time rate limit windows are measured
-- in when the claimer asks for it: one clock for every machine, and claims of a queue
-- recorded in the order they took the lock) and whether the claiming dispatcher is active
-- (with active_only). The subquery in FROM, volatile, runs first: the time is the lock's.
SELECT clock_timestamp() AS now, EXISTS (SELECT 1 FROM jobq_dispatchers
        WHERE uuid = %(dispatcher)s AND activated IS NOT NULL) AS active
FROM (SELECT pg_advisory_xact_lock(727472632, hashtext(%(queue)s))) AS locked;

-- name: quota_holders
-- Jobs of a queue holding quota slots: claimed or running, or pending with their slots kept
-- (put back "now" after an interruption). Matches the partial index jobq_jobs_quota_holders,
-- so it reads only those few rows however many jobs wait.
SELECT /*_job_columns*/, holds_quota
FROM jobq_jobs
WHERE queue = %(queue)s AND quota_names <> '[]' AND (status = 'assigned' OR status = 'active' OR (status = 'pending' AND holds_quota))
ORDER BY id;

-- name: quota_slots_held
-- Slots held now per quota name of a queue (same rows as quota_holders), leaving out claimed
-- jobs past their deadline: their worker fails them unstarted. A damaged quota_names (not a
-- JSON list of strings: the pattern) names no quota here and in claim_quota_candidates, so
-- that it breaks no claim of its queue: its claimer fails that job.
SELECT n.name, count(DISTINCT j.id) AS held
FROM jobq_jobs AS j CROSS JOIN LATERAL jsonb_array_elements_text(
    (CASE WHEN j.quota_names ~ '^\[\s*("([^"\\]|\\.)*"\s*(,\s*"([^"\\]|\\.)*"\s*)*)?\]$' THEN j.quota_names ELSE '[]' END)::jsonb) AS n(name)
WHERE j.queue = %(queue)s AND j.quota_names <> '[]' AND (j.status = 'assigned' OR j.status = 'active' OR (j.status = 'pending' AND j.holds_quota))
    AND NOT (j.status = 'assigned' AND j.begin_by IS NOT NULL
        AND j.begin_after + make_interval(secs => j.begin_by) < %(now)s)
GROUP BY n.name;

-- name: claim_quota_candidates
-- The quota path: due jobs in queue order, leaving out those naming a full quota (%(full)s),
-- unless they hold their slots already or missed their deadline (failed unstarted, so quotas
-- are not consulted), and those naming a rate limit with no claim left (%(exhausted)s), unless
-- they missed their deadline. The claim judges these in Python, counting slots as it takes jobs.
-- Level by level, as in claim: jobs scheduled for later are never read.
WITH RECURSIVE /*_pending_levels*/,
picked AS (
    SELECT j.* FROM levels CROSS JOIN LATERAL (
        SELECT /*_job_columns*/, holds_quota, sort_at FROM jobq_jobs
        WHERE queue = %(queue)s AND status = 'pending' AND lane = levels.lane
            AND priority = levels.priority AND sort_at <= %(now)s
            AND (quota_names = '[]' OR holds_quota
                OR NOT ((CASE WHEN quota_names ~ '^\[\s*("([^"\\]|\\.)*"\s*(,\s*"([^"\\]|\\.)*"\s*)*)?\]$' THEN quota_names ELSE '[]' END)::jsonb ?| %(full)s::text[])
                OR (begin_by IS NOT NULL AND begin_after + make_interval(secs => begin_by) < %(now)s))
            AND (rate_limits = '[]'
                OR NOT ((CASE WHEN rate_limits ~ '^\[\s*("([^"\\]|\\.)*"\s*(,\s*"([^"\\]|\\.)*"\s*)*)?\]$' THEN rate_limits ELSE '[]' END)::jsonb ?| %(exhausted)s::text[])
                OR (begin_by IS NOT NULL AND begin_after + make_interval(secs => begin_by) < %(now)s))
        ORDER BY sort_at, id LIMIT %(limit)s
        FOR UPDATE SKIP LOCKED) AS j
    LIMIT %(limit)s)
SELECT * FROM picked ORDER BY lane, priority DESC, sort_at, id;

-- name: queue_quotas
SELECT name, size FROM jobq_quotas WHERE queue = %(queue)s ORDER BY name;

-- name: create_quota
INSERT INTO jobq_quotas (queue, name, size) VALUES (%(queue)s, %(name)s, %(size)s)
ON CONFLICT (queue, name) DO NOTHING;

-- name: resize_quota
UPDATE jobq_quotas SET size = %(size)s WHERE queue = %(queue)s AND name = %(name)s;

-- name: remove_quota
DELETE FROM jobq_quotas WHERE queue = %(queue)s AND name = %(name)s;

-- name: rate_limit_use
-- The quota path of a claim, for a queue's rate limits: each limit with the claims recorded
-- in the last `per` seconds before %(now)s (or after it: a claimer that waited for the lock may
-- claim at an earlier time than one that went before it, and those claims count too, so that
-- no interval of `per` seconds holds more than max_claims claims whatever their order).
-- Per limit, an index range scan of its window's claims alone (a join read every claim kept
-- of the queue, then sorted the window's to count them).
SELECT l.name, l.max_claims, l.per, c.used, c.oldest
FROM jobq_rate_limits AS l CROSS JOIN LATERAL (
    SELECT count(*) AS used, min(at) AS oldest FROM jobq_rate_limit_claims
    WHERE queue = l.queue AND name = l.name AND at > %(now)s - make_interval(secs => l.per)) AS c
WHERE l.queue = %(queue)s
ORDER BY l.name;

-- name: record_rate_limit_claims
-- A claim's counted claims, (name, job_id) rows as one JSON parameter: one statement.
INSERT INTO jobq_rate_limit_claims (queue, name, at, job_id)
SELECT %(queue)s, c.name, %(now)s, c.job_id
FROM json_to_recordset(%(claims)s::json) AS c(name text, job_id bigint);

-- name: prune_rate_limit_claims
-- Forget the claims of a limit older than its window and a minute more: the minute covers a
-- claimer that waited for the claim lock and claims at an earlier time than the one before it
-- (it counts from its own time; waits are bounded by lock_timeout, 10 s). An index range
-- scan of the rows it deletes.
DELETE FROM jobq_rate_limit_claims
WHERE queue = %(queue)s AND name = %(name)s
    AND at < %(now)s - make_interval(secs => %(per)s + 60);

-- name: queue_rate_limits
SELECT name, max_claims, per FROM jobq_rate_limits WHERE queue = %(queue)s ORDER BY name;

-- name: create_rate_limit
INSERT INTO jobq_rate_limits (queue, name, max_claims, per)
VALUES (%(queue)s, %(name)s, %(max_claims)s, %(per)s)
ON CONFLICT (queue, name) DO NOTHING;

-- name: change_rate_limit
UPDATE jobq_rate_limits SET max_claims = %(max_claims)s, per = %(per)s
WHERE queue = %(queue)s AND name = %(name)s;

-- name: remove_rate_limit
DELETE FROM jobq_rate_limits WHERE queue = %(queue)s AND name = %(name)s;

-- name: forget_rate_limit_claims
DELETE FROM jobq_rate_limit_claims WHERE queue = %(queue)s AND name = %(name)s;

-- name: jobs_naming_rate_limit
-- Pending jobs of a queue that name a rate limit:
-- %(quoted)s is the name as JSON ("smtp"); names cannot hold quotes or backslashes, so the
-- text matches only that element. Reads the queue's pending jobs (an operator's question).
SELECT count(*) AS n FROM jobq_jobs
WHERE queue = %(queue)s AND status = 'pending' AND rate_limits <> '[]' AND position(%(quoted)s in rate_limits) > 0;

-- name: remove_agent
DELETE FROM jobq_agents
WHERE dispatcher_uuid = %(uuid)s AND queue = %(queue)s AND name = %(name)s;

-- name: update_schema_version
UPDATE jobq_schema SET version = %(version)s;

-- name: start_job
-- Fenced: only the claim of this attempt, by this dispatcher, may start the job. A job claimed
-- ahead from the back lane does not start while a job put back at the front of its queue
-- (lane 0: rescheduled "now", or a callback whose parent just finished) is due and free to
-- claim, or held by this same dispatcher unstarted (its agent claimed it ahead, for the front
-- of its own line): its claimer gives it back instead, so the put-back job starts first.
-- A put-back job naming a rate limit holds nothing back (its limit's window may be full).
-- The two checks name the job's queue through `job` rather than the updated row: a check
-- correlated to that row may be planned as a hashed subplan, which reads the front lane of
-- every queue in the pending index from end to end (lane is its second column) on every
-- start; uncorrelated, each is one probe of its index, made once.
-- Committed without waiting for the WAL flush (synchronous_commit off for this transaction
-- alone): a worker's crash cannot lose it (the server has it); only a crash of the server
-- itself within about wal_writer_delay could, and the job then goes back uninterrupted.
WITH async AS (SELECT set_config('synchronous_commit', 'off', true) AS v),
job AS (SELECT queue FROM jobq_jobs WHERE id = %(id)s)
UPDATE jobq_jobs SET status = 'active', active_start = %(now)s
WHERE id = %(id)s AND attempt = %(attempt)s AND dispatcher_uuid = %(dispatcher)s AND status = 'assigned'
    AND EXISTS (SELECT 1 FROM async)
    AND (lane = 0 OR (NOT EXISTS (SELECT 1 FROM jobq_jobs AS p
        WHERE p.queue = (SELECT queue FROM job) AND p.status = 'pending' AND p.lane = 0
            AND p.sort_at <= %(now)s AND (p.quota_names = '[]' OR p.holds_quota)
            AND p.rate_limits = '[]')
        AND NOT EXISTS (SELECT 1 FROM jobq_jobs AS h
            WHERE h.dispatcher_uuid = %(dispatcher)s AND h.status = 'assigned' AND h.lane = 0
                AND h.queue = (SELECT queue FROM job))));

-- name: start_jobs
-- start_job for a batch of jobs from the threads of one process (a group commit): one
-- statement, the rows as one JSON parameter, each fenced on its own attempt and dispatcher;
-- the ids returned are the jobs started. Same conditions as start_job, found for each row
-- by LATERAL subqueries on its job's queue (`front`): one probe of an index each, never the
-- hashed subplan a check correlated to the updated row may be planned as (start_job). The
-- rows updated may still be found, on fresh statistics, by a hash of the dispatcher's held
-- jobs (json_to_recordset is estimated at 100 rows).
WITH async AS (SELECT set_config('synchronous_commit', 'off', true) AS v),
front AS (
    SELECT r.id, r.attempt, r.dispatcher, r.now, due.id IS NULL AND held.id IS NULL AS clear
    FROM json_to_recordset(%(rows)s::json) AS r(id bigint, attempt integer, dispatcher text,
        now timestamptz)
    JOIN jobq_jobs AS q ON q.id = r.id
    LEFT JOIN LATERAL (SELECT p.id FROM jobq_jobs AS p
        WHERE p.queue = q.queue AND p.status = 'pending' AND p.lane = 0
            AND p.sort_at <= r.now AND (p.quota_names = '[]' OR p.holds_quota)
            AND p.rate_limits = '[]'
        LIMIT 1) AS due ON TRUE
    LEFT JOIN LATERAL (SELECT h.id FROM jobq_jobs AS h
        WHERE h.dispatcher_uuid = r.dispatcher AND h.status = 'assigned' AND h.lane = 0
            AND h.queue = q.queue
        LIMIT 1) AS held ON TRUE)
UPDATE jobq_jobs AS j SET status = 'active', active_start = f.now
FROM front AS f
WHERE j.id = f.id AND j.attempt = f.attempt AND j.dispatcher_uuid = f.dispatcher
    AND j.status = 'assigned' AND EXISTS (SELECT 1 FROM async)
    AND (j.lane = 0 OR f.clear)
RETURNING j.id;

-- name: check_owner
SELECT 1 AS owned FROM jobq_jobs
WHERE id = %(id)s AND attempt = %(attempt)s AND dispatcher_uuid = %(dispatcher)s AND status = 'active';

-- name: store_result
-- Fenced: a worker that lost its claim (reassigned after a false death) writes nothing.
-- A job without callbacks completes in this one statement; RETURNING tells the caller what
-- else to do (release callbacks, free quota slots, tell a parent, hand the result to jobs
-- waiting on this one). The decision reads the row's own flags, not a subquery: the row is
-- the one this UPDATE locked, so a callback or waiter added just before is always seen.
UPDATE jobq_jobs
SET status = CASE WHEN has_callbacks = TRUE THEN 'callbacks' ELSE 'completed' END,
    completed_at = CASE WHEN has_callbacks = TRUE THEN NULL ELSE %(now)s END,
    expires_at = CASE WHEN has_callbacks = TRUE THEN NULL
        ELSE %(now)s::timestamptz + keep_result * interval '1 second' END,
    result = %(result)s, result_repr = %(result_repr)s, failed = %(failed)s,
    failure = %(failure)s, retry_data = %(retry_data)s, active_end = %(now)s,
    waiting_on = NULL
WHERE id = %(id)s AND attempt = %(attempt)s AND dispatcher_uuid = %(dispatcher)s
    AND status = 'active'
RETURNING status, queue, parent_id, quota_names, has_waiters;

-- name: store_results_plain
-- store_result for a batch of jobs with nothing to do after them (no callbacks, no jobs
-- waiting on them, no parent, no quota slots to free), from the threads of one process: one
-- statement, committed by itself. Each row is fenced on its own attempt and dispatcher; the
-- ids returned are the jobs completed (the rows come as one JSON parameter, `result` in
-- hex, as in insert_jobs). Any other job, and a lost claim, match nothing here
-- and take store_result in a transaction. The flags are read on the rows this UPDATE locks,
-- so a callback or waiter added just before is always seen. %(dispatchers)s (the batch's
-- dispatchers) bounds the scan to their active jobs: otherwise the planner reads every
-- active job of every worker (2,020 rows of 50 workers: 2.9 ms, against 0.34 ms).
UPDATE jobq_jobs AS j
SET status = 'completed', completed_at = r.now,
    expires_at = r.now + j.keep_result * interval '1 second', result = decode(r.result, 'hex'),
    result_repr = r.result_repr, failed = r.failed, failure = r.failure,
    retry_data = r.retry_data, active_end = r.now, waiting_on = NULL
FROM json_to_recordset(%(rows)s::json) AS r(id bigint, attempt integer, dispatcher text,
    result text, result_repr text, failed boolean, failure text, retry_data text,
    now timestamptz)
WHERE j.dispatcher_uuid = ANY (%(dispatchers)s) AND j.status = 'active'
    AND j.id = r.id AND j.attempt = r.attempt AND j.dispatcher_uuid = r.dispatcher
    AND NOT j.has_callbacks AND NOT j.has_waiters
    AND j.parent_id IS NULL AND j.quota_names = '[]'
RETURNING j.id;

-- name: mark_has_callbacks
UPDATE jobq_jobs SET has_callbacks = TRUE WHERE id = %(id)s;

-- name: mark_has_waiters
UPDATE jobq_jobs SET has_waiters = TRUE WHERE id = %(id)s;

-- name: fail_unstarted
UPDATE jobq_jobs
SET status = 'callbacks', result = NULL, result_repr = %(result_repr)s, failed = TRUE,
    failure = %(failure)s, active_end = %(now)s
WHERE id = %(id)s AND status IN ('new', 'pending', 'assigned');

-- name: reschedule
-- Fenced: back to pending, at the front (lane 0, keeping its quota slots) or at
-- %(begin_after)s (its slots freed).
UPDATE jobq_jobs
SET status = 'pending', lane = %(lane)s, begin_after = %(begin_after)s, sort_at = %(begin_after)s,
    holds_quota = (%(lane)s = 0),
    retry_data = %(retry_data)s, active_start = NULL, dispatcher_uuid = NULL, agent_name = NULL
WHERE id = %(id)s AND attempt = %(attempt)s AND dispatcher_uuid = %(dispatcher)s AND status = 'active';

-- name: wait_on
-- Fenced: the job stays active, adopting %(inner)s's result once it has one.
UPDATE jobq_jobs SET waiting_on = %(inner)s, retry_data = %(retry_data)s
WHERE id = %(id)s AND attempt = %(attempt)s AND dispatcher_uuid = %(dispatcher)s AND status = 'active';

-- name: release_callbacks
-- A job got its result: its waiting callbacks become pending at the front of its queue
-- (lane 0, as put-back jobs), so the next free thread of any worker runs them before the
-- jobs waiting there: finishing a job's callbacks never waits behind unrelated jobs.
UPDATE jobq_jobs SET status = 'pending', lane = 0, sort_at = %(now)s, begin_after = %(now)s
WHERE parent_id = %(id)s AND status = 'new';

-- name: count_open_callbacks
SELECT count(*) AS n FROM jobq_jobs WHERE parent_id = %(id)s AND status <> 'completed';

-- name: mark_completed
-- A job put with keep_result expires that long after it completed (NULL without).
UPDATE jobq_jobs SET status = 'completed', completed_at = %(now)s,
    expires_at = %(now)s::timestamptz + keep_result * interval '1 second'
WHERE id = %(id)s AND status = 'callbacks';

-- name: parent_of
SELECT parent_id FROM jobq_jobs WHERE id = %(id)s;

-- name: wait_links
-- What a job still needs before it can finish: its parent's result (a callback) and the job
-- it waits on.
SELECT status, parent_id, waiting_on FROM jobq_jobs WHERE id = %(id)s;

-- name: waiters
SELECT id FROM jobq_jobs WHERE waiting_on = %(id)s AND status = 'active';

-- name: adopt_result
-- Copy %(inner)s's result to a job that returned it (the original's "job returns a job").
UPDATE jobq_jobs
SET status = 'callbacks', waiting_on = NULL, active_end = %(now)s,
    result = (SELECT result FROM jobq_jobs WHERE id = %(inner)s),
    result_repr = (SELECT result_repr FROM jobq_jobs WHERE id = %(inner)s),
    failed = (SELECT failed FROM jobq_jobs WHERE id = %(inner)s),
    failure = (SELECT failure FROM jobq_jobs WHERE id = %(inner)s)
WHERE id = %(id)s AND status = 'active';

-- name: set_annotation
UPDATE jobq_jobs SET annotations = %(annotations)s WHERE id = %(id)s;

-- name: get_annotations
SELECT annotations FROM jobq_jobs WHERE id = %(id)s;

-- name: register_dispatcher
INSERT INTO jobq_dispatchers (uuid, host, pid, started, last_ping, ping_interval,
    death_interval, activated, deactivated)
VALUES (%(uuid)s, %(host)s, %(pid)s, coalesce(%(now)s::timestamptz, clock_timestamp()), coalesce(%(now)s::timestamptz, clock_timestamp()),
    %(ping_interval)s, %(death_interval)s, coalesce(%(now)s::timestamptz, clock_timestamp()), NULL)
ON CONFLICT (uuid) DO UPDATE SET host = excluded.host, pid = excluded.pid,
    started = excluded.started, last_ping = excluded.last_ping, activated = excluded.activated,
    deactivated = NULL;

-- name: server_now
-- The database server's clock (dispatcher liveness, with driver.server_time).
SELECT clock_timestamp() AS now;

-- name: get_dispatcher
SELECT uuid, host, pid, started, last_ping, ping_interval, death_interval, activated,
    deactivated
FROM jobq_dispatchers WHERE uuid = %(uuid)s;

-- name: ping_dispatcher
-- No row updated means a sibling deactivated this dispatcher (presumed dead): reactivate.
-- Liveness times: a NULL %(now)s means the server's clock (driver.server_time).
UPDATE jobq_dispatchers SET last_ping = coalesce(%(now)s::timestamptz, clock_timestamp())
WHERE uuid = %(uuid)s AND activated IS NOT NULL;

-- name: lock_dispatcher
SELECT uuid, host, pid, started, last_ping, ping_interval, death_interval, activated,
    deactivated
FROM jobq_dispatchers WHERE uuid = %(uuid)s FOR UPDATE;

-- name: reactivate_dispatcher
UPDATE jobq_dispatchers SET activated = coalesce(%(now)s::timestamptz, clock_timestamp()), last_ping = coalesce(%(now)s::timestamptz, clock_timestamp()),
    deactivated = NULL
WHERE uuid = %(uuid)s;

-- name: dead_dispatchers
-- Activated dispatchers whose last ping is older than their own death interval (whether the
-- judge itself was in reach all that while is judged in Python, in the judge's own time).
SELECT uuid, death_interval FROM jobq_dispatchers WHERE activated IS NOT NULL
    AND last_ping + make_interval(secs => death_interval) < coalesce(%(now)s::timestamptz, clock_timestamp());

-- name: deactivate_if_dead
-- Only one sweeper wins: the row is updated once, under its lock. A row another session
-- holds (its dispatcher cut off between a ping's UPDATE and COMMIT) is skipped, not waited
-- for: the next sweep tries again, and meanwhile this worker goes on claiming.
UPDATE jobq_dispatchers SET activated = NULL, deactivated = coalesce(%(now)s::timestamptz, clock_timestamp())
WHERE uuid = (SELECT uuid FROM jobq_dispatchers
              WHERE uuid = %(uuid)s AND activated IS NOT NULL
                  AND last_ping + make_interval(secs => death_interval) < coalesce(%(now)s::timestamptz, clock_timestamp())
              FOR UPDATE SKIP LOCKED);

-- name: set_intervals
UPDATE jobq_dispatchers SET ping_interval = %(ping_interval)s,
    death_interval = %(death_interval)s
WHERE uuid = %(uuid)s;

-- name: orphan_jobs
-- Jobs claimed or running under a dispatcher that is no longer activated (dead and swept,
-- stopped, or never registered). Jobs waiting on an inner job are left to adopt its result.
SELECT /*_job_columns*/
FROM jobq_jobs
WHERE (status = 'assigned' OR status = 'active') AND waiting_on IS NULL
    AND dispatcher_uuid IS NOT NULL
    AND NOT EXISTS (SELECT 1 FROM jobq_dispatchers d
                    WHERE d.uuid = jobq_jobs.dispatcher_uuid AND d.activated IS NOT NULL)
ORDER BY lane, priority DESC, sort_at, id LIMIT %(limit)s
-- Rows another session holds (a gone worker's commit cut off half-way) are left for a later
-- sweep: handing them on now would wait for that lock.
FOR UPDATE SKIP LOCKED;

-- name: dispatcher_jobs
SELECT /*_job_columns*/
FROM jobq_jobs
WHERE dispatcher_uuid = %(uuid)s AND (status = 'assigned' OR status = 'active')
    AND waiting_on IS NULL
ORDER BY lane, priority DESC, sort_at, id;

-- name: release_job
-- Fenced: a claimed job that never started goes back to its queue as it was: its lane and its
-- place there (so a job claimed ahead never jumps ahead of one put back meanwhile), keeping
-- its quota slots.
UPDATE jobq_jobs SET status = 'pending', dispatcher_uuid = NULL, agent_name = NULL,
    holds_quota = TRUE
WHERE id = %(id)s AND attempt = %(attempt)s AND dispatcher_uuid = %(dispatcher)s
    AND status = 'assigned';

-- name: deactivate_dispatcher
UPDATE jobq_dispatchers SET activated = NULL, deactivated = coalesce(%(now)s::timestamptz, clock_timestamp())
WHERE uuid = %(uuid)s;

-- name: set_agent
INSERT INTO jobq_agents (dispatcher_uuid, queue, name, size, filter, filter_seal)
VALUES (%(uuid)s, %(queue)s, %(name)s, %(size)s, %(filter)s, %(filter_seal)s)
ON CONFLICT (dispatcher_uuid, queue, name) DO UPDATE SET size = excluded.size,
    filter = excluded.filter, filter_seal = excluded.filter_seal;

-- name: clear_agents
DELETE FROM jobq_agents WHERE dispatcher_uuid = %(uuid)s;

-- name: list_agents
SELECT dispatcher_uuid, queue, name, size, filter, filter_seal FROM jobq_agents
WHERE dispatcher_uuid = %(uuid)s ORDER BY queue, name;

-- name: notify
-- Wake idle workers of a queue; delivered when the transaction commits. The channel is the
-- schema's (driver.channel): NOTIFY reaches every session of the database, whatever schema.
SELECT pg_notify(%(channel)s, %(queue)s);

-- name: migrate_lock
-- Serialize concurrent first connects while the schema is created.
SELECT pg_advisory_xact_lock(727472631);

-- name: insert_jobs
-- A batch of jobs from one JSON parameter (one round trip, parsed by the server; `call` in
-- hex), all with %(status)s, put at %(now)s. Rows are inserted in the array's order, so their
-- identity ids ascend in that order: the caller gives the k-th smallest id returned to the
-- k-th job.
INSERT INTO jobq_jobs (queue, status, lane, sort_at, begin_after, begin_by, job_class, call,
    call_repr, retry_policy, retry_data, failure_log_level, quota_names, put_by, parent_id,
    created, priority, keep_result, rate_limits)
SELECT r.queue, %(status)s, 1, GREATEST(r.begin_after, %(now)s), r.begin_after, r.begin_by,
    r.job_class, decode(r.call, 'hex'), r.call_repr, r.retry_policy, r.retry_data,
    r.failure_log_level, r.quota_names, r.put_by, r.parent_id, %(now)s, r.priority, r.keep_result,
    r.rate_limits
FROM ROWS FROM (json_to_recordset(%(rows)s::json) AS (queue text, begin_after timestamptz,
        begin_by double precision, job_class text, call text, call_repr text,
        retry_policy text, retry_data text, failure_log_level integer, quota_names text,
        put_by text, parent_id bigint, priority smallint,
        keep_result double precision, rate_limits text)) WITH ORDINALITY AS r
ORDER BY r.ordinality
RETURNING id;

-- name: insert_puts_and_notify
-- Single puts of a process's threads at the same moment (a group commit): one statement, its
-- own commit, each row with the time of its own put; the wake-ups of their queues with them.
-- Rows are inserted in the array's order, so their ids ascend in that order (insert_jobs).
WITH inserted AS (
    INSERT INTO jobq_jobs (queue, status, lane, sort_at, begin_after, begin_by, job_class, call,
        call_repr, retry_policy, retry_data, failure_log_level, quota_names, put_by, parent_id,
        created, priority, keep_result, rate_limits)
    SELECT r.queue, 'pending', 1, GREATEST(r.begin_after, r.now), r.begin_after, r.begin_by,
        r.job_class, decode(r.call, 'hex'), r.call_repr, r.retry_policy, r.retry_data,
        r.failure_log_level, r.quota_names, r.put_by, r.parent_id, r.now, r.priority,
        r.keep_result, r.rate_limits
    FROM ROWS FROM (json_to_recordset(%(rows)s::json) AS (queue text, begin_after timestamptz,
            begin_by double precision, job_class text, call text, call_repr text,
            retry_policy text, retry_data text, failure_log_level integer, quota_names text,
            put_by text, parent_id bigint, priority smallint,
            keep_result double precision, rate_limits text, now timestamptz))
        WITH ORDINALITY AS r
    ORDER BY r.ordinality
    RETURNING id, queue)
SELECT id, pg_notify(%(channel)s, queue) FROM inserted;

-- name: insert_and_notify
-- One job put by itself: the insert and the wake-up in one statement, so that with the
-- transaction's BEGIN and COMMIT it is a single round trip in pipeline mode.
WITH inserted AS (
    INSERT INTO jobq_jobs (queue, status, lane, sort_at, begin_after, begin_by, job_class, call,
        call_repr, retry_policy, retry_data, failure_log_level, quota_names, put_by, parent_id,
        created, priority, keep_result, rate_limits)
    VALUES (%(queue)s, %(status)s, 1, %(sort_at)s, %(begin_after)s, %(begin_by)s, %(job_class)s,
        %(call)s, %(call_repr)s, %(retry_policy)s, %(retry_data)s, %(failure_log_level)s,
        %(quota_names)s, %(put_by)s, %(parent_id)s, %(now)s, %(priority)s, %(keep_result)s,
        %(rate_limits)s)
    RETURNING id, queue)
SELECT id, pg_notify(%(channel)s, queue) FROM inserted;

-- name: upsert_schedule
-- Create a schedule or replace its definition (a pause is kept); its next tick starts over.
INSERT INTO jobq_schedules (name, cron, timezone, queue, missed, catch_up, job_class, call,
    call_repr, retry_policy, failure_log_level, next_tick, created, updated, priority)
VALUES (%(name)s, %(cron)s, %(timezone)s, %(queue)s, %(missed)s, %(catch_up)s, %(job_class)s, %(call)s, %(call_repr)s,
    %(retry_policy)s, %(failure_log_level)s, %(next_tick)s, %(now)s, %(now)s, %(priority)s)
ON CONFLICT (name) DO UPDATE SET cron = excluded.cron, timezone = excluded.timezone,
    queue = excluded.queue, missed = excluded.missed, catch_up = excluded.catch_up,
    job_class = excluded.job_class, call = excluded.call, call_repr = excluded.call_repr,
    retry_policy = excluded.retry_policy, failure_log_level = excluded.failure_log_level,
    next_tick = excluded.next_tick, revision = jobq_schedules.revision + 1,
    updated = excluded.updated, priority = excluded.priority;

-- name: get_schedule
SELECT * FROM jobq_schedules WHERE name = %(name)s;

-- name: list_schedules
SELECT * FROM jobq_schedules ORDER BY name;

-- name: delete_schedule
DELETE FROM jobq_schedules WHERE name = %(name)s;

-- name: delete_schedule_ticks
DELETE FROM jobq_schedule_ticks WHERE schedule = %(name)s;

-- name: set_schedule_paused
UPDATE jobq_schedules SET paused = %(paused)s, next_tick = %(next_tick)s, revision = revision + 1,
    updated = %(now)s
WHERE name = %(name)s;

-- name: due_schedules
SELECT * FROM jobq_schedules WHERE NOT paused AND next_tick <= %(now)s
ORDER BY next_tick LIMIT %(limit)s;

-- name: earliest_schedule_tick
SELECT min(next_tick) AS next_tick FROM jobq_schedules WHERE NOT paused;

-- name: advance_schedule
-- Taken by one worker only: the others read the same next_tick and revision, and find them
-- changed (SQLite: after this transaction; PostgreSQL: this row's lock, then a re-check).
UPDATE jobq_schedules SET next_tick = %(next_tick)s, last_tick = coalesce(%(last_tick)s, last_tick)
WHERE name = %(name)s AND revision = %(revision)s AND next_tick = %(expected)s AND NOT paused;

-- name: insert_schedule_tick
INSERT INTO jobq_schedule_ticks (schedule, tick, created) VALUES (%(schedule)s, %(tick)s, %(now)s)
ON CONFLICT (schedule, tick) DO NOTHING;

-- name: set_schedule_tick_job
UPDATE jobq_schedule_ticks SET job_id = %(job_id)s WHERE schedule = %(schedule)s AND tick = %(tick)s;

-- name: set_schedule_last_job
UPDATE jobq_schedules SET last_job_id = %(job_id)s WHERE name = %(name)s;

-- name: schedule_ticks
SELECT schedule, tick, job_id FROM jobq_schedule_ticks WHERE schedule = %(schedule)s
ORDER BY tick;

-- name: prune_schedule_ticks
DELETE FROM jobq_schedule_ticks WHERE created < %(before)s;

-- name: get_expired
SELECT id, queue, completed_at, expires_at, keep_result, pruned_at FROM jobq_expired
WHERE id = %(id)s;

-- name: last_job_id
-- The highest job id issued so far (NULL before the first put): a missing id below it was
-- a job once, or a put rolled back.
SELECT pg_sequence_last_value(pg_get_serial_sequence('jobq_jobs', 'id')::regclass) AS id;
