"""The GAN training loop: weighted batches, frozen aux heads, checkpoints, periodic figure of merit, resume."""

from training.loop.gan import Trainer

__all__ = ["Trainer"]
