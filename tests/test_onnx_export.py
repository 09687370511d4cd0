import copy
from pathlib import Path

import pytest
import torch
from tests.conftest import ENCODERS

from embedforge.build import build_model, build_set_encoder
from embedforge.errors import UserError
from embedforge.onnx_encoder import OnnxEncoder
from embedforge.onnx_export import TOLERANCE, ImageInputs, SetInputs, check_onnx, export_onnx
from embedforge.recipe import parse_recipe

pytest.importorskip("onnxruntime")

SET_ENCODERS = ["deep_sets", "set_transformer"]


def set_encoder(name: str) -> torch.nn.Module:
    torch.manual_seed(0)
    recipe = parse_recipe({"data": {"source": "palettes"}, "encoder": ENCODERS[name]})
    return build_set_encoder(recipe.encoder, in_features=4)


def padded_sets(sizes: list[int], width: int, features: int = 4) -> tuple[torch.Tensor, ...]:
    """Random sets of ``sizes`` rows, zero-padded to ``width`` (a 0 is an empty set)."""
    generator = torch.Generator().manual_seed(sum(sizes) + width)
    mask = torch.arange(width) < torch.tensor(sizes)[:, None]  # (B, M)
    values = torch.rand(len(sizes), width, features, generator=generator) * mask[..., None]
    return values, mask


def export(model: torch.nn.Module, inputs: SetInputs | ImageInputs, path: Path) -> float:
    return export_onnx(model, inputs, path, metadata={"note": "test"}, label="test model")


@pytest.fixture(scope="module", params=SET_ENCODERS)
def exported(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[torch.nn.Module, Path]:
    """A freshly built set encoder and its ONNX export."""
    model = set_encoder(request.param)
    path = tmp_path_factory.mktemp("onnx") / "model.onnx"
    assert export(model, SetInputs(features=4), path) <= TOLERANCE
    return model, path


@pytest.mark.parametrize(
    "sizes,width",
    [([1], 1), ([3], 3), ([1], 12), ([1, 2, 5, 12, 7], 12), ([4, 0, 1], 6), ([9] * 40, 9)],
    ids=["one-row", "batch-of-one", "one-row-padded", "mixed", "with-an-empty-set", "wide"],
)
def test_onnxruntime_gives_torchs_set_embeddings_for_any_batch_and_set_size(
    exported: tuple[torch.nn.Module, Path], sizes: list[int], width: int
) -> None:
    model, path = exported
    values, mask = padded_sets(sizes, width)
    with torch.no_grad():
        expected = model(values, mask)
    found = OnnxEncoder(path)(values, mask)
    assert found.dtype == torch.float32 and found.shape == (len(sizes), 8)
    assert found.isfinite().all()
    torch.testing.assert_close(found, expected, atol=TOLERANCE, rtol=0)


def test_the_set_model_takes_values_and_a_boolean_mask_with_named_dynamic_axes(
    exported: tuple[torch.nn.Module, Path],
) -> None:
    encoder = OnnxEncoder(exported[1])
    described = [(entry.name, entry.type, entry.shape) for entry in encoder.session.get_inputs()]
    assert described == [
        ("values", "tensor(float)", ["batch", "set", 4]),
        ("mask", "tensor(bool)", ["batch", "set"]),
    ]
    assert encoder.metadata["note"] == "test"


def test_an_image_model_is_exported_with_a_dynamic_batch(tmp_path: Path) -> None:
    recipe = parse_recipe({"embedder": {"dim": 8, "normalize": True}})
    model = build_model(recipe, image_size=8, in_channels=1)
    path = tmp_path / "model.onnx"
    export(model, ImageInputs(channels=1, size=8), path)
    encoder = OnnxEncoder(path)
    assert encoder.input_names == ("images",)
    for batch in (1, 5):
        images = torch.rand(batch, 1, 8, 8)
        with torch.no_grad():
            expected = model(images)
        torch.testing.assert_close(encoder(images), expected, atol=TOLERANCE, rtol=0)


def test_a_model_that_differs_from_torch_is_refused(
    exported: tuple[torch.nn.Module, Path],
) -> None:
    model, path = exported
    moved = copy.deepcopy(model)  # the torch model moves on; the file does not
    with torch.no_grad():
        list(moved.parameters())[-1].add_(1e-3)  # the output layer's bias
    examples = SetInputs(features=4).examples(torch.Generator().manual_seed(1))
    with pytest.raises(
        UserError, match=r"test model: the ONNX model differs from PyTorch by 0\.001"
    ):
        check_onnx(moved, path, examples, label="test model")


def test_the_raster_cnn_is_refused_before_tracing(tmp_path: Path, capfd) -> None:
    encoder = set_encoder("raster_cnn")
    with pytest.raises(UserError, match=r"RasterCNN cannot be exported to ONNX: .* searchsorted"):
        export(encoder, SetInputs(features=4), tmp_path / "model.onnx")
    assert capfd.readouterr().out == ""  # no graph dump
