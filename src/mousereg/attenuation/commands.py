"""File-level entry points behind ``mousereg mumap ct|mr|compare``: read, compute, write.

Each µ-map is written by suffix (``.zarr`` = OME-Zarr, ``.nii.gz`` ...) with
:func:`mousereg.io.write_volume`, float32 cm⁻¹, modality ``mu511``, and a JSON sidecar
(``OUT.json`` beside ``OUT.nii.gz`` or ``OUT.zarr``) that records how it was made and any
warnings (e.g. an uncalibrated HU scale).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from mousereg.attenuation.ct import mumap_from_ct
from mousereg.attenuation.evaluate import compare_mumaps
from mousereg.attenuation.mr import load_atlas_templates, mumap_from_mr
from mousereg.errors import InputError
from mousereg.io.atomic import write_text
from mousereg.volume import Volume

PathLike = str | os.PathLike[str]


def sidecar_path(output: PathLike) -> Path:
    """``mu.nii.gz`` -> ``mu.json``; ``mu.zarr`` -> ``mu.json``."""
    p = Path(output)
    stem = p.name.split(".")[0] or p.name
    return p.with_name(f"{stem}.json")


def _write(mumap: Volume, output: PathLike, metadata: dict[str, Any]) -> Path:
    from mousereg.io import write_volume

    vol = mumap.with_array(mumap.data.astype(np.float32), modality="mu511")
    write_volume(vol, output)
    side = sidecar_path(output)
    write_text(side, json.dumps({"output": str(output), **metadata}, indent=2) + "\n")
    return side


def mumap_ct(
    ct: PathLike,
    output: PathLike,
    *,
    kvp: float = 55.0,
    model: str = "materials",
    effective_kev: float | None = None,
    calibration: str | None = None,
    like: PathLike | None = None,
    spacing_mm: float | None = None,
    fwhm_mm: float = 0.0,
    holder: str = "keep",
) -> dict[str, Any]:
    """Read a CT, make its µ-map, write it and its sidecar; return the metadata."""
    from mousereg.io import read_volume

    like_vol = read_volume(like) if like is not None else None
    if like_vol is not None and like_vol.is_multichannel:
        like_vol = like_vol.channel(0)
    result = mumap_from_ct(
        read_volume(ct),
        kvp=kvp,
        model=model,
        effective_kev=effective_kev,
        calibration=calibration,
        holder=holder,
        fwhm_mm=fwhm_mm,
        like=like_vol,
        spacing_mm=spacing_mm,
    )
    metadata = {"input": str(ct), **result.metadata}
    metadata["sidecar"] = str(_write(result.mumap, output, metadata))
    return metadata


def _dixon_inputs(water: PathLike, fat: PathLike | None) -> tuple[Volume, Volume]:
    """Water and fat from two files, or from one two-channel file (channels water, fat)."""
    from mousereg.io import read_volume

    w = read_volume(water)
    if fat is None:
        if not w.is_multichannel or w.n_channels != 2:
            msg = f"--water {water}: give --fat too, or a 2-channel (water, fat) image"
            raise InputError(msg)
        names = w.channel_names
        wi = names.index("water") if "water" in names else 0
        return w.channel(wi), w.channel(1 - wi)
    return w, read_volume(fat)


def mumap_mr(
    water: PathLike,
    fat: PathLike | None,
    output: PathLike,
    *,
    method: str = "dixon",
    atlas: PathLike | None = None,
    transform: PathLike | None = None,
    registration: str = "affine",
    values: str = "mouse",
) -> dict[str, Any]:
    """Read Dixon images (and an atlas), make the µ-map, write it and its sidecar."""
    w, f = _dixon_inputs(water, fat)
    templates = load_atlas_templates(atlas) if atlas is not None else None
    t = None
    if transform is not None:
        from mousereg.registration import Transform

        t = Transform.read(transform)
    result = mumap_from_mr(
        w, f, method=method, atlas=templates, transform=t, register=registration, values=values
    )
    metadata = {"water": str(water), "fat": str(fat), "atlas": str(atlas), **result.metadata}
    metadata["sidecar"] = str(_write(result.mumap, output, metadata))
    return metadata


def mumap_compare(
    a: PathLike,
    b: PathLike,
    output: PathLike,
    *,
    labels: PathLike | None = None,
    axis: str = "auto",
    n_angles: int = 60,
) -> dict[str, Any]:
    """Compare µ-map A (test) with B (reference) and write the report as JSON."""
    from mousereg.io import read_volume

    lab = None
    if labels is not None:
        from mousereg.labels import LabelTable

        lab = read_volume(labels)
        if lab.labels is None:
            lab = lab.with_array(lab.data, labels=LabelTable.default())
    report = compare_mumaps(
        read_volume(a), read_volume(b), labels=lab, axis=axis, n_angles=n_angles
    )
    doc = {"a": str(a), "b": str(b), "labels": None if labels is None else str(labels), **report}
    write_text(output, json.dumps(doc, indent=2) + "\n")
    return doc
