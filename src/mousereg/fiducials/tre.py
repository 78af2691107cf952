"""Predicted target registration error (Fitzpatrick, West & Maurer 1998, eq. 46).

TRE²(r) ≈ FLE²/N · (1 + ⅓ Σₖ dₖ²/fₖ²), with dₖ the distance of the target from principal axis k
of the centred markers and fₖ² the markers' mean squared distance from that axis. All values are
RMS 3-D errors in mm; for two modalities FLE² = FLE_CT² + FLE_MR².
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


def _axis_distances_sq(centred: np.ndarray, axes: np.ndarray) -> np.ndarray:
    """Squared distance of each point ``(M, 3)`` from each principal axis: ``(M, 3)``."""
    along = centred @ axes  # (M, 3) projection on each axis
    return (centred**2).sum(axis=1, keepdims=True) - along**2


def predicted_tre(markers: npt.ArrayLike, fle_rms: float, targets: npt.ArrayLike) -> np.ndarray:
    """Expected RMS TRE (mm) at each target point ``(M, 3)`` for markers ``(N, 3)``."""
    m = np.asarray(markers, dtype=float)
    r = np.atleast_2d(np.asarray(targets, dtype=float))
    centre = m.mean(axis=0)
    _, _, vt = np.linalg.svd(m - centre, full_matrices=False)
    axes = vt.T  # columns = principal axes
    f2 = _axis_distances_sq(m - centre, axes).mean(axis=0)
    d2 = _axis_distances_sq(r - centre, axes)
    ratio = (d2 / np.maximum(f2, 1e-12)).sum(axis=1)
    return np.sqrt(fle_rms**2 / len(m) * (1.0 + ratio / 3.0))


def combined_fle(*fles: float) -> float:
    """FLE of a two-modality fit: the root sum of squares of each modality's FLE."""
    return float(np.sqrt(sum(f * f for f in fles)))


def tre_summary(
    markers: npt.ArrayLike, fle_rms: float, body_points: npt.ArrayLike, percentile: float = 95.0
) -> dict[str, float]:
    """Predicted TRE at the body centroid, its mean and a percentile over body points (mm)."""
    pts = np.asarray(body_points, dtype=float)
    tre = predicted_tre(markers, fle_rms, pts)
    centroid = pts.mean(axis=0)
    return {
        "at_body_centroid_mm": float(predicted_tre(markers, fle_rms, centroid)[0]),
        "mean_over_body_mm": float(tre.mean()),
        f"p{percentile:g}_over_body_mm": float(np.percentile(tre, percentile)),
        "max_over_body_mm": float(tre.max()),
    }
