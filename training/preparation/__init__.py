"""A sample set made ready for training: streamed through features and rareness into files, then drawn in batches.

``rareness.py`` computes the aux values and their copula, ``dataset.py`` writes the prepared set in two
streaming passes, ``batches.py`` draws weighted batches from it, reproducibly by (seed, step).
"""

from training.preparation.batches import Batches
from training.preparation.dataset import Prepared, prepare

__all__ = ["Batches", "Prepared", "prepare"]
