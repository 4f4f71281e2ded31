-- Named queries for the PostgreSQL store, parsed once (bridge.store.queries). Each block starts
-- with "-- name --", then a one-line description. Parameters are psycopg's %(name)s, or
-- %(name)b for the arrays of group commit (sent in binary: dumped in C, not in Python); a
-- parameter that may be NULL, or is an array, carries its type. Writes that concern a leased
-- job are fenced by (id, lease_owner, attempts, status = 'running').

-- lock_keys --
-- Serialise on some keys until the transaction ends (in one order, so two never deadlock)
SELECT pg_advisory_xact_lock(h)
  FROM (SELECT DISTINCT hashtextextended(k, 0) AS h FROM unnest(%(keys)b::text[]) AS k) AS s
 ORDER BY h;

-- notify_work --
-- Tell every listening store that jobs of a kind may be claimable (sent at commit)
SELECT pg_notify(%(channel)s, %(kind)s);

-- message_id_owners --
-- The notifications that (partner, message id) pairs were accepted as
SELECT m.partner, m.message_id, m.notification_id
  FROM message_ids m
  JOIN unnest(%(partners)b::text[], %(message_ids)b::text[]) AS p (partner, message_id)
    ON m.partner = p.partner AND m.message_id = p.message_id;

-- message_id_owner --
-- The notification one (partner, message id) was accepted as
SELECT notification_id FROM message_ids
 WHERE partner = %(partner)s AND message_id = %(message_id)s;

-- live_by_business_keys --
-- The pending or imported notifications holding some (partner, business key) pairs: a key is
-- live per partner. One index probe per key (a LATERAL subquery with LIMIT is never flattened
-- into a join): as a join, the generic plan of the prepared statement read every live key of
-- the partner, so each accept slowed as the table grew.
SELECT k.partner, k.business_key, n.id
  FROM unnest(%(partners)b::text[], %(keys)b::text[]) AS k (partner, business_key)
 CROSS JOIN LATERAL (
       SELECT id FROM notifications
        WHERE partner = k.partner AND business_key = k.business_key
          AND status IN ('pending', 'imported')
        LIMIT 1) AS n;

-- live_by_business_key --
-- The pending or imported notification of a partner holding a business key, if any
SELECT id FROM notifications
 WHERE partner = %(partner)s AND business_key = %(business_key)s
   AND status IN ('pending', 'imported');

-- insert_accepted --
-- New pending notifications, one array per column
INSERT INTO notifications (
    id, partner, partner_event_id, message_id, business_key, token_sealed, token_sha256,
    session_kind, source_application_id, source_session_id, deadline, rule, workflow_id,
    vendor_data, trust_review, destinations, trace_context, received_at, updated_at, status)
SELECT r.*, r.received_at, 'pending'
  FROM unnest(
       %(id)b::text[], %(partner)b::text[], %(partner_event_id)b::text[],
       %(message_id)b::text[], %(business_key)b::text[], %(token_sealed)b::bytea[],
       %(token_sha256)b::text[], %(session_kind)b::text[], %(source_application_id)b::text[],
       %(source_session_id)b::text[], %(deadline)b::double precision[], %(rule)b::text[],
       %(workflow_id)b::text[], %(vendor_data)b::text[], %(trust_review)b::boolean[],
       %(destinations)b::text[], %(trace_context)b::text[],
       %(received_at)b::double precision[])
    AS r (id, partner, partner_event_id, message_id, business_key, token_sealed, token_sha256,
          session_kind, source_application_id, source_session_id, deadline, rule, workflow_id,
          vendor_data, trust_review, destinations, trace_context, received_at);

-- insert_accepted_jobs --
-- The queued import jobs of accepted notifications, in their order; a job's lane is its partner
INSERT INTO jobs (kind, ref, lane, status, deadline, run_after, created_at, updated_at)
SELECT 'import', r.ref, r.lane, 'queued', r.deadline, %(now)s, %(now)s, %(now)s
  FROM unnest(%(refs)b::text[], %(lanes)b::text[], %(deadlines)b::double precision[])
       WITH ORDINALITY AS r (ref, lane, deadline, n)
 ORDER BY r.n;

-- insert_accepted_message_ids --
-- The message ids of accepted notifications (or of duplicates, leading to their original)
INSERT INTO message_ids (partner, message_id, notification_id)
SELECT * FROM unnest(%(partners)b::text[], %(message_ids)b::text[], %(notification_ids)b::text[]);

-- insert_job --
-- A queued job
INSERT INTO jobs (kind, ref, lane, status, deadline, run_after, created_at, updated_at)
VALUES (%(kind)s, %(ref)s, %(lane)s::text, 'queued', %(deadline)s::double precision,
        %(run_after)s, %(now)s, %(now)s);

-- claim_deliveries --
-- Lease up to %(limit)s runnable deliver jobs of enabled destinations (lanes), earliest deadline
-- first: queued and due, or running with an expired lease. A lane with a cap in %(caps)s (a
-- JSON object, lane: max_in_flight) gets jobs only while fewer than its cap of its deliveries
-- hold a live lease, every process's counted (the caller's own %(skip_jobs)s too, whatever their
-- leases say); the caller holds each capped lane's advisory lock, so claims of every process for
-- one lane run one at a time and each counts the leases taken before it. Rows another
-- transaction holds are skipped, not waited for.
WITH RECURSIVE waiting_lanes (lane) AS (
    -- Each lane with queued or running deliveries, one index probe per lane (a loose scan).
    SELECT min(lane) FROM jobs
     WHERE kind = 'deliver' AND status IN ('queued', 'running')
    UNION ALL
    SELECT (SELECT min(lane) FROM jobs
             WHERE kind = 'deliver' AND status IN ('queued', 'running') AND lane > w.lane)
      FROM waiting_lanes w WHERE w.lane IS NOT NULL),
lanes AS MATERIALIZED (
    SELECT w.lane,
           (%(caps)s::jsonb ->> w.lane)::bigint - (
               SELECT count(*) FROM jobs j
                WHERE j.kind = 'deliver' AND j.status = 'running' AND j.lane = w.lane
                  AND (j.lease_expires_at >= %(now)s OR j.id = ANY(%(skip_jobs)s::bigint[]))
           ) AS room
      FROM waiting_lanes w
     WHERE w.lane IS NOT NULL
       AND w.lane NOT IN (SELECT name FROM destination_states WHERE NOT enabled)),
heads AS MATERIALIZED (
    -- Each lane's first runnable deliveries, as many as it has room for.
    SELECT q.id, q.due, q.run_after
      FROM (SELECT lane, least(coalesce(room, %(limit)s), %(limit)s) AS room
              FROM lanes WHERE room IS NULL OR room > 0) AS l
     CROSS JOIN LATERAL (
           SELECT j.id, coalesce(j.deadline, 'Infinity'::double precision) AS due, j.run_after
             FROM jobs j
            WHERE j.kind = 'deliver' AND j.lane = l.lane AND j.status IN ('queued', 'running')
              AND ((j.status = 'queued' AND j.run_after <= %(now)s)
                   OR (j.status = 'running' AND j.lease_expires_at < %(now)s))
              AND j.id <> ALL(%(skip_jobs)s::bigint[])
            ORDER BY coalesce(j.deadline, 'Infinity'::double precision), j.run_after, j.id
            LIMIT l.room
              FOR UPDATE SKIP LOCKED) AS q),
picked AS (
    SELECT id FROM heads ORDER BY due, run_after, id LIMIT %(limit)s)
UPDATE jobs j
   SET status = 'running', attempts = j.attempts + 1, lease_owner = %(owner)s,
       lease_expires_at = %(now)s + %(lease_s)s, updated_at = %(now)s
  FROM picked
 WHERE j.id = picked.id
RETURNING j.id, j.kind, j.ref, j.lane, j.attempts, j.lease_owner, j.deadline, j.run_after,
          j.lease_expires_at, j.last_error, j.created_at;

-- claim_imports --
-- Lease up to %(limit)s runnable import jobs, sharing the quota between partners (lanes); the
-- caller holds the import claim's advisory lock, so claims of every process run one at a time
-- and each sees the claims before it (the caps hold across replicas). Each lane is worked
-- earliest deadline first. Across lanes, turns go round: every lane's first job before any
-- lane's second, and within a round the lane whose last claim is oldest first, except that a
-- lane's first job whose deadline is at risk goes ahead, most urgent first. At risk: its
-- deadline is closer than its place in this order (plus the imports already running, which
-- are ahead of it) takes at %(pace_s)s seconds per import. A lane in %(no_jumps)s (slowed for
-- rejected tokens) never goes ahead, nor does a lane of the last claim: no lane takes two
-- turns in a row by urgency. A lane with a cap in %(caps)s (a JSON object, lane: imports per
-- minute) gets no more claims than the cap in any 60 s. Rows another transaction holds (a
-- fenced write in flight) are skipped, not waited for.
WITH RECURSIVE waiting_lanes (lane) AS (
    -- Each lane with queued or running imports, one index probe per lane (a loose scan).
    SELECT min(lane) FROM jobs
     WHERE kind = 'import' AND status IN ('queued', 'running')
    UNION ALL
    SELECT (SELECT min(lane) FROM jobs
             WHERE kind = 'import' AND status IN ('queued', 'running') AND lane > w.lane)
      FROM waiting_lanes w WHERE w.lane IS NOT NULL),
lanes AS MATERIALIZED (
    SELECT w.lane,
           (SELECT max(claimed_at) FROM jobs j
             WHERE j.kind = 'import' AND j.lane = w.lane) AS served_at,
           -- Counted only for a lane with a cap: the count walks the lane's last minute.
           CASE WHEN %(caps)s::jsonb ? w.lane THEN
                (SELECT count(*) FROM jobs j
                  WHERE j.kind = 'import' AND j.lane = w.lane
                    AND j.claimed_at > %(now)s - 60) END AS recent,
           (%(caps)s::jsonb ->> w.lane)::bigint AS cap,
           w.lane = ANY(%(no_jumps)s::text[]) AS no_jump
      FROM waiting_lanes w WHERE w.lane IS NOT NULL),
heads AS MATERIALIZED (
    -- Each lane's first %(limit)s runnable imports: no claim takes more of one lane.
    SELECT q.id, l.lane, coalesce(q.deadline, 'Infinity'::double precision) AS due,
           q.run_after, l.served_at, l.no_jump, l.recent, l.cap
      FROM lanes l
     CROSS JOIN LATERAL (
           SELECT j.id, j.deadline, j.run_after FROM jobs j
            WHERE j.lane = l.lane AND j.kind = 'import' AND j.status IN ('queued', 'running')
              AND ((j.status = 'queued' AND j.run_after <= %(now)s)
                   OR (j.status = 'running' AND j.lease_expires_at < %(now)s))
              AND j.id <> ALL(%(skip_jobs)s::bigint[])
            ORDER BY coalesce(j.deadline, 'Infinity'::double precision), j.run_after, j.id
            LIMIT %(limit)s
              FOR UPDATE SKIP LOCKED) AS q),
ranked AS (
    SELECT *, row_number() OVER (PARTITION BY lane ORDER BY due, run_after, id) AS turn
      FROM heads),
fair AS MATERIALIZED (
    SELECT *, row_number() OVER (
               ORDER BY turn, coalesce(served_at, '-Infinity'::double precision), due,
                        run_after, id) AS position
      FROM ranked
     WHERE cap IS NULL OR recent + turn <= cap),
last_served AS (
    -- The lanes of the last claim (one claim may serve several lanes at once).
    SELECT lane FROM jobs
     WHERE kind = 'import' AND lane IS NOT NULL
       AND claimed_at = (SELECT max(claimed_at) FROM jobs WHERE kind = 'import')),
running AS (
    SELECT count(*) AS n FROM jobs
     WHERE kind = 'import' AND status = 'running' AND lease_expires_at >= %(now)s),
chosen AS (
    SELECT f.id FROM fair f
     ORDER BY f.turn,
              CASE WHEN f.turn = 1 AND NOT f.no_jump
                        AND f.lane NOT IN (SELECT lane FROM last_served)
                        AND f.due - %(now)s < (f.position + (SELECT n FROM running)) * %(pace_s)s
                   THEN f.due ELSE 'Infinity'::double precision END,
              f.position
     LIMIT %(limit)s)
UPDATE jobs j
   SET status = 'running', attempts = j.attempts + 1, lease_owner = %(owner)s,
       lease_expires_at = %(now)s + %(lease_s)s, claimed_at = %(now)s, updated_at = %(now)s
  FROM chosen
 WHERE j.id = chosen.id
RETURNING j.id, j.kind, j.ref, j.lane, j.attempts, j.lease_owner, j.deadline, j.run_after,
          j.lease_expires_at, j.last_error, j.created_at;

-- extend_lease --
-- Push a held lease further
UPDATE jobs SET lease_expires_at = %(now)s + %(lease_s)s, updated_at = %(now)s
 WHERE id = %(id)s AND lease_owner = %(owner)s AND attempts = %(attempts)s
   AND status = 'running';

-- complete --
-- A held job is done
UPDATE jobs
   SET status = 'done', lease_owner = NULL, lease_expires_at = NULL, updated_at = %(now)s
 WHERE id = %(id)s AND lease_owner = %(owner)s AND attempts = %(attempts)s
   AND status = 'running';

-- retry --
-- A held job goes back to the queue, due at %(run_after)s
UPDATE jobs
   SET status = 'queued', run_after = %(run_after)s, last_error = %(error)s::text,
       lease_owner = NULL, lease_expires_at = NULL, updated_at = %(now)s
 WHERE id = %(id)s AND lease_owner = %(owner)s AND attempts = %(attempts)s
   AND status = 'running';

-- bury --
-- A held job is dead
UPDATE jobs
   SET status = 'dead', last_error = %(error)s::text, lease_owner = NULL,
       lease_expires_at = NULL, updated_at = %(now)s
 WHERE id = %(id)s AND lease_owner = %(owner)s AND attempts = %(attempts)s
   AND status = 'running';

-- release --
-- A held job goes back to the queue (from %(run_after)s), its attempt refunded: not its fault
UPDATE jobs
   SET status = 'queued', run_after = %(run_after)s, attempts = attempts - 1,
       lease_owner = NULL, lease_expires_at = NULL, updated_at = %(now)s
 WHERE id = %(id)s AND lease_owner = %(owner)s AND attempts = %(attempts)s
   AND status = 'running';

-- release_lost_claims --
-- The jobs of a kind leased to an owner that does not run them (its claim committed but the
-- answer was lost) go back to the queue at once, their attempt refunded
UPDATE jobs
   SET status = 'queued', run_after = %(now)s, attempts = attempts - 1,
       lease_owner = NULL, lease_expires_at = NULL, updated_at = %(now)s
 WHERE kind = %(kind)s AND status = 'running' AND lease_owner = %(owner)s
   AND id <> ALL(%(running)s::bigint[]);

-- job_is_held --
-- A row while the lease is held (locked until the transaction ends)
SELECT 1 FROM jobs
 WHERE id = %(id)s AND lease_owner = %(owner)s AND attempts = %(attempts)s
   AND status = 'running'
   FOR UPDATE;

-- register_owner --
-- An owner announces that its liveness can be told by its advisory lock, and checks in (on the
-- database's clock, which every replica shares); of its workers' heartbeats, the quickest counts
INSERT INTO worker_owners (owner, lock_key, registered_at, heartbeat_s, last_seen)
VALUES (%(owner)s, %(lock_key)s, %(now)s, %(heartbeat_s)s, extract(epoch FROM clock_timestamp()))
ON CONFLICT (owner) DO UPDATE
   SET lock_key = excluded.lock_key, last_seen = excluded.last_seen,
       heartbeat_s = LEAST(worker_owners.heartbeat_s, excluded.heartbeat_s);

-- forget_owner --
-- An owner that stopped (or was found gone) is no longer registered
DELETE FROM worker_owners WHERE owner = %(owner)s;

-- silent_owners --
-- The registered owners but those of this process that missed a heartbeat, with as much again
-- and a grace of margin (a gone one is forgotten, jobs or not). While the server was down no one
-- could check in: silence counts from its start at the earliest.
SELECT owner, lock_key FROM worker_owners
 WHERE owner <> ALL(%(mine)s::text[])
   AND extract(epoch FROM clock_timestamp())
       - GREATEST(last_seen, extract(epoch FROM pg_postmaster_start_time()))
       > 2 * heartbeat_s + %(grace_s)s;

-- try_lock --
-- Take a session advisory lock if free
SELECT pg_try_advisory_lock(%(lock_key)s) AS taken;

-- unlock --
-- Give a session advisory lock back
SELECT pg_advisory_unlock(%(lock_key)s);

-- requeue_orphans --
-- The running jobs of an owner known to be gone go back to the queue at once; a crash keeps
-- their attempts counted
UPDATE jobs
   SET status = 'queued', run_after = %(now)s, last_error = %(error)s, lease_owner = NULL,
       lease_expires_at = NULL, updated_at = %(now)s
 WHERE status = 'running' AND lease_owner = %(owner)s;

-- select_notification --
-- One notification, its sealed token included
SELECT * FROM notifications WHERE id = %(id)s;

-- select_notification_for_update --
-- One notification, locked until the transaction ends
SELECT * FROM notifications WHERE id = %(id)s FOR UPDATE;

-- list_notifications --
-- Newest first, optionally filtered, paged by id (%(before)s NULL for the first page)
SELECT {listed_notification_columns}
  FROM notifications
 WHERE (%(status)s::text IS NULL OR status = %(status)s::text)
   AND (%(partner)s::text IS NULL OR partner = %(partner)s::text)
   AND (%(before)s::text IS NULL OR id < %(before)s::text)
 ORDER BY id DESC
 LIMIT %(limit)s;

-- select_by_session --
-- The notification whose import created a Didit session
SELECT * FROM notifications WHERE session_id = %(session_id)s;

-- sessions_recorded --
-- Which of some Didit sessions are recorded on notifications other than %(id)s
SELECT DISTINCT session_id FROM notifications
 WHERE session_id = ANY(%(session_ids)s::text[]) AND id <> %(id)s;

-- record_didit_status --
-- Didit's new status (%(key)s, %(final)s), signed at %(signed_at)s, for an imported
-- notification. Order: a decided status (in %(final_statuses)s) ranks above an undecided one,
-- then the later signed time; only a different status that ranks at least as high as the one on
-- record is written. So "In Review" never replaces "Approved", a replayed older decision never
-- replaces a newer one, and racing webhooks end on the same status in any commit order (a
-- concurrent update of the row makes PostgreSQL check this WHERE again on the row it wrote).
-- Statuses compare by bridge.types.didit_status_key; NULL signed time: from the import.
UPDATE notifications
   SET didit_status = %(didit_status)s, didit_status_at = %(signed_at)s, updated_at = %(now)s
 WHERE id = %(id)s AND status = 'imported'
   AND (didit_status IS NULL
        OR (upper(replace(trim(didit_status), ' ', '_')) <> %(key)s
            AND (upper(replace(trim(didit_status), ' ', '_')) = ANY(%(final_statuses)s::text[]),
                 coalesce(didit_status_at, '-Infinity'::double precision))
                <= (%(final)s::boolean, %(signed_at)s::double precision)));

-- witness_didit_status --
-- The status on record was signed again at %(signed_at)s: keep the later signed time (a status
-- signed in between is stale); one row when the status on record is this one (%(key)s)
UPDATE notifications
   SET didit_status_at = greatest(didit_status_at, %(signed_at)s::double precision)
 WHERE id = %(id)s AND status = 'imported' AND didit_status IS NOT NULL
   AND upper(replace(trim(didit_status), ' ', '_')) = %(key)s;

-- begin_attempt --
-- Record an attempt as started, numbered after the last one (the job's lock is held)
INSERT INTO import_attempts (notification_id, attempt, kind, started_at)
SELECT %(notification_id)s, coalesce(max(attempt), 0) + 1, %(kind)s, %(now)s
  FROM import_attempts WHERE notification_id = %(notification_id)s
RETURNING attempt;

-- end_attempt --
-- Record how an attempt ended
UPDATE import_attempts
   SET ended_at = %(now)s, http_status = %(http_status)s::integer, result = %(result)s,
       latency_ms = %(latency_ms)s, error = %(error)s::text
 WHERE notification_id = %(notification_id)s AND attempt = %(attempt)s AND ended_at IS NULL;

-- select_attempts --
-- A notification's attempts, oldest first
SELECT * FROM import_attempts WHERE notification_id = %(notification_id)s ORDER BY attempt;

-- finish_notification --
-- A pending notification reaches its final state; the token is kept only while failed
UPDATE notifications
   SET status = %(status)s, reason_code = %(reason_code)s::text,
       reason_message = %(reason_message)s::text,
       reason_http_status = %(reason_http_status)s::integer,
       session_id = %(session_id)s::text, session_number = %(session_number)s::bigint,
       didit_status = %(didit_status)s::text,
       token_sealed = CASE WHEN %(status)s = 'failed' THEN token_sealed END,
       finished_at = %(now)s, updated_at = %(now)s
 WHERE id = %(id)s AND status = 'pending';

-- insert_event --
-- An outbox event
INSERT INTO events (id, notification_id, type, body, created_at)
VALUES (%(id)s, %(notification_id)s, %(type)s, %(body)s, %(now)s);

-- insert_delivery --
-- A pending delivery of an event to a destination
INSERT INTO deliveries (id, event_id, destination, status, created_at, updated_at)
VALUES (%(id)s, %(event_id)s, %(destination)s, 'pending', %(now)s, %(now)s);

-- select_events --
-- A notification's events
SELECT * FROM events WHERE notification_id = %(notification_id)s ORDER BY created_at, seq;

-- select_delivery --
-- One delivery with its event
SELECT d.*, e.notification_id, e.type, e.body, e.created_at AS event_created_at,
       n.trace_context, n.partner, n.rule
  FROM deliveries d JOIN events e ON e.id = d.event_id
  JOIN notifications n ON n.id = e.notification_id
 WHERE d.id = %(id)s;

-- select_deliveries_of_notification --
-- A notification's deliveries with their events
SELECT d.*, e.notification_id, e.type, e.body, e.created_at AS event_created_at,
       n.trace_context, n.partner, n.rule
  FROM deliveries d JOIN events e ON e.id = d.event_id
  JOIN notifications n ON n.id = e.notification_id
 WHERE e.notification_id = %(notification_id)s
 ORDER BY d.created_at, d.seq;

-- select_delivery_attempts_of_notification --
-- Every delivery attempt for a notification's events
SELECT a.* FROM delivery_attempts a
  JOIN deliveries d ON d.id = a.delivery_id
  JOIN events e ON e.id = d.event_id
 WHERE e.notification_id = %(notification_id)s
 ORDER BY a.delivery_id, a.attempt;

-- insert_delivery_attempt --
-- Record one POST to a destination (the job's lock is held)
INSERT INTO delivery_attempts
    (delivery_id, attempt, at, http_status, latency_ms, response_excerpt, error)
SELECT %(delivery_id)s, coalesce(max(attempt), 0) + 1, %(now)s, %(http_status)s::integer,
       %(latency_ms)s, %(response_excerpt)s, %(error)s::text
  FROM delivery_attempts WHERE delivery_id = %(delivery_id)s;

-- update_delivery --
-- A delivery's state after an attempt
UPDATE deliveries
   SET status = %(status)s, attempts = attempts + 1, last_error = %(error)s::text,
       updated_at = %(now)s,
       delivered_at = CASE WHEN %(status)s = 'delivered' THEN %(now)s ELSE delivered_at END
 WHERE id = %(id)s;

-- kill_delivery --
-- A delivery whose job was buried is dead
UPDATE deliveries SET status = 'dead', last_error = %(error)s, updated_at = %(now)s
 WHERE id = %(id)s AND status = 'pending';

-- upsert_destination_state --
-- Enable or disable a destination
INSERT INTO destination_states (name, enabled, changed_at, reason)
VALUES (%(name)s, %(enabled)s, %(now)s, %(reason)s::text)
ON CONFLICT (name) DO UPDATE
   SET enabled = excluded.enabled, changed_at = excluded.changed_at, reason = excluded.reason;

-- destination_states --
-- Every destination known from its state or its deliveries, with its backlog
WITH names AS (
    SELECT name FROM destination_states
    UNION SELECT DISTINCT destination FROM deliveries)
SELECT n.name, coalesce(s.enabled, true) AS enabled, s.changed_at, s.reason,
       (SELECT count(*) FROM deliveries d
         WHERE d.destination = n.name AND d.status = 'pending') AS pending,
       (SELECT count(*) FROM deliveries d
         WHERE d.destination = n.name AND d.status = 'dead') AS dead,
       (SELECT d.last_error FROM deliveries d
         WHERE d.destination = n.name AND d.last_error IS NOT NULL
         ORDER BY d.updated_at DESC, d.seq DESC LIMIT 1) AS last_error
  FROM names n LEFT JOIN destination_states s ON s.name = n.name
 ORDER BY n.name;

-- list_deliveries --
-- Deliveries newest first with their events, optionally filtered, paged by id
SELECT d.*, e.notification_id, e.type, e.body, e.created_at AS event_created_at,
       n.trace_context, n.partner, n.rule
  FROM deliveries d JOIN events e ON e.id = d.event_id
  JOIN notifications n ON n.id = e.notification_id
 WHERE (%(status)s::text IS NULL OR d.status = %(status)s::text)
   AND (%(destination)s::text IS NULL OR d.destination = %(destination)s::text)
   AND (%(before)s::text IS NULL OR d.id < %(before)s::text)
 ORDER BY d.id DESC
 LIMIT %(limit)s;

-- requeue_delivery --
-- Send a delivered or dead delivery again (a pending one is already on its way)
UPDATE deliveries SET status = 'pending', updated_at = %(now)s
 WHERE id = %(id)s AND status IN ('delivered', 'dead');

-- requeue_deliveries_since --
-- Send a destination's delivered or dead deliveries updated since a time again
UPDATE deliveries SET status = 'pending', updated_at = %(now)s
 WHERE destination = %(destination)s AND updated_at >= %(since)s
   AND status IN ('delivered', 'dead')
   AND (%(status)s::text IS NULL OR status = %(status)s::text)
RETURNING id;

-- requeue_job --
-- A job starts over: queued now, attempts reset
UPDATE jobs
   SET status = 'queued', run_after = %(now)s, attempts = 0, lease_owner = NULL,
       lease_expires_at = NULL, last_error = NULL, updated_at = %(now)s
 WHERE kind = %(kind)s AND ref = %(ref)s AND status IN ('done', 'dead');

-- import_job_status --
-- The status of a notification's import job
SELECT status FROM jobs WHERE kind = 'import' AND ref = %(ref)s;

-- reopen_notification --
-- A failed notification (or one whose job died) goes back to pending
UPDATE notifications
   SET status = 'pending', reason_code = NULL, reason_message = NULL,
       reason_http_status = NULL, finished_at = NULL, updated_at = %(now)s
 WHERE id = %(id)s;

-- erase_stale_tokens --
-- Erase tokens no operator retry can use any more: final and not failed, past the deadline,
-- or failed without a deadline for longer than the retention
UPDATE notifications SET token_sealed = NULL, updated_at = %(now)s
 WHERE token_sealed IS NOT NULL AND status <> 'pending'
   AND (status <> 'failed'
        OR deadline <= %(now)s
        OR (deadline IS NULL AND finished_at <= %(now)s - %(retention_s)s));

-- count_notifications --
-- Notifications per status
SELECT status, count(*) AS n FROM notifications GROUP BY status;

-- count_jobs --
-- Jobs per kind and status
SELECT kind, status, count(*) AS n FROM jobs GROUP BY kind, status;

-- count_deliveries --
-- Deliveries per status
SELECT status, count(*) AS n FROM deliveries GROUP BY status;

-- oldest_pending --
-- When the oldest pending notification arrived
SELECT min(received_at) AS received_at FROM notifications WHERE status = 'pending';

-- pending_gauge --
-- How many notifications are pending and when the oldest arrived (their partial index only)
SELECT count(*) AS n, min(received_at) AS oldest FROM notifications WHERE status = 'pending';

-- dead_deliveries_gauge --
-- How many deliveries are dead (their partial index only)
SELECT count(*) AS n FROM deliveries WHERE status = 'dead';

-- disabled_destinations_gauge --
-- Destinations an operator disabled
SELECT count(*) AS n FROM destination_states WHERE NOT enabled;

-- lock_quota --
-- A quota's row, created if new, locked until the transaction ends: its sends go one at a time
INSERT INTO quotas (key, updated_at)
VALUES (%(key)s, extract(epoch FROM clock_timestamp()))
ON CONFLICT (key) DO UPDATE SET key = excluded.key;

-- quota_state --
-- The database's time (read once the quota is locked), the quota's pause and learned limit,
-- and its latest sends within the window, newest first
SELECT now, q.paused_until, q.learned_limit,
       ARRAY(SELECT s.sent_at FROM quota_sends s
              WHERE s.key = q.key AND s.sent_at > now - %(window_s)s
              ORDER BY s.sent_at DESC
              LIMIT %(budget)s) AS recent
  FROM quotas q, (SELECT extract(epoch FROM clock_timestamp())::double precision AS now) AS c
 WHERE q.key = %(key)s;

-- record_quota_send --
-- Count one send at %(now)s, and forget the sends older than the window
WITH forgotten AS (
    DELETE FROM quota_sends WHERE key = %(key)s AND sent_at <= %(now)s - %(window_s)s)
INSERT INTO quota_sends (key, sent_at) VALUES (%(key)s, %(now)s);

-- hold_quota --
-- Pause a quota's sends for %(pause_s)s seconds from now (NULL: no pause) and/or remember the
-- limit Didit said (NULL: unchanged)
INSERT INTO quotas (key, paused_until, learned_limit, updated_at)
SELECT %(key)s, coalesce(c.now + %(pause_s)s::double precision, 0), %(limit)s::integer, c.now
  FROM (SELECT extract(epoch FROM clock_timestamp())::double precision AS now) AS c
ON CONFLICT (key) DO UPDATE
   SET paused_until = greatest(quotas.paused_until, excluded.paused_until),
       learned_limit = coalesce(excluded.learned_limit, quotas.learned_limit),
       updated_at = excluded.updated_at;

-- reroute_notification --
-- A retry takes the running configuration's route (vendor_data stays: it was rendered from
-- the body, which is not kept)
UPDATE notifications
   SET rule = %(new_rule)s, workflow_id = %(new_workflow_id)s,
       trust_review = %(new_trust_review)s, destinations = %(new_destinations)s,
       updated_at = %(at)s
 WHERE id = %(notification_id)s;

-- insert_route_change --
INSERT INTO route_changes (notification_id, at, old_rule, old_workflow_id, old_trust_review,
    old_destinations, new_rule, new_workflow_id, new_trust_review, new_destinations)
VALUES (%(notification_id)s, %(at)s, %(old_rule)s, %(old_workflow_id)s, %(old_trust_review)s,
    %(old_destinations)s, %(new_rule)s, %(new_workflow_id)s, %(new_trust_review)s,
    %(new_destinations)s);

-- select_route_changes --
-- Oldest first
SELECT * FROM route_changes WHERE notification_id = %(notification_id)s ORDER BY at, seq;

-- search_notifications_newest --
-- The console's listing without a filter: the primary key, newest first, within the id range
-- (the time range, and %(before)s)
SELECT {listed_notification_columns}
  FROM notifications
 WHERE id >= %(from_id)s::text AND id < %(until_id)s::text
 ORDER BY id DESC
 LIMIT %(limit)s;

-- search_notifications_by_status --
-- The console's listing of one status: notifications_by_status (status, id), newest first
SELECT {listed_notification_columns}
  FROM notifications
 WHERE status = %(status)s::text AND id >= %(from_id)s::text AND id < %(until_id)s::text
   AND (%(partner)s::text IS NULL OR partner = %(partner)s::text)
   AND (%(rule)s::text IS NULL OR rule = %(rule)s::text)
 ORDER BY id DESC
 LIMIT %(limit)s;

-- search_notifications_by_partner --
-- The console's listing of one partner: notifications_by_partner (partner, id), newest first
SELECT {listed_notification_columns}
  FROM notifications
 WHERE partner = %(partner)s::text AND id >= %(from_id)s::text AND id < %(until_id)s::text
   AND (%(rule)s::text IS NULL OR rule = %(rule)s::text)
 ORDER BY id DESC
 LIMIT %(limit)s;

-- search_notifications_by_rule --
-- The console's listing of one rule: notifications_by_rule (rule, id), newest first
SELECT {listed_notification_columns}
  FROM notifications
 WHERE rule = %(rule)s::text AND id >= %(from_id)s::text AND id < %(until_id)s::text
 ORDER BY id DESC
 LIMIT %(limit)s;

-- search_notifications_by_partner_rule --
-- The console's listing of one partner and one rule: notifications_by_partner_rule
-- (partner, rule, id), newest first
SELECT {listed_notification_columns}
  FROM notifications
 WHERE partner = %(partner)s::text AND rule = %(rule)s::text
   AND id >= %(from_id)s::text AND id < %(until_id)s::text
   AND (%(status)s::text IS NULL OR status = %(status)s::text)
 ORDER BY id DESC
 LIMIT %(limit)s;

-- search_notifications_by_key --
-- The notifications one search text names: its id, its partner's event id, its vendor_data or
-- its token's SHA-256 (each an index), then the filters
SELECT {listed_notification_columns}
  FROM notifications
 WHERE id IN (SELECT id FROM notifications WHERE id = %(key)s::text
              UNION ALL SELECT id FROM notifications WHERE partner_event_id = %(key)s::text
              UNION ALL SELECT id FROM notifications WHERE vendor_data = %(key)s::text
              UNION ALL SELECT id FROM notifications WHERE token_sha256 = %(key)s::text)
   AND id >= %(from_id)s::text AND id < %(until_id)s::text
   AND (%(status)s::text IS NULL OR status = %(status)s::text)
   AND (%(partner)s::text IS NULL OR partner = %(partner)s::text)
   AND (%(rule)s::text IS NULL OR rule = %(rule)s::text)
 ORDER BY id DESC
 LIMIT %(limit)s;

-- import_outcomes_since --
-- Notifications that reached a final status since %(since)s, counted per %(bucket_s)s seconds
-- (notifications_by_finished_at); floor, as the difference is never negative
SELECT floor((finished_at - %(since)s::double precision)
             / %(bucket_s)s::double precision)::integer AS bucket,
       status, count(*) AS n
  FROM notifications
 WHERE finished_at >= %(since)s::double precision
 GROUP BY 1, status;

-- delivery_totals --
-- Deliveries per destination and status (the index deliveries_by_destination)
SELECT destination, status, count(*) AS n
  FROM deliveries
 GROUP BY destination, status;

-- count_matching_deliveries --
-- How many deliveries a filter matches
SELECT count(*) AS n
  FROM deliveries
 WHERE (%(status)s::text IS NULL OR status = %(status)s::text)
   AND (%(destination)s::text IS NULL OR destination = %(destination)s::text);

-- pending_work --
-- What waits: pending notifications and the oldest one's arrival (the partial index
-- notifications_pending_arrivals), and import jobs queued or running (jobs_claimable)
SELECT (SELECT count(*) FROM notifications WHERE status = 'pending') AS pending,
       (SELECT min(received_at) FROM notifications WHERE status = 'pending') AS oldest,
       (SELECT count(*) FROM jobs
         WHERE kind = 'import' AND status IN ('queued', 'running')) AS import_queue;

-- old_history --
-- Up to %(limit)s notifications final before %(before)s that nothing can act on any more, oldest
-- first, locked: the token erased (a failed one keeps it while a retry may use it), no import
-- job waiting, an imported one's Didit status decided (in %(final_statuses)s: Didit's decision
-- webhook must still find its session) and every delivery finished (delivered or dead), with
-- the message ids accepted as each. Rows another replica holds are skipped: each replica
-- deletes its own batch.
SELECT n.id, n.partner, n.business_key,
       ARRAY(SELECT m.message_id FROM message_ids m WHERE m.notification_id = n.id) AS message_ids
  FROM notifications n
 WHERE n.finished_at < %(before)s AND n.status IN ('imported', 'rejected', 'expired', 'failed')
   AND n.token_sealed IS NULL
   AND (n.status <> 'imported'
        OR upper(replace(trim(n.didit_status), ' ', '_')) = ANY(%(final_statuses)s::text[]))
   AND NOT EXISTS (SELECT 1 FROM jobs j
                    WHERE j.kind = 'import' AND j.ref = n.id AND j.status IN ('queued', 'running'))
   AND NOT EXISTS (SELECT 1 FROM events e JOIN deliveries d ON d.event_id = e.id
                    WHERE e.notification_id = n.id AND d.status = 'pending')
 ORDER BY n.finished_at
 LIMIT %(limit)s
   FOR UPDATE OF n SKIP LOCKED;

-- try_lock_keys --
-- Take the keys that are free (an accept holding one is looking at its notification)
SELECT k AS key FROM unnest(%(keys)s::text[]) AS k
 WHERE pg_try_advisory_xact_lock(hashtextextended(k, 0));

-- lock_history_deliveries --
-- Lock some notifications' deliveries (a redeliver of one waits, then finds none), each as it
-- is now: one redelivered since old_history looked is pending again
SELECT e.notification_id, d.status
  FROM deliveries d JOIN events e ON e.id = d.event_id
 WHERE e.notification_id = ANY(%(ids)s::text[])
   FOR UPDATE OF d;

-- forget_delivery_attempts --
-- The delivery attempts of some notifications
DELETE FROM delivery_attempts WHERE delivery_id IN (
    SELECT d.id FROM deliveries d JOIN events e ON e.id = d.event_id
     WHERE e.notification_id = ANY(%(ids)s::text[]));

-- forget_deliver_jobs --
-- The deliver jobs of some notifications' deliveries
DELETE FROM jobs WHERE kind = 'deliver' AND ref IN (
    SELECT d.id FROM deliveries d JOIN events e ON e.id = d.event_id
     WHERE e.notification_id = ANY(%(ids)s::text[]));

-- forget_deliveries --
-- The deliveries of some notifications' events
DELETE FROM deliveries WHERE event_id IN (
    SELECT id FROM events WHERE notification_id = ANY(%(ids)s::text[]));

-- forget_events --
-- Some notifications' events
DELETE FROM events WHERE notification_id = ANY(%(ids)s::text[]);

-- forget_import_attempts --
-- Some notifications' import attempts
DELETE FROM import_attempts WHERE notification_id = ANY(%(ids)s::text[]);

-- forget_route_changes --
-- Some notifications' route changes
DELETE FROM route_changes WHERE notification_id = ANY(%(ids)s::text[]);

-- forget_message_ids --
-- The message ids accepted as some notifications: a replay of one is a new notification now
DELETE FROM message_ids WHERE notification_id = ANY(%(ids)s::text[]);

-- forget_import_jobs --
-- Some notifications' import jobs
DELETE FROM jobs WHERE kind = 'import' AND ref = ANY(%(ids)s::text[]);

-- forget_notifications --
-- Some notifications, once every row referring to them is gone
DELETE FROM notifications WHERE id = ANY(%(ids)s::text[]);

-- listed_notification_columns --
-- A notification's columns for listings and searches: every one but the token (never read there)
id, partner, partner_event_id, message_id, business_key, NULL::bytea AS token_sealed,
       token_sha256, session_kind, source_application_id, source_session_id, deadline, rule,
       workflow_id, vendor_data, trust_review, destinations, status, reason_code,
       reason_message, reason_http_status, session_id, session_number, didit_status,
       received_at, finished_at, updated_at, trace_context
