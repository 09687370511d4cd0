from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from embedforge.files.run_folder import LAST
from embedforge.files.state import load_state
from embedforge.inference import embed_images
from embedforge.losses.classifier import SoftmaxClassifierLoss
from embedforge.recipe import parse_recipe
from embedforge.train.trainer import build_task, train

TOL = {torch.float32: {"rtol": 1e-5, "atol": 1e-6}, torch.float64: {"rtol": 1e-10, "atol": 1e-12}}


def batch(seed: int, size: int, dim: int, classes: int, dtype: torch.dtype):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(size, dim, generator=g, dtype=dtype)
    return x, torch.randint(0, classes, (size,), generator=g)


@pytest.mark.parametrize("size,dim,classes", [(1, 1, 1), (5, 3, 4), (64, 32, 10), (100, 84, 3)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("bias", [True, False])
def test_is_cross_entropy_of_an_explicit_linear_layer(size, dim, classes, dtype, bias) -> None:
    torch.manual_seed(0)
    loss_fn = SoftmaxClassifierLoss(classes, dim, bias=bias).to(dtype)
    x, labels = batch(size, size, dim, classes, dtype)
    weight = loss_fn.classifier.weight.detach()  # (C, D)
    offset = loss_fn.classifier.bias.detach() if bias else torch.zeros(classes, dtype=dtype)
    logits = x @ weight.T + offset  # (B, C)
    torch.testing.assert_close(loss_fn.logits(x), logits, **TOL[dtype])
    torch.testing.assert_close(loss_fn(x, labels), F.cross_entropy(logits, labels), **TOL[dtype])


def test_one_exact_case() -> None:
    # zero weights: every class scores 0, so the loss is log(C) whatever the input
    loss_fn = SoftmaxClassifierLoss(4, 3)
    torch.nn.init.zeros_(loss_fn.classifier.weight)
    torch.nn.init.zeros_(loss_fn.classifier.bias)
    value = loss_fn(torch.randn(6, 3), torch.tensor([0, 1, 2, 3, 0, 1]))
    assert value.item() == pytest.approx(torch.log(torch.tensor(4.0)).item())


def test_gradcheck() -> None:
    torch.manual_seed(1)
    loss_fn = SoftmaxClassifierLoss(3, 4).double()
    x, labels = batch(1, 5, 4, 3, torch.float64)
    weight, bias = (p.detach().clone().requires_grad_(True) for p in loss_fn.parameters())

    def fn(e: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        state = {"classifier.weight": w, "classifier.bias": b}
        return torch.func.functional_call(loss_fn, state, (e, labels))

    assert torch.autograd.gradcheck(fn, (x.requires_grad_(True), weight, bias))


def test_classifier_is_a_trained_parameter() -> None:
    loss_fn = SoftmaxClassifierLoss(3, 4)
    names = [name for name, _ in loss_fn.named_parameters()]
    assert names == ["classifier.weight", "classifier.bias"]
    assert [name for name, _ in SoftmaxClassifierLoss(3, 4, bias=False).named_parameters()] == [
        "classifier.weight"
    ]


def test_rejects_bad_sizes() -> None:
    with pytest.raises(ValueError, match="num_classes"):
        SoftmaxClassifierLoss(0, 4)


def test_runs_on_device(device) -> None:
    torch.manual_seed(0)
    loss_fn = SoftmaxClassifierLoss(5, 8)
    x, labels = batch(0, 16, 8, 5, torch.float32)
    expected = loss_fn(x, labels)
    value = loss_fn.to(device)(x.to(device), labels.to(device))
    torch.testing.assert_close(value.cpu(), expected, **TOL[torch.float32])


def test_training_with_the_trainer_classifies_digits(tmp_path: Path) -> None:
    """The supervised baseline on the bundled digits: the joint classifier's test accuracy."""
    recipe = parse_recipe(
        {
            "embedder": {"dim": 32, "normalize": False},
            "loss": {"name": "softmax"},
            "optimizer": {"name": "adam", "lr": 0.003},
            "train": {"epochs": 12, "batch_size": 128, "best_metric": "precision_at_1"},
        }
    )
    train(recipe, tmp_path / "run", progress=False)
    task = build_task(recipe, torch.device("cpu"))
    state = load_state(tmp_path / "run" / LAST)
    task.model.load_state_dict(state["model"])
    task.loss_fn.load_state_dict(state["loss"])
    test = embed_images(task.model, task.split.test_images, torch.device("cpu"))
    with torch.no_grad():
        predicted = task.loss_fn.logits(test).argmax(dim=1)
    accuracy = (predicted == task.split.test_labels).float().mean().item()
    assert accuracy > 0.95  # 0.978 on the CPU
