# MedLedger: every target installs what it needs first (pinned Python and npm dependencies).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PY_STAMP := $(VENV)/.installed
NPM_STAMP := node_modules/.installed
PYTEST_WORKERS ?= 2
## the chain `make run` and `make demo` start: anvil (embedded) or clique (4 geth validators, data in data-clique)
NETWORK ?= anvil
DATA := $(if $(filter clique,$(NETWORK)),data-clique,data)
ENGINE := .tools/geth

.PHONY: deps browser postgres engine run demo test lint bench contracts clean

deps: $(PY_STAMP) $(NPM_STAMP)

$(PY_STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	touch $@

# npm ci also brings the portal's front-end dependencies (ethers; qrcode-generator for the registration code; pinned) and the API docs page's
# (swagger-ui-dist, pinned); they are copied next to the portal's and the docs' own files so every node
# serves them from its own origin (no CDN on a hospital network)
$(NPM_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	mkdir -p ledger_api/portal/static/vendor
	cp node_modules/ethers/dist/ethers.min.js ledger_api/portal/static/vendor/ethers.min.js
	cp node_modules/qrcode-generator/dist/qrcode.mjs ledger_api/portal/static/vendor/qrcode.mjs
	mkdir -p ledger_api/apidocs/static/vendor
	cp node_modules/swagger-ui-dist/swagger-ui-bundle.js node_modules/swagger-ui-dist/swagger-ui.css \
		ledger_api/apidocs/static/vendor/
	touch $@

## browser: Debian's Chromium (and CJK fonts) for the portal's end-to-end tests, installed once with apt
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
browser:
	@dpkg -s chromium fonts-noto-cjk >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-noto-cjk; }

## postgres: Debian's PostgreSQL server binaries, installed once with apt. No server is started here and the
## cluster Debian creates is left stopped: the tests and benchmarks start a throw-away cluster of their own
## on a free loopback port, as the `postgres` user when run as root (tests/utils/postgres.py)
postgres:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql; }

## engine: the BFT test network's validator (geth, pinned, from the Go module proxy), built once into .tools/
engine: $(ENGINE)
$(ENGINE): scripts/build-chain-engine
	scripts/build-chain-engine

## run: the main job: the local consortium (chain + 3 member nodes, data in ./data); Ctrl-C stops it.
## NETWORK=clique: a validator per hospital and one for the audit office instead of anvil
run: deps $(if $(filter clique,$(NETWORK)),$(ENGINE))
	$(BIN)/medledger consortium up --data-dir $(DATA) --network $(NETWORK)

## demo: the story (consent, revocation, break-glass, audit) on the running local consortium, or a fresh one
demo: deps $(if $(filter clique,$(NETWORK)),$(ENGINE))
	$(BIN)/python scripts/demo.py --data-dir $(DATA) --network $(NETWORK)

## test: lint + the whole suite (contracts on eth-tester and anvil, chain layer, crypto, API, and the
## network tier on 4 geth validators)
test: deps browser postgres engine lint
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS)

## lint: ruff (rules and format), the import-layer contract, and mypy (all of it; strict on crypto, chain and core)
lint: deps
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	mkdir -p .mypy_path && ln -sfn ../crypto .mypy_path/medledger_crypto
	$(BIN)/mypy -p medledger_crypto -p ledger_api

## bench: every benchmark; prints a table and writes bench-results.json
bench: deps browser postgres engine
	$(BIN)/python scripts/bench.py

## contracts: recompile contracts/ with the pinned solc-js and rewrite the committed artifacts
contracts: deps
	$(BIN)/python scripts/compile_contracts.py

clean:
	rm -rf $(VENV) node_modules .pytest_cache .mypy_cache .mypy_path bench-results.json
