-- The initial schema: notifications and their dedupe, the job queue, import attempts, the event
-- outbox, deliveries, destination health and the owners of worker leases. Times are epoch
-- seconds (double precision) from the bridge's clock. Uniqueness that must hold across every
-- process sharing the database (a business key while live, a partner's message id, a Didit
-- session) is enforced here, by unique indexes, not by the processes.

CREATE TABLE notifications (
    id                    text PRIMARY KEY,             -- ntf_<ulid>
    partner               text NOT NULL,
    partner_event_id      text,
    message_id            text,                         -- webhook-id / jti
    business_key          text NOT NULL,
    token_sealed          bytea,                        -- AES-GCM; erased (NULL) once final
    token_sha256          text NOT NULL,
    session_kind          text NOT NULL CHECK (session_kind IN ('user', 'business')),
    source_application_id text,
    source_session_id     text,
    deadline              double precision,             -- token exp minus margin; NULL = none
    rule                  text NOT NULL,                -- the route, fixed at intake
    workflow_id           text NOT NULL,
    vendor_data           text NOT NULL,
    trust_review          boolean NOT NULL,
    destinations          text NOT NULL,                -- JSON array of destination names
    status                text NOT NULL
        CHECK (status IN ('pending', 'imported', 'rejected', 'expired', 'failed')),
    reason_code           text,
    reason_message        text,
    reason_http_status    integer,
    session_id            text,                         -- Didit's session, once imported
    session_number        bigint,
    didit_status          text,
    received_at           double precision NOT NULL,
    finished_at           double precision,
    updated_at            double precision NOT NULL
);

-- A share is a duplicate while an earlier notification for it is pending or imported.
CREATE UNIQUE INDEX notifications_live_business_key
    ON notifications (business_key) WHERE status IN ('pending', 'imported');
-- A Didit session is one share's, never a second's.
CREATE UNIQUE INDEX notifications_by_session
    ON notifications (session_id) WHERE session_id IS NOT NULL;
CREATE INDEX notifications_by_status ON notifications (status, id);
CREATE INDEX notifications_by_partner ON notifications (partner, id);
CREATE INDEX notifications_holding_tokens
    ON notifications (deadline) WHERE token_sealed IS NOT NULL AND status <> 'pending';

-- A (partner, message id) once accepted is a duplicate of its notification forever.
CREATE TABLE message_ids (
    partner         text NOT NULL,
    message_id      text NOT NULL,
    notification_id text NOT NULL REFERENCES notifications (id),
    PRIMARY KEY (partner, message_id)
);

CREATE TABLE jobs (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind             text NOT NULL CHECK (kind IN ('import', 'deliver')),
    ref              text NOT NULL,                     -- notification id | delivery id
    lane             text,                              -- destination of a deliver job
    status           text NOT NULL CHECK (status IN ('queued', 'running', 'done', 'dead')),
    deadline         double precision,                  -- imports: earliest deadline first
    run_after        double precision NOT NULL,
    attempts         integer NOT NULL DEFAULT 0,        -- incremented at claim
    lease_owner      text,
    lease_expires_at double precision,
    last_error       text,
    created_at       double precision NOT NULL,
    updated_at       double precision NOT NULL,
    UNIQUE (kind, ref)
);

-- Claimable rows only; the order is the claim order (NULL deadlines last).
CREATE INDEX jobs_claimable
    ON jobs (kind, coalesce(deadline, 'Infinity'::double precision), run_after, id)
    WHERE status IN ('queued', 'running');
CREATE INDEX jobs_by_owner ON jobs (lease_owner) WHERE status = 'running';

CREATE TABLE import_attempts (
    notification_id text NOT NULL REFERENCES notifications (id),
    attempt         integer NOT NULL,
    kind            text NOT NULL CHECK (kind IN ('import', 'reconcile')),
    started_at      double precision NOT NULL,          -- committed before the request is sent
    ended_at        double precision,                   -- NULL: no end recorded = ambiguous
    http_status     integer,
    result          text,
    latency_ms      integer,
    error           text,
    PRIMARY KEY (notification_id, attempt)
);

-- The outbox: an event's bytes are fixed when the outcome is recorded.
CREATE TABLE events (
    seq             bigint GENERATED ALWAYS AS IDENTITY, -- insertion order within a time
    id              text PRIMARY KEY,                   -- evt_<ulid>
    notification_id text NOT NULL REFERENCES notifications (id),
    type            text NOT NULL,
    body            bytea NOT NULL,
    created_at      double precision NOT NULL
);
CREATE INDEX events_by_notification ON events (notification_id);

CREATE TABLE deliveries (
    seq          bigint GENERATED ALWAYS AS IDENTITY,
    id           text PRIMARY KEY,                      -- dlv_<ulid>
    event_id     text NOT NULL REFERENCES events (id),
    destination  text NOT NULL,
    status       text NOT NULL CHECK (status IN ('pending', 'delivered', 'dead')),
    attempts     integer NOT NULL DEFAULT 0,
    created_at   double precision NOT NULL,
    updated_at   double precision NOT NULL,
    delivered_at double precision,
    last_error   text,
    UNIQUE (event_id, destination)
);
CREATE INDEX deliveries_by_destination ON deliveries (destination, status, updated_at);

CREATE TABLE delivery_attempts (
    delivery_id      text NOT NULL REFERENCES deliveries (id),
    attempt          integer NOT NULL,
    at               double precision NOT NULL,
    http_status      integer,
    latency_ms       integer NOT NULL,
    response_excerpt bytea NOT NULL,                    -- the first 2 KB of the response
    error            text,
    PRIMARY KEY (delivery_id, attempt)
);

-- Absent = enabled. A disabled destination's deliver jobs are not claimed: they wait.
CREATE TABLE destination_states (
    name       text PRIMARY KEY,
    enabled    boolean NOT NULL,
    changed_at double precision NOT NULL,
    reason     text
);

-- The job owners that registered their liveness: each holds a session advisory lock on
-- lock_key while its process (and its connection) lives. A registered owner whose lock is free
-- is gone, and its jobs are requeued at once.
CREATE TABLE worker_owners (
    owner         text PRIMARY KEY,
    lock_key      bigint NOT NULL,
    registered_at double precision NOT NULL
);
