"""What the commands that operate on a store need from the configuration, and nothing else.

``share-bridge notifications``, ``redeliver`` and ``destinations`` read the store's URL and the
destinations' names. They must work where the partners' secrets and the API key are not set (an
operator's shell), so only the ``store`` section is interpolated and validated here.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from pydantic import ValidationError

from bridge.config.interpolation import interpolate
from bridge.config.loading import read_text
from bridge.config.problems import Problem, format_path
from bridge.config.settings import StoreSettings
from bridge.config.yaml_lines import parse
from bridge.errors import ConfigError, ConfigIssue


@dataclass(frozen=True, slots=True)
class OperationsConfig:
    store: StoreSettings
    destinations: tuple[str, ...]  # the names under destinations:


def load_for_operations(
    path: str | os.PathLike[str], environ: Mapping[str, str] | None = None
) -> OperationsConfig:
    """The store settings and destination names of the file at ``path``; ``ConfigError`` (as
    ``load`` reports it) when the file or its ``store`` section is invalid."""
    source = os.fspath(path)
    document = parse(read_text(source), source)
    data = document.data if isinstance(document.data, dict) else {}
    problems: list[Problem] = []
    section = interpolate(
        data.get("store", {}), os.environ if environ is None else environ, ("store",), problems
    )
    store: StoreSettings | None = None
    if not problems:
        try:
            store = StoreSettings.model_validate(section)
        except ValidationError as exc:
            problems = [(("store", *error["loc"]), error["msg"]) for error in exc.errors()]
    if problems or store is None:
        raise ConfigError(
            [
                ConfigIssue(source, document.line(loc), format_path(loc), message)
                for loc, message in problems
            ]
        )
    destinations = data.get("destinations")
    names = tuple(destinations) if isinstance(destinations, dict) else ()
    return OperationsConfig(store=store, destinations=names)
