"""Label fusion for multi-atlas segmentation: majority, locally weighted and joint votes.

:func:`majority_vote` and :func:`weighted_vote` take the atlas subjects' label maps warped onto
the target grid (``UNKNOWN_LABEL`` where a subject does not cover the voxel). The locally weighted
vote (Artaechevarria, Munoz-Barrutia & Ortiz-de-Solorzano 2009, IEEE TMI 28:1266) weights each
subject at each voxel by the inverse of its local mean squared intensity difference to the target
(Gaussian window), raised to a power.

:func:`joint_weights` are the weights of joint label fusion (Wang, Suh, Das, Pluta, Craige &
Yushkevich 2013, IEEE TPAMI 35:611), without its local patch search: at each voxel, the expected
pairwise product of two subjects' intensity errors ``M_ij = G * (|A_i - T| |A_j - T|)`` (Gaussian
window) estimates how likely the two are to be wrong together; the weights minimise the expected
squared error of the fused vote, ``w = M^-1 1 / (1^T M^-1 1)``, so two subjects that fail alike
share one vote instead of outvoting a third.

:func:`soft_scores` is the form segmentation uses: each subject votes with its per-label
indicator maps warped by linear interpolation (a fraction near the boundaries, instead of a
nearest-neighbour label), so the scores can be carried onto another grid before the arg-max.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage

from mousereg.atlas import format as fmt

FUSIONS = ("weighted", "joint", "majority")
DEFAULT_FUSION = "weighted"
#: The Gaussian window (sigma) of the local similarity, both weighted and joint fusion. Tuned on
#: the two tuning targets of docs/atlas.md (0.4 mm template grid, 7 atlas subjects): locally
#: weighted mean Dice 0.880/0.882 at 1 mm, 0.890/0.889 at 0.5 mm, 0.896/0.893 at 0.3 mm,
#: 0.897/0.892 at 0.2 mm, 0.866/0.858 at 0.1 mm.
WINDOW_SIGMA_MM = 0.3
WEIGHT_POWER = 2.0  # at 0.2-0.3 mm: power 1 level or lower, 3 lower
JOINT_RIDGE = 0.1  # added to M, relative to its mean diagonal
_SLAB = 16  # z slices per block of the joint weights (bounded memory)


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


def joint_weights(
    images: Sequence[np.ndarray],
    target: np.ndarray,
    spacing: Sequence[float],
    sigma_mm: float = WINDOW_SIGMA_MM,
    ridge: float = JOINT_RIDGE,
) -> list[np.ndarray]:
    """Per-voxel joint-label-fusion weights of each warped atlas image (they sum to 1).

    Computed in z slabs with a margin of the Gaussian's reach, so memory stays at a slab of
    ``n x n`` products whatever the volume; the result equals a whole-volume computation.
    """
    n = len(images)
    sigma = [sigma_mm / s for s in reversed(tuple(spacing))]  # (z, y, x) voxels
    margin = int(4.0 * sigma[0] + 0.5)  # scipy's Gaussian reach (truncate = 4)
    scale = float(np.percentile(np.abs(target), 99)) or 1.0
    depth = target.shape[0]
    out = [np.empty(target.shape, np.float32) for _ in range(n)]
    eye = np.eye(n, dtype=np.float64)
    for z0 in range(0, depth, _SLAB):
        z1 = min(depth, z0 + _SLAB)
        lo, hi = max(0, z0 - margin), min(depth, z1 + margin)
        errors = [np.abs(img[lo:hi] - target[lo:hi]) / scale for img in images]
        core = slice(z0 - lo, z1 - lo)
        m = np.empty((z1 - z0, *target.shape[1:], n, n), np.float64)
        for i in range(n):
            for j in range(i, n):
                prod = ndimage.gaussian_filter(errors[i] * errors[j], sigma)[core]
                m[..., i, j] = prod
                m[..., j, i] = prod
        diag = np.trace(m, axis1=-2, axis2=-1)[..., None, None] / n
        m = m / (diag + 1e-12) + ridge * eye
        w = np.linalg.solve(m, np.ones((*m.shape[:-1], 1)))[..., 0]
        w /= w.sum(axis=-1, keepdims=True)
        for k in range(n):
            out[k][z0:z1] = w[..., k]
    return out
