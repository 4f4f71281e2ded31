"""Job handlers: import (+ reconcile) -> record -> fan out; deliver. The worker runs them.
And history retention, which ``serve`` runs beside them."""

from __future__ import annotations

from bridge.pipeline._timing import Alarm, TokenBucket
from bridge.pipeline.deliveries import DeliverHandler, delivery_concurrency
from bridge.pipeline.fair_share import RejectionWatch, fair_share
from bridge.pipeline.imports import ImportHandler
from bridge.pipeline.retention import sweep_history

__all__ = [
    "Alarm",
    "DeliverHandler",
    "ImportHandler",
    "RejectionWatch",
    "TokenBucket",
    "delivery_concurrency",
    "fair_share",
    "sweep_history",
]
