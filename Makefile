# Tessera: the two commands a fresh machine needs.
#   make run   installs Tessera into .venv, migrates SQLite, seeds the demo account, serves it
#   make test  installs what the tests need (Debian packages included) and runs the whole suite
PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
PORT   ?= 5000
HOST   ?= 127.0.0.1

.PHONY: run test install install-test bench clean

# relay_ext's .pyx sources too: an editable install compiles them once, so a changed one needs
# pip install -e . again.
$(VENV)/.installed: setup.py pyproject.toml $(wildcard relay_ext/*.pyx)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip setuptools wheel
	$(PY) -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	bash scripts/install-system-deps
	$(PY) -m pip install --quiet -e '.[test,ldap]'
	touch $@

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

run: install
	$(PY) -m app db upgrade
	$(PY) -m app demo
	@echo "Open http://$(HOST):$(PORT)/ and sign in with a demo user above."
	$(PY) -m app run --host $(HOST) --port $(PORT)

# The whole suite: every test on SQLite, then the unit and integration tests again on
# PostgreSQL (a schema of its own); see scripts/run-tests.
test: install-test
	bash scripts/run-tests

# Every benchmark in bench/, each comparing against a peer in the same run, gathered into one
# JSON object (docs/benchmarks.md).
bench: install-test
	$(PY) -m bench --json

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
