"""What several commands share: the --config argument and the hint when its file is missing."""

from __future__ import annotations

import argparse
import os
from pathlib import Path


def env_default(variable: str, fallback: str | None = None) -> str | None:
    return os.environ.get(variable, fallback)


def add_config_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        default=env_default("BRIDGE_CONFIG", "config/bridge.yaml"),
        help="the YAML configuration (default: $BRIDGE_CONFIG, then config/bridge.yaml)",
    )


def missing_config_hint(path: str) -> str:
    """A line pointing at --config when the configuration file does not exist, else ''."""
    if Path(path).exists():
        return ""
    return "hint: pass --config PATH or set BRIDGE_CONFIG (start from config/bridge.example.yaml)\n"
