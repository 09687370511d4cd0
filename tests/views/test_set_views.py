import torch

from embedforge.data.set_batch import SetBatch
from embedforge.views.set_views import (
    SetViews,
    dirichlet_weights,
    drop_light_rows,
    jitter_features,
    permute_rows,
)


def palette_batch(seed: int = 0, n: int = 16, m: int = 9) -> SetBatch:
    g = torch.Generator().manual_seed(seed)
    mask = torch.rand(n, m, generator=g) > 0.4
    mask[:, 0] = True
    values = torch.rand(n, m, 4, generator=g) * mask.unsqueeze(-1)
    values[..., 0] = values[..., 0] / values[..., 0].sum(dim=1, keepdim=True)
    return SetBatch(values, mask)


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def sorted_rows(batch: SetBatch, i: int) -> torch.Tensor:
    rows = batch.values[i][batch.mask[i]]
    return rows[rows[:, 1].argsort()]


def test_permutation_keeps_each_sets_rows() -> None:
    batch = palette_batch()
    view = permute_rows(batch, gen(1))
    assert not torch.equal(view.values, batch.values)
    for i in range(len(batch)):
        assert torch.equal(sorted_rows(view, i), sorted_rows(batch, i))
    assert torch.equal(view.values[~view.mask], torch.zeros_like(view.values[~view.mask]))
    packed = torch.arange(batch.max_rows) < batch.sizes[:, None]  # (n, m): padding last
    assert torch.equal(view.mask, packed)  # so trim_padding can cut it


def test_dirichlet_weights_sum_to_one_and_centre_on_the_true_weights() -> None:
    batch = palette_batch()
    draws = torch.stack(
        [dirichlet_weights(batch, 50.0, gen(s)).values[..., 0] for s in range(400)]
    )  # (400, n, m)
    assert torch.allclose(draws.sum(dim=2), torch.ones(400, len(batch)), atol=1e-5)
    assert torch.all(draws[:, ~batch.mask] == 0)
    assert torch.allclose(draws.mean(dim=0), batch.values[..., 0], atol=0.02)
    assert draws.std(dim=0)[batch.mask].mean() > 0.01


def test_feature_jitter_spares_weights_and_padding() -> None:
    batch = palette_batch()
    view = jitter_features(batch, 0.05, gen(2))
    assert torch.equal(view.values[..., 0], batch.values[..., 0])
    assert torch.equal(view.values[~batch.mask], batch.values[~batch.mask])
    noise = (view.values - batch.values)[..., 1:][batch.mask]
    assert 0.04 < noise.std().item() < 0.06


def test_dropping_light_rows_keeps_the_heaviest_and_renormalises() -> None:
    batch = palette_batch()
    view = drop_light_rows(batch, below=1.0, probability=1.0, generator=gen(3))  # drop all it may
    assert torch.equal(view.mask.sum(dim=1), torch.ones(len(batch), dtype=torch.long))
    heaviest = batch.values[..., 0].argmax(dim=1)
    assert torch.equal(view.mask.float().argmax(dim=1), heaviest)
    assert torch.allclose(view.values[..., 0].sum(dim=1), torch.ones(len(batch)))


def test_views_are_reproducible_and_leave_the_global_rng_alone() -> None:
    batch = palette_batch()
    torch.manual_seed(123)
    expected_global = torch.rand(3)
    torch.manual_seed(123)
    first = SetViews()(batch, gen(7))
    assert torch.equal(torch.rand(3), expected_global)
    second = SetViews()(batch, gen(7))
    assert torch.equal(first.values, second.values) and torch.equal(first.mask, second.mask)
    other = SetViews()(batch, gen(8))
    assert not torch.equal(first.values, other.values)
