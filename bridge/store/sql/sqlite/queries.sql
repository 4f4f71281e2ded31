-- Named queries for the SQLite store, parsed once (bridge.store.queries). Each block starts
-- with "-- name --", then a one-line description. Parameters are :named. Writes that concern
-- a leased job are fenced by (id, lease_owner, attempts, status = 'running').

-- message_id_owner --
-- The notification one (partner, message id) was accepted as
SELECT notification_id FROM message_ids WHERE partner = :partner AND message_id = :message_id;

-- message_id_owners --
-- The notifications that (partner, message id) pairs, a JSON array of pairs, were accepted as
SELECT partner, message_id, notification_id FROM message_ids
 WHERE (partner, message_id) IN (
       SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]') FROM json_each(:pairs));

-- live_by_business_keys --
-- The pending or imported notifications holding some (partner, business key) pairs (a JSON
-- array of pairs): a key is live per partner
SELECT partner, business_key, id FROM notifications INDEXED BY notifications_live_business_key
 WHERE (partner, business_key) IN (
       SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]') FROM json_each(:pairs))
   AND status IN ('pending', 'imported');

-- live_by_business_key --
-- The pending or imported notification of a partner holding a business key, if any
SELECT id FROM notifications INDEXED BY notifications_live_business_key
 WHERE partner = :partner AND business_key = :business_key
   AND status IN ('pending', 'imported');

-- insert_notification --
-- A new pending notification with its route
INSERT INTO notifications (
    id, partner, partner_event_id, message_id, business_key, token, token_sha256,
    session_kind, source_application_id, source_session_id, deadline, rule, workflow_id,
    vendor_data, trust_review, destinations, trace_context, status, received_at, updated_at)
VALUES (
    :id, :partner, :partner_event_id, :message_id, :business_key, :token, :token_sha256,
    :session_kind, :source_application_id, :source_session_id, :deadline, :rule, :workflow_id,
    :vendor_data, :trust_review, :destinations, :trace_context, 'pending', :now, :now);

-- insert_accepted --
-- New pending notifications, one statement for a run of them: this head, then that many
-- insert_accepted_row, comma-separated (executemany would step, and hand the GIL over, once
-- per row; a JSON array of rows costs a parse per json_extract in SQLite 3.40)
INSERT INTO notifications (
    id, partner, partner_event_id, message_id, business_key, token, token_sha256,
    session_kind, source_application_id, source_session_id, deadline, rule, workflow_id,
    vendor_data, trust_review, destinations, trace_context, received_at, updated_at, status)
VALUES

-- insert_accepted_row --
-- One row of insert_accepted: the columns in its order up to updated_at (now, now)
(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending')

-- insert_accepted_message_ids --
-- The message ids of accepted notifications: this head, then one row per message id
INSERT INTO message_ids (partner, message_id, notification_id) VALUES

-- insert_accepted_message_ids_row --
-- One row of insert_accepted_message_ids: partner, message id, notification id
(?, ?, ?)

-- insert_accepted_jobs --
-- The import jobs of accepted notifications, in their order: this head, then one row each
INSERT INTO jobs (kind, ref, lane, status, deadline, run_after, created_at, updated_at) VALUES

-- insert_accepted_jobs_row --
-- One row of insert_accepted_jobs: notification id, partner (the lane), deadline, then now
-- three times
('import', ?, ?, 'queued', ?, ?, ?, ?)

-- insert_message_id --
-- Remember a partner's message id for dedupe
INSERT INTO message_ids (partner, message_id, notification_id)
VALUES (:partner, :message_id, :notification_id);

-- insert_job --
-- A queued job
INSERT INTO jobs (kind, ref, lane, status, deadline, run_after, created_at, updated_at)
VALUES (:kind, :ref, :lane, 'queued', :deadline, :run_after, :now, :now);

-- claim_deliveries --
-- Lease up to :limit runnable deliver jobs of enabled destinations (lanes), earliest deadline
-- first: queued and due, or running with an expired lease. A lane with a cap in :caps (a JSON
-- object, lane: max_in_flight) gets jobs only while fewer than its cap of its deliveries hold a
-- live lease (the caller's own :skip_jobs count too, whatever their leases say).
WITH RECURSIVE waiting_lanes (lane) AS (
    -- Each lane with queued or running deliveries, one index probe per lane (a skip scan).
    SELECT min(lane) FROM jobs INDEXED BY jobs_deliver_lane_queue
     WHERE kind = 'deliver' AND status IN ('queued', 'running')
    UNION ALL
    SELECT (SELECT min(lane) FROM jobs INDEXED BY jobs_deliver_lane_queue
             WHERE kind = 'deliver' AND status IN ('queued', 'running') AND lane > w.lane)
      FROM waiting_lanes w WHERE w.lane IS NOT NULL),
lanes AS MATERIALIZED (
    SELECT w.lane,
           (SELECT value FROM json_each(:caps) WHERE key = w.lane) - (
               SELECT count(*) FROM jobs j INDEXED BY jobs_deliver_running
                WHERE j.kind = 'deliver' AND j.status = 'running' AND j.lane = w.lane
                  AND (j.lease_expires_at >= :now
                       OR j.id IN (SELECT value FROM json_each(:skip_jobs)))
           ) AS room
      FROM waiting_lanes w
     WHERE w.lane IS NOT NULL
       AND w.lane NOT IN (SELECT name FROM destination_states WHERE enabled = 0)),
heads AS MATERIALIZED (
    -- Each lane's first :limit runnable deliveries: no claim takes more of one lane.
    SELECT j.id, j.lane, coalesce(j.deadline, 1e300) AS due, j.run_after, l.room
      FROM lanes l
      JOIN jobs j ON j.id IN (
           SELECT q.id FROM jobs q INDEXED BY jobs_deliver_lane_queue
            WHERE q.lane = l.lane AND q.kind = 'deliver' AND q.status IN ('queued', 'running')
              AND ((q.status = 'queued' AND q.run_after <= :now)
                   OR (q.status = 'running' AND q.lease_expires_at < :now))
              AND q.id NOT IN (SELECT value FROM json_each(:skip_jobs))
            ORDER BY coalesce(q.deadline, 1e300), q.run_after, q.id
            LIMIT :limit)
     WHERE l.room IS NULL OR l.room > 0),
picked AS (
    SELECT id FROM (
           SELECT *, row_number() OVER (PARTITION BY lane ORDER BY due, run_after, id) AS turn
             FROM heads)
     WHERE room IS NULL OR turn <= room
     ORDER BY due, run_after, id
     LIMIT :limit)
UPDATE jobs
   SET status = 'running', attempts = attempts + 1, lease_owner = :owner,
       lease_expires_at = :now + :lease_s, updated_at = :now
 WHERE id IN (SELECT id FROM picked)
RETURNING id, kind, ref, lane, attempts, lease_owner, deadline, run_after, lease_expires_at,
          last_error, created_at;

-- claim_imports --
-- Lease up to :limit runnable import jobs, sharing the quota between partners (lanes).
-- Each lane is worked earliest deadline first. Across lanes, turns go round: every lane's first
-- job before any lane's second, and within a round the lane whose last claim is oldest first,
-- except that a lane's first job whose deadline is at risk goes ahead, most urgent first.
-- At risk: its deadline is closer than its place in this order (plus the imports already
-- running, which are ahead of it) takes at :pace_s seconds per import. A lane in :no_jumps
-- (slowed for rejected tokens) never goes ahead, nor does a lane of the last claim: no lane
-- takes two turns in a row by urgency. A lane with a cap in :caps (a JSON
-- object, lane: imports per minute) gets no more claims than the cap in any 60 s.
WITH RECURSIVE waiting_lanes (lane) AS (
    -- Each lane with queued or running imports, one index probe per lane (a skip scan).
    SELECT min(lane) FROM jobs INDEXED BY jobs_import_lane_queue
     WHERE kind = 'import' AND status IN ('queued', 'running')
    UNION ALL
    SELECT (SELECT min(lane) FROM jobs INDEXED BY jobs_import_lane_queue
             WHERE kind = 'import' AND status IN ('queued', 'running') AND lane > w.lane)
      FROM waiting_lanes w WHERE w.lane IS NOT NULL),
lanes AS MATERIALIZED (
    SELECT w.lane,
           (SELECT max(claimed_at) FROM jobs j INDEXED BY jobs_import_lane_claims
             WHERE j.kind = 'import' AND j.lane = w.lane) AS served_at,
           (SELECT count(*) FROM jobs j INDEXED BY jobs_import_lane_claims
             WHERE j.kind = 'import' AND j.lane = w.lane AND j.claimed_at > :now - 60) AS recent,
           (SELECT value FROM json_each(:caps) WHERE key = w.lane) AS cap,
           w.lane IN (SELECT value FROM json_each(:no_jumps)) AS no_jump
      FROM waiting_lanes w WHERE w.lane IS NOT NULL),
heads AS MATERIALIZED (
    -- Each lane's first :limit runnable imports: no claim takes more of one lane.
    SELECT j.id, j.lane, coalesce(j.deadline, 1e300) AS due, j.run_after, l.served_at,
           l.no_jump, l.recent, l.cap
      FROM lanes l
      JOIN jobs j ON j.id IN (
           SELECT q.id FROM jobs q INDEXED BY jobs_import_lane_queue
            WHERE q.lane = l.lane AND q.kind = 'import' AND q.status IN ('queued', 'running')
              AND ((q.status = 'queued' AND q.run_after <= :now)
                   OR (q.status = 'running' AND q.lease_expires_at < :now))
              AND q.id NOT IN (SELECT value FROM json_each(:skip_jobs))
            ORDER BY coalesce(q.deadline, 1e300), q.run_after, q.id
            LIMIT :limit)),
ranked AS (
    SELECT *, row_number() OVER (PARTITION BY lane ORDER BY due, run_after, id) AS turn
      FROM heads),
fair AS MATERIALIZED (
    SELECT *, row_number() OVER (
               ORDER BY turn, coalesce(served_at, -1e300), due, run_after, id) AS position
      FROM ranked
     WHERE cap IS NULL OR recent + turn <= cap),
last_served AS (
    -- The lanes of the last claim (one claim may serve several lanes at once).
    SELECT lane FROM jobs INDEXED BY jobs_import_claims
     WHERE kind = 'import' AND claimed_at = (
           SELECT max(claimed_at) FROM jobs INDEXED BY jobs_import_claims
            WHERE kind = 'import')),
running AS (
    SELECT count(*) AS n FROM jobs INDEXED BY jobs_import_running
     WHERE kind = 'import' AND status = 'running' AND lease_expires_at >= :now),
chosen AS (
    SELECT f.id FROM fair f
     ORDER BY f.turn,
              CASE WHEN f.turn = 1 AND NOT f.no_jump
                        AND f.lane NOT IN (SELECT lane FROM last_served)
                        AND f.due - :now < (f.position + (SELECT n FROM running)) * :pace_s
                   THEN f.due ELSE 1e301 END,
              f.position
     LIMIT :limit)
UPDATE jobs
   SET status = 'running', attempts = attempts + 1, lease_owner = :owner,
       lease_expires_at = :now + :lease_s, claimed_at = :now, updated_at = :now
 WHERE id IN (SELECT id FROM chosen)
RETURNING id, kind, ref, lane, attempts, lease_owner, deadline, run_after, lease_expires_at,
          last_error, created_at;

-- extend_lease --
-- Push a held lease further
UPDATE jobs SET lease_expires_at = :now + :lease_s, updated_at = :now
 WHERE id = :id AND lease_owner = :owner AND attempts = :attempts AND status = 'running';

-- complete --
-- A held job is done
UPDATE jobs SET status = 'done', lease_owner = NULL, lease_expires_at = NULL, updated_at = :now
 WHERE id = :id AND lease_owner = :owner AND attempts = :attempts AND status = 'running';

-- retry --
-- A held job goes back to the queue, due at :run_after
UPDATE jobs
   SET status = 'queued', run_after = :run_after, last_error = :error, lease_owner = NULL,
       lease_expires_at = NULL, updated_at = :now
 WHERE id = :id AND lease_owner = :owner AND attempts = :attempts AND status = 'running';

-- bury --
-- A held job is dead
UPDATE jobs
   SET status = 'dead', last_error = :error, lease_owner = NULL, lease_expires_at = NULL,
       updated_at = :now
 WHERE id = :id AND lease_owner = :owner AND attempts = :attempts AND status = 'running';

-- release --
-- A held job goes back to the queue (from :run_after), its attempt refunded: not its fault
UPDATE jobs
   SET status = 'queued', run_after = :run_after, attempts = attempts - 1, lease_owner = NULL,
       lease_expires_at = NULL, updated_at = :now
 WHERE id = :id AND lease_owner = :owner AND attempts = :attempts AND status = 'running';

-- release_lost_claims --
-- The jobs of a kind leased to an owner that does not run them (its claim committed but the
-- answer was lost) go back to the queue at once, their attempt refunded
UPDATE jobs
   SET status = 'queued', run_after = :now, attempts = attempts - 1, lease_owner = NULL,
       lease_expires_at = NULL, updated_at = :now
 WHERE kind = :kind AND status = 'running' AND lease_owner = :owner
   AND id NOT IN (SELECT value FROM json_each(:running));

-- running_owners --
-- Every owner holding a lease now
SELECT DISTINCT lease_owner FROM jobs
 WHERE status = 'running' AND lease_owner IS NOT NULL;

-- requeue_orphans --
-- The running jobs of owners known to be gone go back to the queue at once; a crash keeps
-- their attempts counted
UPDATE jobs
   SET status = 'queued', run_after = :now, last_error = :error, lease_owner = NULL,
       lease_expires_at = NULL, updated_at = :now
 WHERE status = 'running' AND lease_owner IN (SELECT value FROM json_each(:owners));

-- job_is_held --
-- 1 while the lease is held
SELECT 1 FROM jobs
 WHERE id = :id AND lease_owner = :owner AND attempts = :attempts AND status = 'running';

-- select_notification --
-- One notification, token included
SELECT * FROM notifications WHERE id = :id;

-- list_notifications --
-- Newest first, optionally filtered, paged by id (:before = NULL for the first page)
SELECT {listed_notification_columns}
  FROM notifications
 WHERE (:status IS NULL OR status = :status)
   AND (:partner IS NULL OR partner = :partner)
   AND (:before IS NULL OR id < :before)
 ORDER BY id DESC
 LIMIT :limit;

-- select_by_session --
-- The notification whose import created a Didit session
SELECT * FROM notifications WHERE session_id = :session_id;

-- sessions_recorded --
-- Which of some Didit sessions (a JSON array) are recorded on notifications other than :id
SELECT DISTINCT session_id FROM notifications
 WHERE session_id IN (SELECT value FROM json_each(:session_ids)) AND id <> :id;

-- record_didit_status --
-- Didit's new status (:key, :final), signed at :signed_at, for an imported notification. Order:
-- a decided status (in :final_statuses, a JSON array) ranks above an undecided one, then the
-- later signed time; only a different status that ranks at least as high as the one on record
-- is written. So "In Review" never replaces "Approved", a replayed older decision never
-- replaces a newer one, and racing webhooks end on the same status in any commit order.
-- Statuses compare by bridge.types.didit_status_key; NULL signed time: from the import.
UPDATE notifications
   SET didit_status = :didit_status, didit_status_at = :signed_at, updated_at = :now
 WHERE id = :id AND status = 'imported'
   AND (didit_status IS NULL
        OR (upper(replace(trim(didit_status), ' ', '_')) <> :key
            AND (upper(replace(trim(didit_status), ' ', '_'))
                     IN (SELECT value FROM json_each(:final_statuses)),
                 coalesce(didit_status_at, -1e300)) <= (:final, :signed_at)));

-- witness_didit_status --
-- The status on record was signed again at :signed_at: keep the later signed time (a status
-- signed in between is stale); one row when the status on record is this one (:key)
UPDATE notifications
   SET didit_status_at = max(coalesce(didit_status_at, :signed_at), :signed_at)
 WHERE id = :id AND status = 'imported' AND didit_status IS NOT NULL
   AND upper(replace(trim(didit_status), ' ', '_')) = :key;

-- begin_attempt --
-- Record an attempt as started, numbered after the last one
INSERT INTO import_attempts (notification_id, attempt, kind, started_at)
SELECT :notification_id, coalesce(max(attempt), 0) + 1, :kind, :now
  FROM import_attempts WHERE notification_id = :notification_id
RETURNING attempt;

-- end_attempt --
-- Record how an attempt ended
UPDATE import_attempts
   SET ended_at = :now, http_status = :http_status, result = :result,
       latency_ms = :latency_ms, error = :error
 WHERE notification_id = :notification_id AND attempt = :attempt AND ended_at IS NULL;

-- select_attempts --
-- A notification's attempts, oldest first
SELECT * FROM import_attempts WHERE notification_id = :notification_id ORDER BY attempt;

-- finish_notification --
-- A pending notification reaches its final state; the token is kept only while failed
UPDATE notifications
   SET status = :status, reason_code = :reason_code, reason_message = :reason_message,
       reason_http_status = :reason_http_status, session_id = :session_id,
       session_number = :session_number, didit_status = :didit_status,
       token = CASE WHEN :status = 'failed' THEN token ELSE NULL END,
       finished_at = :now, updated_at = :now
 WHERE id = :id AND status = 'pending';

-- insert_event --
-- An outbox event
INSERT INTO events (id, notification_id, type, body, created_at)
VALUES (:id, :notification_id, :type, :body, :now);

-- insert_delivery --
-- A pending delivery of an event to a destination
INSERT INTO deliveries (id, event_id, destination, status, created_at, updated_at)
VALUES (:id, :event_id, :destination, 'pending', :now, :now);

-- select_events --
-- A notification's events
SELECT * FROM events WHERE notification_id = :notification_id ORDER BY created_at, rowid;

-- select_delivery --
-- One delivery with its event
SELECT d.*, e.notification_id, e.type, e.body, e.created_at AS event_created_at,
       n.trace_context, n.partner, n.rule
  FROM deliveries d JOIN events e ON e.id = d.event_id
  JOIN notifications n ON n.id = e.notification_id
 WHERE d.id = :id;

-- select_deliveries_of_notification --
-- A notification's deliveries with their events
SELECT d.*, e.notification_id, e.type, e.body, e.created_at AS event_created_at,
       n.trace_context, n.partner, n.rule
  FROM deliveries d JOIN events e ON e.id = d.event_id
  JOIN notifications n ON n.id = e.notification_id
 WHERE e.notification_id = :notification_id
 ORDER BY d.created_at, d.rowid;

-- select_delivery_attempts_of_notification --
-- Every delivery attempt for a notification's events
SELECT a.* FROM delivery_attempts a
  JOIN deliveries d ON d.id = a.delivery_id
  JOIN events e ON e.id = d.event_id
 WHERE e.notification_id = :notification_id
 ORDER BY a.delivery_id, a.attempt;

-- insert_delivery_attempt --
-- Record one POST to a destination
INSERT INTO delivery_attempts
    (delivery_id, attempt, at, http_status, latency_ms, response_excerpt, error)
SELECT :delivery_id, coalesce(max(attempt), 0) + 1, :now, :http_status, :latency_ms,
       :response_excerpt, :error
  FROM delivery_attempts WHERE delivery_id = :delivery_id;

-- update_delivery --
-- A delivery's state after an attempt
UPDATE deliveries
   SET status = :status, attempts = attempts + 1, last_error = :error, updated_at = :now,
       delivered_at = CASE WHEN :status = 'delivered' THEN :now ELSE delivered_at END
 WHERE id = :id;

-- kill_delivery --
-- A delivery whose job was buried is dead
UPDATE deliveries SET status = 'dead', last_error = :error, updated_at = :now
 WHERE id = :id AND status = 'pending';

-- upsert_destination_state --
-- Enable or disable a destination
INSERT INTO destination_states (name, enabled, changed_at, reason)
VALUES (:name, :enabled, :now, :reason)
ON CONFLICT (name) DO UPDATE
   SET enabled = excluded.enabled, changed_at = excluded.changed_at, reason = excluded.reason;

-- destination_states --
-- Every destination known from its state or its deliveries, with its backlog
WITH names AS (
    SELECT name FROM destination_states
    UNION SELECT DISTINCT destination FROM deliveries)
SELECT n.name, coalesce(s.enabled, 1) AS enabled, s.changed_at, s.reason,
       (SELECT count(*) FROM deliveries d
         WHERE d.destination = n.name AND d.status = 'pending') AS pending,
       (SELECT count(*) FROM deliveries d
         WHERE d.destination = n.name AND d.status = 'dead') AS dead,
       (SELECT d.last_error FROM deliveries d
         WHERE d.destination = n.name AND d.last_error IS NOT NULL
         ORDER BY d.updated_at DESC, d.rowid DESC LIMIT 1) AS last_error
  FROM names n LEFT JOIN destination_states s ON s.name = n.name
 ORDER BY n.name;

-- list_deliveries --
-- Deliveries newest first with their events, optionally filtered, paged by id
SELECT d.*, e.notification_id, e.type, e.body, e.created_at AS event_created_at,
       n.trace_context, n.partner, n.rule
  FROM deliveries d JOIN events e ON e.id = d.event_id
  JOIN notifications n ON n.id = e.notification_id
 WHERE (:status IS NULL OR d.status = :status)
   AND (:destination IS NULL OR d.destination = :destination)
   AND (:before IS NULL OR d.id < :before)
 ORDER BY d.id DESC
 LIMIT :limit;

-- requeue_delivery --
-- Send a delivered or dead delivery again (a pending one is already on its way)
UPDATE deliveries SET status = 'pending', updated_at = :now
 WHERE id = :id AND status IN ('delivered', 'dead');

-- requeue_deliveries_since --
-- Send a destination's delivered or dead deliveries updated since a time again
UPDATE deliveries SET status = 'pending', updated_at = :now
 WHERE destination = :destination AND updated_at >= :since
   AND status IN ('delivered', 'dead') AND (:status IS NULL OR status = :status)
RETURNING id;

-- requeue_job --
-- A job starts over: queued now, attempts reset
UPDATE jobs
   SET status = 'queued', run_after = :now, attempts = 0, lease_owner = NULL,
       lease_expires_at = NULL, last_error = NULL, updated_at = :now
 WHERE kind = :kind AND ref = :ref AND status IN ('done', 'dead');

-- import_job_status --
-- The status of a notification's import job
SELECT status FROM jobs WHERE kind = 'import' AND ref = :ref;

-- reopen_notification --
-- A failed notification (or one whose job died) goes back to pending
UPDATE notifications
   SET status = 'pending', reason_code = NULL, reason_message = NULL,
       reason_http_status = NULL, finished_at = NULL, updated_at = :now
 WHERE id = :id;

-- reroute_notification --
-- A retry takes the running configuration's route (vendor_data stays: it was rendered from
-- the body, which is not kept)
UPDATE notifications
   SET rule = :new_rule, workflow_id = :new_workflow_id, trust_review = :new_trust_review,
       destinations = :new_destinations, updated_at = :at
 WHERE id = :notification_id;

-- insert_route_change --
INSERT INTO route_changes (notification_id, at, old_rule, old_workflow_id, old_trust_review,
    old_destinations, new_rule, new_workflow_id, new_trust_review, new_destinations)
VALUES (:notification_id, :at, :old_rule, :old_workflow_id, :old_trust_review,
    :old_destinations, :new_rule, :new_workflow_id, :new_trust_review, :new_destinations);

-- select_route_changes --
-- Oldest first
SELECT * FROM route_changes WHERE notification_id = :notification_id ORDER BY at, rowid;

-- erase_stale_tokens --
-- Erase tokens no operator retry can use any more: final and not failed, past the deadline,
-- or failed without a deadline for longer than the retention
UPDATE notifications SET token = NULL, updated_at = :now
 WHERE token IS NOT NULL AND status <> 'pending'
   AND (status <> 'failed'
        OR deadline <= :now
        OR (deadline IS NULL AND finished_at <= :now - :retention_s));

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
-- How many notifications are pending and when the oldest arrived (the status index's range)
SELECT count(*) AS n, min(received_at) AS oldest FROM notifications WHERE status = 'pending';

-- dead_deliveries_gauge --
-- Dead deliveries: the destinations found by skipping along their index (one lookup each, not
-- a scan), then one index range of dead rows per destination
WITH RECURSIVE names (name) AS (
    SELECT min(destination) FROM deliveries
    UNION ALL
    SELECT (SELECT min(destination) FROM deliveries WHERE destination > names.name)
      FROM names WHERE names.name IS NOT NULL)
SELECT coalesce(sum((SELECT count(*) FROM deliveries d
                      WHERE d.destination = names.name AND d.status = 'dead')), 0) AS n
  FROM names WHERE names.name IS NOT NULL;

-- disabled_destinations_gauge --
-- Destinations an operator disabled
SELECT count(*) AS n FROM destination_states WHERE enabled = 0;

-- search_notifications_newest --
-- The console's listing without a filter: the primary key, newest first, within the id range
-- (the time range, and :before)
SELECT {listed_notification_columns}
  FROM notifications
 WHERE id >= :from_id AND id < :until_id
 ORDER BY id DESC
 LIMIT :limit;

-- search_notifications_by_status --
-- The console's listing of one status: notifications_by_status (status, id), newest first
SELECT {listed_notification_columns}
  FROM notifications INDEXED BY notifications_by_status
 WHERE status = :status AND id >= :from_id AND id < :until_id
   AND (:partner IS NULL OR partner = :partner)
   AND (:rule IS NULL OR rule = :rule)
 ORDER BY id DESC
 LIMIT :limit;

-- search_notifications_by_partner --
-- The console's listing of one partner: notifications_by_partner (partner, id), newest first
SELECT {listed_notification_columns}
  FROM notifications INDEXED BY notifications_by_partner
 WHERE partner = :partner AND id >= :from_id AND id < :until_id
   AND (:rule IS NULL OR rule = :rule)
 ORDER BY id DESC
 LIMIT :limit;

-- search_notifications_by_rule --
-- The console's listing of one rule: notifications_by_rule (rule, id), newest first
SELECT {listed_notification_columns}
  FROM notifications INDEXED BY notifications_by_rule
 WHERE rule = :rule AND id >= :from_id AND id < :until_id
 ORDER BY id DESC
 LIMIT :limit;

-- search_notifications_by_partner_rule --
-- The console's listing of one partner and one rule: notifications_by_partner_rule
-- (partner, rule, id), newest first
SELECT {listed_notification_columns}
  FROM notifications INDEXED BY notifications_by_partner_rule
 WHERE partner = :partner AND rule = :rule
   AND id >= :from_id AND id < :until_id
   AND (:status IS NULL OR status = :status)
 ORDER BY id DESC
 LIMIT :limit;

-- search_notifications_by_key --
-- The notifications one search text names: its id, its partner's event id, its vendor_data or
-- its token's SHA-256 (each an index), then the filters
SELECT {listed_notification_columns}
  FROM notifications
 WHERE id IN (SELECT id FROM notifications WHERE id = :key
              UNION ALL SELECT id FROM notifications WHERE partner_event_id = :key
              UNION ALL SELECT id FROM notifications WHERE vendor_data = :key
              UNION ALL SELECT id FROM notifications WHERE token_sha256 = :key)
   AND id >= :from_id AND id < :until_id
   AND (:status IS NULL OR status = :status)
   AND (:partner IS NULL OR partner = :partner)
   AND (:rule IS NULL OR rule = :rule)
 ORDER BY id DESC
 LIMIT :limit;

-- import_outcomes_since --
-- Notifications that reached a final status since :since, counted per :bucket_s seconds
SELECT CAST((finished_at - :since) / :bucket_s AS INTEGER) AS bucket, status, count(*) AS n
  FROM notifications
 WHERE finished_at >= :since
 GROUP BY bucket, status;

-- delivery_totals --
-- Deliveries per destination and status (the covering index deliveries_by_destination)
SELECT destination, status, count(*) AS n
  FROM deliveries
 GROUP BY destination, status;

-- count_matching_deliveries --
-- How many deliveries a filter matches
SELECT count(*) AS n
  FROM deliveries
 WHERE (:status IS NULL OR status = :status)
   AND (:destination IS NULL OR destination = :destination);

-- pending_work --
-- What waits: pending notifications (notifications_by_status), the oldest one's arrival, and
-- import jobs queued or running (jobs_claimable); each walks only what waits
SELECT (SELECT count(*) FROM notifications WHERE status = 'pending') AS pending,
       (SELECT min(received_at) FROM notifications WHERE status = 'pending') AS oldest,
       (SELECT count(*) FROM jobs
         WHERE kind = 'import' AND status IN ('queued', 'running')) AS import_queue;

-- old_history --
-- Up to :limit notifications final before :before that nothing can act on any more, oldest
-- first: the token erased (a failed one keeps it while a retry may use it), no import job
-- waiting, an imported one's Didit status decided (in :final_statuses, a JSON array: Didit's
-- decision webhook must still find its session) and every delivery finished (delivered or
-- dead). Walked along finished_at (the status index would sort every final notification
-- first: "+" keeps status a filter)
SELECT n.id FROM notifications n
 WHERE n.finished_at < :before AND +n.status IN ('imported', 'rejected', 'expired', 'failed')
   AND n.token IS NULL
   AND (n.status <> 'imported'
        OR upper(replace(trim(n.didit_status), ' ', '_'))
               IN (SELECT value FROM json_each(:final_statuses)))
   AND NOT EXISTS (SELECT 1 FROM jobs j
                    WHERE j.kind = 'import' AND j.ref = n.id AND j.status IN ('queued', 'running'))
   AND NOT EXISTS (SELECT 1 FROM events e JOIN deliveries d ON d.event_id = e.id
                    WHERE e.notification_id = n.id AND d.status = 'pending')
 ORDER BY n.finished_at
 LIMIT :limit;

-- forget_delivery_attempts --
-- The delivery attempts of some notifications (:ids, a JSON array)
DELETE FROM delivery_attempts WHERE delivery_id IN (
    SELECT d.id FROM deliveries d JOIN events e ON e.id = d.event_id
     WHERE e.notification_id IN (SELECT value FROM json_each(:ids)));

-- forget_deliver_jobs --
-- The deliver jobs of some notifications' deliveries
DELETE FROM jobs WHERE kind = 'deliver' AND ref IN (
    SELECT d.id FROM deliveries d JOIN events e ON e.id = d.event_id
     WHERE e.notification_id IN (SELECT value FROM json_each(:ids)));

-- forget_deliveries --
-- The deliveries of some notifications' events
DELETE FROM deliveries WHERE event_id IN (
    SELECT id FROM events WHERE notification_id IN (SELECT value FROM json_each(:ids)));

-- forget_events --
-- Some notifications' events
DELETE FROM events WHERE notification_id IN (SELECT value FROM json_each(:ids));

-- forget_import_attempts --
-- Some notifications' import attempts
DELETE FROM import_attempts WHERE notification_id IN (SELECT value FROM json_each(:ids));

-- forget_route_changes --
-- Some notifications' route changes
DELETE FROM route_changes WHERE notification_id IN (SELECT value FROM json_each(:ids));

-- forget_message_ids --
-- The message ids accepted as some notifications: a replay of one is a new notification now
DELETE FROM message_ids WHERE notification_id IN (SELECT value FROM json_each(:ids));

-- forget_import_jobs --
-- Some notifications' import jobs
DELETE FROM jobs WHERE kind = 'import' AND ref IN (SELECT value FROM json_each(:ids));

-- forget_notifications --
-- Some notifications, once every row referring to them is gone
DELETE FROM notifications WHERE id IN (SELECT value FROM json_each(:ids));

-- listed_notification_columns --
-- A notification's columns for listings and searches: every one but the token (never read there)
id, partner, partner_event_id, message_id, business_key, NULL AS token, token_sha256,
       session_kind, source_application_id, source_session_id, deadline, rule, workflow_id,
       vendor_data, trust_review, destinations, status, reason_code, reason_message,
       reason_http_status, session_id, session_number, didit_status, received_at, finished_at,
       updated_at, trace_context
