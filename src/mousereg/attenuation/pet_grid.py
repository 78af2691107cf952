"""Bringing a µ-map to PET resolution: Gaussian smoothing (chunked) and resampling onto a PET grid.

Smoothing runs block by block (``dask.array.map_overlap`` with a 4σ halo), so it equals the
in-memory ``scipy.ndimage.gaussian_filter`` everywhere. Resampling onto a coarser grid without an
explicit ``fwhm`` first applies an anti-alias Gaussian whose FWHM is the target voxel size, so a
µ-map keeps its line integrals.
"""

from __future__ import annotations

import math

import dask.array as da
import numpy as np
from scipy import ndimage

from mousereg.errors import InputError
from mousereg.volume import Volume

FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))


def _sigmas_zyx(fwhm_mm: float, spacing_xyz: tuple[float, float, float]) -> tuple[float, ...]:
    return tuple(fwhm_mm / FWHM_PER_SIGMA / s for s in reversed(spacing_xyz))


def smooth(volume: Volume, fwhm_mm: float) -> Volume:
    """Gaussian smoothing to an isotropic resolution ``fwhm_mm`` (mm), chunk by chunk."""
    if fwhm_mm < 0:
        msg = f"--fwhm {fwhm_mm}: the resolution must be >= 0 mm"
        raise InputError(msg)
    if fwhm_mm == 0:
        return volume
    sigmas = _sigmas_zyx(fwhm_mm, volume.spacing)
    depth = tuple(min(math.ceil(4 * s), n - 1) for s, n in zip(sigmas, volume.shape, strict=True))

    def _filter(block: np.ndarray) -> np.ndarray:
        return ndimage.gaussian_filter(block, sigmas, mode="nearest").astype(block.dtype)

    data = da.map_overlap(_filter, volume.data, depth=depth, boundary="nearest", dtype=volume.dtype)
    return volume.with_array(data)


def grid_with_spacing(volume: Volume, spacing_mm: float) -> Volume:
    """An empty grid over the same field of view with isotropic ``spacing_mm`` voxels."""
    if spacing_mm <= 0:
        msg = f"--spacing {spacing_mm}: the voxel size must be > 0 mm"
        raise InputError(msg)
    extent = np.asarray(volume.size) * np.asarray(volume.spacing)
    size_xyz = np.maximum(1, np.round(extent / spacing_mm)).astype(int)
    # keep the field of view's centre: first voxel centre half a new voxel in from the old edge
    edge = volume.index_to_physical([-0.5, -0.5, -0.5])
    origin = edge + volume.direction @ np.full(3, spacing_mm / 2.0)
    shape_zyx = (int(size_xyz[2]), int(size_xyz[1]), int(size_xyz[0]))
    return Volume(
        da.zeros(shape_zyx, dtype=np.float32, chunks=64),
        spacing=(spacing_mm,) * 3,
        origin=tuple(origin),
        direction=volume.direction,
    )


def resample_like(volume: Volume, grid: Volume, *, antialias: bool = True) -> Volume:
    """``volume`` linearly interpolated onto ``grid`` (same physical space; 0 outside), chunked."""
    from mousereg.registration import Transform
    from mousereg.resample import resample

    src = volume
    if antialias and max(grid.spacing) > 1.2 * max(volume.spacing):
        src = smooth(volume, max(grid.spacing))
    out = resample(src, grid, Transform.identity(), interpolation="linear", default_value=0.0)
    return out.with_array(out.data.astype(np.float32), modality=volume.modality)
