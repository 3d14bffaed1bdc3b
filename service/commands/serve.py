"""``muongan serve``: the HTTP service on one model folder.

Every :class:`Settings` field is also an option (``--max-n``, ``--draw-threads``, ...); an option given
on the command line beats the ``MUONGAN_*`` environment variable, which beats the default. The model
is loaded and verified before the port opens, so a bad model folder ends the command with a clear
message and exit status 2 instead of a server that never becomes ready. The model's recorded verdict
against the project's goals (``figures_of_merit.verdict``, written by ``muongan train`` and ``muongan
evaluate --update-model``) is logged as it starts: a WARNING for a model that fails them.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from typing import Any, cast

from service.contract.manifest import Manifest
from service.engine.model import ModelError
from service.http.settings import Settings

_OPTION_NAMES = {"model_dir": "--model"}
log = logging.getLogger(__name__)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default %(default)s)")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on (default %(default)s)")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    for name, field in Settings.model_fields.items():
        option = _OPTION_NAMES.get(name, "--" + name.replace("_", "-"))
        env = f"MUONGAN_{name.upper()}"
        parser.add_argument(
            option,
            dest=name,
            type=cast(Callable[[str], Any], field.annotation),
            default=None,
            help=f"{field.description} (env {env}; default {field.get_default(call_default_factory=True)})",
        )


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from service.http.app import create_app

    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    overrides: dict[str, Any] = {
        name: getattr(args, name) for name in Settings.model_fields if getattr(args, name) is not None
    }
    try:
        settings = Settings(**overrides)
        model = settings.load_model()
    except (ModelError, ValueError) as error:
        print(f"muongan serve: {error}", file=sys.stderr)
        return 2
    log_verdict(model.manifest)
    uvicorn.run(
        create_app(settings, model),
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        timeout_graceful_shutdown=settings.shutdown_grace_s,
    )
    return 0


def log_verdict(manifest: Manifest) -> None:
    """Say whether the model meets the project's goals, as its ``model.json`` records: a WARNING naming the
    goals missed for a model that fails them, a plain note for one that records no verdict."""
    judged = manifest.figures_of_merit.get("verdict")
    if not isinstance(judged, dict) or "overall" not in judged:
        log.info(
            "model %s records no verdict against the project's goals (muongan evaluate --update-model records one)",
            manifest.name,
        )
        return
    source = judged.get("source", {}).get("description", "an unnamed evaluation")
    if judged["overall"] == "FAIL":
        missed = [f"{goal['goal']} {goal['shown']}" for goal in judged.get("goals", []) if goal.get("result") == "FAIL"]
        log.warning("model %s FAILS the project's goals (%s): %s", manifest.name, source, "; ".join(missed))
    elif judged["overall"] == "PASS":
        log.info("model %s meets every goal of the project (%s)", manifest.name, source)
    else:
        log.info("model %s meets the goals measured, not all of them (%s)", manifest.name, source)
