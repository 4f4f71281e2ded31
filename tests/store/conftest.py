from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from bridge.store import Store, open_store
from bridge.store.sqlite import SqliteStore
from tests.store.helpers import FakeClock


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(name="clock")
def _clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(name="backend", params=["sqlite"])
def _backend(request: pytest.FixtureRequest) -> str:
    """Every contract test runs on each backend (PostgreSQL joins here with its marker)."""
    return str(request.param)


@pytest.fixture(name="store_url")
def _store_url(backend: str, tmp_path: Path) -> str:
    assert backend == "sqlite"
    return f"sqlite:///{tmp_path}/data/bridge.db"


@pytest.fixture(name="open_")
async def _open(store_url: str, clock: FakeClock) -> AsyncIterator[Callable[[], Store]]:
    """Opens stores on the test's database (several may share it); closes them all after."""
    opened: list[Store] = []

    def open_() -> Store:
        opened.append(open_store(store_url, clock=clock))
        return opened[-1]

    yield open_
    for store in opened:
        await store.close()


@pytest.fixture(name="store")
def _store(open_: Callable[[], Store]) -> Store:
    return open_()


@pytest.fixture(name="sqlite_store")
async def _sqlite_store(tmp_path: Path, clock: FakeClock) -> AsyncIterator[SqliteStore]:
    store = SqliteStore.open(tmp_path / "bridge.db", clock=clock)
    yield store
    await store.close()
