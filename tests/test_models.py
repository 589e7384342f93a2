import pytest
import torch

from gan_lightning.models import MLPDiscriminator, MLPGenerator


@pytest.mark.parametrize("z_dim", [2, 100])
@pytest.mark.parametrize("img_shape", [[1, 28, 28], [3, 32, 32]])
def test_mlp_shapes_and_range(z_dim, img_shape):
    g = MLPGenerator(z_dim, img_shape, [128])
    d = MLPDiscriminator(img_shape, [128])
    x = g(torch.randn(5, z_dim))
    assert x.shape == (5, *img_shape)
    assert x.min() >= -1 and x.max() <= 1
    assert d(x).shape == (5, 1)


def test_report_mlp_layer_sizes():
    g = MLPGenerator(100, [1, 28, 28], [128])
    d = MLPDiscriminator([1, 28, 28], [128])
    g_linear = [m for m in g.modules() if isinstance(m, torch.nn.Linear)]
    d_linear = [m for m in d.modules() if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in g_linear] == [(100, 128), (128, 784)]
    assert [(m.in_features, m.out_features) for m in d_linear] == [(784, 128), (128, 1)]
    assert isinstance(list(g.net)[-1], torch.nn.Tanh)
    # D ends in a logit: the sigmoid lives in the loss
    assert isinstance(list(d.net)[-1], torch.nn.Linear)
    slopes = {m.negative_slope for m in [*g.modules(), *d.modules()]
              if isinstance(m, torch.nn.LeakyReLU)}
    assert slopes == {0.2}
