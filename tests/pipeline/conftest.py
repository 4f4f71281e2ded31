"""The import handler on a real SQLite store, a fake clock, and a scripted Didit (MockTransport)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from bridge import didit
from bridge.pacing import Pacer
from bridge.pipeline import ImportHandler
from bridge.store import Job, JobKind, NewNotification, Store, open_store
from bridge.types import Route, SessionKind
from tests.intake.conftest import load_settings
from tests.store.helpers import START, FakeClock

WORKFLOW = "6a0f7d7e-1f1a-4c55-9a43-0d7e2f1b00c1"
ROUTE = Route(
    rule="kyc",
    workflow_id=WORKFLOW,
    vendor_data="acme:c-1",
    trust_review=False,
    destinations=("crm", "audit", "gone"),
)
DESTINATIONS = {
    "crm": {"url": "http://127.0.0.1:9/crm", "secrets": ["whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQ="]},
    "audit": {
        "url": "http://127.0.0.1:9/audit",
        "secrets": ["whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQ="],
        "events": ["share.failed"],
    },
}
Reply = httpx.Response | Exception | Callable[[httpx.Request], Awaitable[httpx.Response]]


def imported_body(session_id: str = "new-1", number: int = 43100) -> dict[str, Any]:
    return {"session_id": session_id, "session_number": number, "status": "In Review"}


def session_row(session_id: str, *, at: float, source: str | None = None) -> dict[str, Any]:
    row: dict[str, Any] = {
        "session_id": session_id,
        "session_number": 43200,
        "status": "In Review",
        "vendor_data": ROUTE.vendor_data,
        "workflow_id": WORKFLOW,
        "created_at": datetime.fromtimestamp(at, UTC).isoformat(),
    }
    if source is not None:
        row["shared_from_session"] = source
    return row


class FakeDidit:
    """Answers import and list calls from scripts; a script runs out into a 500."""

    def __init__(self) -> None:
        self.imports: list[Reply] = []
        self.lists: list[Reply] = []
        self.calls: list[httpx.Request] = []

    @property
    def import_calls(self) -> int:
        return sum(1 for r in self.calls if r.url.path.endswith("/import-shared/"))

    @property
    def list_calls(self) -> int:
        return sum(1 for r in self.calls if r.url.path.endswith("/sessions/"))

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.calls.append(request)
        script = self.imports if request.url.path.endswith("/import-shared/") else self.lists
        reply: Reply = script.pop(0) if script else httpx.Response(500, json={"detail": "?"})
        if isinstance(reply, Exception):
            raise reply
        if isinstance(reply, httpx.Response):
            return reply
        return await reply(request)


class Rig:
    """Everything one handler run needs, and ways to make jobs for it."""

    def __init__(self, store: Store, clock: FakeClock, fake: FakeDidit, pacer: Pacer) -> None:
        self.store, self.clock, self.fake, self.pacer = store, clock, fake, pacer
        self.client = didit.DiditClient(
            "http://didit.test",
            "sbx_key",
            timeout_s=1.0,
            transport=httpx.MockTransport(fake),
            retry_wait_s=0.0,
        )
        self.settings = load_settings(destinations=DESTINATIONS)
        self.handler = ImportHandler(
            store=store,
            client=self.client,
            pacer=pacer,
            settings=lambda: self.settings,
            clock=clock,
        )

    async def accept(
        self,
        *,
        deadline: float | None = START + 3_600,
        token: str = "h.c.s",  # noqa: S107 - a fake token
        key: str = "k",
    ) -> str:
        accepted = await self.store.accept(
            NewNotification(
                partner="acme",
                partner_event_id="ev",
                message_id=None,
                business_key=key,
                token=token,
                token_sha256=f"sha-{key}",
                session_kind=SessionKind.USER,
                source_application_id="partner-app",
                source_session_id="src-1",
                deadline=deadline,
                route=ROUTE,
            )
        )
        return accepted.id

    async def claim(self, owner: str = "w1") -> Job:
        [job] = await self.store.claim(JobKind.IMPORT, owner=owner, lease_s=30)
        return job

    async def steal(self, job: Job) -> Job:
        """Let ``job``'s lease expire and another worker claim it."""
        self.clock.now = max(self.clock.now, job.lease_expires_at) + 1
        return await self.claim(owner="thief")


def skip_ahead(clock: FakeClock) -> Callable[[float], Awaitable[None]]:
    """A pacer ``sleep`` that moves the fake clock instead of waiting."""

    async def sleep(seconds: float) -> None:
        clock.advance(seconds)

    return sleep


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(name="clock")
def _clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture(name="rig")
async def _rig(tmp_path: Path, clock: FakeClock) -> AsyncIterator[Rig]:
    store = open_store(f"sqlite:///{tmp_path}/bridge.db", clock=clock)
    rig = Rig(store, clock, FakeDidit(), Pacer(600, clock=clock, sleep=skip_ahead(clock)))
    yield rig
    await rig.client.aclose()
    await store.close()
