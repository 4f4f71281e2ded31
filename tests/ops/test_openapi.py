"""``/openapi.json`` describes exactly the routes ``bridge serve`` answers, and is well formed."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema_rs
import orjson
import pytest
import yaml
from starlette.routing import Route

from bridge import config
from bridge.app.openapi import openapi_document
from bridge.cli.service import Service
from bridge.events import PING, ShareFacts, render_event, render_ping
from bridge.observability import reset_logging
from bridge.types import DiditSession, EventType, Reason, SessionKind
from bridge.types import Route as ShareRoute
from tests.ops.scenario import TARGET
from tests.support.bridge_process import ADMIN_TOKEN, make_config
from tests.support.recording_sink import SINK_SECRET

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
        admin_token=ADMIN_TOKEN,
    )
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


def test_the_webhooks_section_describes_every_event_the_bridge_sends() -> None:
    """Bodies rendered by the bridge's own functions validate against /openapi.json's
    ``webhooks``; every event type has an entry."""
    document = openapi_document()
    assert set(document["webhooks"]) == {t.value for t in EventType} | {PING}
    share = ShareFacts(
        notification_id="ntf_1",
        partner="acme",
        partner_event_id=None,
        session_kind=SessionKind.BUSINESS,
        source_application_id="app",
        source_session_id=None,
        route=ShareRoute(
            rule="kyb", workflow_id="wf", vendor_data="acme:1", trust_review=True, destinations=()
        ),
    )
    bodies = {
        "share.imported": render_event(
            event_id="evt_1",
            event_type=EventType.IMPORTED,
            created_at=1_767_225_600.0,
            share=share,
            session=DiditSession(session_id="s", session_number=43000, status="Approved"),
            reason=None,
        ),
        "share.failed": render_event(
            event_id="evt_2",
            event_type=EventType.FAILED,
            created_at=1_767_225_600.0,
            share=share,
            session=None,
            reason=Reason(code="workflow_not_found", message="not found", http_status=404),
        ),
        PING: render_ping(event_id="evt_3", created_at=1_767_225_600.0, destination="crm"),
    }
    for name, body in bodies.items():
        operation = document["webhooks"][name]["post"]
        ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        schema = {"$ref": ref, "components": document["components"]}
        validator = jsonschema_rs.validator_for(schema)
        assert validator.is_valid(orjson.loads(body)), list(
            validator.iter_errors(orjson.loads(body))
        )
        # and a body that breaks the contract does not pass
        broken = orjson.loads(body) | {"id": 7}
        assert not validator.is_valid(broken)
