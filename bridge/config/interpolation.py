"""``${VAR}`` and ``${VAR:-default}`` in YAML strings, from the environment."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from bridge.config.problems import Loc, Problem

_REFERENCE = re.compile(r"\$\$\{|\$\{(?P<body>[^}]*)\}|\$\{")
_VARIABLE = re.compile(r"(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>.*))?", re.DOTALL)


def interpolate(
    value: Any,
    environ: Mapping[str, str],
    loc: Loc,
    problems: list[Problem],
    empty: list[Problem] | None = None,
    substituted: dict[str, str] | None = None,
) -> Any:
    """Replace ``${VAR}`` and ``${VAR:-default}`` in every string; ``$${`` is a literal ``${``.

    An unset variable is a problem; one set but empty (no default) is noted in ``empty``, so a
    value it leaves invalid can be explained by the variable's name. ``substituted`` collects
    each value taken from the environment with the reference it replaced (see ``masked``)."""
    if isinstance(value, dict):
        return {
            k: interpolate(v, environ, (*loc, k), problems, empty, substituted)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [
            interpolate(v, environ, (*loc, i), problems, empty, substituted)
            for i, v in enumerate(value)
        ]
    if not isinstance(value, str) or "${" not in value:
        return value

    def substitute(match: re.Match[str]) -> str:
        body = match.group("body")
        if match.group(0) == "$${":
            return "${"
        reference = _VARIABLE.fullmatch(body) if body is not None else None
        if reference is None:
            problems.append((loc, "malformed ${...}: write ${NAME} or ${NAME:-default}"))
            return match.group(0)
        found, default = environ.get(reference["name"]), reference["default"]
        if default is not None and not found:  # as in the shell, ":-" also covers empty
            return default
        if found is None:
            problems.append((loc, f"environment variable {reference['name']} is not set"))
            return match.group(0)
        if not found and empty is not None:
            empty.append((loc, f"environment variable {reference['name']} is set but empty"))
        if substituted is not None and found:
            substituted[found] = f"${{{reference['name']}}}"
        return found

    return _REFERENCE.sub(substitute, value)


_SHORTEST_MASKED = 4  # shorter values (a port's digits) would mask chance matches in messages


def masked(message: str, substituted: Mapping[str, str]) -> str:
    """``message`` with every value that came from the environment shown as its ``${NAME}``.

    A message quotes the value it refuses, and a variable usually holds a secret: one put in
    the wrong key (``destinations: ["${GLOBEX_SECRET}"]``) must not be printed by the error."""
    for found in sorted(substituted, key=len, reverse=True):
        if len(found) >= _SHORTEST_MASKED:
            message = message.replace(found, substituted[found])
    return message
