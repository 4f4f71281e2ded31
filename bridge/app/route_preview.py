"""What the bridge would do with one notification, calling nothing upstream (``bridge route``
and the console's route preview).

Runs the intake checks that need no network and no store, in the order intake runs them, then
routes with the configured rules. The verdict is the first check that fails; the later checks
still run when they can, so an expired token still shows the rule it would have taken. The share
token is never shown: only the facts read from it and its business key.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import orjson

from bridge import config, rules, tokens
from bridge.errors import RoutingError, TokenError
from bridge.types import Route

Result = Literal["pass", "fail", "skipped"]

HTTP_STATUS = {
    "unknown_partner": 404,
    "body_too_large": 413,
    "invalid_json": 400,
}
"""The intake's answer per refusal code; every other refusal here is a 422."""


@dataclass(frozen=True, slots=True)
class Check:
    """One intake check, named as DESIGN.md section 4 lists it."""

    name: str
    result: Result
    message: str
    code: str | None = None  # the refusal code, when it failed


@dataclass(slots=True)
class DryRun:
    """Everything ``bridge route`` found out about one notification."""

    partner: str
    now: float
    checks: list[Check] = field(default_factory=list)
    event_id: str | None = None
    token: tokens.ShareToken | None = None
    route: Route | None = None
    application_id: str | None = None

    @property
    def refusal(self) -> Check | None:
        """The first failed check: what intake would answer."""
        return next((check for check in self.checks if check.result == "fail"), None)

    def passed(self, name: str, message: str) -> None:
        self.checks.append(Check(name, "pass", message))

    def failed(self, name: str, code: str, message: str) -> None:
        self.checks.append(Check(name, "fail", message, code))

    def skipped(self, name: str, message: str) -> None:
        self.checks.append(Check(name, "skipped", message))


def evaluate(settings: config.Settings, *, partner: str, body: bytes, now: float) -> DryRun:
    """Run the local intake checks in DESIGN.md order, then the rules."""
    dry_run = DryRun(partner=partner, now=now, application_id=str(settings.didit.application_id))
    partner_settings = settings.partners.get(partner)
    if partner_settings is None:
        dry_run.failed("partner", "unknown_partner", f"no partner named {_shown(partner)}")
        return dry_run
    dry_run.passed("partner", f"partner {partner} is configured")
    limit = settings.server.max_body_bytes
    if len(body) > limit:
        dry_run.failed("body size", "body_too_large", f"{len(body)} bytes, over {limit}")
        return dry_run
    dry_run.passed("body size", f"{len(body)} bytes, within {limit}")
    dry_run.skipped("authentication", f"{partner_settings.auth.scheme}: a dry run has no headers")
    payload = _json_object(body)
    if payload is None:
        dry_run.failed("JSON object", "invalid_json", "the body is not a JSON object")
        return dry_run
    dry_run.passed("JSON object", "the body is a JSON object")
    fields = partner_settings.fields
    dry_run.event_id = rules.render_value(rules.lookup(payload, fields.event_id)[1])
    found, raw_token = rules.lookup(payload, fields.share_token)
    if not found or raw_token is None or raw_token == "":
        dry_run.failed("share token", "missing_share_token", f"no token at {fields.share_token}")
        return dry_run
    dry_run.passed("share token", f"a token at {fields.share_token}")
    try:
        dry_run.token = share = tokens.read_share_token(raw_token)
    except TokenError as exc:
        dry_run.failed("well-formed JWT", exc.code, exc.message)
        return dry_run
    dry_run.passed("well-formed JWT", "three base64url segments, JSON header and claims")
    _check_token(dry_run, share, settings)
    try:
        dry_run.route = rules.route(
            partner=partner,
            payload=payload,
            token=share,
            event_id=dry_run.event_id,
            rules=settings.rules,
        )
    except RoutingError as exc:
        dry_run.failed("rule", exc.code, exc.message)
    else:
        dry_run.passed("rule", f"rule {dry_run.route.rule} matches")
    dry_run.skipped("duplicate", "needs the store: a dry run does not look")
    return dry_run


def _check_token(dry_run: DryRun, share: tokens.ShareToken, settings: config.Settings) -> None:
    if share.exp is None:
        dry_run.passed("not expired", "no exp claim: Didit decides at import")
    elif share.is_expired(dry_run.now):
        ago = _duration(dry_run.now - share.exp)
        message = f"the token expired at {_iso(share.exp)} ({ago} ago; 30 s leeway)"
        dry_run.failed("not expired", "share_token_expired", message)
    else:
        dry_run.passed("not expired", f"expires at {_iso(share.exp)}")
    ours = settings.didit.application_id
    if share.for_application_id is None:
        dry_run.passed("for this application", "no for_application_id claim")
    elif share.is_for(ours):
        dry_run.passed("for this application", f"for {ours}, ours")
    else:
        message = f"the token is for application {_shown(share.for_application_id)}, not {ours}"
        dry_run.failed("for this application", "share_token_not_for_this_application", message)


def _json_object(body: bytes) -> Mapping[str, Any] | None:
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    return document if isinstance(document, dict) else None


def render_json(dry_run: DryRun) -> str:
    """The facts as one JSON object: verdict, code, message, route, token and the checks."""
    refusal = dry_run.refusal
    document = {
        "verdict": "accept" if refusal is None else "refuse",
        "code": None if refusal is None else refusal.code,
        "message": None if refusal is None else refusal.message,
        "http_status": 202 if refusal is None else HTTP_STATUS.get(refusal.code or "", 422),
        "partner": dry_run.partner,
        "event_id": dry_run.event_id,
        "route": None if dry_run.route is None else _route_facts(dry_run.route),
        "token": None if dry_run.token is None else _token_facts(dry_run.token, dry_run),
        "checks": [
            {"check": c.name, "result": c.result, "code": c.code, "message": c.message}
            for c in dry_run.checks
        ],
    }
    return json.dumps(document, indent=2, ensure_ascii=False)


def _route_facts(route: Route) -> dict[str, Any]:
    return {
        "rule": route.rule,
        "workflow_id": route.workflow_id,
        "vendor_data": route.vendor_data,
        "trust_review": route.trust_review,
        "destinations": list(route.destinations),
    }


def _token_facts(share: tokens.ShareToken, dry_run: DryRun) -> dict[str, Any]:
    return {
        "session_kind": share.session_kind.value,
        "session_kind_claim": share.session_kind_claim,
        "session_id": share.session_id,
        "from_application_id": share.from_application_id,
        "for_application_id": share.for_application_id,
        "for_this_application": (
            None if dry_run.application_id is None else share.is_for(dry_run.application_id)
        ),
        "iat": share.iat,
        "issued_at": None if share.iat is None else _iso(share.iat),
        "exp": share.exp,
        "expires_at": None if share.exp is None else _iso(share.exp),
        "expires_in_s": None if share.exp is None else round(share.exp - dry_run.now, 3),
        "expired": share.is_expired(dry_run.now),
        "business_key": share.business_key,
        "sha256": share.sha256,
    }


def render_text(dry_run: DryRun) -> str:
    """The facts for a person: token, route, each check, and the verdict on the last line."""
    lines = [f"partner       {_shown(dry_run.partner)}"]
    if dry_run.event_id is not None:
        lines.append(f"event id      {_shown(dry_run.event_id)}")
    if dry_run.token is not None:
        lines += ["", "token", *_token_lines(dry_run.token, dry_run)]
    if dry_run.route is not None:
        route = dry_run.route
        lines += [
            "",
            "route",
            f"  rule          {route.rule}",
            f"  workflow_id   {route.workflow_id}",
            f"  vendor_data   {_shown(route.vendor_data)}",
            f"  trust_review  {'true' if route.trust_review else 'false'}",
            f"  destinations  {', '.join(route.destinations) or '(none)'}",
        ]
    lines += ["", "checks"]
    marks = {"pass": "ok  ", "fail": "FAIL", "skipped": "skip"}
    lines += [f"  {marks[c.result]}  {c.name}: {_shown(c.message)}" for c in dry_run.checks]
    refusal = dry_run.refusal
    if refusal is None:
        verdict = "would accept (202)"
    else:
        status = HTTP_STATUS.get(refusal.code or "", 422)
        verdict = f"would refuse ({status} {refusal.code}): {_shown(refusal.message)}"
    lines += ["", f"verdict       {verdict}"]
    return "\n".join(lines)


def _token_lines(share: tokens.ShareToken, dry_run: DryRun) -> list[str]:
    claim = share.session_kind_claim
    kind = share.session_kind.value
    kind += " (no session_kind claim)" if claim is None else f" (claim {_shown(json.dumps(claim))})"
    lines = [
        f"  session kind  {kind}",
        f"  source        application {_optional(share.from_application_id)}, "
        f"session {_optional(share.session_id)}",
        f"  for           application {_optional(share.for_application_id)}"
        + _whose(share, dry_run),
    ]
    if share.iat is not None:
        lines.append(f"  issued at     {_iso(share.iat)}")
    if share.exp is None and "exp" in share.claims:
        lines.append("  expires       (an exp claim that is no time: ignored)")
    elif share.exp is None:
        lines.append("  expires       (no exp claim)")
    else:
        left = share.exp - dry_run.now
        when = f"in {_duration(left)}" if left >= 0 else f"{_duration(-left)} ago"
        lines.append(f"  expires at    {_iso(share.exp)} ({when})")
    lines.append(f"  business key  {_shown(share.business_key)}")
    return lines


def _whose(share: tokens.ShareToken, dry_run: DryRun) -> str:
    if share.for_application_id is None or dry_run.application_id is None:
        return ""
    return " (ours)" if share.is_for(dry_run.application_id) else " (NOT ours)"


def _optional(value: str | None) -> str:
    return "(absent)" if value is None else _shown(value)


def _shown(text: str) -> str:
    # Partner-supplied text may hold terminal escapes: print anything unprintable escaped.
    return text if text.isprintable() else repr(text)[1:-1]


def _iso(epoch: float) -> str:
    try:
        return datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (OverflowError, ValueError, OSError):
        return f"{epoch:.0f} (out of the calendar's range)"


def _duration(seconds: float) -> str:
    whole = int(seconds)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    if minutes:
        return f"{minutes}m {secs}s"
    return f"{secs}s"
