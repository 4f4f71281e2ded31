-- Partner lanes: an import job's lane is its notification's partner (set at accept), so that
-- claims share Didit's quota between partners; claimed_at is when a job was last claimed,
-- which tells each lane's last turn and how many imports it started in the last minute.

ALTER TABLE jobs ADD COLUMN claimed_at REAL;

UPDATE jobs SET lane = (SELECT partner FROM notifications WHERE notifications.id = jobs.ref)
 WHERE kind = 'import';

-- A lane's last turn and its claims of the last minute, for every import claim.
CREATE INDEX jobs_import_lane_claims ON jobs (lane, claimed_at) WHERE kind = 'import';

-- A lane's runnable imports in its own (earliest deadline first) order.
CREATE INDEX jobs_import_lane_queue
    ON jobs (lane, coalesce(deadline, 1e300), run_after, id)
    WHERE kind = 'import' AND status IN ('queued', 'running');

-- The lane claimed last, which may not jump the round.
CREATE INDEX jobs_import_claims ON jobs (claimed_at) WHERE kind = 'import';

-- The imports running now (their leases held): they go to Didit before anything claimed next.
CREATE INDEX jobs_import_running ON jobs (lease_expires_at)
    WHERE kind = 'import' AND status = 'running';
