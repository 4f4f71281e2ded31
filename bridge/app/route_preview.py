"""What the bridge would do with one notification, calling nothing upstream (``bridge route``
and the console's route preview).

Runs intake's own checks (``bridge.app.intake_checks.screen``) but those that need headers or
the store, so its verdict is the answer intake would give the same body. The share token is
never shown: only the facts read from it and its business key. Each rule tried is shown with
each of its conditions and whether it held (``bridge.rules.explain``, the matching itself), so a
miss says why.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bridge import config, rules, tokens
from bridge.app.dry_run_token import with_test_token
from bridge.app.intake_checks import Check, Screening, screen
from bridge.times import iso_utc_or_none
from bridge.types import Route

__all__ = ["DUPLICATE_CHECK", "Check", "DryRun", "evaluate", "render_json", "render_text"]


CLAIMS_NOTICE = (
    "  TEST TOKEN    built from --claims, signed with a throwaway key: not from Didit, never sent"
)

DUPLICATE_CHECK = Check("duplicate", "skipped", "needs the store: a dry run does not look")


@dataclass(frozen=True, slots=True)
class DryRun:
    """Everything ``bridge route`` found out about one notification."""

    screening: Screening
    now: float
    application_id: str
    trials: tuple[rules.RuleTrial, ...] = ()
    """The rules tried, up to the first that matched; empty when no token got that far."""
    test_token: bool = False
    """The token was built from ``--claims`` and signed with a throwaway key."""

    @property
    def checks(self) -> list[Check]:
        return [*self.screening.checks, DUPLICATE_CHECK]

    @property
    def refusal(self) -> Check | None:
        """The first failed check: what intake would answer."""
        return self.screening.refusal


def evaluate(
    settings: config.Settings,
    *,
    partner: str,
    body: bytes,
    now: float,
    claims: Mapping[str, Any] | None = None,
) -> DryRun:
    """Run intake's checks that need no headers and no store, then the rules. With ``claims``,
    the body's share token is a TEST token made of them (``bridge.app.dry_run_token``)."""
    configured = settings.partners.get(partner)
    test_token = claims is not None and configured is not None
    if claims is not None and configured is not None:
        body = with_test_token(body, configured.fields.share_token, claims)
    screening = screen(settings, partner, body, now=now)
    trials: tuple[rules.RuleTrial, ...] = ()
    if screening.token is not None and screening.payload is not None:
        trials = rules.explain(
            partner=partner, payload=screening.payload, token=screening.token, rules=settings.rules
        )
    return DryRun(screening, now, str(settings.didit.application_id), trials, test_token)


def render_json(dry_run: DryRun) -> str:
    """The facts as one JSON object: verdict, code, message, route, token and the checks."""
    refusal, screening = dry_run.refusal, dry_run.screening
    document = {
        "verdict": "accept" if refusal is None else "refuse",
        "code": None if refusal is None else refusal.code,
        "message": None if refusal is None else refusal.message,
        "http_status": 202 if refusal is None else refusal.status,
        "partner": screening.partner,
        "event_id": screening.event_id,
        "route": None if screening.route is None else _route_facts(screening.route),
        "test_token": dry_run.test_token,
        "token": None if screening.token is None else _token_facts(screening.token, dry_run),
        "rules": [_trial_facts(trial) for trial in dry_run.trials],
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


def _trial_facts(trial: rules.RuleTrial) -> dict[str, Any]:
    return {
        "rule": trial.rule,
        "matched": trial.matched,
        "explanation": str(trial),
        "conditions": [
            {"condition": c.subject, "held": c.held, "explanation": str(c)}
            for c in trial.conditions
        ],
    }


def _token_facts(share: tokens.ShareToken, dry_run: DryRun) -> dict[str, Any]:
    return {
        "session_kind": share.session_kind.value,
        "session_kind_claim": share.session_kind_claim,
        "session_id": share.session_id,
        "from_application_id": share.from_application_id,
        "for_application_id": share.for_application_id,
        "for_this_application": share.is_for(dry_run.application_id),
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
    screening = dry_run.screening
    lines = [f"partner       {_shown(screening.partner)}"]
    if screening.event_id is not None:
        lines.append(f"event id      {_shown(screening.event_id)}")
    if screening.token is not None:
        lines += ["", "token", *_token_lines(screening.token, dry_run)]
    if dry_run.trials:
        lines += ["", "rules (first match wins)"]
        lines += [f"  {_shown(str(trial))}" for trial in dry_run.trials]
    if screening.route is not None:
        route = screening.route
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
        verdict = f"would refuse ({refusal.status} {refusal.code}): {_shown(refusal.message)}"
    if dry_run.test_token:
        verdict += ", with a TEST token from --claims"
    lines += ["", f"verdict       {verdict}"]
    return "\n".join(lines)


def _token_lines(share: tokens.ShareToken, dry_run: DryRun) -> list[str]:
    claim = share.session_kind_claim
    kind = share.session_kind.value
    kind += " (no session_kind claim)" if claim is None else f" (claim {_shown(json.dumps(claim))})"
    lines = [CLAIMS_NOTICE] if dry_run.test_token else []
    lines += [
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
    if share.for_application_id is None:
        return ""
    return " (ours)" if share.is_for(dry_run.application_id) else " (NOT ours)"


def _optional(value: str | None) -> str:
    return "(absent)" if value is None else _shown(value)


def _shown(text: str) -> str:
    # Partner-supplied text may hold terminal escapes: print anything unprintable escaped.
    return text if text.isprintable() else repr(text)[1:-1]


def _iso(epoch: float) -> str:
    return iso_utc_or_none(epoch) or f"{epoch:.0f} (out of the calendar's range)"


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
