"""SimpleITK transforms for the ground truth (ITK convention: fixed = MRI, moving = CT)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def euler(matrix: np.ndarray, translation: np.ndarray) -> Any:
    """A rigid ``x -> matrix @ x + translation`` as a SimpleITK Euler3DTransform (centre 0)."""
    import SimpleITK as sitk

    t = sitk.Euler3DTransform()
    t.SetMatrix(tuple(float(v) for v in np.asarray(matrix).reshape(-1)), 1e-6)
    t.SetTranslation(tuple(float(v) for v in translation))
    return t


def composite(transforms: Sequence[Any]) -> Any:
    """``T(x) = transforms[0](transforms[1](... transforms[-1](x)))`` as a CompositeTransform."""
    import SimpleITK as sitk

    c = sitk.CompositeTransform(3)
    for t in transforms:
        c.AddTransform(t)
    return c


def apply(transform: Any, points: np.ndarray) -> np.ndarray:
    """Map points ``(N, 3)`` through a SimpleITK transform."""
    pts = np.asarray(points, float).reshape(-1, 3)
    return np.array([transform.TransformPoint(tuple(float(v) for v in p)) for p in pts])
