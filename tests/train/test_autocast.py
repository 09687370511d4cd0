"""Every recipe kind's batch loss (images, palettes) under autocast: the mixed-precision path.

The trainer turns autocast on for CUDA only, and no GPU runs these tests; the CPU's
autocast (float16 and bfloat16) runs the same code with the same kind of hazards:
matmuls that come out in half precision meeting float32 masks or constants (a dtype
mismatch is an error), masking values past half's range, and logsumexp or cosine
similarities that lose too much precision. The loss must stay finite and near its
float32 value, and every trainable parameter must get a finite gradient.
"""

import pytest
import torch

from embedforge.recipe import parse_recipe
from embedforge.train.trainer import build_task

CPU = torch.device("cpu")
DIGITS = {"source": "digits", "test_fraction": 0.3}
DSPRITES = {"source": "dsprites", "size": 120, "test_fraction": 0.25}
PK = {"p": 5, "k": 4}
PALETTES = {"source": "palettes", "size": 200, "validation_objects": 40}
VIEWS = {"degrees": 90, "translate": 0.2, "scale": [0.8, 1.2]}
RECIPES = {
    "triplet semi-hard": {
        "data": DIGITS,
        "loss": {
            "name": "triplet_margin",
            "margin": 0.2,
            "distance": "cosine",
            "mining": "semihard",
        },
        "sampler": PK,
    },
    "triplet batch-hard": {
        "data": DIGITS,
        "loss": {"name": "triplet_margin", "margin": 0.2, "mining": "hard"},
        "sampler": PK,
    },
    "contrastive": {"data": DIGITS, "loss": {"name": "contrastive"}, "sampler": PK},
    "supcon": {"data": DIGITS, "loss": {"name": "supcon"}, "sampler": PK},
    "arcface": {"data": DIGITS, "loss": {"name": "arcface"}, "sampler": PK},
    "softmax": {"data": DSPRITES, "loss": {"name": "softmax"}},
    "SimCLR": {
        "data": DSPRITES,
        "loss": {"name": "ntxent", "temperature": 0.1},
        "views": VIEWS,
        "train": {"self_supervised": True},
    },
    "SimCLR, 2 negatives, projection head": {
        "data": DSPRITES,
        "loss": {"name": "ntxent", "temperature": 0.5, "neg_pairs": 2},
        "projection": {"hidden_dim": 32, "dim": 16},
        "views": VIEWS,
        "train": {"self_supervised": True},
    },
    "palettes, Set Transformer": {
        "data": PALETTES,
        "encoder": {"name": "set_transformer", "dim": 16, "hidden": 16, "heads": 2, "blocks": 1},
        "set_views": {},
        "loss": {"name": "ntxent", "temperature": 0.1},
    },
    "palettes, DeepSets, cosine triplet": {
        "data": PALETTES,
        "encoder": {"name": "deep_sets", "dim": 16, "hidden": 16},
        "set_views": {},
        "loss": {"name": "cosine_triplet"},
    },
    "palettes, raster CNN": {
        "data": PALETTES,
        "encoder": {"name": "raster_cnn", "dim": 16, "image_size": 8, "channels": 4},
        "set_views": {},
        "loss": {"name": "ntxent", "temperature": 0.1},
    },
    "VAE": {
        "data": DSPRITES,
        "embedder": {"dim": 16, "normalize": False},
        "loss": {"name": "vae", "latent_dim": 4},
    },
}


def batch_loss_and_grads(raw: dict, dtype: torch.dtype | None) -> tuple[float, list]:
    """The first batch's loss (float32 when ``dtype`` is None) and every parameter's gradient."""
    train = {"batch_size": 40, "seed": 0, **raw.get("train", {})}
    torch.manual_seed(0)
    task = build_task(parse_recipe({**raw, "train": train}), CPU)
    batch = next(iter(task.batches(0)))
    with torch.autocast("cpu", dtype=dtype or torch.float32, enabled=dtype is not None):
        loss = task.batch_loss(batch, torch.Generator().manual_seed(1))
    loss.backward()
    parameters = [*task.model.parameters(), *task.loss_fn.parameters()]
    return loss.item(), [p.grad for p in parameters if p.requires_grad]


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=str)
@pytest.mark.parametrize("name", RECIPES)
def test_batch_loss_under_autocast_stays_finite_and_near_float32(
    name: str, dtype: torch.dtype
) -> None:
    reference, _ = batch_loss_and_grads(RECIPES[name], None)
    loss, grads = batch_loss_and_grads(RECIPES[name], dtype)
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    # half precision keeps about 3 significant digits; a dtype slip or a masking constant
    # past half's range gives an error, inf or NaN, or a loss far from float32's
    assert loss == pytest.approx(reference, rel=0.05, abs=0.02)
