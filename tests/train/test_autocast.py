"""Every recipe kind's batch loss (images, palettes) under autocast: the mixed-precision path.

The trainer turns autocast on for CUDA only, and CI has no GPU: there the CPU's autocast
(float16 and bfloat16) runs the same code with the same kind of hazards (on a machine with
a GPU, ``scripts/gpu-check``, the tests run under CUDA's autocast instead):
matmuls that come out in half precision meeting float32 masks or constants (a dtype
mismatch is an error), masking values past half's range, and logsumexp or cosine
similarities that lose too much precision. The loss must stay finite and near its
float32 value, and every trainable parameter must get a finite gradient.
"""

import pytest
import torch

from embedforge.recipe import parse_recipe
from embedforge.train.distributed import global_batch_loss
from embedforge.train.trainer import build_task

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
        "loss": {"name": "triplet_margin", "margin": 0.2, "mining": "batch_hard"},
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


def batch_loss_and_grads(
    raw: dict, dtype: torch.dtype | None, device: torch.device
) -> tuple[float, list]:
    """The first batch's loss (float32 when ``dtype`` is None) and every parameter's gradient."""
    train = {"batch_size": 40, "seed": 0, **raw.get("train", {})}
    torch.manual_seed(0)
    task = build_task(parse_recipe({**raw, "train": train}), device)
    batch = next(iter(task.batches(0)))
    generator = torch.Generator(device=device).manual_seed(1)
    with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
        loss = task.batch_loss(batch, generator)
    loss.backward()
    parameters = [*task.model.parameters(), *task.loss_fn.parameters()]
    return loss.item(), [p.grad for p in parameters if p.requires_grad]


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=str)
@pytest.mark.parametrize("name", RECIPES)
def test_batch_loss_under_autocast_stays_finite_and_near_float32(
    name: str, dtype: torch.dtype, device: torch.device
) -> None:
    reference, _ = batch_loss_and_grads(RECIPES[name], None, device)
    loss, grads = batch_loss_and_grads(RECIPES[name], dtype, device)
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    # half precision keeps about 3 significant digits; a dtype slip or a masking constant
    # past half's range gives an error, inf or NaN, or a loss far from float32's
    assert loss == pytest.approx(reference, rel=0.05, abs=0.02)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=str)
def test_a_fresh_networks_nearly_aligned_embeddings_still_train_under_autocast(
    dtype: torch.dtype, device: torch.device
) -> None:
    """A fresh network maps every image to nearly one direction. In half precision their
    cosine similarities round to 1 and tie, semi-hard mining found no triplet and the
    digits triplet recipe never trained with mixed precision on a GPU; the loss must see
    float32 similarities however the model ran."""
    torch.manual_seed(0)
    task = build_task(parse_recipe(RECIPES["triplet semi-hard"]), device)
    direction = torch.randn(1, 64, device=device)
    embeddings = direction + 1e-3 * torch.randn(20, 64, device=device)
    labels = torch.arange(20, device=device) % 5
    reference = global_batch_loss(task.loss_fn, embeddings, labels)
    with torch.autocast(device.type, dtype=dtype):
        loss = global_batch_loss(task.loss_fn, embeddings.to(dtype), labels)
    assert reference.item() > 0
    assert loss.dtype == torch.float32
    assert loss.item() == pytest.approx(reference.item(), rel=0.02)
