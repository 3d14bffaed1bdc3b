"""The three Keras networks, all in feature space (:mod:`training.parameterisation.features`).

- generator: (noise, aux, charge) -> 8 raw features (charge is re-attached, not generated);
- discriminator: 9 features -> one real/fake logit;
- aux head: 9 features -> 4 rareness values; pre-trained on the real sample, then frozen, so the
  generator can be told to honour its aux inputs (DESIGN section 3).

BatchNorm in the generator only: it folds into the ONNX graph at export, and in the discriminator it
would mix real and fake batch statistics.
"""

from __future__ import annotations

import keras

from service.contract.manifest import AUX_GROUPS
from training.config import TrainConfig
from training.parameterisation.features import N_FEATURES, N_GENERATED

N_AUX = len(AUX_GROUPS)


def _mlp(
    width: int, hidden: list[int], out: int, name: str, batch_norm: bool = False, dropout: float = 0.0
) -> keras.Model:
    inputs = keras.Input((width,), name=f"{name}_in")
    h = inputs
    for units in hidden:
        h = keras.layers.Dense(units)(h)
        if batch_norm:
            h = keras.layers.BatchNormalization()(h)
        h = keras.layers.LeakyReLU(negative_slope=0.2)(h)
        if dropout:
            h = keras.layers.Dropout(dropout)(h)
    outputs = keras.layers.Dense(out)(h)
    return keras.Model(inputs, outputs, name=name)


def generator(config: TrainConfig) -> keras.Model:
    """Input: concatenated noise, aux and charge; output: the 8 generated features, unconstrained."""
    return _mlp(config.noise_dim + N_AUX + 1, config.generator_hidden, N_GENERATED, "generator", batch_norm=True)


def discriminator(config: TrainConfig) -> keras.Model:
    return _mlp(N_FEATURES, config.discriminator_hidden, 1, "discriminator", dropout=config.discriminator_dropout)


def aux_head(config: TrainConfig) -> keras.Model:
    return _mlp(N_FEATURES, config.aux_head_hidden, N_AUX, "aux_head")
