-- The Didit quota shared by every process on this database. A quota is named by a hash of its
-- API key (never the key). Its row is locked by each send's transaction, so sends of all
-- replicas are counted one at a time, on the database's clock (epoch seconds).

CREATE TABLE quotas (
    key           text PRIMARY KEY,
    paused_until  double precision NOT NULL DEFAULT 0,  -- a 429's pause, for everyone
    learned_limit integer,                              -- Didit's X-RateLimit-Limit, last seen
    updated_at    double precision NOT NULL
);

-- The sends of the last window (older ones are deleted as sends are taken).
CREATE TABLE quota_sends (
    key     text NOT NULL REFERENCES quotas (key),
    sent_at double precision NOT NULL
);
CREATE INDEX quota_sends_by_key ON quota_sends (key, sent_at);
