"""Sample-quality metrics: FID, IS and precision/recall on a choice of feature extractor.

Images (or features) in, numbers out: nothing here knows of training, Lightning or run
folders; the only file written is the feature classifier's cache. The callback that samples
the generator and feeds these is ``gan_lightning.callbacks.Evaluator``.
"""

from gan_lightning.metrics.features import (
    ClassifierFeatures,
    IdentityFeatures,
    build_extractor,
)
from gan_lightning.metrics.precision_recall import precision_recall
from gan_lightning.metrics.quality import SampleQuality

__all__ = [
    "ClassifierFeatures",
    "IdentityFeatures",
    "SampleQuality",
    "build_extractor",
    "precision_recall",
]
