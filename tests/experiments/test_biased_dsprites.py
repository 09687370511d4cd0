import torch

from embedforge.data.dsprites import dsprites
from embedforge.experiments.biased_dsprites import BANDS, biased_subset, control_subset


def test_the_biased_subset_keeps_each_shape_in_its_band_only() -> None:
    data = dsprites(3000, seed=1)
    kept = biased_subset(data.labels, data.latents.pos_x)
    shapes, pos_x = data.labels[kept], data.latents.pos_x[kept]
    for shape, (low, high) in enumerate(BANDS):
        inside = pos_x[shapes == shape]
        assert len(inside) > 0 and inside.min() >= low and inside.max() <= high
    outside = torch.ones(len(data.labels), dtype=torch.bool)
    outside[kept] = False
    for shape, (low, high) in enumerate(BANDS):  # everything left out is outside its band
        x = data.latents.pos_x[outside & (data.labels == shape)]
        assert ((x < low) | (x > high)).all()
    # about a third of each shape's positions: 10 of 32 grid columns each
    assert 0.25 < len(kept) / len(data.labels) < 0.4


def test_the_control_is_a_seeded_random_subset_of_the_same_size() -> None:
    control = control_subset(1000, 300, seed=0)
    assert len(control) == len(control.unique()) == 300
    assert control.tolist() == sorted(control.tolist())
    assert torch.equal(control, control_subset(1000, 300, seed=0))
    assert not torch.equal(control, control_subset(1000, 300, seed=1))
