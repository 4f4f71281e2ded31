# The two commands: `make demo` and `make test`. Each sets up .venv when it is missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint types imports unit bench fuzz soak clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,postgres]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/share-bridge demo

test: lint types imports unit

lint: $(STAMP)
	$(BIN)/ruff format --check bridge tests bench
	$(BIN)/ruff check bridge tests bench

types: $(STAMP)
	$(BIN)/mypy bridge tests bench

imports: $(STAMP)
	$(BIN)/lint-imports

unit: $(STAMP)
	rm -f .coverage .coverage.*
	$(BIN)/python -m pytest -p no:cacheprovider -n auto --dist worksteal --cov=bridge --cov-branch --cov-report=term --cov-fail-under=90

bench: $(STAMP)
	$(BIN)/python -m bench

# The fuzz targets (tests/fuzz) under atheris, FUZZ_SECONDS each; `make test` runs them briefly.
FUZZ_SECONDS ?= 120
fuzz: $(STAMP)
	$(BIN)/python -m pip install --quiet 'atheris>=2.3'
	$(BIN)/python -m tests.fuzz --seconds $(FUZZ_SECONDS)

# Mixed partner traffic with upstream and sink faults against the sandbox and `bridge serve`,
# then a verdict (bench/soak.py). `make soak SOAK_MINUTES=5` for a short one.
SOAK_MINUTES ?= 60
soak: $(STAMP)
	$(BIN)/python -m bench soak --minutes $(SOAK_MINUTES)

clean:
	rm -rf $(VENV) .coverage .coverage.* .fuzz-artifacts .mypy_cache .ruff_cache .pytest_cache .import_linter_cache
