"""Learning-rate schedules, one per network, stepped after each of its updates
(``conf/lr_schedule``). Each is a factory ``(optimizer, total_steps) -> LRScheduler``, where
``total_steps`` is the number of updates that network will make in the run."""

from __future__ import annotations

import torch
from torch.optim.lr_scheduler import LambdaLR


def linear_decay(optimizer: torch.optim.Optimizer, total_steps: int,
                 start: float = 0.0) -> LambdaLR:
    """Constant until ``start`` (a fraction of the run), then linearly down to 0 at the end."""
    if not 0.0 <= start < 1.0:
        raise ValueError(f"lr_schedule start must be in [0, 1), got {start}")
    if total_steps < 1:
        raise ValueError("a learning-rate schedule needs a known length: set trainer.max_epochs "
                         "or max_g_steps")
    begin = start * total_steps

    def factor(step: int) -> float:
        if step < begin:
            return 1.0
        return max(0.0, (total_steps - step) / (total_steps - begin))

    return LambdaLR(optimizer, factor)
