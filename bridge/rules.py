"""Pure routing: a notification's partner, payload and token claims -> a :class:`Route`.

Rules are tried in order and the first whose ``when`` holds wins (docs/architecture.md). Every
matcher in ``when`` must hold; an absent matcher holds for anything. Payload and claim matchers
address values by dot path (``customer.id``, ``items.0.sku``) and compare with JSON types kept
apart: ``1`` matches ``1`` and ``1.0`` but never ``true`` or ``"1"``. A ``{regex}`` matches a
whole string value, with RE2 (linear time), and never a value longer than
``config.MAX_REGEX_VALUE_CHARS``: rules run on the event loop, on what a partner sent.

``then.vendor_data`` is a template rendered by plain substitution, never by ``format()`` or code:
``{partner}``, ``{event_id}``, ``{payload.a.b}`` and ``{claims.x}``, with no escapes (a lone brace
is malformed, as the config loader says). A placeholder whose value is missing, null, empty, an
object or a list does not render, and the notification is refused with ``vendor_data_unresolved``.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any, Final

from bridge import config
from bridge.errors import RoutingError
from bridge.tokens import ShareToken
from bridge.types import Route

TEMPLATE_ROOTS: Final = ("partner", "event_id", "payload", "claims")
"""The roots a ``vendor_data`` placeholder may start with."""

_TEMPLATE_PART: Final = re.compile(r"\{([^{}]*)\}|[{}]")
_MAX_INDEX_DIGITS: Final = 9  # no JSON list in a 64 KiB body is longer

# A parsed template: literal text, or a placeholder name (flagged True).
_Part = tuple[str, bool]


def route(
    *,
    partner: str,
    payload: Mapping[str, Any],
    token: ShareToken,
    event_id: str | None,
    rules: Sequence[config.Rule],
) -> Route:
    """The route of the first rule that matches, with its ``vendor_data`` rendered.

    Raises :class:`RoutingError` with code ``no_matching_rule`` when no rule matches, or
    ``vendor_data_unresolved`` when the matching rule's template does not render (no later rule is
    tried then: the first match decides). Raises nothing else, whatever the payload.
    """
    for rule in rules:
        if _matches(rule.when, partner=partner, payload=payload, token=token):
            vendor_data = _render(
                rule, partner=partner, payload=payload, token=token, event_id=event_id
            )
            return _route_of(rule, vendor_data)
    raise RoutingError(
        f"no rule matches this {token.session_kind.value} share from partner {partner!r}",
        code="no_matching_rule",
    )


def rerouted(stored: Route, rules: Sequence[config.Rule]) -> Route | None:
    """What ``stored``'s rule says now (a retry runs with the running configuration): its
    workflow, ``trust_review`` and destinations. ``vendor_data`` stays as rendered at intake (the
    body it came from is not kept). None when no rule has that name any more."""
    rule = next((rule for rule in rules if rule.name == stored.rule), None)
    return None if rule is None else _route_of(rule, stored.vendor_data)


def _route_of(rule: config.Rule, vendor_data: str) -> Route:
    return Route(
        rule=rule.name,
        workflow_id=str(rule.then.workflow_id),
        vendor_data=vendor_data,
        trust_review=rule.then.trust_review,
        destinations=tuple(rule.then.destinations),
    )


def lookup(obj: object, dot_path: str) -> tuple[bool, Any]:
    """Follow ``dot_path`` into nested objects (keys) and lists (decimal indexes).

    Returns ``(True, value)`` when every step exists (the value may be None, for a JSON null), and
    ``(False, None)`` otherwise. Never raises.
    """
    current = obj
    for step in _steps(dot_path):
        if isinstance(current, Mapping):
            if step not in current:
                return False, None
            current = current[step]
        elif isinstance(current, list | tuple) and _is_index(step) and int(step) < len(current):
            current = current[int(step)]
        else:
            return False, None
    return True, current


def template_placeholders(template: str) -> list[str]:
    """The placeholder names of a ``vendor_data`` template, in order, without duplicates.

    Raises ValueError when the template is malformed: a lone ``{`` or ``}``, or a placeholder with
    an empty dot segment (``{}``, ``{payload.}``). Roots are not checked here.
    """
    names: list[str] = []
    for text, is_placeholder in _parse_template(template):
        if is_placeholder and text not in names:
            names.append(text)
    return names


def render_value(value: object) -> str | None:
    """A JSON value as template text: strings as they are, numbers as JSON, bools as true/false.

    None when the value does not render: null, an empty or blank string, a non-finite number, an
    object or a list.
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value if value.strip() else None
    if isinstance(value, int):
        try:
            return str(value)
        except ValueError:  # more digits than Python will print
            return None
    if isinstance(value, float) and math.isfinite(value):
        return json.dumps(value)
    return None


def _matches(
    when: config.RuleWhen, *, partner: str, payload: Mapping[str, Any], token: ShareToken
) -> bool:
    if when.partner is not None:
        names = (when.partner,) if isinstance(when.partner, str) else when.partner
        if partner not in names:
            return False
    if when.session_kind is not None and token.session_kind is not when.session_kind:
        return False
    return all(
        _holds(matcher, *lookup(payload, path)) for path, matcher in when.payload.items()
    ) and all(_holds(matcher, *lookup(token.claims, path)) for path, matcher in when.claims.items())


def _holds(matcher: config.Matcher, found: bool, value: Any) -> bool:
    if isinstance(matcher, config.ExistsMatcher):
        return (found and value is not None) is matcher.exists
    if not found:
        return False
    if isinstance(matcher, config.RegexMatcher):
        return isinstance(value, str) and matcher.matches(value)
    if isinstance(matcher, list):
        return any(_same_scalar(expected, value) for expected in matcher)
    return _same_scalar(matcher, value)


def _same_scalar(expected: config.Scalar, actual: object) -> bool:
    # JSON types stay apart: Python's True == 1 and "1" != 1 must not leak into matching.
    if isinstance(expected, bool) or isinstance(actual, bool):
        return isinstance(expected, bool) and isinstance(actual, bool) and expected is actual
    if expected is None:
        return actual is None
    if isinstance(expected, str):
        return isinstance(actual, str) and expected == actual
    return isinstance(actual, int | float) and expected == actual


@functools.lru_cache(maxsize=4096)
def _steps(dot_path: str) -> tuple[str, ...]:
    return tuple(dot_path.split("."))


def _is_index(step: str) -> bool:
    return step.isascii() and step.isdigit() and len(step) <= _MAX_INDEX_DIGITS


def _render(
    rule: config.Rule,
    *,
    partner: str,
    payload: Mapping[str, Any],
    token: ShareToken,
    event_id: str | None,
) -> str:
    try:
        parts = _parse_template(rule.then.vendor_data)
    except ValueError as exc:
        raise RoutingError(
            f"rule {rule.name!r}: the vendor_data template is malformed: {exc}",
            code="vendor_data_unresolved",
        ) from None
    rendered: list[str] = []
    for text, is_placeholder in parts:
        if not is_placeholder:
            rendered.append(text)
            continue
        value = render_value(_placeholder_value(text, partner, payload, token, event_id))
        if value is None:
            raise RoutingError(
                f"rule {rule.name!r}: vendor_data placeholder {{{text}}} is missing or empty",
                code="vendor_data_unresolved",
            )
        rendered.append(value)
    vendor_data = "".join(rendered)
    if not vendor_data.strip():
        raise RoutingError(
            f"rule {rule.name!r}: vendor_data renders empty", code="vendor_data_unresolved"
        )
    return vendor_data


def _placeholder_value(
    name: str,
    partner: str,
    payload: Mapping[str, Any],
    token: ShareToken,
    event_id: str | None,
) -> object:
    root, _, path = name.partition(".")
    if root == "partner" and not path:
        return partner
    if root == "event_id" and not path:
        return event_id
    if root == "payload" and path:
        return lookup(payload, path)[1]
    if root == "claims" and path:
        return lookup(token.claims, path)[1]
    return None


@functools.lru_cache(maxsize=256)
def _parse_template(template: str) -> tuple[_Part, ...]:
    parts: list[_Part] = []
    position = 0
    for match in _TEMPLATE_PART.finditer(template):
        parts.append((template[position : match.start()], False))
        position = match.end()
        name = match.group(1)
        if name is None:
            raise ValueError(f"a lone {match.group(0)!r} at character {match.start()}")
        if not all(step.strip() for step in name.split(".")):
            raise ValueError(f"placeholder {match.group(0)} is not a dot path like payload.x.y")
        parts.append((name, True))
    parts.append((template[position:], False))
    return tuple(part for part in parts if part[1] or part[0])
