"""Multiscale pyramids: which axes to halve at each level, and the halving itself.

An axis is halved when its voxels are no more than 1.5 times the finest spacing (so thick
slices wait until the in-plane spacing has caught up); levels are added until every side
is below ``MAX_COARSEST`` voxels.
"""

from __future__ import annotations

import dataclasses
import math

import dask.array as da
import numpy as np

MAX_COARSEST = 64
ANISOTROPY_RATIO = 1.5


@dataclasses.dataclass(frozen=True)
class Level:
    """One pyramid level: spatial shape, factor per axis vs. the previous level, spacing, shift.

    ``shape``, ``factors``, ``spacing`` and ``offset`` are all in (z, y, x) order; ``offset`` is
    the translation of the level's first voxel centre from level 0's, in index-aligned mm.
    """

    shape: tuple[int, int, int]
    factors: tuple[int, int, int]
    spacing: tuple[float, float, float]
    offset: tuple[float, float, float]


def plan_levels(
    shape_zyx: tuple[int, int, int], spacing_zyx: tuple[float, float, float], *, labels: bool
) -> list[Level]:
    """The pyramid for a grid; level 0 is the grid itself.

    Images are block-averaged (a level's first voxel sits at the centre of its block, so the
    translation moves by half the old spacing per halved axis); label maps are subsampled
    (every other voxel, translation unchanged).
    """
    levels = [Level(shape_zyx, (1, 1, 1), spacing_zyx, (0.0, 0.0, 0.0))]
    while max(levels[-1].shape) >= MAX_COARSEST:
        prev = levels[-1]
        finest = min(s for s, n in zip(prev.spacing, prev.shape, strict=True) if n > 1)
        factors = tuple(
            2 if n > 1 and s <= ANISOTROPY_RATIO * finest else 1
            for s, n in zip(prev.spacing, prev.shape, strict=True)
        )
        shape = tuple(math.ceil(n / f) for n, f in zip(prev.shape, factors, strict=True))
        spacing = tuple(s * f for s, f in zip(prev.spacing, factors, strict=True))
        offset = tuple(
            o + (0.0 if labels else (f - 1) * s / 2)
            for o, s, f in zip(prev.offset, prev.spacing, factors, strict=True)
        )
        levels.append(Level(shape, factors, spacing, offset))  # type: ignore[arg-type]
    return levels


def downsample(data: da.Array, factors: tuple[int, int, int], *, labels: bool) -> da.Array:
    """Halve the spatial axes of ``data`` ((z,y,x) or (c,z,y,x)) by ``factors``.

    Images: mean of each block (edge voxels repeated to fill odd sizes), rounded back to the
    integer dtype. Labels: the first voxel of each block, so no new label values appear.
    """
    lead = data.ndim - 3
    if labels:
        return data[(slice(None),) * lead + tuple(slice(None, None, f) for f in factors)]
    pad = [(0, 0)] * lead + [(0, (-n) % f) for n, f in zip(data.shape[lead:], factors, strict=True)]
    if any(p[1] for p in pad):
        data = da.pad(data, pad, mode="edge")
    axes = {lead + i: f for i, f in enumerate(factors) if f > 1}
    dtype = np.dtype(data.dtype)
    mean = da.coarsen(
        np.mean,
        data.astype(np.float64 if dtype.itemsize > 4 else np.float32),
        axes,
        trim_excess=False,
    )
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        mean = da.clip(da.round(mean), info.min, info.max)
    return mean.astype(dtype)
