"""DICOM series (a folder of slices) -> Volume.

pydicom reads the headers to group files by SeriesInstanceUID, check that the slices form one
regular grid (same orientation, distinct positions, even spacing) and sort them along the
slice normal; SimpleITK (GDCM) then reads the pixels (any transfer syntax, rescale applied).
The frame follows DICOM/LPS directly: x = row direction (ImageOrientationPatient[:3]),
y = column direction, z = their cross product; origin = first slice's ImagePositionPatient.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from mousereg.errors import InputError
from mousereg.io.native_stderr import native_stderr, reason
from mousereg.volume import Volume

ORIENTATION_TOL = 1e-4
SPACING_REL_TOL = 1e-2


@dataclasses.dataclass(frozen=True)
class Slice:
    """Geometry of one DICOM image file."""

    path: Path
    position: np.ndarray
    orientation: np.ndarray
    pixel_spacing: tuple[float, float]
    frames: int
    thickness: float
    description: str
    modality: str


def _slice(path: Path) -> tuple[str, Slice] | None:
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        ds = pydicom.dcmread(str(path), stop_before_pixels=True)
    except (InvalidDicomError, OSError, EOFError, ValueError, TypeError):
        return None
    if "SeriesInstanceUID" not in ds or "Rows" not in ds:
        return None
    pos = ds.get("ImagePositionPatient") or [0.0, 0.0, 0.0]
    ori = ds.get("ImageOrientationPatient") or [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    ps = ds.get("PixelSpacing") or [1.0, 1.0]
    return str(ds.SeriesInstanceUID), Slice(
        path=path,
        position=np.asarray([float(v) for v in pos]),
        orientation=np.asarray([float(v) for v in ori]),
        pixel_spacing=(float(ps[0]), float(ps[1])),
        frames=int(ds.get("NumberOfFrames", 1) or 1),
        thickness=float(ds.get("SpacingBetweenSlices", ds.get("SliceThickness", 1.0)) or 1.0),
        description=str(ds.get("SeriesDescription", "")),
        modality=str(ds.get("Modality", "")),
    )


def list_series(folder: Path) -> dict[str, list[Slice]]:
    """Every image series under ``folder`` (recursively), keyed by SeriesInstanceUID."""
    series: dict[str, list[Slice]] = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        if path.name.upper() == "DICOMDIR":
            continue
        found = _slice(path)
        if found is not None:
            series.setdefault(found[0], []).append(found[1])
    return series


def _choose(folder: Path, series: dict[str, list[Slice]], uid: str | None) -> list[Slice]:
    if not series:
        msg = f"{folder}: no DICOM images found; point to the folder holding the series' files"
        raise InputError(msg)
    if uid is not None:
        if uid not in series:
            msg = f"{folder}: no series {uid}; it holds {', '.join(sorted(series))}"
            raise InputError(msg)
        return series[uid]
    if len(series) > 1:
        listing = "; ".join(
            f"{k} ({len(v)} files{', ' + v[0].description if v[0].description else ''})"
            for k, v in sorted(series.items())
        )
        msg = f"{folder}: holds {len(series)} DICOM series: {listing}; pass --series UID"
        raise InputError(msg)
    return next(iter(series.values()))


def sort_slices(folder: Path, slices: list[Slice]) -> tuple[list[Slice], np.ndarray, float]:
    """Slices sorted along the normal, the 3×3 direction and the slice spacing (mm)."""
    ori = slices[0].orientation
    for s in slices[1:]:
        if not np.allclose(s.orientation, ori, atol=ORIENTATION_TOL):
            msg = (
                f"{folder}: slices have different orientations (a localizer or a radial "
                "series?); pass --series with a series of parallel slices"
            )
            raise InputError(msg)
    row, col = ori[:3], ori[3:]
    normal = np.cross(row, col)
    direction = np.column_stack([row, col, normal])
    if len(slices) == 1:
        return slices, direction, slices[0].thickness
    order = sorted(slices, key=lambda s: float(s.position @ normal))
    steps = np.diff([float(s.position @ normal) for s in order])
    if np.any(steps <= 1e-6):
        msg = (
            f"{folder}: several slices share a position (several echoes or time points in one "
            "series?); split the series before reading it"
        )
        raise InputError(msg)
    mean = float(steps.mean())
    if np.abs(steps - mean).max() > SPACING_REL_TOL * mean:
        msg = (
            f"{folder}: slice spacing is uneven ({steps.min():.4g}-{steps.max():.4g} mm; "
            "missing slices?); export the complete series"
        )
        raise InputError(msg)
    return order, direction, mean


def _execute(read: Callable[[], Any], where: Path, hint: str) -> Any:
    """Run a SimpleITK read, turning its failure (and what GDCM printed) into one line."""
    with native_stderr() as lines:
        try:
            return read()
        except RuntimeError as exc:
            failure = exc
    msg = f"{where}: the DICOM pixels cannot be read ({reason(failure, lines)}); {hint}"
    raise InputError(msg) from failure


def read_dicom_series(folder: Path, *, series: str | None = None, chunks: int = 64) -> Volume:
    """Read one DICOM series from a folder (``series``: its SeriesInstanceUID, if several)."""
    import SimpleITK as sitk

    chosen = _choose(folder, list_series(folder), series)
    if len(chosen) == 1 and chosen[0].frames > 1:
        path = chosen[0].path
        img = _execute(lambda: sitk.ReadImage(str(path)), path, "export the frames as slices")
        return Volume.from_sitk(img, chunks=chunks, modality=chosen[0].modality)
    order, direction, dz = sort_slices(folder, chosen)
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames([str(s.path) for s in order])
    img = _execute(reader.Execute, folder, "is a file truncated?")
    if img.GetDimension() == 2:
        img = sitk.JoinSeries([img])
    row_spacing, col_spacing = order[0].pixel_spacing
    img.SetSpacing((col_spacing, row_spacing, dz))
    img.SetOrigin(tuple(float(v) for v in order[0].position))
    img.SetDirection(tuple(float(v) for v in direction.reshape(-1)))
    return Volume.from_sitk(img, chunks=chunks, modality=order[0].modality)
