-- A retry re-routes a failed notification with the running configuration: each change of its
-- route is kept, old and new, for its timeline.
CREATE TABLE route_changes (
    notification_id  TEXT NOT NULL REFERENCES notifications (id),
    at               REAL NOT NULL,
    old_rule         TEXT NOT NULL,
    old_workflow_id  TEXT NOT NULL,
    old_trust_review INTEGER NOT NULL CHECK (old_trust_review IN (0, 1)),
    old_destinations TEXT NOT NULL,                    -- JSON array of destination names
    new_rule         TEXT NOT NULL,
    new_workflow_id  TEXT NOT NULL,
    new_trust_review INTEGER NOT NULL CHECK (new_trust_review IN (0, 1)),
    new_destinations TEXT NOT NULL
) STRICT;
CREATE INDEX route_changes_of_notification ON route_changes (notification_id, at);
