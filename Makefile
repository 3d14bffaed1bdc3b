# `make serve` and `make test` bootstrap .venv from pyproject.toml on a fresh machine.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: serve test lint venv clean nginx chromium validate-deploy podman images image image-run image-base image-train image-nginx image-gpu test-image-gpu test-images image-clean

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
	@$(MAKE) --no-print-directory images || \
		echo "warning: the images could not be built; tests/test_image*.py and tests/test_compose.py will say why"
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

# --- Container images (deploy/README.md) -------------------------------------------------------------------
# Built with podman from a Debian 12 base made by debootstrap, so no image registry is needed; the project's
# containers.conf (runc, ulimits the host can grant) is used instead of the machine's own.
ENGINE_ENV := CONTAINERS_CONF=$(CURDIR)/deploy/podman/containers.conf
PODMAN := $(ENGINE_ENV) podman
BASE_IMAGE ?= localhost/muongan-base:bookworm
IMAGE ?= localhost/muongan:latest
TRAIN_IMAGE ?= localhost/muongan-train:latest
GPU_IMAGE ?= localhost/muongan-gpu:latest
NGINX_IMAGE ?= localhost/muongan-nginx:latest
# The Debian mirror apt already uses here, else Debian's own.
DEBIAN_MIRROR ?= $(or $(shell apt-cache policy 2>/dev/null | awk '$$3 == "bookworm/main" {print $$2; exit}'),http://deb.debian.org/debian)
# The host's CA bundle replaces the base's during the build, for a network behind a TLS-inspecting proxy.
CA_BUNDLE ?= /etc/ssl/certs/ca-certificates.crt
BUILD = $(ENGINE_ENV) deploy/podman/build.sh $(1) \
	--format docker --network host --layers -v $(CA_BUNDLE):/etc/ssl/certs/ca-certificates.crt:ro

# podman, runc, netavark + aardvark-dns (replicas find each other by name) and debootstrap, as root via apt.
podman:
	@dpkg -s podman runc netavark aardvark-dns debootstrap >/dev/null 2>&1 || \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
			podman runc netavark aardvark-dns debootstrap; }

image-base: podman
	$(ENGINE_ENV) deploy/podman/base-image.sh $(BASE_IMAGE) $(DEBIAN_MIRROR)

# The serving image (CPU): `make image`, then `podman run --rm -p 8000:8000 localhost/muongan`.
image: image-base
	$(call BUILD,$(IMAGE)) --build-arg PYTHON_IMAGE=$(BASE_IMAGE) --target serve .

# One command from a fresh clone: build the serving image and serve on http://$(HOST):$(PORT) (Ctrl-C stops it).
image-run: image
	$(PODMAN) run --rm -p $(HOST):$(PORT):8000 $(IMAGE)

image-train: image-base
	$(call BUILD,$(TRAIN_IMAGE)) --build-arg PYTHON_IMAGE=$(BASE_IMAGE) --target train .

image-nginx: image-base
	$(call BUILD,$(NGINX_IMAGE)) --build-arg NGINX_BASE_IMAGE=$(BASE_IMAGE) deploy/nginx

images: image image-train image-nginx

# The GPU serving image: several GB of CUDA wheels, so not part of `make test`; `make test-image-gpu` checks it.
image-gpu: image-base
	$(call BUILD,$(GPU_IMAGE)) --build-arg PYTHON_IMAGE=$(BASE_IMAGE) --target serve-gpu .

test-image-gpu: $(VENV)/.installed image-gpu
	MUONGAN_TEST_GPU_IMAGE=1 $(BIN)/python -m pytest -q tests/test_image_gpu.py

# The images built and run for real: serving, compose with replicas behind nginx, training.
test-images: $(VENV)/.installed images
	$(BIN)/python -m pytest -q tests/test_image.py tests/test_image_train.py tests/test_compose.py

image-clean:
	-$(PODMAN) rmi -f $(IMAGE) $(TRAIN_IMAGE) $(GPU_IMAGE) $(NGINX_IMAGE) $(BASE_IMAGE)
	$(PODMAN) image prune -f
