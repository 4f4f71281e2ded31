"""Times as text: the one ISO-8601 form the bridge writes (UTC, with a ``Z``)."""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["iso_utc", "iso_utc_or_none"]


def iso_utc(epoch_s: float, *, milliseconds: bool = False) -> str:
    """``2026-11-25T10:00:00Z`` (``...00.000Z`` with *milliseconds*). ValueError when no
    calendar date can show the time (before year 1, after 9999, not finite)."""
    try:
        moment = datetime.fromtimestamp(epoch_s, UTC)
    except (OverflowError, OSError, ValueError) as exc:
        raise ValueError(f"{epoch_s!r} is outside the calendar") from exc
    spec = "milliseconds" if milliseconds else "seconds"
    return moment.isoformat(timespec=spec).replace("+00:00", "Z")


def iso_utc_or_none(epoch_s: float | None, *, milliseconds: bool = False) -> str | None:
    """``iso_utc``, or None for no time or one no calendar date can show. Never raises: a time
    read from a partner's token must not break a listing."""
    if epoch_s is None:
        return None
    try:
        return iso_utc(epoch_s, milliseconds=milliseconds)
    except ValueError:
        return None
