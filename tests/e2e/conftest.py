"""End-to-end fixtures: the sandbox fixtures of ``tests/support/fixtures.py`` and plain
``bridge serve`` processes (``tests/support/bridge_process.py``) stopped after each test.

- ``sandbox_url``, ``control``, ``target``: see ``tests/support/fixtures.py`` (one sandbox
  process per session, reset before each test).
- ``make_bridge(**options) -> BridgeProcess``: writes a config into a fresh directory under
  ``tmp_path`` and starts ``bridge serve``; every bridge made is stopped at teardown.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.bridge_process import BridgeProcess, SandboxTarget
from tests.support.fixtures import bridge_factory, control, sandbox_url, target

__all__ = ["MakeBridge", "control", "make_bridge", "sandbox_url", "target"]

MakeBridge = Callable[..., BridgeProcess]


@pytest.fixture
def make_bridge(tmp_path: Path, target: SandboxTarget) -> Iterator[MakeBridge]:
    yield from bridge_factory(BridgeProcess, tmp_path, target)
