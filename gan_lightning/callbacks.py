"""Callbacks: sample grids, training-health checks and checkpoints. The module logs scalars;
callbacks draw pictures and decide when a run has gone wrong."""

from __future__ import annotations

import contextlib
import logging
import math
import os
import signal
import threading
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
import torchvision
from lightning.pytorch.callbacks import ModelCheckpoint, TQDMProgressBar
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.profilers import PassThroughProfiler

from gan_lightning.module import GANModule

log = logging.getLogger(__name__)


def sample_grid(images: torch.Tensor, nrow: int = 8) -> torch.Tensor:
    """``(B, C, H, W)`` images in [-1, 1] -> one ``(3, H', W')`` grid in [0, 1]."""
    return torchvision.utils.make_grid(
        images.detach().float().cpu().clamp(-1, 1), nrow=nrow, normalize=True, value_range=(-1, 1)
    )


def scatter_plot(real: torch.Tensor, fake: torch.Tensor, title: str = "") -> torch.Tensor:
    """2-D points, real vs generated, as a ``(3, H, W)`` image in [0, 1]."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.5, 4.5), dpi=80)
    ax.scatter(*real.cpu().T, s=6, alpha=0.5, label="real", color="C0")
    ax.scatter(*fake.cpu().T, s=6, alpha=0.5, label="generated", color="C1")
    ax.legend(loc="upper left")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.canvas.draw()
    rgb = torch.from_numpy(np.asarray(fig.canvas.buffer_rgba())[..., :3].copy())
    plt.close(fig)
    return rgb.permute(2, 0, 1).float() / 255


class SampleGrid(L.Callback):
    """Each epoch: a grid of the generator's images for the module's fixed latent batch.

    Logged to TensorBoard as ``samples/fixed_noise`` (step = generator step), so the progress
    from noise to digits can be scrubbed through, and written to ``<run>/samples.png``
    (overwritten each epoch, so it always shows the latest; the final grid at the end).
    Conditional models show one row per class. For 2-D point data (``dataset=gaussian2d``) the
    picture is a scatter of ``num_points`` real vs generated points instead.
    """

    num_points = 500

    def __init__(self, out_dir: str, every_n_epochs: int = 1, nrow: int = 8,
                 filename: str = "samples.png") -> None:
        self.out_dir = Path(out_dir)
        self.every_n_epochs = every_n_epochs
        self.nrow = nrow
        self.filename = filename

    def draw(self, pl_module: GANModule, real: torch.Tensor | None = None) -> torch.Tensor:
        samples = pl_module.fixed_samples()
        if samples.ndim != 2:
            return sample_grid(samples, self.nrow)
        # points: the fixed batch is too small to show a distribution; draw a seeded one
        rng = torch.Generator().manual_seed(0)
        z = torch.randn(self.num_points, pl_module.z_dim, generator=rng).to(pl_module.device)
        with pl_module.sampling():
            fake = pl_module(z)
        real = real[: self.num_points] if real is not None else fake[:0]
        return scatter_plot(real, fake, f"generator step {pl_module.g_step}")

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: GANModule) -> None:
        if (trainer.current_epoch + 1) % self.every_n_epochs and not trainer.should_stop:
            return
        if not pl_module.check_finite() or not trainer.is_global_zero:
            return
        grid = self.draw(pl_module, getattr(trainer.datamodule, "images", None))
        for logger in trainer.loggers:
            if isinstance(logger, TensorBoardLogger):
                logger.experiment.add_image("samples/fixed_noise", grid, pl_module.g_step)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        torchvision.utils.save_image(grid, self.out_dir / self.filename)


class HealthMonitor(L.Callback):
    """Stops runs that have collapsed or diverged, and warns when D overpowers G.

    Reads only the scalars the module logs anyway (no extra host syncs), at each log point:

    - **diverged**: a logged loss is NaN or inf. The run stops; its last finite checkpoint is
      kept (``RunCheckpoint`` does not save over it).
    - **collapsed**: D is saturated for ``patience`` consecutive log points: mean D(x) and
      mean D(G(z)) both above ``1 - eps`` or both below ``eps`` (D answers the same for every
      input), or a loss sits at BCE's clamp (a term of 100). The gradients vanish and the run
      never recovers, so it stops (unless ``stop_on_collapse=false``).
    - **d_overpowers_g** (warning only): D(x) > ``1 - eps`` and D(G(z)) < ``eps`` for
      ``patience`` consecutive log points.
    - **samples_collapsed** (warning only): at ``diversity_patience`` consecutive epoch ends,
      the diversity of the fixed latent batch's samples (mean pairwise L2 distance) is below
      ``min_diversity`` times that of as many training images: G draws (nearly) the same
      picture for every z, which D's outputs alone do not show. Judged from
      ``diversity_warmup`` generator steps on: every model starts that way (measured ratios
      0.02-0.4 at initialisation, 0.1 for the tutorial MLP GAN after 400 steps, 0.57 after
      938). The ratio is logged as ``val/diversity`` each epoch (1: as varied as the data).
    """

    def __init__(self, patience: int = 10, eps: float = 0.01, loss_clamp: float = 100.0,
                 stop_on_collapse: bool = True, min_diversity: float = 0.2,
                 diversity_patience: int = 2, diversity_warmup: int = 1000) -> None:
        if patience < 1 or diversity_patience < 1:
            raise ValueError(f"patience and diversity_patience must be >= 1, got {patience}, "
                             f"{diversity_patience}")
        self.patience = patience
        self.eps = eps
        self.loss_clamp = loss_clamp
        self.stop_on_collapse = stop_on_collapse
        self.min_diversity = min_diversity
        self.diversity_patience = diversity_patience
        self.diversity_warmup = diversity_warmup
        self._seen_step = -1
        self._saturated = 0
        self._overpowered = 0
        self._low_diversity = 0
        self._data_diversity: float | None = None
        self.diversity: float | None = None
        self.warnings: list[dict] = []

    def on_train_batch_end(self, trainer, pl_module: GANModule, outputs, batch, batch_idx) -> None:
        if pl_module.latest_step == self._seen_step:
            return
        self._seen_step = step = pl_module.latest_step
        m = pl_module.latest
        loss_d, loss_g = m["train/loss_d"], m["train/loss_g"]
        d_real, d_fake = m["train/d_real"], m["train/d_fake"]

        if not (math.isfinite(loss_d) and math.isfinite(loss_g)):
            self._stop(trainer, pl_module, "diverged",
                       f"Training diverged: a non-finite loss (loss_d={loss_d}, loss_g={loss_g}) "
                       f"at generator step {step} (epoch {trainer.current_epoch}). "
                       f"{GANModule.DIVERGED_ADVICE}")
            return

        if not pl_module.loss.probabilistic:
            return
        hi, lo = 1 - self.eps, self.eps
        saturated = (
            (d_real > hi and d_fake > hi)
            or (d_real < lo and d_fake < lo)
            or max(loss_d, loss_g) >= self.loss_clamp
        )
        self._saturated = self._saturated + 1 if saturated else 0
        overpowered = d_real > hi and d_fake < lo
        self._overpowered = self._overpowered + 1 if overpowered else 0

        if self._overpowered == self.patience:
            text = (f"D overpowers G: mean D(x)={d_real:.3f} > {hi} and mean D(G(z))={d_fake:.3f}"
                    f" < {lo} for {self.patience} log points up to generator step {step}.")
            self.warnings.append({"kind": "d_overpowers_g", "g_step": step, "message": text})
            log.warning(text)

        if self._saturated >= self.patience and pl_module.status is None:
            text = (
                f"Training collapsed: the discriminator is saturated (mean D(x)={d_real:.3f}, "
                f"mean D(G(z))={d_fake:.3f}, loss_d={loss_d:.2f}, loss_g={loss_g:.2f}) for "
                f"{self.patience} consecutive log points, up to generator step {step} (epoch "
                f"{trainer.current_epoch}). D gives the same answer for every input and, with "
                f"BCE's log clamped, the gradients of both networks vanish: the run will not "
                f"recover. This is what the source report's SGD lr 0.3 does. Try a lower "
                f"learning rate (e.g. optimizer.lr=0.1 with SGD), optimizer=adam, or loss=ns."
            )
            if self.stop_on_collapse:
                self._stop(trainer, pl_module, "collapsed", text)
            elif not any(w["kind"] == "collapsed" for w in self.warnings):
                self.warnings.append({"kind": "collapsed", "g_step": step, "message": text})
                log.warning(text + " (stop_on_collapse=false: training on)")

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: GANModule) -> None:
        data = getattr(trainer.datamodule, "images", None)
        if data is None or not pl_module.check_finite():
            return
        n = len(pl_module.fixed_z)
        if self._data_diversity is None:  # as many training images, the same ones each time
            pick = torch.randperm(len(data), generator=torch.Generator().manual_seed(0))[:n]
            self._data_diversity = diversity(data[pick])
        fake = pl_module.fixed_samples()  # what the sample grid shows
        self.diversity = diversity(fake) / max(self._data_diversity, 1e-12)
        pl_module.log_scalars({"val/diversity": self.diversity})
        if pl_module.g_step < self.diversity_warmup:
            return
        self._low_diversity = self._low_diversity + 1 if self.diversity < self.min_diversity else 0
        if self._low_diversity == self.diversity_patience:
            text = (f"Samples collapsed: the fixed batch's samples are {self.diversity:.3f} as "
                    f"diverse as the data (mean pairwise distance; below {self.min_diversity} "
                    f"for {self.diversity_patience} epochs, up to epoch "
                    f"{trainer.current_epoch + 1}). G draws nearly the same image for every z "
                    f"(mode collapse): see samples.png. Try loss=ns, optimizer=adam, or a "
                    f"lower learning rate.")
            self.warnings.append({"kind": "samples_collapsed", "g_step": pl_module.g_step,
                                  "message": text})
            log.warning(text)

    def run_summary(self) -> dict:
        out: dict[str, Any] = {"warnings": self.warnings}
        if self.diversity is not None:
            out["sample_diversity"] = self.diversity
        return out

    def _stop(self, trainer: L.Trainer, pl_module: GANModule, status: str, text: str) -> None:
        pl_module.status, pl_module.status_message = status, text
        self.warnings.append({"kind": status, "g_step": pl_module.latest_step, "message": text})
        log.warning(text)
        trainer.should_stop = True


def diversity(samples: torch.Tensor) -> float:
    """Mean pairwise L2 distance between the (flattened) samples of a batch."""
    return float(torch.pdist(samples.detach().flatten(1).float().cpu()).mean())


class RunCheckpoint(ModelCheckpoint):
    """``last.ckpt`` in the run folder, never overwritten by the weights of a diverged run."""

    @property
    def state_key(self) -> str:
        # Lightning formats this key at every hook call (8 a step); it depends only on the
        # constructor's arguments, so compute it once.
        if not hasattr(self, "_state_key"):
            self._state_key = super().state_key
        return self._state_key

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
        if self.signum is None or pl_module.status == "interrupted":
            return
        name = signal.Signals(self.signum).name
        pl_module.status = "interrupted"
        pl_module.status_message = (
            f"{name} at generator step {pl_module.g_step}: last.ckpt written; resume with "
            f"ckpt_path=<run folder>/last.ckpt (the interrupted epoch starts again)"
            + (" - a job requeued by SLURM resumes by itself (resume=auto)"
               if self.signum in self.HAND_OVER else ""))
        checkpoint = trainer.checkpoint_callback
        if isinstance(checkpoint, RunCheckpoint):
            checkpoint._save_last_checkpoint(trainer, checkpoint._monitor_candidates(trainer))
        trainer.should_stop = True
        log.warning("%s", pl_module.status_message)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        previous, self._previous = self._previous, {}
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        handler = previous.get(self.signum)
        if self.signum in self.HAND_OVER and callable(handler):
            handler(self.signum, None)  # submitit: requeue the job (and exit)


class NullProfiler(PassThroughProfiler):
    """Lightning's no-op profiler, without building a generator-based context per hook call.

    Lightning enters ``profiler.profile(name)`` ~90 times a training step; the default
    ``PassThroughProfiler`` creates a ``contextlib`` generator each time. One reusable
    ``nullcontext`` does the same nothing for less. To profile for real:
    ``trainer.profiler._target_=lightning.pytorch.profilers.SimpleProfiler``.
    """

    _nothing = contextlib.nullcontext()

    def profile(self, action_name: str) -> contextlib.nullcontext:
        return self._nothing


class GANProgressBar(TQDMProgressBar):
    """Lightning's tqdm bar showing the module's latest ``loss_d``, ``loss_g`` and ``fid``."""

    def get_metrics(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict:
        metrics = super().get_metrics(trainer, pl_module)
        metrics.update({k: f"{v:.3g}" for k, v in getattr(pl_module, "progress", {}).items()})
        return metrics
