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


def test_larger_mlp_layer_sizes():
    g = MLPGenerator(100, [1, 28, 28], [256, 512, 1024])
    d = MLPDiscriminator([1, 28, 28], [512, 256])
    g_out = [m.out_features for m in g.modules() if isinstance(m, torch.nn.Linear)]
    d_out = [m.out_features for m in d.modules() if isinstance(m, torch.nn.Linear)]
    assert g_out == [256, 512, 1024, 784] and d_out == [512, 256, 1]


def test_dcgan_mnist_shapes_and_source_layers():
    from gan_lightning.models import DCGANMNISTDiscriminator, DCGANMNISTGenerator

    g, d = DCGANMNISTGenerator(100, [1, 28, 28]), DCGANMNISTDiscriminator([1, 28, 28])
    x = g(torch.randn(3, 100))
    assert x.shape == (3, 1, 28, 28) and x.abs().max() <= 1
    assert d(x).shape == (3, 1)
    convs_t = [m for m in g.modules() if isinstance(m, torch.nn.ConvTranspose2d)]
    assert [(m.out_channels, m.kernel_size, m.stride) for m in convs_t] == [
        (256, (3, 3), (2, 2)), (128, (4, 4), (2, 2))]
    conv_types = torch.nn.Conv2d | torch.nn.ConvTranspose2d
    assert all(m.bias is None for m in g.modules() if isinstance(m, conv_types))
    assert not any(isinstance(m, torch.nn.Dropout) for m in g.modules())  # dropout in D only
    assert [m.p for m in d.modules() if isinstance(m, torch.nn.Dropout)] == [0.3]
    d_convs = [(m.out_channels, m.kernel_size, m.stride) for m in d.modules()
               if isinstance(m, torch.nn.Conv2d)]
    assert d_convs == [(512, (5, 5), (2, 2)), (256, (3, 3), (2, 2)), (128, (3, 3), (1, 1))]
    with pytest.raises(ValueError, match="28x28"):
        DCGANMNISTGenerator(100, [3, 32, 32])


@pytest.mark.parametrize(("img_shape", "start", "n_convt"), [([1, 28, 28], 7, 3),
                                                             ([3, 32, 32], 4, 4),
                                                             ([1, 32, 32], 4, 4)])
def test_dcgan_is_sized_from_the_dataset(img_shape, start, n_convt):
    from gan_lightning.models import DCGANDiscriminator, DCGANGenerator

    g, d = DCGANGenerator(100, img_shape), DCGANDiscriminator(img_shape)
    x = g(torch.randn(3, 100))
    assert x.shape == (3, *img_shape) and x.abs().max() <= 1
    assert d(x).shape == (3, 1)
    convs_t = [m for m in g.modules() if isinstance(m, torch.nn.ConvTranspose2d)]
    assert len(convs_t) == n_convt and convs_t[0].kernel_size == (start, start)
    assert convs_t[-1].out_channels == img_shape[0]
    # Radford: BatchNorm in G except at the output, not on D's input layer; N(0, 0.02) weights
    assert isinstance(list(d.net)[1], torch.nn.LeakyReLU)
    assert 0.01 < convs_t[1].weight.std().item() < 0.03
    assert not any(isinstance(m, torch.nn.BatchNorm2d)
                   for m in DCGANDiscriminator(img_shape, batch_norm=False).modules())


def test_dcgan_rejects_shapes_it_cannot_build():
    from gan_lightning.models import DCGANGenerator

    with pytest.raises(ValueError, match="square"):
        DCGANGenerator(100, [1, 28, 32])
    with pytest.raises(ValueError, match="8 or more"):
        DCGANGenerator(100, [1, 6, 6])


@pytest.mark.parametrize("label", ["onehot", "embedding"])
def test_cgan_concatenates_the_label(label):
    from gan_lightning.models import ConditionalMLPDiscriminator, ConditionalMLPGenerator

    g = ConditionalMLPGenerator(100, [1, 28, 28], 10, [256, 512, 1024], label=label)
    d = ConditionalMLPDiscriminator([1, 28, 28], 10, [512, 256], label=label)
    linears = [(m.in_features, m.out_features) for m in g.modules()
               if isinstance(m, torch.nn.Linear)]
    assert linears == [(110, 256), (256, 512), (512, 1024), (1024, 784)]
    assert [m.in_features for m in d.modules() if isinstance(m, torch.nn.Linear)][0] == 794
    z = torch.randn(1, 100).expand(10, 100)
    labels = torch.arange(10)
    images = g(z, labels)
    # the same latent with different labels gives different images: the label is used
    assert images.shape == (10, 1, 28, 28) and not torch.allclose(images[0], images[1])
    assert d(images, labels).shape == (10, 1)
    with pytest.raises(ValueError, match="classes"):
        ConditionalMLPGenerator(100, [1, 28, 28], 0, [256])


def test_toy_networks_are_the_d2l_ones():
    g = MLPGenerator(2, [2], [], out_tanh=False)
    d = MLPDiscriminator([2], [5, 3], activation="tanh")
    assert [type(m) for m in g.net] == [torch.nn.Linear]
    assert [(m.in_features, m.out_features) for m in d.net if isinstance(m, torch.nn.Linear)] \
        == [(2, 5), (5, 3), (3, 1)]
    assert sum(isinstance(m, torch.nn.Tanh) for m in d.net) == 2
    with pytest.raises(ValueError, match="activation"):
        MLPDiscriminator([2], [5], activation="swish")
