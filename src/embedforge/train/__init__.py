"""Training: a recipe's run (``train``), your own model (``fit``), and the hooks a method adds."""

from embedforge.train.fit import fit
from embedforge.train.hooks import TrainingHooks
from embedforge.train.loop import TrainResult
from embedforge.train.trainer import train

__all__ = ["TrainResult", "TrainingHooks", "fit", "train"]
