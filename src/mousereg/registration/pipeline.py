"""`register`: the whole CT<->MRI registration of one pair, and its outputs.

Stage 1 is the fiducial registration through the holder's marker holes (always tried). For
``mode`` rigid, affine or deformable, stage 2 refines by image similarity through the seam
:func:`refine`, which hands over to :mod:`mousereg.registration.intensity` (elastix or ANTs).

Outputs in OUTDIR: ``transform.h5`` (fixed -> moving, ITK convention), ``inverse.h5``,
``report.json``, and the markers of both scans (``markers_fixed.json``/``.mrk.json``,
``markers_moving.json``/``.mrk.json``).
"""

from __future__ import annotations

import importlib
import json
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk

from mousereg.errors import InputError, RegistrationError
from mousereg.fiducials.detect import as_scan
from mousereg.fiducials.fit import PointTransform
from mousereg.fiducials.holder import HolderProfile
from mousereg.fiducials.markers import Markers, write_markers
from mousereg.io.atomic import write_text
from mousereg.registration.fiducial import (
    MAX_FRE_MM,
    MIN_BODY_AGREEMENT,
    FiducialResult,
    fiducial_registration,
)
from mousereg.registration.transform import Transform
from mousereg.volume import Volume

MODES = ("fiducial", "rigid", "affine", "deformable")
BACKENDS = ("elastix", "ants")
INTENSITY_MODULE = "mousereg.registration.intensity"
INVERSE_SPACING_MM = 0.5  # grid of the numerical inverse of a deformable transform


def to_transform(t: PointTransform) -> Transform:
    """A rigid (Euler) or similarity (affine) :class:`Transform` from a point fit."""
    if abs(t.scale - 1.0) < 1e-12:
        euler = sitk.Euler3DTransform()
        euler.SetMatrix(tuple(t.rotation.reshape(-1)))
        euler.SetTranslation(tuple(float(v) for v in t.translation))
        return Transform(euler)
    return Transform.from_matrix(t.scale * t.rotation, translation=t.translation)


def _intensity_refine() -> Callable[..., tuple[Transform, dict[str, Any]]] | None:
    try:
        module = importlib.import_module(INTENSITY_MODULE)
    except ModuleNotFoundError as exc:
        if exc.name != INTENSITY_MODULE:
            raise
        return None
    fn = getattr(module, "refine", None)
    return fn if callable(fn) else None


def refine(
    fixed: Volume,
    moving: Volume,
    initial: Transform | None,
    *,
    mode: str,
    backend: str,
    outdir: Path,
    fiducials: FiducialResult | None = None,
) -> tuple[Transform, dict[str, Any]]:
    """The intensity stage: refine ``initial`` (fixed -> moving) by image similarity.

    Delegates to ``mousereg.registration.intensity.refine`` with the same arguments; it returns
    the refined transform and its part of the report.
    """
    fn = _intensity_refine()
    if fn is None:
        msg = (
            f"--mode {mode} needs the intensity registration stage ({INTENSITY_MODULE}.refine), "
            "which is not available in this installation; use --mode fiducial"
        )
        raise RegistrationError(msg)
    return fn(
        fixed,
        moving,
        initial,
        mode=mode,
        backend=backend,
        outdir=outdir,
        fiducials=fiducials,
    )


def _check_options(mode: str, backend: str) -> None:
    if mode not in MODES:
        msg = f"unknown --mode {mode!r}; use one of {', '.join(MODES)}"
        raise InputError(msg)
    if backend not in BACKENDS:
        msg = f"unknown --backend {backend!r}; use one of {', '.join(BACKENDS)}"
        raise InputError(msg)
    if mode != "fiducial" and _intensity_refine() is None:
        msg = (
            f"--mode {mode} needs the intensity registration stage ({INTENSITY_MODULE}), which "
            "is not available in this installation; use --mode fiducial"
        )
        raise RegistrationError(msg)


def _write_outputs(
    outdir: Path,
    transform: Transform,
    inverse: Transform,
    report: dict[str, Any],
    markers: dict[str, Markers],
) -> dict[str, str]:
    outdir.mkdir(parents=True, exist_ok=True)
    files = {"transform": outdir / "transform.h5", "inverse": outdir / "inverse.h5"}
    transform.write(files["transform"])
    inverse.write(files["inverse"])
    for role, m in markers.items():
        for suffix in (".json", ".mrk.json"):
            path = outdir / f"markers_{role}{suffix}"
            write_markers(m, path)
            files[f"markers_{role}{suffix}"] = path
    files["report"] = outdir / "report.json"
    out = {k: str(v.name) for k, v in files.items()}
    report["outputs"] = {**out, **report.get("outputs", {})}
    write_text(files["report"], json.dumps(report, indent=2, default=_json_default))
    return out


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    msg = f"cannot write {type(obj).__name__} to JSON"
    raise TypeError(msg)


def register(
    fixed: Volume | Sequence[Volume],
    moving: Volume | Sequence[Volume],
    outdir: str | os.PathLike[str],
    *,
    mode: str = "deformable",
    backend: str = "elastix",
    fixed_points: Markers | None = None,
    moving_points: Markers | None = None,
    similarity: bool = False,
    max_fre_mm: float = MAX_FRE_MM,
    truth: Callable[[np.ndarray], np.ndarray] | None = None,
    truth_points: np.ndarray | None = None,
    holder: HolderProfile | None = None,
    min_body_agreement: float = MIN_BODY_AGREEMENT,
) -> dict[str, Any]:
    """Register MOVING onto FIXED and write the outputs into ``outdir``; return the report.

    Args:
        fixed: the fixed scan (the MRI: water and fat channels, or one multi-channel Volume).
        moving: the moving scan (the CT); the reverse order works too.
        outdir: output folder (created).
        mode: ``fiducial`` (markers only) or ``rigid``/``affine``/``deformable`` (markers, then
            intensity refinement).
        backend: intensity backend, ``elastix`` or ``ants``.
        fixed_points, moving_points: markers given by hand instead of detected.
        similarity: fit an isotropic scale in the fiducial stage.
        max_fre_mm: refuse a fiducial fit with a larger RMS residual (different animals).
        truth, truth_points: the true fixed -> moving map and fixed-space points where to
            measure TRE (phantoms).
        holder: a holder profile: both scans' holes are matched to its design layout.
        min_body_agreement: refuse a fit after which the bodies disagree (two animals); 0 = off.
    """
    t0 = time.perf_counter()
    _check_options(mode, backend)
    out = Path(outdir)
    fixed_scan, moving_scan = as_scan(fixed), as_scan(moving)
    report: dict[str, Any] = {"mode": mode, "backend": backend if mode != "fiducial" else None}
    # A refused fiducial fit (too few holes, two animals, ...) ends the run in every mode: the
    # intensity stage cannot recover the scanners' 90° frame changes from a centre start.
    fid = fiducial_registration(
        fixed_scan,
        moving_scan,
        fixed_points=fixed_points,
        moving_points=moving_points,
        similarity=similarity,
        max_fre_mm=max_fre_mm,
        truth=truth,
        truth_points=truth_points,
        holder=holder,
        min_body_agreement=min_body_agreement,
    )
    transform = to_transform(fid.transform)
    report["fiducial"] = fid.report
    if mode != "fiducial":
        transform, stage = refine(
            fixed_scan,
            moving_scan,
            transform,
            mode=mode,
            backend=backend,
            outdir=out,
            fiducials=fid,
        )
        report["intensity"] = stage
    t_inv = time.perf_counter()
    inverse = (
        to_transform(fid.transform.inverse())
        if mode == "fiducial"
        else transform.inverse(moving_scan, spacing=INVERSE_SPACING_MM)
    )
    if "intensity" in report:
        report["intensity"]["inverse_consistency"] = inverse.inverse_consistency
        report["intensity"]["seconds"]["inverse"] = round(time.perf_counter() - t_inv, 3)
    from mousereg.qc.pair import write_pair_outputs  # qc sits above registration: import late

    t_qc = time.perf_counter()
    report["outputs"] = write_pair_outputs(out, fixed_scan, moving_scan, transform, report)
    report["seconds_qc"] = round(time.perf_counter() - t_qc, 3)
    report["seconds_total"] = round(time.perf_counter() - t0, 3)
    markers = {"fixed": fid.fixed_found, "moving": fid.moving_found}
    _write_outputs(out, transform, inverse, report, markers)
    return report


def register_files(
    fixed: Sequence[str | os.PathLike[str]],
    moving: Sequence[str | os.PathLike[str]],
    outdir: str | os.PathLike[str],
    *,
    mode: str = "deformable",
    backend: str = "elastix",
    fixed_points: str | os.PathLike[str] | None = None,
    moving_points: str | os.PathLike[str] | None = None,
    similarity: bool = False,
    max_fre_mm: float = MAX_FRE_MM,
    holder: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """:func:`register` on image files (several files = channels of one scan) and marker files
    (CSV, Slicer ``.mrk.json``, mousereg ``.json``); ``holder`` is a profile name in
    ``pipelines/holders/`` or a YAML path."""
    from mousereg.fiducials.files import load_scan
    from mousereg.fiducials.holder import load_holder
    from mousereg.fiducials.markers import read_markers

    _check_options(mode, backend)
    return register(
        load_scan(fixed),
        load_scan(moving),
        outdir,
        mode=mode,
        backend=backend,
        fixed_points=None if fixed_points is None else read_markers(fixed_points),
        moving_points=None if moving_points is None else read_markers(moving_points),
        similarity=similarity,
        max_fre_mm=max_fre_mm,
        holder=None if holder is None else load_holder(holder),
    )
