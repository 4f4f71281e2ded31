"""Warnings: settings that load but leave a protection off.

``check-config`` prints each as ``file:line: key.path: warning: message`` (``--strict`` refuses
them), and ``serve`` logs them at start. A new warning is one more function in ``CHECKS``: it
takes the validated ``Settings`` and yields a problem at the key to change.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from bridge.config.partners import HmacAuth, JwtAuth, StandardWebhooksAuth
from bridge.config.problems import Problem
from bridge.config.settings import Settings
from bridge.config.vendor_data import vendor_data_warnings

Check = Callable[[Settings], Iterable[Problem]]
DAY_S = 86_400.0


def replay_warnings(settings: Settings) -> Iterator[Problem]:
    """Partners whose requests, once captured, can be sent again with effect."""
    for name, partner in settings.partners.items():
        auth, where = partner.auth, ("partners", name, "auth")
        if isinstance(auth, JwtAuth) and auth.body_hash_claim is None and not auth.require_jti:
            yield (
                where,
                "replay protection is off: a captured JWT is accepted with any body for "
                f"max_age_s ({auth.max_age_s} s); set body_hash_claim so that the token pins "
                "its body, or require_jti: true so that each token is accepted once",
            )
        if isinstance(auth, HmacAuth) and auth.timestamp_header is None:
            yield (
                where,
                "replay protection is off: a captured request verifies forever; set "
                "timestamp_header so that the MAC covers the time and an old request is refused",
            )


def retention_warnings(settings: Settings) -> Iterator[Problem]:
    """A retention shorter than the time a partner's request may be replayed in: once its
    notification is deleted, its message id is forgotten and a replay is a new notification."""
    days = settings.store.retention_days
    if days is None:
        return
    for name, partner in settings.partners.items():
        auth, window = partner.auth, None
        if isinstance(auth, StandardWebhooksAuth):
            window = auth.tolerance_s
        elif isinstance(auth, JwtAuth) and auth.require_jti:
            window = auth.max_age_s + auth.tolerance_s
        if window is not None and days * DAY_S <= window:
            yield (
                ("store", "retention_days"),
                f"shorter than the {window} s in which partner {name}'s requests may be "
                "replayed: a replay after its notification was deleted is accepted as a new "
                "notification; keep the retention above it",
            )


def undecided_retention_warnings(settings: Settings) -> Iterator[Problem]:
    """A retention without Didit's webhooks: an imported notification is deleted only once its
    session is decided, and only a webhook brings a decision, so an undecided one stays."""
    if settings.store.retention_days is not None and settings.didit_webhooks is None:
        yield (
            ("store", "retention_days"),
            "without didit_webhooks no decision of Didit's reaches the bridge: an imported "
            "notification whose session is not decided at import (In Review, as every session "
            "is without trust_review) is never deleted; configure didit_webhooks",
        )


def vendor_data_template_warnings(settings: Settings) -> Iterable[Problem]:
    """Rules whose vendor_data two partners' shares could render alike."""
    return vendor_data_warnings(settings.rules)


CHECKS: tuple[Check, ...] = (
    replay_warnings,
    retention_warnings,
    undecided_retention_warnings,
    vendor_data_template_warnings,
)


def settings_warnings(settings: Settings) -> list[Problem]:
    """Every warning about ``settings``, check by check."""
    return [problem for check in CHECKS for problem in check(settings)]
