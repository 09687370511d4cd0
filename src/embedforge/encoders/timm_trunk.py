"""An optional trunk from timm (``pip install embedforge[timm]``): any ``timm.create_model`` name.

The classifier is removed (``num_classes=0``), so the trunk returns pooled
features for the embedder head. Pretrained weights come only from a local
file the user passes (safetensors, or a PyTorch file read with
``weights_only=True``): nothing is downloaded and nothing is unpickled.
"""

import types
from pathlib import Path
from typing import ClassVar, Literal

import torch
from pydantic import Field
from torch import Tensor, nn

from embedforge.config import Section, Shapes
from embedforge.errors import UserError
from embedforge.extras import require
from embedforge.registry import ENCODERS


def import_timm() -> types.ModuleType:
    """timm, or a UserError saying how to install it (or why it fails to import)."""
    return require("timm", "timm", "encoder 'timm' builds its trunk")


def read_weights(path: str | Path) -> dict[str, Tensor]:
    """A state dict from a local .safetensors file, or a PyTorch file without unpickling."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: weights file not found")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # any parse failure of a user file is a user error
        raise UserError(f"{path}: cannot read weights ({error})") from None
    state = state.get("state_dict", state) if isinstance(state, dict) else state
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise UserError(f"{path}: expected a mapping of parameter names to tensors")
    return state


class TimmTrunk(nn.Module):
    """(B, C, H, W) images -> (B, feature_dim) pooled features of a timm backbone."""

    def __init__(
        self, *, model_name: str, in_channels: int = 3, weights: str | Path | None = None
    ) -> None:
        super().__init__()
        timm = import_timm()
        self.body = timm.create_model(
            model_name, pretrained=False, num_classes=0, in_chans=in_channels
        )
        if weights is not None:
            self.load_backbone(read_weights(weights))
        self.feature_dim = int(self.body.num_features)

    def load_backbone(self, state: dict[str, Tensor]) -> None:
        """Load a checkpoint's backbone; its classifier (absent here) is ignored, nothing else."""
        expected = self.body.state_dict()
        unexpected = [key for key in state if key not in expected]
        missing = [key for key in expected if key not in state]
        if missing:
            raise UserError(
                f"weights file lacks {len(missing)} backbone tensors, e.g. {missing[0]!r}"
            )
        classifier = [
            key for key in unexpected if key.split(".")[0] in {"fc", "head", "classifier"}
        ]
        if len(classifier) != len(unexpected):
            other = next(key for key in unexpected if key not in classifier)
            raise UserError(f"weights file has tensors this model does not, e.g. {other!r}")
        self.body.load_state_dict({key: state[key] for key in expected})

    def forward(self, images: Tensor) -> Tensor:
        return self.body(images)


class TimmConfig(Section):
    """A timm backbone (``pip install embedforge[timm]``); weights only from a local file."""

    path_keys: ClassVar[tuple[str, ...]] = ("weights",)
    name: Literal["timm"] = "timm"
    model_name: str = Field(description="any timm.create_model name, e.g. resnet50")
    weights: str | None = Field(None, description=".safetensors or PyTorch file; no download")


@ENCODERS.register(TimmConfig)
def build(config: TimmConfig, shapes: Shapes) -> TimmTrunk:
    return TimmTrunk(
        model_name=config.model_name, in_channels=shapes.in_channels, weights=config.weights
    )
