"""Status webhooks: sent to a real sink on 127.0.0.1, verified with the reference's algorithms
implemented here, independently of the sandbox's code."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bridge.sandbox.control import SandboxControl
from tests.support.asgi_server import serve_in_thread

SECRET = "whsk_test_secret_ß"


class Sink:
    def __init__(self) -> None:
        self.received: list[tuple[bytes, dict[str, str]]] = []

    async def hook(self, request: Request) -> Response:
        self.received.append((await request.body(), dict(request.headers)))
        return Response(status_code=200)


@pytest.fixture(name="sink")
def _sink() -> Iterator[tuple[str, Sink]]:
    sink = Sink()
    app = Starlette(routes=[Route("/hook", sink.hook, methods=["POST"])])
    with serve_in_thread(app) as base_url:
        yield f"{base_url}/hook", sink


def _shorten(value: Any) -> Any:
    if isinstance(value, float) and value == int(value):
        return int(value)
    if isinstance(value, dict):
        return {k: _shorten(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shorten(v) for v in value]
    return value


def _reject(constant: str) -> Any:
    raise ValueError(constant)


def v2(raw: bytes, secret: str, *, ascii_only: bool = False, shorten: bool = True) -> str:
    """Reference §3.3: parse, integer floats to ints, sorted compact JSON keeping Unicode."""
    parsed = json.loads(raw, parse_constant=_reject)
    canonical = json.dumps(
        _shorten(parsed) if shorten else parsed,
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=ascii_only,
    )
    return hmac.new(secret.encode(), canonical.encode(), hashlib.sha256).hexdigest()


def _hex(secret: str, message: bytes) -> str:
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def _our_session(
    control: SandboxControl, kind: str = "user"
) -> tuple[dict[str, Any], dict[str, Any]]:
    ours = control.application("ours")
    details = (
        {"first_name": "José", "last_name": "Zoë", "country": "ESP"}
        if kind == "user"
        else {"company_name": "Zoë & Søn ApS", "registration_number": "DK-1", "country": "DNK"}
    )
    session = control.create_session(
        ours["application_id"], kind=kind, status="In Review", vendor_data="josé-1", details=details
    )
    return ours, session


class TestStatusWebhook:
    def test_verifies_with_v2_raw_and_simple(
        self, control: SandboxControl, sink: tuple[str, Sink]
    ) -> None:
        """All three signatures verify; V2 needs Unicode kept and integer floats shortened."""
        url, received = sink
        ours, session = _our_session(control)
        control.update_application(ours["application_id"], webhook_url=url, webhook_secret=SECRET)

        result = control.set_status(session["session_id"], "Approved")

        assert result["webhook"]["response_status"] == 200
        [(raw, headers)] = received.received
        assert "José Zoë".encode() in raw  # raw UTF-8, not \u escapes
        assert b"100.0" in raw  # an integer-valued float, as sent
        assert headers["x-signature-v2"] == v2(raw, SECRET)
        assert headers["x-signature-v2"] != v2(raw, SECRET, ascii_only=True)
        assert headers["x-signature-v2"] != v2(raw, SECRET, shorten=False)
        assert headers["x-signature"] == _hex(SECRET, raw)
        body = json.loads(raw)
        simple = f"{body['timestamp']}:{body['session_id']}:{body['status']}:{body['webhook_type']}"
        assert headers["x-signature-simple"] == _hex(SECRET, simple.encode())
        assert headers["x-timestamp"] == str(body["timestamp"])
        assert abs(int(headers["x-timestamp"]) - time.time()) <= 300
        assert headers["user-agent"].startswith("DiditWebhook/2.0")

    def test_the_envelope_is_flat(self, control: SandboxControl, sink: tuple[str, Sink]) -> None:
        """session_id, status, webhook_type, times, workflow, vendor_data, kind, decision."""
        url, received = sink
        ours, session = _our_session(control)
        control.update_application(ours["application_id"], webhook_url=url)

        control.set_status(session["session_id"], "Declined")

        body = json.loads(received.received[0][0])
        assert body["session_id"] == session["session_id"]
        assert body["status"] == "Declined"
        assert body["webhook_type"] == "status.updated"
        assert isinstance(body["created_at"], int)
        assert isinstance(body["timestamp"], int)
        assert body["workflow_id"] == session["workflow_id"]
        assert body["vendor_data"] == "josé-1"
        assert body["session_kind"] == "user"
        assert body["decision"]["status"] == "Declined"
        assert control.session(session["session_id"])["status"] == "Declined"

    def test_a_kyb_webhook_names_the_business_session(
        self, control: SandboxControl, sink: tuple[str, Sink]
    ) -> None:
        """KYB events add business_session_id and verify the same way."""
        url, received = sink
        ours, session = _our_session(control, kind="business")
        control.update_application(ours["application_id"], webhook_url=url, webhook_secret=SECRET)

        control.set_status(session["session_id"], "Approved")

        raw, headers = received.received[0]
        body = json.loads(raw)
        assert body["session_kind"] == "business"
        assert body["business_session_id"] == session["session_id"]
        assert headers["x-signature-v2"] == v2(raw, SECRET)

    def test_an_unreachable_url_is_recorded(self, control: SandboxControl) -> None:
        """A failed delivery is in the webhook ledger with the error's type."""
        with socket.socket() as closed:
            closed.bind(("127.0.0.1", 0))
            port = closed.getsockname()[1]
        ours, session = _our_session(control)
        control.update_application(
            ours["application_id"], webhook_url=f"http://127.0.0.1:{port}/hook"
        )

        result = control.set_status(session["session_id"], "Approved")

        assert result["webhook"]["response_status"] is None
        assert result["webhook"]["error"] == "ConnectError"
        [delivery] = control.webhooks()
        assert delivery["session_id"] == session["session_id"]

    def test_no_url_no_webhook(self, control: SandboxControl) -> None:
        """An application without a webhook URL only changes the status."""
        _, session = _our_session(control)

        result = control.set_status(session["session_id"], "Approved")

        assert result["webhook"] is None
        assert result["session"]["status"] == "Approved"
        assert control.webhooks() == []
