-- The initial schema: notifications and their dedupe, the job queue, import attempts,
-- the event outbox, deliveries and destination health. Times are epoch seconds (REAL).

CREATE TABLE notifications (
    id                    TEXT PRIMARY KEY,             -- ntf_<ulid>
    partner               TEXT NOT NULL,
    partner_event_id      TEXT,
    message_id            TEXT,                         -- webhook-id / jti
    business_key          TEXT NOT NULL,
    token                 TEXT,                         -- erased (NULL) once final
    token_sha256          TEXT NOT NULL,
    session_kind          TEXT NOT NULL CHECK (session_kind IN ('user', 'business')),
    source_application_id TEXT,
    source_session_id     TEXT,
    deadline              REAL,                         -- token exp minus margin; NULL = none
    rule                  TEXT NOT NULL,                -- the route, fixed at intake
    workflow_id           TEXT NOT NULL,
    vendor_data           TEXT NOT NULL,
    trust_review          INTEGER NOT NULL CHECK (trust_review IN (0, 1)),
    destinations          TEXT NOT NULL,                -- JSON array of destination names
    status                TEXT NOT NULL
        CHECK (status IN ('pending', 'imported', 'rejected', 'expired', 'failed')),
    reason_code           TEXT,
    reason_message        TEXT,
    reason_http_status    INTEGER,
    session_id            TEXT,                         -- Didit's session, once imported
    session_number        INTEGER,
    didit_status          TEXT,
    received_at           REAL NOT NULL,
    finished_at           REAL,
    updated_at            REAL NOT NULL
) STRICT;

-- A share is a duplicate while an earlier notification for it is pending or imported.
CREATE UNIQUE INDEX notifications_live_business_key
    ON notifications (business_key) WHERE status IN ('pending', 'imported');
CREATE INDEX notifications_by_status ON notifications (status, id);
CREATE INDEX notifications_by_partner ON notifications (partner, id);
CREATE INDEX notifications_by_session ON notifications (session_id) WHERE session_id IS NOT NULL;
CREATE INDEX notifications_holding_tokens
    ON notifications (deadline) WHERE token IS NOT NULL AND status <> 'pending';

-- A (partner, message id) once accepted is a duplicate of its notification forever.
CREATE TABLE message_ids (
    partner         TEXT NOT NULL,
    message_id      TEXT NOT NULL,
    notification_id TEXT NOT NULL REFERENCES notifications (id),
    PRIMARY KEY (partner, message_id)
) STRICT, WITHOUT ROWID;

CREATE TABLE jobs (
    id               INTEGER PRIMARY KEY,
    kind             TEXT NOT NULL CHECK (kind IN ('import', 'deliver')),
    ref              TEXT NOT NULL,                     -- notification id | delivery id
    lane             TEXT,                              -- destination of a deliver job
    status           TEXT NOT NULL CHECK (status IN ('queued', 'running', 'done', 'dead')),
    deadline         REAL,                              -- imports: earliest deadline first
    run_after        REAL NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,        -- incremented at claim
    lease_owner      TEXT,
    lease_expires_at REAL,
    last_error       TEXT,
    created_at       REAL NOT NULL,
    updated_at       REAL NOT NULL,
    UNIQUE (kind, ref)
) STRICT;

-- Claimable rows only; the order is the claim order (NULL deadlines last).
CREATE INDEX jobs_claimable
    ON jobs (kind, coalesce(deadline, 1e300), run_after, id)
    WHERE status IN ('queued', 'running');

CREATE TABLE import_attempts (
    notification_id TEXT NOT NULL REFERENCES notifications (id),
    attempt         INTEGER NOT NULL,
    kind            TEXT NOT NULL CHECK (kind IN ('import', 'reconcile')),
    started_at      REAL NOT NULL,                      -- committed before the request is sent
    ended_at        REAL,                               -- NULL: no end recorded = ambiguous
    http_status     INTEGER,
    result          TEXT,
    latency_ms      INTEGER,
    error           TEXT,
    PRIMARY KEY (notification_id, attempt)
) STRICT, WITHOUT ROWID;

-- The outbox: an event's bytes are fixed when the outcome is recorded.
CREATE TABLE events (
    id              TEXT PRIMARY KEY,                   -- evt_<ulid>
    notification_id TEXT NOT NULL REFERENCES notifications (id),
    type            TEXT NOT NULL,
    body            BLOB NOT NULL,
    created_at      REAL NOT NULL
) STRICT;
CREATE INDEX events_by_notification ON events (notification_id);

CREATE TABLE deliveries (
    id           TEXT PRIMARY KEY,                      -- dlv_<ulid>
    event_id     TEXT NOT NULL REFERENCES events (id),
    destination  TEXT NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'dead')),
    attempts     INTEGER NOT NULL DEFAULT 0,
    created_at   REAL NOT NULL,
    updated_at   REAL NOT NULL,
    delivered_at REAL,
    last_error   TEXT,
    UNIQUE (event_id, destination)
) STRICT;
CREATE INDEX deliveries_by_destination ON deliveries (destination, status, updated_at);

CREATE TABLE delivery_attempts (
    delivery_id      TEXT NOT NULL REFERENCES deliveries (id),
    attempt          INTEGER NOT NULL,
    at               REAL NOT NULL,
    http_status      INTEGER,
    latency_ms       INTEGER NOT NULL,
    response_excerpt BLOB NOT NULL,                     -- the first 2 KB of the response
    error            TEXT,
    PRIMARY KEY (delivery_id, attempt)
) STRICT, WITHOUT ROWID;

-- Absent = enabled. A disabled destination's deliver jobs are not claimed: they wait.
CREATE TABLE destination_states (
    name       TEXT PRIMARY KEY,
    enabled    INTEGER NOT NULL CHECK (enabled IN (0, 1)),
    changed_at REAL NOT NULL,
    reason     TEXT
) STRICT;
