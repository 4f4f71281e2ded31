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
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, NamedTuple

from bridge import config
from bridge.errors import RoutingError
from bridge.tokens import ShareToken
from bridge.types import Route, SessionKind

TEMPLATE_ROOTS: Final = ("partner", "event_id", "payload", "claims")
"""The roots a ``vendor_data`` placeholder may start with."""

_TEMPLATE_PART: Final = re.compile(r"\{([^{}]*)\}|[{}]")
_MAX_INDEX_DIGITS: Final = 9  # no JSON list in a 64 KiB body is longer

_SHOWN_VALUE_CHARS: Final = 48
_PLAIN_TEXT: Final = re.compile(r"[A-Za-z][A-Za-z0-9_.@:/+-]*")

# A parsed template: literal text, or a placeholder name (flagged True).
_Part = tuple[str, bool]


class Condition(NamedTuple):
    """One condition of a rule's ``when``, as evaluated on one notification; ``str()`` says what
    was found and what was expected (``payload.region: 'FR' not in [EU, UK]``). A named tuple:
    routing makes one per condition it tests, on the event loop, and a tuple is the cheapest."""

    root: str
    """``partner``, ``session_kind``, ``payload`` or ``claims``."""
    path: str
    """The dot path under ``payload`` or ``claims``; empty for the other two."""
    expected: object
    """The matcher as configured."""
    found: bool
    actual: object
    held: bool

    @property
    def subject(self) -> str:
        return f"{self.root}.{self.path}" if self.path else self.root

    def __str__(self) -> str:
        return f"{self.subject}: {_described(self)}"


@dataclass(frozen=True, slots=True)
class RuleTrial:
    """One rule tried on one notification: each condition of its ``when``, evaluated."""

    rule: str
    conditions: tuple[Condition, ...]

    @property
    def matched(self) -> bool:
        return all(condition.held for condition in self.conditions)

    def __str__(self) -> str:
        """``rule 'eu-kyc': payload.region: 'FR' not in [EU, UK] (held: partner)``."""
        held = [condition.subject for condition in self.conditions if condition.held]
        failed = [str(condition) for condition in self.conditions if not condition.held]
        if not failed:
            return f"rule {self.rule!r}: matches" + (
                f" ({'; '.join(map(str, self.conditions))})" if held else " (no conditions)"
            )
        return f"rule {self.rule!r}: {'; '.join(failed)}" + (
            f" (held: {', '.join(held)})" if held else ""
        )


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


def explain(
    *,
    partner: str,
    payload: Mapping[str, Any],
    token: ShareToken,
    rules: Sequence[config.Rule],
) -> tuple[RuleTrial, ...]:
    """Each rule as ``route`` tries it, in order, up to and including the first that matches:
    every condition of its ``when`` and whether it held. Raises nothing, whatever the payload."""
    trials: list[RuleTrial] = []
    for rule in rules:
        trial = RuleTrial(
            rule.name, tuple(conditions(rule.when, partner=partner, payload=payload, token=token))
        )
        trials.append(trial)
        if trial.matched:
            break
    return tuple(trials)


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
    for condition in conditions(when, partner=partner, payload=payload, token=token):
        if not condition.held:
            return False
    return True


def conditions(
    when: config.RuleWhen, *, partner: str, payload: Mapping[str, Any], token: ShareToken
) -> Iterator[Condition]:
    """Each condition of ``when``, evaluated, in order: partner, session_kind, payload, claims.
    Lazy, so that matching stops at the first that does not hold."""
    if when.partner is not None:
        names = (when.partner,) if isinstance(when.partner, str) else when.partner
        yield Condition("partner", "", when.partner, True, partner, partner in names)
    if when.session_kind is not None:
        kind, expected = token.session_kind, when.session_kind
        yield Condition("session_kind", "", expected, True, kind, kind is expected)
    for path, matcher in when.payload.items():
        found, value = lookup(payload, path)
        yield Condition("payload", path, matcher, found, value, _holds(matcher, found, value))
    for path, matcher in when.claims.items():
        found, value = lookup(token.claims, path)
        yield Condition("claims", path, matcher, found, value, _holds(matcher, found, value))


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


def _described(condition: Condition) -> str:
    """What was found against what was expected, in the words of the config file."""
    matcher, actual = condition.expected, condition.actual
    if isinstance(matcher, SessionKind) and isinstance(actual, SessionKind):
        matcher, actual = matcher.value, actual.value
    if isinstance(matcher, config.ExistsMatcher):
        # the value itself is never shown: the path may be where the share token is
        state = "absent" if not condition.found else "null" if actual is None else "present"
        return (
            state
            if condition.held
            else f"{state}, expected {'present' if matcher.exists else 'absent'}"
        )
    if not condition.found:
        return f"absent, expected {_expectation(matcher)}"
    shown = _shown_value(actual)
    if isinstance(matcher, config.RegexMatcher):
        pattern = f"'{matcher.regex}'"
        if not isinstance(actual, str):
            return f"{shown} is not a string: regex {pattern} matches only strings"
        if len(actual) > config.MAX_REGEX_VALUE_CHARS:
            limit = config.MAX_REGEX_VALUE_CHARS
            return f"longer than {limit} characters: never matches regex {pattern}"
        return f"{shown} {'matches' if condition.held else 'does not match'} regex {pattern}"
    if isinstance(matcher, list | tuple):
        return f"{shown} {'in' if condition.held else 'not in'} {_expectation(matcher)}"
    return f"{shown} {'is' if condition.held else 'is not'} {_expectation(matcher)}"


def _expectation(matcher: object) -> str:
    if isinstance(matcher, config.RegexMatcher):
        return f"a match of regex '{matcher.regex}'"
    if isinstance(matcher, list | tuple):
        return "[" + ", ".join(_shown_expected(item) for item in matcher) + "]"
    return _shown_expected(matcher)


def _shown_expected(value: object) -> str:
    """A configured value as the YAML would say it: plain text bare, anything else as JSON."""
    if isinstance(value, str) and _PLAIN_TEXT.fullmatch(value) and value not in _YAML_WORDS:
        return value
    return _as_text(value)


_YAML_WORDS: Final = frozenset({"true", "false", "null"})


def _shown_value(value: object) -> str:
    """A value from the notification, cut short: a rule may look where a share token sits, and
    a token's first characters are only its header."""
    text = _as_text(value)
    if len(text) > _SHOWN_VALUE_CHARS:
        return f"{text[:_SHOWN_VALUE_CHARS]}... ({len(text)} characters)"
    return text


def _as_text(value: object) -> str:
    """Strings quoted, anything else as JSON."""
    try:
        return repr(value) if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):  # a number too long to print, say
        return f"a {type(value).__name__}"


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
