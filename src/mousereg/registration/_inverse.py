"""Numerical inversion of a deformable transform on a grid, and its inverse consistency.

For ``T = (linear parts) ∘ (deformation)`` with linear part ``x -> A x + b``, the inverse on a
grid ``y`` of the moving space solves ``T(S(y)) = y`` by the preconditioned fixed-point iteration
``S <- S - A⁻¹ (T(S) - y)`` (converged points leave the active set), slab by slab so that memory
stays bounded, and stores ``r(y) = A S(y) + b - y`` so that ``T⁻¹ = L⁻¹ ∘ (I + r)`` stays exact
outside the grid wherever the deformation is zero.
"""

from __future__ import annotations

from typing import Protocol

import dask.array as da
import numpy as np

from mousereg.resample import grid_columns
from mousereg.volume import Volume

INVERSE_SLAB_POINTS = 1 << 20  # points per slab (bounds memory)


class PointMapping(Protocol):
    """Anything that maps ``(N, 3)`` physical points (a ``Transform``)."""

    def transform_columns(self, points: np.ndarray) -> np.ndarray:
        """Map ``(3, N)`` points, mm."""
        ...


def grid_volume(reference: Volume, spacing: float | None) -> Volume:
    """A lazy volume on ``reference``'s grid, or on the same extent at ``spacing`` mm."""
    if spacing is None:
        return Volume(
            data=da.zeros(reference.shape, dtype=np.float32, chunks=64),
            spacing=reference.spacing,
            origin=reference.origin,
            direction=reference.direction,
        )
    extent = (np.asarray(reference.size) - 1) * np.asarray(reference.spacing)
    size = np.maximum(np.ceil(extent / spacing).astype(int) + 1, 2)
    step = extent / np.maximum(size - 1, 1)
    step = np.where(step > 0, step, spacing)
    return Volume(
        data=da.zeros(tuple(int(s) for s in size[::-1]), dtype=np.float32, chunks=64),
        spacing=tuple(step),
        origin=reference.origin,
        direction=reference.direction,
    )


def _slabs(grid: Volume) -> list[tuple[slice, slice, slice]]:
    nz, ny, nx = grid.shape
    per = max(1, INVERSE_SLAB_POINTS // max(1, ny * nx))
    return [(slice(z, min(z + per, nz)), slice(0, ny), slice(0, nx)) for z in range(0, nz, per)]


def inverse_residual_field(
    t: PointMapping,
    grid: Volume,
    a: np.ndarray,
    b: np.ndarray,
    a_inv: np.ndarray,
    iterations: int,
    tolerance_mm: float,
) -> np.ndarray:
    """``r(y) = L(S(y)) - y`` on ``grid`` with ``T(S(y)) = y`` solved by fixed-point iteration."""
    nz, ny, nx = grid.shape
    out = np.zeros((3, nz, ny, nx), dtype=np.float64)
    for sl in _slabs(grid):
        y = grid_columns(grid, sl)
        s = a_inv @ (y - b[:, None])
        active = np.arange(y.shape[1])  # points not yet converged
        for _ in range(iterations):
            err = t.transform_columns(s[:, active]) - y[:, active]
            moving = np.sqrt((err**2).sum(axis=0)) >= tolerance_mm
            active, err = active[moving], err[:, moving]
            if not len(active):
                break
            s[:, active] -= a_inv @ err
        r = a @ s + b[:, None] - y
        shape = tuple(x.stop - x.start for x in sl)
        out[(slice(None), *sl)] = r.reshape((3, *shape))
    return out


def consistency(t: PointMapping, inv: PointMapping, grid: Volume) -> dict[str, float]:
    """Mean and max of ``|T(T⁻¹(p)) - p|`` over grid nodes and cell centres (mm)."""
    total, count, worst = 0.0, 0, 0.0
    for sl in _slabs(grid):
        nodes = grid_columns(grid, sl)
        inner = (slice(sl[0].start, min(sl[0].stop, grid.shape[0] - 1)), *(
            slice(0, n - 1) for n in grid.shape[1:]
        ))  # fmt: skip
        centres = np.empty((3, 0))
        if all(s.stop > s.start for s in inner):
            half = grid.direction @ (0.5 * np.asarray(grid.spacing))
            centres = grid_columns(grid, inner) + half[:, None]  # type: ignore[arg-type]
        for pts in (nodes, centres):
            if pts.shape[1] == 0:
                continue
            back = t.transform_columns(inv.transform_columns(pts))
            d = np.sqrt(((back - pts) ** 2).sum(axis=0))
            total += float(d.sum())
            count += d.size
            worst = max(worst, float(d.max()))
    return {"mean_mm": total / max(count, 1), "max_mm": worst}
