"""Fixtures for the operations tests, all from ``tests/support/fixtures.py``: ``sandbox_url``,
``control``, ``target`` (our application in a fresh sandbox world; one sandbox process per
session), ``make_bridge(**options)`` (``bridge serve`` processes with the admin token, stopped at
teardown) and ``sink`` (a recording destination whose answer a test can change); and for the
in-process tests ``store``, a fresh SQLite store on a fake clock, under asyncio."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bridge.store import Store, open_store
from tests.store.helpers import FakeClock
from tests.support.fixtures import control, make_bridge, sandbox_url, sink, target

__all__ = ["control", "make_bridge", "sandbox_url", "sink", "target"]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(name="store")
async def _store(tmp_path: Path) -> AsyncIterator[Store]:
    store = open_store(f"sqlite:///{tmp_path}/bridge.db", clock=FakeClock())
    yield store
    await store.close()
