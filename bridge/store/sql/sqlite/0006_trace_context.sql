-- The W3C traceparent of a notification's intake span, so that its imports and deliveries join
-- the same trace in any later process; NULL when traces were off at intake.
ALTER TABLE notifications ADD COLUMN trace_context TEXT;
