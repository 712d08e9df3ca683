-- jobq queries for SQLite. Each block starts with "-- name: <query>"; parameters are :named.
-- Writes run inside BEGIN IMMEDIATE, so one writer at a time: no row locks are needed.

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
INSERT INTO jobq_schema (version) VALUES (:version);

-- name: insert_job_row
-- Every insert of a job, with positional parameters in this order (binding fifteen named ones
-- costs SQLite an eighth more per insert). A batch repeats the VALUES tuple, up to
-- INSERT_PART rows per statement (sqlite.py). The new id is the cursor's lastrowid (RETURNING
-- costs a sixth more); a batch's ids are consecutive (AUTOINCREMENT, inside one write
-- transaction), read back with last_insert_rowid.
INSERT INTO jobq_jobs (queue, status, lane, sort_at, begin_after, begin_by, job_class, call,
    call_repr, retry_policy, retry_data, failure_log_level, quota_names, put_by, parent_id,
    created, priority, keep_result, rate_limits)
VALUES (?, ?, 1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?);

-- name: last_insert_id
SELECT last_insert_rowid() AS id;

-- name: count_ids_between
SELECT count(*) AS n FROM jobq_jobs WHERE id BETWEEN :first AND :last;

-- name: _unique_held
-- A job holding its unique key: the predicate of the partial unique index jobq_jobs_unique,
-- repeated as it is in ON CONFLICT (which then uses that index as its arbiter).
unique_key IS NOT NULL
        AND ((unique_while = 'pending' AND status = 'pending' AND attempt = 0)
            OR (unique_while = 'pending,active'
                AND (status = 'pending' OR status = 'assigned' OR status = 'active')))

-- name: insert_unique
-- A job put with a unique key: the insert and the conflict check are this one statement, so
-- two producers putting the same key at once make one job (SQLite's writers take turns). No row returned: a job holds the key (unique_holder).
INSERT INTO jobq_jobs (queue, status, lane, sort_at, begin_after, begin_by, job_class, call,
    call_repr, retry_policy, retry_data, failure_log_level, quota_names, put_by, parent_id,
    created, unique_key, unique_while, rate_limits, priority, keep_result)
VALUES (:queue, :status, 1, :sort_at, :begin_after, :begin_by, :job_class,
    :call, :call_repr, :retry_policy, :retry_data, :failure_log_level,
    :quota_names, :put_by, :parent_id, :now, :unique_key, :unique_while, :rate_limits, :priority, :keep_result)
ON CONFLICT (queue, unique_key) WHERE /*_unique_held*/ DO NOTHING
RETURNING id;

-- name: unique_holder
-- The job holding a key of a queue (the write transaction holds the database's lock).
SELECT id, status FROM jobq_jobs
WHERE queue = :queue AND unique_key = :unique_key AND /*_unique_held*/;

-- name: replace_unique
-- on_conflict="replace": the pending holder takes the new put's call, class, policy and
-- times (a job put back at the front keeps its place there).
UPDATE jobq_jobs SET call = :call, call_repr = :call_repr, job_class = :job_class,
    retry_policy = :retry_policy,
    begin_after = :begin_after, begin_by = :begin_by,
    sort_at = CASE WHEN lane = 0 THEN sort_at ELSE :sort_at END
WHERE id = :id AND status = 'pending';

-- name: take_unique_window
-- put(unique_for=): take the key of the queue until :until, unless a put took it for a
-- period not over yet (then no row is returned: unique_window_job names its job).
INSERT INTO jobq_unique_keys (queue, unique_key, job_id, until)
VALUES (:queue, :unique_key, NULL, :until)
ON CONFLICT (queue, unique_key) DO UPDATE SET job_id = NULL, until = excluded.until
WHERE jobq_unique_keys.until <= :now
RETURNING unique_key;

-- name: unique_window_job
SELECT job_id FROM jobq_unique_keys WHERE queue = :queue AND unique_key = :unique_key;

-- name: set_unique_window_job
UPDATE jobq_unique_keys SET job_id = :job_id
WHERE queue = :queue AND unique_key = :unique_key;

-- name: prune_unique_keys
DELETE FROM jobq_unique_keys WHERE until <= :now;

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
-- Queue order: put-back jobs first, then higher priorities first, then by sort_at (when the
-- job was put or became due).
SELECT /*_job_columns*/
FROM jobq_jobs WHERE queue = :queue AND status = 'pending'
ORDER BY lane, priority DESC, sort_at, id LIMIT :limit OFFSET :offset;

-- name: pending_jobs_reversed
SELECT id FROM jobq_jobs WHERE queue = :queue AND status = 'pending'
ORDER BY lane DESC, priority, sort_at DESC, id DESC LIMIT 1 OFFSET :offset;

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
    rate_limits = COALESCE(:rate_limits, rate_limits),
    priority = :priority
WHERE id = :id AND status = 'new' AND parent_id IS NULL;

-- name: put_back
UPDATE jobq_jobs SET status = 'pending', queue = :queue, lane = 0, sort_at = :now
WHERE id = :id AND status = 'new' AND parent_id IS NULL;

-- name: _pending_levels
-- The (lane, priority) levels of a queue's pending jobs, in queue order (lane 0 first, then
-- higher priorities first), found one probe of the pending index each (a loose index scan),
-- as a co-routine read only as far as a claim reads it (NOT MATERIALIZED: the claim reads it
-- three times, and a materialized one let SQLite build a Bloom filter of the queue's due jobs
-- for the join, 0.5 s at 1M rows). A claim joins each level to a range
-- scan of that level's due jobs (queue, lane, priority, sort_at <= now), CROSS JOIN keeping
-- the levels outside (SQLite's documented join order), and stops at its LIMIT: a queue whose
-- jobs all have priority 0 costs a probe more than a claim without levels, and a level whose
-- jobs are all scheduled for later two probes, however many it holds. No ORDER BY: a sort
-- would read every level's due jobs first; the loops' own order is queue order. INDEXED BY:
-- with a table's statistics (ANALYZE), SQLite built an automatic index of every pending job
-- of the queue for the join instead (2.4 s a claim at 1M rows). (`lane IN
-- (0, 1) AND priority IN (-10..10)` in order also reads no job not due, but probes all 42
-- levels every claim: 3.4 times the cost of a claim of 8 jobs.) Priorities are -10..10.
levels(lane, priority) AS NOT MATERIALIZED (
    SELECT lane, priority FROM (SELECT lane, priority FROM jobq_jobs
        WHERE queue = :queue AND status = 'pending' ORDER BY lane, priority DESC LIMIT 1)
    UNION ALL
    SELECT n.lane, n.priority FROM levels JOIN jobq_jobs AS n ON n.id = coalesce(
        (SELECT p.id FROM jobq_jobs AS p WHERE p.queue = :queue AND p.status = 'pending'
            AND p.lane = levels.lane AND p.priority < levels.priority
            ORDER BY p.priority DESC LIMIT 1),
        (SELECT p.id FROM jobq_jobs AS p WHERE p.queue = :queue AND p.status = 'pending'
            AND p.lane > levels.lane ORDER BY p.lane, p.priority DESC LIMIT 1)))

-- name: _due_in_order
-- The due jobs of a queue in queue order (lane, priority DESC, sort_at, id), level by level
-- (_pending_levels); a query adds its own conditions on `j` and its LIMIT.
levels CROSS JOIN jobq_jobs AS j INDEXED BY jobq_jobs_pending
WHERE j.queue = :queue AND j.status = 'pending' AND j.lane = levels.lane
    AND j.priority = levels.priority AND j.sort_at <= :now

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
-- Queue order is (lane, priority DESC, sort_at, id), read level by level (_due_in_order) up
-- to :now: a backlog of jobs scheduled for later costs nothing.
WITH RECURSIVE /*_pending_levels*/
UPDATE jobq_jobs
SET status = CASE WHEN id IN (SELECT j.id FROM /*_due_in_order*/ LIMIT :start)
        AND NOT (begin_by IS NOT NULL AND begin_after + CAST(begin_by * 1000000 AS INTEGER) < :now) THEN 'active' ELSE 'assigned' END,
    active_start = CASE WHEN id IN (SELECT j.id FROM /*_due_in_order*/ LIMIT :start)
        AND NOT (begin_by IS NOT NULL AND begin_after + CAST(begin_by * 1000000 AS INTEGER) < :now) THEN :now END,
    attempt = attempt + 1, dispatcher_uuid = :dispatcher,
    agent_name = :agent, assigned_at = :now
WHERE id IN (
    SELECT j.id FROM /*_due_in_order*/
        AND NOT EXISTS (SELECT 1 FROM jobq_quotas WHERE queue = :queue)
        AND NOT EXISTS (SELECT 1 FROM jobq_rate_limits WHERE queue = :queue)
        AND (NOT :active_only OR EXISTS (SELECT 1 FROM jobq_dispatchers
            WHERE uuid = :dispatcher AND activated IS NOT NULL))
    LIMIT :limit)
RETURNING /*_job_columns*/, sort_at;

-- name: claim_callbacks
-- A callback slot: an agent whose threads are all busy with long jobs takes up to :limit
-- callbacks due at the front of its queue (lane 0, where a parent's result puts them) for a
-- thread of its own, so finishing a job's callbacks never waits behind unrelated long jobs.
-- Callbacks naming quotas wait for the agent's own threads (the quota path counts slots).
-- Priority by priority at the front (lane 0), as the claim reads its levels.
WITH RECURSIVE front(priority) AS (
    SELECT priority FROM (SELECT priority FROM jobq_jobs
        WHERE queue = :queue AND status = 'pending' AND lane = 0 ORDER BY priority DESC LIMIT 1)
    UNION ALL
    SELECT (SELECT p.priority FROM jobq_jobs AS p WHERE p.queue = :queue
            AND p.status = 'pending' AND p.lane = 0 AND p.priority < front.priority
            ORDER BY p.priority DESC LIMIT 1)
    FROM front WHERE front.priority IS NOT NULL)
UPDATE jobq_jobs
SET status = CASE WHEN NOT (begin_by IS NOT NULL AND begin_after + CAST(begin_by * 1000000 AS INTEGER) < :now) THEN 'active' ELSE 'assigned' END,
    active_start = CASE WHEN NOT (begin_by IS NOT NULL AND begin_after + CAST(begin_by * 1000000 AS INTEGER) < :now) THEN :now END,
    attempt = attempt + 1, dispatcher_uuid = :dispatcher,
    agent_name = :agent, assigned_at = :now
WHERE id IN (
    SELECT j.id FROM front CROSS JOIN jobq_jobs AS j INDEXED BY jobq_jobs_pending
    WHERE j.queue = :queue AND j.status = 'pending' AND j.lane = 0
        AND j.priority = front.priority AND j.sort_at <= :now
        AND j.parent_id IS NOT NULL AND j.quota_names = '[]'
        AND EXISTS (SELECT 1 FROM jobq_dispatchers
            WHERE uuid = :dispatcher AND activated IS NOT NULL)
    LIMIT :limit)
RETURNING /*_job_columns*/, sort_at;

-- name: claim_candidates
-- For agents with a filter: due jobs in queue order, judged in Python before claim_ids.
-- Nothing for a queue with quotas or rate limits (as in claim): those take the quota path.
WITH RECURSIVE /*_pending_levels*/
SELECT * FROM (
    SELECT /*_job_columns:j*/, j.sort_at
    FROM /*_due_in_order*/
        AND NOT EXISTS (SELECT 1 FROM jobq_quotas WHERE queue = :queue)
        AND NOT EXISTS (SELECT 1 FROM jobq_rate_limits WHERE queue = :queue)
    LIMIT :limit)
ORDER BY lane, priority DESC, sort_at, id;

-- name: claim_ids
-- The jobs of :start_ids (those the claimer has a free thread for) go straight to active.
-- Deadlines are judged at :now (the claimer's time); the claim's times are :stamp.
UPDATE jobq_jobs
SET status = CASE WHEN id IN (SELECT value FROM json_each(:start_ids)) AND NOT (begin_by IS NOT NULL AND begin_after + CAST(begin_by * 1000000 AS INTEGER) < :now) THEN 'active' ELSE 'assigned' END,
    active_start = CASE WHEN id IN (SELECT value FROM json_each(:start_ids)) AND NOT (begin_by IS NOT NULL AND begin_after + CAST(begin_by * 1000000 AS INTEGER) < :now) THEN :stamp END,
    attempt = attempt + 1, dispatcher_uuid = :dispatcher,
    agent_name = :agent, assigned_at = :stamp
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

-- name: lock_queue_for_claim
-- lock_queue_quotas for the quota path of a claim (BEGIN IMMEDIATE holds the lock already),
-- with whether the claiming dispatcher is active (with active_only). No server clock: the
-- claimer reads this machine's (its workers share it).
SELECT NULL AS now, EXISTS (SELECT 1 FROM jobq_dispatchers
        WHERE uuid = :dispatcher AND activated IS NOT NULL) AS active;

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
WITH RECURSIVE /*_pending_levels*/
SELECT * FROM (
    SELECT /*_job_columns:j*/, j.holds_quota, j.sort_at
    FROM /*_due_in_order*/
        AND (j.quota_names = '[]' OR j.holds_quota = 1
            OR NOT EXISTS (SELECT 1 FROM json_each(CASE WHEN json_valid(j.quota_names)
                               THEN j.quota_names ELSE '[]' END) AS n
                           WHERE n.value IN (SELECT value FROM json_each(:full)))
            OR (j.begin_by IS NOT NULL AND j.begin_after + CAST(j.begin_by * 1000000 AS INTEGER) < :now))
        AND (j.rate_limits = '[]'
            OR NOT EXISTS (SELECT 1 FROM json_each(CASE WHEN json_valid(j.rate_limits)
                               THEN j.rate_limits ELSE '[]' END) AS n
                           WHERE n.value IN (SELECT value FROM json_each(:exhausted)))
            OR (j.begin_by IS NOT NULL AND j.begin_after + CAST(j.begin_by * 1000000 AS INTEGER) < :now))
    LIMIT :limit)
ORDER BY lane, priority DESC, sort_at, id;

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
-- Per limit, an index range scan of its window's claims alone.
SELECT l.name, l.max_claims, l.per,
    (SELECT count(*) FROM jobq_rate_limit_claims AS c WHERE c.queue = l.queue AND c.name = l.name
        AND c.at > :now - CAST(round(l.per * 1000000) AS INTEGER)) AS used,
    (SELECT min(c.at) FROM jobq_rate_limit_claims AS c WHERE c.queue = l.queue AND c.name = l.name
        AND c.at > :now - CAST(round(l.per * 1000000) AS INTEGER)) AS oldest
FROM jobq_rate_limits AS l
WHERE l.queue = :queue
ORDER BY l.name;

-- name: record_rate_limit_claims
-- A claim's counted claims, (name, job_id) rows as one JSON parameter: one statement.
INSERT INTO jobq_rate_limit_claims (queue, name, at, job_id)
SELECT :queue, json_extract(c.value, '$.name'), :now, json_extract(c.value, '$.job_id')
FROM json_each(:claims) AS c;

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
    expires_at = CASE WHEN has_callbacks = 1 THEN NULL
        ELSE :now + CAST(keep_result * 1000000 AS INTEGER) END,
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
-- A job put with keep_result expires that long after it completed (NULL without).
UPDATE jobq_jobs SET status = 'completed', completed_at = :now,
    expires_at = :now + CAST(keep_result * 1000000 AS INTEGER)
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
ORDER BY lane, priority DESC, sort_at, id LIMIT :limit;

-- name: dispatcher_jobs
SELECT /*_job_columns*/
FROM jobq_jobs
WHERE dispatcher_uuid = :uuid AND (status = 'assigned' OR status = 'active')
    AND waiting_on IS NULL
ORDER BY lane, priority DESC, sort_at, id;

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
INSERT INTO jobq_agents (dispatcher_uuid, queue, name, size, filter, filter_seal)
VALUES (:uuid, :queue, :name, :size, :filter, :filter_seal)
ON CONFLICT (dispatcher_uuid, queue, name) DO UPDATE SET size = excluded.size,
    filter = excluded.filter, filter_seal = excluded.filter_seal;

-- name: clear_agents
DELETE FROM jobq_agents WHERE dispatcher_uuid = :uuid;

-- name: list_agents
SELECT dispatcher_uuid, queue, name, size, filter, filter_seal FROM jobq_agents
WHERE dispatcher_uuid = :uuid ORDER BY queue, name;

-- name: upsert_schedule
-- Create a schedule or replace its definition (a pause is kept); its next tick starts over.
INSERT INTO jobq_schedules (name, cron, timezone, queue, missed, catch_up, job_class, call,
    call_repr, retry_policy, failure_log_level, next_tick, created, updated, priority)
VALUES (:name, :cron, :timezone, :queue, :missed, :catch_up, :job_class, :call, :call_repr,
    :retry_policy, :failure_log_level, :next_tick, :now, :now, :priority)
ON CONFLICT (name) DO UPDATE SET cron = excluded.cron, timezone = excluded.timezone,
    queue = excluded.queue, missed = excluded.missed, catch_up = excluded.catch_up,
    job_class = excluded.job_class, call = excluded.call, call_repr = excluded.call_repr,
    retry_policy = excluded.retry_policy, failure_log_level = excluded.failure_log_level,
    next_tick = excluded.next_tick, revision = jobq_schedules.revision + 1,
    updated = excluded.updated, priority = excluded.priority;

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

-- name: get_expired
SELECT id, queue, completed_at, expires_at, keep_result, pruned_at FROM jobq_expired
WHERE id = :id;

-- name: last_job_id
-- The highest job id issued so far (NULL before the first put): a missing id below it was
-- a job once, or a put rolled back.
SELECT seq AS id FROM sqlite_sequence WHERE name = 'jobq_jobs';
