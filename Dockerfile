# syntax=docker/dockerfile:1
#
# muongan images, all from one CPython 3.11 base. Targets:
#   serve (default)  onnxruntime's CPU build at the version pyproject.toml pins, the default model baked in,
#                    no TensorFlow: the same muons, bit for bit, as `muongan generate --model` on any CPU.
#   serve-gpu        the same service with onnxruntime-gpu; CUDA and cuDNN come as PyPI wheels, so no CUDA
#                    base image is needed. Falls back to the CPU provider when no GPU is visible (the service
#                    reports its provider in /readyz and /v1/model).
#   train            TensorFlow (CPU) for `muongan sample|train|evaluate`; never used for serving.
#
#   docker build -t muongan .                                   # serving image (CPU)
#   docker build --target serve-gpu -t muongan-gpu .            # serving image (GPU)
#   docker build --target train -t muongan-train .              # training image
#   docker build --build-arg PYTHON_IMAGE=my/debian-python .    # any base with python3.11 and its venv module
#
# The build downloads nothing but packages from PyPI. `make image` builds with podman from a Debian 12 base
# made by debootstrap (deploy/README.md), for a machine that reaches no image registry.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# ---------------------------------------------------------------------------------------------------------
# What every image shares: the base, tini, an unprivileged user, the venv on PATH.
FROM ${PYTHON_IMAGE} AS runtime

# tini is PID 1 and passes signals on: the kernel ignores a signal PID 1 has no handler for, so a muongan that
# re-raises SIGTERM after its graceful shutdown (as uvicorn does) would otherwise go on into interpreter
# teardown with onnxruntime threads still running, and die there of an abort instead of the SIGTERM.
# DL3008: versions are the base release's; pinning them would break with its next security update.
# hadolint ignore=DL3008
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends tini \
    && apt-get clean \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin \
    && groupadd --system --gid 10001 muongan \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin muongan

ENV PATH=/opt/venv/bin:${PATH} \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    MPLCONFIGDIR=/tmp/matplotlib

# ---------------------------------------------------------------------------------------------------------
# uv and an empty virtual environment. The serving images copy the venv out and leave uv behind; the training
# image is its builder stage plus a user, so a code edit costs it a small layer, not a copy of 2 GB of venv.
FROM runtime AS builder-base

ARG UV_VERSION=0.13.9

# The system CA store, which a builder behind a TLS-inspecting proxy replaces with its own at build time
# (`podman build -v /etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/ca-certificates.crt:ro`).
ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
    PIP_CERT=/etc/ssl/certs/ca-certificates.crt \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_NO_CACHE=1 \
    UV_PYTHON_DOWNLOADS=never \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/uv/bin:${PATH}

# A venv of its own for uv: a distribution's python3 refuses `pip install` into itself (PEP 668).
RUN python3 -m venv /opt/uv \
    && /opt/uv/bin/pip install "uv==${UV_VERSION}" \
    && uv venv --python python3 /opt/venv

WORKDIR /src
# The dependency lists alone: README.md (the package's long description) comes with the code, so an edit to
# it does not download every dependency again.
COPY pyproject.toml ./

# ---------------------------------------------------------------------------------------------------------
# The service's environment: runtime dependencies, then the project without training/ (the serving image must
# not be able to import TensorFlow code). Dependencies first: that layer is rebuilt only when pyproject.toml
# changes, not on every code edit.
FROM builder-base AS builder

RUN uv pip install -r pyproject.toml

COPY README.md ./
COPY muongan muongan
COPY service service
# The packages' own test suites are a tenth of the environment and never run in an image.
RUN uv pip install --no-deps . \
    && find /opt/venv -type d -name tests -prune -exec rm -rf {} +

# ---------------------------------------------------------------------------------------------------------
# onnxruntime-gpu with CUDA 13 and cuDNN 9 from their wheels (its `cuda` and `cudnn` extras). It shares
# onnxruntime's package folder: remove the CPU build first, so exactly one of them owns it.
FROM builder AS builder-gpu

# PyPI has no 1.32 GPU wheel; 1.31.1 (CUDA 13, cuDNN 9) runs the same opset-17 graphs.
ARG ORT_GPU_VERSION=1.31.1

RUN uv pip uninstall onnxruntime \
    && uv pip install "onnxruntime-gpu[cuda,cudnn]==${ORT_GPU_VERSION}" \
    && /opt/venv/bin/python -c "import onnxruntime as ort; assert 'CUDAExecutionProvider' in ort.get_available_providers()"

# ---------------------------------------------------------------------------------------------------------
# The training environment: runtime and train dependencies (their own layer, so a code edit downloads no
# TensorFlow), then the project with training/, installed as a package.
FROM builder-base AS builder-train

RUN uv pip install -r pyproject.toml --extra train
COPY README.md ./
COPY muongan muongan
COPY service service
COPY training training
RUN uv pip install --no-deps .

# ---------------------------------------------------------------------------------------------------------
FROM builder-train AS train

USER 10001
WORKDIR /tmp
ENTRYPOINT ["tini", "--", "muongan"]
CMD ["--help"]

# ---------------------------------------------------------------------------------------------------------
# The service, without its venv: serve-gpu and serve differ only in the venv they copy.
FROM runtime AS service

LABEL org.opencontainers.image.title="muongan" \
      org.opencontainers.image.description="SHiP-like background muons on demand: a GAN served by onnxruntime"

# Read-only for the service user (owned by root): a model folder is verified by sha256 at start, never written.
COPY models/default /opt/muongan/models/default
COPY deploy/healthcheck.py /opt/muongan/healthcheck.py

# Streams still open on SIGTERM get 5 s, inside the 10 s a container engine waits before SIGKILL, so they are
# cut by the service (no closing chunk: the client sees an error, never a short file presented as complete).
ENV MUONGAN_MODEL_DIR=/opt/muongan/models/default \
    MUONGAN_SHUTDOWN_GRACE_S=5

USER 10001
WORKDIR /opt/muongan
EXPOSE 8000

# Liveness only: the process answers. Readiness (/readyz: model loaded) is for load balancers and k8s.
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "/opt/muongan/healthcheck.py", "/healthz"]

# Settings come from MUONGAN_* environment variables; arguments after the image name add options,
# e.g. `docker run ... muongan --max-concurrent 8`.
ENTRYPOINT ["tini", "--", "muongan", "serve", "--host", "0.0.0.0", "--port", "8000"]

# ---------------------------------------------------------------------------------------------------------
FROM service AS serve-gpu

COPY --from=builder-gpu /opt/venv /opt/venv
# The CUDA and cuDNN wheels keep their libraries in site-packages, where the dynamic loader does not look: the
# CUDA provider links CUDA's and loads cuDNN's by name. The driver's libcuda comes from the host at run time.
ENV LD_LIBRARY_PATH=/opt/venv/lib/python3.11/site-packages/nvidia/cu13/lib:/opt/venv/lib/python3.11/site-packages/nvidia/cudnn/lib \
    NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility

# ---------------------------------------------------------------------------------------------------------
FROM service AS serve

COPY --from=builder /opt/venv /opt/venv
