"""The trainer, the PK sampler, distributed helpers and checkpoints."""
