"""``Evaluator``: FID, IS and precision/recall of the generator, every few epochs.

Protocol: ``num_real`` images of the dataset's test split are the reference (their features
are computed once per run); ``num_fake`` samples are drawn in eval mode, in batches, from a
latent sequence seeded by the run's seed (the same latents at every evaluation, so the curve
is not noisy from resampling, and the training RNG is left untouched). Statistics are
accumulated in float64 by torchmetrics. Results go to the loggers as ``val/fid``, ``val/is``,
``val/precision`` and ``val/recall`` against the generator step, to ``metrics.json`` (final,
best and its epoch, history) and the lowest FID's weights to ``<run>/best.ckpt``.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.inception import InceptionScore

from gan_lightning.metrics.features import IdentityFeatures, build_extractor
from gan_lightning.metrics.precision_recall import knn_radii, precision_recall

log = logging.getLogger(__name__)


class Evaluator(L.Callback):
    """Computes sample-quality metrics at the end of every ``every_n_epochs``-th epoch.

    Args:
        feature: ``classifier`` (default; cheap on CPU), ``inception`` or ``identity``.
        every_n_epochs: evaluate FID (and IS) every this many epochs, and after the last.
        num_fake: generated samples per evaluation.
        num_real: test-split images in the reference set.
        inception_score: also compute IS (needs an extractor with logits).
        precision_recall: also compute improved precision/recall (k-NN manifolds) ...
        pr_num: ... on this many real and fake samples ...
        pr_k: ... with this k ...
        pr_every_n_epochs: ... every this many epochs (k-NN costs ~O(pr_num^2)).
        weights_path: local InceptionV3 weights for ``feature=inception`` offline.
        antialias: resize antialiasing for ``inception`` (fixed and recorded).
        batch_size: generation / feature batch size.
        classifier: training settings of the classifier (part of its cache key).
        cache_dir: where the classifier is cached (default ``<data root>/.gan_lightning``).
        out_dir: run folder, for ``best.ckpt``; ``None`` saves no best checkpoint.
    """

    def __init__(
        self,
        feature: str = "classifier",
        every_n_epochs: int = 1,
        num_fake: int = 10_000,
        num_real: int = 10_000,
        inception_score: bool = True,
        precision_recall: bool = True,
        pr_num: int = 5_000,
        pr_k: int = 3,
        pr_every_n_epochs: int = 5,
        weights_path: str | None = None,
        antialias: bool = True,
        batch_size: int = 1000,
        classifier: dict[str, Any] | None = None,
        cache_dir: str | None = None,
        out_dir: str | None = None,
        seed: int = 0,
    ) -> None:
        for name, value in (("every_n_epochs", every_n_epochs), ("num_fake", num_fake),
                            ("num_real", num_real), ("pr_num", pr_num), ("pr_k", pr_k),
                            ("pr_every_n_epochs", pr_every_n_epochs),
                            ("batch_size", batch_size)):
            if value < 1:
                raise ValueError(f"metrics.{name} must be >= 1, got {value}")
        if num_fake < 2 or num_real < 2:
            raise ValueError("metrics: FID needs at least 2 real and 2 fake samples")
        self.feature = feature
        self.every_n_epochs = every_n_epochs
        self.num_fake = num_fake
        self.num_real = num_real
        self.with_is = inception_score
        self.with_pr = precision_recall
        self.pr_num = pr_num
        self.pr_k = pr_k
        self.pr_every_n_epochs = pr_every_n_epochs
        self.weights_path = weights_path
        self.antialias = antialias
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
        if self.with_is and hasattr(self.extractor, "features_and_logits"):
            self.inception = InceptionScore(torch.nn.Identity()).to(pl_module.device)
        real = dm.reference_images(self.num_real)
        if len(real) < self.num_real:
            log.warning("metrics: only %d reference images (num_real=%d)", len(real),
                        self.num_real)
        self.real_pr = None
        with torch.no_grad():
            features = torch.cat([self._extract(b.to(pl_module.device))[0]
                                  for b in real.split(self.batch_size)])
            self.fid.update(features, real=True)
            if self.with_pr:
                self.real_pr = features[: self.pr_num].float()
                self.real_radii = knn_radii(self.real_pr, self.pr_k)
        self.setup_time_s = time.perf_counter() - start

    def _extract(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(features, logits or None)`` of a batch, from one pass of the extractor."""
        if hasattr(self.extractor, "features_and_logits"):
            return self.extractor.features_and_logits(images)
        return self.extractor(images), None

    # -- evaluation ---------------------------------------------------------------------
    @torch.no_grad()
    def sample(self, pl_module: L.LightningModule, n: int) -> torch.Tensor:
        """``n`` generator samples in eval mode, from latents seeded by ``seed``."""
        generator = pl_module.generator
        was_training = generator.training
        generator.eval()
        rng = torch.Generator(device="cpu").manual_seed(self.seed)
        try:
            chunks = []
            for start in range(0, n, self.batch_size):
                size = min(self.batch_size, n - start)
                z = torch.randn(size, pl_module.z_dim, generator=rng).to(pl_module.device)
                chunks.append(generator(z).float())
            return torch.cat(chunks)
        finally:
            generator.train(was_training)

    @torch.no_grad()
    def evaluate(self, pl_module: L.LightningModule, with_pr: bool = True) -> dict[str, float]:
        """Metrics of the current generator; the metric states are reset afterwards."""
        results: dict[str, float] = {}
        fake = self.sample(pl_module, self.num_fake)
        fake_features = []
        for batch in fake.split(self.batch_size):
            features, logits = self._extract(batch)
            fake_features.append(features)
            if self.inception is not None:
                self.inception.update(logits)
        fake_features = torch.cat(fake_features)
        self.fid.update(fake_features, real=False)
        results["fid"] = float(self.fid.compute())
        self.fid.reset()  # keeps the real statistics (reset_real_features=False)
        if self.inception is not None:
            with torch.random.fork_rng():  # IS shuffles with the global RNG: keep training's
                torch.manual_seed(self.seed)
                results["is"] = float(self.inception.compute()[0])
            self.inception.reset()
        if with_pr and self.real_pr is not None:
            results["precision"], results["recall"] = precision_recall(
                self.real_pr, fake_features[: self.pr_num].float(), self.pr_k, self.real_radii)
        return results

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        epoch = trainer.current_epoch + 1  # epochs completed
        last = epoch >= (trainer.max_epochs or 0) or trainer.should_stop
        if epoch % self.every_n_epochs and not last:
            return
        if getattr(pl_module, "status", None) == "diverged":
            return
        start = time.perf_counter()
        results = self.evaluate(pl_module, with_pr=epoch % self.pr_every_n_epochs == 0 or last)
        self.eval_time_s += time.perf_counter() - start
        pl_module.log_scalars({f"val/{k}": v for k, v in results.items()})
        self.history.append({"epoch": epoch, "g_step": pl_module.g_step, **results})
        log.info("epoch %d: %s", epoch, ", ".join(f"{k} {v:.4g}" for k, v in results.items()))
        if self.best is None or results["fid"] < self.best["fid"]:
            self.best = self.history[-1]
            if self.out_dir is not None and trainer.is_global_zero:
                trainer.save_checkpoint(self.out_dir / "best.ckpt", weights_only=False)

    # -- results ------------------------------------------------------------------------
    def run_summary(self) -> dict[str, Any]:
        """What ``metrics.json`` records: final and best values, history and protocol."""
        protocol = {
            "feature": self.feature, "num_fake": self.num_fake, "num_real": self.num_real,
            "reference": "test split", "pr_num": self.pr_num, "pr_k": self.pr_k,
        }
        if self.feature == "classifier" and self.extractor is not None:
            protocol["classifier_test_accuracy"] = self.extractor.test_accuracy
            protocol["classifier_cache"] = self.extractor.path.name
        if self.feature == "inception":
            protocol.update(antialias=self.antialias, weights_path=self.weights_path)
        out: dict[str, Any] = {"metrics_protocol": protocol, "eval_time_s": self.eval_time_s,
                               "eval_setup_time_s": self.setup_time_s,
                               "metrics_history": self.history}
        if self.history:
            final = self.history[-1]
            out["fid"] = {"final": final["fid"], "best": self.best["fid"],
                          "best_epoch": self.best["epoch"]}
            for key in ("is", "precision", "recall"):
                values = [h for h in self.history if key in h]
                if values:
                    out[key] = {"final": values[-1][key]}
            if "is" in final:
                out["is"]["best"] = max(h["is"] for h in self.history if "is" in h)
        return out

    def state_dict(self) -> dict[str, Any]:
        return {"history": self.history, "best": self.best, "eval_time_s": self.eval_time_s}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.history = list(state_dict.get("history", []))
        self.best = state_dict.get("best")
        self.eval_time_s = float(state_dict.get("eval_time_s", 0.0))
