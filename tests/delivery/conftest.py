from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bridge.store import Store, open_store


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(name="store")
async def _store(tmp_path: Path) -> AsyncIterator[Store]:
    """A real SQLite store on the real clock (the sinks are real servers)."""
    store = open_store(f"sqlite:///{tmp_path}/bridge.db", clock=time.time)
    yield store
    await store.close()
