"""The GPU serving image (`make test-image-gpu`): onnxruntime-gpu with CUDA and cuDNN from PyPI wheels.

No GPU here, so what can be checked is what a GPU node relies on before its driver is involved: onnxruntime-gpu
is the only onnxruntime in the image and lists the CUDA provider, every library the CUDA provider links
against resolves inside the image except the driver's own libcuda (the NVIDIA container toolkit mounts it),
and without a GPU the same image serves the default model on the CPU provider, muons equal to the CPU image's
up to onnxruntime's rounding (a different onnxruntime version).

The image is several GB of CUDA wheels: `make test` does not build it, and these tests run only when asked
(MUONGAN_TEST_GPU_IMAGE=1, as `make test-image-gpu` sets).
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import httpx
import numpy as np
import pytest
from test_image import ROOT, built, podman, running, wait_ready

pytestmark = pytest.mark.skipif(
    os.environ.get("MUONGAN_TEST_GPU_IMAGE") != "1",
    reason="the GPU image is several GB of CUDA wheels: `make test-image-gpu` builds and checks it",
)

PROBE = """
import ctypes, glob, importlib.metadata as md, os, subprocess
import onnxruntime as ort
print(ort.__version__, ','.join(ort.get_available_providers()))
print(','.join(sorted(d.metadata['Name'] for d in md.distributions() if 'onnxruntime' in d.metadata['Name'])))
for name in ('libcudnn.so.9', 'libcublasLt.so.13', 'libcufft.so.12', 'libnvrtc.so.13'):
    ctypes.CDLL(name)  # found by name, as the CUDA provider loads them
lib = glob.glob(os.path.join(os.path.dirname(ort.__file__), 'capi', 'libonnxruntime_providers_cuda.so'))[0]
print(subprocess.run(['ldd', lib], capture_output=True, text=True).stdout)
"""


@pytest.fixture(scope="module")
def image() -> str:
    return built("image-gpu")


def test_onnxruntime_gpu_alone_with_the_cuda_provider_and_its_libraries(image: str) -> None:
    out = podman("run", "--rm", "--entrypoint", "python", image, "-c", PROBE).stdout.splitlines()
    version, providers = out[0].split()
    assert version.startswith("1.31.") and "CUDAExecutionProvider" in providers.split(","), out[0]
    assert out[1] == "onnxruntime-gpu", f"onnxruntime builds installed: {out[1]}"
    missing = [line.split()[0] for line in out[2:] if "not found" in line]
    assert missing == ["libcuda.so.1"] or not missing, f"unresolved in the image: {missing}"
    assert any("libcudnn" in line or "libcublas" in line for line in out[2:]), "\n".join(out[2:])


def test_serves_on_the_cpu_provider_without_a_gpu(image: str, tmp_path: Path) -> None:
    with running(image, f"muongan-test-gpu-{os.getpid()}") as url:
        wait_ready(f"{url}/readyz", f"muongan-test-gpu-{os.getpid()}")
        assert httpx.get(f"{url}/readyz", timeout=5).json()["provider"] == "CPUExecutionProvider"
        params: dict[str, str | int] = {"n": 20_000, "seed": 5, "start": 1000, "format": "npy"}
        served = np.load(io.BytesIO(httpx.get(f"{url}/v1/muons", params=params, timeout=120).content))
    local = tmp_path / "local.npy"
    argv = ["generate", "--model", str(ROOT / "models" / "default"), "--seed", "5", "--start", "1000", "--n", "20000"]
    result = subprocess.run(
        [str(Path(sys.executable).parent / "muongan"), *argv, "--out", str(local), "--no-progress"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    np.testing.assert_allclose(served, np.load(local), rtol=1e-5, atol=1e-5)
