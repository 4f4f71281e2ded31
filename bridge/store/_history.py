"""What deleting a notification's history deletes, in an order its foreign keys allow.

Each name is a query of every backend (``forget_<what>``) taking the notifications' ids.
"""

from __future__ import annotations

from typing import Final

#: Children before their parents: a delivery's attempts and job, then deliveries, events, the
#: notification's own rows, and the notification last.
FORGET_QUERIES: Final = (
    "forget_delivery_attempts",
    "forget_deliver_jobs",
    "forget_deliveries",
    "forget_events",
    "forget_import_attempts",
    "forget_route_changes",
    "forget_message_ids",
    "forget_import_jobs",
    "forget_notifications",
)
