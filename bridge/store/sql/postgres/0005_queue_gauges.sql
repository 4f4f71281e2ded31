-- What /metrics reads on every scrape, from indexes that hold only the rows it counts: the
-- pending notifications (how many, the oldest arrival) and the dead deliveries. Their cost
-- follows the backlog, not the size of the history.

CREATE INDEX notifications_pending_arrivals ON notifications (received_at)
    WHERE status = 'pending';
CREATE INDEX deliveries_dead ON deliveries (destination) WHERE status = 'dead';
