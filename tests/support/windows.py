"""Counting events in time windows, for tests of rates."""

from __future__ import annotations


def most_in_any_window(times: list[float], window_s: float) -> int:
    """The most of ``times`` that fall in one window of ``window_s`` (each window starting at
    one of them)."""
    ordered = sorted(times)
    return max(
        (sum(1 for t in ordered[i:] if t < start + window_s) for i, start in enumerate(ordered)),
        default=0,
    )
