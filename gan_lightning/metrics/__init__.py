"""Sample-quality metrics: FID, IS and precision/recall on a choice of feature extractor."""

from gan_lightning.metrics.evaluator import Evaluator
from gan_lightning.metrics.features import (
    ClassifierFeatures,
    IdentityFeatures,
    build_extractor,
)
from gan_lightning.metrics.precision_recall import precision_recall

__all__ = [
    "ClassifierFeatures",
    "Evaluator",
    "IdentityFeatures",
    "build_extractor",
    "precision_recall",
]
