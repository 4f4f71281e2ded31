"""Fixtures shared by the suites that run real processes (``tests/e2e``, ``tests/ops``,
``tests/console``): one ``bridge sandbox`` process per session, reset before each test, a factory
of ``bridge serve`` processes (``tests/support/bridge_process.py``) stopped after each test, and a
recording sink for their deliveries.

A conftest imports the fixtures it offers by name and lists them in its ``__all__``::

    from tests.support.fixtures import control, make_bridge, sandbox_url, sink, target

- ``sandbox_url``: the base URL of the session's ``bridge sandbox`` process (seed 0).
- ``control``: a ``SandboxControl`` on it, after ``reset()`` (initial world, no faults, empty
  ledgers, initial quota).
- ``target``: our application in it, as a ``SandboxTarget``.
- ``make_bridge(*, start=True, **options) -> BridgeProcess``: writes a config (``make_config``'s
  options) into a fresh directory under ``tmp_path`` and starts ``bridge serve``; every bridge
  made is stopped at teardown. (:func:`bridge_factory` for a fixture of its own.)
- ``sink``: a :class:`RecordingSink` on 127.0.0.1 whose answer a test can change.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from bridge.sandbox.control import SandboxControl
from tests.support.bridge_process import BridgeProcess, SandboxTarget
from tests.support.recording_sink import RecordingSink, recording_sink
from tests.support.sandbox import start_sandbox_process

__all__ = [
    "MakeBridge",
    "bridge_factory",
    "control",
    "make_bridge",
    "sandbox_url",
    "sink",
    "target",
]

B = TypeVar("B", bound=BridgeProcess)
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


def bridge_factory(
    bridge_class: Callable[..., B], tmp_path: Path, target: SandboxTarget
) -> Iterator[Callable[..., B]]:
    """Yield ``make(*, start=True, **options) -> bridge``, then close every bridge it made.

    Each bridge is ``bridge_class(directory, target, start=False, **options)`` in a fresh
    directory ``tmp_path / "bridge<n>"``, started unless ``start=False``. For a ``make_bridge``
    fixture to delegate to with ``yield from``.
    """
    made: list[B] = []

    def make(*, start: bool = True, **options: Any) -> B:
        directory = tmp_path / f"bridge{len(made)}"
        directory.mkdir()
        bridge = bridge_class(directory, target, start=False, **options)
        made.append(bridge)
        if start:
            bridge.start()
        return bridge

    yield make
    for bridge in made:
        bridge.close()


@pytest.fixture
def make_bridge(tmp_path: Path, target: SandboxTarget) -> Iterator[MakeBridge]:
    yield from bridge_factory(BridgeProcess, tmp_path, target)


@pytest.fixture
def sink() -> Iterator[RecordingSink]:
    with recording_sink() as recording:
        yield recording
