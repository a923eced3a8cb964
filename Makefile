# The two set-up commands of the README: `make demo` and `make test`. Everything they need is
# installed here from nothing (Debian packages, the venv, PostgreSQL+TimescaleDB, Mosquitto).
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | md5sum | cut -c1-12)

.PHONY: demo test deps venv stack lab web pglite interop lint bench bench-agent bench-snmp bench-ingest bench-api bench-decode bench-agent-logs bench-map bench-sync bench-ha bench-indicators clean-stack bench-governance bench-quality

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

# the console (api/web): npm packages at set-up time, built by vite into api/web/dist, which
# the API serves; rebuilt only when the lock file or the sources changed
WEB := api/web
WEB_SRC := $(shell find $(WEB)/src $(WEB)/scripts -type f) $(WEB)/index.html $(WEB)/vite.config.js \
           $(WEB)/package.json

# `npm install --no-save` installs the locked versions, as `npm ci` would; `npm ci` itself
# refuses this lock file: the registry reachable here serves rollup's native binaries for
# Linux only, so the lock lacks the other platforms' optional packages
$(WEB)/node_modules/.cityops-ci: $(WEB)/package-lock.json
	cd $(WEB) && npm install --no-save --no-audit --no-fund
	touch $@

$(WEB)/dist/.built: $(WEB)/node_modules/.cityops-ci $(WEB_SRC)
	cd $(WEB) && npm run build
	touch $@

# the API's /docs viewer (api/docs.py): Swagger UI 5 from npm, renders OpenAPI 3.1
DOCS_VIEWER := api/docs_viewer
$(DOCS_VIEWER)/node_modules/.cityops-ci: $(DOCS_VIEWER)/package-lock.json
	cd $(DOCS_VIEWER) && npm ci --no-audit --no-fund --ignore-scripts
	touch $@

web: deps $(WEB)/dist/.built $(DOCS_VIEWER)/node_modules/.cityops-ci

# test-only: a Timescale-licensed TimescaleDB in PGlite for the continuous-aggregate tests
# (tests/pglite_timescale); the lock file pins the packages by integrity
PGLITE := tests/pglite_timescale
$(PGLITE)/node_modules/.cityops-ci: $(PGLITE)/package-lock.json
	cd $(PGLITE) && npm ci --no-audit --no-fund
	touch $@

pglite: deps $(PGLITE)/node_modules/.cityops-ci

# test-only: other vendors' stacks the drivers are tested against (tests/interop/peers:
# node-opcua, MQTT.js), pinned by integrity in the lock file; libmodbus comes from Debian
INTEROP := tests/interop/peers
$(INTEROP)/node_modules/.cityops-ci: $(INTEROP)/package-lock.json
	cd $(INTEROP) && npm ci --no-audit --no-fund --ignore-scripts
	touch $@

interop: deps $(INTEROP)/node_modules/.cityops-ci

demo: stack lab web
	$(BIN)/cityops demo

# two pytest-xdist workers: the suite waits on processes, brokers and browsers about half
# the time; the shared suites keep to one worker each (tests/conftest.py SHARED_SUITES)
TEST_WORKERS ?= 2

test: stack lab web pglite interop
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q -p no:cacheprovider --durations=25 -n $(TEST_WORKERS) $(PYTEST_ARGS)

lint: venv
	$(BIN)/ruff check .

bench: bench-ingest

bench-ingest: stack  # e.g. make bench-ingest INGEST_ARGS="--duration 600"
	$(BIN)/python -m bench.ingest $(INGEST_ARGS)

bench-api: stack  # API vs the same SQL direct, idle and under 100,000 readings/s; e.g. API_ARGS="--duration 5"
	$(BIN)/python -m bench.api $(API_ARGS)

bench-agent: stack  # the agent's Modbus readings per CPU-second vs a bare pymodbus client
	$(BIN)/python -m bench.agent $(AGENT_ARGS)

bench-snmp: venv  # 200 48-port switches' interface counters: driver readings/s and CPU vs snmpbulkwalk
	$(BIN)/python -m bench.snmp $(SNMP_ARGS)

bench-decode: venv  # the ingest decoder's CPU per reading, no services needed
	$(BIN)/python -m bench.decode

bench-agent-logs: venv  # bytes an agent logs at INFO against a quiet OPC-UA device
	$(BIN)/python -m bench.agent_logs

bench-map: stack  # vector tiles of 100,000 points and 10,000 cells, API vs direct ST_AsMVT
	$(BIN)/python -m bench.map $(MAP_ARGS)

bench-indicators: stack  # 1,000 indicators over a year of events vs their SQL run by psql -f
	$(BIN)/python -m bench.indicators $(INDICATORS_ARGS)

bench-sync: stack  # MariaDB → raw layer: 1,000,000 rows vs mariadb --batch | COPY, then 10,000 changed
	$(BIN)/python -m bench.sync $(SYNC_ARGS)

bench-quality: stack  # every quality rule of a 1,000,000-row dataset in one run vs a hand-written count
	$(BIN)/python -m bench.quality $(QUALITY_ARGS)

bench-governance: stack  # raw → std.enterprises model over 1,000,000 rows vs one hand-written CREATE TABLE AS
	$(BIN)/python -m bench.governance $(GOVERNANCE_ARGS)

bench-ha: stack  # readings/s and p99 with/without the synchronous standby, failover time
	$(BIN)/python -m bench.ha $(HA_ARGS)

clean-stack: venv
	$(BIN)/cityops stack down
