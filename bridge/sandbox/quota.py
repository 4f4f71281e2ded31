"""Didit's per-API-key quota: a sliding window per scope (writes and reads counted apart)."""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class QuotaConfig(BaseModel):
    """The limits. Didit's: 300 writes and 600 reads per key in any 60 s (reference §5)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    write_limit: int = Field(default=300, ge=1)
    write_window_s: float = Field(default=60.0, gt=0)
    read_limit: int = Field(default=600, ge=1)
    read_window_s: float = Field(default=60.0, gt=0)


@dataclass(frozen=True, slots=True)
class Verdict:
    allowed: bool
    limit: int
    remaining: int
    reset: int  # epoch seconds at which the oldest counted call leaves the window
    retry_after: int  # seconds; 0 when allowed

    def headers(self) -> list[tuple[bytes, bytes]]:
        headers = [
            (b"x-ratelimit-limit", str(self.limit).encode()),
            (b"x-ratelimit-remaining", str(self.remaining).encode()),
            (b"x-ratelimit-reset", str(self.reset).encode()),
        ]
        if not self.allowed:
            headers.append((b"retry-after", str(self.retry_after).encode()))
        return headers


class SlidingWindow:
    """Counts calls per key in the last ``window_s`` seconds; a refused call is not counted."""

    def __init__(self, limit: int, window_s: float) -> None:
        self.limit = limit
        self.window_s = window_s
        self._hits: dict[str, deque[float]] = {}

    def hit(self, key: str, now: float) -> Verdict:
        hits = self._hits.get(key)
        if hits is None:
            hits = self._hits[key] = deque()
        self._expire(hits, now)
        if len(hits) >= self.limit:
            frees_at = hits[0] + self.window_s
            return Verdict(False, self.limit, 0, math.ceil(frees_at), _seconds(frees_at - now))
        hits.append(now)
        return Verdict(
            True, self.limit, self.limit - len(hits), math.ceil(hits[0] + self.window_s), 0
        )

    def peek(self, key: str, now: float) -> Verdict:
        """The state a call would see, without counting one."""
        hits = self._hits.get(key)
        if hits:
            self._expire(hits, now)
        if not hits:
            return Verdict(True, self.limit, self.limit, math.ceil(now + self.window_s), 0)
        return Verdict(
            len(hits) < self.limit,
            self.limit,
            max(self.limit - len(hits), 0),
            math.ceil(hits[0] + self.window_s),
            0,
        )

    def _expire(self, hits: deque[float], now: float) -> None:
        cutoff = now - self.window_s
        while hits and hits[0] <= cutoff:
            hits.popleft()


class Quota:
    """The two scopes of one sandbox."""

    def __init__(self, config: QuotaConfig | None = None) -> None:
        self.configure(config or QuotaConfig())

    def configure(self, config: QuotaConfig) -> None:
        """Replace the limits; counting starts afresh."""
        self.config = config
        self._write = SlidingWindow(config.write_limit, config.write_window_s)
        self._read = SlidingWindow(config.read_limit, config.read_window_s)

    def scope(self, method: str) -> SlidingWindow:
        return self._write if method in WRITE_METHODS else self._read


def _seconds(delay: float) -> int:
    return max(1, math.ceil(delay))
