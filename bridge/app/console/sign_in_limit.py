"""How many wrong admin tokens one client address may try at the sign-in page.

After ``MAX_FAILURES`` failed sign-ins within ``WINDOW_S`` seconds, the address is refused (the
right token too) until its oldest failure in the window is ``WINDOW_S`` old. A sign-in that
succeeds forgets the address's failures. The memory is bounded: at most ``MAX_ADDRESSES``
addresses are remembered, the one that failed least recently is forgotten first. Each process
counts for itself; replicas each allow their own budget.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import Final

__all__ = ["MAX_ADDRESSES", "MAX_FAILURES", "WINDOW_S", "SignInLimit"]

MAX_FAILURES: Final = 5
WINDOW_S: Final = 60.0
MAX_ADDRESSES: Final = 10_000


class SignInLimit:
    """Failed sign-ins per client address over a sliding window."""

    def __init__(
        self,
        *,
        max_failures: int = MAX_FAILURES,
        window_s: float = WINDOW_S,
        max_addresses: int = MAX_ADDRESSES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._max_failures = max_failures
        self._window_s = window_s
        self._max_addresses = max_addresses
        self._clock = clock
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def retry_after_s(self, address: str) -> int | None:
        """Whole seconds until ``address`` may try again; None when it may try now."""
        failures = self._recent(address)
        if failures is None or len(failures) < self._max_failures:
            return None
        wait = failures[0] + self._window_s - self._clock()
        return max(1, math.ceil(wait))

    def failed(self, address: str) -> None:
        """Count one wrong token from ``address``."""
        failures = self._recent(address)
        if failures is None:
            failures = deque(maxlen=self._max_failures)
            self._failures[address] = failures
        failures.append(self._clock())
        self._failures.move_to_end(address)
        while len(self._failures) > self._max_addresses:
            self._failures.popitem(last=False)

    def succeeded(self, address: str) -> None:
        """Forget ``address``'s failures."""
        self._failures.pop(address, None)

    def _recent(self, address: str) -> deque[float] | None:
        failures = self._failures.get(address)
        if failures is None:
            return None
        horizon = self._clock() - self._window_s
        while failures and failures[0] <= horizon:
            failures.popleft()
        if not failures:
            del self._failures[address]
            return None
        return failures
