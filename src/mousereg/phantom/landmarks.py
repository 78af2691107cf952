"""Landmarks inside organs: points at least ~1 mm from every organ boundary, in CT and MRI space."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from mousereg.labels import LabelTable
from mousereg.phantom.motion import Pose
from mousereg.phantom.render import GridMap, tissue_at
from mousereg.phantom.shapes import Shape
from mousereg.phantom.tissues import label_lut

PER_ORGAN = 3
CANDIDATES = 400
_AXES = np.array([[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]], float)
_DIAG = np.array([[a, b, c] for a in (-1, 1) for b in (-1, 1) for c in (-1, 1)], float) * 0.6
STENCIL = np.vstack([np.zeros((1, 3)), _AXES * 1.0, _DIAG])


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
