"""Suffix dispatch for :func:`read_volume` / :func:`write_volume` / :func:`convert`.

=================  =========================================  ======
suffix             format                                     write
=================  =========================================  ======
``.zarr``          OME-Zarr (NGFF 0.4 default, 0.5)           yes
``.nii``           NIfTI-1/2, read lazily (memory-mapped)     yes
``.nii.gz``        NIfTI-1/2, gzip                            yes
``.nrrd .nhdr``    NRRD                                       yes
``.mha .mhd``      MetaImage                                  yes
``.mnc``           MINC-2 (what SimpleITK reads)              yes
folder             DICOM series (``series=`` UID if several)  no
=================  =========================================  ======
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from mousereg.errors import InputError
from mousereg.volume import Volume

SITK_SUFFIXES = (".nii.gz", ".nrrd", ".nhdr", ".mha", ".mhd", ".mnc")
READ_SUFFIXES = (".zarr", ".nii", *SITK_SUFFIXES)
WRITE_SUFFIXES = READ_SUFFIXES


def suffix_of(path: Path) -> str:
    """The format suffix of ``path`` (``.nii.gz`` counts as one), lower case."""
    name = path.name.lower().rstrip("/")
    for s in sorted(READ_SUFFIXES, key=len, reverse=True):
        if name.endswith(s):
            return s
    return path.suffix.lower()


def _unknown(path: Path, writing: bool) -> InputError:
    what = "write" if writing else "read"
    extra = "" if writing else " or a DICOM folder"
    known = ", ".join(READ_SUFFIXES)
    msg = f"{path}: unknown image suffix {suffix_of(path)!r}; {what} one of {known}{extra}"
    return InputError(msg)


def read_volume(path: str | os.PathLike[str], *, series: str | None = None) -> Volume:
    """Read a volume; the format follows the suffix (a folder without one is a DICOM series).

    Args:
        path: image file, ``.zarr`` store or DICOM folder.
        series: SeriesInstanceUID to pick when a DICOM folder holds several series.
    """
    p = Path(path)
    if not p.exists():
        msg = f"{p}: no such file or folder; check the path"
        raise InputError(msg)
    suffix = suffix_of(p)
    if suffix == ".zarr":
        from mousereg.io.ome_zarr_read import read_ome_zarr

        return read_ome_zarr(p)
    if p.is_dir():
        from mousereg.io.dicom import read_dicom_series

        return read_dicom_series(p, series=series)
    if suffix in (".nii", ".nii.gz"):
        from mousereg.io.nifti import read_nifti

        return read_nifti(p)
    if suffix in SITK_SUFFIXES:
        from mousereg.io.sitk_formats import read_sitk

        return read_sitk(p)
    raise _unknown(p, writing=False)


def write_volume(
    volume: Volume,
    path: str | os.PathLike[str],
    *,
    ngff_version: str = "0.4",
    chunks: int | None = None,
    **options: Any,
) -> None:
    """Write a volume atomically; the format follows the suffix.

    Args:
        volume: what to write.
        path: output file or ``.zarr`` folder (replaced if it exists).
        ngff_version: OME-Zarr only: ``"0.4"`` (Zarr v2) or ``"0.5"`` (Zarr v3).
        chunks: OME-Zarr only: spatial chunk edge (64-128 recommended; default 128).
        options: OME-Zarr only: ``labels={name: Volume}``, ``max_region_bytes``.
    """
    p = Path(path)
    suffix = suffix_of(p)
    if suffix == ".zarr":
        from mousereg.io.ome_zarr_write import write_ome_zarr

        write_ome_zarr(volume, p, ngff_version=ngff_version, chunks=chunks, **options)
        return
    if suffix == ".nii" or suffix in SITK_SUFFIXES:
        from mousereg.io.sitk_formats import write_sitk

        write_sitk(volume, p, suffix)
        return
    raise _unknown(p, writing=True)


def convert(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    *,
    series: str | None = None,
    ngff_version: str = "0.4",
    chunks: int | None = None,
) -> None:
    """Read ``src`` and write it to ``dst`` (formats by suffix), streaming into OME-Zarr."""
    if suffix_of(Path(dst)) not in WRITE_SUFFIXES:
        raise _unknown(Path(dst), writing=True)
    if Path(src).resolve() == Path(dst).resolve():
        msg = f"{dst}: is also the input; write to another path"
        raise InputError(msg)
    write_volume(read_volume(src, series=series), dst, ngff_version=ngff_version, chunks=chunks)
