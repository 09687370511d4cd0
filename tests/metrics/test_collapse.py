import math

import pytest
import torch

from embedforge.errors import UserError
from embedforge.metrics.collapse import (
    alignment,
    collapse_metrics,
    dimension_std,
    rankme,
    uniformity,
)


def test_rankme_of_orthogonal_rows_is_the_dimension_and_of_one_direction_is_one() -> None:
    q, _ = torch.linalg.qr(torch.randn(8, 8, dtype=torch.float64))
    assert rankme(q) == pytest.approx(8.0, rel=1e-5)
    collapsed = torch.randn(50, 1) * torch.ones(1, 6)  # every row on one line
    assert rankme(collapsed) == pytest.approx(1.0, rel=1e-4)


def test_rankme_is_the_exp_entropy_of_the_normalised_singular_values() -> None:
    z = torch.randn(30, 5, dtype=torch.float64)
    s = torch.linalg.svdvals(z)
    p = s / s.sum() + 1e-7
    assert rankme(z) == pytest.approx(math.exp(-(p * p.log()).sum().item()), rel=1e-12)


def test_alignment_and_uniformity_equal_explicit_loops() -> None:
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(12, 4, generator=generator, dtype=torch.float64)
    b = torch.randn(12, 4, generator=generator, dtype=torch.float64)
    na, nb = a / a.norm(dim=1, keepdim=True), b / b.norm(dim=1, keepdim=True)
    want = sum(((na[i] - nb[i]).norm() ** 2).item() for i in range(12)) / 12
    assert alignment(a, b) == pytest.approx(want, rel=1e-12)
    pairs = [
        math.exp(-2 * ((na[i] - na[j]).norm() ** 2).item())
        for i in range(12)
        for j in range(12)
        if i != j
    ]
    assert uniformity(a) == pytest.approx(math.log(sum(pairs) / len(pairs)), rel=1e-10)
    assert alignment(a, a) == 0.0


def test_dimension_std_reads_one_spread_out_and_zero_collapsed() -> None:
    spread = torch.randn(20_000, 16, generator=torch.Generator().manual_seed(1))
    assert dimension_std(spread) == pytest.approx(1.0, abs=0.02)
    assert dimension_std(torch.ones(10, 16)) == 0.0


def test_collapse_metrics_keys_and_non_finite_refused() -> None:
    z = torch.randn(10, 4)
    assert set(collapse_metrics(z)) == {"rankme", "uniformity", "dimension_std"}
    assert set(collapse_metrics(z, z)) == {"rankme", "uniformity", "dimension_std", "alignment"}
    z[3, 1] = float("nan")
    with pytest.raises(UserError, match="embeddings"):
        collapse_metrics(z)
