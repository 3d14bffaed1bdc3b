"""The muon service: onnxruntime generation of SHiP-like muons, served over HTTP, on the command line and in Python.

One concern per subpackage, each with a thin public face (its ``__init__``), in the order they build on
each other; ``training/`` imports only ``contract``, ``samples`` and ``plots``, and nothing here imports
TensorFlow or ``training/``:

- :mod:`service.contract`: what everything else agrees on: the muon columns and units, the model folder's
  manifest, the bounds of a request and its modes (plain, boosted, custom, enhanced). numpy only.
- :mod:`service.engine`: the generation engine: verified ONNX sessions, counter-based random streams, the
  aux copula and seed proposals, the block pipeline (:class:`~service.engine.Engine`, usable in-process).
- :mod:`service.samples`: sample formats: reading and writing whole samples (npy, Parquet, Arrow, FairShip
  ROOT), body encoders and block-by-block file sinks, reproducible ROOT files.
- :mod:`service.plots`: the figures (kinematics grid, |p|-pT, report comparisons) as PNG.
- :mod:`service.http`: the HTTP edge: the FastAPI app, its guards, admission, uploads, streaming responses,
  metrics and settings.
- :mod:`service.client`: the Python client of the HTTP service.
- :mod:`service.commands`: ``muongan serve``, ``generate`` and ``plot``.
"""
