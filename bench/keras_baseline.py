"""The service's generator against ``keras.Model.predict``: the same network, and the seed library's network.

    .venv/bin/python bench/keras_baseline.py --model models/default --n 200000

1. Same network, same inputs: the model's generator architecture rebuilt in Keras from the manifest's
   hyper-parameters (training.model.networks.generator; weights do not change the cost) under
   ``keras.Model.predict``, against onnxruntime as the service runs it (``Model.generate``, the same
   pre-drawn inputs) and against the whole in-process pipeline (inputs drawn by the service too).
   The Keras network stops at its raw features, while the ONNX graph also converts them to physical
   units, so the comparison slightly favours Keras.
2. The seed library's way: its generator architecture (105 -> 2000 -> 3000 -> 7, LeakyReLU and
   BatchNorm, tanh output) under ``keras.Model.predict`` with batch 25,000, against this model served
   over HTTP (``muongan serve`` on a loopback port, Arrow stream read to the end).

Runs alternate between the contenders; medians are reported. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

import keras
import numpy as np

from bench.http_vs_inprocess import free_port, over_http, start_server
from service.engine.generation import Engine, Request
from service.engine.latent import AuxDistribution
from service.engine.model import Model
from training.config import TrainConfig
from training.model import networks

SEED_LIBRARY_BATCH = 25_000


def seed_library_generator() -> keras.Model:
    """The seed library's generator: 100 noise + 4 aux + 1 charge -> 2000 -> 3000 -> 7, tanh."""
    inputs = keras.Input((105,))
    h = inputs
    for units in (2000, 3000):
        h = keras.layers.Dense(units)(h)
        h = keras.layers.LeakyReLU(negative_slope=0.2)(h)
        h = keras.layers.BatchNormalization()(h)
    return keras.Model(inputs, keras.layers.Dense(7, activation="tanh")(h))


def rate(function: Any, n: int) -> float:
    began = time.perf_counter()
    function()
    return n / (time.perf_counter() - began)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=Path("models/default"))
    parser.add_argument("--n", type=int, default=200_000)
    parser.add_argument("--seed-library-n", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    model = Model.load(args.model)
    manifest = model.manifest
    engine = Engine(model)
    config = TrainConfig(**{k: v for k, v in manifest.hyperparameters.items() if k in TrainConfig.model_fields})
    same = networks.generator(config)
    rng = np.random.default_rng(1)
    noise = rng.standard_normal((args.n, manifest.noise_dim), dtype=np.float32)
    aux = AuxDistribution(manifest.aux_correlation).from_normals(rng.standard_normal((args.n, 4))).astype(np.float32)
    charge = np.where(rng.random((args.n, 1)) < manifest.mu_plus_fraction, 1.0, -1.0).astype(np.float32)
    joined = np.concatenate([noise, aux, charge], axis=1)
    seed_net = seed_library_generator()
    seed_inputs = rng.standard_normal((args.seed_library_n, 105), dtype=np.float32)

    port = free_port()
    server = start_server(args.model, port)
    url = f"http://127.0.0.1:{port}"
    contenders = {
        "keras_predict_same_network": lambda: rate(lambda: same.predict(joined, batch_size=8192, verbose=0), args.n),
        "onnxruntime_same_inputs": lambda: rate(lambda: model.generate(noise, aux, charge), args.n),
        "service_in_process": lambda: rate(
            lambda: engine.generate(Request(1, 0, args.n, engine.plain_source())), args.n
        ),
        "seed_library_keras_predict_25k": lambda: rate(
            lambda: seed_net.predict(seed_inputs, batch_size=SEED_LIBRARY_BATCH, verbose=0), args.seed_library_n
        ),
        "served_over_http": lambda: over_http(url, args.n, 1)[0],
    }
    try:
        for function in contenders.values():  # warm-up: graph tracing, arenas, connections
            function()
        rates: dict[str, list[float]] = {name: [] for name in contenders}
        for _ in range(args.repeats):
            for name, function in contenders.items():
                rates[name].append(function())
    finally:
        server.terminate()
        server.wait(timeout=30)
    median = {name: statistics.median(values) for name, values in rates.items()}
    print(
        json.dumps(
            {
                "cores": len(os.sched_getaffinity(0)),
                "model": str(args.model),
                "generator_hidden": config.generator_hidden,
                "noise_dim": manifest.noise_dim,
                "rows_per_s": {name: [round(v) for v in values] for name, values in rates.items()},
                "ratio_onnxruntime_over_keras_same_network": round(
                    median["onnxruntime_same_inputs"] / median["keras_predict_same_network"], 2
                ),
                "ratio_in_process_over_keras_same_network": round(
                    median["service_in_process"] / median["keras_predict_same_network"], 2
                ),
                "ratio_served_over_seed_library": round(
                    median["served_over_http"] / median["seed_library_keras_predict_25k"], 2
                ),
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
