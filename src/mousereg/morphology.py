"""Binary morphology shared by the body masks of every stage (numpy in, numpy out)."""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage


def ball(radius_vox: tuple[float, float, float]) -> np.ndarray:
    """An ellipsoidal structuring element with the given radii (z, y, x) in voxels."""
    r = [max(0, math.floor(v)) for v in radius_vox]
    grids = np.ogrid[-r[0] : r[0] + 1, -r[1] : r[1] + 1, -r[2] : r[2] + 1]
    q = np.zeros([2 * n + 1 for n in r])
    for g, v in zip(grids, radius_vox, strict=True):
        if v > 0:
            q = q + (g / v) ** 2
    return np.asarray(q <= 1.0)


def ball_mm(radius_mm: float, spacing_zyx: np.ndarray) -> np.ndarray:
    """A ball of ``radius_mm`` on a grid of spacing ``spacing_zyx`` (mm, z, y, x)."""
    radii = np.asarray(radius_mm, dtype=float) / np.asarray(spacing_zyx, dtype=float)
    return ball((float(radii[0]), float(radii[1]), float(radii[2])))


def largest_component(mask: np.ndarray) -> np.ndarray:
    """The largest 6-connected component of ``mask`` (empty stays empty)."""
    lab, n = ndimage.label(mask)
    if n == 0:
        return np.zeros_like(mask, dtype=bool)
    sizes = np.bincount(lab.ravel())
    sizes[0] = 0
    return np.asarray(lab == int(np.argmax(sizes)))


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """3-D hole filling, then 2-D slice by slice along every axis (closes open airways)."""
    out = np.asarray(ndimage.binary_fill_holes(mask))
    for axis in range(3):
        moved = np.moveaxis(out, axis, 0)
        filled = np.stack([ndimage.binary_fill_holes(s) for s in moved])
        out = np.moveaxis(filled, 0, axis) | out
    return out
