"""Service settings: every limit and tuning knob in one place, from ``MUONGAN_*`` environment variables.

``muongan serve`` exposes the same fields as command-line options (they override the environment),
so a container is configured with env vars and a developer with flags.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from service.engine.model import Model, usable_cores


class Settings(BaseSettings):
    """Limits protect the server from one request; tuning fields trade memory for throughput."""

    model_config = SettingsConfigDict(env_prefix="MUONGAN_", frozen=True)

    model_dir: Path = Field(default=Path("models/default"), description="Model folder served")
    max_n: int = Field(default=1_000_000_000, gt=0, description="Most muons in one streamed request")
    max_root_n: int = Field(
        default=2_000_000, gt=0, description="Most muons in one ROOT response (built in memory, not streamed)"
    )
    max_upload_bytes: int = Field(default=64 << 20, gt=0, description="Largest accepted request body, bytes")
    max_seeds: int = Field(default=100_000, gt=0, description="Most seed muons for an enhanced request")
    max_enhanced_work: int = Field(
        default=20_000_000_000,
        gt=0,
        description="Most n x seeds in one enhanced request (its weights cost one kernel per muon and seed)",
    )
    max_concurrent: int = Field(
        default=4, gt=0, description="Generations running at once; more wait in line, then get 429 with Retry-After"
    )
    admission_wait_s: float = Field(
        default=5.0,
        ge=0,
        le=600,
        description="Seconds a request waits in line (first come, first served) for a busy generation slot "
        "before it gets 429; 0 answers 429 at once",
    )
    retry_after_s: int = Field(default=2, gt=0, description="Retry-After sent with a 429, seconds")
    draw_threads: int = Field(
        default_factory=usable_cores, gt=0, description="Threads drawing random inputs (numpy releases the GIL)"
    )
    inference_threads: int = Field(
        default=0, ge=0, description="onnxruntime intra-op threads; 0 lets onnxruntime choose"
    )
    inference_rows: int = Field(default=8192, gt=0, description="Rows per onnxruntime call; bounds its memory arena")
    inference_runs: int = Field(
        default=0,
        ge=0,
        description="onnxruntime calls in flight at once, all requests together (bounds the arena's memory); "
        "0: one per core",
    )
    prefetch_blocks: int = Field(default=2, gt=0, description="Blocks of inputs drawn ahead of inference, per request")
    queue_blocks: int = Field(default=2, gt=0, description="Encoded blocks buffered ahead of the client")
    shutdown_grace_s: int = Field(
        default=30, ge=0, description="On SIGTERM, seconds open streams may still run before they are cut"
    )
    device: str = Field(default="auto", pattern="^(auto|cpu|cuda)$", description="auto, cpu or cuda")
    api_key: str = Field(
        default="",
        repr=False,
        description="If set, every route but health, readiness and docs needs 'Authorization: Bearer <key>' "
        "(prefer the env var: a command line is visible to other users)",
    )
    cors_origins: str = Field(
        default="", description="Comma-separated web origins allowed to call the service from a browser; empty: none"
    )

    def load_model(self) -> Model:
        """The model folder these settings name, verified and opened with their runtime knobs.

        The engine takes plain parameters and knows nothing of the HTTP layer; the settings translate.
        """
        return Model.load(self.model_dir, self.device, self.inference_threads, self.inference_rows, self.inference_runs)
