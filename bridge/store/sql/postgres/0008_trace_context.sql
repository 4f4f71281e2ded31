-- The W3C traceparent of a notification's intake span, so that its imports and deliveries join
-- its trace even when they run later or in another process (NULL: tracing was off).
ALTER TABLE notifications ADD COLUMN trace_context text;
