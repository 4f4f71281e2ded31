"""Fuzz targets for everything that reads untrusted bytes before trusting them.

Each target in ``test_targets.py`` is a Hypothesis property, so ``pytest`` runs it as a bounded
test (``FUZZ_EXAMPLES`` scales every target's example count); ``python -m tests.fuzz`` runs the
same properties under atheris, coverage-guided, for ``--seconds`` each (``make fuzz``).
"""
