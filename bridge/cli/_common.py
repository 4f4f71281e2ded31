"""What several commands share: the --config argument and the hint when its file is missing."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from bridge import config
from bridge.config import StoreSettings
from bridge.errors import ConfigError
from bridge.store import Clock, Store, open_store


def env_default(variable: str, fallback: str | None = None) -> str | None:
    return os.environ.get(variable, fallback)


def add_config_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        default=env_default("BRIDGE_CONFIG", "config/bridge.yaml"),
        help="the YAML configuration (default: $BRIDGE_CONFIG, then config/bridge.yaml)",
    )


def load_settings(path: str, *, prog: str) -> config.Settings | None:
    """The configuration at ``path``; None, after telling stderr why, when it is invalid."""
    loaded = load_with_warnings(path, prog=prog)
    return None if loaded is None else loaded.settings


def load_with_warnings(path: str, *, prog: str) -> config.Loaded | None:
    """``load_settings`` with the configuration's warnings, for a command that reports them."""
    try:
        return config.load_with_warnings(path)
    except ConfigError as exc:  # also an unreadable file: loading raises nothing else
        sys.stderr.write(f"{prog}: invalid configuration:\n{exc}\n")
        sys.stderr.write(missing_config_hint(path))
        return None


def open_configured_store(settings: StoreSettings, *, clock: Clock) -> Store:
    """The store the configuration's ``store`` section describes."""
    return open_store(
        settings.url,
        clock=clock,
        token_keys=settings.decoded_token_keys(),
        schema=settings.schema_,
        pool_size=settings.pool_size,
        pool_timeout_s=settings.pool_timeout_s,
    )


def missing_config_hint(path: str) -> str:
    """A line pointing at --config when the configuration file does not exist, else ''."""
    if Path(path).exists():
        return ""
    return "hint: pass --config PATH or set BRIDGE_CONFIG (start from config/bridge.example.yaml)\n"
