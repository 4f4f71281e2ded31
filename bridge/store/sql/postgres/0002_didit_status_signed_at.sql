-- The time Didit signed the status on record (epoch seconds; NULL: the status came with the
-- import's answer). A status update signed before it is stale: replays and out-of-order
-- webhooks change nothing.

ALTER TABLE notifications ADD COLUMN didit_status_at double precision;
