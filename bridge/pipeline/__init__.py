"""Job handlers: import (+ reconcile) -> record -> fan out; deliver. The worker runs them."""

from __future__ import annotations

from bridge.pipeline.imports import ImportHandler

__all__ = ["ImportHandler"]
