"""Body masks: where the animal is, to reject fat inside it and to map the predicted TRE."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

#: Smallest body (mm³): anything smaller is a marker, a blob or noise.
MIN_BODY_MM3 = 200.0


def largest_components(mask: np.ndarray, voxel_mm3: float, min_mm3: float) -> np.ndarray:
    """Components of ``mask`` of at least ``min_mm3`` (the largest one if none is)."""
    labels, n = ndimage.label(mask)
    if n == 0:
        return mask.astype(bool)
    counts = np.bincount(labels.ravel(), minlength=n + 1)
    counts[0] = 0
    keep = counts * voxel_mm3 >= min_mm3
    if not keep.any():
        keep[int(np.argmax(counts))] = True
    return np.asarray(keep[labels], dtype=bool)


def fill_slices(mask: np.ndarray) -> np.ndarray:
    """Fill enclosed holes in 3-D and slice by slice along the thinnest axis."""
    filled = ndimage.binary_fill_holes(mask)
    axis = int(np.argmin(mask.shape))
    out = np.stack([ndimage.binary_fill_holes(s) for s in np.moveaxis(filled, axis, 0)], axis=0)
    return np.moveaxis(out, 0, axis)


def body_mask_mr(signal: np.ndarray, spacing_xyz: tuple[float, float, float]) -> np.ndarray:
    """Body of an MR image (sum of channels): plastic and air give no signal.

    Threshold at a fraction of the bright level, keep body-sized components, fill enclosed holes.
    """
    voxel_mm3 = float(np.prod(spacing_xyz))
    bright = float(np.percentile(signal, 99.0))
    mask = signal > 0.2 * bright
    mask = ndimage.binary_opening(mask, iterations=1)
    return fill_slices(largest_components(mask, voxel_mm3, MIN_BODY_MM3))


def body_points(
    mask: np.ndarray, affine: np.ndarray, max_points: int = 200_000, seed: int = 0
) -> np.ndarray:
    """Physical points (LPS mm) of up to ``max_points`` voxels of ``mask`` (z, y, x)."""
    zz, yy, xx = np.nonzero(mask)
    if len(zz) > max_points:
        pick = np.random.default_rng(seed).choice(len(zz), max_points, replace=False)
        zz, yy, xx = zz[pick], yy[pick], xx[pick]
    idx = np.stack([xx, yy, zz, np.ones_like(xx)], axis=1).astype(float)
    return (idx @ affine.T)[:, :3]
