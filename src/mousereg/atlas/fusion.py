"""Label fusion for multi-atlas segmentation: majority vote and locally weighted vote.

:func:`majority_vote` and :func:`weighted_vote` take the atlas subjects' label maps warped onto
the target grid (``UNKNOWN_LABEL`` where a subject does not cover the voxel). The locally weighted
vote (Artaechevarria, Munoz-Barrutia & Ortiz-de-Solorzano 2009, IEEE TMI 28:1266) weights each
subject at each voxel by the inverse of its local mean squared intensity difference to the target
(Gaussian window), raised to a power.

:func:`soft_scores` is the form segmentation uses: each subject votes with its per-label
indicator maps warped by linear interpolation (a fraction near the boundaries, instead of a
nearest-neighbour label), so the scores can be carried onto another grid before the arg-max.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage

from mousereg.atlas import format as fmt

FUSIONS = ("majority", "weighted")
WINDOW_SIGMA_MM = 1.0
WEIGHT_POWER = 2.0


def _vote(
    label_maps: Sequence[np.ndarray], weights: Sequence[np.ndarray | float], values: Sequence[int]
) -> np.ndarray:
    shape = label_maps[0].shape
    candidates = [0, *values]
    scores = np.zeros((len(candidates), *shape), np.float32)
    for labels, w in zip(label_maps, weights, strict=True):
        for k, v in enumerate(candidates):
            scores[k] += np.where(labels == v, w, 0.0).astype(np.float32)
    lut = np.asarray(candidates, dtype=fmt.LABEL_DTYPE)
    return lut[np.argmax(scores, axis=0)]


def one_hot(labels: np.ndarray, values: Sequence[int]) -> np.ndarray:
    """``(1 + len(values), ...)`` float32 indicators of background (0) and each label value."""
    return np.stack([labels == v for v in (0, *values)]).astype(np.float32)


def soft_scores(
    soft_maps: Sequence[np.ndarray], weights: Sequence[np.ndarray | float]
) -> np.ndarray:
    """``sum_i w_i * s_i``: the fused scores of per-subject indicator maps ``(candidates, ...)``."""
    scores = np.zeros(soft_maps[0].shape, np.float32)
    for soft, w in zip(soft_maps, weights, strict=True):
        scores += soft.astype(np.float32) * np.asarray(w, np.float32)
    return scores


def majority_vote(label_maps: Sequence[np.ndarray], values: Sequence[int]) -> np.ndarray:
    """The most frequent label per voxel (ties go to the lower value; unknowns do not vote)."""
    return _vote(label_maps, [1.0] * len(label_maps), values)


def local_weights(
    images: Sequence[np.ndarray],
    target: np.ndarray,
    spacing: Sequence[float],
    sigma_mm: float = WINDOW_SIGMA_MM,
    power: float = WEIGHT_POWER,
) -> list[np.ndarray]:
    """Per-voxel weights ``(LMSD + eps)^-power`` of each warped atlas image against the target."""
    sigma = [sigma_mm / s for s in reversed(tuple(spacing))]  # (z, y, x) voxels
    scale = float(np.percentile(np.abs(target), 99)) or 1.0
    msds = [
        ndimage.gaussian_filter(((img - target) / scale) ** 2, sigma).astype(np.float32)
        for img in images
    ]
    eps = max(float(np.mean(msds)) * 1e-2, 1e-8)
    return [(m + eps) ** -power for m in msds]


def weighted_vote(
    label_maps: Sequence[np.ndarray],
    images: Sequence[np.ndarray],
    target: np.ndarray,
    spacing: Sequence[float],
    values: Sequence[int],
) -> np.ndarray:
    """The locally weighted vote of the warped label maps."""
    return _vote(label_maps, local_weights(images, target, spacing), values)
