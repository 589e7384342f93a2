"""Generators: latent vectors ``(B, z_dim)`` -> images ``(B, C, H, W)`` in [-1, 1]."""

import math

import torch
from torch import nn

from gan_lightning.models.layers import mlp


class MLPGenerator(nn.Module):
    """Fully connected generator: ``z -> hidden... -> C*H*W``, LeakyReLU between layers, Tanh out.

    With ``hidden_dims=[128]`` this is the source report's generator (z->128->784).
    """

    def __init__(
        self,
        z_dim: int,
        img_shape: list[int],
        hidden_dims: list[int],
        slope: float = 0.2,
    ) -> None:
        super().__init__()
        self.z_dim = z_dim
        self.img_shape = tuple(img_shape)
        self.net = nn.Sequential(
            *mlp([z_dim, *hidden_dims, math.prod(img_shape)], slope), nn.Tanh()
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
        channels, height, width = img_shape
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
