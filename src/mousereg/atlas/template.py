"""The arithmetic of unbiased template construction on one grid (Joshi 2004, Avants 2010).

Fields are ``(z, y, x, 3)`` float32 displacements in mm (LPS, x/y/z components) on the template
grid, in ITK's convention: template point ``p`` maps to subject point ``p + u(p)``. The shape
update follows antsMultivariateTemplateConstruction2: the mean field is scaled by the negated
gradient step and applied ``compositions`` times (ANTs applies it four times), so with step 0.25
the template moves the whole way towards the group's mean shape in one iteration.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage

from mousereg.volume import Volume

GRADIENT_STEP = 0.25
COMPOSITIONS = 4
SHARPEN_BLEND = 0.75  # ANTs' blending weight: 0.75 * average + 0.25 * Laplacian-sharpened


def physical_to_voxel_offsets(field: np.ndarray, grid: Volume) -> np.ndarray:
    """A physical displacement field (mm, x/y/z) as voxel offsets ``(3, z, y, x)``, z/y/x order."""
    m = np.linalg.inv(grid.direction @ np.diag(grid.spacing))  # physical -> index (x, y, z)
    idx = field @ m.T  # (..., 3) in x, y, z index units
    return np.moveaxis(idx[..., ::-1], -1, 0)


def warp_array(
    array: np.ndarray,
    field: np.ndarray,
    grid: Volume,
    order: int = 1,
    cval: float | Sequence[float] = 0.0,
) -> np.ndarray:
    """Resample ``array`` (on ``grid``) at ``p + field(p)`` for every voxel ``p`` of ``grid``.

    ``array`` is ``(z, y, x)`` or ``(c, z, y, x)``; ``cval`` (one value, or one per channel) fills
    points that fall outside the grid. ``order`` 0 is nearest neighbour (for labels).
    """
    offsets = physical_to_voxel_offsets(field, grid)
    coords = np.indices(array.shape[-3:], dtype=np.float32) + offsets
    stack = array if array.ndim == 4 else array[None]
    fills = [float(c) for c in cval] if isinstance(cval, Sequence) else [float(cval)] * len(stack)
    out = np.stack(
        [
            ndimage.map_coordinates(a, coords, order=order, mode="constant", cval=c)
            for a, c in zip(stack, fills, strict=True)
        ]
    )
    return out if array.ndim == 4 else out[0]


def compose_fields(outer: np.ndarray, inner: np.ndarray, grid: Volume) -> np.ndarray:
    """The field of ``p -> q + outer(q)`` with ``q = p + inner(p)`` (inner applied first)."""
    moved = np.stack(
        [warp_array(outer[..., k], inner, grid, order=1, cval=0.0) for k in range(3)], axis=-1
    )
    # map_coordinates with cval=0 outside is a small error at the border only.
    return (inner + moved).astype(np.float32)


def shape_update_field(
    mean_field: np.ndarray,
    grid: Volume,
    step: float = GRADIENT_STEP,
    compositions: int = COMPOSITIONS,
) -> np.ndarray:
    """The field that moves the averaged template towards the group's mean shape."""
    update = (-step * mean_field).astype(np.float32)
    total = update.copy()
    for _ in range(compositions - 1):
        total = compose_fields(update, total, grid)
    return total


def sharpen(image: np.ndarray, blend: float = SHARPEN_BLEND) -> np.ndarray:
    """Blend an averaged template with its Laplacian-sharpened self (as ANTs' ``Sharpen``)."""
    sharp = image - ndimage.laplace(ndimage.gaussian_filter(image, 0.5))
    return (blend * image + (1.0 - blend) * sharp).astype(np.float32)


def relative_change(new: np.ndarray, old: np.ndarray) -> float:
    """``||new - old|| / ||old||`` (root mean square), the convergence measure."""
    denom = float(np.sqrt(np.mean(old.astype(np.float64) ** 2)))
    diff = float(np.sqrt(np.mean((new.astype(np.float64) - old) ** 2)))
    return diff / denom if denom > 0 else diff


def mean_gradient_magnitude(image: np.ndarray, grid: Volume, mask: np.ndarray) -> float:
    """Mean gradient magnitude (intensity per mm) inside ``mask``: the template's sharpness."""
    sx, sy, sz = grid.spacing
    gz, gy, gx = np.gradient(image.astype(np.float64), sz, sy, sx)
    mag = np.sqrt(gx**2 + gy**2 + gz**2)
    return float(mag[mask].mean()) if mask.any() else 0.0


def mean_displacement(fields: Sequence[np.ndarray], mask: np.ndarray) -> float:
    """Mean length (mm) of the average subject-to-template displacement inside ``mask``."""
    mean = np.mean(np.stack(fields), axis=0)
    length = np.linalg.norm(mean, axis=-1)
    return float(length[mask].mean()) if mask.any() else 0.0
