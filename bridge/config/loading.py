"""``load``: read the file, interpolate, validate, and report every problem at once."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from bridge.config.checks import naming_the_rule, reference_problems
from bridge.config.interpolation import interpolate, masked
from bridge.config.issues import validation_problems
from bridge.config.problems import Loc, Problem, format_path
from bridge.config.settings import Settings
from bridge.config.warnings import settings_warnings
from bridge.config.yaml_lines import parse
from bridge.errors import ConfigError, ConfigIssue

WARNING = "warning: "
"""How a warning's message starts: ``file:line: key.path: warning: message``."""


@dataclass(frozen=True, slots=True)
class Loaded:
    """Valid settings, and what they leave unprotected (``bridge.config.warnings``)."""

    settings: Settings
    warnings: tuple[ConfigIssue, ...]


def _names(data: dict[str, Any], section: str) -> dict[str, Any]:
    value = data.get(section)
    return value if isinstance(value, dict) else {}


def load_text(
    text: str,
    *,
    source_name: str = "<config>",
    environ: Mapping[str, str] | None = None,
    base_dir: str | os.PathLike[str] | None = None,
) -> Settings:
    """Parse, interpolate and validate YAML text; raise ``ConfigError`` with every problem.

    ``source_name`` prefixes each issue; ``base_dir`` anchors relative paths (``jwks_file``).
    """
    return load_text_with_warnings(
        text, source_name=source_name, environ=environ, base_dir=base_dir
    ).settings


def load_text_with_warnings(
    text: str,
    *,
    source_name: str = "<config>",
    environ: Mapping[str, str] | None = None,
    base_dir: str | os.PathLike[str] | None = None,
) -> Loaded:
    """``load_text``, and the warnings about the settings, each at its line."""
    document = parse(text, source_name)
    unset: list[Problem] = []
    empty: list[Problem] = []
    substituted: dict[str, str] = {}
    environment = os.environ if environ is None else environ
    data = interpolate(document.data, environment, (), unset, empty, substituted)
    if not isinstance(data, dict):
        message = "the top level must be a mapping of sections: didit, partners, rules, ..."
        raise ConfigError([ConfigIssue(source_name, document.line(()), "", message)])
    settings: Settings | None = None
    problems: list[Problem] = []
    try:
        settings = Settings.model_validate(data, context={"base_dir": base_dir})
    except ValidationError as exc:
        problems = validation_problems(exc, data)
        if isinstance(data.get("rules"), list):  # the cross-section checks did not run: run them
            partners, destinations = _names(data, "partners"), _names(data, "destinations")
            problems += reference_problems(data["rules"], partners, destinations)
    # a value whose variable is unset was reported as such: what else it breaks is noise
    problems = unset + [p for p in problems if not any(p[0][: len(u)] == u for u, _ in unset)]
    rules = data.get("rules")

    def worded(loc: Loc, message: str) -> str:
        return masked(naming_the_rule(loc, message, rules), substituted)

    problems = [(loc, worded(loc, m)) for loc, m in (_explained(p, empty) for p in problems)]
    issues = [
        ConfigIssue(source_name, line, format_path(loc), worded(loc, m))
        for loc, line, m in document.issues
    ]
    issues += [
        ConfigIssue(source_name, document.line(loc), format_path(loc), m) for loc, m in problems
    ]
    if issues or settings is None:
        raise ConfigError(sorted(dict.fromkeys(issues), key=lambda i: (i.line or 0, i.path)))
    warnings = [
        ConfigIssue(source_name, document.line(loc), format_path(loc), WARNING + worded(loc, m))
        for loc, m in settings_warnings(settings)
    ]
    return Loaded(settings, tuple(sorted(warnings, key=lambda i: (i.line or 0, i.path))))


def _explained(problem: Problem, empty: list[Problem]) -> Problem:
    """A problem with a value an empty variable made: say which variable."""
    loc, message = problem
    for where, note in empty:
        if loc[: len(where)] == where:
            return loc, f"{message} ({note})"
    return problem


def load(path: str | os.PathLike[str], environ: Mapping[str, str] | None = None) -> Settings:
    """Load the configuration file at ``path``; ``environ`` defaults to ``os.environ``.

    Raises ``ConfigError`` listing every problem as ``file:line: key.path: message``, including
    an unreadable file and YAML syntax errors; never another exception for bad input.
    """
    return load_with_warnings(path, environ).settings


def load_with_warnings(
    path: str | os.PathLike[str], environ: Mapping[str, str] | None = None
) -> Loaded:
    """``load``, and the warnings about the settings, each at its line."""
    source = os.fspath(path)
    text = read_text(source)
    return load_text_with_warnings(
        text, source_name=source, environ=environ, base_dir=Path(source).parent
    )


def read_text(source: str) -> str:
    """The configuration file's text; ``ConfigError`` when it cannot be read as UTF-8."""
    try:
        return Path(source).read_bytes().decode("utf-8-sig")
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ConfigError(
            [ConfigIssue(source, None, "", f"cannot read the file: {reason}")]
        ) from None
    except UnicodeDecodeError:
        raise ConfigError([ConfigIssue(source, None, "", "the file is not UTF-8 text")]) from None
