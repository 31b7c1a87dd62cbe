# Two commands do all the set-up on a fresh machine (Python 3.11, package index only):
#   make run   -> creates .venv, installs Kakashi, starts it on the simulated exchange
#   make test  -> creates .venv, installs Kakashi + test tools, lints and format-checks (ruff),
#                 type-checks (mypy, tests included), checks the layers (lint-imports), and runs
#                 the whole suite, two workers per core (pytest-xdist)
PYTHON ?= python3.11
# Two test workers per core: a quarter of the suite's time is waiting (desk timers and pauses,
# polls of a running engine, child processes), and a second worker per core fills it (on this
# 2-core machine: 207 s with 2 workers, 150 s with 4, the same tests; issue #21's 3-minute target).
WORKERS ?= $(shell echo $$(( $$(nproc) * 2 )))
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test bench clean

# constraints.txt pins every package, direct and transitive, so installs are repeatable.
# Refresh it deliberately: .venv/bin/pip freeze --exclude-editable > constraints.txt
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	# Kalshi's official SDK, test-only: the loopback servers' payloads must parse with its
	# pydantic models (tests/integration/test_sdk_shapes.py). Its metadata says Python >=3.13,
	# but it is pure Python and runs on 3.11, so pip is told to skip that check; --no-deps
	# because its dependencies come pinned with '.[dev]' above (urllib3, lazy-imports).
	$(BIN)/python -m pip install --quiet -c constraints.txt --no-deps --ignore-requires-python kalshi-python-sync
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/kakashi $(ARGS)

test: $(STAMP)
	$(BIN)/ruff check kakashi_tui tests benchmarks
	$(BIN)/ruff format --check kakashi_tui tests benchmarks
	$(BIN)/python -m mypy
	$(BIN)/lint-imports --no-cache
	$(BIN)/python -m pytest -q -n $(WORKERS) --dist worksteal $(ARGS)

clean:
	rm -rf $(VENV) build *.egg-info

bench: $(STAMP)
	$(BIN)/python -m benchmarks.bench $(ARGS)
