"""Fixtures that run an intake module over each store, as the store contract suite does:
``target`` (SQLite, then PostgreSQL on a fresh schema) and ``store`` on it. A module imports
both (``_target``, ``_store``) to run on each store."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from bridge.store import Store
from tests.store.backends import (
    PG_DSN,
    StoreTarget,
    check_pg_server,
    drop_pg_schema,
    new_pg_schema,
)
from tests.store.helpers import FakeClock


@pytest.fixture(name="target", params=["sqlite", "postgres"])
def _target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreTarget]:
    if request.param == "sqlite":
        yield StoreTarget(url=f"sqlite:///{tmp_path}/bridge.db")
        return
    check_pg_server()
    schema = new_pg_schema()
    try:
        yield StoreTarget(url=PG_DSN, schema=schema)
    finally:
        drop_pg_schema(schema)


@pytest.fixture(name="store")
async def _store(target: StoreTarget, clock: FakeClock) -> AsyncIterator[Store]:
    store = target.open(clock)
    yield store
    await store.close()
