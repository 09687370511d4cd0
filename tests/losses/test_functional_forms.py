"""Every registered loss has its functional form in embedforge.losses.functional, and the
module and the function give the same value on the same input."""

import torch

from embedforge.config import Shapes
from embedforge.losses import functional
from embedforge.registry import LOSSES

FORMS = {
    "arcface": lambda loss, z, y: functional.arcface_loss(z, y, loss.W),
    "contrastive": lambda loss, z, y: functional.contrastive_loss(z, y),
    "multi_similarity": lambda loss, z, y: functional.multi_similarity_loss(z, y),
    "ntxent": lambda loss, z, y: functional.ntxent_loss(z, y, temperature=0.07),
    "softmax": lambda loss, z, y: functional.softmax_classifier_loss(
        z, y, loss.classifier.weight, loss.classifier.bias
    ),
    "supcon": lambda loss, z, y: functional.supcon_loss(z, y),
    "triplet_margin": lambda loss, z, y: functional.triplet_margin_loss(z, y).loss,
}
NOT_LABELLED = {  # called otherwise: checked against their own function in their own tests
    "barlow_twins": functional.barlow_twins_loss,
    "cosine_triplet": functional.cosine_triplet_loss,
    "emd_distillation": functional.emd_distillation_loss,
    "vicreg": functional.vicreg_loss,
    "vae": functional.negative_elbo,
}


def test_every_registered_loss_has_a_functional_form() -> None:
    assert set(LOSSES.names()) == set(FORMS) | set(NOT_LABELLED)


def test_each_labelled_module_equals_its_function() -> None:
    generator = torch.Generator().manual_seed(0)
    z = torch.randn(12, 8, generator=generator)
    y = torch.arange(12) % 3
    for name, form in FORMS.items():
        entry = LOSSES[name]
        loss = entry.target(entry.config(), Shapes(embedding_dim=8, num_classes=3))
        torch.testing.assert_close(loss(z, y), form(loss, z, y), msg=name)
