"""Formats SimpleITK reads and writes: NIfTI (.nii.gz; .nii is written here too), NRRD,
MetaImage (.mha/.mhd) and MINC-2 (.mnc).

Multi-channel volumes become vector images. Channel names and modality travel as header
key/value pairs where the format keeps them (NRRD, MetaImage); NIfTI and MINC drop them.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from mousereg.errors import InputError
from mousereg.io.atomic import atomic_path, temporary_sibling
from mousereg.volume import Volume

CHANNELS_KEY = "mousereg_channel_names"
MODALITY_KEY = "mousereg_modality"
KEEPS_METADATA = (".nrrd", ".nhdr", ".mha", ".mhd")
DETACHED = (".mhd", ".nhdr")


def _reason(exc: Exception) -> str:
    lines = [ln.strip() for ln in str(exc).strip().splitlines() if ln.strip()]
    text = lines[-1] if lines else type(exc).__name__
    return text.split(": ", 1)[-1][:160]


def read_sitk(path: Path, *, chunks: int = 64) -> Volume:
    """Read one image file with SimpleITK."""
    import SimpleITK as sitk

    try:
        img = sitk.ReadImage(str(path))
    except RuntimeError as exc:
        msg = f"{path}: cannot be read as an image ({_reason(exc)}); is it truncated?"
        raise InputError(msg) from exc
    names: tuple[str, ...] = ()
    if img.HasMetaDataKey(CHANNELS_KEY):
        try:
            names = tuple(str(n) for n in json.loads(img.GetMetaData(CHANNELS_KEY)))
        except json.JSONDecodeError:
            names = ()
    if len(names) != img.GetNumberOfComponentsPerPixel() or len(names) == 1:
        names = ()
    modality = img.GetMetaData(MODALITY_KEY) if img.HasMetaDataKey(MODALITY_KEY) else ""
    try:
        return Volume.from_sitk(img, chunks=chunks, channel_names=names, modality=modality)
    except InputError as exc:
        msg = f"{path}: {exc}"
        raise InputError(msg) from exc


def write_sitk(volume: Volume, path: Path, suffix: str) -> None:
    """Write with SimpleITK (computes the volume; these formats are not chunked)."""
    import SimpleITK as sitk

    img = volume.to_sitk()
    if suffix in KEEPS_METADATA:
        if volume.is_multichannel:
            img.SetMetaData(CHANNELS_KEY, json.dumps(list(volume.channel_names)))
        if volume.modality:
            img.SetMetaData(MODALITY_KEY, volume.modality)
    compress = suffix in (".nii.gz", ".nrrd", ".mha")
    try:
        if suffix in DETACHED:
            _write_detached(img, path)
        else:
            with atomic_path(path) as tmp:
                sitk.WriteImage(img, str(tmp), useCompression=compress)
    except RuntimeError as exc:
        msg = f"{path}: cannot be written ({_reason(exc)}); check the folder and free space"
        raise InputError(msg) from exc


def _write_detached(img: Any, path: Path) -> None:
    """Header + data file pairs (.mhd/.raw, .nhdr/.raw): write both in a temporary sibling
    folder under their final names, move the data file into place, then the header last."""
    import SimpleITK as sitk

    tmpdir = temporary_sibling(path.with_name(path.name + ".d"))
    tmpdir.mkdir(parents=True)
    try:
        sitk.WriteImage(img, str(tmpdir / path.name))
        for f in sorted(tmpdir.iterdir(), key=lambda f: f.name == path.name):
            os.replace(f, path.with_name(f.name))
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
