"""The animal's body: the largest connected tissue object, closed and with its holes filled.

Used to remove the holder (CT) and the vaseline markers (MRI), and to call the air inside the
body lung (MRI). Works on small in-memory arrays; :func:`coarse_body_mask` computes it on a
block-averaged copy of a large chunked volume (the remainder voxels at the far edges, fewer than
one block, are left out; callers extend the last coarse voxel over them).
"""

from __future__ import annotations

from collections.abc import Callable

import dask.array as da
import numpy as np
from scipy import ndimage

from mousereg.morphology import ball, fill_holes, largest_component

COARSE_MM = 0.5  # voxel size of the coarse grid the body is found on


def body_from_tissue(
    tissue: np.ndarray,
    spacing_zyx: tuple[float, float, float],
    *,
    open_mm: float = 0.0,
    close_mm: float = 1.0,
) -> np.ndarray:
    """The body from a tissue mask: optional opening (cuts thin contacts), largest component,
    closing, hole filling."""
    mask = np.asarray(tissue, dtype=bool)
    if open_mm > 0:
        se = ball(tuple(open_mm / s for s in spacing_zyx))  # type: ignore[arg-type]
        opened = ndimage.binary_opening(mask, structure=se)
        core = largest_component(opened)
        # grow back inside the tissue to recover what the opening shaved off
        mask = np.asarray(ndimage.binary_dilation(core, structure=se) & mask)
    body = largest_component(mask)
    if close_mm > 0:
        se = ball(tuple(close_mm / s for s in spacing_zyx))  # type: ignore[arg-type]
        pad = [(s // 2 + 1, s // 2 + 1) for s in se.shape]
        closed = ndimage.binary_closing(np.pad(body, pad), structure=se)
        body = closed[tuple(slice(p[0], -p[1]) for p in pad)]
    return fill_holes(body)


def coarse_factors(
    spacing_zyx: tuple[float, float, float], target_mm: float = COARSE_MM
) -> tuple[int, int, int]:
    """Integer block sizes (z, y, x) that bring the spacing near ``target_mm``."""
    f = tuple(max(1, round(target_mm / s)) for s in spacing_zyx)
    return (int(f[0]), int(f[1]), int(f[2]))


def coarse_body_mask(
    data: da.Array,
    spacing_zyx: tuple[float, float, float],
    tissue: Callable[[np.ndarray], np.ndarray],
    **kwargs: float,
) -> tuple[np.ndarray, tuple[int, int, int]]:
    """The body found on a block-averaged copy of ``data``; returns it and the block factors."""
    factors = coarse_factors(spacing_zyx)
    blocks = dict(enumerate(factors))
    small = da.coarsen(np.mean, data.astype(np.float32), blocks, trim_excess=True).compute()
    coarse_spacing = tuple(s * f for s, f in zip(spacing_zyx, factors, strict=True))
    body = body_from_tissue(tissue(small), coarse_spacing, **kwargs)  # type: ignore[arg-type]
    return body, factors
