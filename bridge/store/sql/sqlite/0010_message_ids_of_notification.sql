-- Retention deletes a notification with the message ids accepted as it (a duplicate's too):
-- found through this index, and the foreign key checked through it, instead of a scan each.
CREATE INDEX message_ids_of_notification ON message_ids (notification_id);
