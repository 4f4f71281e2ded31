"""``rules``: when a notification matches (matchers) and what to import then (``vendor_data``)."""

from __future__ import annotations

import re
from typing import Annotated
from uuid import UUID

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


class RegexMatcher(ConfigModel):
    regex: str

    @field_validator("regex")
    @classmethod
    def _compiles(cls, regex: str) -> str:
        try:
            re.compile(regex)
        except re.error as exc:
            raise ValueError(f"invalid regex: {exc}") from None
        return regex

    @property
    def pattern(self) -> re.Pattern[str]:
        return re.compile(self.regex)  # the re module caches compiled patterns


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
