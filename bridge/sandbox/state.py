"""One sandbox's mutable state, shared by the Didit endpoints and the control API."""

from __future__ import annotations

from collections.abc import Callable

from bridge.sandbox.faults import FaultInjector
from bridge.sandbox.ledger import Ledger
from bridge.sandbox.quota import Quota, QuotaConfig
from bridge.sandbox.share_tokens import ShareTokenSigner
from bridge.sandbox.world import World

Clock = Callable[[], float]  # epoch seconds


class SandboxState:
    """The world, the ledger, the quota and the faults of one running sandbox.

    Everything runs on one event loop, and no handler awaits between reading and changing the
    world, so there are no locks."""

    def __init__(self, world: World, *, seed: int, clock: Clock, quota: QuotaConfig) -> None:
        self._initial_world = world.copy()
        self._initial_quota = quota
        self.seed = seed
        self.clock = clock
        self.world = world
        self.signer = ShareTokenSigner(world.share_token_secret)
        self.ledger = Ledger()
        self.quota = Quota(quota)
        self.faults = FaultInjector(seed)

    def reset(self) -> None:
        """Back to the start: the initial world, empty ledgers, no faults, the initial quota."""
        self.world = self._initial_world.copy()
        self.signer = ShareTokenSigner(self.world.share_token_secret)
        self.ledger = Ledger()
        self.quota.configure(self._initial_quota)
        self.faults.clear()
