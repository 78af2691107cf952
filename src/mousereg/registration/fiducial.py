"""Fiducial registration of two scans through the holder's marker holes.

detect (both scans) -> match (unlabelled, rigid-invariant) -> fit (Umeyama, outliers) -> predicted
TRE (Fitzpatrick 1998) over the fixed scan's body, with leave-one-out and, when a ground truth is
given, measured TRE. The result maps FIXED points to MOVING points (ITK convention).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from mousereg.errors import RegistrationError
from mousereg.fiducials.body import body_points, mapped_fraction
from mousereg.fiducials.detect import Detection, as_scan, detect
from mousereg.fiducials.fit import (
    FitResult,
    PointTransform,
    check_not_collinear,
    fit_points,
    umeyama,
)
from mousereg.fiducials.holder import HolderProfile, match_to_holder
from mousereg.fiducials.markers import Markers
from mousereg.fiducials.match import DEFAULT_TOL_MM, Match, match_points
from mousereg.fiducials.tre import combined_fle, predicted_tre, tre_summary
from mousereg.volume import Volume

#: RMS fit residual (mm) above which the two scans are taken not to share one holder/animal.
MAX_FRE_MM = 0.5
#: The fit's RMS residual may be at most this many times the holes' localisation error (FLE from
#: detection, both scans combined), and at least ``FRE_FLOOR_MM``: one preparation's vaseline
#: plugs sit where they sit in both scans, so a larger residual means the holes were filled
#: differently: two animals (two preparations). Phantoms (tuning seeds 3001–3005, test
#: resolution): same preparation FRE 0.04–0.11 mm (FRE/FLE 1.0–1.4), two preparations
#: 0.15–0.75 mm. At full resolution the detectors' FLE (≈ 0.017 mm) misses the voxelisation
#: part of the error (same-preparation FRE 0.03–0.06 mm), hence the floor.
MAX_FRE_OVER_FLE = 2.5
FRE_FLOOR_MM = 0.15
#: Matching tolerance (mm) of the second, looser match tried when the strict one fails, so that
#: the scans of two preparations are refused with their FRE rather than "cannot match".
LOOSE_TOL_MM = 1.5
#: After the marker fit, at least this fraction of each scan's body must map into the other's
#: body (±1 body-grid voxel, ≈0.45 mm), else the scans are refused as two animals. Phantoms:
#: same animal 0.974–0.997 (49 pairs), two animals in one holder 0.874–0.979 (14 pairings), so
#: the refusal only catches clear mix-ups; below ``WARN_BODY_AGREEMENT`` the report warns.
MIN_BODY_AGREEMENT = 0.95
WARN_BODY_AGREEMENT = 0.975

PointMapFn = Callable[[np.ndarray], np.ndarray]


@dataclasses.dataclass(frozen=True)
class FiducialResult:
    """The fiducial registration and its report.

    Attributes:
        transform: fixed -> moving rigid (or similarity) map.
        fixed_markers, moving_markers: the matched markers, in pair order.
        fixed_found, moving_found: every marker found (or given) in each scan.
        fixed_detection, moving_detection: detections (None for points given by hand).
        fit: the point fit (residuals, markers used, FLE).
        report: JSON-friendly report.
    """

    transform: PointTransform
    fixed_markers: Markers
    moving_markers: Markers
    fixed_found: Markers
    moving_found: Markers
    fixed_detection: Detection | None
    moving_detection: Detection | None
    fit: FitResult
    report: dict[str, Any]


def _r(x: float, nd: int = 5) -> float | None:
    return None if not np.isfinite(x) else round(float(x), nd)


def _locate(
    images: Sequence[Volume], points: Markers | None, what: str
) -> tuple[Markers, Detection | None, float]:
    t0 = time.perf_counter()
    if points is not None:
        return points, None, time.perf_counter() - t0
    det = detect(images, source=what)
    return det.markers, det, time.perf_counter() - t0


def _pair_by_holder(
    fixed: Markers, moving: Markers, holder: HolderProfile, tol_mm: float
) -> np.ndarray:
    """Index pairs (fixed, moving, holder hole) through the holder profile: each scan is matched
    to the design layout."""
    _, fm = match_to_holder(fixed, holder, tol_mm)
    _, mm = match_to_holder(moving, holder, tol_mm)
    f_of = {int(h): int(s) for h, s in fm.pairs}
    m_of = {int(h): int(s) for h, s in mm.pairs}
    common = sorted(set(f_of) & set(m_of))
    if len(common) < 3:
        msg = (
            f"only {len(common)} holes of holder '{holder.name}' were found in both scans "
            f"({len(fm.pairs)} in the fixed, {len(mm.pairs)} in the moving); pass points by hand"
        )
        raise RegistrationError(msg)
    return np.array([[f_of[h], m_of[h], h] for h in common], dtype=int)


def _pairing(
    fixed: Markers,
    moving: Markers,
    by_hand: bool,
    tol_mm: float,
    holder: HolderProfile | None = None,
) -> tuple[np.ndarray, Match | None]:
    """Index pairs: by order for points given by hand (same count), through the holder profile
    when one is given, else by matching the two scans' layouts directly."""
    if holder is not None and not by_hand:
        return _pair_by_holder(fixed, moving, holder, tol_mm), None
    if by_hand and len(fixed) == len(moving):
        if len(fixed) < 3:
            msg = (
                f"{len(fixed)} point pairs were given by hand; at least 3 non-collinear pairs "
                "are needed"
            )
            raise RegistrationError(msg)
        return np.stack([np.arange(len(fixed))] * 2, axis=1), None
    m = match_points(fixed.points, moving.points, tol_mm=tol_mm, names=("fixed", "moving"))
    return m.pairs, m


def _leave_one_out(src: np.ndarray, dst: np.ndarray, similarity: bool) -> dict[str, Any]:
    """Hold each marker out: measured discrepancy vs the predicted sqrt(TRE² + FLE²)."""
    n = len(src)
    if n < 5:
        return {"n": 0}
    measured, predicted = [], []
    for k in range(n):
        keep = np.arange(n) != k
        t = umeyama(src[keep], dst[keep], similarity=similarity)
        res = np.linalg.norm(t.apply(src[keep]) - dst[keep], axis=1)
        fle = float(np.sqrt(np.mean(res**2) / (1 - 2 / (n - 1))))
        tre = float(predicted_tre(src[keep], fle, src[k : k + 1])[0])
        measured.append(float(np.linalg.norm(t.apply(src[k]) - dst[k])))
        predicted.append(float(np.hypot(tre, fle)))
    m_rms = float(np.sqrt(np.mean(np.square(measured))))
    p_rms = float(np.sqrt(np.mean(np.square(predicted))))
    return {
        "n": n,
        "measured_rms_mm": _r(m_rms),
        "predicted_rms_mm": _r(p_rms),
        "ratio_predicted_over_measured": _r(p_rms / m_rms if m_rms > 0 else float("nan"), 3),
        "note": "held-out discrepancy |T_-k(p_k) - q_k| vs predicted sqrt(TRE(p_k)^2 + FLE^2)",
    }


def _truth_section(
    t: PointTransform,
    markers: np.ndarray,
    fle: float,
    truth: PointMapFn,
    truth_points: np.ndarray,
) -> dict[str, Any]:
    """Measured TRE at ``truth_points`` (fixed space) against the true map, and predicted TRE."""
    err = np.linalg.norm(t.apply(truth_points) - truth(truth_points), axis=1)
    pred = predicted_tre(markers, fle, truth_points)
    m_rms = float(np.sqrt(np.mean(err**2)))
    p_rms = float(np.sqrt(np.mean(pred**2)))
    return {
        "n_points": len(truth_points),
        "measured_tre_mean_mm": _r(float(err.mean())),
        "measured_tre_max_mm": _r(float(err.max())),
        "measured_tre_rms_mm": _r(m_rms),
        "predicted_tre_rms_mm": _r(p_rms),
        "ratio_predicted_over_measured": _r(p_rms / m_rms if m_rms > 0 else float("nan"), 3),
    }


def consistency_threshold(fle_mm: float) -> float:
    """Largest RMS fit residual (mm) consistent with one preparation, given the holes'
    combined localisation error (no limit when it is unknown, e.g. points placed by hand)."""
    if not np.isfinite(fle_mm):
        return float("inf")
    return max(FRE_FLOOR_MM, MAX_FRE_OVER_FLE * fle_mm)


def _warnings(agreement: float, loose: bool) -> list[str]:
    out = []
    if np.isfinite(agreement) and agreement < WARN_BODY_AGREEMENT:
        out.append(
            f"body agreement {agreement:.3f} is below {WARN_BODY_AGREEMENT}: check that both "
            "scans show the same animal"
        )
    if loose:
        out.append(
            f"the holes matched only at the looser {LOOSE_TOL_MM} mm tolerance: check the "
            "marker table"
        )
    return out


def _body_agreement(fdet: Detection | None, mdet: Detection | None, t: PointTransform) -> float:
    """The smaller of the two fractions of one body that the fit maps into the other's body."""
    if fdet is None or mdet is None or not fdet.body.any() or not mdet.body.any():
        return float("nan")
    inv = t.inverse()
    a = mapped_fraction(fdet.body, fdet.affine, mdet.body, mdet.affine, t.apply)
    b = mapped_fraction(mdet.body, mdet.affine, fdet.body, fdet.affine, inv.apply)
    return float(np.nanmin([a, b])) if np.isfinite([a, b]).any() else float("nan")


def _pairs_table(fixed: Markers, moving: Markers, fit: FitResult) -> list[dict[str, Any]]:
    return [
        {
            "fixed": fixed.names[i],
            "moving": moving.names[i],
            "fixed_mm": [round(float(v), 4) for v in fixed.points[i]],
            "moving_mm": [round(float(v), 4) for v in moving.points[i]],
            "residual_mm": _r(float(fit.residuals[i])),
            "used": bool(fit.inliers[i]),
        }
        for i in range(len(fixed))
    ]


def fiducial_registration(
    fixed: Volume | Sequence[Volume],
    moving: Volume | Sequence[Volume],
    *,
    fixed_points: Markers | None = None,
    moving_points: Markers | None = None,
    similarity: bool = False,
    tol_mm: float = DEFAULT_TOL_MM,
    max_fre_mm: float = MAX_FRE_MM,
    truth: PointMapFn | None = None,
    truth_points: np.ndarray | None = None,
    holder: HolderProfile | None = None,
    min_body_agreement: float = MIN_BODY_AGREEMENT,
    pair_by_order: bool = True,
) -> FiducialResult:
    """Register MOVING onto FIXED through the marker holes; the transform maps fixed -> moving.

    Args:
        fixed: the fixed scan (one Volume, or its channels, e.g. MRI water and fat).
        moving: the moving scan (e.g. the CT).
        fixed_points, moving_points: markers placed by hand (skip detection for that scan; when
            both are given with the same count, they pair by order).
        similarity: fit an isotropic scale too.
        tol_mm: matching tolerance.
        max_fre_mm: refuse fits whose RMS residual exceeds this (different animals or holders).
        truth: the true fixed -> moving map (phantoms), to measure TRE at ``truth_points``.
        truth_points: ``(K, 3)`` fixed-space points where the TRE is measured.
        holder: a holder profile; when given, both scans are matched to its design layout.
        min_body_agreement: refuse when less of either body maps into the other (two animals
            in the same holder); 0 turns the check off.
        pair_by_order: points given by hand for both scans, with the same count, correspond in
            order (as placed in 3D Slicer); False matches them like detected markers.
    """
    t_start = time.perf_counter()
    fixed_scan = as_scan(fixed) if not isinstance(fixed, Volume) else fixed
    moving_scan = as_scan(moving) if not isinstance(moving, Volume) else moving
    fm, fdet, t_fix = _locate([fixed_scan], fixed_points, "fixed scan")
    mm, mdet, t_mov = _locate([moving_scan], moving_points, "moving scan")
    t0 = time.perf_counter()
    by_hand = pair_by_order and fixed_points is not None and moving_points is not None
    loose = False
    try:
        pairs, match = _pairing(fm, mm, by_hand, tol_mm, holder)
    except RegistrationError as strict:
        if by_hand or holder is not None or tol_mm >= LOOSE_TOL_MM:
            raise
        try:
            pairs, match = _pairing(fm, mm, by_hand, LOOSE_TOL_MM, holder)
        except RegistrationError:
            raise strict from None
        loose = True
    t_match = time.perf_counter() - t0
    fpair, mpair = fm.subset(pairs[:, 0]), mm.subset(pairs[:, 1])
    if holder is not None and pairs.shape[1] == 3:
        hole_names = tuple(f"hole {holder.ids[h]}" for h in pairs[:, 2])
        fpair = dataclasses.replace(fpair, names=hole_names)
        mpair = dataclasses.replace(mpair, names=hole_names)
    t0 = time.perf_counter()
    check_not_collinear(fpair.points, "fixed scan")
    fit = fit_points(fpair.points, mpair.points, similarity=similarity)
    t_fit = time.perf_counter() - t0
    if fit.fre_rms > max_fre_mm:
        msg = (
            f"the marker fit leaves an RMS residual (FRE) of {fit.fre_rms:.3f} mm, above the "
            f"{max_fre_mm} mm threshold: the two scans do not share one rigid holder (different "
            "animals or holders?); check the pairing of the inputs"
        )
        raise RegistrationError(msg)
    fle_det = combined_fle(fpair.fle_rms(), mpair.fle_rms())
    fre_limit = consistency_threshold(fle_det)
    if fit.fre_rms > fre_limit:
        msg = (
            f"the marker fit leaves an RMS residual (FRE) of {fit.fre_rms:.3f} mm, above the "
            f"{fre_limit:.3f} mm threshold ({MAX_FRE_OVER_FLE} x the holes' localisation error "
            f"{fle_det:.3f} mm, at least {FRE_FLOOR_MM} mm): the vaseline in the holes is not "
            "where it was in the other scan, so these look like scans of two different animals "
            "(two fillings of the holder); check the pairing of the inputs"
        )
        raise RegistrationError(msg)
    agreement = _body_agreement(fdet, mdet, fit.transform)
    if np.isfinite(agreement) and agreement < min_body_agreement:
        msg = (
            f"the marker fit is consistent (FRE {fit.fre_rms:.3f} mm, threshold "
            f"{min(fre_limit, max_fre_mm):.3f} mm) "
            f"but the bodies disagree: only {100 * agreement:.1f} % of one scan's body maps into "
            f"the other's (threshold {100 * min_body_agreement:.1f} %); these look like two "
            "different animals in the same holder: check the pairing of the inputs"
        )
        raise RegistrationError(msg)
    used_f = fpair.points[fit.inliers]
    t0 = time.perf_counter()
    body = fdet.body if fdet is not None else None
    if body is not None and body.any():
        pts = body_points(body, fdet.affine if fdet else np.eye(4))
    else:
        pts = used_f
    tre = tre_summary(used_f, fit.fle_rms, pts)
    t_tre = time.perf_counter() - t0
    report: dict[str, Any] = {
        "method": "fiducial",
        "transform_kind": "similarity" if similarity else "rigid",
        "direction": "fixed -> moving (ITK convention)",
        "holes_found": {"fixed": len(fm), "moving": len(mm)},
        "fixed": fdet.summary() if fdet else {"source": "points given by hand", "count": len(fm)},
        "moving": mdet.summary() if mdet else {"source": "points given by hand", "count": len(mm)},
        "matched_pairs": len(pairs),
        "used_pairs": fit.n_used,
        "outliers": [fpair.names[i] for i in np.flatnonzero(~fit.inliers)],
        "match": None
        if match is None
        else {
            "support": match.support,
            "runner_up_support": match.runner_up,
            "hypotheses": match.hypotheses,
            "tolerance_mm": tol_mm,
        },
        "pairs": _pairs_table(fpair, mpair, fit),
        "fre_rms_mm": _r(fit.fre_rms),
        "fre_threshold_mm": max_fre_mm,
        "fre_consistency_threshold_mm": _r(fre_limit),
        "body_agreement": _r(agreement, 4),
        "body_agreement_threshold": min_body_agreement,
        "warnings": _warnings(agreement, loose),
        "fle": {
            "from_residuals_mm": _r(fit.fle_rms),
            "from_detection_mm": {
                "fixed": _r(fpair.fle_rms()),
                "moving": _r(mpair.fle_rms()),
                "combined": _r(fle_det),
            },
        },
        "predicted_tre": {
            **{k: _r(v) for k, v in tre.items()},
            "fle_used_mm": _r(fit.fle_rms),
            "over": "fixed body mask" if body is not None else "markers",
        },
        "held_out": _leave_one_out(used_f, mpair.points[fit.inliers], similarity),
        "transform": {
            "matrix": np.round(fit.transform.matrix(), 8).tolist(),
            "rotation_deg": _r(fit.transform.rotation_angle_deg(), 4),
            "scale": _r(fit.transform.scale, 8),
        },
    }
    if truth is not None and truth_points is not None and len(truth_points):
        report["truth"] = _truth_section(
            fit.transform, used_f, fit.fle_rms, truth, np.asarray(truth_points, dtype=float)
        )
    report["seconds"] = {
        "detect_fixed": round(t_fix, 3),
        "detect_moving": round(t_mov, 3),
        "match": round(t_match, 3),
        "fit": round(t_fit, 3),
        "tre_map": round(t_tre, 3),
        "total": round(time.perf_counter() - t_start, 3),
    }
    return FiducialResult(fit.transform, fpair, mpair, fm, mm, fdet, mdet, fit, report)
