"""Didit's ``X-RateLimit-*`` and ``Retry-After`` headers, read tolerantly."""

from __future__ import annotations

import email.utils
import math
import time
from collections.abc import Mapping
from datetime import UTC

from bridge.types import RateLimitInfo

MAX_RETRY_AFTER_S = 600.0
MAX_RESET_IN_S = 3600.0


def _number(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        value = float(text.strip())
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _retry_after(text: str | None, now: float) -> float | None:
    if text is None or not text.strip():
        return None
    seconds = _number(text)
    if seconds is None:
        try:
            when = email.utils.parsedate_to_datetime(text.strip())
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = when.timestamp() - now
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_S)


def parse_rate_limit(
    headers: Mapping[str, str], *, now: float | None = None
) -> RateLimitInfo | None:
    """Read ``X-RateLimit-*`` and ``Retry-After`` tolerantly; None when none is present.

    ``now`` is the wall clock (epoch seconds). ``X-RateLimit-Reset`` is epoch seconds; a value
    too small to be an epoch is read as seconds from now, as some gateways send.
    """
    lowered = {key.lower(): value for key, value in headers.items()}
    names = ("x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset", "retry-after")
    if not any(name in lowered for name in names):
        return None
    now = time.time() if now is None else now
    limit, remaining, reset = (_number(lowered.get(name)) for name in names[:3])
    reset_in: float | None = None
    if reset is not None:
        reset_in = reset - now if reset >= 1e9 else reset
        reset_in = min(max(reset_in, 0.0), MAX_RESET_IN_S)
    return RateLimitInfo(
        limit=None if limit is None or limit < 0 else int(limit),
        remaining=None if remaining is None else max(int(remaining), 0),
        reset_epoch=reset if reset is not None and reset >= 1e9 else None,
        reset_in_s=reset_in,
        retry_after_s=_retry_after(lowered.get("retry-after"), now),
    )
