"""``python -m tests.fuzz [--seconds N] [TARGET ...]``: run the fuzz targets for N seconds each.

Each target runs in its own process under atheris (libFuzzer, guided by coverage of ``bridge``),
fed through Hypothesis's ``fuzz_one_input``, so a crash is reported as the property's failing
example and stays in Hypothesis's example database for the next ``pytest`` run. Without atheris
(no wheel for this Python) the same property is fed random bytes for the same time: unguided,
but still bounded and still the property. Exit 1 when any target failed.
"""

from __future__ import annotations

import argparse
import importlib
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ARTIFACTS = Path(".fuzz-artifacts")  # libFuzzer's crash inputs, one directory per target
RANDOM_INPUT_BYTES = 4096


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fuzz", description=__doc__)
    parser.add_argument("targets", nargs="*", help="some of the targets (default: all)")
    parser.add_argument(
        "--seconds",
        type=int,
        default=int(os.environ.get("FUZZ_SECONDS", "120")),
        help="per target (default: $FUZZ_SECONDS or 120)",
    )
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.seconds < 1:
        parser.error("--seconds must be at least 1")
    if args.one:  # the child: nothing of bridge is imported yet, so atheris can instrument it
        return _fuzz(args.one, args.seconds)
    from tests.fuzz.test_targets import TARGETS

    unknown = sorted(set(args.targets) - set(TARGETS))
    if unknown:
        parser.error(f"unknown target(s): {', '.join(unknown)}; have {', '.join(TARGETS)}")
    failed = []
    for name in args.targets or list(TARGETS):
        sys.stdout.write(f"== fuzz {name}: {args.seconds} s\n")
        sys.stdout.flush()
        command = [
            sys.executable,
            "-m",
            "tests.fuzz",
            "--one",
            name,
            "--seconds",
            str(args.seconds),
        ]
        if subprocess.run(command, check=False).returncode != 0:
            failed.append(name)
    sys.stdout.write(f"fuzz: {'failed: ' + ', '.join(failed) if failed else 'no failure'}\n")
    return 1 if failed else 0


def _fuzz(name: str, seconds: int) -> int:
    try:
        atheris: Any = importlib.import_module("atheris")
    except ImportError:
        return _fuzz_randomly(name, seconds)
    with atheris.instrument_imports(include=["bridge"]):
        targets = importlib.import_module("tests.fuzz.test_targets")
    target: Any = targets.TARGETS[name]
    artifacts = ARTIFACTS / name
    artifacts.mkdir(parents=True, exist_ok=True)
    options = [
        f"-max_total_time={seconds}",
        f"-artifact_prefix={artifacts}/",
        "-len_control=0",  # Hypothesis reads many bytes per example: offer them from the start
    ]
    atheris.Setup([sys.argv[0], *options], target.hypothesis.fuzz_one_input)
    atheris.Fuzz()  # exits the process: 0 when the time is up, non-zero on a crash
    return 0  # pragma: no cover - atheris.Fuzz does not return


def _fuzz_randomly(name: str, seconds: int) -> int:
    from tests.fuzz.test_targets import TARGETS

    target: Any = TARGETS[name]
    ends, runs = time.monotonic() + seconds, 0
    while time.monotonic() < ends:
        target.hypothesis.fuzz_one_input(os.urandom(RANDOM_INPUT_BYTES))
        runs += 1
    sys.stdout.write(f"{name}: {runs} random inputs (atheris is not installed), no failure\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
