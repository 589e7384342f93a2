"""``SampleQuality``: FID, IS, precision/recall and class coverage of generated images.

Images in, numbers out. One extractor serves all the metrics and runs once per batch: FID
reads its features, IS and class coverage (``metrics.coverage``) its logits,
precision/recall the first ``num_fake`` / ``num_real`` features. The reference's features
are computed once (``set_reference``) and kept; ``score`` resets the metric states after each
call. Statistics are accumulated in float64 by torchmetrics.

Under DDP each rank passes its own block of the samples (and of the reference images, which
``set_reference`` picks itself): torchmetrics sums the FID and IS states across ranks and
precision/recall gathers the features, so the figures are those one process would compute
from the same samples, up to the order of floating-point sums.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import torch
from torch import nn
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.inception import InceptionScore
from torchmetrics.image.kid import KernelInceptionDistance

from gan_lightning.cache import save_atomically
from gan_lightning.metrics.coverage import class_coverage, conditional_accuracy
from gan_lightning.metrics.features import IdentityFeatures
from gan_lightning.metrics.precision_recall import knn_radii, precision_recall
from gan_lightning.pixels import unit_float
from gan_lightning.ranks import block, gather, is_main

log = logging.getLogger(__name__)

#: the metrics this class computes, and the scalar figures each gives
METRICS = {"fid": ("fid",), "kid": ("kid", "kid_std"), "is": ("is",),
           "precision_recall": ("precision", "recall"),
           "coverage": ("class_tv", "class_kl", "classes_covered", "class_confidence")}


class SampleQuality:
    """FID, IS, precision/recall and class coverage on one feature extractor.

    Args:
        extractor: images ``(B, ...)`` -> features ``(B, F)``; one with a
            ``features_and_logits`` method also gives class logits (for IS).
        num_real: reference images per metric (``{"fid": 10000, ...}``), for the metrics on.
        num_fake: samples per metric, likewise.
        k: precision/recall's neighbourhood size.
        batch_size: the extractor's batch size.
        seed: seeds IS's split shuffle (drawn from a forked RNG; the caller's is untouched).
        device: where the extractor runs and the statistics are kept.
        real_shares: the real class distribution ``(K,)``, for ``coverage`` (which needs an
            extractor whose logits are those classes: the dataset's classifier).
        kid_subsets, kid_subset_size: KID is the mean (and standard deviation) over this many
            random subsets of this many real and fake features (at most the samples there are).
    """

    def __init__(self, extractor: nn.Module, num_real: dict[str, int],
                 num_fake: dict[str, int], k: int = 3, batch_size: int = 1000,
                 seed: int = 0, device: torch.device | str = "cpu",
                 real_shares: torch.Tensor | None = None, kid_subsets: int = 100,
                 kid_subset_size: int = 1000) -> None:
        unknown = set(num_real) - set(METRICS)
        if unknown:
            raise ValueError(f"unknown metrics {sorted(unknown)}; choose from {sorted(METRICS)}")
        self.extractor = extractor.to(device)
        self.num_real, self.num_fake = dict(num_real), dict(num_fake)
        self.k, self.batch_size, self.seed = k, batch_size, seed
        self.has_logits = hasattr(extractor, "features_and_logits")
        # The extractor runs once per batch (``extract``); the metrics receive its outputs.
        self.fid = FrechetInceptionDistance(
            IdentityFeatures(extractor.num_features), reset_real_features=False).to(device)
        self.kid = None
        self.kid_subset_size = kid_subset_size
        self.kid_real = 0  # reference features KID holds (all ranks)
        if "kid" in num_fake:
            with warnings.catch_warnings():  # "will save all extracted features": 10k x F, fine
                warnings.simplefilter("ignore", UserWarning)
                self.kid = KernelInceptionDistance(
                    IdentityFeatures(extractor.num_features), subsets=kid_subsets,
                    subset_size=kid_subset_size, reset_real_features=False).to(device)
        self.inception = (InceptionScore(nn.Identity()).to(device)
                          if self.has_logits and "is" in num_fake else None)
        #: FID against a second reference (``set_validation``), from the same samples
        self.fid_val: FrechetInceptionDistance | None = None
        self.real_pr: torch.Tensor | None = None
        self.real_radii: torch.Tensor | None = None
        self.real_shares = real_shares
        #: the per-class figures of the last ``score`` (``class_shares``, and for conditional
        #: samples ``cond_accuracy_per_class``): lists, kept apart from the scalars
        self.details: dict[str, list[float]] = {}

    @property
    def metrics(self) -> set[str]:
        """The metrics this extractor can compute among those asked for (IS needs logits,
        coverage the real class distribution too)."""
        possible = {"is": self.has_logits,
                    "coverage": self.has_logits and self.real_shares is not None}
        return {m for m in self.num_fake if possible.get(m, True)}

    def extract(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(features, logits or None)`` of a batch, from one pass of the extractor."""
        if self.has_logits:
            return self.extractor.features_and_logits(images)
        return self.extractor(images), None

    @torch.no_grad()
    def reference_features(self, real: torch.Tensor, cache: Path | None = None) -> torch.Tensor:
        """The features of ``real`` images, float in [-1, 1] or uint8 (every rank passes them
        all, extracts its block, and gets them all). ``cache``: a file for them, read if it is
        there (and of as many images), else written."""
        mine = block(len(real))
        device = self.fid.device
        if cache is not None and cache.is_file():
            features = torch.load(cache, weights_only=True).to(device)
            if len(features) == len(real):
                return features
        features = gather(torch.cat([
            self.extract(unit_float(b.to(device)))[0]
            for b in real[mine.start:mine.stop].split(self.batch_size)]))
        if cache is not None and is_main():
            save_atomically(features.cpu(), cache)
        return features

    @torch.no_grad()
    def set_reference(self, real: torch.Tensor, cache: Path | None = None) -> None:
        """The reference images (``reference_features``), so a dataset's reference is
        extracted once."""
        features = self.reference_features(real, cache)
        mine = block(len(real))
        self.fid.update(first(features[mine.start:mine.stop], mine.start,
                              self.num_real.get("fid", len(real))), real=True)
        if self.kid is not None:
            self.kid.update(first(features[mine.start:mine.stop], mine.start,
                                  self.num_real["kid"]), real=True)
            self.kid_real = min(len(features), self.num_real["kid"])
        if "precision_recall" in self.num_real:
            self.real_pr = features[: self.num_real["precision_recall"]].float()
            self.real_radii = knn_radii(self.real_pr, self.k)

    @torch.no_grad()
    def set_validation(self, real: torch.Tensor) -> None:
        """A second reference for FID (``fid_val``, from FID's samples): images held out of
        the training split, on which a run's best epoch is chosen, apart from the reference
        its figures are reported on."""
        features = self.reference_features(real)
        mine = block(len(real))
        self.fid_val = FrechetInceptionDistance(
            IdentityFeatures(self.extractor.num_features),
            reset_real_features=False).to(self.fid.device)
        self.fid_val.update(features[mine.start:mine.stop], real=True)

    @torch.no_grad()
    def score(self, samples: torch.Tensor, offset: int = 0, metrics: set[str] | None = None,
              requested: torch.Tensor | None = None) -> dict[str, float]:
        """The given metrics (default: all) of ``samples``, whose first row is sample number
        ``offset`` of the whole set (under DDP, this rank's block of it). ``requested``: the
        class each sample was drawn for (a conditional generator), for ``cond_accuracy``."""
        metrics = set(metrics or self.metrics) & self.metrics
        self.details = {}
        features, logits = [], []
        for batch in samples.split(self.batch_size):
            f, lg = self.extract(batch)
            features.append(f)
            logits.append(lg)
        features = torch.cat(features)
        if not bool(gather(features.isfinite().all().reshape(1)).all()):
            # a NaN covariance crashes LAPACK (MKL's DGEBAL, then a segfault): report instead
            log.warning("metrics: the generator's samples give non-finite features; %s "
                        "reported as NaN", ", ".join(sorted(metrics)))
            names = [name for m in sorted(metrics) for name in METRICS[m]]
            if "fid" in metrics and self.fid_val is not None:
                names.append("fid_val")
            if "coverage" in metrics and requested is not None:
                names.append("cond_accuracy")
            return {name: float("nan") for name in names}
        results: dict[str, float] = {}
        if "fid" in metrics:
            for key, fid in (("fid", self.fid), ("fid_val", self.fid_val)):
                if fid is not None:
                    fid.update(first(features, offset, self.num_fake["fid"]), real=False)
                    results[key] = float(fid.compute())  # under DDP: states summed over ranks
                    fid.reset()  # keeps the real statistics (reset_real_features=False)
        if "kid" in metrics and self.kid is not None:
            fake = first(features, offset, self.num_fake["kid"])
            self.kid.update(fake, real=False)
            n_fake = int(gather(torch.tensor([len(fake)])).sum())
            # a subset can be no larger than either set (a small dataset's reference)
            self.kid.subset_size = min(self.kid_subset_size, self.kid_real, n_fake)
            with torch.random.fork_rng():  # KID draws its subsets with the global RNG
                torch.manual_seed(self.seed)
                kid, kid_std = self.kid.compute()
            results["kid"], results["kid_std"] = float(kid), float(kid_std)
            self.kid.reset()  # keeps the real features (reset_real_features=False)
        if "is" in metrics and self.inception is not None:
            self.inception.update(first(torch.cat(logits), offset, self.num_fake["is"]))
            with torch.random.fork_rng():  # IS shuffles with the global RNG
                torch.manual_seed(self.seed)
                results["is"] = float(self.inception.compute()[0])
            self.inception.reset()
        if "precision_recall" in metrics:
            fake = gather(features)[: self.num_fake["precision_recall"]].float()
            results["precision"], results["recall"] = precision_recall(
                self.real_pr, fake, self.k, self.real_radii)
        if "coverage" in metrics:  # the classifier's logits, already computed for IS
            n = self.num_fake["coverage"]
            every = gather(torch.cat(logits))[:n]
            coverage = class_coverage(every, self.real_shares)
            if requested is not None:
                coverage.update(conditional_accuracy(every, gather(requested)[:n],
                                                     self.real_shares.numel()))
            for key, value in coverage.items():
                (self.details if isinstance(value, list) else results)[key] = value
        return results


def first(rows: torch.Tensor, offset: int, limit: int) -> torch.Tensor:
    """The ``rows`` (whose first has global index ``offset``) among the first ``limit``."""
    return rows[: max(0, limit - offset)]
