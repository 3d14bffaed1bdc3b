"""The GAN training loop: weighted batches, frozen aux heads, checkpoints, resume, keep-the-best.

Every ``tf.function`` here is traced with ``autograph=False``: there is no tensor-dependent Python
control flow to convert, and autograph re-reads source files at trace time, which breaks a long run
whose code is edited while it trains.

State lives in a work folder (``runs/<name>/`` by default): ``checkpoints/`` (latest, for resume,
including optimiser moments and the TF random generator's state, so a resumed run continues the
same random stream), ``best/`` (the weights chosen by :func:`replaces_best`), ``history.jsonl``
(one line per figure-of-merit evaluation) and ``best.json``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from tqdm import tqdm

from service.contract.muons import with_unit_weight
from training.config import TrainConfig
from training.evaluation.fom import figures_of_merit
from training.model import networks
from training.model.calibration import Calibration, calibrate
from training.model.draw import draw_plain
from training.parameterisation.features import N_FEATURES, canonical, to_features, to_physical
from training.parameterisation.scaling import Scaling
from training.preparation.batches import CALIBRATION, GAN, HEADS, Batches
from training.preparation.dataset import ROW_WIDTH, Prepared

_BCE = keras.losses.BinaryCrossentropy(from_logits=True)


def _decaying(rate: float, updates: int, config: TrainConfig) -> keras.optimizers.schedules.LearningRateSchedule:
    """Cosine decay to ``final_lr_fraction`` of the rate over the run: large steps first, fine ones last."""
    return keras.optimizers.schedules.CosineDecay(rate, max(updates, 1), alpha=config.final_lr_fraction)


def replaces_best(auc: float, lowest: float, tolerance: float) -> bool:
    """Whether an evaluation's weights become the exported ones: the latest within ``tolerance`` of the lowest AUC.

    AUC differences of a few 1e-3 are noise at the periodic test's size (5e4 muons a side), so the lowest
    value alone picks a random step, often an early one whose tails are still off (measured: step 8,000
    of 25,000, pT > 3 GeV rate 5x the reference). Later weights have seen the annealed learning rate.
    ``lowest`` includes ``auc`` itself, so a new minimum always qualifies.
    """
    return auc <= lowest + tolerance


class PhysicalGenerator(tf.Module):
    """The exported generator: physical muons out, transforms inside (DESIGN section 1).

    aux is clipped to ``aux_range`` (the per-group range of the training aux) inside the graph: beyond
    it the generator would extrapolate, so any caller (the service, or an ONNX runtime in a simulation
    framework) gets muons like the rarest it was trained on, while its weights stay those of the aux it drew.
    """

    def __init__(
        self,
        model: keras.Model,
        scaling: Scaling,
        noise_dim: int,
        aux_range: np.ndarray,
        calibration: Calibration | None = None,
    ) -> None:
        super().__init__()
        self.model, self.scaling, self.calibration = model, scaling, calibration or Calibration()
        self.aux_range = np.asarray(aux_range, dtype=np.float32)
        self.function = tf.function(
            self._call,
            input_signature=[
                tf.TensorSpec((None, noise_dim), tf.float32, name="noise"),
                tf.TensorSpec((None, networks.N_AUX), tf.float32, name="aux"),
                tf.TensorSpec((None, 1), tf.float32, name="charge"),
            ],
            autograph=False,
        )

    def raw_features(self, noise: tf.Tensor, aux: tf.Tensor, charge: tf.Tensor) -> tf.Tensor:
        """The network's features, charge first, before the calibration (what it is fitted on)."""
        # Constants made inside the trace: captured tensors would become extra graph inputs in tf2onnx.
        aux = tf.clip_by_value(aux, tf.constant(self.aux_range[0]), tf.constant(self.aux_range[1]))
        raw = self.model(tf.concat([noise, aux, charge], axis=1), training=False)
        return tf.concat([charge, raw], axis=1)

    def _call(self, noise: tf.Tensor, aux: tf.Tensor, charge: tf.Tensor) -> dict[str, tf.Tensor]:
        features = calibrate(self.raw_features(noise, aux, charge), self.calibration)
        return {"muons": to_physical(features, self.scaling)}


def tail_weights(aux: tf.Tensor, tail_scale: float) -> tf.Tensor:
    """Per-muon loss weights, mean 1 over the batch, that turn plain aux into aux widened by ``tail_scale``.

    A one-tailed normal marginal widened by ``s`` has density ratio ``exp(a^2 (1 - 1/s^2) / 2) / s`` to the
    plain one (the boosted mode's weights, inverted), so the losses see the tails as a boosted request
    would ask for them, while real and generated muons keep the same aux (the conditional target is unchanged).
    """
    log_weight = 0.5 * (1.0 - tail_scale**-2) * tf.reduce_sum(tf.square(aux), axis=1)
    weight = tf.exp(log_weight - tf.reduce_max(log_weight))
    return weight / tf.reduce_mean(weight)


class PhysicalDiscriminator(tf.Module):
    """The exported discriminator: physical muons in, ``p_real`` and predicted ``aux`` out."""

    def __init__(self, model: keras.Model, head: keras.Model, scaling: Scaling) -> None:
        super().__init__()
        self.model, self.head, self.scaling = model, head, scaling
        self.function = tf.function(
            self._call, input_signature=[tf.TensorSpec((None, 7), tf.float32, name="muons")], autograph=False
        )

    def _call(self, muons: tf.Tensor) -> dict[str, tf.Tensor]:
        features = to_features(muons, self.scaling)
        return {
            "p_real": tf.sigmoid(self.model(features, training=False)),
            "aux": self.head(features, training=False),
        }


class Trainer:
    """Owns the networks, optimisers and checkpoints of one run."""

    def __init__(self, config: TrainConfig, data: Prepared, workdir: Path) -> None:
        keras.utils.set_random_seed(config.seed)
        self.config, self.data, self.workdir = config, data, workdir
        self.generator = networks.generator(config)
        # Exponential moving average of the generator's weights (BatchNorm statistics included): GAN
        # weights oscillate around the equilibrium, their average does not. Evaluated and exported.
        self.ema_generator = networks.generator(config)
        self.ema_generator.set_weights(self.generator.get_weights())
        self.discriminator = networks.discriminator(config)
        self.aux_head = networks.aux_head(config)
        adam = {"beta_1": config.adam_beta1}
        self.g_opt = keras.optimizers.Adam(_decaying(config.generator_lr, config.steps, config), **adam)
        self.d_opt = keras.optimizers.Adam(
            _decaying(config.discriminator_lr, config.steps * config.discriminator_steps, config), **adam
        )
        self.h_opt = keras.optimizers.Adam(config.aux_head_lr)
        for optimizer, model in ((self.g_opt, self.generator), (self.d_opt, self.discriminator)):
            optimizer.build(model.trainable_variables)
        self.h_opt.build(self.aux_head.trainable_variables)
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False)
        self.heads_trained = tf.Variable(False, trainable=False)
        self.rng = tf.random.Generator.from_seed(config.seed)
        self.batches = Batches(data.folder, config.seed, config.batch_size)
        networks_ = {
            "generator": self.generator,
            "ema_generator": self.ema_generator,
            "discriminator": self.discriminator,
            "aux_head": self.aux_head,
        }
        self.latest = tf.train.CheckpointManager(
            tf.train.Checkpoint(
                **networks_,
                g_opt=self.g_opt,
                d_opt=self.d_opt,
                h_opt=self.h_opt,
                step=self.step,
                heads_trained=self.heads_trained,
                rng=self.rng,
            ),
            str(workdir / "checkpoints"),
            max_to_keep=2,
        )
        self.best = tf.train.Checkpoint(**networks_)
        self.best_path = workdir / "best"
        self.physical_generator = PhysicalGenerator(self.ema_generator, data.scaling, config.noise_dim, data.aux_range)
        self.physical_discriminator = PhysicalDiscriminator(self.discriminator, self.aux_head, data.scaling)

    # --- batches: weighted rows of the prepared set (features, then aux), fed by training.preparation.batches ---
    def _fake(self, rows: tf.Tensor, training: bool) -> tuple[tf.Tensor, tf.Tensor]:
        """Generated features for the aux and charge of weighted real rows (the plain joint)."""
        aux = rows[:, N_FEATURES:]
        charge = rows[:, :1]
        noise = self.rng.normal([self.config.batch_size, self.config.noise_dim])
        raw = self.generator(tf.concat([noise, aux, charge], axis=1), training=training)
        return canonical(tf.concat([charge, raw], axis=1), self.data.scaling), aux

    # --- aux heads -----------------------------------------------------------------------------
    @tf.function(autograph=False)
    def _head_step(self, rows: tf.Tensor) -> tf.Tensor:
        with tf.GradientTape() as tape:
            predicted = self.aux_head(rows[:, :N_FEATURES], training=True)
            loss = tf.reduce_mean(tf.square(predicted - rows[:, N_FEATURES:]))
        variables = self.aux_head.trainable_variables
        self.h_opt.apply_gradients(zip(tape.gradient(loss, variables), variables, strict=True))
        return loss

    def pretrain_aux_heads(self) -> float | None:
        """Fit the aux heads to the real rareness values once; they stay frozen afterwards."""
        loss = None
        if not bool(self.heads_trained.numpy()):
            steps = self.batches.ahead(HEADS, 0, self.config.aux_head_steps, 1)
            for rows in tqdm(steps, total=self.config.aux_head_steps, desc="aux heads", mininterval=2):
                loss = float(self._head_step(rows[0]))
            self.heads_trained.assign(True)
        self.aux_head.trainable = False
        return loss

    # --- GAN -----------------------------------------------------------------------------------
    @tf.function(autograph=False)
    def _train_step(self, rows: tf.Tensor) -> dict[str, tf.Tensor]:
        """One generator update after ``discriminator_steps`` discriminator updates.

        ``rows``: ``(2 * discriminator_steps + 1, batch, 13)`` weighted rows; per discriminator update
        one batch of real features and one of conditions for fakes, then the generator's conditions.
        """
        d_loss, penalty = tf.constant(0.0), tf.constant(0.0)
        scale = self.config.tail_scale
        steps = self.config.discriminator_steps
        for i in range(steps):
            real, real_aux = rows[2 * i, :, :N_FEATURES], rows[2 * i, :, N_FEATURES:]
            fake, fake_aux = self._fake(rows[2 * i + 1], training=True)
            with tf.GradientTape() as tape:
                with tf.GradientTape(watch_accessed_variables=False) as inner:
                    inner.watch(real)
                    logit_real = self.discriminator(real, training=True)
                logit_fake = self.discriminator(fake, training=True)
                d_loss = _BCE(tf.ones_like(logit_real), logit_real, tail_weights(real_aux, scale)) + _BCE(
                    tf.zeros_like(logit_fake), logit_fake, tail_weights(fake_aux, scale)
                )
                if self.config.gradient_penalty > 0:  # R1: flat discriminator around the real muons
                    gradient = inner.gradient(logit_real, real)
                    penalty = 0.5 * self.config.gradient_penalty * tf.reduce_mean(tf.reduce_sum(gradient**2, axis=1))
                total = d_loss + penalty
            variables = self.discriminator.trainable_variables
            self.d_opt.apply_gradients(zip(tape.gradient(total, variables), variables, strict=True))
        with tf.GradientTape() as tape:
            fake, aux = self._fake(rows[2 * steps], training=True)
            weights = tail_weights(aux, scale)
            logit_fake = self.discriminator(fake, training=False)
            adversarial = _BCE(tf.ones_like(logit_fake), logit_fake, weights)
            aux_loss = tf.reduce_mean(weights * tf.reduce_mean(tf.square(self.aux_head(fake, training=False) - aux), 1))
            g_loss = adversarial + self.config.aux_lambda * aux_loss
        variables = self.generator.trainable_variables
        self.g_opt.apply_gradients(zip(tape.gradient(g_loss, variables), variables, strict=True))
        decay = self.config.ema_decay
        for average, weight in zip(self.ema_generator.weights, self.generator.weights, strict=True):
            average.assign(decay * average + (1.0 - decay) * weight)
        self.step.assign_add(1)
        return {"d": d_loss, "g": adversarial, "aux": aux_loss, "r1": penalty}

    def generate(self, n: int, seed: int) -> np.ndarray:
        """``n`` canonical muons (weight 1) from plain inputs, in chunks."""
        chunks = [self.physical_generator.function(**inputs)["muons"].numpy() for inputs in self._plain(n, seed)]
        return with_unit_weight(np.concatenate(chunks))

    def calibrate(self) -> Calibration:
        """Fit the marginal calibration (:mod:`training.model.calibration`) of the current generator weights
        (the kept ones, after :meth:`train`); the physical generator maps through it from then on."""
        n, generator = self.config.calibration_muons, self.physical_generator
        batches = self.batches.draw(CALIBRATION, 0, -(-n // self.config.batch_size))
        training = batches.reshape(-1, ROW_WIDTH)[:n, :N_FEATURES]  # drawn by weight: unweighted rows
        generated = np.concatenate(
            [generator.raw_features(**inputs).numpy() for inputs in self._plain(n, self.config.seed)]
        )
        scores = {"r": generator.scaling.r_scores}
        calibration = Calibration.fit(generated, training, self.config.calibrated_columns, scores)
        self.physical_generator = PhysicalGenerator(
            generator.model, generator.scaling, self.config.noise_dim, generator.aux_range, calibration
        )
        return calibration

    def _plain(self, n: int, seed: int) -> Iterator[dict[str, np.ndarray]]:
        """Plain generator inputs for ``n`` muons, in chunks of 65,536."""
        rng = np.random.default_rng(seed)
        data = self.data
        for start in range(0, n, 65536):
            yield draw_plain(min(65536, n - start), data.correlation, data.mu_plus_fraction, self.config.noise_dim, rng)

    def evaluate(self) -> dict[str, Any]:
        return self.holdout_figures(int(self.step.numpy()))

    def holdout_figures(self, step: int) -> dict[str, Any]:
        """Figures of merit on the held-out part, the muons drawn with the seed of ``step``'s periodic
        evaluation: after :meth:`calibrate`, the kept step's figures again, the calibration the only change."""
        generated = self.generate(self.config.eval_size, seed=self.config.seed + step)
        reference = self.data.holdout[: self.config.eval_size]
        return {"step": step, **figures_of_merit(generated, reference, seed=self.config.seed)}

    def best_figures(self) -> dict[str, Any] | None:
        path = self.workdir / "best.json"
        return json.loads(path.read_text()) if path.exists() else None

    def _record(self, figures: dict[str, Any]) -> None:
        with (self.workdir / "history.jsonl").open("a") as history:
            history.write(json.dumps(figures) + "\n")
        lowest = min(json.loads(line)["classifier_auc"] for line in (self.workdir / "history.jsonl").open())
        if replaces_best(figures["classifier_auc"], lowest, self.config.selection_tolerance):
            self.best.write(str(self.best_path / "weights"))
            (self.workdir / "best.json").write_text(json.dumps(figures, indent=2) + "\n")

    def resume(self) -> int:
        """Restore the latest checkpoint if there is one; returns the step reached."""
        if self.latest.latest_checkpoint:
            self.latest.checkpoint.restore(self.latest.latest_checkpoint).assert_existing_objects_matched()
        return int(self.step.numpy())

    def train(self, steps: int) -> dict[str, Any]:
        """Run until ``steps`` generator updates in all; returns the best figures of merit."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.pretrain_aux_heads()
        start = int(self.step.numpy())
        losses: dict[str, float] = {}
        per_step = 2 * self.config.discriminator_steps + 1
        with tqdm(total=steps, initial=start, desc="train", mininterval=5) as bar:
            for rows in self.batches.ahead(GAN, start, steps, per_step):
                losses = {k: float(v) for k, v in self._train_step(rows).items()}
                step = int(self.step.numpy())
                bar.update(1)
                if step % self.config.checkpoint_every == 0 or step == steps:
                    bar.set_postfix(losses)
                    self.latest.save(checkpoint_number=step)
                if step % self.config.eval_every == 0 or step == steps:
                    figures = self.evaluate()
                    self._record(figures)
                    bar.write(f"step {step}: AUC {figures['classifier_auc']:.4f} losses {losses}")
        if self.best_figures() is None:  # a resumed run that was already complete
            self._record(self.evaluate())
        self.best.read(str(self.best_path / "weights")).assert_existing_objects_matched()
        best = self.best_figures()
        assert best is not None
        if any(not math.isfinite(v) for v in losses.values()):
            raise FloatingPointError(f"training diverged: losses {losses}")
        return best
