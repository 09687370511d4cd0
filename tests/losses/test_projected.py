import pytest
import torch

from embedforge.build import build_loss, build_model, build_optimizer
from embedforge.encoders.projection_head import ProjectionHead
from embedforge.losses import NTXentLoss, Projected, SoftmaxClassifierLoss, SupConLoss
from embedforge.recipe import parse_recipe


def views(seed: int, n: int = 6, dim: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, dim, generator=g), torch.randn(n, dim, generator=g)


def projected(loss: torch.nn.Module) -> Projected:
    torch.manual_seed(0)
    return Projected(ProjectionHead(8, 16, 4), loss)


@pytest.mark.parametrize("seed", [0, 1])
def test_labelled_form_is_the_loss_of_the_projections(seed: int) -> None:
    loss_fn = projected(SupConLoss(temperature=0.5))
    z, _ = views(seed)
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    expected = SupConLoss(temperature=0.5)(loss_fn.head(z), labels)
    torch.testing.assert_close(loss_fn(z, labels), expected)


@pytest.mark.parametrize("seed", [0, 1])
def test_two_view_form_projects_both_views_in_one_batch(seed: int) -> None:
    loss_fn = projected(NTXentLoss(temperature=0.5))
    z1, z2 = views(seed)
    both = loss_fn.head(torch.cat([z1, z2]))  # one batch norm over the 2N items, as SimCLR
    expected = NTXentLoss(temperature=0.5)(both[:6], both[6:])
    torch.testing.assert_close(loss_fn(z1, z2), expected)
    loss_fn.eval()  # running statistics: each view may then be projected on its own
    expected = NTXentLoss(temperature=0.5)(loss_fn.head(z1), loss_fn.head(z2))
    torch.testing.assert_close(loss_fn(z1, z2), expected)


def test_mismatched_views_are_refused_by_the_wrapped_loss() -> None:
    loss_fn = projected(NTXentLoss())
    z1, z2 = views(0)
    with pytest.raises(ValueError, match="second view"):
        loss_fn(z1, z2[:4])


def test_head_and_wrapped_loss_parameters_all_get_gradients() -> None:
    loss_fn = Projected(ProjectionHead(8, 16, 4), SoftmaxClassifierLoss(3, 4))
    z, _ = views(2)
    z.requires_grad_(True)
    loss_fn(z, torch.tensor([0, 1, 2, 0, 1, 2])).backward()
    assert z.grad is not None
    for name, parameter in loss_fn.named_parameters():
        assert parameter.grad is not None and torch.isfinite(parameter.grad).all(), name


def test_recipe_projection_wraps_the_loss_and_its_head_is_optimised() -> None:
    recipe = parse_recipe(
        {
            "embedder": {"dim": 16},
            "loss": {"name": "arcface"},
            "projection": {"hidden_dim": 32, "dim": 8},
        }
    )
    loss = build_loss(recipe, num_classes=5)
    assert isinstance(loss, Projected)
    assert loss.head.layers[0].in_features == 16 and loss.head.layers[-1].out_features == 8
    assert loss.loss.W.shape == (8, 5)  # the wrapped loss sees the projection's size
    model = build_model(recipe, image_size=8, in_channels=1)
    optimizer = build_optimizer(recipe, model, loss)
    (group,) = [group for group in optimizer.param_groups if group["name"] == "loss"]
    assert {id(p) for p in group["params"]} == {id(p) for p in loss.parameters()}
    assert {id(p) for p in loss.head.parameters()} <= {id(p) for p in group["params"]}


def test_without_projection_the_loss_is_not_wrapped() -> None:
    loss = build_loss(parse_recipe({"loss": {"name": "ntxent"}}), num_classes=0)
    assert isinstance(loss, NTXentLoss)
