"""The progress bar."""

from __future__ import annotations

from typing import Any

import lightning as L
from lightning.pytorch.callbacks import TQDMProgressBar


class GANProgressBar(TQDMProgressBar):
    """Lightning's tqdm bar showing the module's latest ``loss_d``, ``loss_g`` and ``fid``."""

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule,
                           outputs: Any, batch: Any, batch_idx: int) -> None:
        # Lightning's bar redraws twice per update (the new count, then the postfix): twice the
        # formatting and the writes, and every state printed twice into a captured log
        bar = self.train_progress_bar
        n = batch_idx + 1
        if self._should_update(n, bar.total):
            bar.n = n
            bar.set_postfix(self.get_metrics(trainer, pl_module))  # one redraw, count included

    def get_metrics(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict:
        metrics = super().get_metrics(trainer, pl_module)
        run = getattr(pl_module, "run", None)
        metrics.update({k: f"{v:.3g}" for k, v in (run.progress if run else {}).items()})
        return metrics
