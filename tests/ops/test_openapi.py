"""``/openapi.json`` describes exactly the routes ``bridge serve`` answers, and is well formed."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from starlette.routing import Route

from bridge import config
from bridge.cli.service import Service
from bridge.observability import reset_logging
from tests.ops.conftest import ADMIN_TOKEN, SINK_SECRET
from tests.ops.scenario import TARGET
from tests.support.bridge_process import make_config

pytestmark = pytest.mark.anyio
METHODS = {"get", "post", "put", "patch", "delete"}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(name="service")
async def _service(tmp_path: Path) -> AsyncIterator[Service]:
    document = make_config(
        TARGET,
        db_path=tmp_path / "bridge.db",
        port=0,
        destinations={"crm": {"url": "http://127.0.0.1:9/crm", "secrets": [SINK_SECRET]}},
        didit_webhooks=True,
    )
    document["admin"] = {"token": ADMIN_TOKEN}
    service = Service(config.load_text(yaml.safe_dump(document)))
    yield service
    await service.client.aclose()
    await service.sender.aclose()
    await service.store.close()
    reset_logging()


def refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from refs(item)


async def test_document_matches_the_routes(service: Service) -> None:
    """Every route is described, every described operation is a route, every $ref resolves."""
    transport = httpx.ASGITransport(app=service.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bridge.test") as client:
        answer = await client.get("/openapi.json")
    assert answer.status_code == 200
    document = answer.json()
    assert document["openapi"] == "3.1.0"
    described = {
        (path, method.upper())
        for path, item in document["paths"].items()
        for method in item
        if method in METHODS
    }
    served = {
        (route.path, method)
        for route in service.app.rest.routes
        if isinstance(route, Route) and route.path != "/openapi.json"
        for method in set(route.methods or ()) - {"HEAD"}
    }
    assert described == served
    text = answer.text
    assert not [name for name in service.current().partners if name in text]  # no partner named
    for ref in refs(document):
        name = ref.removeprefix("#/components/schemas/")
        assert name in document["components"]["schemas"], ref
    admin_operations = [
        item[method]
        for path, item in document["paths"].items()
        if path.startswith("/admin/")
        for method in item
    ]
    assert all(op["security"] == [{"adminToken": []}] for op in admin_operations)
    assert all("401" in op["responses"] for op in admin_operations)
