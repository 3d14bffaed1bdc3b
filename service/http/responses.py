"""Muon responses: the headers and metadata that tie a body to its model, seed and protons on target,
and the streaming response that stops generating when the client goes away.

Headers are exact before the first byte: plain requests know their weight sum (n), and weighted ones
sum their weights in a first pass over the cheap latent inputs (:meth:`Engine.prepare`). No trailers
are needed, which matters because most HTTP clients ignore them.
"""

from __future__ import annotations

import json
import threading
from collections.abc import AsyncGenerator, Callable, Iterator

import numpy as np
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from service.contract.muons import COLUMNS, DTYPE, UNITS
from service.engine.generation import Engine, Prepared
from service.http.metrics import Metrics
from service.http.pump import pump
from service.samples.encoders import MEDIA_TYPES, stream_encoder

EXTENSIONS = {"arrow": "arrows", "npy": "npy", "csv": "csv", "root": "root"}
HEADERS: dict[str, str] = {
    "X-Muon-Count": "Number of muons (rows) in the body",
    "X-Equivalent-POT": "Protons on target the body stands for: sum of weights / muons_per_pot of the model",
    "X-Model-Sha256": "sha256 of the generator.onnx that made the muons",
    "X-Seed": "Seed of the random stream",
    "X-Start": "Index of the first muon in the seed's stream",
    "X-Effective-Sample-Size": "(sum w)^2 / sum w^2, weighted modes only",
    "X-Beam-Spot": "The model's beam-spot convention: painted (the muons carry FairShip's beam spot), spotless "
    "(SHiP's convention: FairShip paints it) or unknown (model.json has no beam_spot record)",
    "X-FairShip-Flags": "The run_simScript.py flags for these muons: --SmearBeam 0 --PaintBeam 0 for a painted "
    "model, FairShip's defaults --SmearBeam 0.8 --PaintBeam 5 for a spotless one",
    "X-Clipped-Seeds": "Seed muons whose predicted aux lay above the trained range and was clipped to its edge "
    "(enhanced only)",
}
# Headers that only some modes send: the others are on every muon response.
MODE_HEADERS = {"X-Effective-Sample-Size": ("boosted", "enhanced"), "X-Clipped-Seeds": ("enhanced",)}


def documented_headers(mode: str) -> dict[str, str]:
    """The headers a muon response of ``mode`` carries, with their descriptions (for the OpenAPI schema)."""
    return {name: text for name, text in HEADERS.items() if mode in MODE_HEADERS.get(name, (mode,))}


def describe(engine: Engine, prepared: Prepared, mode: str, settings: dict[str, str]) -> dict[str, str]:
    """String metadata of a response: the headers' facts plus the mode's settings (Arrow schema metadata)."""
    request, manifest = prepared.request, engine.manifest
    metadata = {
        "model_name": manifest.name,
        "model_sha256": engine.model.sha256,
        "mode": mode,
        "seed": str(request.seed),
        "start": str(request.start),
        "n": str(request.n),
        "weight_sum": repr(prepared.weight_sum),
        "muons_per_pot": repr(manifest.muons_per_pot),
        "equivalent_pot": repr(prepared.weight_sum / manifest.muons_per_pot),
        "units": json.dumps(UNITS),
        "beam_spot": manifest.beam_convention,
        "fairship_flags": manifest.fairship_flags,
        **settings,
    }
    if request.source.weighted:
        metadata["effective_sample_size"] = repr(prepared.effective_sample_size)
    return metadata


def headers(metadata: dict[str, str], fmt: str) -> dict[str, str]:
    out = {
        "X-Muon-Count": metadata["n"],
        "X-Equivalent-POT": metadata["equivalent_pot"],
        "X-Model-Sha256": metadata["model_sha256"],
        "X-Seed": metadata["seed"],
        "X-Start": metadata["start"],
        "X-Beam-Spot": metadata["beam_spot"],
        "X-FairShip-Flags": metadata["fairship_flags"],
        "Content-Disposition": (
            f'attachment; filename="muons-{metadata["mode"]}-seed{metadata["seed"]}-'
            f'{metadata["start"]}-{metadata["n"]}.{EXTENSIONS[fmt]}"'
        ),
    }
    if "effective_sample_size" in metadata:
        out["X-Effective-Sample-Size"] = metadata["effective_sample_size"]
    if "clipped_seeds" in metadata:
        out["X-Clipped-Seeds"] = metadata["clipped_seeds"]
    return out


class MuonStream(StreamingResponse):
    """A streaming response that always runs ``on_close``: after the last byte, a disconnect or an error.

    Starlette cancels the sending task when the client disconnects but does not close the body
    iterator; closing it here stops the producer thread and frees the generation slot at once.
    """

    body_iterator: AsyncGenerator[bytes]

    def __init__(
        self, content: AsyncGenerator[bytes], on_close: Callable[[], None], media_type: str, headers: dict[str, str]
    ) -> None:
        super().__init__(content, media_type=media_type, headers=headers)
        self._on_close = on_close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            try:
                await self.body_iterator.aclose()
            finally:
                self._on_close()


def stream(
    engine: Engine,
    prepared: Prepared,
    fmt: str,
    metadata: dict[str, str],
    metrics: Metrics,
    depth: int,
    on_close: Callable[[], None],
) -> MuonStream:
    """Stream a prepared request: inference and encoding in a worker thread, at most ``depth`` blocks ahead."""
    stop = threading.Event()
    encoder = stream_encoder(fmt, prepared.request.n, metadata)

    def produce(stop: threading.Event) -> Iterator[tuple[bytes, int]]:
        yield encoder.start(), 0
        for block in engine.blocks(prepared, stop):
            yield encoder.encode(block), len(block)
        yield encoder.finish(), 0

    muons, sent = metrics.muons.labels(metadata["mode"], fmt), metrics.bytes.labels(fmt)

    async def body() -> AsyncGenerator[bytes]:
        async for chunk, rows in pump(produce, depth, stop):
            if chunk:
                yield chunk
            muons.inc(rows)
            sent.inc(len(chunk))

    def close() -> None:
        stop.set()
        on_close()

    response_headers = headers(metadata, fmt)
    if fmt == "npy":  # the length is known up front: clients can show progress and detect truncation
        response_headers["Content-Length"] = str(
            len(encoder.start()) + prepared.request.n * len(COLUMNS) * np.dtype(DTYPE).itemsize
        )
    return MuonStream(body(), close, MEDIA_TYPES[fmt], response_headers)
