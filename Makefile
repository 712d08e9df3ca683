# The two set-up commands of a fresh machine (see README): `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# The PostgreSQL tests' server (jobq's suite and its pytest plugin); skipped loudly if absent.
JOBQ_TEST_PG_URL ?= postgresql://postgres@127.0.0.1:5432/test
export JOBQ_TEST_PG_URL

.PHONY: demo test lint bench clean

# The demo needs jobq alone (SQLite); the tests, lint and bench need the extras, the bench's
# peers (`jobq bench --peers` is tested against them) and the dev tools.
$(VENV)/.installed-jobq: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e .
	touch $@

$(VENV)/.installed: $(VENV)/.installed-jobq
	$(PY) -m pip install --quiet -e '.[dev,bench]'
	touch $@

demo: $(VENV)/.installed-jobq
	$(PY) -m jobq demo

# Each test has its own database (a file, or a PostgreSQL schema), so the suite runs in
# parallel: most of its time is spent waiting on worker processes, not on a core, so it
# runs 4 at a time even on 2 cores (two at a time took half as long again).
test: $(VENV)/.installed
	$(PY) -m pytest --numprocesses 4

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check jobq tests docs/examples examples
	$(VENV)/bin/ruff format --check jobq tests docs/examples examples
	$(VENV)/bin/mypy

bench: $(VENV)/.installed
	$(PY) -m jobq.bench

clean:
	rm -rf $(VENV) jobq-demo.db*
