"""The intake checks, in their documented order, as one pure function both intake and
``bridge route`` call, so that the dry run cannot drift from what intake answers.

The order, each with its answer when it fails: unknown partner (404 ``unknown_partner``), body
too large (413), not ``application/json`` (415), authentication (401, the verifier's code), not
a JSON object (400 ``invalid_json``), no token at the partner's path (422
``missing_share_token``), a token that is not a string or not a JWT (422
``malformed_share_token``), ``exp`` passed (422 ``share_token_expired``), minted for another
application (422 ``share_token_not_for_this_application``), no rule / vendor data that does
not render (422 ``no_matching_rule`` / ``vendor_data_unresolved``), partner text the store
would keep holding a NUL character (422 ``nul_character``: PostgreSQL cannot store one in a text
column, so neither store is given one), and an id or vendor data longer than the store keeps
(422 ``value_too_long``: ``MAX_ID_CHARS``, ``MAX_VENDOR_DATA_CHARS``). The duplicate check needs
the store and stays with intake.

The verdict is the first failed check. A failed expiry or application check does not stop the
rest, so a dry run still shows the rule an expired token would have taken; any other failure
stops, since what follows it has nothing to read.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import orjson

from bridge import rules, tokens
from bridge.config import Settings
from bridge.errors import RoutingError, TokenError, VerificationError
from bridge.types import Route

__all__ = ["Check", "Result", "Screening", "screen"]

Result = Literal["pass", "fail", "skipped"]

JSON_MEDIA_TYPE: Final = "application/json"
#: The longest event id, token session_id or from_application_id the store keeps: ids, which
#: the store indexes for dedupe and lookups (a PostgreSQL index row holds at most about 2.7 kB).
MAX_ID_CHARS: Final = 256
#: The longest rendered vendor_data: Didit keeps it on the session, the store indexes it.
MAX_VENDOR_DATA_CHARS: Final = 1024


@dataclass(frozen=True, slots=True)
class Check:
    """What one check found; ``code`` and ``status`` are intake's answer when it failed."""

    name: str
    result: Result
    message: str
    code: str | None = None
    status: int | None = None


@dataclass(slots=True)
class Screening:
    """Every check run on one notification, and what they read on the way."""

    partner: str
    checks: list[Check] = field(default_factory=list)
    message_id: str | None = None  # the partner's message id, once authentication passed
    event_id: str | None = None
    payload: Mapping[str, Any] | None = None  # the body, once it is a JSON object
    raw_token: str | None = None
    token: tokens.ShareToken | None = None
    route: Route | None = None

    @property
    def refusal(self) -> Check | None:
        """The first failed check: what intake answers."""
        return next((check for check in self.checks if check.result == "fail"), None)

    def passed(self, name: str, message: str) -> None:
        self.checks.append(Check(name, "pass", message))

    def failed(self, name: str, status: int, code: str, message: str) -> None:
        self.checks.append(Check(name, "fail", message, code, status))

    def skipped(self, name: str, message: str) -> None:
        self.checks.append(Check(name, "skipped", message))


def screen(
    settings: Settings,
    partner: str,
    body: bytes,
    *,
    now: float,
    media_type: str | None = None,
    authenticate: Callable[[], str | None] | None = None,
) -> Screening:
    """Run the intake checks on one notification, in order.

    ``media_type`` is the request's (lowercased, without parameters), and ``authenticate``
    verifies the request and returns the partner's message id (raising ``VerificationError``);
    either one None skips its check, as a dry run without headers must.
    """
    screening = Screening(partner=partner)
    if _checked_envelope(screening, settings, body, media_type, authenticate):
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError:
            screening.failed("JSON object", 400, "invalid_json", "the body is not valid JSON")
            return screening
        if not isinstance(payload, dict):
            screening.failed("JSON object", 400, "invalid_json", "the body must be a JSON object")
            return screening
        screening.passed("JSON object", "the body is a JSON object")
        screening.payload = payload
        _check_content(screening, settings, payload, now)
    return screening


def _checked_envelope(
    screening: Screening,
    settings: Settings,
    body: bytes,
    media_type: str | None,
    authenticate: Callable[[], str | None] | None,
) -> bool:
    """Partner, size, media type and authentication; whether they all let the body through."""
    partner = settings.partners.get(screening.partner)
    if partner is None:
        message = "no partner by that name is configured"
        screening.failed("partner", 404, "unknown_partner", message)
        return False
    screening.passed("partner", f"partner {screening.partner} is configured")
    limit = settings.server.max_body_bytes
    if len(body) > limit:
        screening.failed("body size", 413, "body_too_large", f"the body exceeds {limit} bytes")
        return False
    screening.passed("body size", f"{len(body)} bytes, within {limit}")
    if media_type is None:
        screening.skipped("media type", "a dry run has no headers")
    elif media_type != JSON_MEDIA_TYPE:
        message = "send the body as application/json"
        screening.failed("media type", 415, "unsupported_media_type", message)
        return False
    else:
        screening.passed("media type", JSON_MEDIA_TYPE)
    if authenticate is None:
        screening.skipped("authentication", f"{partner.auth.scheme}: a dry run has no headers")
        return True
    try:
        screening.message_id = authenticate()
    except VerificationError as exc:
        screening.failed("authentication", 401, exc.code, exc.message)
        return False
    screening.passed("authentication", partner.auth.scheme)
    return True


def _check_content(
    screening: Screening, settings: Settings, payload: Mapping[str, Any], now: float
) -> None:
    """The token's checks and the rules, on a body that is a JSON object."""
    fields = settings.partners[screening.partner].fields
    has_event_id, raw_event_id = rules.lookup(payload, fields.event_id)
    screening.event_id = rules.render_value(raw_event_id) if has_event_id else None
    found, raw_token = rules.lookup(payload, fields.share_token)
    if not found or raw_token is None or raw_token == "":
        message = f"no share token at {fields.share_token!r}"
        screening.failed("share token", 422, "missing_share_token", message)
        return
    screening.passed("share token", f"a token at {fields.share_token}")
    if not isinstance(raw_token, str):
        message = "the share token must be a string"
        screening.failed("well-formed JWT", 422, "malformed_share_token", message)
        return
    try:
        token = tokens.read_share_token(raw_token)
    except TokenError as exc:
        screening.failed("well-formed JWT", 422, exc.code, exc.message)
        return
    screening.raw_token, screening.token = raw_token, token
    screening.passed("well-formed JWT", "three base64url segments, JSON header and claims")
    if token.exp is None:
        screening.passed("not expired", "no exp claim: Didit decides at import")
    elif token.is_expired(now):
        screening.failed("not expired", 422, "share_token_expired", "the share token has expired")
    else:
        screening.passed("not expired", "exp is still ahead")
    ours = settings.didit.application_id
    if token.for_application_id is None:
        screening.passed("for this application", "no for_application_id claim")
    elif token.is_for(ours):
        screening.passed("for this application", f"for {ours}, ours")
    else:
        message = "the share token was minted for another Didit application"
        screening.failed(
            "for this application", 422, "share_token_not_for_this_application", message
        )
    try:
        screening.route = rules.route(
            partner=screening.partner,
            payload=payload,
            token=token,
            event_id=screening.event_id,
            rules=settings.rules,
        )
    except RoutingError as exc:
        screening.failed("rule", 422, exc.code, exc.message)
    else:
        screening.passed("rule", f"rule {screening.route.rule} matches")
        _check_text(screening)


def _check_text(screening: Screening) -> None:
    """The partner's text the store keeps: free of NUL characters (PostgreSQL cannot keep one
    in a text column), and each value within its length. Message ids need no check: the
    verifiers keep printable ASCII of at most 256 characters only."""
    token, route = screening.token, screening.route
    kept: dict[str, tuple[str | None, int | None]] = {
        "the event id": (screening.event_id, MAX_ID_CHARS),
        "the share token": (screening.raw_token, None),  # kept sealed, never indexed
        "the token's session_id": (None if token is None else token.session_id, MAX_ID_CHARS),
        "the token's from_application_id": (
            None if token is None else token.from_application_id,
            MAX_ID_CHARS,
        ),
        "vendor_data": (None if route is None else route.vendor_data, MAX_VENDOR_DATA_CHARS),
    }
    with_nul = [name for name, (text, _) in kept.items() if text is not None and "\x00" in text]
    if with_nul:
        message = f"{with_nul[0]} holds a NUL character (\\u0000), which cannot be stored"
        screening.failed("text", 422, "nul_character", message)
        return
    too_long = [
        (name, limit)
        for name, (text, limit) in kept.items()
        if text is not None and limit is not None and len(text) > limit
    ]
    if too_long:
        name, limit = too_long[0]
        message = f"{name} is longer than {limit} characters"
        screening.failed("text", 422, "value_too_long", message)
    else:
        screening.passed("text", "no NUL character and no value too long in what is stored")
