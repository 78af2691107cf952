"""`write_study`: a folder of synthetic CT/MRI pairs with ground truth and a ``manifest.csv``.

Layout (``fmt="nifti"``; ``"zarr"`` writes ``.zarr`` instead of ``.nii.gz``)::

    OUT/manifest.csv                 subject,timepoint,group,ct,mr_water,mr_fat,ct_labels,
                                     mr_labels,truth (paths relative to OUT)
    OUT/labels.json                  the label table
    OUT/sub-01/ct.nii.gz, mr_water.nii.gz, mr_fat.nii.gz, ct_labels.nii.gz, mr_labels.nii.gz
    OUT/sub-01/truth/transform.h5    MRI point -> CT point (ITK; fixed = MRI, moving = CT)
                     inverse.h5      CT point -> MRI point
                     rigid.h5        the holder's rigid MRI -> CT motion alone
                     holes.csv, landmarks.csv, mu511.nii.gz, truth.json

Subject ``i`` (1-based) is ``make_pair(seed=seed * 1000 + i)``; the same seed writes
byte-identical files.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from mousereg.errors import InputError
from mousereg.io.atomic import atomic_path, write_text
from mousereg.io.transform_files import HDF5_LOCK
from mousereg.labels import LabelTable
from mousereg.phantom.h5clean import clear_timestamps
from mousereg.phantom.pair import PhantomPair, make_pair

MANIFEST_COLUMNS = (
    "subject",
    "timepoint",
    "group",
    "ct",
    "mr_water",
    "mr_fat",
    "ct_labels",
    "mr_labels",
    "truth",
)
SUFFIX = {"nifti": ".nii.gz", "zarr": ".zarr"}


def subject_seed(seed: int, index: int) -> int:
    """The make_pair seed of subject ``index`` (1-based) of a study made with ``seed``."""
    return seed * 1000 + index


def _csv_text(header: list[str], rows: list[list[Any]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue()


def _xyz(p: np.ndarray) -> list[str]:
    return [f"{float(v):.6f}" for v in p]


def write_truth(pair: PhantomPair, folder: Path, fmt: str = "nifti") -> None:
    """Write a pair's ground truth (transforms, holes, landmarks, µ-map, truth.json)."""
    import SimpleITK as sitk

    from mousereg.io import write_volume

    folder.mkdir(parents=True, exist_ok=True)
    for name, t in (
        ("transform", pair.transform),
        ("inverse", pair.inverse),
        ("rigid", pair.rigid),
    ):
        with atomic_path(folder / f"{name}.h5") as tmp:
            with HDF5_LOCK:  # ITK's HDF5 is not thread-safe; subjects are written in threads
                sitk.WriteTransform(t, str(tmp))
            clear_timestamps(tmp)  # HDF5 stores write times; the same seed must give same bytes
    holes = [
        [int(i), f"{d:.3f}", int(inside), *_xyz(c), *_xyz(m)]
        for i, d, inside, c, m in zip(
            pair.hole_ids,
            pair.hole_diameters,
            pair.holes_in_mr,
            pair.holes_ct,
            pair.holes_mr,
            strict=True,
        )
    ]
    header = ["id", "diameter_mm", "in_mr", "ct_x", "ct_y", "ct_z", "mr_x", "mr_y", "mr_z"]
    write_text(folder / "holes.csv", _csv_text(header, holes))
    lm = pair.landmarks
    rows = [
        [str(n), int(v), *_xyz(c), *_xyz(m)]
        for n, v, c, m in zip(lm["name"], lm["label"], lm["ct"], lm["mr"], strict=True)
    ]
    header = ["name", "label", "ct_x", "ct_y", "ct_z", "mr_x", "mr_y", "mr_z"]
    write_text(folder / "landmarks.csv", _csv_text(header, rows))
    write_volume(pair.mu511, folder / f"mu511{SUFFIX[fmt]}")
    doc = {
        **pair.info,
        "convention": "transform.h5 maps MRI (fixed) points to CT (moving) points, LPS mm",
        "files": ["transform.h5", "inverse.h5", "rigid.h5", "holes.csv", "landmarks.csv"],
    }
    write_text(folder / "truth.json", json.dumps(doc, indent=2, sort_keys=True) + "\n")


def write_pair(pair: PhantomPair, folder: Path, fmt: str = "nifti") -> dict[str, str]:
    """Write one pair's images and truth; return manifest paths relative to the study folder."""
    from mousereg.io import write_volume

    sfx = SUFFIX[fmt]
    files = {
        "ct": (pair.ct, f"ct{sfx}"),
        "mr_water": (pair.mr.channel("water"), f"mr_water{sfx}"),
        "mr_fat": (pair.mr.channel("fat"), f"mr_fat{sfx}"),
        "ct_labels": (pair.ct_labels, f"ct_labels{sfx}"),
        "mr_labels": (pair.mr_labels, f"mr_labels{sfx}"),
    }
    out = {}
    for column, (vol, name) in files.items():
        write_volume(vol, folder / name)
        out[column] = f"{folder.name}/{name}"
    write_truth(pair, folder / "truth", fmt)
    out["truth"] = f"{folder.name}/truth"
    return out


def _make_and_write(
    out: Path, index: int, seed: int, resolution: str, fmt: str, options: dict[str, Any]
) -> dict[str, str]:
    """One subject: make the pair and write it (runs in a worker thread)."""
    pair = make_pair(seed=subject_seed(seed, index), resolution=resolution, **options)
    return write_pair(pair, out / f"sub-{index:02d}", fmt)


def write_study(
    outdir: str | os.PathLike[str],
    subjects: int = 4,
    seed: int = 0,
    resolution: str = "test",
    fmt: str = "nifti",
    on_pair: Callable[[str, PhantomPair], None] | None = None,
    workers: int = 2,
    **pair_options: Any,
) -> Path:
    """Make ``subjects`` pairs and write them with a manifest; returns the manifest's path.

    Args:
        outdir: output folder (created).
        subjects: number of mice.
        seed: study seed (subject ``i`` uses ``seed * 1000 + i``).
        resolution: ``"full"`` or ``"test"``.
        fmt: ``"nifti"`` (``.nii.gz``) or ``"zarr"`` (OME-Zarr).
        on_pair: called as ``on_pair(subject, pair)`` for every pair while it is in memory
            (subjects are then made one after another in this process).
        workers: threads making subjects in parallel (each subject's files are the same
            whatever the number).
        **pair_options: passed to :func:`make_pair` (``frame``, ``holes_outside_mr``, ...).
    """
    if fmt not in SUFFIX:
        msg = f"format {fmt!r}: use 'nifti' or 'zarr'"
        raise InputError(msg)
    if subjects < 1:
        msg = f"subjects={subjects}: use 1 or more"
        raise InputError(msg)
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    indices = list(range(1, subjects + 1))
    if on_pair is not None or workers <= 1 or subjects == 1:
        results = []
        for i in indices:
            pair = make_pair(seed=subject_seed(seed, i), resolution=resolution, **pair_options)
            results.append(write_pair(pair, out / f"sub-{i:02d}", fmt))
            if on_pair is not None:
                on_pair(f"sub-{i:02d}", pair)
    else:
        # threads, not processes: numpy, scipy and the image writers release the GIL for the
        # heavy parts, and no process start-up or __main__ guard is needed
        with ThreadPoolExecutor(min(workers, subjects)) as pool:
            futures = [
                pool.submit(_make_and_write, out, i, seed, resolution, fmt, pair_options)
                for i in indices
            ]
            results = [f.result() for f in futures]
    rows = [
        [f"sub-{i:02d}", 0, "healthy", *(paths[c] for c in MANIFEST_COLUMNS[3:])]
        for i, paths in zip(indices, results, strict=True)
    ]
    LabelTable.default().write(out / "labels.json")
    manifest = out / "manifest.csv"
    write_text(manifest, _csv_text(list(MANIFEST_COLUMNS), rows))
    return manifest
