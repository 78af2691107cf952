"""Body masks: where the animal is, to reject fat inside it and to map the predicted TRE."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import ndimage

#: Smallest body (mm³): anything smaller is a marker, a blob or noise.
MIN_BODY_MM3 = 200.0


#: Body masks are computed on a grid strided to about this spacing (mm).
BODY_GRID_MM = 0.45


def strided(arr: np.ndarray, step: int | tuple[int, int, int]) -> np.ndarray:
    """Every ``step``-th voxel along each axis, ``step`` per axis in (z, y, x) order (a view)."""
    sz, sy, sx = (step,) * 3 if isinstance(step, int) else step
    return arr[::sz, ::sy, ::sx]


def body_steps(spacing_xyz: tuple[float, float, float]) -> tuple[int, int, int]:
    """Strides (z, y, x) that bring the grid to about ``BODY_GRID_MM``."""
    sx, sy, sz = (max(1, round(BODY_GRID_MM / s)) for s in spacing_xyz)
    return (sz, sy, sx)


def strided_affine(affine: np.ndarray, steps_zyx: tuple[int, int, int]) -> np.ndarray:
    """The index -> LPS affine of the grid strided by ``steps_zyx``."""
    return affine @ np.diag([steps_zyx[2], steps_zyx[1], steps_zyx[0], 1.0])


def upsample(
    mask: np.ndarray, steps_zyx: tuple[int, int, int], shape: tuple[int, ...]
) -> np.ndarray:
    """A strided mask repeated back onto the full grid of ``shape`` (z, y, x)."""
    out = mask
    for axis, s in enumerate(steps_zyx):
        if s > 1:
            out = np.repeat(out, s, axis=axis)
    return out[: shape[0], : shape[1], : shape[2]]


def body_fraction(
    body: np.ndarray,
    steps_zyx: tuple[int, int, int],
    weights: np.ndarray,
    offset_zyx: tuple[int, int, int],
) -> float:
    """Fraction of a crop's positive weight that lies in the (strided) body mask."""
    zz, yy, xx = np.nonzero(weights > 0)
    if len(zz) == 0:
        return 0.0
    w = weights[zz, yy, xx]
    idx = [
        np.clip((c + o) // s, 0, n - 1)
        for c, o, s, n in zip((zz, yy, xx), offset_zyx, steps_zyx, body.shape, strict=True)
    ]
    return float((w * body[idx[0], idx[1], idx[2]]).sum() / w.sum())


def largest_components(mask: np.ndarray, voxel_mm3: float, min_mm3: float) -> np.ndarray:
    """Components of ``mask`` of at least ``min_mm3`` (none: an empty mask)."""
    labels, n = ndimage.label(mask)
    if n == 0:
        return mask.astype(bool)
    counts = np.bincount(labels.ravel(), minlength=n + 1)
    counts[0] = 0
    keep = counts * voxel_mm3 >= min_mm3
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
    mask: np.ndarray, affine: np.ndarray, max_points: int = 50_000, seed: int = 0
) -> np.ndarray:
    """Physical points (LPS mm) of up to ``max_points`` voxels of ``mask`` (z, y, x)."""
    zz, yy, xx = np.nonzero(mask)
    if len(zz) > max_points:
        pick = np.random.default_rng(seed).choice(len(zz), max_points, replace=False)
        zz, yy, xx = zz[pick], yy[pick], xx[pick]
    idx = np.stack([xx, yy, zz, np.ones_like(xx)], axis=1).astype(float)
    return (idx @ affine.T)[:, :3]


def mapped_fraction(
    mask_a: np.ndarray,
    affine_a: np.ndarray,
    mask_b: np.ndarray,
    affine_b: np.ndarray,
    mapping: Callable[[np.ndarray], np.ndarray],
    tolerance_voxels: int = 1,
) -> float:
    """Fraction of the voxels of ``mask_a`` that ``mapping`` (a -> b) sends into ``mask_b``.

    Only points landing inside ``b``'s grid count (a slab covers part of a whole-body scan);
    ``mask_b`` is dilated by ``tolerance_voxels`` first. NaN when nothing lands in the grid.
    """
    zz, yy, xx = np.nonzero(mask_a)
    if len(zz) == 0:
        return float("nan")
    pts = (np.stack([xx, yy, zz, np.ones_like(xx)], axis=1) @ affine_a.T)[:, :3]
    inv = np.linalg.inv(affine_b)
    idx = np.rint(mapping(pts) @ inv[:3, :3].T + inv[:3, 3]).astype(int)
    inside = np.all((idx >= 0) & (idx < np.array(mask_b.shape[::-1])), axis=1)
    if not inside.any():
        return float("nan")
    grown = (
        ndimage.binary_dilation(mask_b, iterations=tolerance_voxels) if tolerance_voxels else mask_b
    )
    hit = grown[idx[inside, 2], idx[inside, 1], idx[inside, 0]]
    return float(hit.mean())
