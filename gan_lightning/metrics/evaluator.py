"""``Evaluator``: FID, IS and precision/recall of the generator, every few epochs.

Protocol: ``num_real`` images of the dataset's test split are the reference (their features
are computed once per run); fake samples are drawn in eval mode, in batches, from a latent
sequence seeded by the run's seed (the same latents at every evaluation, so the curve is not
noisy from resampling, and the training RNG is left untouched). One extractor (``fid.feature``)
serves all three metrics and runs once per batch: FID reads its features, IS its logits,
precision/recall the first ``num_fake`` / ``num_real`` features. Statistics are accumulated
in float64 by torchmetrics. Results go to the loggers as ``val/fid``, ``val/is``,
``val/precision`` and ``val/recall`` against the generator step, to ``metrics.json`` (final,
best and its epoch, history, protocol), and the lowest FID's weights to ``<run>/best.ckpt``.

Under DDP the work is shared: each rank generates and extracts a contiguous block of the
samples (and of the reference images), the FID and IS states are summed / gathered across
ranks by torchmetrics, and precision/recall gathers the features. The figures are those one
process would compute from the same samples, up to the order of floating-point sums.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.inception import InceptionScore

from gan_lightning.distributed import block, gather
from gan_lightning.metrics.features import IdentityFeatures, build_extractor, choose_feature
from gan_lightning.metrics.precision_recall import knn_radii, precision_recall

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
        precision_recall: schedule (k-NN costs ~O(n^2): fewer samples, less often) and ``k``.
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
        precision_recall: dict[str, Any] | None = None,
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
            "is": Schedule("is", **(metrics.get("is") or {})),
            "precision_recall": Schedule("precision_recall", **pr),
        }
        self.batch_size = batch_size
        self.classifier = classifier
        self.cache_dir = cache_dir
        self.out_dir = Path(out_dir) if out_dir else None
        self.seed = seed
        self.history: list[dict[str, float]] = []
        self.best: dict[str, float] | None = None
        self.eval_time_s = 0.0  # evaluations only
        self.setup_time_s = 0.0  # extractor (incl. a first-time classifier training), real stats
        self.extractor: torch.nn.Module | None = None

    # -- set-up: extractor and real statistics, once per run ----------------------------
    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if self.extractor is not None:
            return
        # torchmetrics may draw dummy inputs: keep the run's RNG as if metrics were off
        with torch.random.fork_rng():
            self._setup(trainer, pl_module)

    def _setup(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        dm = trainer.datamodule
        start = time.perf_counter()
        self.feature = choose_feature(self.feature, list(dm.img_shape), dm.num_classes)
        self.extractor = build_extractor(
            self.feature, dataset=dm.name, data_dir=dm.data_dir, source=dm.source_used,
            img_shape=list(dm.img_shape), num_classes=dm.num_classes,
            weights_path=self.weights_path, antialias=self.antialias,
            classifier=self.classifier, cache_dir=self.cache_dir,
        ).to(pl_module.device)
        # The extractor runs once per batch (``_extract``); the metrics receive its outputs.
        self.fid = FrechetInceptionDistance(
            IdentityFeatures(self.extractor.num_features), reset_real_features=False
        ).to(pl_module.device)
        self.inception = None
        if not hasattr(self.extractor, "features_and_logits"):
            self.schedules["is"].enabled = False  # no class logits (feature=identity)
        if self.schedules["is"].enabled:
            self.inception = InceptionScore(torch.nn.Identity()).to(pl_module.device)
        num_real = max(s.num_real for s in self.schedules.values() if s.enabled)
        real = dm.reference_images(num_real)
        if len(real) < num_real:
            log.warning("metrics: only %d reference images (num_real=%d)", len(real), num_real)
        mine = block(len(real))  # under DDP, this rank's share
        with torch.no_grad():
            features = torch.cat([self._extract(b.to(pl_module.device))[0]
                                  for b in real[mine.start:mine.stop].split(self.batch_size)])
        self.fid.update(first(features, mine.start, self.schedules["fid"].num_real), real=True)
        features = gather(features)
        self.real_pr = features[: self.schedules["precision_recall"].num_real].float()
        if self.schedules["precision_recall"].enabled:
            self.real_radii = knn_radii(self.real_pr, self.pr_k)
        self.setup_time_s = time.perf_counter() - start

    def _extract(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(features, logits or None)`` of a batch, from one pass of the extractor."""
        if hasattr(self.extractor, "features_and_logits"):
            return self.extractor.features_and_logits(images)
        return self.extractor(images), None

    # -- evaluation ---------------------------------------------------------------------
    def sample(self, pl_module: L.LightningModule, n: int) -> tuple[torch.Tensor, int]:
        """Generator samples in eval mode, from ``n`` latents seeded by ``seed``.

        Returns ``(samples, offset)``: all ``n`` and 0 in one process; under DDP this rank's
        block of whole batches and the index of its first sample.
        """
        rng = torch.Generator(device="cpu").manual_seed(self.seed)
        starts = range(0, n, self.batch_size)
        mine = block(len(starts))
        chunks = []
        with pl_module.sampling():
            for i, start in enumerate(starts):
                size = min(self.batch_size, n - start)
                # every rank draws every batch's latents: the sequence does not depend on ranks
                z = torch.randn(size, pl_module.z_dim, generator=rng).to(pl_module.device)
                if i in mine:
                    chunks.append(pl_module(z).float())  # conditional: classes balanced
            if not chunks:  # more ranks than batches: an empty batch of the right shape
                chunks.append(pl_module(z[:0]).float())
        return torch.cat(chunks), mine.start * self.batch_size

    @torch.no_grad()
    def evaluate(self, pl_module: L.LightningModule,
                 metrics: set[str] | None = None) -> dict[str, float]:
        """The given metrics (default: all enabled) of the current generator.

        Metric states are reset afterwards; the real statistics are kept.
        """
        metrics = metrics or {k for k, s in self.schedules.items() if s.enabled}
        n = max(self.schedules[k].num_fake for k in metrics)
        samples, offset = self.sample(pl_module, n)
        features, logits = [], []
        for batch in samples.split(self.batch_size):
            f, lg = self._extract(batch)
            features.append(f)
            logits.append(lg)
        features = torch.cat(features)
        if not bool(gather(features.isfinite().all().reshape(1)).all()):
            # a NaN covariance crashes LAPACK (MKL's DGEBAL, then a segfault): report instead
            log.warning("metrics: the generator's samples give non-finite features; %s "
                        "reported as NaN", ", ".join(sorted(metrics)))
            names = {"precision_recall": ("precision", "recall")}
            return {name: float("nan") for k in sorted(metrics) for name in names.get(k, (k,))}
        results: dict[str, float] = {}
        if "fid" in metrics:
            self.fid.update(first(features, offset, self.schedules["fid"].num_fake), real=False)
            results["fid"] = float(self.fid.compute())  # under DDP: states summed over ranks
            self.fid.reset()  # keeps the real statistics (reset_real_features=False)
        if "is" in metrics and self.inception is not None:
            self.inception.update(first(torch.cat(logits), offset, self.schedules["is"].num_fake))
            with torch.random.fork_rng():  # IS shuffles with the global RNG: keep training's
                torch.manual_seed(self.seed)
                results["is"] = float(self.inception.compute()[0])
            self.inception.reset()
        if "precision_recall" in metrics:
            fake = gather(features)[: self.schedules["precision_recall"].num_fake].float()
            results["precision"], results["recall"] = precision_recall(
                self.real_pr, fake, self.pr_k, self.real_radii)
        return results

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        epoch = trainer.current_epoch + 1  # epochs completed
        last = epoch >= (trainer.max_epochs or 0) or trainer.should_stop
        due = {k for k, s in self.schedules.items() if s.due(epoch, last)}
        if not due or not pl_module.check_finite():
            return
        start = time.perf_counter()
        results = self.evaluate(pl_module, due)
        self.eval_time_s += time.perf_counter() - start
        pl_module.log_scalars({f"val/{k}": v for k, v in results.items()})
        self.history.append({"epoch": epoch, "g_step": pl_module.g_step, **results})
        log.info("epoch %d: %s", epoch, ", ".join(f"{k} {v:.4g}" for k, v in results.items()))
        fid = results.get("fid", math.nan)
        if math.isfinite(fid) and (self.best is None or fid < self.best["fid"]):
            self.best = self.history[-1]
            if self.out_dir is not None:  # every rank calls it; rank 0 writes
                trainer.save_checkpoint(self.out_dir / "best.ckpt", weights_only=False)

    # -- results ------------------------------------------------------------------------
    def run_summary(self) -> dict[str, Any]:
        """What ``metrics.json`` records: final and best values, history and protocol."""
        protocol: dict[str, Any] = {
            "feature": self.feature, "reference": "test split", "precision_recall_k": self.pr_k,
            **{k: asdict(s) for k, s in self.schedules.items()},
        }
        for s in protocol.values():
            if isinstance(s, dict):
                s.pop("name", None)
        if self.feature == "classifier" and self.extractor is not None:
            protocol["classifier_test_accuracy"] = self.extractor.test_accuracy
            protocol["classifier_cache"] = self.extractor.path.name
        if self.feature == "inception":
            protocol.update(antialias=self.antialias, weights_path=self.weights_path)
        out: dict[str, Any] = {"metrics_protocol": protocol, "eval_time_s": self.eval_time_s,
                               "eval_setup_time_s": self.setup_time_s,
                               "metrics_history": self.history}
        for key in ("fid", "is", "precision", "recall"):
            values = [h[key] for h in self.history if key in h]
            if values:
                out[key] = {"final": values[-1]}
        if self.best is not None:  # the lowest finite FID
            out["fid"].update(best=self.best["fid"], best_epoch=self.best["epoch"])
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


def first(rows: torch.Tensor, offset: int, limit: int) -> torch.Tensor:
    """The ``rows`` (whose first has global index ``offset``) among the first ``limit``."""
    return rows[: max(0, limit - offset)]
