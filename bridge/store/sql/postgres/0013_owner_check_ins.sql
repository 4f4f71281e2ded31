-- A free advisory lock alone does not tell a dead owner from one whose session was cut (a
-- server restart, a network blip): the latter takes its lock again at its next heartbeat. Each
-- registration is a check-in, timed by the database's clock, with the owner's heartbeat
-- interval; an owner is gone only when its lock is free and it stopped checking in. The owners
-- already registered start from now: they have not been silent yet.
ALTER TABLE worker_owners
    ADD COLUMN heartbeat_s double precision NOT NULL DEFAULT 0,
    ADD COLUMN last_seen   double precision NOT NULL DEFAULT extract(epoch FROM now());
