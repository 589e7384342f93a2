"""Mode coverage: which classes the generator draws, judged by the metrics' own classifier.

``class_coverage`` takes the classifier's logits for generated samples (the ones FID and IS
already computed) and the real class distribution:

- ``class_shares``: the share of samples classified as each class;
- ``class_tv``: total-variation distance of those shares from the real distribution,
  ``0.5 * sum |p_fake - p_real|`` (0: the same mix; 1: disjoint);
- ``class_kl``: ``KL(p_real || p_fake)`` in nats, the fake shares smoothed by half a sample
  per class so that a missing class gives a large, finite value rather than infinity;
- ``classes_covered``: classes whose share is at least ``floor`` times their real share
  (default a tenth: a class drawn at under a tenth of its real rate counts as dropped);
- ``class_confidence``: the classifier's mean top probability (low: samples it cannot place).

``conditional_accuracy`` scores a conditional generator: the share of samples drawn for
class ``k`` that the classifier puts in ``k``, per class and overall (the "classification
accuracy score" idea: does ``class=7`` draw sevens?).
"""

from __future__ import annotations

import torch

#: a class drawn at under this fraction of its real share counts as not covered
COVERAGE_FLOOR = 0.1


def class_coverage(logits: torch.Tensor, real_shares: torch.Tensor,
                   floor: float = COVERAGE_FLOOR) -> dict[str, float | list[float]]:
    """Coverage figures of samples with classifier ``logits`` ``(N, K)`` against the real
    class distribution ``real_shares`` ``(K,)`` (summing to 1)."""
    k = real_shares.numel()
    real = real_shares.double().cpu()
    counts = torch.bincount(logits.argmax(1).cpu(), minlength=k).double()
    shares = counts / counts.sum()
    smoothed = (counts + 0.5) / (counts.sum() + 0.5 * k)
    present = real > 0
    kl = float((real[present] * (real[present] / smoothed[present]).log()).sum())
    confidence = float(logits.double().softmax(1).max(1).values.mean())
    return {
        "class_shares": shares.tolist(),
        "class_tv": float(0.5 * (shares - real).abs().sum()),
        "class_kl": kl,
        "classes_covered": int((shares >= floor * real - 1e-12)[present].sum()),
        "class_confidence": confidence,
    }


def conditional_accuracy(logits: torch.Tensor, requested: torch.Tensor,
                         num_classes: int) -> dict[str, float | list[float]]:
    """How often the classifier finds the class each sample was drawn for: overall and per
    requested class (NaN for a class never requested)."""
    hit = (logits.argmax(1).cpu() == requested.cpu()).double()
    per_class = [float(hit[requested.cpu() == c].mean()) if bool((requested == c).any())
                 else float("nan") for c in range(num_classes)]
    return {"cond_accuracy": float(hit.mean()), "cond_accuracy_per_class": per_class}
