"""``share-bridge check-config --online``: what can be checked against the world without side
effects. One authenticated read proves the API key; a signed ``share.ping`` to each destination
proves its URL and that it accepts our signature. The rest is reported as not checked."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from bridge import __version__, didit, events
from bridge.config import Destination, Settings
from bridge.delivery import Sender, Verdict
from bridge.store.ids import new_id


class Result(StrEnum):
    OK = "ok"
    FAILED = "FAILED"
    UNCHECKED = "unchecked"


@dataclass(frozen=True, slots=True)
class Finding:
    result: Result
    subject: str  # a key path of the configuration
    detail: str

    def __str__(self) -> str:
        return f"  {self.result.value:<9} {self.subject}: {self.detail}"


def check_online(settings: Settings) -> list[Finding]:
    """Every finding, failures included; never raises for what the network does."""
    return asyncio.run(_check(settings))


async def _check(settings: Settings) -> list[Finding]:
    pings = [_ping(name, destination) for name, destination in settings.destinations.items()]
    found = await asyncio.gather(_api_key(settings), *pings)
    return [*found, *_unchecked(settings)]


async def _api_key(settings: Settings) -> Finding:
    subject = "didit.api_key"
    workflow = str(settings.rules[0].then.workflow_id)
    async with didit.DiditClient(
        settings.didit.base_url,
        settings.didit.api_key.get_secret_value(),
        timeout_s=settings.didit.timeout_s,
        user_agent=f"share-bridge/{__version__} check-config",
    ) as client:
        try:
            await client.list_sessions(
                vendor_data="share-bridge check-config",
                workflow_id=workflow,
                session_kind="all",
                date_from=datetime.now(UTC),
                limit=1,
                max_pages=1,
            )
        except didit.DiditError as exc:
            refused = exc.code in (
                didit.AnswerCode.UPSTREAM_AUTH,
                didit.AnswerCode.UPSTREAM_FORBIDDEN,
            )
            why = "Didit refused the key" if refused else exc.code
            return Finding(Result.FAILED, subject, f"GET {didit.SESSIONS_PATH}: {why} ({exc})")
    return Finding(Result.OK, subject, f"an authenticated GET {didit.SESSIONS_PATH} answered 200")


async def _ping(name: str, destination: Destination) -> Finding:
    subject = f"destinations.{name}"
    now = time.time()
    event_id = new_id("evt", now)
    body = events.render_ping(event_id=event_id, created_at=now, destination=name)
    async with Sender() as sender:
        result = await sender.send(name, destination, message_id=event_id, body=body)
    if result.verdict is Verdict.DELIVERED:
        detail = f"a signed {events.PING} answered {result.http_status} in {result.latency_ms} ms"
        return Finding(Result.OK, subject, detail)
    return Finding(Result.FAILED, subject, f"a signed {events.PING}: {result.error}")


def _unchecked(settings: Settings) -> list[Finding]:
    """What no read can prove: it shows on the first real notification."""
    found = [
        Finding(
            Result.UNCHECKED,
            "didit.application_id",
            "Didit has no read for it; a wrong one refuses every token at intake",
        )
    ]
    for index, rule in enumerate(settings.rules):
        found.append(
            Finding(
                Result.UNCHECKED,
                f"rules[{index}].then.workflow_id",
                f"(rule {rule.name!r}) only an import proves a workflow exists; a wrong one "
                "raises the workflow_not_found alert",
            )
        )
    for name in settings.partners:
        found.append(
            Finding(
                Result.UNCHECKED,
                f"partners.{name}",
                f"only {name} holds its side of the secret; test it with share-bridge sign",
            )
        )
    return found
