"""`Markers`: detected or hand-placed marker centres, and their files.

Formats (by suffix): ``.mrk.json`` (3D Slicer markups, LPS or RAS), ``.json`` (mousereg's own:
positions with their localisation errors and shape features), ``.csv`` (``x,y,z`` with an optional
``name`` and ``fle_mm`` column, LPS mm) and ``.fcsv`` (legacy Slicer fiducial lists).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from mousereg.errors import InputError
from mousereg.io.atomic import write_text

#: Multiply a point by this to go between RAS and LPS (the flip is its own inverse).
RAS_TO_LPS = np.array([-1.0, -1.0, 1.0])
SLICER_SCHEMA = (
    "https://raw.githubusercontent.com/slicer/slicer/main/Modules/Loadable/Markups/"
    "Resources/Schema/markups-schema-v1.0.3.json#"
)


@dataclasses.dataclass(frozen=True)
class Markers:
    """Marker centres in LPS mm with optional per-marker localisation error and features.

    Attributes:
        points: ``(N, 3)`` centres.
        fle: ``(N,)`` estimated RMS 3-D localisation error per centre (mm; NaN if unknown).
        names: one name per marker.
        features: per-marker extra numbers (volume, length, width, contrast ...), JSON-friendly.
        source: where the markers came from (image paths or "manual").
    """

    points: np.ndarray
    fle: np.ndarray
    names: tuple[str, ...]
    features: tuple[dict[str, float], ...] = ()
    source: str = ""

    @classmethod
    def from_points(
        cls,
        points: npt.ArrayLike,
        fle: npt.ArrayLike | None = None,
        names: tuple[str, ...] | None = None,
        source: str = "",
    ) -> Markers:
        """Markers from plain coordinates."""
        p = np.asarray(points, dtype=float).reshape(-1, 3)
        f = np.full(len(p), np.nan) if fle is None else np.asarray(fle, dtype=float).reshape(-1)
        n = names if names is not None else tuple(f"M{i + 1}" for i in range(len(p)))
        return cls(p, f, tuple(n), (), source)

    def __len__(self) -> int:
        return len(self.points)

    def subset(self, index: npt.ArrayLike) -> Markers:
        """The markers at ``index`` (an integer array or a boolean mask)."""
        idx = np.arange(len(self))[np.asarray(index)]
        feats = tuple(self.features[i] for i in idx) if self.features else ()
        names = tuple(self.names[i] for i in idx)
        return Markers(self.points[idx], self.fle[idx], names, feats, self.source)

    def fle_rms(self) -> float:
        """RMS of the per-marker localisation errors (NaN if none are known)."""
        f = self.fle[np.isfinite(self.fle)]
        return float(np.sqrt(np.mean(f**2))) if len(f) else float("nan")

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly description (the ``.json`` format)."""
        rows = []
        for i in range(len(self)):
            row: dict[str, Any] = {
                "name": self.names[i],
                "position_mm": [round(float(v), 5) for v in self.points[i]],
                "fle_mm": None if not np.isfinite(self.fle[i]) else round(float(self.fle[i]), 5),
            }
            if self.features:
                row.update({k: round(float(v), 5) for k, v in self.features[i].items()})
            rows.append(row)
        return {
            "coordinate_system": "LPS",
            "units": "mm",
            "source": self.source,
            "count": len(self),
            "fle_rms_mm": None if not np.isfinite(self.fle_rms()) else round(self.fle_rms(), 5),
            "markers": rows,
        }


def _slicer_doc(markers: Markers) -> dict[str, Any]:
    points = []
    for i in range(len(markers)):
        fle = markers.fle[i]
        points.append(
            {
                "id": str(i + 1),
                "label": markers.names[i],
                "description": "" if not np.isfinite(fle) else f"FLE {fle:.4f} mm",
                "associatedNodeID": "",
                "position": [float(v) for v in markers.points[i]],
                "orientation": [-1.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, 1.0],
                "selected": True,
                "locked": False,
                "visibility": True,
                "positionStatus": "defined",
            }
        )
    return {
        "@schema": SLICER_SCHEMA,
        "markups": [
            {
                "type": "Fiducial",
                "coordinateSystem": "LPS",
                "coordinateUnits": "mm",
                "locked": False,
                "labelFormat": "%N-%d",
                "controlPoints": points,
                "measurements": [],
            }
        ],
    }


def write_markers(markers: Markers, path: str | os.PathLike[str]) -> None:
    """Write markers atomically; the format follows the suffix (see the module docstring)."""
    p = Path(path)
    name = p.name.lower()
    if name.endswith(".mrk.json"):
        text = json.dumps(_slicer_doc(markers), indent=2)
    elif name.endswith(".json"):
        text = json.dumps(markers.to_dict(), indent=2)
    elif name.endswith(".csv"):
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["name", "x", "y", "z", "fle_mm"])
        for i in range(len(markers)):
            w.writerow([markers.names[i], *(f"{v:.5f}" for v in markers.points[i]), markers.fle[i]])
        text = buf.getvalue()
    else:
        msg = f"{p}: unknown markers suffix; use .mrk.json, .json or .csv"
        raise InputError(msg)
    write_text(p, text)


def _read_slicer(doc: dict[str, Any], p: Path) -> Markers:
    names: list[str] = []
    pts: list[np.ndarray] = []
    for markup in doc.get("markups", []):
        flip = RAS_TO_LPS if markup.get("coordinateSystem", "LPS").upper() == "RAS" else 1.0
        for cp in markup.get("controlPoints", []):
            if cp.get("positionStatus", "defined") != "defined":
                continue
            pts.append(np.asarray(cp["position"], dtype=float) * flip)
            names.append(str(cp.get("label") or f"M{len(names) + 1}"))
    if not pts:
        msg = f"{p}: the Slicer markups file holds no defined control points"
        raise InputError(msg)
    return Markers.from_points(np.array(pts), names=tuple(names), source=str(p))


def _read_own_json(doc: dict[str, Any], p: Path) -> Markers:
    rows = doc["markers"]
    fle = [np.nan if r.get("fle_mm") is None else r["fle_mm"] for r in rows]
    return Markers.from_points(
        [r["position_mm"] for r in rows],
        fle,
        tuple(str(r.get("name", f"M{i + 1}")) for i, r in enumerate(rows)),
        source=str(p),
    )


def _read_csv(text: str, p: Path, lps: bool) -> Markers:
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if p.suffix.lower() == ".fcsv":
        # Legacy Slicer list: id,x,y,z,ow,ox,oy,oz,vis,sel,lock,label,desc,associatedNodeID
        lps = any("LPS" in ln for ln in lines if ln.startswith("#"))
        raw = list(csv.reader(ln for ln in lines if not ln.startswith("#")))
        rows = [[r[0], r[1], r[2], r[3], r[11] if len(r) > 11 else r[0]] for r in raw]
        header = ["id", "x", "y", "z", "name"]
    else:
        rows = list(csv.reader(lines))
        first = [c.strip().lower() for c in rows[0]] if rows else []
        if {"x", "y", "z"} <= set(first):
            header, rows = first, rows[1:]
        else:
            header = ["x", "y", "z"] if len(first) == 3 else ["name", "x", "y", "z"]
    try:
        col = {k: header.index(k) for k in ("x", "y", "z")}
        pts = np.array([[float(r[col[k]]) for k in ("x", "y", "z")] for r in rows])
    except (ValueError, IndexError) as exc:
        msg = f"{p}: cannot read marker coordinates ({exc}); expected columns x,y,z in mm"
        raise InputError(msg) from exc
    if not lps:
        pts = pts * RAS_TO_LPS
    names = tuple(r[header.index("name")] for r in rows) if "name" in header else None
    fle = [float(r[header.index("fle_mm")] or "nan") for r in rows] if "fle_mm" in header else None
    return Markers.from_points(pts, fle, names, source=str(p))


def read_markers(path: str | os.PathLike[str]) -> Markers:
    """Read markers from ``.mrk.json``, ``.json``, ``.csv`` (LPS mm) or ``.fcsv``."""
    p = Path(path)
    if not p.exists():
        msg = f"{p}: no such markers file; check the path"
        raise InputError(msg)
    name = p.name.lower()
    text = p.read_text()
    if name.endswith(".json"):
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            msg = f"{p}: not valid JSON ({exc})"
            raise InputError(msg) from exc
        if "markups" in doc:
            return _read_slicer(doc, p)
        if "markers" in doc:
            return _read_own_json(doc, p)
        msg = f"{p}: neither a Slicer markups file nor a mousereg markers file"
        raise InputError(msg)
    if name.endswith((".csv", ".fcsv")):
        return _read_csv(text, p, lps=True)
    msg = f"{p}: unknown markers suffix; use .mrk.json, .json, .csv or .fcsv"
    raise InputError(msg)
