# Two commands do all set-up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
LINT_PATHS := azproxy tests $(wildcard bench/*.py)

.PHONY: run test lint fmt typecheck pytest bench clean emulator

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.run-deps: setup.cfg setup.py | $(BIN)/python
	$(BIN)/python -m pip install -q -e .
	touch $@

$(VENV)/.test-deps: setup.cfg setup.py | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $@

run: $(VENV)/.run-deps  ## start the gateway (in front of the built-in emulator when no endpoint is set)
	$(BIN)/python -m azproxy $(ARGS)

emulator: $(VENV)/.run-deps  ## start the Azure emulator on its own
	$(BIN)/python -m azproxy.emulator $(ARGS)

test: lint typecheck pytest  ## lint, type-check and run the whole suite

lint: $(VENV)/.test-deps
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/ruff format --check $(LINT_PATHS)

fmt: $(VENV)/.test-deps
	$(BIN)/ruff format $(LINT_PATHS)
	$(BIN)/ruff check --fix $(LINT_PATHS)

typecheck: $(VENV)/.test-deps
	$(BIN)/mypy

# The Node SDK end-to-end tests run the official `openai` package with the machine's Node.js.
NODE_E2E := tests/node

$(NODE_E2E)/node_modules/.installed: $(NODE_E2E)/package.json $(NODE_E2E)/package-lock.json
	npm ci --prefix $(NODE_E2E) --no-audit --no-fund
	touch $@

pytest: $(VENV)/.test-deps $(NODE_E2E)/node_modules/.installed
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: $(VENV)/.run-deps  ## direct-vs-gateway benchmark; installs nginx and wrk from Debian if missing
	$(BIN)/python -m pip install -q -r bench/requirements.txt
	bench/run.sh $(BIN)/python $(ARGS)

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .pytest_cache .ruff_cache $(NODE_E2E)/node_modules
