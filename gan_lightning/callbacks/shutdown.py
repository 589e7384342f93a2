"""Signals during training: save, stop, and end the run as ``interrupted``."""

from __future__ import annotations

import logging
import signal
import threading
from typing import Any

import lightning as L
import torch

from gan_lightning.callbacks.checkpoint import RunCheckpoint
from gan_lightning.module import GANModule
from gan_lightning.record import Status

log = logging.getLogger(__name__)


class GracefulShutdown(L.Callback):
    """SIGTERM or SIGINT (Ctrl+C) during training: finish the batch, write ``last.ckpt``, stop.

    The run ends with status ``interrupted`` (``metrics.json``), its loggers flushed, and
    ``ckpt_path=<run>/last.ckpt`` resumes it. The handlers are installed once training has
    started (after Lightning's own) and the previous ones restored at the end; a second
    signal while stopping falls through to them.

    Under DDP a signal may reach one rank only (``kill <pid>``); the ranks agree every
    ``sync_every`` batches whether any got one, and stop (and save) together.

    SIGUSR2 is what SLURM sends, through the submitit launcher (``hydra/launcher=slurm``),
    before a time limit or a preemption: the run saves and stops the same way, then hands the
    signal to submitit's handler, which requeues the job; the requeued job runs in the same
    folder and resumes from ``last.ckpt`` (``resume=auto``).
    """

    SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGUSR2)
    #: signals whose previous handler still runs once training has stopped (the requeue)
    HAND_OVER = (signal.SIGUSR2,)
    sync_every = 8

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # signal handlers can only be set from the main thread
        for sig in self.SIGNALS:
            self._previous[sig] = signal.getsignal(sig)
            signal.signal(sig, self._handle)

    def _handle(self, signum: int, frame: Any) -> None:
        if self.signum is not None:  # second signal: do what would have happened anyway
            previous = self._previous.get(signum)
            if callable(previous):
                previous(signum, frame)
            return
        self.signum = signum

    def on_train_batch_end(self, trainer, pl_module: GANModule, outputs, batch, batch_idx) -> None:
        if trainer.world_size > 1:
            if batch_idx % self.sync_every:
                return  # the other ranks learn of a signal at the next agreed batch
            mine = torch.tensor(float(self.signum or 0), device=pl_module.device)
            self.signum = int(trainer.strategy.reduce(mine, reduce_op="max")) or None
        if self.signum is None or pl_module.run.status == Status.INTERRUPTED:
            return
        name = signal.Signals(self.signum).name
        pl_module.run.end(Status.INTERRUPTED, (
            f"{name} at generator step {pl_module.g_step}: last.ckpt written; resume with "
            f"ckpt_path=<run folder>/last.ckpt (it resumes at the next batch)"
            + (" - a job requeued by SLURM resumes by itself (resume=auto)"
               if self.signum in self.HAND_OVER else "")))
        checkpoint = trainer.checkpoint_callback
        # On an epoch's last batch the epoch's own last.ckpt (at its end, next) is the one to
        # resume from: one written at the batch's end resumes into a next epoch that Lightning
        # never counts as started, and a cut in that epoch then resumes at its first batch.
        last_batch = trainer.fit_loop.epoch_loop.batch_progress.is_last_batch
        if isinstance(checkpoint, RunCheckpoint) and not last_batch:
            checkpoint._save_last_checkpoint(trainer, checkpoint._monitor_candidates(trainer))
        trainer.should_stop = True
        log.warning("%s", pl_module.run.message)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        previous, self._previous = self._previous, {}
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        handler = previous.get(self.signum)
        if self.signum in self.HAND_OVER and callable(handler):
            handler(self.signum, None)  # submitit: requeue the job (and exit)
