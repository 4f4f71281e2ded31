"""``share-bridge check-config`` and ``config-schema``: the configuration, seen from a shell."""

from __future__ import annotations

import argparse
import json
import sys

from bridge.cli._common import add_config_argument, missing_config_hint
from bridge.cli.online_check import Result, check_online
from bridge.config import Settings, load_with_warnings
from bridge.config.descriptions import describe, example_text
from bridge.errors import ConfigError

_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    check = subparsers.add_parser(
        "check-config",
        help="validate the configuration",
        description="Validate the YAML configuration. Exit 0 when it is valid; otherwise print "
        "each problem as file:line: key.path: message and exit 1. A setting that leaves a "
        "protection off is printed as file:line: key.path: warning: message (exit 0).",
    )
    add_config_argument(check)
    check.add_argument(
        "--strict", action="store_true", help="treat warnings as errors (exit 1 if any)"
    )
    check.add_argument(
        "--online",
        action="store_true",
        help="also check, without side effects, what the file cannot show: the API key (one "
        "authenticated read) and each destination (a signed share.ping, 2xx expected); list "
        "what could not be checked",
    )
    check.set_defaults(run=check_config)
    schema = subparsers.add_parser(
        "config-schema",
        help="print the configuration's JSON Schema",
        description="Print the JSON Schema of the configuration, for editor completion.",
    )
    schema.set_defaults(run=config_schema)


def check_config(args: argparse.Namespace) -> int:
    """Load the configuration; report every problem on stderr (exit 1) or a summary (exit 0),
    after the warnings (on stderr; with ``--strict`` they make it exit 1)."""
    try:
        loaded = load_with_warnings(args.config)
    except ConfigError as exc:
        sys.stderr.write("".join(f"{issue}\n" for issue in exc.issues))
        sys.stderr.write(missing_config_hint(args.config))
        return 1
    settings = loaded.settings
    sys.stderr.write("".join(f"{warning}\n" for warning in loaded.warnings))
    if args.strict and loaded.warnings:
        sys.stderr.write(f"--strict: {len(loaded.warnings)} warning(s) count as errors\n")
        return 1
    sys.stdout.write(
        f"ok: {len(settings.partners)} partners, {len(settings.rules)} rules, "
        f"{len(settings.destinations)} destinations\n"
    )
    if not args.online:
        return 0
    findings = check_online(settings)
    sys.stdout.write("online:\n" + "".join(f"{finding}\n" for finding in findings))
    return 1 if any(finding.result is Result.FAILED for finding in findings) else 0


def config_schema(args: argparse.Namespace) -> int:
    """Print the JSON Schema of ``Settings``."""
    described = describe(Settings.model_json_schema(), example_text())
    schema = {"$schema": _SCHEMA_DIALECT, **described}
    schema["title"] = "share-bridge configuration"
    sys.stdout.write(json.dumps(schema, indent=2) + "\n")
    return 0
