"""Least-squares point fits (Umeyama 1991) with residuals, outlier rejection and FLE estimates.

A fit maps ``source`` points onto ``target`` points: ``target ≈ scale * R @ source + t``.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import numpy.typing as npt

from mousereg.errors import RegistrationError
from mousereg.fiducials.tre import predicted_tre

#: Leave-one-out discrepancy above this many expected RMS errors marks a marker as an outlier.
OUTLIER_SIGMAS = 3.0
#: Discrepancies below this (mm) are never called outliers, however small the FLE.
OUTLIER_FLOOR_MM = 0.1


@dataclasses.dataclass(frozen=True)
class PointTransform:
    """A similarity ``x -> scale * rotation @ x + translation`` (rigid when ``scale == 1``)."""

    rotation: np.ndarray
    translation: np.ndarray
    scale: float = 1.0

    def apply(self, points: npt.ArrayLike) -> np.ndarray:
        """Map points ``(..., 3)``."""
        p = np.asarray(points, dtype=float)
        return self.scale * p @ self.rotation.T + self.translation

    def inverse(self) -> PointTransform:
        """The inverse similarity."""
        r_inv = self.rotation.T
        return PointTransform(r_inv, -(r_inv @ self.translation) / self.scale, 1.0 / self.scale)

    def matrix(self) -> np.ndarray:
        """The 4×4 homogeneous matrix."""
        m = np.eye(4)
        m[:3, :3] = self.scale * self.rotation
        m[:3, 3] = self.translation
        return m

    def rotation_angle_deg(self) -> float:
        """The rotation angle in degrees."""
        c = (np.trace(self.rotation) - 1.0) / 2.0
        return float(np.degrees(np.arccos(np.clip(c, -1.0, 1.0))))


def umeyama(
    source: npt.ArrayLike, target: npt.ArrayLike, *, similarity: bool = False
) -> PointTransform:
    """Least-squares rigid (or similarity) transform mapping ``source`` onto ``target``.

    Umeyama (1991): SVD of the cross-covariance with the reflection guard, so the result is a
    proper rotation even for noisy or nearly planar points.

    Args:
        source: ``(N, 3)`` points.
        target: ``(N, 3)`` corresponding points.
        similarity: also fit an isotropic scale.
    """
    src = np.asarray(source, dtype=float)
    dst = np.asarray(target, dtype=float)
    if src.shape != dst.shape or src.ndim != 2 or src.shape[1] != 3:
        msg = f"point fit needs two (N, 3) arrays of the same shape, got {src.shape}, {dst.shape}"
        raise ValueError(msg)
    n = src.shape[0]
    if n < 3:
        msg = f"a 3-D point fit needs at least 3 corresponding points, got {n}"
        raise RegistrationError(msg)
    mu_s, mu_d = src.mean(axis=0), dst.mean(axis=0)
    xs, xd = src - mu_s, dst - mu_d
    cov = xd.T @ xs / n
    u, d, vt = np.linalg.svd(cov)
    sign = np.ones(3)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[2] = -1.0
    rotation = u @ np.diag(sign) @ vt
    scale = 1.0
    if similarity:
        var_s = float((xs**2).sum() / n)
        scale = float((d * sign).sum() / var_s)
    translation = mu_d - scale * rotation @ mu_s
    return PointTransform(rotation, translation, scale)


def fle_from_fre(fre_rms: float, n: int) -> float:
    """RMS fiducial localisation error from the RMS fit residual: ⟨FRE²⟩ ≈ (1 − 2/N)·FLE²."""
    if n <= 2:
        return float("nan")
    return float(fre_rms / np.sqrt(1.0 - 2.0 / n))


def check_not_collinear(points: npt.ArrayLike, what: str, min_spread_mm: float = 0.5) -> None:
    """Raise when the points are (nearly) collinear: a rotation about their line is then free."""
    p = np.asarray(points, dtype=float)
    sv = np.linalg.svd(p - p.mean(axis=0), compute_uv=False)
    spread = float(sv[1] / np.sqrt(len(p))) if len(sv) > 1 else 0.0
    if spread < min_spread_mm:
        msg = (
            f"{what}: the {len(p)} matched markers lie on one line (spread off the line "
            f"{spread:.3f} mm < {min_spread_mm} mm), so the rotation about it is undetermined; "
            "add markers off that line or pass points by hand"
        )
        raise RegistrationError(msg)


@dataclasses.dataclass(frozen=True)
class FitResult:
    """A point fit with its diagnostics.

    Attributes:
        transform: source -> target.
        residuals: per-marker residual distance (mm) after the final fit (outliers included).
        inliers: boolean mask of the markers used in the final fit.
        fre_rms: RMS residual over the inliers (mm).
        fle_rms: RMS localisation error estimated from the residuals (mm).
    """

    transform: PointTransform
    residuals: np.ndarray
    inliers: np.ndarray
    fre_rms: float
    fle_rms: float

    @property
    def n_used(self) -> int:
        """Number of markers in the final fit."""
        return int(self.inliers.sum())


def _loo_discrepancy(
    src: np.ndarray, dst: np.ndarray, keep: np.ndarray, k: int, similarity: bool
) -> tuple[float, float]:
    """Leave marker ``k`` out: its discrepancy and the RMS discrepancy expected from noise."""
    others = keep.copy()
    others[k] = False
    t = umeyama(src[others], dst[others], similarity=similarity)
    res = np.linalg.norm(t.apply(src[others]) - dst[others], axis=1)
    n = int(others.sum())
    fle = fle_from_fre(float(np.sqrt(np.mean(res**2))), n)
    tre = float(predicted_tre(dst[others], fle, dst[k : k + 1])[0])
    discrepancy = float(np.linalg.norm(t.apply(src[k]) - dst[k]))
    return discrepancy, float(np.hypot(fle, tre))


def fit_points(
    source: npt.ArrayLike,
    target: npt.ArrayLike,
    *,
    similarity: bool = False,
    reject_outliers: bool = True,
    min_points: int = 3,
) -> FitResult:
    """Umeyama fit with per-marker residuals and leave-one-out outlier rejection.

    A marker is dropped (worst first) while its leave-one-out discrepancy exceeds
    ``OUTLIER_SIGMAS`` times the RMS discrepancy expected from the others' FLE and predicted TRE
    (and ``OUTLIER_FLOOR_MM``), keeping at least ``max(min_points, 4)`` markers.
    """
    src = np.asarray(source, dtype=float)
    dst = np.asarray(target, dtype=float)
    keep = np.ones(len(src), dtype=bool)
    t = umeyama(src, dst, similarity=similarity)
    while reject_outliers and keep.sum() > max(min_points, 4):
        res = np.linalg.norm(t.apply(src) - dst, axis=1)
        worst = int(np.argmax(np.where(keep, res, -1.0)))
        discrepancy, expected = _loo_discrepancy(src, dst, keep, worst, similarity)
        if discrepancy <= max(OUTLIER_SIGMAS * expected, OUTLIER_FLOOR_MM):
            break
        keep[worst] = False
        t = umeyama(src[keep], dst[keep], similarity=similarity)
    residuals = np.linalg.norm(t.apply(src) - dst, axis=1)
    fre = float(np.sqrt(np.mean(residuals[keep] ** 2)))
    return FitResult(t, residuals, keep, fre, fle_from_fre(fre, int(keep.sum())))
