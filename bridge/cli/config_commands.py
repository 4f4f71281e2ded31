"""``bridge check-config`` and ``bridge config-schema``: the configuration, seen from a shell."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from bridge.cli._common import add_config_argument
from bridge.config import Settings, format_path, load
from bridge.config.vendor_data import vendor_data_warnings
from bridge.config.yaml_lines import parse
from bridge.errors import ConfigError, ConfigIssue

_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    check = subparsers.add_parser(
        "check-config",
        help="validate the configuration",
        description="Validate the YAML configuration. Exit 0 when it is valid; otherwise print "
        "each problem as file:line: key.path: message and exit 1. Warnings are printed as "
        "file:line: key.path: warning: message and do not change the exit code.",
    )
    add_config_argument(check)
    check.set_defaults(run=check_config)
    schema = subparsers.add_parser(
        "config-schema",
        help="print the configuration's JSON Schema",
        description="Print the JSON Schema of the configuration, for editor completion.",
    )
    schema.set_defaults(run=config_schema)


def check_config(args: argparse.Namespace) -> int:
    """Load the configuration; report every problem on stderr (exit 1) or a summary (exit 0)."""
    try:
        settings = load(args.config)
    except ConfigError as exc:
        sys.stderr.write("".join(f"{issue}\n" for issue in exc.issues))
        if not Path(args.config).exists():
            sys.stderr.write("hint: pass --config PATH or set BRIDGE_CONFIG\n")
        return 1
    _print_warnings(args.config, settings)
    sys.stdout.write(
        f"ok: {len(settings.partners)} partners, {len(settings.rules)} rules, "
        f"{len(settings.destinations)} destinations\n"
    )
    return 0


def _print_warnings(path: str, settings: Settings) -> None:
    """Each warning on stderr as ``file:line: key.path: warning: message``; still exit 0."""
    warnings = vendor_data_warnings(settings.rules)
    if not warnings:
        return
    source = str(path)
    document = parse(Path(source).read_bytes().decode("utf-8-sig"), source)
    for loc, message in warnings:
        issue = ConfigIssue(source, document.line(loc), format_path(loc), f"warning: {message}")
        sys.stderr.write(f"{issue}\n")


def config_schema(args: argparse.Namespace) -> int:
    """Print the JSON Schema of ``Settings``."""
    schema = {"$schema": _SCHEMA_DIALECT, **Settings.model_json_schema()}
    schema["title"] = "share-bridge configuration"
    sys.stdout.write(json.dumps(schema, indent=2) + "\n")
    return 0
