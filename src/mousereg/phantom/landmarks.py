"""Landmarks inside organs: points 0.75 mm or more from any organ boundary, in CT and MRI."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from mousereg.labels import LabelTable
from mousereg.phantom.motion import Pose
from mousereg.phantom.render import GridMap, tissue_at
from mousereg.phantom.shapes import Shape
from mousereg.phantom.tissues import label_lut

PER_ORGAN = 8
CANDIDATES = 120
CLEARANCE_MM = 0.75  # every point of a ball of this radius carries the landmark's label


def _ball(radius: float, step: float = 0.25) -> np.ndarray:
    ticks = np.arange(-radius, radius + 1e-9, step)
    grid = np.stack(np.meshgrid(ticks, ticks, ticks, indexing="ij"), axis=-1).reshape(-1, 3)
    return grid[np.sum(grid * grid, axis=1) <= radius**2 + 1e-9]


STENCIL = _ball(CLEARANCE_MM)


def organ_landmarks(
    shapes: Sequence[Shape],
    ct_tissue: np.ndarray,
    ct_grid: GridMap,
    ct_pose: Pose,
    ct_to_mr: Callable[[np.ndarray], np.ndarray],
    in_mr: Callable[[np.ndarray], np.ndarray],
    rng: np.random.Generator,
) -> dict[str, np.ndarray]:
    """Up to :data:`PER_ORGAN` landmarks per organ label: ``name``, ``label``, ``ct``, ``mr``.

    Landmarks lie inside both scans (``in_mr`` tells which MRI points are inside the slab).
    """
    lut = label_lut()
    labels = lut[ct_tissue]
    table = LabelTable.default()
    names: list[str] = []
    values: list[int] = []
    points: list[np.ndarray] = []
    for lab in table:
        flat = np.flatnonzero(labels == lab.value)
        if flat.size == 0:
            continue
        pick = np.sort(rng.choice(flat, size=min(CANDIDATES, flat.size), replace=False))
        k, j, i = np.unravel_index(pick, labels.shape)
        idx = np.stack([i, j, k], axis=1).astype(float)
        holder = idx @ ct_grid.affine[:3, :3].T + ct_grid.affine[:3, 3]
        probe = (holder[:, None, :] + STENCIL[None, :, :]).reshape(-1, 3)
        probe_labels = lut[tissue_at(shapes, probe)].reshape(len(holder), len(STENCIL))
        ok = np.all(probe_labels == lab.value, axis=1) & in_mr(ct_to_mr(ct_pose.apply(holder)))
        good = np.flatnonzero(ok)[:PER_ORGAN]
        for n, g in enumerate(good):
            names.append(f"{lab.name.replace(' ', '_')}_{n + 1}")
            values.append(lab.value)
            points.append(holder[g])
    holder_pts = np.array(points, float).reshape(-1, 3)
    ct = ct_pose.apply(holder_pts)
    return {
        "name": np.array(names, dtype=str),
        "label": np.array(values, dtype=np.uint8),
        "ct": ct,
        "mr": ct_to_mr(ct),
    }
