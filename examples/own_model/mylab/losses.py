"""A loss is any object with ``d_loss(real_logits, fake_logits)`` and ``g_loss(fake_logits)``."""

import torch
import torch.nn.functional as F


class MarginHingeLoss:
    """Hinge loss with an adjustable margin: D wants real >= margin, fake <= -margin."""

    def __init__(self, margin: float = 1.0) -> None:
        self.margin = margin

    def d_loss(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        return F.relu(self.margin - real_logits).mean() + F.relu(self.margin + fake_logits).mean()

    def g_loss(self, fake_logits: torch.Tensor) -> torch.Tensor:
        return -fake_logits.mean()
