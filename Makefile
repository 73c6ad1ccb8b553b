# brittle: `make run` installs into .venv/ and runs the default job; `make test` runs the tests.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# brittle with its core dependencies (`make run`); DEV_STAMP: and the dev extra (every extra,
# pytest, ruff, mypy) for the tests, the linters and the benches
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev

.PHONY: install run test test-slow test-all lint bench docs bench-docs gpu-check gpu-pack gpu-pack-verify figures clean-cache

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch first and pinned: this build is the one the project is tested with
	$(PY) -m pip install -q torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install -q -e .
	touch $(STAMP)

$(DEV_STAMP): $(STAMP)
	$(PY) -m pip install -q -e '.[dev]'
	touch $(DEV_STAMP)

install: $(DEV_STAMP)

run: $(STAMP)
	$(PY) run.py

# two workers (pytest-xdist; one torch thread each, the `heavy` tests first: tests/conftest.py)
test: $(DEV_STAMP)
	$(PY) -m pytest -q -n 2 --dist load

# ruff (style at 100 characters, imports, bugbear, pyupgrade, complexity) on everything; mypy on the package (pyproject.toml)
lint: $(DEV_STAMP)
	$(VENV)/bin/ruff check brittle tests bench run.py
	$(VENV)/bin/mypy

# the `slow` tests alone (CI runs them after `make test`)
test-slow: $(DEV_STAMP)
	$(PY) -m pytest -q -m slow

test-all: $(DEV_STAMP)
	$(PY) -m pytest -q -m "slow or not slow"

# benchmarks print ratios measured side by side in one run (not part of the tests)
bench: $(DEV_STAMP)
	$(PY) bench/pretrain.py
	$(PY) bench/esvm.py
	$(PY) bench/retrain.py
	$(PY) bench/search.py
	$(PY) bench/startup.py
	$(PY) bench/default_run.py
	$(PY) bench/digits_compare.py
	$(PY) bench/checks.py

# the docs' generated parts from bench/results/*.json: docs/benchmarks.md, reproduction.md,
# digits-compare.md and the generated blocks of README.md and docs/*.md (bench/docs.py --check
# lists what is stale; tests/test_docs_generated.py fails on it)
docs: $(STAMP)
	$(PY) bench/docs.py

bench-docs: docs

# on a GPU machine: the parts of bench/gpu_check.py (--list) within 8 minutes, figures into
# bench/results/<date>-<device>.json (docs/gpu.md); the `bench` extra brings airbench (its part)
gpu-check: $(STAMP)
	$(PY) -m pip install -q -e '.[bench]'
	$(PY) bench/gpu_check.py

# for a GPU machine without a package index: wheels into .whl/ (airbench's too), CIFAR-10 into
# .gpu/, the command to run there, how to bring its results file back (docs/gpu.md);
# gpu-pack-verify runs that command here at toy size in a venv of its packages
gpu-pack: $(STAMP)
	$(PY) bench/gpu_pack.py

gpu-pack-verify: $(STAMP)
	$(PY) bench/gpu_pack.py --verify

# tables, figures and figures/report.md from every run under outputs/ and multirun/
figures: $(STAMP)
	$(PY) -m brittle.report

clean-cache:
	rm -rf .cache/brittle
