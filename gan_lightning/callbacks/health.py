"""Training health: stop runs that collapsed or diverged, warn when D overpowers G or the
samples lose their diversity."""

from __future__ import annotations

import logging
import math
from typing import Any

import lightning as L
import torch

from gan_lightning import divergence
from gan_lightning.module import GANModule
from gan_lightning.pixels import unit_float
from gan_lightning.record import Status, Tag

log = logging.getLogger(__name__)


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
      ``diversity_warmup`` generator steps on, since every model starts out that way (the
      ratios early in training: ``val/diversity`` in any run's TensorBoard). The ratio is
      logged as ``val/diversity`` each epoch (1: as varied as the data).
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
        run = pl_module.run
        if run.latest_step == self._seen_step:
            return
        self._seen_step = step = run.latest_step
        m = run.latest
        loss_d, loss_g = m[Tag.LOSS_D], m[Tag.LOSS_G]
        d_real, d_fake = m[Tag.D_REAL], m[Tag.D_FAKE]

        if not (math.isfinite(loss_d) and math.isfinite(loss_g)):
            self._stop(trainer, pl_module, Status.DIVERGED, divergence.message(
                f"a non-finite loss (loss_d={loss_d}, loss_g={loss_g})", step,
                trainer.current_epoch))
            return

        if not pl_module.probabilistic:
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

        if self._saturated >= self.patience and run.status is None:
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
                self._stop(trainer, pl_module, Status.COLLAPSED, text)
            elif not any(w["kind"] == Status.COLLAPSED for w in self.warnings):
                self.warnings.append({"kind": Status.COLLAPSED, "g_step": step,
                                      "message": text})
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
        pl_module.run.log(trainer, {Tag.DIVERSITY: self.diversity})
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

    def _stop(self, trainer: L.Trainer, pl_module: GANModule, status: Status, text: str) -> None:
        pl_module.run.end(status, text)
        self.warnings.append({"kind": status, "g_step": pl_module.run.latest_step,
                              "message": text})
        log.warning(text)
        trainer.should_stop = True


def diversity(samples: torch.Tensor) -> float:
    """Mean pairwise L2 distance between the (flattened) samples of a batch (uint8 images are
    taken in the generator's range, [-1, 1])."""
    return float(torch.pdist(unit_float(samples.detach()).flatten(1).float().cpu()).mean())
