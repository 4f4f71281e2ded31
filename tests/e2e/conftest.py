"""Shared end-to-end fixtures: one sandbox process per session, reset before each test, and
``bridge serve`` processes (``tests/support/bridge_process.py``) stopped after each test.

- ``sandbox_url``: the base URL of the session's ``bridge sandbox`` process (seed 0).
- ``control``: a ``SandboxControl`` on it, after ``reset()`` (initial world, no faults, empty
  ledgers, initial quota).
- ``target``: our application in it, as a ``SandboxTarget``.
- ``make_bridge(**options) -> BridgeProcess``: writes a config into a fresh directory under
  ``tmp_path`` and starts ``bridge serve``; every bridge made is stopped at teardown.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bridge.sandbox.control import SandboxControl
from tests.support.bridge_process import BridgeProcess, SandboxTarget
from tests.support.sandbox import start_sandbox_process

MakeBridge = Callable[..., BridgeProcess]


@pytest.fixture(scope="session")
def sandbox_url() -> Iterator[str]:
    with start_sandbox_process(seed=0) as (base_url, _process):
        yield base_url


@pytest.fixture
def control(sandbox_url: str) -> Iterator[SandboxControl]:
    with SandboxControl(sandbox_url) as sandbox:
        sandbox.reset()
        yield sandbox


@pytest.fixture
def target(control: SandboxControl) -> SandboxTarget:
    return SandboxTarget.from_control(control)


@pytest.fixture
def make_bridge(tmp_path: Path, target: SandboxTarget) -> Iterator[MakeBridge]:
    made: list[BridgeProcess] = []

    def make(*, start: bool = True, **options: Any) -> BridgeProcess:
        directory = tmp_path / f"bridge{len(made)}"
        directory.mkdir()
        bridge = BridgeProcess(directory, target, start=False, **options)
        made.append(bridge)
        if start:
            bridge.start()
        return bridge

    yield make
    for bridge in made:
        bridge.close()
