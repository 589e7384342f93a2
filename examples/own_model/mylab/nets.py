"""Plain ``nn.Module``s that know nothing of gan-lightning: they only meet its contract.

G maps ``(B, z_dim)`` latents to ``(B, *img_shape)`` images in [-1, 1]; D maps images to
``(B, 1)`` logits. Spectral norm, EMA, DiffAugment, R1 and n_critic are the framework's options
and apply to these networks as they are.
"""

import torch
from torch import nn


class TinyG(nn.Module):
    """z -> width x 7 x 7 -> two stride-2 transposed convs -> a 28 x 28 image (BatchNorm, ReLU,
    Tanh out)."""

    def __init__(self, z_dim: int, img_shape: list[int], width: int = 64) -> None:
        super().__init__()
        channels, height, width_px = img_shape
        if (height, width_px) != (28, 28):
            raise ValueError(f"TinyG draws 28x28 images; the dataset has {img_shape}")
        self.net = nn.Sequential(
            nn.Linear(z_dim, 2 * width * 7 * 7), nn.BatchNorm1d(2 * width * 7 * 7), nn.ReLU(),
            nn.Unflatten(1, (2 * width, 7, 7)),
            nn.ConvTranspose2d(2 * width, width, 4, stride=2, padding=1),  # 7 -> 14
            nn.BatchNorm2d(width), nn.ReLU(),
            nn.ConvTranspose2d(width, channels, 4, stride=2, padding=1),  # 14 -> 28
            nn.Tanh(),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class TinyD(nn.Module):
    """Two strided convs, then a linear logit."""

    def __init__(self, img_shape: list[int], width: int = 32) -> None:
        super().__init__()
        channels, height, width_px = img_shape
        self.net = nn.Sequential(
            nn.Conv2d(channels, width, 4, stride=2, padding=1), nn.LeakyReLU(0.2),
            nn.Conv2d(width, 2 * width, 4, stride=2, padding=1), nn.LeakyReLU(0.2),
            nn.Flatten(), nn.Linear(2 * width * (height // 4) * (width_px // 4), 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
