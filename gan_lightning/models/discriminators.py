"""Discriminators: images ``(B, C, H, W)`` -> logits ``(B, 1)``; the loss owns the sigmoid."""

import math

import torch
from torch import nn

from gan_lightning.models.layers import mlp


class MLPDiscriminator(nn.Module):
    """Fully connected discriminator: ``C*H*W -> hidden... -> 1`` with LeakyReLU between layers.

    With ``hidden_dims=[128]`` this is the source report's discriminator (784->128->1); the
    report's final Sigmoid lives in the loss (``loss=bce`` applies it exactly as the report did).
    """

    def __init__(self, img_shape: list[int], hidden_dims: list[int], slope: float = 0.2) -> None:
        super().__init__()
        self.net = nn.Sequential(*mlp([math.prod(img_shape), *hidden_dims, 1], slope))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.flatten(1))
