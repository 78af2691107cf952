"""Atlas inputs: one :class:`AtlasSubject` per manifest row, checked before any work starts.

A row needs ``subject``, ``ct``, ``mr_water``, ``mr_fat``, ``ct_labels``, ``mr_labels`` and the
subject's CT<->MRI mapping: a ``transform`` column (an ITK ``.h5`` mapping MRI points to CT points,
as ``mousereg register`` writes it) or, for synthetic studies, a ``truth`` folder holding
``transform.h5``. The 511 keV mu-map comes from a ``mu511`` column, else ``truth/mu511.*``,
else the CT through the bilinear CT->mu conversion of :mod:`mousereg.attenuation`.
"""

from __future__ import annotations

import csv
import dataclasses
import re
from pathlib import Path

from mousereg.errors import InputError

SUBJECT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
REQUIRED_COLUMNS = ("subject", "ct", "mr_water", "mr_fat", "ct_labels", "mr_labels")
MU_NAMES = ("mu511.nii.gz", "mu511.nii", "mu511.zarr", "mu511.nrrd", "mu511.mha")


@dataclasses.dataclass(frozen=True)
class AtlasSubject:
    """Paths of one subject's inputs (all absolute)."""

    id: str
    ct: Path
    mr_water: Path
    mr_fat: Path
    ct_labels: Path
    mr_labels: Path
    mr_to_ct: Path
    mu511: Path | None = None
    kvp: float | None = None


def _resolve(base: Path, value: str) -> Path:
    p = Path(value)
    return p if p.is_absolute() else base / p


def _mapping(row: dict[str, str], base: Path, where: str) -> Path:
    if row.get("transform"):
        return _resolve(base, row["transform"])
    if row.get("truth"):
        return _resolve(base, row["truth"]) / "transform.h5"
    msg = (
        f"{where}: no CT<->MRI mapping; add a 'transform' column with the MRI->CT transform.h5 "
        "from `mousereg register`"
    )
    raise InputError(msg)


def _mu511(row: dict[str, str], base: Path) -> Path | None:
    if row.get("mu511"):
        return _resolve(base, row["mu511"])
    if row.get("truth"):
        folder = _resolve(base, row["truth"])
        for name in MU_NAMES:
            if (folder / name).exists():
                return folder / name
    return None


def read_subjects(manifest: str | Path) -> list[AtlasSubject]:
    """Read and check the atlas subjects of a manifest CSV (missing files raise InputError)."""
    path = Path(manifest)
    if not path.exists():
        msg = f"{path}: manifest not found; check the path"
        raise InputError(msg)
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        missing_cols = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or [])]
        if missing_cols:
            msg = (
                f"{path}: manifest lacks the column(s) {missing_cols}; "
                f"an atlas needs {REQUIRED_COLUMNS}"
            )
            raise InputError(msg)
        rows = list(reader)
    base = path.parent
    subjects: list[AtlasSubject] = []
    seen: set[str] = set()
    for n, row in enumerate(rows, start=2):
        where = f"{path}:{n}"
        sid = (row["subject"] or "").strip()
        if row.get("timepoint"):
            sid = f"{sid}_{row['timepoint'].strip()}"
        if not SUBJECT_ID.fullmatch(sid):
            msg = (
                f"{where}: subject id {sid!r} may only use letters, digits, '.', '_' and '-' "
                "(it names the subject's folder in the atlas); rename it"
            )
            raise InputError(msg)
        if sid in seen:
            msg = f"{where}: subject id {sid!r} is empty or repeated; give each row a unique id"
            raise InputError(msg)
        seen.add(sid)
        paths = {c: _resolve(base, row[c] or "") for c in REQUIRED_COLUMNS[1:]}
        subject = AtlasSubject(
            id=sid,
            mr_to_ct=_mapping(row, base, where),
            mu511=_mu511(row, base),
            kvp=float(row["kvp"]) if row.get("kvp") else None,
            **paths,
        )
        for field in ("ct", "mr_water", "mr_fat", "ct_labels", "mr_labels", "mr_to_ct"):
            p = getattr(subject, field)
            if not row.get(field, "x") or not p.exists():
                msg = f"{where}: subject {sid}: {field} file {p} not found; fix the manifest row"
                raise InputError(msg)
        subjects.append(subject)
    if not subjects:
        msg = f"{path}: the manifest has no rows"
        raise InputError(msg)
    return subjects
