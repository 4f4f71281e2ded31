"""``Service.reload`` in process: what a reload changes besides the routing (see also the
end-to-end ``test_reload.py``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from bridge import config
from bridge.cli.service import Service
from bridge.observability import reset_logging
from tests.ops.scenario import TARGET
from tests.support.bridge_process import make_config
from tests.support.recording_sink import SINK_SECRET

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _document(tmp_path: Path, **slots: int) -> dict[str, Any]:
    destinations = {
        name: {"url": f"http://127.0.0.1:9/{name}", "secrets": [SINK_SECRET], "max_in_flight": n}
        for name, n in slots.items()
    }
    return make_config(TARGET, db_path=tmp_path / "bridge.db", port=0, destinations=destinations)


def _write(path: Path, document: dict[str, Any]) -> None:
    path.write_text(yaml.safe_dump(document))


@pytest.fixture(name="config_path")
def _config_path(tmp_path: Path) -> Path:
    path = tmp_path / "bridge.yaml"
    _write(path, _document(tmp_path, crm=4))
    return path


@pytest.fixture(name="service")
async def _service(config_path: Path) -> AsyncIterator[Service]:
    service = Service(config.load(config_path), config_path=config_path)
    yield service
    await service.client.aclose()
    await service.sender.aclose()
    await service.store.close()
    reset_logging()


async def test_a_destination_added_by_reload_gets_its_own_delivery_slots(
    service: Service, config_path: Path, tmp_path: Path
) -> None:
    """Otherwise a slow destination with a backlog would hold every slot the new one needs."""
    assert service.delivery_worker.concurrency == 4
    _write(config_path, _document(tmp_path, crm=4, audit=3))
    assert service.reload() == ()
    assert service.delivery_worker.concurrency == 7
    _write(config_path, _document(tmp_path, audit=2))
    assert service.reload() == ()
    assert service.delivery_worker.concurrency == 2


async def test_a_reload_with_a_weak_partner_secret_is_refused_with_the_reason(
    service: Service, config_path: Path, tmp_path: Path
) -> None:
    """The old settings stay live; the reason names the key and never echoes the secret."""
    before = service.current()
    document = _document(tmp_path, crm=4)
    document["partners"]["hooli"]["auth"]["keys"] = ["hooli-key-1"]
    _write(config_path, document)
    issues = [str(issue) for issue in service.reload()]
    assert len(issues) == 1
    assert "partners.hooli.auth.keys[0]: too weak: shorter than 16 characters" in issues[0]
    assert "hooli-key-1" not in issues[0]
    assert service.current() is before
