-- Partner lanes: an import job's lane is its notification's partner (set at accept), so that
-- claims share Didit's quota between partners; claimed_at is when a job was last claimed,
-- which tells each lane's last turn and how many imports it started in the last minute.

ALTER TABLE jobs ADD COLUMN claimed_at double precision;

UPDATE jobs SET lane = notifications.partner
  FROM notifications
 WHERE jobs.kind = 'import' AND notifications.id = jobs.ref;

-- A lane's last turn and its claims of the last minute, for every import claim.
CREATE INDEX jobs_import_lane_claims ON jobs (lane, claimed_at) WHERE kind = 'import';

-- A lane's runnable imports in its own (earliest deadline first) order; also how the claim
-- finds the lanes with work, one probe per lane.
CREATE INDEX jobs_import_lane_queue
    ON jobs (lane, coalesce(deadline, 'Infinity'::double precision), run_after, id)
    WHERE kind = 'import' AND status IN ('queued', 'running');

-- The lanes claimed last, which may not jump the round.
CREATE INDEX jobs_import_claims ON jobs (claimed_at) WHERE kind = 'import';

-- The imports running now (their leases held): they go to Didit before anything claimed next.
CREATE INDEX jobs_import_running ON jobs (lease_expires_at)
    WHERE kind = 'import' AND status = 'running';
