"""In-process intake: ``create_app`` over a real SQLite store, driven by httpx's ASGI transport.

The four partners and two rules are those of ``tests/support/bridge_process.py`` (one partner
per authentication scheme); the Didit base URL is never called here. Time is a ``FakeClock``
shared by intake, the store and the signatures.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import jwt
import orjson
import pytest
import yaml

from bridge import auth, config
from bridge.app import Health, Intake, LiveConfig, create_app
from bridge.observability import Metrics
from bridge.store import Store, open_store
from tests.store.helpers import START, FakeClock
from tests.support.bridge_process import SandboxTarget, make_config

OURS = "6a0f7d7e-1f1a-4c55-9a43-0d7e2f1b0001"
PARTNER_APP = "6a0f7d7e-1f1a-4c55-9a43-0d7e2f1b0002"
OTHER_APP = "6a0f7d7e-1f1a-4c55-9a43-0d7e2f1b0003"
KYC_WORKFLOW = "6a0f7d7e-1f1a-4c55-9a43-0d7e2f1b00c1"
KYB_WORKFLOW = "6a0f7d7e-1f1a-4c55-9a43-0d7e2f1b00b1"
MAX_BODY = 2_048
TARGET = SandboxTarget(
    base_url="http://127.0.0.1:9",
    application_id=OURS,
    api_key="sbx_unused",
    kyc_workflow_id=KYC_WORKFLOW,
    kyb_workflow_id=KYB_WORKFLOW,
    webhook_secret="whsk_unused",
)


def share_token(
    *,
    session_id: str | None = None,
    exp: float | None = START + 3_600,
    session_kind: str | None = "user",
    for_application_id: str | None = OURS,
    from_application_id: str | None = PARTNER_APP,
    key: str = "not-didit-s-key-but-intake-never-verifies",
) -> str:
    """A JWT shaped like Didit's share tokens (intake reads it, never verifies it)."""
    claims: dict[str, Any] = {"session_id": session_id or str(uuid.uuid4()), "iat": START - 60}
    optional = {
        "exp": None if exp is None else int(exp),
        "session_kind": session_kind,
        "for_application_id": for_application_id,
        "from_application_id": from_application_id,
    }
    claims.update({name: value for name, value in optional.items() if value is not None})
    return jwt.encode(claims, key, algorithm="HS256")


def load_settings(**options: Any) -> config.Settings:
    document = make_config(
        TARGET, db_path=Path("/nonexistent/unused.db"), port=0, max_body_bytes=MAX_BODY, **options
    )
    return config.load_text(yaml.safe_dump(document))


class Harness:
    """One intake app over one store, and the partner's side of the conversation."""

    def __init__(
        self,
        settings: config.Settings,
        store: Store,
        clock: FakeClock,
        *,
        metrics: Metrics | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.clock = clock
        self.accepted_signals = 0
        self.draining = False
        live = LiveConfig(settings=settings, verifiers=auth.verifiers_for(settings))
        intake = Intake(
            live=lambda: live,
            store=store,
            on_accepted=self._signal,
            clock=clock,
            draining=lambda: self.draining,
            metrics=metrics,
        )
        self.app = create_app(
            intake=intake, health=Health(store=store, workers_running=lambda: True)
        )
        self.client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app), base_url="http://bridge.test"
        )
        self._numbers = 0

    def _signal(self) -> None:
        self.accepted_signals += 1

    def sign(
        self, partner: str, body: bytes, *, message_id: str | None = None, at: float | None = None
    ) -> dict[str, str]:
        if message_id is None:
            self._numbers += 1
            message_id = f"msg-{self._numbers}"
        return auth.partner_headers(
            self.settings.partners[partner].auth,
            body,
            now=self.clock.now if at is None else at,
            message_id=message_id,
        )

    async def post(
        self,
        partner: str,
        payload: Mapping[str, Any] | bytes,
        *,
        message_id: str | None = None,
        headers: Mapping[str, str] | None = None,
        signed: bool = True,
        at: float | None = None,
    ) -> httpx.Response:
        """POST ``payload`` as ``partner`` (signed unless ``signed=False``); ``headers`` win."""
        body = payload if isinstance(payload, bytes) else orjson.dumps(payload)
        sent = httpx.Headers({"content-type": "application/json"})
        if signed and partner in self.settings.partners:
            sent = httpx.Headers(self.sign(partner, body, message_id=message_id, at=at))
        for name, value in (headers or {}).items():
            sent[name] = value  # replaces a signed header of the same name, in any letter case
        return await self.client.post(f"/v1/partners/{partner}/shares", content=body, headers=sent)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(name="clock")
def _clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture(name="db_path")
def _db_path(tmp_path: Path) -> Path:
    return tmp_path / "bridge.db"


@pytest.fixture(name="store")
async def _store(db_path: Path, clock: FakeClock) -> AsyncIterator[Store]:
    store = open_store(f"sqlite:///{db_path}", clock=clock)
    yield store
    await store.close()


@pytest.fixture(name="harness")
async def _harness(store: Store, clock: FakeClock) -> AsyncIterator[Harness]:
    harness = Harness(load_settings(), store, clock)
    yield harness
    await harness.client.aclose()


def error_code(response: httpx.Response) -> str:
    """The stable code of an error answer (asserting the one error-body shape on the way)."""
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message"}
    code: str = body["error"]["code"]
    return code
