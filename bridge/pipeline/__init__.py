"""Job handlers: import (+ reconcile) -> record -> fan out; deliver. The worker runs them."""

from __future__ import annotations

from bridge.pipeline._timing import Alarm, TokenBucket
from bridge.pipeline.deliveries import DeliverHandler, delivery_concurrency
from bridge.pipeline.imports import ImportHandler

__all__ = ["Alarm", "DeliverHandler", "ImportHandler", "TokenBucket", "delivery_concurrency"]
