"""Every admin operation's answers, success and refusal, are what ``/openapi.json`` describes
for that path, method and status, and nothing more: an answer with a field its model does not
declare fails, as does a route or status the document lacks."""

from __future__ import annotations

from typing import Any

import jsonschema_rs
import pytest

from bridge.app.api_routes import ADMIN, PREFIX
from bridge.app.openapi import openapi_document
from bridge.errors import ConfigIssue, StoreUnavailable
from bridge.store import Store
from bridge.types import NotificationStatus
from tests.ops.test_admin import AUTH, Harness
from tests.store.helpers import FakeClock

pytestmark = pytest.mark.anyio

DOCUMENT = openapi_document()


class Caller:
    """Calls operations by their id, through the document's path templates, and checks each
    answer against the document."""

    def __init__(self, harness: Harness) -> None:
        self.harness = harness
        self.seen: set[tuple[str, int]] = set()

    async def call(
        self, operation_id: str, expected: int, *, auth: bool = True, **kwargs: Any
    ) -> Any:
        path, method, operation = find(operation_id)
        params = kwargs.pop("path", {})
        url = path.removeprefix(PREFIX).format(**params)
        headers = AUTH if auth else {}
        answer = await self.harness.client.request(method, url, headers=headers, **kwargs)
        assert answer.status_code == expected, (operation_id, answer.status_code, answer.text)
        described = operation["responses"].get(str(expected))
        assert described is not None, f"{operation_id} answered {expected}, not described"
        assert answer.headers["content-type"].startswith("application/json")
        schema = described["content"]["application/json"]["schema"]
        validator = jsonschema_rs.validator_for({**schema, "components": DOCUMENT["components"]})
        body = answer.json()
        assert validator.is_valid(body), (operation_id, list(validator.iter_errors(body)))
        # A field the model does not declare would not pass.
        assert not validator.is_valid({**body, "undeclared": 1}), operation_id
        self.seen.add((operation_id, expected))
        return body


def find(operation_id: str) -> tuple[str, str, dict[str, Any]]:
    for path, item in DOCUMENT["paths"].items():
        for method, operation in item.items():
            if operation["operationId"] == operation_id:
                return path, method.upper(), operation
    raise AssertionError(f"{operation_id} is not in the document")


async def test_every_admin_answer_is_the_documented_shape(store: Store) -> None:
    harness = Harness(store, FakeClock())
    caller = Caller(harness)
    call = caller.call
    failed = await harness.finished("f", NotificationStatus.FAILED, "crm")
    imported = await harness.finished("i", NotificationStatus.IMPORTED, "crm")
    dead = await harness.dead_delivery()
    await store.set_destination_enabled("audit", enabled=False, reason="HTTP 410")

    await call("overview", 200)
    await call("overview", 401, auth=False)
    await call("listNotifications", 200, params={"limit": "1"})
    await call("listNotifications", 400, params={"limit": "0"})
    await call("showNotification", 200, path={"id": imported})
    await call("showNotification", 404, path={"id": "ntf_nope"})
    await call("retryNotification", 400, path={"id": failed}, params={"keep_route": "yes"})
    await call("retryNotification", 409, path={"id": imported})
    await call("retryNotification", 202, path={"id": failed}, params={"keep_route": "true"})
    await call("showNotification", 200, path={"id": failed})
    await call("listDestinations", 200)
    await call("enableDestination", 200, path={"name": "audit"})
    await call("enableDestination", 404, path={"name": "nope"})
    await call("listDeliveries", 200, params={"status": "dead"})
    await call("listDeliveries", 400, params={"status": "lost"})
    await call("redeliver", 202, path={"id": dead})
    await call("redeliver", 409, path={"id": dead})
    since = {"since": "2020-01-01T00:00:00Z", "status": "delivered"}
    await call("recoverDestination", 202, path={"name": "crm"}, json=since)
    await call("recoverDestination", 400, path={"name": "crm"}, json={"since": 5})
    await call("recoverDestination", 400, path={"name": "crm"}, content=b"[")
    await call("reload", 200)
    harness.reload_issues = (ConfigIssue("bridge.yaml", None, "rules", "at least one rule"),)
    refused = await call("reload", 400)
    assert refused["error"]["issues"][0]["line"] is None

    async def down(*_args: Any, **_kwargs: Any) -> None:
        raise StoreUnavailable("the store is down")

    harness.store.search_notifications = down  # type: ignore[method-assign,assignment]
    await call("listNotifications", 503)
    await harness.client.aclose()

    # Every admin operation of the route table answered, and each is in the document.
    assert {operation_id for operation_id, _ in caller.seen} == {op.operation_id for op in ADMIN}
