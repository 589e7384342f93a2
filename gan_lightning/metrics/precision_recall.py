"""Improved precision and recall (Kynkaanniemi et al., 2019) on feature vectors.

Each set's manifold is the union of balls around its points, each ball reaching that point's
k-th nearest neighbour in the same set. Precision: the share of fake points inside the real
manifold (sample quality). Recall: the share of real points inside the fake manifold
(coverage; a collapsed generator has recall near 0).
"""

import torch


def knn_radii(features: torch.Tensor, k: int = 3, chunk: int = 1024) -> torch.Tensor:
    """Distance from each row to its k-th nearest other row. ``(N, D) -> (N,)``."""
    radii = []
    for start in range(0, len(features), chunk):
        d = torch.cdist(features[start : start + chunk], features)
        # k + 1 smallest: the point itself (distance 0) comes first
        radii.append(d.topk(k + 1, dim=1, largest=False).values[:, k])
    return torch.cat(radii)


def coverage(points: torch.Tensor, centres: torch.Tensor, radii: torch.Tensor,
             chunk: int = 1024) -> float:
    """Share of ``points`` inside at least one ball ``(centres[i], radii[i])``."""
    inside = 0
    for start in range(0, len(points), chunk):
        d = torch.cdist(points[start : start + chunk], centres)
        inside += int((d <= radii.unsqueeze(0)).any(dim=1).sum())
    return inside / len(points)


def precision_recall(
    real: torch.Tensor, fake: torch.Tensor, k: int = 3, real_radii: torch.Tensor | None = None
) -> tuple[float, float]:
    """``(precision, recall)`` of ``fake`` against ``real`` features, both ``(N, D)``.

    ``real_radii`` may be passed in when the real set is fixed across evaluations.
    """
    real, fake = real.float(), fake.float()
    if real_radii is None:
        real_radii = knn_radii(real, k)
    precision = coverage(fake, real, real_radii)
    recall = coverage(real, fake, knn_radii(fake, k))
    return precision, recall
