"""``Evaluator``: samples the generator every few epochs and scores the samples
(``metrics.SampleQuality``).

Protocol: ``num_real`` images of the dataset's test split are the reference (their features
are computed once per run); fake samples are drawn in eval mode, in batches, from a latent
sequence seeded by the run's seed (the same latents at every evaluation, so the curve is not
noisy from resampling, and the training RNG is left untouched). Results go to the loggers as
``val/fid``, ``val/is``, ``val/precision`` and ``val/recall`` against the generator step, to
``metrics.json`` (final, best and its epoch, history, protocol), and the best epoch's weights
to ``<run>/best.ckpt``. Under DDP each rank generates a contiguous block of the samples.

The best epoch is the one with the lowest FID against the images the datamodule holds out of
training (``validation_images``; ``val/fid_val``), where it holds some out: chosen there, its
figures are then reported against the test split like every other, so the best figure is not
picked on the reference that reports it. Without held-out images it is chosen on the test
split, and the record says so (``metrics_protocol.best_chosen_on``).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.loggers import TensorBoardLogger

from gan_lightning.cache import default_cache_dir
from gan_lightning.callbacks.samples import class_share_chart
from gan_lightning.metrics.coverage import COVERAGE_FLOOR
from gan_lightning.metrics.features import build_extractor, choose_feature
from gan_lightning.metrics.quality import SampleQuality
from gan_lightning.module import GANModule
from gan_lightning.ranks import block
from gan_lightning.record import QUALITY_METRICS, Tag, final_over_best

log = logging.getLogger(__name__)


@dataclass
class Schedule:
    """When and on how many samples one metric is computed."""

    name: str
    enabled: bool = True
    every_n_epochs: int = 1
    num_fake: int = 10_000
    num_real: int = 10_000

    def __post_init__(self) -> None:
        # a covariance needs at least 2 samples
        for key, minimum in (("every_n_epochs", 1), ("num_fake", 2), ("num_real", 2)):
            if getattr(self, key) < minimum:
                raise ValueError(f"metrics.{self.name}.{key} must be >= {minimum}, "
                                 f"got {getattr(self, key)}")

    def due(self, epoch: int, last: bool) -> bool:
        return self.enabled and (epoch % self.every_n_epochs == 0 or last)


class Evaluator(L.Callback):
    """Computes sample-quality metrics at the end of training epochs.

    Args:
        fid: ``feature`` (``auto``, the default: ``classifier`` for labelled images, cheap on
            a CPU; ``identity`` for point data; ``inception`` for images without labels),
            ``weights_path`` (local InceptionV3 weights, for offline use), ``antialias``
            (inception resize, fixed and recorded), and the schedule:
            ``every_n_epochs``, ``num_fake``, ``num_real``. The extractor serves all metrics.
        kid: Kernel Inception Distance on FID's features: schedule, ``subsets`` and
            ``subset_size`` (KID is their mean; its standard deviation is ``kid_std``).
        precision_recall: schedule (k-NN costs ~O(n^2): fewer samples, less often) and ``k``.
        coverage: ``enabled``: the class coverage (``metrics.coverage``) whenever FID is
            computed, on the classifier's logits of FID's samples (labelled datasets;
            conditional models also get the accuracy per requested class). A per-class bar
            chart goes to TensorBoard.
        batch_size: generation / feature batch size.
        classifier: training settings of the classifier (part of its cache key).
        cache_dir: where the classifier is cached (default ``<data root>/.gan_lightning``).
        out_dir: run folder, for ``best.ckpt``; ``None`` saves no best checkpoint.
        seed: seeds the evaluation latents.
        **metrics: ``is``, the Inception Score's schedule (a Python keyword, hence here).
    """

    def __init__(
        self,
        fid: dict[str, Any] | None = None,
        kid: dict[str, Any] | None = None,
        precision_recall: dict[str, Any] | None = None,
        coverage: dict[str, Any] | None = None,
        batch_size: int = 1000,
        classifier: dict[str, Any] | None = None,
        cache_dir: str | None = None,
        out_dir: str | None = None,
        seed: int = 0,
        **metrics: dict[str, Any],
    ) -> None:
        unknown = set(metrics) - {"is"}
        if unknown:
            raise TypeError(f"metrics: unknown settings {sorted(unknown)}")
        kid = dict(kid or {})
        self.kid_subsets = kid.pop("subsets", 100)
        self.kid_subset_size = kid.pop("subset_size", 1000)
        fid = dict(fid or {})
        self.feature = fid.pop("feature", "auto")
        self.weights_path = fid.pop("weights_path", None)
        self.antialias = fid.pop("antialias", True)
        pr = dict(precision_recall or {})
        self.pr_k = pr.pop("k", 3)
        if self.pr_k < 1 or batch_size < 1:
            raise ValueError("metrics: precision_recall.k and batch_size must be >= 1")
        self.schedules = {
            "fid": Schedule("fid", **fid),
            "kid": Schedule("kid", **kid),
            "is": Schedule("is", **(metrics.get("is") or {})),
            "precision_recall": Schedule("precision_recall", **pr),
        }
        coverage = dict(coverage or {})
        self.coverage = bool(coverage.pop("enabled", True))
        if coverage:
            raise TypeError(f"metrics.coverage: unknown settings {sorted(coverage)}; it has "
                            f"only enabled (it follows FID's schedule and samples)")
        self.batch_size = batch_size
        self.classifier = classifier
        self.cache_dir = cache_dir
        self.out_dir = Path(out_dir) if out_dir else None
        self.seed = seed
        self.history: list[dict[str, float]] = []
        self.best: dict[str, float] | None = None
        #: held-out training images FID compares with to choose the best epoch (0: none)
        self.validation_size = 0
        self.eval_time_s = 0.0  # evaluations only
        self.setup_time_s = 0.0  # extractor (incl. a first-time classifier training), real stats
        self.quality: SampleQuality | None = None

    @property
    def extractor(self) -> torch.nn.Module | None:
        return self.quality.extractor if self.quality else None

    # -- set-up: extractor and real statistics, once per run ----------------------------
    def setup(self, trainer: L.Trainer, pl_module: GANModule, stage: str) -> None:
        if self.quality is not None:
            return
        # torchmetrics may draw dummy inputs: keep the run's RNG as if metrics were off
        with torch.random.fork_rng():
            self._setup(trainer, pl_module)

    def _setup(self, trainer: L.Trainer, pl_module: GANModule) -> None:
        start = time.perf_counter()
        self.prepare(trainer.datamodule, pl_module.device)
        self.load_reference(trainer.datamodule)
        self.setup_time_s = time.perf_counter() - start

    def prepare(self, dm: Any, device: torch.device | str) -> None:
        """The extractor and the metrics (``quality``) for datamodule ``dm``, set up: what a
        run does once, and what ``gan-eval`` does without a trainer. ``load_reference`` then
        gives them the real statistics."""
        self.feature = choose_feature(self.feature, list(dm.img_shape), dm.num_classes)
        extractor = build_extractor(
            self.feature, dataset=dm.name, source=dm.source_used, img_shape=list(dm.img_shape),
            num_classes=dm.num_classes,
            cache_dir=self.cache_dir or default_cache_dir(dm.data_dir),
            labelled_data=getattr(dm, "labelled_splits", None),
            weights_path=self.weights_path, antialias=self.antialias,
            classifier=self.classifier,
        )
        if not hasattr(extractor, "features_and_logits"):
            self.schedules["is"].enabled = False  # no class logits (feature=identity)
        fid = self.schedules["fid"]
        shares = None
        if self.coverage and self.feature == "classifier" and dm.num_classes:
            labels = getattr(dm, "reference_labels", lambda n: None)(fid.num_real)
            if labels is not None:
                shares = torch.bincount(labels, minlength=dm.num_classes).double() / len(labels)
        self.coverage = shares is not None  # it needs the dataset's own classes
        on = {k: s for k, s in self.schedules.items() if s.enabled}
        num_fake = {k: s.num_fake for k, s in on.items()}
        if self.coverage and fid.enabled:
            num_fake["coverage"] = fid.num_fake
        self.quality = SampleQuality(
            extractor, num_real={k: s.num_real for k, s in on.items()},
            num_fake=num_fake, k=self.pr_k,
            batch_size=self.batch_size, seed=self.seed, device=device,
            real_shares=shares, kid_subsets=self.kid_subsets,
            kid_subset_size=self.kid_subset_size)

    def load_reference(self, dm: Any) -> int:
        """The real statistics, from ``dm.reference_images``; returns how many images."""
        # IS compares with no real image: its num_real must not make the reference larger
        num_real = max((s.num_real for k, s in self.schedules.items()
                        if s.enabled and k != "is"), default=0)
        real = dm.reference_images(num_real)
        if len(real) < num_real:
            log.warning("metrics: only %d reference images (num_real=%d)", len(real), num_real)
        cached = getattr(dm, "cache_folder", None)  # decoded image sets keep theirs beside
        self.quality.set_reference(real, cached and cached / (
            f"reference-{getattr(self.extractor, 'cache_id', self.feature)}-{len(real)}.pt"))
        fid = self.schedules["fid"]
        held_out = getattr(dm, "validation_images", lambda n: None)(fid.num_real)
        if fid.enabled and held_out is not None:
            self.quality.set_validation(held_out)
            self.validation_size = len(held_out)
        return len(real)

    # -- evaluation ---------------------------------------------------------------------
    def sample(self, pl_module: GANModule, n: int
               ) -> tuple[torch.Tensor, int, torch.Tensor | None]:
        """Generator samples in eval mode, from ``n`` latents seeded by ``seed``.

        Returns ``(samples, offset, requested)``: all ``n`` and 0 in one process; under DDP
        this rank's block of whole batches and the index of its first sample. ``requested``:
        the class each sample was drawn for (conditional models; else None).
        """
        mine = block(math.ceil(n / self.batch_size))
        chunks, requested = [], []
        with pl_module.sampling():
            # every rank draws every batch's latents: the sequence does not depend on ranks
            for i, z in enumerate(latent_batches(n, pl_module.z_dim, self.batch_size,
                                                 self.seed)):
                z = z.to(pl_module.device)
                if i in mine:
                    chunks.append(pl_module(z).float())  # conditional: classes balanced
                    requested.append(pl_module.balanced_labels(len(z)))
            if not chunks:  # more ranks than batches: an empty batch of the right shape
                chunks.append(pl_module(z[:0]).float())
                requested.append(pl_module.balanced_labels(0))
        labels = torch.cat(requested) if pl_module.num_classes else None
        return torch.cat(chunks), mine.start * self.batch_size, labels

    @torch.no_grad()
    def evaluate(self, pl_module: GANModule, metrics: set[str] | None = None) -> dict[str, float]:
        """The given metrics (default: all enabled) of the current generator.

        Metric states are reset afterwards; the real statistics are kept.
        """
        metrics = set(metrics or self.enabled)
        samples, offset, requested = self.sample(
            pl_module, max(self.schedules[k].num_fake for k in metrics))
        return self.score(samples, offset, metrics, requested)

    @property
    def enabled(self) -> set[str]:
        """The metrics switched on (and possible with the extractor, once prepared)."""
        return {k for k, s in self.schedules.items() if s.enabled}

    def score(self, samples: torch.Tensor, offset: int, metrics: set[str],
              requested: torch.Tensor | None = None) -> dict[str, float]:
        """``metrics`` of ``samples`` (``quality.score``), class coverage along with FID."""
        metrics = set(metrics)
        if self.coverage and "fid" in metrics:  # FID's samples, FID's schedule
            metrics.add("coverage")
        return self.quality.score(samples, offset, metrics, requested)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: GANModule) -> None:
        epoch = trainer.current_epoch + 1  # epochs completed
        last = epoch >= (trainer.max_epochs or 0) or trainer.should_stop
        due = {k for k, s in self.schedules.items() if s.due(epoch, last)}
        if not due or not pl_module.check_finite():
            return
        start = time.perf_counter()
        results = self.evaluate(pl_module, due)
        self.eval_time_s += time.perf_counter() - start
        details = self.quality.details  # per-class figures of this evaluation
        pl_module.run.log(trainer, {Tag.val(k): v for k, v in results.items()})
        if "class_shares" in details and trainer.is_global_zero:
            self._log_class_shares(trainer, pl_module, details["class_shares"])
        self.history.append({"epoch": epoch, "g_step": pl_module.g_step, **results, **details})
        log.info("epoch %d: %s", epoch, ", ".join(f"{k} {v:.4g}" for k, v in results.items()))
        chooser = self.chosen_by
        fid = results.get(chooser, math.nan)
        if math.isfinite(fid) and (self.best is None or fid < self.best[chooser]):
            self.best = self.history[-1]
            if self.out_dir is not None:  # every rank calls it; rank 0 writes
                trainer.save_checkpoint(self.out_dir / "best.ckpt", weights_only=False)

    def _log_class_shares(self, trainer: L.Trainer, pl_module: GANModule,
                          shares: list[float]) -> None:
        real = self.quality.real_shares.tolist()
        names = getattr(trainer.datamodule, "classes", None) or None
        chart = class_share_chart(real, shares, f"classes drawn, generator step "
                                                f"{pl_module.g_step}", names)
        for logger in trainer.loggers:
            if isinstance(logger, TensorBoardLogger):
                logger.experiment.add_image(Tag.CLASS_SHARES, chart, pl_module.g_step)

    # -- results ------------------------------------------------------------------------
    @property
    def chosen_by(self) -> str:
        """The figure that picks the best epoch: FID on the held-out images where there are
        some (``fid_val``), else FID on the test split (``fid``)."""
        return "fid_val" if self.validation_size else "fid"

    def protocol(self) -> dict[str, Any]:
        """How the figures were measured (``metrics.json``'s ``metrics_protocol``)."""
        protocol: dict[str, Any] = {
            "feature": self.feature, "reference": "test split",
            "best_chosen_on": (f"validation: {self.validation_size} training images held out"
                               if self.validation_size else "test split"),
            "precision_recall_k": self.pr_k,
            "coverage": {"enabled": self.coverage, "floor": COVERAGE_FLOOR},
            "kid_subsets": self.kid_subsets, "kid_subset_size": self.kid_subset_size,
            **{k: asdict(s) for k, s in self.schedules.items()},
        }
        for s in protocol.values():
            if isinstance(s, dict):
                s.pop("name", None)
        if self.feature == "classifier" and self.extractor is not None:
            protocol["classifier_test_accuracy"] = self.extractor.test_accuracy
            protocol["classifier_cache"] = self.extractor.path.name
            protocol["classifier_weights"] = self.extractor.weights_digest
        if self.feature == "inception":
            protocol.update(antialias=self.antialias, weights_path=self.weights_path)
        return protocol

    def run_summary(self) -> dict[str, Any]:
        """What ``metrics.json`` records: final and best values, history and protocol."""
        out: dict[str, Any] = {"metrics_protocol": self.protocol(),
                               "eval_time_s": self.eval_time_s,
                               "eval_setup_time_s": self.setup_time_s,
                               "metrics_history": self.history}
        for key in (*QUALITY_METRICS, "class_shares", "cond_accuracy_per_class"):
            values = [h[key] for h in self.history if key in h]
            if values:
                out[key] = {"final": values[-1]}
        if "class_shares" in out:
            out["class_shares"]["real"] = self.quality.real_shares.tolist()
        if self.best is not None:  # the epoch of the lowest finite FID (chosen_by's)
            out["fid"].update(best=self.best["fid"], best_epoch=self.best["epoch"])
            if "fid_val" in out:
                out["fid_val"]["best"] = self.best["fid_val"]
            # whether the run ended at its peak (1.0) or past it: final over best
            ratio = final_over_best(out["fid"]["final"], self.best["fid"])
            if ratio is not None:
                out["fid"]["final_over_best"] = ratio
        scores = [h["is"] for h in self.history if math.isfinite(h.get("is", math.nan))]
        if scores:
            out["is"]["best"] = max(scores)
        return out

    def state_dict(self) -> dict[str, Any]:
        return {"history": self.history, "best": self.best, "eval_time_s": self.eval_time_s}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.history = list(state_dict.get("history", []))
        self.best = state_dict.get("best")
        self.eval_time_s = float(state_dict.get("eval_time_s", 0.0))


def latent_batches(n: int, z_dim: int, batch_size: int, seed: int) -> Iterator[torch.Tensor]:
    """The evaluation latents: ``n`` of them, ``(B, z_dim)`` batches of ``batch_size``, drawn
    from a private generator seeded by ``seed``, so every evaluation (a run's, ``gan-eval``'s)
    sees the same sequence and the caller's RNG is left alone."""
    rng = torch.Generator(device="cpu").manual_seed(seed)
    for start in range(0, n, batch_size):
        yield torch.randn(min(batch_size, n - start), z_dim, generator=rng)
