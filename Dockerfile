# syntax=docker/dockerfile:1
#
# muongan images. Targets:
#   serve (default)  CUDA 13 + cuDNN 9 runtime, onnxruntime-gpu, the default model baked in, no TensorFlow.
#                    Falls back to onnxruntime's CPU provider when no GPU is visible (the service checks
#                    session.get_providers() and reports the provider in /readyz and /v1/model).
#   train            CPU-only TensorFlow image for `muongan sample|train|evaluate` (never used for serving).
#
#   docker build -t muongan .                       # serving image
#   docker build --target train -t muongan-train .  # training image
#
# Python: the project needs CPython 3.11 (pythia8mc's wheel), which no CUDA 13 base image ships. uv installs
# a relocatable python-build-standalone 3.11 into /opt/python in the builder; the runtime stage copies that
# and the virtual environment to the same paths, so no compiler, pip or package cache reaches the image.

ARG CUDA_IMAGE=nvidia/cuda:13.0.2-cudnn-runtime-ubuntu24.04
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# ---------------------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS builder

ARG UV_VERSION=0.13.8
# onnxruntime-gpu has no 1.32 wheel on PyPI; 1.31.1 (CUDA 13, cuDNN 9) runs the same opset-17 graphs.
ARG ORT_GPU_VERSION=1.31.1

ENV UV_PYTHON_INSTALL_DIR=/opt/python \
    UV_PYTHON_PREFERENCE=only-managed \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_NO_CACHE=1 \
    VIRTUAL_ENV=/opt/venv

RUN pip install --no-cache-dir "uv==${UV_VERSION}" \
    && uv python install 3.11 \
    && uv venv --python 3.11 /opt/venv

WORKDIR /src

# Dependencies first: this layer is rebuilt only when pyproject.toml changes, not on every code edit.
COPY pyproject.toml README.md ./
RUN uv pip install -r pyproject.toml

# The project itself, without training/: the serving image must not be able to import TensorFlow code.
COPY muongan muongan
COPY service service
RUN uv pip install --no-deps . \
    # onnxruntime and onnxruntime-gpu share one package folder: remove the CPU build, then add the GPU
    # build alone, so the image ends with exactly one of them.
    && uv pip uninstall onnxruntime \
    && uv pip install --no-deps "onnxruntime-gpu==${ORT_GPU_VERSION}" \
    && /opt/venv/bin/python -c "import onnxruntime as ort; assert 'CUDAExecutionProvider' in ort.get_available_providers()"

# ---------------------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS train

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONUNBUFFERED=1 \
    MPLCONFIGDIR=/tmp/matplotlib

WORKDIR /src
COPY pyproject.toml README.md ./
COPY muongan muongan
COPY service service
COPY training training
# DL3013: this installs the project itself; its dependency ranges live in pyproject.toml.
# hadolint ignore=DL3013
RUN pip install --no-cache-dir ".[train]" \
    && useradd --system --uid 10001 --create-home --home-dir /work muongan

USER 10001
WORKDIR /work
ENTRYPOINT ["muongan"]
CMD ["--help"]

# ---------------------------------------------------------------------------------------------------------
FROM ${CUDA_IMAGE} AS serve

LABEL org.opencontainers.image.title="muongan" \
      org.opencontainers.image.description="SHiP-like background muons on demand: a GAN served by onnxruntime"

COPY --from=builder /opt/python /opt/python
COPY --from=builder /opt/venv /opt/venv
# Read-only for the service user: a model folder is verified by sha256 at start and never written.
COPY models/default /opt/muongan/models/default

RUN groupadd --system --gid 10001 muongan \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin muongan

ENV PATH=/opt/venv/bin:${PATH} \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    MPLCONFIGDIR=/tmp/matplotlib \
    MUONGAN_MODEL_DIR=/opt/muongan/models/default \
    NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility

USER 10001
WORKDIR /opt/muongan
EXPOSE 8000

# Liveness only: the process answers. Readiness (/readyz: model loaded) is for load balancers and k8s.
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]

# Settings come from MUONGAN_* environment variables; arguments after the image name add options,
# e.g. `docker run ... muongan --max-concurrent 8`.
ENTRYPOINT ["muongan", "serve", "--host", "0.0.0.0", "--port", "8000"]
