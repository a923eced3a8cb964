# The two set-up commands of the README: `make demo` and `make test`. Everything they need is
# installed here from nothing (Debian packages, the venv, PostgreSQL+TimescaleDB, Mosquitto).
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | md5sum | cut -c1-12)

.PHONY: demo test deps venv stack lab lint bench bench-agent bench-ingest bench-api clean-stack

deps:
	bash infra/local/install.sh

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	rm -f $(VENV)/.installed-* && touch $@

venv: $(STAMP)

stack: deps venv
	$(BIN)/cityops stack up
	$(BIN)/cityops db migrate

# a real OpenStack control plane on 127.0.0.1 (infra/openstack-lab): the cloud tests drive it
lab:
	bash infra/openstack-lab/lab.sh up

demo: stack lab
	$(BIN)/cityops demo

test: stack lab
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

lint: venv
	$(BIN)/ruff check .

bench: bench-ingest

bench-ingest: stack
	$(BIN)/python -m bench.ingest

bench-api: stack
	$(BIN)/python -m bench.api

clean-stack: venv
	$(BIN)/cityops stack down
