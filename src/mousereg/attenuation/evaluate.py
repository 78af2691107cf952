"""How wrong is a µ-map? Voxel errors per tissue class and organ, and ACF errors per LOR.

``compare_mumaps(test, reference)`` reports, inside the body of the reference:

* per tissue class (air, lung, fat, soft tissue, bone — classed by the reference's µ, see
  :data:`CLASS_BOUNDS`; and "near bone", the body within 1 mm of bone) and per organ of an
  optional label map: the mean absolute error (cm⁻¹), the signed mean relative error of the
  class mean (bias) and the mean absolute voxel relative error;
* the error of the attenuation correction factors ACF = exp(∫µ dl) along the LORs of a
  parallel-beam sinogram of every transaxial slice (:mod:`mousereg.attenuation.sinogram`):
  mean and 95th percentile of ``|ACF_test / ACF_reference − 1|`` over LORs through the body, and
  over the LORs that cross bone ("near bone").
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from scipy import ndimage

from mousereg.attenuation import sinogram
from mousereg.attenuation.tissues import MU_PHYSICAL_MAX, MU_PHYSICAL_MIN
from mousereg.errors import InputError
from mousereg.volume import Volume

log = logging.getLogger(__name__)

# (name, lower, upper) on the reference µ in cm⁻¹; class boundaries halfway between the tissues.
CLASS_BOUNDS = (
    ("air", -np.inf, 0.01),
    ("lung", 0.01, 0.07),
    ("fat", 0.07, 0.0935),
    ("soft tissue", 0.0935, 0.125),
    ("bone", 0.125, np.inf),
)
BODY_MU = 0.01  # cm⁻¹: the body is the reference's µ above this (holes filled), see body_mask
MIN_PATH_MM = 1.0  # an LOR "through the body" crosses at least this much of it
BONE_PATH_MM = 0.5  # an LOR "near bone" crosses at least this much bone
NEAR_BONE_MM = 1.0  # voxels "near bone" lie within this distance of bone
OUT_OF_RANGE_REFUSE = 1e-3  # fraction of voxels outside the physical range that is refused


def check_physical_range(volume: Volume, name: str) -> list[str]:
    """Refuse a map that is not µ511 in cm⁻¹; return warnings for a few stray voxels."""
    arr = volume.compute()
    finite = np.isfinite(arr)
    if not finite.all():
        msg = f"{name}: {int((~finite).sum())} voxels are NaN or infinite; not a usable µ-map"
        raise InputError(msg)
    bad = (arr < MU_PHYSICAL_MIN) | (arr > MU_PHYSICAL_MAX)
    fraction = float(bad.mean())
    lo, hi = float(arr.min()), float(arr.max())
    where = f"values {lo:.4g}…{hi:.4g} cm⁻¹"
    if fraction > OUT_OF_RANGE_REFUSE:
        msg = (
            f"{name}: {fraction:.1%} of voxels lie outside the physical range of µ511 "
            f"[{MU_PHYSICAL_MIN}, {MU_PHYSICAL_MAX}] cm⁻¹ ({where}); is it a CT in HU or "
            "µ in another unit? Make it with `mousereg mumap ct|mr`"
        )
        raise InputError(msg)
    warnings = []
    if bad.any():
        warnings.append(f"{name}: {int(bad.sum())} voxels outside the physical range ({where})")
    if np.percentile(arr, 99.9) < 0.03:
        warnings.append(f"{name}: the densest tissue has µ < 0.03; is the map in mm⁻¹, not cm⁻¹?")
    for w in warnings:
        log.warning(w)
    return warnings


def body_mask(reference: np.ndarray) -> np.ndarray:
    """The largest connected object with µ > :data:`BODY_MU`, with internal holes filled."""
    fg = reference > BODY_MU
    lab, n = ndimage.label(fg)
    if n == 0:
        return fg
    sizes = np.bincount(lab.ravel())
    sizes[0] = 0
    return np.asarray(ndimage.binary_fill_holes(lab == int(np.argmax(sizes))))


def _errors(test: np.ndarray, ref: np.ndarray) -> dict[str, float]:
    diff = test - ref
    return {
        "voxels": int(ref.size),
        "mean_reference": float(ref.mean()),
        "mean_test": float(test.mean()),
        "mean_abs_error": float(np.abs(diff).mean()),
        "mean_relative_error": float(test.mean() / ref.mean() - 1.0),
        "mean_abs_relative_error": float(np.mean(np.abs(diff) / np.maximum(ref, BODY_MU))),
    }


def tissue_errors(
    test: np.ndarray,
    ref: np.ndarray,
    body: np.ndarray,
    spacing_zyx: tuple[float, float, float] = (1.0, 1.0, 1.0),
) -> dict[str, Any]:
    """Errors per tissue class (classed by the reference µ) inside the body, and in the body
    within :data:`NEAR_BONE_MM` of bone ("near bone", bone included)."""
    from mousereg.attenuation.body import ball

    out: dict[str, Any] = {}
    for name, lo, hi in CLASS_BOUNDS:
        sel = body & (ref >= lo) & (ref < hi)
        if sel.sum() > 0:
            out[name] = _errors(test[sel], ref[sel])
    bone = body & (ref >= CLASS_BOUNDS[-1][1])
    if bone.any():
        se = ball(tuple(NEAR_BONE_MM / s for s in spacing_zyx))  # type: ignore[arg-type]
        near = body & ndimage.binary_dilation(bone, structure=se)
        out["near bone"] = _errors(test[near], ref[near])
    out["body"] = _errors(test[body], ref[body])
    return out


def organ_errors(test: np.ndarray, ref: np.ndarray, labels: Volume) -> dict[str, Any]:
    """Errors per organ of a label map on the same grid."""
    lab = labels.compute()
    names = {lb.value: lb.name for lb in labels.labels} if labels.labels is not None else {}
    out: dict[str, Any] = {}
    for value in np.unique(lab):
        if value == 0:
            continue
        sel = lab == value
        out[names.get(int(value), str(int(value)))] = _errors(test[sel], ref[sel])
    return out


def _summary(err: np.ndarray) -> dict[str, float]:
    if err.size == 0:
        return {"lors": 0, "mean": float("nan"), "p95": float("nan"), "max": float("nan")}
    return {
        "lors": int(err.size),
        "mean": float(err.mean()),
        "p95": float(np.percentile(err, 95)),
        "max": float(err.max()),
    }


def acf_errors(
    test: np.ndarray,
    ref: np.ndarray,
    body: np.ndarray,
    spacing_zyx: tuple[float, float, float],
    *,
    axis: str | int = "auto",
    n_angles: int = 60,
    pixel_mm: float | None = None,
) -> dict[str, Any]:
    """``|ACF_test/ACF_ref − 1|`` over LORs through the body and over LORs crossing bone."""
    geometry = sinogram.make_geometry(
        body, spacing_zyx, axis=axis, pixel_mm=pixel_mm, n_angles=n_angles
    )
    diff = sinogram.line_integrals(test - ref, spacing_zyx, geometry)
    err = np.abs(np.expm1(diff))
    through = sinogram.path_lengths_mm(body, spacing_zyx, geometry) >= MIN_PATH_MM
    bone = sinogram.path_lengths_mm(body & (ref >= CLASS_BOUNDS[-1][1]), spacing_zyx, geometry)
    near_bone = through & (bone >= BONE_PATH_MM)
    ref_acf = np.exp(sinogram.line_integrals(ref, spacing_zyx, geometry))
    return {
        "axis": "zyx"[geometry.axis],
        "pixel_mm": geometry.pixel_mm,
        "angles": len(geometry.angles_deg),
        "reference_acf_mean": float(ref_acf[through].mean()) if through.any() else float("nan"),
        "reference_acf_max": float(ref_acf[through].max()) if through.any() else float("nan"),
        "body": _summary(err[through]),
        "near_bone": _summary(err[near_bone]),
        "away_from_bone": _summary(err[through & ~near_bone]),
    }


def compare_mumaps(
    test: Volume,
    reference: Volume,
    *,
    labels: Volume | None = None,
    body: np.ndarray | None = None,
    axis: str | int = "auto",
    n_angles: int = 60,
    pixel_mm: float | None = None,
) -> dict[str, Any]:
    """Compare a µ-map ``test`` with ``reference`` on the same grid (see the module docstring)."""
    if not test.same_grid(reference):
        msg = (
            f"the two µ-maps are on different grids ({test.shape} at {test.spacing} mm vs "
            f"{reference.shape} at {reference.spacing} mm); resample one onto the other first"
        )
        raise InputError(msg)
    if labels is not None and not labels.same_grid(reference):
        msg = "--labels: the label map is not on the µ-maps' grid; resample it first"
        raise InputError(msg)
    warnings = check_physical_range(test, "A") + check_physical_range(reference, "B")
    a = test.compute().astype(np.float32)
    b = reference.compute().astype(np.float32)
    mask = body_mask(b) if body is None else np.asarray(body, dtype=bool)
    if not mask.any():
        msg = f"B: no body found (no connected object with µ > {BODY_MU} cm⁻¹)"
        raise InputError(msg)
    spacing_zyx = (reference.spacing[2], reference.spacing[1], reference.spacing[0])
    report: dict[str, Any] = {
        "units": "cm^-1 at 511 keV",
        "tissues": tissue_errors(a, b, mask, spacing_zyx),
        "acf": acf_errors(a, b, mask, spacing_zyx, axis=axis, n_angles=n_angles, pixel_mm=pixel_mm),
        "warnings": warnings,
    }
    if labels is not None:
        report["organs"] = organ_errors(a, b, labels)
    return report
