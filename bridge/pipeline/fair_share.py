"""How the import queue is shared between partners: caps, and slowing a partner whose tokens
Didit keeps rejecting.

Any partner can send tokens that look urgent (the bridge cannot verify a token's signature, so
its ``exp`` is the partner's word) and that Didit then refuses. :class:`RejectionWatch` counts,
per partner, Didit's answers to its imports over the last minute; a partner with at least
``SLOWED_AFTER`` rejected tokens there, making up at least half of its answers, is *slowed*:
its imports start at most ``SLOWED_IMPORTS_PER_MINUTE`` a minute, its deadlines never go ahead
of another partner's, and an ``alert`` (kind ``partner_tokens_rejected``) is logged and counted,
with the gauge ``bridge_partner_slowed{partner}`` at 1. It recovers (gauge 0, a
``partner_recovered`` line) as soon as its last minute no longer looks like that, which a slowed
partner that stopped sending junk reaches within a minute.

The watch lives in each process (each replica slows on what its own imports saw); the caps and
the turns it feeds are applied by the store's claim, so they hold across replicas.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

import structlog

from bridge.config import Settings
from bridge.observability import Metrics
from bridge.pacing import WINDOW_S
from bridge.store import FairShare

log = structlog.get_logger()

SLOWED_AFTER = 5  # rejected tokens within the window
SLOWED_SHARE = 0.5  # of the partner's answers within the window
SLOWED_IMPORTS_PER_MINUTE = 6
ALERT_KIND = "partner_tokens_rejected"


class RejectionWatch:
    """Which partners are slowed for rejected tokens (see the module docstring)."""

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        metrics: Metrics | None = None,
        window_s: float = WINDOW_S,
    ) -> None:
        self._clock = clock
        self._metrics = metrics
        self._window_s = window_s
        self._answers: dict[str, deque[tuple[float, bool]]] = {}  # (when, rejected)
        self._slowed: set[str] = set()

    def observe(self, partner: str, *, rejected: bool) -> None:
        """Didit answered one of ``partner``'s imports: its token was rejected, or not."""
        self._answers.setdefault(partner, deque()).append((self._clock(), rejected))
        self._judge(partner)

    def slowed(self) -> frozenset[str]:
        """The partners slowed now."""
        for partner in list(self._slowed):
            self._judge(partner)
        return frozenset(self._slowed)

    def _judge(self, partner: str) -> None:
        answers = self._answers.get(partner, deque())
        since = self._clock() - self._window_s
        while answers and answers[0][0] <= since:
            answers.popleft()
        if not answers:
            self._answers.pop(partner, None)
        rejected = sum(1 for _, was_rejected in answers if was_rejected)
        slowed = rejected >= SLOWED_AFTER and rejected >= SLOWED_SHARE * len(answers)
        if slowed and partner not in self._slowed:
            self._slowed.add(partner)
            log.error(
                "alert", kind=ALERT_KIND, partner=partner, rejected=rejected,
                answers=len(answers), window_s=self._window_s,
                imports_per_minute=SLOWED_IMPORTS_PER_MINUTE,
            )  # fmt: skip
            self._gauge(partner, 1)
            if self._metrics is not None:
                self._metrics.alerts.labels(kind=ALERT_KIND).inc()
        elif not slowed and partner in self._slowed:
            self._slowed.discard(partner)
            log.info("partner_recovered", partner=partner, rejected=rejected, answers=len(answers))
            self._gauge(partner, 0)

    def _gauge(self, partner: str, value: int) -> None:
        if self._metrics is not None:
            self._metrics.partners_slowed.labels(partner=partner).set(value)


def fair_share(settings: Settings, slowed: frozenset[str], *, pace_s: float) -> FairShare:
    """The claim's sharing rules now: each partner's configured cap (lowered for a slowed
    partner), the pacer's pace (seconds per import), and no jumping ahead when slowed."""
    caps: dict[str, int] = {
        name: partner.max_imports_per_minute
        for name, partner in settings.partners.items()
        if partner.max_imports_per_minute is not None
    }
    for name in slowed:
        caps[name] = min(caps.get(name, SLOWED_IMPORTS_PER_MINUTE), SLOWED_IMPORTS_PER_MINUTE)
    return FairShare(pace_s=pace_s, caps=caps, no_jumps=slowed)
