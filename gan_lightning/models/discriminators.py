"""Discriminators: images ``(B, C, H, W)`` -> logits ``(B, 1)``; the loss owns the sigmoid."""

import math

import torch
from torch import nn

from gan_lightning.models.layers import (
    LabelCode,
    dcgan_sizes,
    image_shape,
    init_dcgan_weights,
    mlp,
    spectral_normed,
)


class MLPDiscriminator(nn.Module):
    """Fully connected discriminator: ``C*H*W -> hidden... -> 1`` with LeakyReLU between layers.

    With ``hidden_dims=[128]`` this is the source report's discriminator (784->128->1); the
    report's final Sigmoid lives in the loss (``loss=bce`` applies it exactly as the report did).
    Every discriminator here takes ``spectral_norm``: spectral normalisation of its weights.
    """

    def __init__(self, img_shape: list[int], hidden_dims: list[int], slope: float = 0.2,
                 activation: str = "leaky_relu", dropout: float = 0.0,
                 extra_inputs: int = 0, spectral_norm: bool = False) -> None:
        super().__init__()
        dims = [math.prod(img_shape) + extra_inputs, *hidden_dims, 1]
        self.net = spectral_normed(nn.Sequential(*mlp(dims, slope, activation, dropout)),
                                   spectral_norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.flatten(1))


class DCGANMNISTDiscriminator(nn.Module):
    """The Keras DCGAN tutorial's discriminator for 28x28 images; dropout only here, in D.

    Conv 512 (5x5, stride 2), LeakyReLU, Dropout(0.3); Conv 256 (3x3, stride 2), LeakyReLU;
    Conv 128 (3x3), LeakyReLU; Flatten; Linear 1 (a logit: the loss owns the sigmoid).
    """

    def __init__(self, img_shape: list[int], slope: float = 0.2, dropout: float = 0.3,
                 spectral_norm: bool = False) -> None:
        super().__init__()
        channels, height, width = image_shape(img_shape, "dcgan_mnist")
        if (height, width) != (28, 28):
            raise ValueError(f"dcgan_mnist scores 28x28 images; the dataset has {img_shape}")
        self.net = nn.Sequential(
            nn.Conv2d(channels, 512, 5, stride=2, padding=2), nn.LeakyReLU(slope),  # 28 -> 14
            nn.Dropout(dropout),
            nn.Conv2d(512, 256, 3, stride=2, padding=1), nn.LeakyReLU(slope),  # 14 -> 7
            nn.Conv2d(256, 128, 3, padding=1), nn.LeakyReLU(slope),
            nn.Flatten(), nn.Linear(128 * 7 * 7, 1),
        )
        spectral_normed(self, spectral_norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class ConditionalMLPDiscriminator(nn.Module):
    """Conditional GAN discriminator: the label code concatenated to the flattened image, then
    the MLP discriminator's layers. Takes ``(images, labels)``."""

    def __init__(self, img_shape: list[int], num_classes: int, hidden_dims: list[int],
                 slope: float = 0.2, dropout: float = 0.0, label: str = "onehot",
                 spectral_norm: bool = False) -> None:
        super().__init__()
        self.label = LabelCode(num_classes, label)
        self.body = MLPDiscriminator(img_shape, hidden_dims, slope, dropout=dropout,
                                     extra_inputs=num_classes, spectral_norm=spectral_norm)

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.body.net(torch.cat([x.flatten(1), self.label(labels)], dim=1))


class DCGANDiscriminator(nn.Module):
    """Radford et al.'s DCGAN discriminator, the generator's mirror: Conv 4x4 stride 2 blocks
    doubling from ``ndf`` channels (BatchNorm after the first), LeakyReLU 0.2, then a
    ``start x start`` convolution to one logit."""

    def __init__(self, img_shape: list[int], ndf: int = 64, slope: float = 0.2,
                 batch_norm: bool = True, spectral_norm: bool = False) -> None:
        super().__init__()
        start, n_up = dcgan_sizes(img_shape)
        layers: list[nn.Module] = [nn.Conv2d(img_shape[0], ndf, 4, 2, 1, bias=False),
                                   nn.LeakyReLU(slope, True)]
        width = ndf
        for _ in range(n_up - 1):
            layers += [nn.Conv2d(width, width * 2, 4, 2, 1, bias=False),
                       *([nn.BatchNorm2d(width * 2)] if batch_norm else []),
                       nn.LeakyReLU(slope, True)]
            width *= 2
        layers += [nn.Conv2d(width, 1, start, 1, 0, bias=False), nn.Flatten()]  # start -> 1
        self.net = nn.Sequential(*layers)
        init_dcgan_weights(self)
        spectral_normed(self, spectral_norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class InfoGANDiscriminator(nn.Module):
    """The InfoGAN-style discriminator of Lucic et al. (2018) for 28x28 images: Conv 64 (4x4,
    stride 2), LeakyReLU; Conv 128 (4x4, stride 2), BatchNorm, LeakyReLU; Linear 1024,
    BatchNorm, LeakyReLU; Linear 1 (a logit)."""

    def __init__(self, img_shape: list[int], width: int = 64, hidden: int = 1024,
                 slope: float = 0.2, batch_norm: bool = True,
                 spectral_norm: bool = False) -> None:
        super().__init__()
        channels, height, side = image_shape(img_shape, "infogan")
        if (height, side) != (28, 28):
            raise ValueError(f"infogan scores 28x28 images; the dataset has {img_shape}")

        def norm(kind: type[nn.Module], n: int) -> list[nn.Module]:
            return [kind(n)] if batch_norm else []

        self.net = nn.Sequential(
            nn.Conv2d(channels, width, 4, 2, 1), nn.LeakyReLU(slope),  # 28 -> 14
            nn.Conv2d(width, 2 * width, 4, 2, 1), *norm(nn.BatchNorm2d, 2 * width),  # -> 7
            nn.LeakyReLU(slope), nn.Flatten(),
            nn.Linear(2 * width * 7 * 7, hidden), *norm(nn.BatchNorm1d, hidden),
            nn.LeakyReLU(slope), nn.Linear(hidden, 1),
        )
        spectral_normed(self, spectral_norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
