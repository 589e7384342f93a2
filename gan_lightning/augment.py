"""DiffAugment (Zhao et al. 2020, "Differentiable Augmentation for Data-Efficient GAN
Training"): the same random, differentiable transforms applied to every image D sees, real and
fake, in D's step and in G's, so D cannot memorise the training set and G still gets
gradients through the transform. The three transforms of the paper's official code, on images
in [-1, 1]: ``color`` (brightness, saturation, contrast), ``translation`` (up to 1/8 of the
side, zero padding) and ``cutout`` (a zeroed square of half the side).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F


def brightness_saturation_contrast(x: torch.Tensor) -> torch.Tensor:
    n = len(x)
    x = x + (torch.rand(n, 1, 1, 1, dtype=x.dtype, device=x.device) - 0.5)
    mean = x.mean(dim=1, keepdim=True)
    x = (x - mean) * (torch.rand(n, 1, 1, 1, dtype=x.dtype, device=x.device) * 2) + mean
    mean = x.mean(dim=[1, 2, 3], keepdim=True)
    return (x - mean) * (torch.rand(n, 1, 1, 1, dtype=x.dtype, device=x.device) + 0.5) + mean


def translation(x: torch.Tensor, ratio: float = 0.125) -> torch.Tensor:
    n, _, h, w = x.shape
    sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    dy = torch.randint(-sh, sh + 1, (n, 1, 1), device=x.device)
    dx = torch.randint(-sw, sw + 1, (n, 1, 1), device=x.device)
    batch, row, col = torch.meshgrid(torch.arange(n, device=x.device),
                                     torch.arange(h, device=x.device),
                                     torch.arange(w, device=x.device), indexing="ij")
    # shifted pixel positions in a copy padded by one zero pixel, where out-of-range lands
    row = torch.clamp(row + dy + 1, 0, h + 1)
    col = torch.clamp(col + dx + 1, 0, w + 1)
    padded = F.pad(x, [1, 1, 1, 1])
    return padded.permute(0, 2, 3, 1)[batch, row, col].permute(0, 3, 1, 2)


def cutout(x: torch.Tensor, ratio: float = 0.5) -> torch.Tensor:
    n, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    cy = torch.randint(0, h + (1 - ch % 2), (n, 1, 1), device=x.device)
    cx = torch.randint(0, w + (1 - cw % 2), (n, 1, 1), device=x.device)
    batch, row, col = torch.meshgrid(torch.arange(n, device=x.device),
                                     torch.arange(ch, device=x.device),
                                     torch.arange(cw, device=x.device), indexing="ij")
    row = torch.clamp(row + cy - ch // 2, 0, h - 1)
    col = torch.clamp(col + cx - cw // 2, 0, w - 1)
    mask = torch.ones(n, h, w, dtype=x.dtype, device=x.device)
    mask[batch, row, col] = 0
    return x * mask.unsqueeze(1)


TRANSFORMS = {"color": brightness_saturation_contrast, "translation": translation,
              "cutout": cutout}


def policy_names(policy: str | Sequence[str] | None) -> list[str]:
    """``[color, translation]`` from a list or from ``"color,translation"``."""
    items = policy.split(",") if isinstance(policy, str) else list(policy or [])
    return [str(p).strip() for p in items if str(p).strip()]


class DiffAugment:
    """``policy``: a list of ``color``, ``translation``, ``cutout`` (or one comma-separated
    string; the paper's full policy is all three, in that order); empty: no augmentation."""

    def __init__(self, policy: str | Sequence[str] | None = ()) -> None:
        self.names = policy_names(policy)
        unknown = [p for p in self.names if p not in TRANSFORMS]
        if unknown:
            raise ValueError(f"augment.policy: unknown transform(s) {unknown}; choose from "
                             f"{', '.join(TRANSFORMS)} (comma-separated)")

    def __bool__(self) -> bool:
        return bool(self.names)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4:
            return x  # 2-D points: nothing to augment
        for name in self.names:
            x = TRANSFORMS[name](x)
        return x

    def __repr__(self) -> str:
        return f"DiffAugment({','.join(self.names)!r})"
