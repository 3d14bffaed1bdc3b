"""The generation pipeline: latent inputs per block, drawn in parallel, fed through the generator in order.

A request is a seed, a range ``[start, start + n)`` of that seed's muon stream and a *latent source*
that says how aux, charge and weight of each row are made (plain, boosted, custom or seed-enhanced).
Noise always comes from the block's ``NOISE`` substream (:mod:`service.engine.streams`), so every mode
shares the addressing rules: any slice equals the same rows of a longer request.

Work is split three ways so that no stage waits for another: a shared thread pool draws the inputs of
the next few blocks (numpy and scipy release the GIL), the iterating thread runs onnxruntime, and the
consumer (the HTTP layer) encodes and sends. Only ``prefetch`` blocks are ever in flight, so memory is
bounded whatever ``n`` is.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

import numpy as np
from threadpoolctl import threadpool_limits

from service.contract.bounds import MAX_AUX
from service.contract.muons import COLUMNS, DTYPE, MUON_PDG, PHYSICAL_COLUMNS, SampleError
from service.engine.latent import AuxDistribution, SeedProposal, half_normal_from_normal
from service.engine.model import Model
from service.engine.streams import Segment, Substream, draw_noise, draw_normals, draw_uniforms, segments

# Weights are float32 in every format; the contract wants them > 0, so underflow stops at the
# smallest normal float32 (an absolute change below 1.2e-38 per muon).
_MIN_WEIGHT = np.finfo(np.float32).tiny
# Bytes kept per row when a weighted request's latent inputs are cached between the two passes.
_LATENT_ROW_BYTES = 4 * 6

T = TypeVar("T")
U = TypeVar("U")


class GenerationError(RuntimeError):
    """The model made something that is not a muon (infinite or NaN values) for the inputs it was given."""


class Abandoned(Exception):
    """Work stopped because its ``stop`` event was set (the client went away); nothing partial is returned."""


@dataclass(frozen=True)
class Latent:
    """The per-row inputs besides noise: aux ``(k, 4)``, charge ``(k, 1)`` (+1 = mu+) and weight ``(k,)``."""

    aux: np.ndarray
    charge: np.ndarray
    weight: np.ndarray


class LatentSource(Protocol):
    """How one mode makes the latent inputs of a segment of a seed's stream."""

    @property
    def weighted(self) -> bool: ...

    def draw(self, seed: int, segment: Segment) -> Latent: ...


def draw_charge(seed: int, segment: Segment, mu_plus_fraction: float) -> np.ndarray:
    """+1 (mu+) with probability ``mu_plus_fraction``, else -1; ``(rows, 1)`` float32."""
    uniforms = draw_uniforms(seed, segment, Substream.CHARGE)
    return np.where(uniforms < mu_plus_fraction, 1.0, -1.0).astype(np.float32)[:, None]


def weights_from_log(log_weight: np.ndarray) -> np.ndarray:
    """float32 importance weights from float64 log weights, kept strictly positive."""
    return np.maximum(np.exp(np.minimum(log_weight, 80.0)), _MIN_WEIGHT).astype(np.float32)


@dataclass(frozen=True)
class CopulaSource:
    """Plain aux (``distribution`` is the plain copula, weight 1) or boosted aux (weight ``p_plain / p``)."""

    distribution: AuxDistribution
    plain: AuxDistribution
    mu_plus_fraction: float

    @property
    def weighted(self) -> bool:
        return bool(np.any(self.distribution.scale != 1))

    def draw(self, seed: int, segment: Segment) -> Latent:
        aux = self.distribution.from_normals(draw_normals(seed, segment, self.distribution.dim))
        if self.weighted:
            weight = weights_from_log(self.distribution.log_weight(aux, self.plain))
        else:
            weight = np.ones(segment.rows, dtype=np.float32)
        return Latent(aux.astype(np.float32), draw_charge(seed, segment, self.mu_plus_fraction), weight)


@dataclass(frozen=True)
class CustomSource:
    """A user's aux array, row ``i`` for request row ``i``; weight 1 (not a physical weight)."""

    aux: np.ndarray
    mu_plus_fraction: float
    weighted: bool = False

    def draw(self, seed: int, segment: Segment) -> Latent:
        aux = self.aux[segment.offset : segment.offset + segment.rows]
        charge = draw_charge(seed, segment, self.mu_plus_fraction)
        return Latent(aux, charge, np.ones(segment.rows, dtype=np.float32))


@dataclass(frozen=True)
class SeedSource:
    """Aux proposed around seed muons' predicted aux; weight ``p_plain / q`` (see :class:`SeedProposal`).

    ``clipped_seeds`` counts the seeds whose predicted aux was above the trained range and was clipped
    to its edge before the proposal was built.
    """

    proposal: SeedProposal
    plain: AuxDistribution
    mu_plus_fraction: float
    clipped_seeds: int = 0
    weighted: bool = True

    def draw(self, seed: int, segment: Segment) -> Latent:
        choice = draw_uniforms(seed, segment, Substream.CHOICE)
        z = self.proposal.sample_normals(choice, draw_normals(seed, segment, self.plain.dim))
        weight = weights_from_log(self.plain.log_pdf_normals(z) - self.proposal.log_pdf_normals(z))
        aux = half_normal_from_normal(z).astype(np.float32)
        return Latent(aux, draw_charge(seed, segment, self.mu_plus_fraction), weight)


@dataclass(frozen=True)
class Request:
    """Rows ``[start, start + n)`` of the stream of ``seed``, with latent inputs from ``source``."""

    seed: int
    start: int
    n: int
    source: LatentSource


@dataclass
class Prepared:
    """A request whose weights are summed (so headers are exact before the first byte).

    ``weight_sum`` and ``weight_square_sum`` are float64 sums of the float32 weights that will be
    sent, in row order; ``cache`` holds the latent inputs when they were cheap enough to keep.
    """

    request: Request
    weight_sum: float
    weight_square_sum: float
    cache: dict[int, Latent] = field(default_factory=dict)

    @property
    def effective_sample_size(self) -> float:
        return self.weight_sum**2 / self.weight_square_sum if self.weight_square_sum > 0 else 0.0


def _bounded_map(pool: ThreadPoolExecutor, function: Callable[[T], U], items: Iterable[T], window: int) -> Generator[U]:
    """``pool.map`` in order, with at most ``window`` calls in flight (memory stays bounded)."""
    pending: deque[Future[U]] = deque()
    try:
        for item in items:
            pending.append(pool.submit(function, item))
            if len(pending) >= window:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        for future in pending:
            future.cancel()


class Engine:
    """Runs requests against one model with one shared pool of drawing threads."""

    def __init__(self, model: Model, draw_threads: int = 2, prefetch: int = 0) -> None:
        # Parallelism comes from drawing blocks in several threads; BLAS threads inside each small
        # product would oversubscribe the cores (measured on 2 busy cores: a (65536, 4) x (4, 4) product
        # takes 46 ms with two OpenBLAS threads, 0.3 ms with one). This limit is process-wide.
        threadpool_limits(1, user_api="blas")
        self.model = model
        self.manifest = model.manifest
        self.plain = AuxDistribution(self.manifest.aux_correlation)
        self.block_size = self.manifest.block_size
        self.prefetch = prefetch or max(2, draw_threads)
        self._pool = ThreadPoolExecutor(draw_threads, thread_name_prefix="muongan-draw")

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    # Latent sources of the four modes.

    def plain_source(self) -> CopulaSource:
        return CopulaSource(self.plain, self.plain, self.manifest.mu_plus_fraction)

    def boosted_source(self, scale: list[float]) -> CopulaSource:
        return CopulaSource(self.plain.with_scale(np.asarray(scale)), self.plain, self.manifest.mu_plus_fraction)

    def custom_source(self, aux: np.ndarray) -> CustomSource:
        return CustomSource(np.ascontiguousarray(aux, dtype=np.float32), self.manifest.mu_plus_fraction)

    def seed_source(
        self, seed_muons: np.ndarray, sigma: float | None = None, plain_fraction: float = 0.1
    ) -> SeedSource:
        """Proposal around seed muons ``(m, 7 or 8)``: their aux comes from the discriminator's aux heads.

        Seeds the heads place above the trained aux range (muons unlike any in the training sample, e.g. from
        another simulation or the other beam-spot convention) have their aux clipped to its edge, as the
        generator clips boosted aux. The proposal is built from the clipped values, so its density,
        and with it every weight, is exact for what is drawn. A request is refused only when most seeds are
        outside: its muons would then be made around the edge of the range, not around the seeds.
        """
        seed_aux = self.model.predict_aux(seed_muons[:, : len(PHYSICAL_COLUMNS)])
        ceiling = np.asarray(self.manifest.aux_ceiling(), dtype=seed_aux.dtype)
        outside = ~np.all(seed_aux <= ceiling, axis=1)  # NaN compares False: outside too
        clipped = int(outside.sum())
        if 2 * clipped > len(seed_aux):
            row = int(np.argmax(outside))
            raise SampleError(
                f"{clipped} of {len(seed_aux)} seed muons ({clipped / len(seed_aux):.1%}) are beyond what this "
                f"model was trained on (aux heads give {seed_aux[row].tolist()} for row {row}: "
                f"{seed_muons[row].tolist()}; trained up to {ceiling.tolist()}); a minority of such seeds is "
                "clipped into the trained range, but not most: send muons like the model's training sample "
                f"(beam spot: {self.manifest.beam_convention})"
            )
        proposal = SeedProposal(np.fmin(seed_aux, ceiling), self.plain, sigma, plain_fraction)
        return SeedSource(proposal, self.plain, self.manifest.mu_plus_fraction, clipped)

    # The two passes.

    def prepare(self, request: Request, cache_bytes: int = 64 << 20, stop: threading.Event | None = None) -> Prepared:
        """Sum the weights of a request before streaming it; plain requests need no drawing for that.

        A large weighted request spends minutes here before its first byte, so ``stop`` is checked
        after every block and raises :class:`Abandoned` once set.
        """
        if not request.source.weighted:
            return Prepared(request, float(request.n), float(request.n))
        keep = request.n * _LATENT_ROW_BYTES <= cache_bytes
        total, square, cache = 0.0, 0.0, {}

        def draw(segment: Segment) -> tuple[Segment, Latent]:
            return segment, request.source.draw(request.seed, segment)

        parts = segments(request.start, request.n, self.block_size)
        with closing(_bounded_map(self._pool, draw, parts, self.prefetch)) as drawn:
            for segment, latent in drawn:
                if stop is not None and stop.is_set():
                    raise Abandoned(f"stopped summing the weights of {request.n} muons at block {segment.block}")
                weight = latent.weight.astype(np.float64)
                total += float(weight.sum())
                square += float(weight @ weight)
                if keep:
                    cache[segment.block] = latent
        return Prepared(request, total, square, cache)

    def blocks(self, prepared: Prepared, stop: threading.Event | None = None) -> Iterator[np.ndarray]:
        """The muons of a prepared request, one ``(k, 8)`` float32 array per block segment, in order.

        Returns early once ``stop`` is set (a client that went away), cancelling what is queued.
        """
        request = prepared.request

        def inputs(segment: Segment) -> tuple[np.ndarray, Latent]:
            noise = draw_noise(request.seed, segment, self.manifest.noise_dim)
            cached = prepared.cache.get(segment.block)
            return noise, cached if cached is not None else request.source.draw(request.seed, segment)

        parts = segments(request.start, request.n, self.block_size)
        with closing(_bounded_map(self._pool, inputs, parts, self.prefetch)) as drawn:
            for noise, latent in drawn:
                if stop is not None and stop.is_set():
                    return
                yield self._assemble(noise, latent)

    def generate(self, request: Request, stop: threading.Event | None = None) -> tuple[np.ndarray, Prepared]:
        """A whole request as one ``(n, 8)`` array (for ROOT files and in-process users).

        Raises :class:`Abandoned` if ``stop`` is set before the last block, never returning part of it.
        """
        prepared = self.prepare(request, cache_bytes=1 << 62, stop=stop)
        muons = np.empty((request.n, len(COLUMNS)), dtype=DTYPE)
        row = 0
        for block in self.blocks(prepared, stop):
            muons[row : row + len(block)] = block
            row += len(block)
        if row < request.n:
            raise Abandoned(f"stopped after {row} of {request.n} muons")
        return muons, prepared

    def _assemble(self, noise: np.ndarray, latent: Latent) -> np.ndarray:
        muons = np.empty((len(noise), len(COLUMNS)), dtype=DTYPE)
        # Boosted and enhanced draws can reach aux far beyond anything in training (scale 10: ~60), where a
        # generator extrapolates wildly; it is fed at most MAX_AUX. The weights stay those of the aux drawn:
        # weighted sums change only on plain probability P(aux > MAX_AUX) ~ 1e-23, and those muons sit at the
        # edge of the trained range instead of being unphysical or infinite.
        aux = np.minimum(latent.aux, np.float32(MAX_AUX))
        muons[:, : len(PHYSICAL_COLUMNS)] = self.model.generate(noise, aux, latent.charge)
        # The contract's pdg comes from the charge that was fed in, exactly (+1 = mu+ = -13).
        muons[:, 0] = -MUON_PDG * latent.charge[:, 0]
        muons[:, -1] = latent.weight
        finite = np.isfinite(muons).all(axis=1)
        if not finite.all():  # never hand out a wrong muon: the stream ends incomplete, which clients detect
            row = int(np.argmin(finite))
            raise GenerationError(
                f"the model made {int((~finite).sum())} non-finite muons in a block of {len(muons)} (first: "
                f"{muons[row].tolist()} from aux {latent.aux[row].tolist()}); the request's aux is beyond this model"
            )
        return muons
