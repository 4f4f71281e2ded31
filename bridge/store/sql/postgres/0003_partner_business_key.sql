-- The live business key is per partner: share tokens' claims are unverified, so a token one
-- partner forged with another's claims must never make that partner's real share a duplicate.

DROP INDEX notifications_live_business_key;
CREATE UNIQUE INDEX notifications_live_business_key
    ON notifications (partner, business_key) WHERE status IN ('pending', 'imported');
