"""Which torch device a user's ``auto`` / ``cpu`` / ``cuda`` choice means on this machine.

One rule for the trainer, the estimators and ``embedforge embed``, so that ``auto`` means
the same everywhere and asking for a GPU that is not there is a user's mistake with one
clear message, not a CUDA traceback from deep inside torch. The recipe schema, the CLI and
the estimator name the choices from here; torch loads only when a choice is resolved, so
naming them stays light.
"""

from typing import Literal, get_args

from embedforge.errors import UserError

DeviceChoice = Literal["auto", "cpu", "cuda"]
DEVICE_CHOICES: tuple[str, ...] = get_args(DeviceChoice)


def resolve_device(choice: DeviceChoice, setting: str) -> Literal["cpu", "cuda"]:
    """``choice`` made concrete: ``auto`` is the GPU when there is one.

    ``setting`` names where the choice came from (a recipe key, an argument) for the error.

    >>> resolve_device("cpu", "--device")
    'cpu'
    """
    import torch

    if choice not in DEVICE_CHOICES:
        raise UserError(f"{setting} must be auto, cpu or cuda; got {choice!r}")
    gpu = torch.cuda.is_available()
    if choice == "cuda" and not gpu:
        raise UserError(f"{setting} is 'cuda' but no GPU is available")
    return "cuda" if choice != "cpu" and gpu else "cpu"
