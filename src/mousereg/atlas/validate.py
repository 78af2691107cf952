"""Validators run after every build and on every load: small ``validate_*`` functions.

Each validator takes the atlas folder and its parsed ``atlas.json`` and returns a list of
problems (empty when all is well). :func:`validate_atlas` runs them all and raises
:class:`InputError` naming the atlas and the first problems.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from mousereg.atlas import format as fmt
from mousereg.atlas.store import checksum_tree, read_json, read_zarr
from mousereg.errors import InputError, MouseregError
from mousereg.labels import LabelTable

Validator = Callable[[Path, dict[str, Any]], list[str]]


def validate_schema(folder: Path, doc: dict[str, Any]) -> list[str]:
    """Every key of the schema is present with the right JSON type; known format and version."""
    problems = [
        f"atlas.json: key {key!r} missing or not a {getattr(kind, '__name__', kind)}"
        for key, kind in fmt.SCHEMA.items()
        if not isinstance(doc.get(key), kind)
    ]
    if doc.get("format") != fmt.FORMAT_NAME:
        problems.append(f"atlas.json: format is {doc.get('format')!r}, not {fmt.FORMAT_NAME!r}")
    major = str(doc.get("format_version", "")).split(".")[0]
    if major != fmt.FORMAT_VERSION.split(".")[0]:
        problems.append(
            f"atlas.json: format_version {doc.get('format_version')!r} is not readable by this "
            f"mousereg (reads {fmt.FORMAT_VERSION})"
        )
    grid = doc.get("grid") or {}
    problems += [f"atlas.json: grid lacks {k!r}" for k in fmt.GRID_KEYS if k not in grid]
    for s in doc.get("subjects") or []:
        problems += [
            f"atlas.json: subject entry lacks {k!r}" for k in fmt.SUBJECT_KEYS if k not in s
        ]
    for e in doc.get("excluded") or []:
        problems += [
            f"atlas.json: excluded entry lacks {k!r}" for k in fmt.EXCLUDED_KEYS if k not in e
        ]
    for h in doc.get("history") or []:
        problems += [
            f"atlas.json: history entry lacks {k!r}" for k in fmt.HISTORY_KEYS if k not in h
        ]
    return problems


def validate_files(folder: Path, doc: dict[str, Any]) -> list[str]:
    """The template, label and probability volumes and every subject's files exist."""
    names = [fmt.TEMPLATES, fmt.LABELS, fmt.PROBABILITIES]
    for s in doc.get("subjects") or []:
        names += [s.get(k, "") for k in ("transform", "images", "labels")]
    return [f"{n}: missing" for n in names if not n or not (folder / n).exists()]


def validate_label_table(folder: Path, doc: dict[str, Any]) -> list[str]:
    """The label table parses, and its IRIs are present for every label."""
    try:
        table = LabelTable.from_json(doc.get("labels") or [], source="atlas.json labels")
    except MouseregError as exc:
        return [str(exc)]
    missing = [lab.name for lab in table if not lab.iri]
    return [f"atlas.json: labels without an ontology IRI: {missing}"] if missing else []


def validate_checksums(folder: Path, doc: dict[str, Any]) -> list[str]:
    """The stored checksums match the volumes (a changed or truncated file is caught)."""
    sums = doc.get("checksums") or {}
    return [
        f"{name}: checksum mismatch (the file changed after the build); rebuild or restore it"
        for name in fmt.CHECKSUMMED
        if (folder / name).exists() and sums.get(name) != checksum_tree(folder / name)
    ]


def validate_volumes(folder: Path, doc: dict[str, Any]) -> list[str]:
    """Shapes, dtypes, channels and grids agree with atlas.json; values are in range."""
    problems: list[str] = []
    grid = doc["grid"]
    shape = tuple(grid["shape_zyx"])
    n_labels = len(doc["labels"])
    expect = {
        fmt.TEMPLATES: (fmt.TEMPLATE_DTYPE, len(fmt.TEMPLATE_CHANNELS)),
        fmt.LABELS: (fmt.LABEL_DTYPE, 1),
        fmt.PROBABILITIES: (fmt.PROBABILITY_DTYPE, n_labels),
    }
    for name, (dtype, channels) in expect.items():
        vol = read_zarr(folder / name)
        if vol.shape != shape or vol.n_channels != channels or vol.dtype != dtype:
            problems.append(
                f"{name}: shape {vol.shape} x {vol.n_channels} {vol.dtype}, expected "
                f"{shape} x {channels} {dtype}"
            )
        if not np.allclose(vol.spacing, grid["spacing_xyz_mm"]) or not np.allclose(
            vol.origin, grid["origin_xyz_mm"]
        ):
            problems.append(f"{name}: grid differs from atlas.json's grid")
    if problems:
        return problems
    templates = read_zarr(folder / fmt.TEMPLATES).compute()
    if not np.isfinite(templates).all():
        problems.append(f"{fmt.TEMPLATES}: holds NaN or infinite values")
    if tuple(read_zarr(folder / fmt.TEMPLATES).channel_names) != fmt.TEMPLATE_CHANNELS:
        problems.append(f"{fmt.TEMPLATES}: channels are not {fmt.TEMPLATE_CHANNELS}")
    labels = read_zarr(folder / fmt.LABELS).compute()
    values = {int(v["value"]) for v in doc["labels"]}
    stray = sorted(set(np.unique(labels).tolist()) - values - {0})
    if stray:
        problems.append(f"{fmt.LABELS}: values {stray} are not in the label table")
    probs = read_zarr(folder / fmt.PROBABILITIES).compute().astype(np.float32)
    if probs.max(initial=0) > fmt.PROBABILITY_SCALE:
        problems.append(f"{fmt.PROBABILITIES}: values above {fmt.PROBABILITY_SCALE}")
    return problems


VALIDATORS: tuple[Validator, ...] = (
    validate_schema,
    validate_files,
    validate_label_table,
    validate_checksums,
    validate_volumes,
)


def check_atlas(folder: str | Path, *, checksums: bool = True) -> list[str]:
    """All problems found in the atlas at ``folder`` (empty list: valid)."""
    root = Path(folder)
    doc = read_json(root / fmt.ATLAS_JSON)
    problems: list[str] = []
    for validator in VALIDATORS:
        if validator is validate_checksums and not checksums:
            continue
        problems += validator(root, doc)
        if problems and validator in (validate_schema, validate_files):
            break  # later validators need a well-formed atlas
    return problems


def validate_atlas(folder: str | Path, *, checksums: bool = True) -> dict[str, Any]:
    """Validate the atlas at ``folder``; return its ``atlas.json`` or raise InputError."""
    problems = check_atlas(folder, checksums=checksums)
    if problems:
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        msg = f"{folder}: not a valid atlas: {'; '.join(problems[:3])}{more}"
        raise InputError(msg)
    return read_json(Path(folder) / fmt.ATLAS_JSON)
