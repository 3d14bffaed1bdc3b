"""Physical muons <-> the features the networks see, built as TensorFlow ops so that they live in the exported graph.

``scaling.py`` fits the constants of the bounded monotone maps on the training sample; ``features.py``
applies them in both directions, so every generated muon is physical by construction.
"""

from training.parameterisation.features import N_FEATURES, N_GENERATED, canonical, to_features, to_physical
from training.parameterisation.scaling import Scaling

__all__ = ["N_FEATURES", "N_GENERATED", "Scaling", "canonical", "to_features", "to_physical"]
