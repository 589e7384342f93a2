"""Generators: latent vectors ``(B, z_dim)`` -> images ``(B, C, H, W)`` in [-1, 1]."""

import math

import torch
from torch import nn

from gan_lightning.models.layers import (
    LabelCode,
    dcgan_sizes,
    image_shape,
    init_dcgan_weights,
    mlp,
)


class MLPGenerator(nn.Module):
    """Fully connected generator: ``z -> hidden... -> C*H*W``, LeakyReLU between layers, Tanh out.

    With ``hidden_dims=[128]`` this is the source report's generator (z->128->784). With no
    hidden layers and ``out_tanh=False`` it is the linear generator of the 2-D Gaussian toy.
    """

    def __init__(
        self,
        z_dim: int,
        img_shape: list[int],
        hidden_dims: list[int],
        slope: float = 0.2,
        activation: str = "leaky_relu",
        out_tanh: bool = True,
    ) -> None:
        super().__init__()
        self.z_dim = z_dim
        self.img_shape = tuple(img_shape)
        self.net = nn.Sequential(
            *mlp([z_dim, *hidden_dims, math.prod(img_shape)], slope, activation),
            *([nn.Tanh()] if out_tanh else []),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).view(len(z), *self.img_shape)


class DCGANMNISTGenerator(nn.Module):
    """The Keras DCGAN tutorial's generator for 28x28 images (no dropout in G).

    Dense z -> 7x7x512 (ReLU), BatchNorm, LeakyReLU; ConvTranspose 256 (3x3, stride 2),
    LeakyReLU; ConvTranspose 128 (4x4, stride 2), BatchNorm, LeakyReLU; Conv 1 (5x5), Tanh.
    Convolutions without bias, "same" padding, as in the source.
    """

    def __init__(self, z_dim: int, img_shape: list[int], slope: float = 0.2) -> None:
        super().__init__()
        channels, height, width = image_shape(img_shape, "dcgan_mnist")
        if (height, width) != (28, 28):
            raise ValueError(f"dcgan_mnist generates 28x28 images; the dataset has {img_shape}")
        self.z_dim = z_dim
        self.net = nn.Sequential(
            nn.Linear(z_dim, 7 * 7 * 512), nn.ReLU(), nn.Unflatten(1, (512, 7, 7)),
            nn.BatchNorm2d(512), nn.LeakyReLU(slope),
            # 7 -> 14
            nn.ConvTranspose2d(512, 256, 3, stride=2, padding=1, output_padding=1, bias=False),
            nn.LeakyReLU(slope),
            # 14 -> 28
            nn.ConvTranspose2d(256, 128, 4, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(128), nn.LeakyReLU(slope),
            nn.Conv2d(128, channels, 5, padding=2, bias=False), nn.Tanh(),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class ConditionalMLPGenerator(nn.Module):
    """Conditional GAN generator (Mirza & Osindero 2014): the label, one-hot or embedded, is
    concatenated to z; then the MLP generator's layers. Takes ``(z, labels)``."""

    def __init__(self, z_dim: int, img_shape: list[int], num_classes: int,
                 hidden_dims: list[int], slope: float = 0.2, label: str = "onehot") -> None:
        super().__init__()
        self.z_dim = z_dim
        self.num_classes = num_classes
        self.label = LabelCode(num_classes, label)
        self.body = MLPGenerator(z_dim + num_classes, img_shape, hidden_dims, slope)

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.body(torch.cat([z, self.label(labels)], dim=1))


class DCGANGenerator(nn.Module):
    """Radford et al.'s DCGAN generator, sized from the dataset: 32x32 RGB (CIFAR-10) or
    1-channel 28/32 (MNIST).

    z as a 1x1 map -> ConvTranspose to ``start x start`` (4 for 32, 7 for 28) with ``ngf * 2^k``
    channels, BatchNorm, ReLU; k ConvTranspose 4x4 stride-2 blocks halving the channels, the
    last to the image's channels with Tanh. Weights ~ N(0, 0.02).
    """

    def __init__(self, z_dim: int, img_shape: list[int], ngf: int = 64) -> None:
        super().__init__()
        self.z_dim = z_dim
        start, n_up = dcgan_sizes(img_shape)
        width = ngf * 2 ** (n_up - 1)
        layers: list[nn.Module] = [
            nn.Unflatten(1, (z_dim, 1, 1)),
            nn.ConvTranspose2d(z_dim, width, start, 1, 0, bias=False),  # 1 -> start
            nn.BatchNorm2d(width), nn.ReLU(True),
        ]
        for _ in range(n_up - 1):  # start -> ... -> side / 2
            layers += [nn.ConvTranspose2d(width, width // 2, 4, 2, 1, bias=False),
                       nn.BatchNorm2d(width // 2), nn.ReLU(True)]
            width //= 2
        layers += [nn.ConvTranspose2d(width, img_shape[0], 4, 2, 1, bias=False), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        init_dcgan_weights(self)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class InfoGANGenerator(nn.Module):
    """The InfoGAN-style generator of Lucic et al. (2018) for 28x28 images: Linear 1024,
    BatchNorm, ReLU; Linear 7x7x128, BatchNorm, ReLU; ConvTranspose 64 (4x4, stride 2),
    BatchNorm, ReLU; ConvTranspose to the image (4x4, stride 2), Tanh."""

    def __init__(self, z_dim: int, img_shape: list[int], width: int = 64,
                 hidden: int = 1024) -> None:
        super().__init__()
        channels, height, side = image_shape(img_shape, "infogan")
        if (height, side) != (28, 28):
            raise ValueError(f"infogan generates 28x28 images; the dataset has {img_shape}")
        self.z_dim = z_dim
        self.net = nn.Sequential(
            nn.Linear(z_dim, hidden), nn.BatchNorm1d(hidden), nn.ReLU(),
            nn.Linear(hidden, 2 * width * 7 * 7), nn.BatchNorm1d(2 * width * 7 * 7), nn.ReLU(),
            nn.Unflatten(1, (2 * width, 7, 7)),
            nn.ConvTranspose2d(2 * width, width, 4, 2, 1), nn.BatchNorm2d(width), nn.ReLU(),
            nn.ConvTranspose2d(width, channels, 4, 2, 1), nn.Tanh(),  # 14 -> 28
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)
