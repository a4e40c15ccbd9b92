# MedChain: `make demo` runs the end-to-end scenario, `make test` runs every check.
# Both set everything up on first use (.venv and node_modules); later runs reuse it.

SHELL   := /bin/bash
VENV    := .venv
BIN     := $(VENV)/bin
NODEBIN := $(CURDIR)/node_modules/.bin
export PATH := $(NODEBIN):$(CURDIR)/$(BIN):$(PATH)

# Which local chain the tests run on: development (Anvil, default) or ganache.
NETWORK ?= development
BROWNIE_NETWORK := $(if $(filter ganache,$(NETWORK)),ganache-cli,$(NETWORK))
# A free port per run, so two runs on one machine never share a chain.
MEDCHAIN_CHAIN_PORT ?= $(shell python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export MEDCHAIN_CHAIN_PORT

PY_STAMP   := $(VENV)/.setup-done
NODE_STAMP := node_modules/.setup-done
# GS1's epcis2.js and digital-link.js, used only by the tests as independent EPCIS checks.
EPCIS_CHECK_STAMP := tools/epcis-check/node_modules/.setup-done
# Slither lives in its own venv: its web3 stack is newer than the one eth-brownie pins.
SLITHER_VENV  := .venv-slither
SLITHER_STAMP := $(SLITHER_VENV)/.setup-done

.DEFAULT_GOAL := help
.PHONY: help setup build test test-contracts test-browser lint typecheck analyze slither solhint demo deploy bench lock clean

help: ## list every target (this text)
	@awk 'BEGIN {FS = ":.*## "} /^[a-z][a-z-]*:.*## / {printf "make %-15s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

setup: $(PY_STAMP) $(NODE_STAMP) $(EPCIS_CHECK_STAMP) ## create .venv and node_modules (pinned; later runs reuse them)

$(PY_STAMP): pyproject.toml requirements-dev.txt requirements.lock tools/setup/python.sh tools/setup/venv.sh
	@tools/setup/python.sh

$(NODE_STAMP): package.json package-lock.json tools/setup/node.sh
	@tools/setup/node.sh

$(EPCIS_CHECK_STAMP): tools/epcis-check/package.json tools/epcis-check/package-lock.json $(NODE_STAMP)
	@cd tools/epcis-check && npm ci --no-audit --no-fund >../../epcis-check-install.log 2>&1 || \
	  { echo "setup: npm ci in tools/epcis-check failed (see epcis-check-install.log)" >&2; exit 1; }
	@touch $@

$(SLITHER_STAMP): tools/setup/slither-requirements.txt tools/setup/slither.sh tools/setup/venv.sh
	@tools/setup/slither.sh

build: setup ## compile the contracts into build/contracts
	@$(BIN)/brownie compile >build.log 2>&1 || { tools/setup/show-compile-error.sh build.log; exit 1; }
	@echo "build: contracts compiled (build/contracts)"

lint: setup ## ruff check and ruff format --check over the Python code
	@$(BIN)/ruff check medchain scripts tests bench tools
	@$(BIN)/ruff format --check medchain scripts tests bench tools

typecheck: setup ## mypy --strict over medchain/
	@$(BIN)/mypy

# Static analysis needs node_modules (solhint, solc-js, OpenZeppelin) and .venv-slither, not .venv:
# slither compiles the sources itself through tools/solc (see tools/analyze/slither_check.py).
analyze: solhint slither ## static analysis of the contracts: solhint and triaged slither

solhint: $(NODE_STAMP) ## solhint over contracts/ and interfaces/
	@tools/analyze/solhint.sh

slither: $(NODE_STAMP) $(SLITHER_STAMP) ## slither, every finding fixed or triaged (tools/analyze/slither-triage.toml)
	@$(SLITHER_VENV)/bin/python tools/analyze/slither_check.py

test-contracts: build ## only the brownie tests (ARGS="-k name" to choose; NETWORK=ganache for Ganache)
	@$(BIN)/brownie test --network $(BROWNIE_NETWORK) $(ARGS)

test: lint typecheck analyze test-contracts ## set up, lint, type-check, analyze and run every test

# Not part of `make test`: it needs Debian's chromium (apt-get install -y chromium), which .ci/run installs.
test-browser: build ## open the KPI report page in headless Chromium and check what a reader sees
	@test -x "$${MEDCHAIN_CHROMIUM:-/usr/bin/chromium}" || { echo "test-browser: no Chromium at $${MEDCHAIN_CHROMIUM:-/usr/bin/chromium}; install it (Debian: apt-get install -y chromium)" >&2; exit 1; }
	@MEDCHAIN_BROWSER_TEST=required $(BIN)/brownie test tests/browser --network $(BROWNIE_NETWORK) $(ARGS)
	@echo "test-browser: page, JSON and screenshot kept in reports/browser/"

demo: build ## set up, start a local chain, deploy the suite and run the end-to-end scenario
	@$(BIN)/medchain demo

deploy: build ## deploy with brownie (scripts/deploy.py) on NETWORK
	@$(BIN)/brownie run scripts/deploy.py --network $(BROWNIE_NETWORK)

bench: build ## print gas and throughput tables (bench/)
	@$(BIN)/python -m bench.registry_gas
	@$(BIN)/python -m bench.consent_gas
	@$(BIN)/python -m bench.ehr
	@$(BIN)/python -m bench.drug
	@$(BIN)/python -m bench.claims
	@$(BIN)/python -m bench.gateway

lock: setup ## regenerate requirements.lock from .venv
	@{ echo '# Exact versions of everything in .venv, used as constraints by `make setup` (regenerate: make lock).'; \
	   $(BIN)/pip freeze --exclude-editable | grep -v '^medchain'; } > requirements.lock

clean: ## remove build output (keeps .venv, .venv-slither and node_modules)
	rm -rf build reports deployments build.log
