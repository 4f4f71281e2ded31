"""``rules``: when a notification matches (matchers) and what to import then (``vendor_data``)."""

from __future__ import annotations

import functools
import re
from typing import Annotated, Protocol, cast
from uuid import UUID

import re2
from pydantic import AfterValidator, Discriminator, Tag, field_validator

from bridge.config.fields import ConfigModel, DotPath
from bridge.config.problems import raise_problems
from bridge.types import SessionKind

_TEMPLATE_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")  # plain substitution, no escapes
_TEMPLATE_ROOTS = ("partner", "event_id", "payload", "claims")


def template_placeholders(template: str) -> tuple[str, ...]:  # rendering is bridge.rules' job
    """The ``{...}`` placeholder names of a ``vendor_data`` template, in order."""
    return tuple(match.group(1) for match in _TEMPLATE_PLACEHOLDER.finditer(template))


def _check_template(template: str) -> str:
    if not template.strip():
        raise ValueError("must not be empty: reconciliation finds imported sessions by it")
    if set("{}") & set(_TEMPLATE_PLACEHOLDER.sub("", template)):
        raise ValueError("unbalanced brace: a placeholder looks like {payload.customer.id}")
    for name in template_placeholders(template):
        root, dot, rest = name.partition(".")
        if root in ("partner", "event_id") and dot:
            raise ValueError(f"{{{name}}}: {root} has no fields; write {{{root}}}")
        if root in ("payload", "claims") and (
            not dot or not all(s.strip() for s in rest.split("."))
        ):
            raise ValueError(f"{{{name}}}: {root} needs a path, like {{{root}.customer.id}}")
        if root not in _TEMPLATE_ROOTS:
            raise ValueError(
                f"unknown placeholder {{{name}}}: it must start with partner, event_id, "
                "payload. or claims."
            )
    return template


MAX_REGEX_VALUE_CHARS = 1024
"""A ``{regex}`` matcher never matches a longer value: matching stays cheap whatever a partner
sends (the body may be 64 KiB, and every rule before the match runs on it)."""


class RuleRegex(Protocol):
    """A compiled RE2 pattern, as far as rules use it."""

    def fullmatch(self, text: str) -> object | None: ...


@functools.lru_cache(maxsize=1024)
def compile_rule_regex(regex: str) -> RuleRegex:
    """``regex`` compiled by RE2, whose matching time is linear in the value: a partner's value
    cannot make a rule backtrack for seconds on the event loop, as Python's ``re`` can.

    Raises ValueError when RE2 cannot run the pattern: invalid, or using what only a backtracking
    engine offers (backreferences like ``\\1``, lookarounds like ``(?=...)``), or too large.
    """
    options = re2.Options()
    options.log_errors = False  # RE2 would print each refused pattern on stderr
    try:
        return cast(RuleRegex, re2.compile(regex, options))
    except re2.error as exc:
        reason = exc.args[0] if exc.args else exc
        text = reason.decode(errors="replace") if isinstance(reason, bytes) else str(reason)
        raise ValueError(
            f"RE2 cannot run this regex ({text}): rules use RE2 syntax, without "
            "backreferences or lookarounds"
        ) from None


class RegexMatcher(ConfigModel):
    regex: str

    @field_validator("regex")
    @classmethod
    def _compiles(cls, regex: str) -> str:
        compile_rule_regex(regex)
        return regex

    def matches(self, value: str) -> bool:
        """Whether ``value`` matches the whole pattern (a value over
        ``MAX_REGEX_VALUE_CHARS`` never does)."""
        if len(value) > MAX_REGEX_VALUE_CHARS:
            return False
        try:
            pattern = compile_rule_regex(self.regex)
        except ValueError:  # only a matcher built without validation can hold one
            return False
        return pattern.fullmatch(value) is not None


class ExistsMatcher(ConfigModel):
    exists: bool


def _matcher_kind(value: object) -> str | None:
    if isinstance(value, dict):
        return "{regex}" if "regex" in value else "{exists}" if "exists" in value else None
    if isinstance(value, RegexMatcher | ExistsMatcher):
        return "{regex}" if isinstance(value, RegexMatcher) else "{exists}"
    return "[values]" if isinstance(value, list | tuple) else "value"


Scalar = str | int | float | bool | None
Matcher = Annotated[
    Annotated[RegexMatcher, Tag("{regex}")]
    | Annotated[ExistsMatcher, Tag("{exists}")]
    | Annotated[list[Scalar], Tag("[values]")]
    | Annotated[Scalar, Tag("value")],
    Discriminator(
        _matcher_kind,
        custom_error_type="invalid_matcher",
        custom_error_message=(
            "a matcher is a value, a list of values, {regex: ...} or {exists: true|false}"
        ),
    ),
]


class RuleWhen(ConfigModel):
    partner: str | list[str] | None = None
    session_kind: SessionKind | None = None  # from the token; absent means user
    payload: dict[DotPath, Matcher] = {}  # dot path -> matcher
    claims: dict[DotPath, Matcher] = {}

    @field_validator("partner", mode="before")
    @classmethod
    def _partner_names(cls, value: object) -> object:
        if isinstance(value, list | tuple) and not value:
            raise ValueError("an empty list matches no partner")
        if value is None or isinstance(value, str):
            return value
        if isinstance(value, list | tuple) and all(isinstance(name, str) for name in value):
            return list(value)
        raise ValueError("expected a partner name or a list of names")


class RuleThen(ConfigModel):
    workflow_id: UUID
    vendor_data: Annotated[str, AfterValidator(_check_template)]  # {partner} {payload.x.y} ...
    trust_review: bool = False
    destinations: tuple[str, ...] = ()

    @field_validator("destinations")
    @classmethod
    def _no_repeats(cls, names: tuple[str, ...]) -> tuple[str, ...]:
        repeats = [((i,), "listed twice") for i, name in enumerate(names) if name in names[:i]]
        raise_problems(repeats)
        return names


class Rule(ConfigModel):
    name: str
    when: RuleWhen = RuleWhen()
    then: RuleThen

    @field_validator("name")
    @classmethod
    def _name_set(cls, name: str) -> str:
        if not name.strip():
            raise ValueError("must not be empty")
        return name
