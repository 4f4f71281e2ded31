"""End-to-end fixtures: the sandbox fixtures of ``tests/support/fixtures.py`` and plain
``bridge serve`` processes (``tests/support/bridge_process.py``) stopped after each test.

- ``sandbox_url``, ``control``, ``target``: see ``tests/support/fixtures.py`` (one sandbox
  process per session, reset before each test).
- ``make_bridge(**options) -> BridgeProcess``: see ``tests/support/fixtures.py`` (a config in a
  fresh directory under ``tmp_path``, ``bridge serve`` started, stopped at teardown).
- ``pg_store``: a ``store`` section (``make_bridge(store=pg_store)``) on a fresh PostgreSQL
  schema, dropped after the test.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest

from tests.store.backends import PG_DSN, TOKEN_KEY, check_pg_server, drop_pg_schema, new_pg_schema
from tests.support.fixtures import MakeBridge, control, make_bridge, sandbox_url, target

__all__ = ["MakeBridge", "control", "make_bridge", "pg_store", "sandbox_url", "target"]


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
