"""Holder profiles: the marker holes' design coordinates (pipelines/holders/*.yaml).

A profile lists each hole's ``id``, ``center`` (mm, holder frame), ``axis``, ``diameter`` and
``length``. Matching detected centres against it names them after the design (``hole 7``) and
checks them against a known layout instead of only against the other scan.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from mousereg.errors import InputError
from mousereg.fiducials.markers import Markers
from mousereg.fiducials.match import DEFAULT_TOL_MM, Match, match_points

#: A partly filled hole's vaseline plug (what the scans see) sits up to this fraction of the
#: hole's length from the design centre (a plug of 60 % of the hole at one end: 20 %).
PLUG_SLACK = 0.2

#: Where the named profiles live, relative to the repository root.
HOLDERS_DIR = Path(__file__).resolve().parents[3] / "pipelines" / "holders"


@dataclasses.dataclass(frozen=True)
class HolderProfile:
    """The marker-hole layout of one holder design."""

    name: str
    ids: tuple[str, ...]
    centers: np.ndarray
    axes: np.ndarray
    diameters: np.ndarray
    lengths: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)


def _resolve(name_or_path: str | os.PathLike[str]) -> Path:
    p = Path(name_or_path)
    if p.suffix.lower() in (".yaml", ".yml"):
        return p
    return HOLDERS_DIR / f"{p.name}.yaml"


def load_holder(name_or_path: str | os.PathLike[str] = "default") -> HolderProfile:
    """Read a holder profile by name (``pipelines/holders/<name>.yaml``) or path."""
    p = _resolve(name_or_path)
    if not p.is_file():
        msg = f"{p}: no such holder profile; give a .yaml path or a name in {HOLDERS_DIR}"
        raise InputError(msg)
    doc: dict[str, Any] = yaml.safe_load(p.read_text()) or {}
    holes = doc.get("holes")
    if not isinstance(holes, list) or not holes:
        msg = f"{p}: a holder profile needs a non-empty 'holes' list"
        raise InputError(msg)
    try:
        centers = np.array([h["center"] for h in holes], dtype=float).reshape(-1, 3)
        axes = np.array([h.get("axis", [0.0, 0.0, 1.0]) for h in holes], dtype=float)
        diameters = np.array([h.get("diameter", np.nan) for h in holes], dtype=float)
        lengths = np.array([h.get("length", np.nan) for h in holes], dtype=float)
    except (KeyError, TypeError, ValueError) as exc:
        msg = f"{p}: each hole needs 'center: [x, y, z]' in mm ({exc})"
        raise InputError(msg) from exc
    axes /= np.linalg.norm(axes, axis=1, keepdims=True)
    ids = tuple(str(h.get("id", i + 1)) for i, h in enumerate(holes))
    return HolderProfile(str(doc.get("name", p.stem)), ids, centers, axes, diameters, lengths)


def match_to_holder(
    markers: Markers, profile: HolderProfile, tol_mm: float = DEFAULT_TOL_MM
) -> tuple[Markers, Match]:
    """Match detected markers to the profile; return the matched ones named ``hole <id>``.

    The returned match maps the profile (holder frame) onto the scan. The tolerance is widened
    by :data:`PLUG_SLACK` of the longest hole, since plugs need not fill their holes.
    """
    lengths = profile.lengths[np.isfinite(profile.lengths)]
    tol = tol_mm + PLUG_SLACK * (float(lengths.max()) if lengths.size else 0.0)
    m = match_points(profile.centers, markers.points, tol_mm=tol, names=("holder", "scan"))
    named = markers.subset(m.pairs[:, 1])
    names = tuple(f"hole {profile.ids[i]}" for i in m.pairs[:, 0])
    return dataclasses.replace(named, names=names), m
