from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bridge.store import Store, open_store
from tests.store.helpers import FakeClock


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(name="clock")
def _clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(name="store")
async def _store(tmp_path: Path, clock: FakeClock) -> AsyncIterator[Store]:
    store = open_store(f"sqlite:///{tmp_path}/bridge.db", clock=clock)
    yield store
    await store.close()
