"""The timm trunk's wiring, with a stand-in timm module.

timm itself imports torchvision, which cannot be installed beside this project's
CPU build of torch, so these tests check what embedforge does around timm (no
classifier, no download, local weights only, errors), not timm.
"""

import sys
import types
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from embedforge.encoders.timm_trunk import TimmTrunk, import_timm
from embedforge.errors import UserError


class _FakeBackbone(nn.Module):
    def __init__(self, in_chans: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_chans, 8, 3)
        self.num_features = 8

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x).mean(dim=(2, 3))


@pytest.fixture
def fake_timm(monkeypatch) -> list[dict]:
    calls: list[dict] = []

    def create_model(name: str, **kwargs) -> nn.Module:
        calls.append({"name": name, **kwargs})
        return _FakeBackbone(kwargs["in_chans"])

    monkeypatch.setitem(sys.modules, "timm", types.SimpleNamespace(create_model=create_model))
    return calls


def test_trunk_drops_the_classifier_and_never_asks_for_downloads(fake_timm) -> None:
    trunk = TimmTrunk(model_name="resnet18", in_channels=1)
    assert fake_timm == [{"name": "resnet18", "pretrained": False, "num_classes": 0, "in_chans": 1}]
    assert trunk(torch.zeros(2, 1, 16, 16)).shape == (2, trunk.feature_dim)


def test_local_weights_load_and_a_classifier_in_the_file_is_ignored(
    fake_timm, tmp_path: Path
) -> None:
    source = _FakeBackbone(3)
    state = {**source.state_dict(), "fc.weight": torch.zeros(10, 8)}
    save_file(state, str(tmp_path / "w.safetensors"))
    torch.save(state, tmp_path / "w.pt")
    for name in ("w.safetensors", "w.pt"):
        trunk = TimmTrunk(model_name="resnet18", weights=tmp_path / name)
        assert torch.equal(trunk.body.conv.weight, source.conv.weight)


def test_bad_weights_are_user_errors(fake_timm, tmp_path: Path) -> None:
    with pytest.raises(UserError, match="not found"):
        TimmTrunk(model_name="resnet18", weights=tmp_path / "missing.safetensors")
    save_file({"conv.weight": torch.zeros(8, 3, 3, 3)}, str(tmp_path / "partial.safetensors"))
    with pytest.raises(UserError, match="lacks 1 backbone tensors"):
        TimmTrunk(model_name="resnet18", weights=tmp_path / "partial.safetensors")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match="cannot read weights"):
        TimmTrunk(model_name="resnet18", weights=tmp_path / "junk.pt")


def test_pickled_objects_are_refused(fake_timm, tmp_path: Path) -> None:
    torch.save({"conv.weight": torch.zeros(1), "payload": object()}, tmp_path / "evil.pt")
    with pytest.raises(UserError, match="cannot read weights"):
        TimmTrunk(model_name="resnet18", weights=tmp_path / "evil.pt")


def test_missing_timm_says_how_to_install(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "timm", None)  # import raises ImportError
    with pytest.raises(UserError, match=r"embedforge\[timm\]"):
        import_timm()
