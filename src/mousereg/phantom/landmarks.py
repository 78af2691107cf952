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
QUICK = np.vstack([np.zeros((1, 3)), np.eye(3), -np.eye(3)]) * CLEARANCE_MM


def _all_labelled(shapes: Sequence[Shape], centres: np.ndarray, offsets: np.ndarray,
                  value: int) -> np.ndarray:  # fmt: skip
    """Whether every ``centre + offset`` carries organ label ``value``."""
    if len(centres) == 0:
        return np.zeros(0, bool)
    probe = (centres[:, None, :] + offsets[None, :, :]).reshape(-1, 3)
    labels = label_lut()[tissue_at(shapes, probe)].reshape(len(centres), len(offsets))
    return np.all(labels == value, axis=1)


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
    stride = max(1, round(0.28 / float(np.linalg.norm(ct_grid.affine[:3, 0]))))
    labels = lut[ct_tissue[::stride, ::stride, ::stride]]
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
        idx = np.stack([i, j, k], axis=1).astype(float) * stride
        holder = idx @ ct_grid.affine[:3, :3].T + ct_grid.affine[:3, 3]
        # cheap screen (centre and six axis points), then the full ball on the survivors
        screen = _all_labelled(shapes, holder, QUICK, lab.value)
        screen &= in_mr(ct_to_mr(ct_pose.apply(holder)))
        first = np.flatnonzero(screen)[: 3 * PER_ORGAN]
        ok = _all_labelled(shapes, holder[first], STENCIL, lab.value)
        good = first[ok][:PER_ORGAN]
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
