"""Manifests: the list of subjects (and time points) a batch runs over.

CSV layout (docs/batch.md): one row per subject and time point; columns ``subject`` (required),
``timepoint`` and ``group`` (optional), image columns ``ct``, ``mr_water``, ``mr_fat`` or ``mr``,
label columns ``ct_labels``, ``mr_labels`` and the phantom's ground-truth folder ``truth``.
Relative paths resolve against the manifest's folder. ISA-Tab studies are read by
:mod:`mousereg.batch.isatab`; :func:`read_manifest` dispatches on the path.

Errors that make the whole table unusable (unknown column, duplicated subject and time point, empty
subject) raise :class:`~mousereg.errors.InputError` naming the row. A row whose files are missing
is kept and carries its ``problems``: the runner fails that row's jobs with the reason and runs the
others.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import os
import re
from collections.abc import Sequence
from pathlib import Path

from mousereg.errors import InputError
from mousereg.io.atomic import write_text

ID_COLUMNS = ("subject", "timepoint", "group")
PATH_COLUMNS = ("ct", "mr_water", "mr_fat", "mr", "ct_labels", "mr_labels", "truth")
COLUMNS = ID_COLUMNS + PATH_COLUMNS
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclasses.dataclass(frozen=True)
class Row:
    """One subject at one time point.

    Args:
        number: 1-based data row number in the source table (for messages).
        subject: animal ID.
        timepoint: time point (free text, minutes in the dataset), "" when absent.
        group: study group, "" when absent.
        paths: column name -> absolute path, only for the columns the row fills.
        problems: what is wrong with the row's files (empty when the row is usable).
    """

    number: int
    subject: str
    timepoint: str = ""
    group: str = ""
    paths: dict[str, Path] = dataclasses.field(default_factory=dict)
    problems: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        """A file-system safe job name: ``subject`` or ``subject_tTIMEPOINT``."""
        base = _SAFE.sub("-", self.subject)
        return f"{base}_t{_SAFE.sub('-', self.timepoint)}" if self.timepoint else base

    @property
    def label(self) -> str:
        """How messages name this row."""
        tp = f", timepoint {self.timepoint}" if self.timepoint else ""
        return f"row {self.number} (subject {self.subject}{tp})"

    def path(self, column: str) -> Path:
        """The path in ``column``; an :class:`InputError` naming the row when it is empty."""
        if column not in self.paths:
            msg = f"{self.label}: the column {column!r} is empty; fill it in the manifest"
            raise InputError(msg)
        return self.paths[column]

    def has(self, column: str) -> bool:
        """True when the row fills ``column``."""
        return column in self.paths


@dataclasses.dataclass(frozen=True)
class Manifest:
    """The rows of a manifest and where it came from."""

    source: Path
    rows: tuple[Row, ...]

    def __len__(self) -> int:
        return len(self.rows)

    def columns(self) -> list[str]:
        """The columns any row fills, in the canonical order."""
        used = {c for r in self.rows for c in r.paths}
        extra = [c for c in ("timepoint", "group") if any(getattr(r, c) for r in self.rows)]
        return ["subject", *extra, *[c for c in PATH_COLUMNS if c in used]]


def _row_problems(label: str, paths: dict[str, Path]) -> tuple[str, ...]:
    problems = []
    for column, path in paths.items():
        if not path.exists():
            problems.append(f"{label}: {column} file {path} not found; fix the path or the file")
    if "mr" in paths and ("mr_water" in paths or "mr_fat" in paths):
        problems.append(f"{label}: give either 'mr' or 'mr_water'/'mr_fat', not both")
    return tuple(problems)


def make_row(number: int, values: dict[str, str], base: Path, source: str) -> Row:
    """Build a :class:`Row` from text cells; relative paths resolve against ``base``."""
    subject = values.get("subject", "").strip()
    if not subject:
        msg = f"{source}: row {number} has no subject; every row needs one"
        raise InputError(msg)
    paths: dict[str, Path] = {}
    for column in PATH_COLUMNS:
        cell = values.get(column, "").strip()
        if cell:
            p = Path(os.path.expanduser(cell))
            paths[column] = Path(os.path.normpath(p if p.is_absolute() else base / p))
    timepoint = values.get("timepoint", "").strip()
    label = f"row {number} (subject {subject}{', timepoint ' + timepoint if timepoint else ''})"
    return Row(
        number=number,
        subject=subject,
        timepoint=timepoint,
        group=values.get("group", "").strip(),
        paths=paths,
        problems=tuple(f"{source} {p}" for p in _row_problems(label, paths)),
    )


def check_unique(rows: Sequence[Row], source: str) -> None:
    """Raise when two rows share subject and time point."""
    seen: dict[tuple[str, str], Row] = {}
    for row in rows:
        key = (row.subject, row.timepoint)
        if key in seen:
            msg = (
                f"{source}: {row.label} duplicates row {seen[key].number}; "
                "each subject and time point may appear once"
            )
            raise InputError(msg)
        seen[key] = row
    names: dict[str, Row] = {}
    for row in rows:
        if row.name in names:
            msg = (
                f"{source}: {row.label} and row {names[row.name].number} map to the same "
                f"output folder {row.name!r}; rename one subject"
            )
            raise InputError(msg)
        names[row.name] = row


def read_csv_manifest(path: str | os.PathLike[str]) -> Manifest:
    """Read and validate a CSV manifest."""
    p = Path(path)
    if not p.is_file():
        msg = f"{p}: manifest not found; pass a CSV file or an ISA-Tab folder"
        raise InputError(msg)
    with p.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        header = [h.strip() for h in (reader.fieldnames or [])]
        if "subject" not in header:
            msg = f"{p}: the header has no 'subject' column (header: {', '.join(header)})"
            raise InputError(msg)
        for h in header:
            if h not in COLUMNS:
                msg = f"{p}: unknown column {h!r} in the header; known: {', '.join(COLUMNS)}"
                raise InputError(msg)
        rows = []
        for number, raw in enumerate(reader, start=1):
            if None in raw:
                msg = f"{p}: row {number} has more cells than the header has columns"
                raise InputError(msg)
            cells = {k.strip(): (v or "") for k, v in raw.items()}
            if not any(v.strip() for v in cells.values()):
                continue
            rows.append(make_row(number, cells, p.parent.resolve(), str(p)))
    if not rows:
        msg = f"{p}: the manifest has no rows"
        raise InputError(msg)
    check_unique(rows, str(p))
    return Manifest(source=p.resolve(), rows=tuple(rows))


def write_csv_manifest(
    rows: Sequence[Row], path: str | os.PathLike[str], *, relative: bool = True
) -> Path:
    """Write ``rows`` as a CSV manifest (atomically); paths relative to its folder by default."""
    p = Path(path)
    base = p.parent.resolve()
    m = Manifest(source=p, rows=tuple(rows))
    columns = m.columns()
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    for r in rows:
        cells = []
        for c in columns:
            if c in PATH_COLUMNS:
                q = r.paths.get(c)
                cells.append("" if q is None else _relative(q, base) if relative else str(q))
            else:
                cells.append(getattr(r, c))
        writer.writerow(cells)
    write_text(p, buf.getvalue())
    return p


def _relative(path: Path, base: Path) -> str:
    try:
        return os.path.relpath(path.resolve(), base)
    except ValueError:  # another drive (Windows)
        return str(path)


def read_manifest(path: str | os.PathLike[str]) -> Manifest:
    """Read a CSV manifest, or an ISA-Tab study (a folder with ``i_*.txt`` or that file)."""
    p = Path(path)
    is_isa = (p.is_dir() and any(p.glob("i_*.txt"))) or (
        p.is_file() and p.name.startswith("i_") and p.suffix == ".txt"
    )
    if is_isa:
        from mousereg.batch.isatab import read_isatab

        return read_isatab(p)
    if p.is_dir():
        msg = f"{p}: a folder without an ISA-Tab investigation file (i_*.txt); pass manifest.csv"
        raise InputError(msg)
    return read_csv_manifest(p)
