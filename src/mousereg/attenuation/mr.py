"""µ-map at 511 keV from a Dixon MRI: ``dixon`` (4 classes), ``atlas`` (pseudo-CT) or ``hybrid``.

See :mod:`.dixon`, :mod:`.pseudo_ct` and :mod:`.hybrid` for the methods, and
:func:`load_atlas_templates` for the atlas folders that are read.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import numpy as np

from mousereg.attenuation.dixon import CLASSES, check_dixon, dixon_mumap
from mousereg.attenuation.hybrid import hybrid_mu
from mousereg.attenuation.pseudo_ct import (
    AtlasRegistration,
    AtlasTemplates,
    pseudo_ct_mumap,
    warp_atlas_mu,
)
from mousereg.errors import InputError
from mousereg.volume import Volume

METHODS = ("dixon", "atlas", "hybrid")
TEMPLATE_NAMES = {"water": "water", "fat": "fat", "mu511": "mu511"}


@dataclasses.dataclass(frozen=True)
class MRMuMap:
    """The µ-map and what was done to make it."""

    mumap: Volume
    metadata: dict[str, Any]


def _find_template(folder: Path, stem: str) -> Path:
    hits = sorted(p for p in folder.iterdir() if p.name.split(".")[0] == stem)
    if not hits:
        msg = (
            f"--atlas {folder}: no {stem} template ({stem}.nii.gz, {stem}.zarr, ...); an atlas "
            "folder holds atlas.json + templates.zarr, or water, fat and mu511 images"
        )
        raise InputError(msg)
    return hits[0]


def load_atlas_templates(path: str | os.PathLike[str]) -> AtlasTemplates:
    """Read an atlas's water, fat and µ511 templates.

    A mousereg atlas folder (``atlas.json`` + ``templates.zarr`` with channels ``mr_water``,
    ``mr_fat``, ``mu511``; opened and validated by :func:`mousereg.atlas.load_atlas`) or a plain
    folder with ``water.*``, ``fat.*`` and ``mu511.*`` images in
    any format :func:`mousereg.io.read_volume` reads.
    """
    from mousereg.io import read_volume

    folder = Path(path)
    if not folder.is_dir():
        msg = f"--atlas {folder}: not a folder; pass an atlas folder"
        raise InputError(msg)
    if (folder / "atlas.json").is_file():
        from mousereg.atlas import load_atlas

        channels = ("mr_water", "mr_fat", "mu511")
        templates = load_atlas(folder).template(channels)
        return AtlasTemplates(*(templates.channel(c) for c in channels))
    vols = {k: read_volume(_find_template(folder, stem)) for k, stem in TEMPLATE_NAMES.items()}
    return AtlasTemplates(vols["water"], vols["fat"], vols["mu511"])


def mumap_from_mr(
    water: Volume,
    fat: Volume,
    *,
    method: str = "dixon",
    atlas: AtlasTemplates | None = None,
    transform: Any = None,
    register: AtlasRegistration | str = "affine",
    values: str = "mouse",
) -> MRMuMap:
    """A µ511 map (cm⁻¹) on the MRI grid.

    Args:
        water, fat: the Dixon water and fat images (one grid).
        method: ``"dixon"``, ``"atlas"`` or ``"hybrid"``.
        atlas: the atlas templates (``atlas`` and ``hybrid``).
        transform: subject point -> atlas point; computed with ``register`` when ``None``.
        register: ``register(subject_mr, atlas_mr) -> transform``, or the name of one in
            :func:`.atlas_registration.atlas_registration` (``"affine"``, ``"deformable"``).
        values: Dixon class values, ``"mouse"`` or ``"martinez-moller"``.
    """
    if method not in METHODS:
        msg = f"--method {method!r}: use one of {', '.join(METHODS)}"
        raise InputError(msg)
    check_dixon(water, fat)
    dixon_mu, dc = dixon_mumap(water, fat, values=values)
    counts = np.bincount(dc.classes.compute().ravel(), minlength=len(CLASSES))
    voxel_ml = float(np.prod(water.spacing)) / 1000.0
    metadata: dict[str, Any] = {
        "units": "cm^-1 at 511 keV",
        "method": method,
        "dixon_values": values,
        "signal_threshold": dc.threshold,
        "registration": None
        if method == "dixon" or transform is not None
        else register
        if isinstance(register, str)
        else getattr(register, "__name__", "custom"),
        "class_volumes_ml": {
            c: round(float(n) * voxel_ml, 4) for c, n in zip(CLASSES, counts, strict=True)
        },
    }
    if method == "dixon":
        return MRMuMap(dixon_mu, metadata)
    if atlas is None:
        msg = f"--method {method} needs an atlas (--atlas DIR)"
        raise InputError(msg)
    if transform is None:
        from mousereg.attenuation.atlas_registration import atlas_registration

        reg = atlas_registration(register) if isinstance(register, str) else register
        subject_mr = Volume.stack([water, fat], names=("water", "fat"))
        transform = reg(subject_mr, atlas.mr())
    if method == "atlas":
        mu = pseudo_ct_mumap(water, atlas, transform, body=dc.body)
        return MRMuMap(mu, metadata)
    warped = warp_atlas_mu(atlas.mu511, water, transform).compute()
    mu_arr = hybrid_mu(dixon_mu.compute(), dc, warped)
    return MRMuMap(water.with_array(mu_arr, modality="mu511", channel_names=()), metadata)
