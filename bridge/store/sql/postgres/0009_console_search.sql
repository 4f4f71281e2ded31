-- The console's searches and charts: a notification found by its partner's event id, its
-- vendor_data or its token's SHA-256 without a scan, listed per rule newest first, and outcomes
-- counted by when they ended.

CREATE INDEX notifications_by_partner_event_id
    ON notifications (partner_event_id) WHERE partner_event_id IS NOT NULL;
CREATE INDEX notifications_by_vendor_data ON notifications (vendor_data);
CREATE INDEX notifications_by_token_sha256 ON notifications (token_sha256);
CREATE INDEX notifications_by_finished_at
    ON notifications (finished_at, status) WHERE finished_at IS NOT NULL;
CREATE INDEX notifications_by_rule ON notifications (rule, id);
