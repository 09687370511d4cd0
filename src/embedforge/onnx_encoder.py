"""An ONNX encoder run by onnxruntime, called like the PyTorch encoder it was exported from.

:class:`OnnxEncoder` is an ``nn.Module`` only so that the batched embedding in
:mod:`embedforge.inference` (sets in chunks sorted by size, each padded to its own largest
set; images batch by batch) runs it unchanged: ``embed --backend onnx`` differs from the
torch backend in the model alone, so the two can be compared on the same batches.

An ONNX file is input like any other and is read by onnxruntime's ``InferenceSession``
alone: a protobuf parser, no pickle, no Python code run. It is C++ and not hardened
against crafted files (like FAISS's reader, see ``docs/architecture.md``), so a model
from elsewhere is trusted as much as a program from there. A run's own ``model.onnx``
records the sha256 of the checkpoint it was exported from, so a model left behind by an
earlier checkpoint is refused instead of silently embedding with old weights.
"""

import os
from pathlib import Path

import torch
from torch import Tensor, nn

from embedforge.errors import UserError
from embedforge.extras import require
from embedforge.files.file_sha256 import file_sha256
from embedforge.files.run_folder import BEST, ONNX, check_run_folder

CHECKPOINT_KEY = "embedforge.checkpoint_sha256"
"""The ONNX metadata entry naming the checkpoint a run's model was exported from."""


class OnnxEncoder(nn.Module):
    """``encoder(*inputs) -> (B, d)`` float32 on the CPU, for the ONNX file at ``path``.

    The inputs are matched to the model's inputs in order: ``(values, mask)`` for a set
    encoder, ``(images,)`` for an image encoder (see :mod:`embedforge.onnx_export`).
    """

    def __init__(self, path: str | os.PathLike[str], *, threads: int | None = None) -> None:
        """``threads``: onnxruntime's intra-op threads (default: one per physical core)."""
        super().__init__()
        onnxruntime = require("onnxruntime", "onnx", "an ONNX model is run")
        errors = onnxruntime.capi.onnxruntime_pybind11_state
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads or 0  # 0: onnxruntime's default
        try:
            self.session = onnxruntime.InferenceSession(
                str(path), options, providers=["CPUExecutionProvider"]
            )
        except (errors.Fail, errors.InvalidProtobuf, errors.InvalidGraph, errors.NoSuchFile) as e:
            reason = str(e).strip().splitlines()[0]
            raise UserError(f"{path}: not an ONNX model onnxruntime can load ({reason})") from None
        self.input_names = tuple(entry.name for entry in self.session.get_inputs())
        self.metadata = dict(self.session.get_modelmeta().custom_metadata_map)

    def forward(self, *inputs: Tensor) -> Tensor:
        arrays = (tensor.detach().cpu().numpy() for tensor in inputs)
        (embeddings,) = self.session.run(None, dict(zip(self.input_names, arrays, strict=True)))
        return torch.from_numpy(embeddings)  # (B, d)


def load_run_onnx(run_dir: str | os.PathLike[str]) -> OnnxEncoder:
    """The run's ``model.onnx``, checked to come from the run's best checkpoint as it is now."""
    run_dir = check_run_folder(run_dir)
    path = run_dir / ONNX
    export = f"embedforge export {run_dir} --format onnx"
    if not path.is_file():
        raise UserError(f"{path}: missing; --backend onnx runs the run's exported model: {export}")
    encoder = OnnxEncoder(path)
    recorded = encoder.metadata.get(CHECKPOINT_KEY)
    if recorded is None:
        raise UserError(f"{path}: records no checkpoint; expected a model from '{export}'")
    if recorded != file_sha256(Path(run_dir) / BEST):
        raise UserError(
            f"{path}: exported from another checkpoint than {run_dir / BEST} (the run was "
            f"trained further since?); export it again: {export} --overwrite"
        )
    return encoder
