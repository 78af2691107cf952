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
from mousereg.io.native_stderr import native_stderr, reason
from mousereg.volume import Volume, check_direction

CHANNELS_KEY = "mousereg_channel_names"
MODALITY_KEY = "mousereg_modality"
KEEPS_METADATA = (".nrrd", ".nhdr", ".mha", ".mhd")
DETACHED = (".mhd", ".nhdr")


def read_sitk(path: Path, *, chunks: int = 64) -> Volume:
    """Read one image file with SimpleITK."""
    import SimpleITK as sitk

    with native_stderr() as lines:
        try:
            img = sitk.ReadImage(str(path))
        except RuntimeError as exc:
            failure: RuntimeError | None = exc
        else:
            failure = None
    if failure is not None:
        msg = f"{path}: cannot be read as an image ({reason(failure, lines)}); is it truncated?"
        raise InputError(msg) from failure
    names: tuple[str, ...] = ()
    if img.HasMetaDataKey(CHANNELS_KEY):
        try:
            names = tuple(str(n) for n in json.loads(img.GetMetaData(CHANNELS_KEY)))
        except json.JSONDecodeError:
            names = ()
    if len(names) != img.GetNumberOfComponentsPerPixel() or len(names) == 1:
        names = ()
    modality = img.GetMetaData(MODALITY_KEY) if img.HasMetaDataKey(MODALITY_KEY) else ""
    check_direction(img.GetDirection(), source=str(path))
    if img.GetDimension() != 3:
        msg = f"{path}: has {img.GetDimension()} dimensions; mousereg reads 3-D volumes"
        raise InputError(msg)
    return Volume.from_sitk(img, chunks=chunks, channel_names=names, modality=modality)


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
    with native_stderr() as lines:
        try:
            if suffix in DETACHED:
                _write_detached(img, path)
            else:
                with atomic_path(path) as tmp:
                    sitk.WriteImage(img, str(tmp), useCompression=compress)
        except RuntimeError as exc:
            failure: RuntimeError | None = exc
        else:
            failure = None
    if failure is not None:
        msg = f"{path}: cannot be written ({reason(failure, lines)}); check the folder and space"
        raise InputError(msg) from failure


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
