"""A model folder loaded for serving: checked against its manifest, run by onnxruntime in bounded chunks.

The sha256 of each ONNX file must match ``model.json``: a service that silently served a different
network than the one its manifest (and every ``X-Model-Sha256`` header) describes would be worse than
one that refuses to start. onnxruntime quietly falls back to the CPU when CUDA libraries are missing,
so the provider actually in use is read back from the session, logged and reported.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from service.contract.manifest import (
    DISCRIMINATOR,
    DISCRIMINATOR_INPUT,
    DISCRIMINATOR_OUTPUTS,
    GENERATOR,
    GENERATOR_INPUTS,
    GENERATOR_OUTPUT,
    Manifest,
    sha256_of,
)
from service.contract.muons import PHYSICAL_COLUMNS

log = logging.getLogger(__name__)

CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"
# Rows per onnxruntime call: on the CPU the arena grows with the batch (DESIGN section 11), on a GPU
# larger calls amortise the launch and copy overheads.
AUTO_ROWS = {CPU: 8192, CUDA: 65536}


def usable_cores() -> int:
    """The cores this process may run on (its affinity mask, not the machine's count)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


class ModelError(RuntimeError):
    """A model folder that cannot be served as it is; the message says which file and why."""


def verify_files(folder: Path, manifest: Manifest) -> dict[str, str]:
    """The sha256 of each ONNX file, after checking it against the manifest."""
    digests = {}
    for name in (GENERATOR, DISCRIMINATOR):
        path = folder / name
        if not path.is_file():
            raise ModelError(f"model folder {folder} has no {name}")
        expected = manifest.files.get(name)
        if expected is None:
            raise ModelError(f"{folder / 'model.json'} records no sha256 for {name}")
        actual = sha256_of(path)
        if actual != expected:
            raise ModelError(
                f"{path} has sha256 {actual} but model.json records {expected}: the file was changed or "
                "replaced after export; re-export the model or restore the file"
            )
        digests[name] = actual
    return digests


def _providers(device: str) -> list[str]:
    available = ort.get_available_providers()
    if device == "cpu":
        return [CPU]
    if device == "cuda" and CUDA not in available:
        raise ModelError(f"device 'cuda' asked for, but this onnxruntime offers only {', '.join(available)}")
    return [CUDA, CPU] if CUDA in available else [CPU]


def _session(path: Path, options: ort.SessionOptions, providers: list[str]) -> ort.InferenceSession:
    """An onnxruntime session; a file it cannot load (its sha256 matched, so it was exported broken) is a ModelError."""
    try:
        return ort.InferenceSession(str(path), options, providers=providers)
    except Exception as error:  # onnxruntime raises its own Exception subclasses (InvalidProtobuf, Fail, ...)
        raise ModelError(f"onnxruntime cannot load {path}: {error}") from None


def _check_names(session: ort.InferenceSession, inputs: tuple[str, ...], outputs: tuple[str, ...], name: str) -> None:
    have_in = {node.name for node in session.get_inputs()}
    have_out = {node.name for node in session.get_outputs()}
    if not set(inputs) <= have_in or not set(outputs) <= have_out:
        raise ModelError(
            f"{name} has inputs {sorted(have_in)} and outputs {sorted(have_out)}; "
            f"expected inputs {list(inputs)} and outputs {list(outputs)} (service/contract/manifest.py)"
        )


@dataclass
class Model:
    """The generator and discriminator sessions of one model folder, with what the service reports about it."""

    folder: Path
    manifest: Manifest
    digests: dict[str, str]
    provider: str
    rows_per_call: int
    _generator: ort.InferenceSession
    _discriminator: ort.InferenceSession
    concurrent_runs: int = 0
    # onnxruntime's arena grows to what the runs in flight together need (~0.1 GB each for models/default
    # at 8192 rows), and more runs than cores only interleave: streams beyond this wait for their turn.
    _runs: threading.BoundedSemaphore = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.concurrent_runs = self.concurrent_runs or usable_cores()
        self._runs = threading.BoundedSemaphore(self.concurrent_runs)

    @classmethod
    def load(
        cls, folder: Path, device: str = "auto", threads: int = 0, rows_per_call: int = 0, concurrent_runs: int = 0
    ) -> Model:
        """Verify and open a model folder; ``threads``, ``rows_per_call`` and ``concurrent_runs`` 0 mean the
        defaults: onnxruntime's threads, :data:`AUTO_ROWS`, one run at a time per core."""
        folder = Path(folder)
        if not (folder / "model.json").is_file():
            raise ModelError(f"{folder} is not a model folder: it has no model.json")
        try:
            manifest = Manifest.load(folder)
        except ValueError as error:
            raise ModelError(f"{folder / 'model.json'} is not a valid manifest: {error}") from None
        digests = verify_files(folder, manifest)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        # Idle spinning workers would steal the cores that draw the random inputs.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        providers = _providers(device)
        sessions = [_session(folder / name, options, providers) for name in (GENERATOR, DISCRIMINATOR)]
        _check_names(sessions[0], GENERATOR_INPUTS, (GENERATOR_OUTPUT,), GENERATOR)
        _check_names(sessions[1], (DISCRIMINATOR_INPUT,), DISCRIMINATOR_OUTPUTS, DISCRIMINATOR)
        provider = sessions[0].get_providers()[0]
        if device == "cuda" and provider != CUDA:
            raise ModelError(f"device 'cuda' asked for, but onnxruntime fell back to {provider} (CUDA libraries?)")
        if CUDA in providers and provider != CUDA:
            log.warning("CUDA provider is listed but could not be used; running on %s", provider)
        rows = rows_per_call or AUTO_ROWS.get(provider, AUTO_ROWS[CPU])
        log.info(
            "model %s (generator sha256 %s) on %s, %d rows per call", manifest.name, digests[GENERATOR], provider, rows
        )
        return cls(folder, manifest, digests, provider, rows, sessions[0], sessions[1], concurrent_runs)

    @property
    def sha256(self) -> str:
        """The generator's sha256: the identity of the muons a response holds."""
        return self.digests[GENERATOR]

    def generate(self, noise: np.ndarray, aux: np.ndarray, charge: np.ndarray) -> np.ndarray:
        """Physical muons ``(n, 7)`` float32 from noise ``(n, noise_dim)``, aux ``(n, 4)`` and charge ``(n, 1)``."""
        out = np.empty((len(noise), len(PHYSICAL_COLUMNS)), dtype=np.float32)
        for lo in range(0, len(noise), self.rows_per_call):
            hi = lo + self.rows_per_call
            feeds = dict(zip(GENERATOR_INPUTS, (noise[lo:hi], aux[lo:hi], charge[lo:hi]), strict=True))
            with self._runs:
                out[lo:hi] = self._generator.run([GENERATOR_OUTPUT], feeds)[0]
        return out

    def predict_aux(self, muons: np.ndarray) -> np.ndarray:
        """The discriminator's aux heads on physical muons ``(n, 7)``, clipped at 0 (aux is one-tailed)."""
        out = np.empty((len(muons), len(self.manifest.aux_groups)), dtype=np.float32)
        for lo in range(0, len(muons), self.rows_per_call):
            chunk = np.ascontiguousarray(muons[lo : lo + self.rows_per_call], dtype=np.float32)
            with self._runs:
                out[lo : lo + len(chunk)] = self._discriminator.run(
                    [DISCRIMINATOR_OUTPUTS[1]], {DISCRIMINATOR_INPUT: chunk}
                )[0]
        return np.maximum(out, 0.0, out=out)

    def describe(self) -> dict[str, Any]:
        """What ``/v1/model`` reports: the manifest, plus how this server runs it.

        A manifest without a ``beam_spot`` record says "unknown" there, as every muon response does.
        """
        manifest = self.manifest
        return {
            **manifest.model_dump(mode="json"),
            "beam_spot": (
                manifest.beam_spot.model_dump(mode="json")
                if manifest.beam_spot
                else {"convention": manifest.beam_convention, "fairship_flags": manifest.fairship_flags}
            ),
            "serving": {
                "provider": self.provider,
                "rows_per_call": self.rows_per_call,
                "concurrent_runs": self.concurrent_runs,
                "sha256": self.digests,
            },
        }
