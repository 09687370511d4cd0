"""resolve_device: one meaning of auto/cpu/cuda, and one clear error for a missing GPU."""

import pytest
import torch

from embedforge.devices import resolve_device
from embedforge.errors import UserError


@pytest.mark.parametrize("gpu", [False, True])
def test_auto_is_the_gpu_when_there_is_one_and_cpu_is_always_cpu(monkeypatch, gpu) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: gpu)
    assert resolve_device("auto", "--device") == ("cuda" if gpu else "cpu")
    assert resolve_device("cpu", "--device") == "cpu"


def test_cuda_without_a_gpu_and_unknown_choices_are_user_errors(monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(UserError, match=r"recipe train\.device is 'cuda' but no GPU is available"):
        resolve_device("cuda", "recipe train.device")
    with pytest.raises(UserError, match="--device must be auto, cpu or cuda; got 'tpu'"):
        resolve_device("tpu", "--device")  # type: ignore[arg-type]
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("cuda", "--device") == "cuda"
