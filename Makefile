# `make serve` and `make test` bootstrap .venv from pyproject.toml on a fresh machine.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: serve test lint venv clean nginx chromium validate-deploy

# The stamp is newer than pyproject.toml once the environment matches it.
$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip setuptools  # venv's bundled setuptools 65 has CVE-2024-6345
	$(BIN)/python -m pip install --quiet -e '.[train,dev]'
	touch $@

venv: $(VENV)/.installed

serve: $(VENV)/.installed
	$(BIN)/muongan serve --model models/default --host $(HOST) --port $(PORT)

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: lint nginx chromium
	$(BIN)/python -m pytest -q

# tests/test_deploy_nginx.py runs two replicas behind a real nginx: install Debian's package when it is
# missing (needs root and apt, as on CI). If that fails the test skips and says why; nothing else needs it.
nginx:
	@command -v nginx >/dev/null 2>&1 || test -x /usr/sbin/nginx || \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nginx; } || \
		echo "warning: nginx could not be installed; tests/test_deploy_nginx.py will skip"

# tests/test_docs_offline.py renders /docs in a real headless browser: Debian's chromium, installed the same way.
chromium:
	@command -v chromium >/dev/null 2>&1 || \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium; } || \
		echo "warning: chromium could not be installed; tests/test_docs_offline.py will skip its browser tests"

# Dockerfile lint (hadolint), docker compose config, Kubernetes schemas, and the nginx topology test.
validate-deploy: $(VENV)/.installed nginx
	$(BIN)/python -m pytest -q tests/test_deploy_config.py tests/test_deploy_nginx.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
