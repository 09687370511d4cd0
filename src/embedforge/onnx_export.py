"""An encoder written as an ONNX file, kept only if onnxruntime gives what PyTorch gives.

Set encoders take ``values`` (batch, set, features) float32 and ``mask`` (batch, set) bool,
image encoders ``images`` (batch, channels, height, width) float32; every model gives
``embeddings`` (batch, d) float32. Batch and set size are dynamic axes, so one file embeds
any number of sets of any size, padded as :class:`~embedforge.data.set_batch.SetBatch` pads.

The model is traced by torch's TorchScript exporter (``dynamo=False``): on these encoders
the ``torch.export`` exporter gives a graph that agrees as well (both within 1e-6 of
PyTorch), but it took 13 s instead of 2 s for a Set Transformer and logs to the console.
Masking needs no special care: the Set Transformer's always-present null row means no
attention row is ever fully masked (its ``-inf`` logits never make a NaN softmax), and
DeepSets replaces the max pool of an empty set by zeros before the graph sees it.

After tracing, the file is run by onnxruntime on random batches of varied batch and set
sizes, padding included (one set of one row, a batch of one, wide sets), and refused when
any output differs from PyTorch's by more than :data:`TOLERANCE` (or is NaN): a graph that
was traced wrong for other shapes than the example's is caught here, not in production.
"""

import os
import warnings
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor, nn

from embedforge.errors import UserError
from embedforge.extras import require
from embedforge.onnx_encoder import OnnxEncoder

OUTPUT = "embeddings"
OPSET = 17
TOLERANCE = 1e-5
"""The largest absolute difference between onnxruntime's and PyTorch's embeddings allowed."""


@dataclass(frozen=True)
class SetInputs:
    """A set encoder's inputs: ``values`` (batch, set, ``features``) and ``mask`` (batch, set)."""

    features: int
    names: ClassVar[tuple[str, ...]] = ("values", "mask")
    dynamic_axes: ClassVar[dict[str, dict[int, str]]] = {
        "values": {0: "batch", 1: "set"},
        "mask": {0: "batch", 1: "set"},
    }
    checked: ClassVar[tuple[tuple[int, int], ...]] = ((1, 1), (1, 9), (5, 1), (6, 4), (33, 17))
    """(batch, set size) of the batches the export is checked on."""

    def example(self, batch: int, size: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """Random sets of 1 to ``size`` rows (the first one full), zero-padded to ``size``."""
        sizes = torch.randint(1, size + 1, (batch,), generator=generator)  # (B,)
        sizes[0] = size
        mask = torch.arange(size) < sizes[:, None]  # (B, M)
        values = torch.rand(batch, size, self.features, generator=generator)  # (B, M, F)
        return values * mask[..., None], mask

    def trace(self, generator: torch.Generator) -> tuple[Tensor, ...]:
        """What the exporter traces: sizes that are neither 1 nor equal, so none is fixed."""
        return self.example(3, 7, generator)

    def examples(self, generator: torch.Generator) -> list[tuple[Tensor, ...]]:
        return [self.example(batch, size, generator) for batch, size in self.checked]


@dataclass(frozen=True)
class ImageInputs:
    """An image encoder's input: ``images`` (batch, ``channels``, ``size``, ``size``)."""

    channels: int
    size: int
    names: ClassVar[tuple[str, ...]] = ("images",)
    dynamic_axes: ClassVar[dict[str, dict[int, str]]] = {"images": {0: "batch"}}
    checked: ClassVar[tuple[int, ...]] = (1, 2, 17)
    """Batch sizes the export is checked on."""

    def example(self, batch: int, generator: torch.Generator) -> tuple[Tensor]:
        return (torch.rand(batch, self.channels, self.size, self.size, generator=generator),)

    def trace(self, generator: torch.Generator) -> tuple[Tensor, ...]:
        return self.example(3, generator)

    def examples(self, generator: torch.Generator) -> list[tuple[Tensor, ...]]:
        return [self.example(batch, generator) for batch in self.checked]


OnnxInputs = SetInputs | ImageInputs


def export_onnx(
    model: nn.Module,
    inputs: OnnxInputs,
    path: str | os.PathLike[str],
    *,
    metadata: dict[str, str],
    label: str,
) -> float:
    """Write ``model`` (in eval mode) to ``path`` as ONNX with ``metadata``; check it.

    Returns the largest absolute difference from PyTorch over the checked batches. Raises a
    UserError that starts with ``label`` (what is exported) when the model cannot be
    exported or differs by more than :data:`TOLERANCE`; ``path`` is then left half-made, so
    write to a temporary file, as ``embedforge export`` does with
    :func:`~embedforge.files.atomic.atomic_write`. A module that declares
    ``ONNX_UNSUPPORTED`` (why it cannot be exported) is refused before tracing, because the
    exporter prints its whole graph to the console when it fails.
    """
    onnx = require("onnx", "onnx", "the ONNX model is written")
    for module in model.modules():
        if reason := getattr(module, "ONNX_UNSUPPORTED", None):
            raise UserError(
                f"{label}: {type(module).__name__} cannot be exported to ONNX: {reason}"
            )
    model.eval()
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # "the legacy exporter": chosen
        warnings.simplefilter("ignore", torch.jit.TracerWarning)  # shapes: checked below
        try:
            torch.onnx.export(
                model,
                inputs.trace(generator),
                str(path),
                input_names=list(inputs.names),
                output_names=[OUTPUT],
                dynamic_axes={**inputs.dynamic_axes, OUTPUT: {0: "batch"}},
                opset_version=OPSET,
                dynamo=False,
            )
        except torch.onnx.OnnxExporterError as error:
            reason = str(error).split(". ")[0]
            raise UserError(f"{label}: cannot be exported to ONNX: {reason}") from None
    proto = onnx.load(str(path))
    for key, value in metadata.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(proto, str(path))
    return check_onnx(model, path, inputs.examples(generator), label=label)


@torch.no_grad()
def check_onnx(
    model: nn.Module,
    path: str | os.PathLike[str],
    examples: list[tuple[Tensor, ...]],
    *,
    label: str,
) -> float:
    """The largest absolute difference between ``model`` and the ONNX file on ``examples``;
    a UserError starting with ``label`` when it exceeds :data:`TOLERANCE` or is NaN."""
    encoder = OnnxEncoder(path)
    differences = []
    for example in examples:
        expected, found = model(*example), encoder(*example)  # (B, d) each
        if found.shape != expected.shape:
            raise UserError(
                f"{label}: the ONNX model gives {tuple(found.shape)} embeddings where PyTorch "
                f"gives {tuple(expected.shape)}; it is not kept"
            )
        differences.append((found - expected).abs().max())
    worst = float(torch.stack(differences).max())  # NaN anywhere stays NaN
    if not worst <= TOLERANCE:
        raise UserError(
            f"{label}: the ONNX model differs from PyTorch by {worst:.3g} (more than "
            f"{TOLERANCE:g}) on random inputs; it is not kept"
        )
    return worst
