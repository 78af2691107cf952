"""Suffix dispatch for :func:`read_volume` / :func:`write_volume` (first cut: SimpleITK formats)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from mousereg.errors import InputError
from mousereg.io.atomic import atomic_path
from mousereg.volume import Volume

SITK_SUFFIXES = (".nii", ".nii.gz", ".nrrd", ".nhdr", ".mha", ".mhd", ".mnc")


def _suffix(path: Path) -> str:
    name = path.name.lower()
    for s in (*SITK_SUFFIXES, ".zarr"):
        if name.endswith(s):
            return s
    return path.suffix.lower()


def read_volume(path: str | os.PathLike[str], *, series: str | None = None) -> Volume:
    """Read a volume from a medical image file."""
    import SimpleITK as sitk

    p = Path(path)
    if not p.exists():
        msg = f"{p}: no such file or folder; check the path"
        raise InputError(msg)
    if _suffix(p) not in SITK_SUFFIXES:
        msg = f"{p}: unknown image suffix; use one of {', '.join(SITK_SUFFIXES)}"
        raise InputError(msg)
    try:
        img = sitk.ReadImage(str(p))
    except RuntimeError as exc:
        reason = str(exc).strip().splitlines()[-1]
        msg = f"{p}: cannot be read as an image ({reason}); is it truncated?"
        raise InputError(msg) from exc
    return Volume.from_sitk(img)


def write_volume(volume: Volume, path: str | os.PathLike[str], **options: Any) -> None:
    """Write a volume atomically; the format follows the suffix."""
    import SimpleITK as sitk

    p = Path(path)
    if _suffix(p) not in SITK_SUFFIXES:
        msg = f"{p}: unknown image suffix; use one of {', '.join(SITK_SUFFIXES)}"
        raise InputError(msg)
    with atomic_path(p) as tmp:
        sitk.WriteImage(volume.to_sitk(), str(tmp), useCompression=str(p).endswith(".gz"))


def convert(src: str | os.PathLike[str], dst: str | os.PathLike[str], **options: Any) -> None:
    """Read ``src`` and write it to ``dst``."""
    write_volume(read_volume(src, series=options.get("series")), dst, **options)
