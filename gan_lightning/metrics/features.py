"""Feature extractors for FID / IS / precision-recall.

Every extractor takes generator-range images ``(B, C, H, W)`` in [-1, 1] and returns
``(B, num_features)`` features; ``logits`` gives class logits for the Inception Score.

- ``classifier``: a small CNN trained on the dataset's labelled training split the first
  time it is needed, then cached (keyed by dataset, data source and a hash of its training
  config), so every run of a sweep uses identical features. Cheap on a CPU.
- ``inception``: torchmetrics' standard 2048-d InceptionV3 (FID's usual protocol). Needs
  ``torch-fidelity``; weights from the internet or from ``weights_path`` offline.
- ``identity``: the flattened data itself (for 2-D toy data: FID is then the exact Frechet
  distance between the two fitted Gaussians).

Numbers from different extractors measure different things and must never be compared.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import math
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from filelock import FileLock
from torch import nn

from gan_lightning.cache import save_atomically
from gan_lightning.errors import SetupError
from gan_lightning.pixels import unit_float

log = logging.getLogger(__name__)

#: what a classifier trains on, loaded only when it is not cached: ``() -> (train images,
#: train labels, test images, test labels)``, images ``(N, C, H, W)`` as floats in [-1, 1] or
#: uint8 (converted per batch)
LabelledSplits = Callable[[], tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]]


class IdentityFeatures(nn.Module):
    """The flattened input as features."""

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.num_features = num_features
        #: names these features in cache files
        self.cache_id = "identity"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1).double()


class SmallCNN(nn.Module):
    """Strided-conv classifier with BatchNorm, ~0.75 M multiply-adds per 28x28 image.

    ``features`` is the penultimate layer (``feature_dim``-d, before its ReLU), ``forward``
    the class logits.
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 10, width: int = 16,
                 feature_dim: int = 128, image_size: int = 28) -> None:
        super().__init__()

        def block(c_in: int, c_out: int, k: int) -> list[nn.Module]:
            return [nn.Conv2d(c_in, c_out, k, stride=2, padding=k // 2, bias=False),
                    nn.BatchNorm2d(c_out), nn.ReLU()]

        side = math.ceil(math.ceil(math.ceil(image_size / 2) / 2) / 2)  # three stride-2 convs
        self.body = nn.Sequential(
            *block(in_channels, width, 5), *block(width, 2 * width, 3),
            *block(2 * width, 4 * width, 3), nn.Flatten(),
            nn.Linear(4 * width * side * side, feature_dim),
        )
        self.head = nn.Sequential(nn.ReLU(), nn.Dropout(0.3), nn.Linear(feature_dim, num_classes))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


#: training settings of the classifier; their hash is part of the cache key
CLASSIFIER_DEFAULTS: dict[str, Any] = {
    "width": 16, "feature_dim": 128, "epochs": 6, "batch_size": 128, "lr": 2e-3, "seed": 0,
    "version": 1,
}


def _train_classifier(data: LabelledSplits, settings: dict[str, Any], img_shape: list[int],
                      num_classes: int) -> tuple[dict, float]:
    """Train deterministically on the training split; return ``(state_dict, test accuracy)``."""
    x, labels, x_test, test_labels = data()
    generator = torch.Generator().manual_seed(settings["seed"])
    deterministic = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    with torch.random.fork_rng():
        torch.manual_seed(settings["seed"])
        model = SmallCNN(img_shape[0], num_classes, settings["width"], settings["feature_dim"],
                         img_shape[-1])
        steps = settings["epochs"] * math.ceil(len(x) / settings["batch_size"])
        opt = torch.optim.Adam(model.parameters(), lr=settings["lr"])
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, settings["lr"], total_steps=steps)
        model.train()
        for epoch in range(settings["epochs"]):
            order = torch.randperm(len(x), generator=generator)
            for i in range(0, len(x), settings["batch_size"]):
                idx = order[i : i + settings["batch_size"]]
                loss = F.cross_entropy(model(unit_float(x[idx])), labels[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
            log.info("feature classifier: epoch %d/%d, loss %.4f", epoch + 1,
                     settings["epochs"], loss.item())
    torch.use_deterministic_algorithms(deterministic)
    model.eval()
    with torch.no_grad():
        correct = sum(
            int((model(unit_float(x_test[i : i + 1000])).argmax(1)
                 == test_labels[i : i + 1000]).sum())
            for i in range(0, len(x_test), 1000)
        )
    return model.state_dict(), correct / len(x_test)


def weights_digest(state_dict: dict[str, torch.Tensor]) -> str:
    """A short hash of a state dict's names and values."""
    h = hashlib.sha256()
    for name in sorted(state_dict):
        h.update(name.encode())
        h.update(state_dict[name].detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:12]


class ClassifierFeatures(nn.Module):
    """Features and logits of a small CNN trained once per dataset and cached on disk.

    The cache file ``classifier-<dataset>-<source>-<hash>.pt`` holds the weights and its test
    accuracy. Concurrent runs (a parallel sweep) wait on a file lock and the file is written
    by atomic rename, so exactly one process trains and all others load the same weights.
    """

    def __init__(self, dataset: str, data: LabelledSplits, cache_dir: str | Path,
                 source: str = "full", img_shape: list[int] | None = None,
                 num_classes: int = 10, **settings: Any) -> None:
        super().__init__()
        self.settings = {**CLASSIFIER_DEFAULTS, **settings}
        img_shape = list(img_shape or [1, 28, 28])
        digest = hashlib.sha256(
            json.dumps({**self.settings, "img_shape": img_shape, "classes": num_classes},
                       sort_keys=True).encode()
        ).hexdigest()[:12]
        cache = Path(cache_dir)
        cache.mkdir(parents=True, exist_ok=True)
        self.path = cache / f"classifier-{dataset}-{source}-{digest}.pt"
        with FileLock(str(self.path) + ".lock"):
            if not self.path.exists():
                log.info("training the %s feature classifier (once; cached at %s)", dataset,
                         self.path)
                start = time.perf_counter()
                state, accuracy = _train_classifier(data, self.settings, img_shape,
                                                    num_classes)
                save_atomically({"state_dict": state, "test_accuracy": accuracy,
                                 "settings": self.settings,
                                 "train_time_s": time.perf_counter() - start}, self.path)
            saved = torch.load(self.path, weights_only=True)
        self.test_accuracy = float(saved["test_accuracy"])
        log.info("feature classifier for %s: test accuracy %.2f%% (%s)", dataset,
                 100 * self.test_accuracy, self.path.name)
        self.net = SmallCNN(img_shape[0], num_classes, self.settings["width"],
                            self.settings["feature_dim"], img_shape[-1])
        self.net.load_state_dict(saved["state_dict"])
        self.net.eval().requires_grad_(False)
        self.num_features = self.settings["feature_dim"]
        self.cache_id = self.path.stem
        #: the weights themselves: classifiers trained from the same settings on two machines
        #: share a cache name but not their weights, and FIDs compare only on the same weights
        self.weights_digest = weights_digest(saved["state_dict"])

    def train(self, mode: bool = True) -> ClassifierFeatures:
        return super().train(False)  # always frozen, always in eval mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.features(x)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def features_and_logits(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Both from one pass through the network."""
        features = self.net.features(x)
        return features, self.net.head(features)


#: torch-fidelity's InceptionV3 weights (what FID's reference implementation uses)
INCEPTION_WEIGHTS = "weights-inception-2015-12-05-6726825d.pth"


class InceptionFeatures(nn.Module):
    """torchmetrics' FID InceptionV3 (pool3, 2048-d; logits for IS) on generator-range images.

    Grayscale is repeated to 3 channels and [-1, 1] is mapped and clamped to [0, 1], then
    converted to uint8 as the reference implementation expects; the resize to 299x299 uses
    ``antialias`` (fixed per run and recorded in ``metrics.json``).
    """

    def __init__(self, weights_path: str | None = None, antialias: bool = True) -> None:
        super().__init__()
        try:
            from torchmetrics.image.fid import NoTrainInceptionV3
            from torchmetrics.utilities.imports import _TORCH_FIDELITY_AVAILABLE
        except ImportError:  # pragma: no cover - depends on the install
            _TORCH_FIDELITY_AVAILABLE = False
        if not _TORCH_FIDELITY_AVAILABLE:
            raise SetupError("feature=inception needs torch-fidelity: pip install "
                             "torch-fidelity (or metrics=none)")
        if weights_path is not None and not Path(weights_path).is_file():
            raise SetupError(f"metrics: inception weights_path '{weights_path}' is not a file")
        self.antialias = antialias
        self.weights_path = weights_path
        try:
            self.net = NoTrainInceptionV3(
                name="inception-v3-compat", features_list=["2048", "logits_unbiased"],
                feature_extractor_weights_path=weights_path, antialias=antialias)
        except Exception as error:
            if weights_path is not None:
                raise
            raise SetupError(
                f"metrics: the InceptionV3 weights for FID could not be downloaded "
                f"({type(error).__name__}: {' '.join(str(error).split())[:200]}). Offline, put "
                f"torch-fidelity's file {INCEPTION_WEIGHTS} into "
                f"{Path(torch.hub.get_dir()) / 'checkpoints'}/ (found there from then on), or "
                f"anywhere and set metrics.fid.weights_path=<that file>; or train without "
                f"metrics (metrics=none)"
            ) from error
        self.num_features = 2048
        self.cache_id = (f"inception-{'antialias' if antialias else 'plain'}-"
                         f"{Path(weights_path).stem if weights_path else 'fidelity'}")

    def _prepare(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] == 1:
            x = x.repeat(1, 3, 1, 1)
        return ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features_and_logits(x)[0]

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.features_and_logits(x)[1]

    def features_and_logits(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Both from one pass through the network (in ``features_list`` order).

        torchmetrics' public ``forward`` returns the first output only; its private
        ``_torch_fidelity_forward`` returns all, with the recorded resize antialiasing. A
        torchmetrics without it falls back, with a warning, to torch-fidelity's own public
        forward (its resize, without antialiasing: FIDs then differ from the recorded
        protocol's).
        """
        one_pass = getattr(self.net, "_torch_fidelity_forward", None)
        if one_pass is None:
            from torch_fidelity.feature_extractor_inceptionv3 import (
                FeatureExtractorInceptionV3,
            )

            if not getattr(self, "_warned", False):
                warnings.warn("metrics: this torchmetrics has no _torch_fidelity_forward; "
                              "Inception runs through torch-fidelity's own forward (resize "
                              "without antialiasing)", stacklevel=2)
                self._warned = True
            one_pass = functools.partial(FeatureExtractorInceptionV3.forward, self.net)
        features, logits = one_pass(self._prepare(x))
        return features.reshape(len(x), -1), logits.reshape(len(x), -1)


def choose_feature(feature: str, img_shape: list[int], num_classes: int | None) -> str:
    """``feature``, or for ``auto`` the one that works for the dataset: the raw values of point
    data (``identity``: FID is then the Frechet distance of the fitted Gaussians), the
    classifier for labelled images, Inception for images without labels."""
    if feature != "auto":
        return feature
    if len(img_shape) == 1:
        return "identity"
    return "classifier" if num_classes else "inception"


def build_extractor(feature: str, *, dataset: str, source: str, img_shape: list[int],
                    num_classes: int | None, cache_dir: str | Path,
                    labelled_data: LabelledSplits | None = None,
                    weights_path: str | None = None, antialias: bool = True,
                    classifier: dict[str, Any] | None = None) -> nn.Module:
    """The extractor named ``feature`` (``classifier``, ``inception``, ``identity``, or ``auto``:
    see ``choose_feature``). The classifier trains on ``labelled_data`` (when not cached)."""
    feature = choose_feature(feature, img_shape, num_classes)
    if feature == "classifier":
        if not num_classes or labelled_data is None:
            raise ValueError(f"feature=classifier needs a labelled dataset; '{dataset}' has no "
                             f"classes (use feature=identity)")
        return ClassifierFeatures(dataset, labelled_data, cache_dir, source, img_shape,
                                  num_classes, **(classifier or {}))
    if feature == "inception":
        return InceptionFeatures(weights_path, antialias)
    if feature == "identity":
        return IdentityFeatures(math.prod(img_shape))
    raise ValueError(f"metrics feature '{feature}' unknown; choose auto, classifier, inception "
                     f"or identity")
