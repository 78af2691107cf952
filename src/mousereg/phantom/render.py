"""Paint solids onto a voxel grid: the tissue id of every voxel centre.

A :class:`GridMap` gives the holder-frame position of each voxel of a grid (for the CT an affine
map; for the MRI the affine map plus the soft-tissue displacement). Rendering walks the grid in
slabs of slices; each solid is evaluated only inside the index box its bounding box covers, and
later solids overwrite earlier ones. Slabs run on two threads (numpy releases the GIL).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from mousereg.phantom.shapes import Shape
from mousereg.phantom.tissues import tid

Warp = Callable[[int, np.ndarray], np.ndarray]
SLAB = 16  # slices per work item (fewer items, less per-shape overhead)
THREADS = 2


@dataclasses.dataclass(frozen=True)
class GridMap:
    """Voxel index ``(x, y, z)`` -> holder-frame point.

    ``affine`` (4×4) is the map without deformation; ``warp(z0, points)`` (optional) returns
    the deformed points of the slab that starts at slice ``z0`` from their affine points;
    ``margin`` (mm) bounds how far the warp moves a point.
    """

    shape: tuple[int, int, int]  # (z, y, x)
    affine: np.ndarray
    warp: Warp | None = None
    margin: float = 0.0

    def points(self, z0: int, z1: int) -> np.ndarray:
        """Holder-frame points of slices ``z0:z1``, shape ``(z1-z0, ny, nx, 3)`` float32."""
        _, ny, nx = self.shape
        pts = _box_points(self, (slice(z0, z1), slice(0, ny), slice(0, nx)))
        if self.warp is not None:
            pts = self.warp(z0, pts).astype(np.float32)
        return pts

    def index_box(self, lo: np.ndarray, hi: np.ndarray) -> tuple[slice, slice, slice] | None:
        """Index slices (z, y, x) that can hold points of the box ``lo``–``hi``."""
        corners = np.array([[a, b, c] for a in (lo[0], hi[0]) for b in (lo[1], hi[1])
                            for c in (lo[2], hi[2])])  # fmt: skip
        inv = np.linalg.inv(self.affine)
        idx = corners @ inv[:3, :3].T + inv[:3, 3]
        step = np.linalg.norm(self.affine[:3, :3], axis=0)
        pad = self.margin / step + 1.0
        first = np.floor(idx.min(axis=0) - pad).astype(int)
        last = np.ceil(idx.max(axis=0) + pad).astype(int) + 1
        size = np.array(self.shape[::-1])
        first = np.clip(first, 0, size)
        last = np.clip(last, 0, size)
        if np.any(last <= first):
            return None
        return (slice(first[2], last[2]), slice(first[1], last[1]), slice(first[0], last[0]))


def _box_points(grid: GridMap, sl: tuple[slice, slice, slice]) -> np.ndarray:
    """Affine points of an index box by broadcasting (no warp)."""
    a = grid.affine.astype(np.float32)
    k = np.arange(sl[0].start, sl[0].stop, dtype=np.float32)[:, None, None, None] * a[:3, 2]
    j = np.arange(sl[1].start, sl[1].stop, dtype=np.float32)[None, :, None, None] * a[:3, 1]
    i = np.arange(sl[2].start, sl[2].stop, dtype=np.float32)[None, None, :, None] * a[:3, 0]
    return (k + j) + (i + a[:3, 3])


def _paint_slab(shapes: Sequence[Shape], grid: GridMap, z0: int, z1: int) -> np.ndarray:
    _, ny, nx = grid.shape
    out = np.full((z1 - z0, ny, nx), tid("air"), np.uint8)
    pts: np.ndarray | None = None
    for shape in shapes:
        box = grid.index_box(*shape.bbox)
        if box is None or box[0].stop <= z0 or box[0].start >= z1:
            continue
        zs = slice(max(box[0].start, z0), min(box[0].stop, z1))
        sl = (slice(zs.start - z0, zs.stop - z0), box[1], box[2])
        if grid.warp is None:
            sub = _box_points(grid, (zs, box[1], box[2]))
        else:
            if pts is None:
                pts = grid.points(z0, z1)
            sub = pts[sl]
        t = shape.tissue(sub)
        np.copyto(out[sl], t.astype(np.uint8), where=t >= 0)
    return out


def paint(shapes: Sequence[Shape], grid: GridMap, slab: int | None = None) -> np.ndarray:
    """The tissue id (uint8) at every voxel centre of ``grid``, shape ``(z, y, x)``.

    ``slab`` (slices per work item) defaults to :data:`SLAB`, less for thin grids so that every
    thread gets at least two items; the result does not depend on it.
    """
    nz = grid.shape[0]
    step = slab or max(4, min(SLAB, -(-nz // (2 * THREADS))))
    starts = list(range(0, nz, step))

    def work(z0: int) -> np.ndarray:
        return _paint_slab(shapes, grid, z0, min(z0 + step, nz))

    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        parts = list(pool.map(work, starts))
    return np.concatenate(parts, axis=0)


def tissue_at(shapes: Sequence[Shape], points: np.ndarray) -> np.ndarray:
    """The tissue id at arbitrary holder-frame points ``(N, 3)``."""
    pts = np.asarray(points, np.float32).reshape(-1, 3)
    out = np.full(len(pts), tid("air"), np.uint8)
    for shape in shapes:
        lo, hi = shape.bbox
        sel = np.all((pts >= lo) & (pts <= hi), axis=1)
        if not sel.any():
            continue
        t = shape.tissue(pts[sel])
        cur = out[sel]
        out[sel] = np.where(t >= 0, t, cur).astype(np.uint8)
    return out
