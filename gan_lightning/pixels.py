"""uint8 pixels and the generator's range: images are stored as uint8 and become float in
[-1, 1] (``Normalize(0.5, 0.5)``) per batch, on the device that uses them."""

from __future__ import annotations

import torch


def unit_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 ``(N, C, H, W)`` -> float32 in [-1, 1]; float input is returned as it is."""
    if images.dtype != torch.uint8:
        return images
    return images.float().div_(127.5).sub_(1.0)


def to_nchw(images: torch.Tensor) -> torch.Tensor:
    """torchvision's layouts, ``(N, H, W)`` or ``(N, H, W, C)``, as contiguous ``(N, C, H, W)``."""
    return images.unsqueeze(1) if images.ndim == 3 else images.permute(0, 3, 1, 2).contiguous()


def to_unit_range(images: torch.Tensor) -> torch.Tensor:
    """uint8 ``(N, H, W[, C])`` (torchvision's layouts) -> float32 ``(N, C, H, W)`` in [-1, 1]."""
    return unit_float(to_nchw(images))
