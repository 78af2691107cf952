"""Vectorised point mapping through SimpleITK transforms (no Python loop over points).

Each SimpleITK transform becomes a list of steps in application order; a step maps a ``(3, N)``
array of LPS points in mm (one row per coordinate x, y, z: row-wise arithmetic is many times
faster than ``(N, 3) @ (3, 3)`` in numpy). Linear transforms use their matrix exactly, displacement
fields and B-splines are evaluated with :func:`scipy.ndimage.map_coordinates` on the field arrays
with ITK's own rules (interpolation, support, behaviour outside the field), so the result equals
``TransformPoint`` point by point.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

PointMap = Callable[[np.ndarray], np.ndarray]


def flatten(transform: sitk.Transform) -> list[sitk.Transform]:
    """The elementary transforms of ``transform`` in the order they are applied to a point."""
    t = transform.Downcast() if type(transform) is sitk.Transform else transform
    if isinstance(t, sitk.CompositeTransform):
        parts: list[sitk.Transform] = []
        # ITK applies the last-added transform first.
        for i in reversed(range(t.GetNumberOfTransforms())):
            parts.extend(flatten(t.GetNthTransform(i)))
        return parts
    return [t]


def linear_parts(transform: sitk.Transform) -> tuple[np.ndarray, np.ndarray]:
    """``(A, b)`` with ``T(x) = A @ x + b`` for a linear, non-composite transform."""
    t = transform.Downcast() if type(transform) is sitk.Transform else transform
    if isinstance(t, sitk.TranslationTransform):
        return np.eye(3), np.asarray(t.GetOffset(), dtype=float)
    if hasattr(t, "GetMatrix") and hasattr(t, "GetCenter"):
        a = np.array(t.GetMatrix(), dtype=np.float64).reshape(3, 3)
        c = np.array(t.GetCenter(), dtype=np.float64)
        tr = np.array(getattr(t, "GetTranslation")(), dtype=np.float64)  # noqa: B009
        return a, tr + c - a @ c
    # Any other linear transform: read the matrix off the images of the unit points.
    b = np.asarray(t.TransformPoint((0.0, 0.0, 0.0)), dtype=float)
    cols = [np.asarray(t.TransformPoint(tuple(e)), dtype=float) - b for e in np.eye(3)]
    return np.stack(cols, axis=1), b


def _physical_to_index_zyx(image: sitk.Image, points: np.ndarray) -> np.ndarray:
    """``(3, N)`` physical points -> ``(3, N)`` continuous indices in (z, y, x) order."""
    origin = np.asarray(image.GetOrigin(), dtype=float)
    direction = np.asarray(image.GetDirection(), dtype=float).reshape(3, 3)
    spacing = np.asarray(image.GetSpacing(), dtype=float)
    m = (direction.T / spacing[:, None])[::-1]  # rows: z, y, x
    return m @ points - (m @ origin)[:, None]


def _displacement_step(transform: sitk.DisplacementFieldTransform) -> PointMap:
    field_img = transform.GetDisplacementField()
    field = sitk.GetArrayFromImage(field_img)  # (z, y, x, 3)
    comps = [np.ascontiguousarray(field[..., k], dtype=float) for k in range(3)]
    shape = np.asarray(field.shape[:3], dtype=float)

    def step(points: np.ndarray) -> np.ndarray:
        idx = _physical_to_index_zyx(field_img, points)
        # ITK: inside the buffer means -0.5 <= index < size - 0.5; outside, no displacement.
        inside = np.all((idx >= -0.5) & (idx < shape[:, None] - 0.5), axis=0)
        out = points.copy()
        if inside.all():
            for k in range(3):
                out[k] += ndimage.map_coordinates(comps[k], idx, order=1, mode="nearest")
        elif inside.any():
            sub = idx[:, inside]
            for k in range(3):
                out[k, inside] += ndimage.map_coordinates(comps[k], sub, order=1, mode="nearest")
        return out

    return step


def _bspline_step(transform: sitk.BSplineTransform) -> PointMap:
    images = transform.GetCoefficientImages()
    order = int(transform.GetOrder())
    coeffs = [sitk.GetArrayFromImage(im).astype(float) for im in images]
    size = np.asarray(coeffs[0].shape, dtype=float)
    lo = 0.5 * (order - 1)
    hi = size - 0.5 * (order - 1) - 1.0

    def step(points: np.ndarray) -> np.ndarray:
        idx = _physical_to_index_zyx(images[0], points)
        # ITK's valid region: the whole spline support lies on the coefficient grid.
        inside = np.all((idx >= lo) & (idx < hi[:, None]), axis=0)
        out = points.copy()
        if inside.any():
            sub = idx[:, inside]
            for k in range(3):
                out[k, inside] += ndimage.map_coordinates(
                    coeffs[k], sub, order=order, prefilter=False, mode="nearest"
                )
        return out

    return step


def _generic_step(transform: sitk.Transform) -> PointMap:
    """Fallback for rare transform kinds without array parameters (point by point in ITK)."""

    def step(points: np.ndarray) -> np.ndarray:
        return np.array([transform.TransformPoint(tuple(p)) for p in points.T], dtype=float).T

    return step


def affine_step(a: np.ndarray, b: np.ndarray) -> PointMap:
    """``x -> A x + b`` on ``(3, N)`` points."""
    bb = np.asarray(b, dtype=float)[:, None]
    return lambda points: a @ points + bb


def make_step(transform: sitk.Transform) -> PointMap:
    """A vectorised point map for one elementary (non-composite) transform."""
    if transform.IsLinear():
        return affine_step(*linear_parts(transform))
    if isinstance(transform, sitk.DisplacementFieldTransform):
        return _displacement_step(transform)
    if isinstance(transform, sitk.BSplineTransform):
        return _bspline_step(transform)
    return _generic_step(transform)
