"""The trainer, the PK sampler, distributed helpers and checkpoints."""

from embedforge.train.pk_sampler import PKSampler

__all__ = ["PKSampler"]
