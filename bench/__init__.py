"""Benchmarks: ``python -m bench [NAME ...]`` runs ``bench/bench_NAME.py``'s ``main()``;
``python -m bench NAME OPTION ...`` passes the options to that one benchmark's ``main(argv)``."""

from __future__ import annotations
