"""End-to-end fixtures: the sandbox fixtures of ``tests/support/fixtures.py`` and plain
``bridge serve`` processes (``tests/support/bridge_process.py``) stopped after each test.

- ``sandbox_url``, ``control``, ``target``: see ``tests/support/fixtures.py`` (one sandbox
  process per session, reset before each test).
- ``make_bridge(**options) -> BridgeProcess``: writes a config into a fresh directory under
  ``tmp_path`` and starts ``bridge serve``; every bridge made is stopped at teardown.
- ``pg_store``: a ``store`` section (``make_bridge(store=pg_store)``) on a fresh PostgreSQL
  schema, dropped after the test.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.store.backends import PG_DSN, TOKEN_KEY, check_pg_server, drop_pg_schema, new_pg_schema
from tests.support.bridge_process import BridgeProcess, SandboxTarget
from tests.support.fixtures import bridge_factory, control, sandbox_url, target

__all__ = ["MakeBridge", "control", "make_bridge", "pg_store", "sandbox_url", "target"]

MakeBridge = Callable[..., BridgeProcess]


@pytest.fixture
def make_bridge(tmp_path: Path, target: SandboxTarget) -> Iterator[MakeBridge]:
    yield from bridge_factory(BridgeProcess, tmp_path, target)


@pytest.fixture
def pg_store() -> Iterator[dict[str, object]]:
    check_pg_server()
    schema = new_pg_schema()
    try:
        yield {
            "url": PG_DSN,
            "schema": schema,
            "token_keys": [base64.urlsafe_b64encode(TOKEN_KEY).decode()],
        }
    finally:
        drop_pg_schema(schema)
