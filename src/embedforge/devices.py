"""Which torch device a user's ``auto`` / ``cpu`` / ``cuda`` choice means on this machine.

One rule for the trainer, the estimators and ``embedforge embed``, so that ``auto`` means
the same everywhere and asking for a GPU that is not there is a user's mistake with one
clear message, not a CUDA traceback from deep inside torch.
"""

from typing import Literal

import torch

from embedforge.errors import UserError

DeviceChoice = Literal["auto", "cpu", "cuda"]


def resolve_device(choice: DeviceChoice, setting: str) -> Literal["cpu", "cuda"]:
    """``choice`` made concrete: ``auto`` is the GPU when there is one.

    ``setting`` names where the choice came from (a recipe key, an argument) for the error.

    >>> resolve_device("cpu", "--device")
    'cpu'
    """
    if choice not in ("auto", "cpu", "cuda"):
        raise UserError(f"{setting} must be auto, cpu or cuda; got {choice!r}")
    if choice == "cuda" and not torch.cuda.is_available():
        raise UserError(f"{setting} is 'cuda' but no GPU is available")
    if choice == "cpu" or not torch.cuda.is_available():
        return "cpu"
    return "cuda"
