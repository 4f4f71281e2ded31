-- A retry re-routes a failed notification with the running configuration: each change of its
-- route is kept, old and new, for its timeline.
CREATE TABLE route_changes (
    seq              bigserial PRIMARY KEY,            -- the order of changes made in one instant
    notification_id  text NOT NULL REFERENCES notifications (id),
    at               double precision NOT NULL,
    old_rule         text NOT NULL,
    old_workflow_id  text NOT NULL,
    old_trust_review boolean NOT NULL,
    old_destinations text NOT NULL,                    -- JSON array of destination names
    new_rule         text NOT NULL,
    new_workflow_id  text NOT NULL,
    new_trust_review boolean NOT NULL,
    new_destinations text NOT NULL
);
CREATE INDEX route_changes_of_notification ON route_changes (notification_id, at, seq);
