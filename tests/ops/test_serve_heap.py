"""``bridge serve`` freezes what start-up built before it serves (``settle_heap``)."""

from __future__ import annotations

import argparse
import gc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bridge.cli import serve_command
from tests.config.conftest import MINIMAL


@pytest.fixture
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()  # the rest of the test run collects as usual


class _Service:
    """Stands in for the real one: no store, no threads, only what ``run`` reads."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.app = object()

    def begin_draining(self) -> None: ...

    def request_reload(self) -> None: ...


@pytest.mark.usefixtures("unfrozen")
def test_settle_heap_moves_every_live_object_out_of_the_collectors_reach() -> None:
    built_at_start = [[index] for index in range(1000)]  # containers the collector tracks
    serve_command.settle_heap()
    built_later = [0]
    assert gc.get_freeze_count() >= len(built_at_start)
    tracked = {id(found) for found in gc.get_objects()}
    assert id(built_at_start) not in tracked
    assert id(built_later) in tracked  # collected as usual


@pytest.mark.usefixtures("unfrozen")
def test_serve_freezes_the_heap_after_start_up_and_before_serving(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "bridge.yaml"
    config.write_text(MINIMAL)
    frozen_when_serving: list[int] = []
    monkeypatch.setattr(serve_command, "configure_logging", lambda **kwargs: None)
    monkeypatch.setattr(serve_command, "Service", _Service)
    monkeypatch.setattr(
        serve_command._Server, "run", lambda self: frozen_when_serving.append(gc.get_freeze_count())
    )
    exit_code = serve_command.run(argparse.Namespace(config=config, host=None, port=None))
    assert exit_code == 0
    assert len(frozen_when_serving) == 1
    assert frozen_when_serving[0] > 0
