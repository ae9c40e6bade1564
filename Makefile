# The commands the README shows. Everything runs from a project-local .venv,
# installed from the lock files so a fresh clone gets what CI tested.

# Lambda's Python (3.12) when this machine has one (tools/find-python312:
# PATH, then pyenv), so the suite runs on what the functions run on; else the
# default python3 (3.11 or later). PYTHON=... picks another.
PYTHON ?= $(shell tools/find-python312 2>/dev/null || echo python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
SAM_VENV := .venv-sam
SAM    := $(SAM_VENV)/bin/sam
SAM_CLI_VERSION := 1.170.0
export AWS_DEFAULT_REGION ?= us-east-1
export SAM_CLI_TELEMETRY := 0

.PHONY: install run test test-fast lint format validate build lock docs openapi clean help

help:
	@echo "make run       start the local stack on http://127.0.0.1:$${PORT:-3000}"
	@echo "make test      run the whole test suite on real PostgreSQL and Redis"
	@echo "make lint      ruff, mypy and the import contracts"
	@echo "make validate  sam validate --lint (SAM CLI in its own virtualenv)"
	@echo "make build     sam build without Docker (Python 3.12 compiles the layers' bytecode)"
	@echo "make lock      re-resolve requirements*.lock from pyproject.toml"
	@echo "make docs      build the documentation site (docs/) into site/, strict"

$(STAMP): pyproject.toml requirements-dev.lock
	@echo "==> installing into $(VENV) with $$($(PYTHON) --version) (first run takes a minute)"
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is required"'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.lock
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	@touch $(STAMP)

install: $(STAMP)

run: install
	@$(BIN)/storefront run

# The SAM CLI too: tests/infra/test_build_smoke.py runs `sam build`. Coverage
# of storefront and storefront_dev ([tool.coverage] in pyproject.toml): the
# whole suite fails below its fail_under; a run narrowed by PYTEST_ARGS only
# reports it (docs/development.md).
test: install $(SAM)
	@$(BIN)/python -m pytest --cov --cov-report=term:skip-covered \
		$(if $(PYTEST_ARGS),--cov-fail-under=0) $(PYTEST_ARGS)

# Figures against a reference from the same run (README, Performance); servers
# as for test (BENCH_* or TEST_* URLs, else embedded). Chaos starts its own.
.PHONY: bench chaos
bench: install
	@$(BIN)/python -m storefront_dev.bench $(BENCH_ARGS)

chaos: install
	@$(BIN)/python -m storefront_dev.chaos $(CHAOS_ARGS)

# mypy checks the tests too; lint-imports the contracts in .importlinter.
lint: install
	@$(BIN)/ruff check .
	@$(BIN)/ruff format --check .
	@$(BIN)/mypy
	@$(BIN)/lint-imports

format: install
	@$(BIN)/ruff check --fix .
	@$(BIN)/ruff format .

# The SAM CLI pins its own dependencies; its own virtualenv keeps them from
# constraining the application's.
$(SAM):
	@echo "==> installing the SAM CLI $(SAM_CLI_VERSION) into $(SAM_VENV)"
	@$(PYTHON) -m venv $(SAM_VENV)
	@$(SAM_VENV)/bin/python -m pip install --quiet --disable-pip-version-check "aws-sam-cli==$(SAM_CLI_VERSION)"

validate: $(SAM)
	@$(SAM) validate --lint --template template.yaml

# Layers build with their Makefiles (Lambda-platform wheels from pip, see
# layers/dependencies/Makefile); functions are their app.py alone. The
# dependencies layer uses the project's pip, hence install.
build: install $(SAM) openapi
	@$(SAM) build --template template.yaml

# The API's one OpenAPI document, written into the package the layer ships
# (GET /openapi.json serves it); a test fails when it is stale.
openapi: install
	@$(BIN)/python -m storefront_dev.openapi

# requirements-dev.lock is universal from 3.11 up: one lock for 3.11 and
# 3.12 (CI installs it on 3.12 where it can); requirements.lock is what the
# dependencies layer ships, for Lambda's 3.12 on arm64.
lock: install
	@$(BIN)/uv pip compile pyproject.toml --extra dev --universal --python-version 3.11 \
		-o requirements-dev.lock -q
	@$(BIN)/uv pip compile pyproject.toml --python-version 3.12 \
		--python-platform aarch64-manylinux2014 -o requirements.lock -q

# The documentation site: docs/*.md and mkdocs.yml (Material for MkDocs).
# Strict, so a broken link or anchor, or a page outside the nav, fails it
# (NO_MKDOCS_2_WARNING silences Material's end-of-life banner).
docs: install
	@NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site

clean:
	rm -rf $(VENV) $(SAM_VENV) .aws-sam .mypy_cache .ruff_cache .pytest_cache .hypothesis .coverage site
