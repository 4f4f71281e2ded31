from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from bridge.store import Store
from bridge.store.sqlite import SqliteStore
from tests.store.backends import (
    PG_DSN,
    StoreTarget,
    check_pg_server,
    drop_pg_schema,
    new_pg_schema,
)
from tests.store.helpers import FakeClock

BACKENDS = ["sqlite", "postgres"]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(name="clock")
def _clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(scope="session", name="pg_server")
def _pg_server() -> None:
    check_pg_server()


@pytest.fixture(name="backend", params=BACKENDS)
def _backend(request: pytest.FixtureRequest) -> str:
    """Every contract test runs on each backend."""
    return str(request.param)


@pytest.fixture(name="target")
def _target(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[StoreTarget]:
    if backend == "sqlite":
        yield StoreTarget(url=f"sqlite:///{tmp_path}/data/bridge.db")
        return
    request.getfixturevalue("pg_server")
    schema = new_pg_schema()
    try:
        yield StoreTarget(url=PG_DSN, schema=schema)
    finally:
        drop_pg_schema(schema)


@pytest.fixture(name="open_")
async def _open(target: StoreTarget, clock: FakeClock) -> AsyncIterator[Callable[[], Store]]:
    """Opens stores on the test's database (several may share it); closes them all after."""
    opened: list[Store] = []

    def open_() -> Store:
        opened.append(target.open(clock))
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
