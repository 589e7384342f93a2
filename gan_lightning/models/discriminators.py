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


class DCGANMNISTDiscriminator(nn.Module):
    """The Keras DCGAN tutorial's discriminator for 28x28 images; dropout only here, in D.

    Conv 512 (5x5, stride 2), LeakyReLU, Dropout(0.3); Conv 256 (3x3, stride 2), LeakyReLU;
    Conv 128 (3x3), LeakyReLU; Flatten; Linear 1 (a logit: the loss owns the sigmoid).
    """

    def __init__(self, img_shape: list[int], slope: float = 0.2, dropout: float = 0.3) -> None:
        super().__init__()
        channels, height, width = img_shape
        if (height, width) != (28, 28):
            raise ValueError(f"dcgan_mnist scores 28x28 images; the dataset has {img_shape}")
        self.net = nn.Sequential(
            nn.Conv2d(channels, 512, 5, stride=2, padding=2), nn.LeakyReLU(slope),  # 28 -> 14
            nn.Dropout(dropout),
            nn.Conv2d(512, 256, 3, stride=2, padding=1), nn.LeakyReLU(slope),  # 14 -> 7
            nn.Conv2d(256, 128, 3, padding=1), nn.LeakyReLU(slope),
            nn.Flatten(), nn.Linear(128 * 7 * 7, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
