"""An exponential moving average of the generator's weights (Karras et al. 2018; Yazici et al.
2019): a copy of G whose every parameter follows ``avg <- decay * avg + (1 - decay) * G`` after
each generator step. Averaging damps the oscillation of adversarial training, so the averaged
G usually draws cleaner samples than the raw one at the same step."""

from __future__ import annotations

import copy

import torch
from torch import nn


class EMA(nn.Module):
    """The averaged copy of ``net``. Before step ``start`` it copies ``net`` outright, so the
    average begins from trained weights rather than from the initialisation; buffers
    (BatchNorm's running statistics) are always copied."""

    def __init__(self, net: nn.Module, decay: float = 0.999, start: int = 0) -> None:
        super().__init__()
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"ema.decay must be in [0, 1), got {decay}")
        if start < 0:
            raise ValueError(f"ema.start must be >= 0, got {start}")
        self.decay, self.start = decay, start
        self.average = copy.deepcopy(net).requires_grad_(False)

    @torch.no_grad()
    def update(self, net: nn.Module, step: int) -> None:
        """After generator step ``step`` (1 for the first)."""
        weight = 1.0 if step <= self.start else 1.0 - self.decay
        for avg, p in zip(self.average.parameters(), net.parameters(), strict=True):
            avg.lerp_(p.detach(), weight)
        for avg, b in zip(self.average.buffers(), net.buffers(), strict=True):
            avg.copy_(b)

    def forward(self, *args: torch.Tensor) -> torch.Tensor:
        return self.average(*args)
