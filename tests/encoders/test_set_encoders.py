import pytest
import torch
from torch import nn

from embedforge.encoders.deep_sets import DeepSets
from embedforge.encoders.raster_cnn import RasterCNN, rasterise
from embedforge.encoders.set_transformer import SetTransformer

SET_ENCODERS = [DeepSets, SetTransformer, RasterCNN]


def random_sets(batch: int, rows: int, features: int, seed: int) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    mask = torch.rand(batch, rows, generator=g) > 0.3
    values = torch.rand(batch, rows, features, generator=g) * mask.unsqueeze(-1)
    weights = values[..., 0]
    values[..., 0] = weights / weights.sum(dim=1, keepdim=True).clamp_min(1e-12)
    return values, mask


def build(encoder_class: type[nn.Module]) -> nn.Module:
    torch.manual_seed(0)
    return encoder_class(in_features=4, dim=16).eval()


@pytest.mark.parametrize("encoder_class", SET_ENCODERS)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_shuffled_rows_give_the_same_vector(encoder_class, seed: int) -> None:
    encoder = build(encoder_class)
    values, mask = random_sets(6, 11, 4, seed)
    order = torch.randperm(11, generator=torch.Generator().manual_seed(seed + 100))
    with torch.no_grad():
        assert torch.allclose(
            encoder(values, mask), encoder(values[:, order], mask[:, order]), atol=1e-5
        )


@pytest.mark.parametrize("encoder_class", SET_ENCODERS)
def test_extra_padding_does_not_change_the_vector(encoder_class) -> None:
    encoder = build(encoder_class)
    values, mask = random_sets(5, 7, 4, 3)
    padded_values = torch.cat([values, torch.rand(5, 4, 4)], dim=1)  # junk in the padding
    padded_mask = torch.cat([mask, torch.zeros(5, 4, dtype=torch.bool)], dim=1)
    with torch.no_grad():
        assert torch.allclose(encoder(values, mask), encoder(padded_values, padded_mask), atol=1e-5)


@pytest.mark.parametrize("encoder_class", SET_ENCODERS)
def test_empty_sets_are_finite_and_every_parameter_gets_a_gradient(encoder_class) -> None:
    encoder = build(encoder_class).train()
    values, mask = random_sets(4, 6, 4, 4)
    mask[0] = False
    values[0] = 0.0
    out = encoder(values, mask)
    assert out.shape == (4, 16)
    assert torch.isfinite(out).all()
    out.pow(2).sum().backward()
    for name, parameter in encoder.named_parameters():
        assert parameter.grad is not None, name
        assert torch.isfinite(parameter.grad).all(), name


def test_rasterised_pixels_follow_the_weights() -> None:
    values = torch.tensor([[[0.7, 1.0, 0.0, 0.0], [0.2, 0.0, 1.0, 0.0], [0.1, 0.0, 0.0, 1.0]]])
    mask = torch.ones(1, 3, dtype=torch.bool)
    image = rasterise(values, mask, size=100, generator=torch.Generator().manual_seed(0))
    assert image.shape == (1, 3, 100, 100)
    shares = image.mean(dim=(2, 3)).squeeze(0)  # one-hot colours: channel mean = share
    assert torch.allclose(shares, torch.tensor([0.7, 0.2, 0.1]), atol=0.02)


def test_quantile_painting_gives_each_row_its_share_to_the_pixel() -> None:
    values = torch.tensor(
        [[[0.7, 1.0, 0.0, 0.0], [0.0, 0.5, 0.5, 0.5], [0.2, 0.0, 1.0, 0.0], [0.1, 0.0, 0.0, 1.0]]]
    )  # a zero-weight row gets no pixel
    mask = torch.tensor([[True, True, True, True]])
    quantiles = RasterCNN.eval_quantiles(10)
    image = rasterise(values, mask, size=10, generator=None, quantiles=quantiles)
    counts = (image.flatten(2) == 1.0).sum(dim=2).squeeze(0)  # pixels per one-hot colour
    assert counts.tolist() == [70, 20, 10]
    scattered = image[0, 0].flatten().nonzero().squeeze(1)  # not one block of 70 pixels
    assert int(scattered.max() - scattered.min()) > 80


def test_raster_cnn_paints_a_new_picture_each_training_call() -> None:
    encoder = build(RasterCNN).train()
    values, mask = random_sets(3, 6, 4, 5)
    assert not torch.allclose(encoder(values, mask), encoder(values, mask))


def test_set_transformer_attention_equals_torch_multihead_attention() -> None:
    from embedforge.encoders.set_transformer import _MultiheadAttentionBlock

    torch.manual_seed(0)
    block = _MultiheadAttentionBlock(16, 4).double()
    rows = torch.randn(5, 7, 16, dtype=torch.float64)
    seed = torch.randn(5, 1, 16, dtype=torch.float64)
    mask = torch.rand(5, 7) > 0.4
    mask[:, 0] = True  # the null row is always present
    bias = torch.randn(5, 7, dtype=torch.float64).masked_fill(~mask, float("-inf"))
    for queries in (rows, seed):  # self-attention, and pooling by a seed query
        expected, _ = block.attention(
            queries,
            rows,
            rows,
            attn_mask=bias[:, None, :].expand(-1, queries.shape[1], -1).repeat_interleave(4, 0),
            need_weights=False,
        )
        got = block._attend(queries, rows, bias[:, None, None, :])
        torch.testing.assert_close(got, expected)
