"""From the final build state to the atlas folder: templates, label probabilities, atlas.json.

Label probabilities pool every subject's CT labels and MR labels in template space. For label
``L`` a voxel's probability is the fraction of votes for ``L`` among the label maps that annotate
``L`` at all (bone only in CT maps, brain only in MR maps, ...) and cover the voxel. The
max-probability label is the arg-max over the labels and the background, whose probability is
``1 - sum(p_L)`` (floored at 0).
"""

from __future__ import annotations

import datetime as dt
import platform
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mousereg.atlas import format as fmt
from mousereg.atlas.prepare import SubjectStack, warp_stack
from mousereg.atlas.store import checksum_tree, write_json, write_zarr
from mousereg.labels import LabelTable
from mousereg.volume import Volume


def label_probabilities(labels: Sequence[np.ndarray], table: LabelTable) -> np.ndarray:
    """``(n_labels, z, y, x)`` float32 probabilities from ``(sources, z, y, x)`` label maps."""
    maps = [m for stack in labels for m in stack]
    out = np.zeros((len(table), *maps[0].shape), np.float32)
    for i, value in enumerate(table.values):
        votes = np.zeros(maps[0].shape, np.float32)
        count = np.zeros(maps[0].shape, np.float32)
        for m in maps:
            if not (m == value).any():
                continue  # this map does not annotate the label
            covered = m != fmt.UNKNOWN_LABEL
            votes += m == value
            count += covered
        np.divide(votes, count, out=out[i], where=count > 0)
    return out


def max_probability_labels(probabilities: np.ndarray, table: LabelTable) -> np.ndarray:
    """The arg-max label (0 where the background is the most probable)."""
    background = np.clip(1.0 - probabilities.sum(axis=0), 0.0, None)
    stacked = np.concatenate([background[None], probabilities])
    values = np.asarray([0, *table.values], dtype=fmt.LABEL_DTYPE)
    return values[np.argmax(stacked, axis=0)]


def _software() -> dict[str, str]:
    import dask
    import SimpleITK as sitk

    from mousereg import __version__

    versions = {
        "mousereg": __version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "SimpleITK": sitk.Version_VersionString(),
        "dask": dask.__version__,
    }
    for mod in ("ants", "itk"):
        try:
            versions[mod] = __import__(mod).__version__
        except ImportError:
            continue
    return versions


def write_atlas(
    out: Path,
    grid: Volume,
    template: np.ndarray,
    fields: dict[str, np.ndarray],
    stacks: dict[str, SubjectStack],
    table: LabelTable,
    meta: dict[str, Any],
) -> dict[str, Any]:
    """Write every file of the atlas under ``out`` and return ``atlas.json`` (written last)."""
    subjects = []
    all_labels = []
    for sid, field in fields.items():
        images, labels = warp_stack(stacks[sid], field, grid)
        paths = fmt.subject_paths(sid)
        keep = [fmt.TEMPLATE_CHANNELS.index(c) for c in fmt.SUBJECT_CHANNELS]
        write_zarr(
            grid.with_array(images[keep], channel_names=fmt.SUBJECT_CHANNELS),
            out / paths["images"],
            fmt.SUBJECT_IMAGE_DTYPE,
        )
        write_zarr(
            grid.with_array(labels, channel_names=fmt.SUBJECT_LABEL_CHANNELS),
            out / paths["labels"],
            fmt.LABEL_DTYPE,
        )
        write_zarr(
            grid.with_array(np.moveaxis(field, -1, 0), channel_names=fmt.FIELD_CHANNELS),
            out / paths["transform"],
            fmt.FIELD_DTYPE,
        )
        annotated = {
            name: sorted(int(v) for v in np.unique(m) if v not in (0, fmt.UNKNOWN_LABEL))
            for name, m in zip(fmt.SUBJECT_LABEL_CHANNELS, labels, strict=True)
        }
        frame = stacks[sid].frame.round(10).tolist()
        subjects.append({"id": sid, **paths, "frame": frame, "label_sources": annotated})
        all_labels.append(labels)
    probs = label_probabilities(all_labels, table)
    maxp = max_probability_labels(probs, table)
    write_zarr(
        grid.with_array(template, channel_names=fmt.TEMPLATE_CHANNELS, modality="template"),
        out / fmt.TEMPLATES,
        fmt.TEMPLATE_DTYPE,
    )
    write_zarr(grid.with_array(maxp, modality="labels"), out / fmt.LABELS, fmt.LABEL_DTYPE)
    scaled = np.round(probs * fmt.PROBABILITY_SCALE)
    names = tuple(table.names)
    write_zarr(
        grid.with_array(scaled, channel_names=names, modality="probabilities"),
        out / fmt.PROBABILITIES,
        fmt.PROBABILITY_DTYPE,
    )
    doc = {
        "format": fmt.FORMAT_NAME,
        "format_version": fmt.FORMAT_VERSION,
        **meta,
        "space": (
            "MRI acquisition frame: mm along the Dixon slab's frequency, phase and slice axes; "
            "subjects[i].frame maps it to subject i's MRI (LPS mm)"
        ),
        "modalities": ["CT", "MR", "mu511"],
        "template_channels": list(fmt.TEMPLATE_CHANNELS),
        "grid": fmt.grid_record(grid.shape, grid.spacing, grid.origin, grid.direction),
        "labels": table.to_json(),
        "label_sources": {
            "ct_labels": sorted({v for s in subjects for v in s["label_sources"]["ct_labels"]}),
            "mr_labels": sorted({v for s in subjects for v in s["label_sources"]["mr_labels"]}),
        },
        "subjects": subjects,
        "software": _software(),
        "checksums": {name: checksum_tree(out / name) for name in fmt.CHECKSUMMED},
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    write_json(out / fmt.ATLAS_JSON, doc)
    return doc
