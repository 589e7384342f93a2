"""``last.ckpt``: written atomically each epoch end, never from a diverged run's weights."""

from __future__ import annotations

import os

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint


class RunCheckpoint(ModelCheckpoint):
    """``last.ckpt`` in the run folder, never overwritten by the weights of a diverged run."""

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # A run that diverges in its first epoch still leaves finite weights to go back to:
        # the initial ones (a resumed run already has its checkpoint).
        candidates = self._monitor_candidates(trainer)
        last = self.format_checkpoint_name(candidates, self.CHECKPOINT_NAME_LAST)
        if self.save_last and not self.file_exists(last, trainer):
            self._save_last_checkpoint(trainer, candidates)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Lightning writes last.ckpt only after it wrote a top-k file; here last.ckpt is the
        # run's only checkpoint, so it is written at every epoch end.
        if not self._should_skip_saving_checkpoint(trainer):
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))

    def _save_checkpoint(self, trainer: L.Trainer, filepath: str) -> None:
        check = getattr(trainer.lightning_module, "check_finite", None)
        if check is not None and not check():
            return
        # Atomic: write beside it, then rename over it. A kill during the write leaves the
        # previous last.ckpt whole (and a stray .tmp), never a truncated checkpoint.
        tmp = f"{filepath}.tmp"
        super()._save_checkpoint(trainer, tmp)
        if trainer.is_global_zero:
            os.replace(tmp, filepath)
        self._last_checkpoint_saved = filepath
