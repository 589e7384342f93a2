"""The progress bar."""

from __future__ import annotations

import lightning as L
from lightning.pytorch.callbacks import TQDMProgressBar


class GANProgressBar(TQDMProgressBar):
    """Lightning's tqdm bar showing the module's latest ``loss_d``, ``loss_g`` and ``fid``."""

    def get_metrics(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict:
        metrics = super().get_metrics(trainer, pl_module)
        run = getattr(pl_module, "run", None)
        metrics.update({k: f"{v:.3g}" for k, v in (run.progress if run else {}).items()})
        return metrics
