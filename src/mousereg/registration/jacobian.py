"""Jacobian determinant statistics of a displacement field (folding check).

A transform ``T(p) = p + u(p)`` folds space where ``det(I + ∂u/∂p) <= 0``. The field is a
SimpleITK vector image (or a ``(z, y, x, 3)`` array with its grid) in physical mm; derivatives are
central differences along the index axes, mapped to physical axes through spacing and direction.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from mousereg.errors import InputError

if TYPE_CHECKING:
    import SimpleITK as sitk

PERCENTILES = (0.1, 1.0, 5.0, 50.0, 95.0, 99.0, 99.9)


def jacobian_determinant(
    field_zyx3: npt.ArrayLike, spacing: npt.ArrayLike, direction: npt.ArrayLike
) -> np.ndarray:
    """Per-voxel ``det(I + ∂u/∂p)`` of a displacement field.

    Args:
        field_zyx3: displacement array ``(z, y, x, 3)``, components ``(x, y, z)`` in mm.
        spacing: grid spacing ``(x, y, z)`` in mm.
        direction: 3×3 direction matrix (SimpleITK layout).

    Returns:
        ``(z, y, x)`` float32 determinants.
    """
    u = np.asarray(field_zyx3, dtype=np.float32)
    if u.ndim != 4 or u.shape[-1] != 3:
        msg = f"a displacement field must be (z, y, x, 3), got shape {u.shape}"
        raise InputError(msg)
    if min(u.shape[:3]) < 2:
        msg = f"a displacement field needs at least 2 voxels per axis, got {u.shape[:3]}"
        raise InputError(msg)
    index_to_phys = np.asarray(direction, dtype=float).reshape(3, 3) @ np.diag(
        np.asarray(spacing, dtype=float)
    )
    inv = np.linalg.inv(index_to_phys).astype(np.float32)  # d(index)/d(physical)
    # grads[c][j]: ∂u_c/∂index_j with j in (x, y, z) order; array axes are (z, y, x).
    jac = np.empty((*u.shape[:3], 3, 3), dtype=np.float32)
    for c in range(3):
        gz, gy, gx = np.gradient(u[..., c])
        by_index = np.stack([gx, gy, gz], axis=-1)
        jac[..., c, :] = by_index @ inv
    jac += np.eye(3, dtype=np.float32)
    return np.linalg.det(jac).astype(np.float32)


def field_to_array(field: sitk.Image) -> tuple[np.ndarray, tuple[float, ...], np.ndarray]:
    """A SimpleITK displacement image as ``(array (z,y,x,3), spacing, direction)``."""
    import SimpleITK as sitk

    if field.GetNumberOfComponentsPerPixel() != 3 or field.GetDimension() != 3:
        msg = "a displacement field must be a 3-D image with 3 components per voxel"
        raise InputError(msg)
    arr = sitk.GetArrayViewFromImage(field)
    return (
        np.asarray(arr, dtype=np.float32),
        tuple(field.GetSpacing()),
        np.asarray(field.GetDirection()).reshape(3, 3),
    )


def jacobian_statistics(field: sitk.Image, mask: npt.ArrayLike | None = None) -> dict[str, Any]:
    """Summary of the Jacobian determinant of a displacement field.

    Args:
        field: SimpleITK displacement field (vector image, mm).
        mask: optional ``(z, y, x)`` boolean array on the field's grid; statistics only inside.

    Returns:
        ``min``, ``max``, ``mean``, percentiles ``p0.1 … p99.9``, ``n_folding`` (voxels with a
        determinant ``<= 0``), ``folding_fraction`` and ``n_voxels``.
    """
    arr, spacing, direction = field_to_array(field)
    det = jacobian_determinant(arr, spacing, direction)
    values = det[np.asarray(mask, dtype=bool)] if mask is not None else det.reshape(-1)
    if values.size == 0:
        msg = "the mask for the Jacobian statistics is empty"
        raise InputError(msg)
    n_fold = int(np.count_nonzero(values <= 0))
    stats: dict[str, Any] = {
        "min": float(values.min()),
        "max": float(values.max()),
        "mean": float(values.mean()),
    }
    for p, v in zip(PERCENTILES, np.percentile(values, PERCENTILES), strict=True):
        stats[f"p{p:g}"] = float(v)
    stats["n_folding"] = n_fold
    stats["folding_fraction"] = n_fold / values.size
    stats["n_voxels"] = int(values.size)
    return stats
