"""A diverged run: when a GAN's state counts as diverged, how the run ends, what it is told.

Two things notice it. The health monitor reads the logged losses at every log point
(``HealthMonitor``); but a run shorter than one log interval, or one that turns NaN in an
epoch's last steps, reaches the epoch's end with non-finite weights. So everything done there
(metrics, sample grids, checkpoints) first asks ``GANModule.check_finite``, which asks
``check`` here. Either way the run ends as ``diverged`` with ``message``'s text, the trainer
stops, and the last finite checkpoint is kept (``RunCheckpoint`` saves nothing non-finite).
"""

from __future__ import annotations

from typing import Any

import torch

from gan_lightning.record import Status

#: what a diverged run's message suggests
ADVICE = ("The run was stopped and its last finite checkpoint kept. Try a lower learning rate "
          "(optimizer.lr), the stable loss (loss=ns), or full precision "
          "(trainer.precision=32-true).")


def message(what: str, g_step: int, epoch: int) -> str:
    """The text a diverged run ends with: what was non-finite, where, and what to try."""
    return f"Training diverged: {what} at generator step {g_step} (epoch {epoch}). {ADVICE}"


def check(module: Any) -> bool:
    """Whether a ``GANModule``'s weights, buffers, last losses and fixed samples are all
    finite. If not, the run ends as diverged and the trainer stops. One host sync; under DDP
    the ranks agree (the minimum over them)."""
    if module.run.status == Status.DIVERGED:
        return False
    trainer = module.trainer
    with torch.no_grad():
        tensors = [*module.parameters(), *module.buffers(), *module.last_losses,
                   module.fixed_samples()]
        finite = torch.stack([t.isfinite().all() for t in tensors]).all().float()
    if trainer.world_size > 1:
        finite = trainer.strategy.reduce(finite, reduce_op="min")
    if bool(finite):
        return True
    module.run.end(Status.DIVERGED, message("non-finite weights, losses or samples",
                                            module.g_step, module.current_epoch))
    trainer.should_stop = True
    return False
