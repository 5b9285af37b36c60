# Two commands a coordinator needs: `make demo` and `make test`. Both create .venv on first use.
SHELL := /bin/bash
VENV  := .venv
BIN   := $(VENV)/bin
# durable_rules builds on CPython 3.11 and 3.12 only (not 3.13): take the first that exists.
PYTHON ?= $(shell for p in python3.12 python3.11 python3; do \
	  if command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(not ((3,11) <= sys.version_info[:2] <= (3,12)))' 2>/dev/null; then echo $$p; break; fi; done)
HOUSEHOLDS ?= 5000
SEED ?= 42
WORKSPACE ?= workspace

.PHONY: install demo test lint format bench bench-convene bench-lifecycle bench-triage bench-triage-city bench-year crash serve screenshots clean

$(BIN)/.installed: pyproject.toml
	@test -n "$(PYTHON)" || { echo "Python 3.11 or 3.12 is required (durable_rules does not build on 3.13)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

install: $(BIN)/.installed

demo: install
	$(BIN)/engine demo --households $(HOUSEHOLDS) --seed $(SEED) --workspace $(WORKSPACE)

test: install lint
	$(BIN)/python -m pytest

# ruff: the formatter and the linter must be clean (configuration in pyproject.toml)
lint: install
	$(BIN)/ruff format --check --quiet engine tests bench
	$(BIN)/ruff check --quiet engine tests bench

format: install
	$(BIN)/ruff format engine tests bench
	$(BIN)/ruff check --fix engine tests bench

# every figure of issues 18 and 19 beside its target: import, full and incremental screen at 1M (with the
# reference evaluator's same-run ratio), convening 1,000 meetings, the 50,000-household demo span, the year;
# bench/duckdb_compare.py runs only where duckdb is installed (not a dependency: it says so and goes on)
bench: install
	$(BIN)/python bench/screen.py --households $(or $(BENCH_HOUSEHOLDS),1000000)
	$(BIN)/python bench/convene.py
	$(BIN)/python bench/convene.py --flagged 8000 --all-to-conference
	$(BIN)/python bench/lifecycle.py
	$(BIN)/python -m bench.triage --households 50000
	$(BIN)/python bench/duckdb_compare.py --households $(or $(BENCH_HOUSEHOLDS),1000000)
	$(BIN)/python -m bench.year --households $(or $(YEAR_HOUSEHOLDS),50000)

# issue 18: engine simulate's year on 50,000 households (bench/results/year-N.json)
bench-year: install
	$(BIN)/python -m bench.year --households $(or $(YEAR_HOUSEHOLDS),50000)

bench-convene: install
	$(BIN)/python bench/convene.py

bench-lifecycle: install
	$(BIN)/python bench/lifecycle.py

# issue 17: flag to first owner action and to conference, the pathway mix, the audit (bench/results/triage-N.json)
bench-triage: install
	$(BIN)/python -m bench.triage --households $(or $(BENCH_HOUSEHOLDS),50000)

# the same on the capacity a 50,000-household town needs (bench/city_config.py): bench/results/triage-50000-city-50k.json
bench-triage-city: install
	$(BIN)/python -m bench.city_config $(CURDIR)/bench/results/city-50k.config
	$(BIN)/python -m bench.triage --households 50000 --config $(CURDIR)/bench/results/city-50k.config --out bench/results/triage-50000-city-50k.json
	rm -rf $(CURDIR)/bench/results/city-50k.config

# SIGKILL the nightly cycle and the daily sweep at random points, rerun, check nothing lost or sent twice
crash: install
	$(BIN)/python -m bench.crashtrials --trials $(or $(TRIALS),200) --households $(or $(CRASH_HOUSEHOLDS),1000) --out bench/results/crash.json

# one command for an office PC: the console and answer pages (http://127.0.0.1:8300) and a real local
# Prefect server (UI on http://127.0.0.1:4200) serving the nightly, sweep and dispatch schedules
serve: install
	$(BIN)/engine web --workspace $(WORKSPACE) & web=$$!; \
	trap 'kill $$web 2>/dev/null; wait $$web 2>/dev/null' EXIT INT TERM; \
	$(BIN)/engine serve --workspace $(WORKSPACE)

# docs/img/*.png: the console and an agency's answer page on a demo town, by Debian's chromium (fonts-noto-cjk)
screenshots: install
	$(BIN)/python -m tests.web.browser.shots --out docs/img

clean:
	rm -rf $(VENV) $(WORKSPACE) *.egg-info
