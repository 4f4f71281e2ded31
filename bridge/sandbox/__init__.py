"""A faithful emulator of the Didit endpoints the bridge uses (docs/didit.md), with a redemption
ledger, per-key quotas and fault injection. It shares no code with the rest of ``bridge``.

``World`` holds the state, ``create_app`` serves it, ``share-bridge sandbox`` runs it with the ready
world of ``build_starter_world``, and ``bridge.sandbox.control.SandboxControl`` drives its
control API.
"""

from __future__ import annotations

from bridge.sandbox.app import SandboxApp, create_app
from bridge.sandbox.faults import FaultSpec
from bridge.sandbox.quota import QuotaConfig
from bridge.sandbox.starter_world import build_starter_world
from bridge.sandbox.world import World

__all__ = [
    "FaultSpec",
    "QuotaConfig",
    "SandboxApp",
    "World",
    "build_starter_world",
    "create_app",
]
