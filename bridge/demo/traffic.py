"""The partners' side of the demo: sign each planned message and POST it to the bridge."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, MutableMapping, Sequence

import httpx
import orjson

from bridge.demo.plan import Message
from bridge.demo.verdict import Answer
from bridge.sandbox.partner import PartnerSigner

CONCURRENCY = 16
_ATTEMPTS = 3  # a partner resends on 503 or a lost answer, as a real one would
_RESEND_PAUSE_S = 0.2


class Traffic:
    """Sends the plan's messages and keeps each answer in ``answers`` (by message index)."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        bridge_url: str,
        *,
        signers: Mapping[str, PartnerSigner],
        forged_signers: Mapping[str, PartnerSigner],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._client = client
        self._url = bridge_url.rstrip("/")
        self._signers = signers
        self._forged = forged_signers
        self._clock = clock
        self.answers: MutableMapping[int, Answer] = {}
        self.sent = 0

    async def send_all(self, messages: Sequence[Message]) -> None:
        """The first wave concurrently, then the duplicates, whose originals are answered by
        then."""
        gate = asyncio.Semaphore(CONCURRENCY)
        for phase in (1, 2):
            wave = [message for message in messages if message.phase == phase]
            await asyncio.gather(*(self._send_gated(gate, message) for message in wave))

    async def _send_gated(self, gate: asyncio.Semaphore, message: Message) -> None:
        async with gate:
            self.answers[message.index] = await self.send(message)
            self.sent += 1

    async def send(self, message: Message) -> Answer:
        signers = self._forged if message.forged else self._signers
        url = f"{self._url}/v1/partners/{message.partner}/shares"
        answer = Answer(http_status=0, code="not sent", notification_id=None, at=self._clock())
        for attempt in range(_ATTEMPTS):
            if attempt:
                await asyncio.sleep(_RESEND_PAUSE_S)
            headers = signers[message.signer].headers(
                message.body, message_id=message.message_id, now=self._clock()
            )
            try:
                response = await self._client.post(url, content=message.body, headers=headers)
            except httpx.TransportError as exc:
                answer = Answer(
                    http_status=0,
                    code=f"no answer ({type(exc).__name__})",
                    notification_id=None,
                    at=self._clock(),
                )
                continue
            answer = read_answer(response.status_code, response.content, self._clock())
            if response.status_code != 503:
                break
        return answer


def read_answer(status: int, content: bytes, at: float) -> Answer:
    """``{"id", "status"}`` for 200/202, ``{"error": {"code"}}`` otherwise."""
    try:
        body = orjson.loads(content)
    except orjson.JSONDecodeError:
        body = None
    if not isinstance(body, dict):
        return Answer(http_status=status, code="unreadable answer", notification_id=None, at=at)
    error = body.get("error")
    if isinstance(error, dict):
        return Answer(http_status=status, code=str(error.get("code")), notification_id=None, at=at)
    notification_id = body.get("id")
    return Answer(
        http_status=status,
        code=str(body.get("status")),
        notification_id=notification_id if isinstance(notification_id, str) else None,
        at=at,
    )
