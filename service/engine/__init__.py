"""The generation engine: a verified model and the block pipeline that turns (seed, rows, mode) into muons.

:class:`Model` (:mod:`~service.engine.model`) holds the verified onnxruntime sessions;
:class:`Engine` (:mod:`~service.engine.generation`) draws each block's inputs from its counter-based
streams (:mod:`~service.engine.streams`) and the aux distributions (:mod:`~service.engine.latent`), runs
the generator and yields muons. The HTTP service, ``muongan generate --model`` and ``muongan plot`` all
run this; no HTTP, files or TensorFlow here.
"""

from service.engine.generation import Abandoned, Engine, GenerationError, Request
from service.engine.model import Model, ModelError

__all__ = ["Abandoned", "Engine", "GenerationError", "Model", "ModelError", "Request"]
