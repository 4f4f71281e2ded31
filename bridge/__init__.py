"""share-bridge: redeem partners' Didit share tokens once, and tell downstream the outcome."""

from __future__ import annotations

__version__ = "0.1.0"
