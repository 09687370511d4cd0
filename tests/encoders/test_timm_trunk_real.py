"""The timm trunk with the real timm package, where it is installed.

timm imports torchvision, which cannot be installed beside this project's CPU build of
torch (CI's environment), so these tests are skipped there; they run in an environment
with ``torch==2.14.1 torchvision==0.29.1 timm`` (see the closing note of the issue).
"""

from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from embedforge.encoders.timm_trunk import TimmTrunk
from embedforge.files.run_folder import LAST
from embedforge.files.state import load_state
from embedforge.recipe import bundled_recipe
from embedforge.train.trainer import train

timm = pytest.importorskip("timm", reason="timm (and torchvision) not installed here")


def test_a_real_backbone_loses_its_classifier_and_pools_to_its_width() -> None:
    trunk = TimmTrunk(model_name="resnet18", in_channels=1)
    features = trunk.eval()(torch.rand(2, 1, 64, 64))
    assert trunk.feature_dim == 512 and features.shape == (2, 512)
    assert not any(name.startswith("fc.") for name, _ in trunk.body.named_parameters())


def test_local_pretrained_weights_are_loaded_and_their_classifier_ignored(tmp_path: Path) -> None:
    torch.manual_seed(0)
    source = timm.create_model("resnet18", pretrained=False)  # with its 1000-class classifier
    save_file(source.state_dict(), str(tmp_path / "resnet18.safetensors"))
    trunk = TimmTrunk(model_name="resnet18", weights=tmp_path / "resnet18.safetensors").eval()
    source.reset_classifier(0)
    images = torch.rand(2, 3, 64, 64)
    torch.testing.assert_close(trunk(images), source.eval()(images))


def test_the_reid_recipe_trains_a_timm_trunk(reid_folder: Path, tmp_path: Path) -> None:
    overrides = [
        "encoder.name=timm",
        "encoder.model_name=resnet18",
        f"data.root={reid_folder / 'images'}",
        f"data.csv={reid_folder / 'train.csv'}",
        "data.image_size=32",
        "train.epochs=1",
        "train.batch_size=16",
    ]
    recipe = bundled_recipe("reid_arcface.yaml", overrides)
    result = train(recipe, tmp_path / "run", progress=False)
    assert 0.0 <= result.history[-1]["precision_at_1"] <= 1.0
    trunk_weights = [key for key in load_state(tmp_path / "run" / LAST)["model"] if key[0] == "0"]
    assert any("conv1" in key for key in trunk_weights)  # the resnet's own layers were trained
