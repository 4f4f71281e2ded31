"""Fixtures for the operations tests, all from ``tests/support/fixtures.py``: ``sandbox_url``,
``control``, ``target`` (our application in a fresh sandbox world; one sandbox process per
session), ``make_bridge(**options)`` (``bridge serve`` processes with the admin token, stopped at
teardown) and ``sink`` (a recording destination whose answer a test can change)."""

from __future__ import annotations

from tests.support.fixtures import control, make_bridge, sandbox_url, sink, target

__all__ = ["control", "make_bridge", "sandbox_url", "sink", "target"]
