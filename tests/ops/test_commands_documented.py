"""Help, README and behaviour agree: every command is listed by ``share-bridge --help`` and in
the README's commands table, and every argument of every command says what it is for."""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from bridge.cli import build_parser

ROOT = Path(__file__).parents[2]


def subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def commands() -> Iterator[tuple[str, argparse.ArgumentParser]]:
    """(``notifications show``, its parser) for every runnable command."""
    for name, parser in subparsers(build_parser()).items():
        nested = subparsers(parser)
        if nested:
            for action, child in nested.items():
                yield f"{name} {action}", child
        else:
            yield name, parser


def test_help_lists_every_command() -> None:
    script = Path(sys.executable).with_name("share-bridge")
    shown = subprocess.run(
        [script, "--help"], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    assert shown.startswith("usage: share-bridge ")
    for name in subparsers(build_parser()):
        assert re.search(rf"^\s+{re.escape(name)}\b", shown, re.M), name


def test_the_readme_commands_table_lists_every_command() -> None:
    readme = (ROOT / "README.md").read_text()
    table = readme.split("\n## Commands\n", 1)[1].split("\n## ", 1)[0]
    listed = set(re.findall(r"^\| `share-bridge ([a-z-]+)", table, re.M))
    assert listed == set(subparsers(build_parser()))


def test_every_argument_has_help() -> None:
    missing = [
        f"{name} {action.dest}"
        for name, parser in commands()
        for action in parser._actions
        if not isinstance(action, argparse._HelpAction) and not action.help
    ]
    assert missing == []
