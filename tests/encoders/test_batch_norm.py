import torch
import torch.nn.functional as F

from embedforge.data.dsprites import dsprites
from embedforge.encoders.batch_norm import estimate_batch_norm_statistics
from embedforge.encoders.small_cnn import SmallCNN


def test_an_untrained_encoder_gets_the_statistics_of_its_images_and_keeps_its_weights() -> None:
    torch.manual_seed(0)
    model = SmallCNN(image_size=64)
    weights = {k: v.clone() for k, v in model.named_parameters()}
    images = dsprites(300, seed=0).images

    def mean_cosine() -> float:
        features = F.normalize(model.eval()(images), dim=1)
        return (features @ features.T).mean().item()

    with torch.no_grad():
        before = mean_cosine()
        estimate_batch_norm_statistics(model, images, batch=64)
        after = mean_cosine()
    assert before > 0.9 and after < 0.5  # all alike with the initial statistics, not after
    assert all(torch.equal(dict(model.named_parameters())[k], v) for k, v in weights.items())
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    assert all(norm.momentum == 0.1 for norm in norms) and not model.training
