"""Each subject's label table, and the check that all subjects share one.

A label map's table comes from the volume itself (OME-Zarr ``labels`` metadata) or from a sidecar
beside it (``<name>.json``, ``<name>.ctbl``, ``<name>.txt``, or ``labels.json`` in its folder);
without either, the default table. Atlases pool label maps voxel by voxel, so every subject must
use the same values for the same organs.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from mousereg.errors import InputError
from mousereg.labels import LabelTable

SIDECAR_SUFFIXES = (".json", ".ctbl", ".txt")
IMAGE_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".mha", ".mhd", ".zarr")


def _stem(path: Path) -> str:
    for s in IMAGE_SUFFIXES:
        if path.name.endswith(s):
            return path.name[: -len(s)]
    return path.stem


def sidecar_table(label_path: Path) -> LabelTable | None:
    """The label table stored beside a label map, if any."""
    stem = _stem(label_path)
    candidates = [label_path.with_name(stem + s) for s in SIDECAR_SUFFIXES]
    candidates.append(label_path.with_name("labels.json"))
    for c in candidates:
        if c.is_file():
            return LabelTable.read(c)
    return None


def table_key(table: LabelTable) -> tuple[tuple[int, str], ...]:
    """What must agree between subjects: the (value, name) pairs."""
    return tuple((lab.value, lab.name) for lab in table)


def check_same_tables(tables: Sequence[tuple[str, LabelTable]]) -> LabelTable:
    """The common table of ``(source, table)`` pairs; InputError naming the first mismatch."""
    first_source, first = tables[0]
    for source, table in tables[1:]:
        if table_key(table) != table_key(first):
            a = dict(table_key(first))
            b = dict(table_key(table))
            diff = sorted(v for v in set(a) | set(b) if a.get(v) != b.get(v))
            msg = (
                f"{source}: label table differs from {first_source} at value(s) {diff[:5]} "
                f"({[a.get(v) for v in diff[:5]]} vs {[b.get(v) for v in diff[:5]]}); "
                "relabel the subjects to one table before building an atlas"
            )
            raise InputError(msg)
    return first


def check_values(labels: np.ndarray, table: LabelTable, source: str, ignore: int) -> None:
    """InputError when a label map holds values its table does not list."""
    present = set(np.unique(labels).tolist()) - {0, ignore}
    unknown = sorted(present - set(table.values))
    if unknown:
        msg = (
            f"{source}: label values {unknown[:8]} are not in its label table; "
            "add them to the table or relabel the map"
        )
        raise InputError(msg)
