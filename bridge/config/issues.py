"""Pydantic's validation errors, retold as problems at the YAML keys, in the file's own words."""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from bridge.config.fields import ConfigModel
from bridge.config.partners import AUTH_SCHEMES
from bridge.config.problems import Loc, Problem, Problems

_TYPE_MESSAGES = {
    "string_type": "a string",
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "list_type": "a list",
    "tuple_type": "a list",
    "none_required": "null",
    "uuid_type": "a UUID like 3c5b9a2e-0000-4000-8000-000000000001",
    "uuid_parsing": "a UUID like 3c5b9a2e-0000-4000-8000-000000000001",
}


def _known_keys() -> frozenset[str]:
    models: list[type[BaseModel]] = [ConfigModel]
    names: set[str] = set()
    while models:
        model = models.pop()
        names.update(model.model_fields)
        models.extend(model.__subclasses__())
    return frozenset(names)


_ABSENT = object()


def _walk(data: Any, loc: Sequence[str | int], *, missing: bool) -> tuple[Loc, Loc]:
    """Split a pydantic error location into the path in the data and the union tags in it."""
    path: list[str | int] = []
    tags: list[str | int] = []
    for i, part in enumerate(loc):
        if part == "[key]":  # the error is about the key just walked, not below it
            continue
        child: Any = _ABSENT
        if isinstance(data, dict):
            child = data.get(part, _ABSENT)
        elif isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data):
            child = data[part]
        if child is not _ABSENT:
            data = child
        elif not (missing and i == len(loc) - 1):
            tags.append(part)
            continue
        path.append(part)
    return tuple(path), tuple(tags)


def _at(data: Any, path: Loc) -> Any:
    for part in path:
        data = data[part]
    return data


def _message(error: ErrorDetails, path: Loc, data: Any) -> tuple[Loc, str]:
    kind, ctx = error["type"], error.get("ctx", {})
    if kind == "missing":
        return path, "required key is missing"
    if kind == "extra_forbidden":
        close = difflib.get_close_matches(str(path[-1]), _known_keys(), n=1, cutoff=0.75)
        return path, "unknown key" + (f" (did you mean {close[0]!r}?)" if close else "")
    if kind == "union_tag_invalid":  # the only tagged union with a key is PartnerAuth's scheme
        scheme = _at(data, path).get("scheme")
        named = f"unknown scheme {scheme!r}: " if isinstance(scheme, str) else ""
        return (*path, "scheme"), f"{named}expected one of {', '.join(AUTH_SCHEMES)}"
    if kind == "union_tag_not_found":
        return (*path, "scheme"), f"required key is missing: one of {', '.join(AUTH_SCHEMES)}"
    if kind == "value_error":
        return path, str(ctx.get("error", error["msg"]))
    if kind in _TYPE_MESSAGES:
        return path, f"expected {_TYPE_MESSAGES[kind]}"
    message = error["msg"].replace("Input should be", "must be")
    return path, message[:1].lower() + message[1:]


def validation_problems(exc: ValidationError, data: Any) -> list[Problem]:
    """Every error in ``exc`` as a problem at its path in ``data``, the validated plain data."""
    problems: list[Problem] = []
    groups: dict[Loc, list[tuple[Loc, ErrorDetails]]] = {}
    for error in exc.errors(include_url=False):
        path, tags = _walk(data, error["loc"], missing=error["type"] == "missing")
        cause = error.get("ctx", {}).get("error")
        if isinstance(cause, Problems):
            problems += [((*path, *sub), message) for sub, message in cause.problems]
        else:
            groups.setdefault(path, []).append((tags, error))
    for path, errors in groups.items():
        if len({tags for tags, _ in errors}) > 1:  # no member of a union accepted the value
            kinds = dict.fromkeys(_TYPE_MESSAGES.get(e["type"], e["msg"]) for _, e in errors)
            problems.append((path, "expected " + " or ".join(kinds)))
        else:
            problems += [_message(error, path, data) for _, error in errors]
    return problems
