-- Destination lanes: a deliver job's lane is its destination. A claim finds the destinations
-- with work, counts each one's deliveries running now against its max_in_flight, and takes
-- each one's runnable deliveries in claim order, all through these indexes.

-- A destination's runnable deliveries in claim order; also how a claim finds the destinations
-- with work, one probe per destination.
CREATE INDEX jobs_deliver_lane_queue
    ON jobs (lane, coalesce(deadline, 1e300), run_after, id)
    WHERE kind = 'deliver' AND status IN ('queued', 'running');

-- A destination's deliveries running now (their leases held or lapsed).
CREATE INDEX jobs_deliver_running ON jobs (lane, lease_expires_at)
    WHERE kind = 'deliver' AND status = 'running';
