"""The demo's traffic: which notifications partners send, and what must become of each one.

Every message carries its expected end state, decided when it is generated: the intake answer
(``accepted``, ``duplicate`` of a named earlier message, or a refusal with its code) and, for an
accepted one, the outcome the bridge must record. The demo passes only if every message ends so.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

import orjson

from bridge.types import NotificationStatus, SessionKind

PARTNERS: tuple[str, ...] = ("acme", "globex", "initech")
UNKNOWN_PARTNER = "umbrella"
MIN_COUNT = 40

#: Refusals and rejections sent in every run, whatever the count.
_FIXED = {"expired": 3, "foreign": 3, "unknown_partner": 2, "bad_signature": 3, "malformed": 2}
_SOURCE_GONE = 2
_REPLAY_SHARE, _RESENT_SHARE = 0.08, 0.04  # of the count
_KYB_SHARE = 1 / 3  # of the originals


class Scenario(StrEnum):
    KYC = "kyc"
    KYB = "kyb"
    SOURCE_GONE = "source session deleted"
    REPLAY = "exact replay"
    RESENT = "resent share (new message)"
    EXPIRED = "expired token"
    FOREIGN = "token for another app"
    UNKNOWN_PARTNER = "unknown partner"
    BAD_SIGNATURE = "bad signature"
    MALFORMED = "malformed token"


@dataclass(frozen=True, slots=True, kw_only=True)
class Expected:
    """What must become of a message."""

    http_status: int
    answer: str  # "accepted", "duplicate" or the refusal's error code
    outcome: NotificationStatus | None = None  # for an accepted message: its final status
    reason: str | None = None  # the outcome's reason code, when it has one
    duplicate_of: int | None = None  # a duplicate answers this message's notification id

    def describe(self) -> str:
        if self.outcome is not None:
            reason = f" ({self.reason})" if self.reason else ""
            return f"{self.http_status} {self.answer}, then {self.outcome.value}{reason}"
        if self.duplicate_of is not None:
            return f"{self.http_status} duplicate of message #{self.duplicate_of}"
        return f"{self.http_status} {self.answer}"


ACCEPTED_IMPORTED = Expected(
    http_status=202, answer="accepted", outcome=NotificationStatus.IMPORTED
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Message:
    """One notification a partner sends. ``signer`` names whose keys sign it (for an unknown
    partner, a known partner's); ``forged`` signs it with a key nobody configured."""

    index: int
    scenario: Scenario
    partner: str
    signer: str
    body: bytes = field(repr=False)
    message_id: str
    expected: Expected
    forged: bool = False

    @property
    def phase(self) -> int:
        """Duplicates go in a second wave, once their originals have been answered."""
        return 2 if self.expected.duplicate_of is not None else 1


@dataclass(frozen=True, slots=True)
class Mix:
    """How many messages of each kind a run sends."""

    originals: Mapping[tuple[str, SessionKind], int]
    source_gone: int
    replays: int
    resent: int
    expired: int
    foreign: int
    unknown_partner: int
    bad_signature: int
    malformed: int

    @property
    def total(self) -> int:
        return sum(self.originals.values()) + sum(
            (
                self.source_gone,
                self.replays,
                self.resent,
                self.expired,
                self.foreign,
                self.unknown_partner,
                self.bad_signature,
                self.malformed,
            )
        )


def mix_for(count: int) -> Mix:
    """The mix for ``count`` messages (at least ``MIN_COUNT``): mostly valid KYC and KYB
    shares spread over the partners, some duplicates, and a fixed set of refusals."""
    if count < MIN_COUNT:
        raise ValueError(f"send at least {MIN_COUNT} notifications")
    replays, resent = round(count * _REPLAY_SHARE), round(count * _RESENT_SHARE)
    originals_total = count - replays - resent - _SOURCE_GONE - sum(_FIXED.values())
    originals: dict[tuple[str, SessionKind], int] = {}
    for position, partner in enumerate(PARTNERS):
        share = originals_total // len(PARTNERS) + (
            1 if position < originals_total % len(PARTNERS) else 0
        )
        kyb = round(share * _KYB_SHARE)
        originals[(partner, SessionKind.USER)] = share - kyb
        originals[(partner, SessionKind.BUSINESS)] = kyb
    return Mix(
        originals=originals, source_gone=_SOURCE_GONE, replays=replays, resent=resent, **_FIXED
    )


@dataclass(frozen=True, slots=True)
class Material:
    """Share tokens minted in the sandbox for a mix: valid ones per (partner, kind), ones whose
    source session was deleted since (per partner), expired ones, and ones for another app."""

    valid: Mapping[tuple[str, SessionKind], Sequence[str]]
    source_gone: Sequence[tuple[str, str]]  # (partner, token)
    expired: Sequence[str]
    foreign: Sequence[str]


def build_plan(mix: Mix, material: Material, rng: random.Random) -> list[Message]:
    """Every message of the run, each with its expected end state; indexes are 0..n-1 in the
    order they should be sent (originals and refusals shuffled, then the duplicates)."""
    first: list[_Draft] = []
    for (partner, kind), tokens in material.valid.items():
        scenario = Scenario.KYB if kind is SessionKind.BUSINESS else Scenario.KYC
        first += [_Draft(scenario, partner, partner, token, ACCEPTED_IMPORTED) for token in tokens]
    originals = list(first)
    gone = Expected(
        http_status=202,
        answer="accepted",
        outcome=NotificationStatus.REJECTED,
        reason="source_session_not_found",
    )
    first += [_Draft(Scenario.SOURCE_GONE, p, p, token, gone) for p, token in material.source_gone]
    first += [
        _refusal(Scenario.EXPIRED, rng, token, 422, "share_token_expired")
        for token in material.expired
    ]
    first += [
        _refusal(Scenario.FOREIGN, rng, token, 422, "share_token_not_for_this_application")
        for token in material.foreign
    ]
    first += [
        _refusal(Scenario.MALFORMED, rng, "not-a-share-token", 422, "malformed_share_token")
        for _ in range(mix.malformed)
    ]
    for draft in rng.sample(originals, mix.unknown_partner):
        refused = Expected(http_status=404, answer="unknown_partner")
        first.append(
            _Draft(Scenario.UNKNOWN_PARTNER, UNKNOWN_PARTNER, draft.signer, draft.token, refused)
        )
    for draft in rng.sample(originals, mix.bad_signature):
        refused = Expected(http_status=401, answer="invalid_signature")
        first.append(
            _Draft(Scenario.BAD_SIGNATURE, draft.partner, draft.signer, draft.token, refused)
        )
    rng.shuffle(first)
    messages = [draft.message(index) for index, draft in enumerate(first)]
    imported = [m for m in messages if m.expected == ACCEPTED_IMPORTED]
    second = [
        _replay(original) for original in rng.sample(imported, min(mix.replays, len(imported)))
    ]
    second += [
        _resent(original, rng) for original in rng.sample(imported, min(mix.resent, len(imported)))
    ]
    rng.shuffle(second)
    return messages + [
        draft.message(len(messages) + offset, body=body, message_id=message_id)
        for offset, (draft, body, message_id) in enumerate(second)
    ]


@dataclass(frozen=True, slots=True)
class _Draft:
    scenario: Scenario
    partner: str
    signer: str
    token: str = field(repr=False)
    expected: Expected
    customer: str = ""

    def message(
        self, index: int, *, body: bytes | None = None, message_id: str | None = None
    ) -> Message:
        customer = self.customer or f"cust-{index:05d}"
        if body is None:
            region = ("EU", "UK", "US")[index % 3]
            payload = {
                "share_token": self.token,
                "event_id": f"{self.signer}-evt-{index:05d}",
                "customer": {"id": customer},
                "region": region,
            }
            body = orjson.dumps(payload)
        return Message(
            index=index,
            scenario=self.scenario,
            partner=self.partner,
            signer=self.signer,
            body=body,
            message_id=message_id or f"msg_{self.signer}_{index:05d}",
            expected=self.expected,
            forged=self.scenario is Scenario.BAD_SIGNATURE,
        )


def _refusal(scenario: Scenario, rng: random.Random, token: str, status: int, code: str) -> _Draft:
    partner = rng.choice(PARTNERS)
    return _Draft(scenario, partner, partner, token, Expected(http_status=status, answer=code))


def _replay(original: Message) -> tuple[_Draft, bytes, str]:
    """The same bytes under the same message id: a partner retrying a message it lost."""
    expected = Expected(http_status=200, answer="duplicate", duplicate_of=original.index)
    draft = _Draft(Scenario.REPLAY, original.partner, original.signer, "", expected)
    return draft, original.body, original.message_id


def _resent(original: Message, rng: random.Random) -> tuple[_Draft, bytes, str]:
    """The same share token in a new message: caught by the business key, not the message id."""
    payload = orjson.loads(original.body)
    payload["event_id"] = f"{original.signer}-resent-{rng.randrange(10**9):09d}"
    expected = Expected(http_status=200, answer="duplicate", duplicate_of=original.index)
    draft = _Draft(Scenario.RESENT, original.partner, original.signer, "", expected)
    return draft, orjson.dumps(payload), f"msg_{original.signer}_resent_{original.index:05d}"
