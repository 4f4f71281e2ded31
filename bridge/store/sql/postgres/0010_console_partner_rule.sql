-- The console's listing of one partner's notifications of one rule, newest first, from an index
-- on both: through (partner, id) alone, a pair that matches little walks every row of the partner.

CREATE INDEX notifications_by_partner_rule ON notifications (partner, rule, id);
