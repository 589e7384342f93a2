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
