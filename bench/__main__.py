"""``python -m bench [NAME ...]``: run every ``bench/bench_*.py`` module's ``main()``, or the named
ones (``sandbox_imports`` or ``bench_sandbox_imports``). ``python -m bench NAME OPTION ...``
runs one benchmark with its own options: everything from the first argument starting with ``-``
goes to its ``main(argv)`` (``python -m bench intake --rounds 3``; ``python -m bench intake
--help`` lists them). Exit code: the worst of theirs."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
import traceback
from collections.abc import Sequence

import bench

#: Run only when named: ``soak`` takes an hour by default.
ON_REQUEST = {"soak": "bench.soak"}
CRASHED = 2  # a benchmark raised; 1 is a benchmark that ran and missed its target


def discover() -> dict[str, str]:
    """Benchmark name -> module name, for every ``bench_*`` module in this package."""
    return {
        info.name.removeprefix("bench_"): f"bench.{info.name}"
        for info in sorted(pkgutil.iter_modules(bench.__path__), key=lambda info: info.name)
        if info.name.startswith("bench_")
    }


def main(argv: Sequence[str] | None = None) -> int:
    available = discover()
    everything = {**available, **ON_REQUEST}
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        usage="%(prog)s [-h] [NAME ...] | %(prog)s NAME [OPTION ...]",
        description=__doc__,
    )
    parser.add_argument(
        "names",
        nargs="*",
        help=f"benchmarks: {', '.join(available)} (all by default); also {', '.join(ON_REQUEST)}",
    )
    arguments = list(sys.argv[1:] if argv is None else argv)
    # The names end at the first option; the options from there on are the benchmark's own.
    # With no name first, the options are ours (``--help``; anything else is refused).
    split = next((i for i, arg in enumerate(arguments) if arg.startswith("-")), len(arguments))
    if split == 0:
        split = len(arguments)
    args = parser.parse_args(arguments[:split])
    options = arguments[split:]
    names = [name.removeprefix("bench_") for name in args.names] or list(available)
    unknown = [name for name in names if name not in everything]
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}; have {', '.join(everything)}")
    if options and len(names) > 1:
        parser.error(f"options ({' '.join(options)}) go to one benchmark: name exactly one")
    worst = 0
    for name in names:
        sys.stdout.write(f"== {name}\n")
        sys.stdout.flush()
        try:
            result = importlib.import_module(everything[name]).main(options)
        except Exception:  # noqa: BLE001 - one broken benchmark must not hide the others' figures
            traceback.print_exc()
            sys.stdout.write(f"{name} failed before its summary\n")
            result = CRASHED
        worst = max(worst, int(result or 0))
    return worst


if __name__ == "__main__":
    sys.exit(main())
