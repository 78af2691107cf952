"""Job kind ``register-pair``: register one CT–MRI pair, carry the labels across, evaluate.

For one manifest row: the fiducial registration through the holder's marker holes, refined by
image similarity for ``mode`` rigid/affine/deformable (:func:`mousereg.registration.register`);
the CT labels put onto the MRI grid and the MRI labels onto the CT grid
(:func:`mousereg.propagate.propagate`); and, when the row has them, an evaluation: Dice and surface
distances of the carried labels against the other modality's own labels, and the transform's error
against the phantom's true transform (``truth/transform.h5``) at the organ voxels of the MRI.

Outputs: ``transform.h5`` (MRI -> CT), ``inverse.h5``, ``report.json``, the markers,
``ct_labels_in_mr.<fmt>``, ``mr_labels_in_ct.<fmt>`` and ``evaluation.json``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from mousereg.batch.jobs import JobContext, job_kind
from mousereg.batch.manifest import Row
from mousereg.volume import Volume

TRUTH_TRANSFORM = "transform.h5"  # MRI -> CT, ITK convention (phantom truth folder)
TRE_POINTS = 4000


def load_mr(row: Row) -> Volume:
    """The row's MRI as one scan with channels named ``water`` and ``fat`` (or the ``mr`` file)."""
    from mousereg.fiducials.detect import as_scan
    from mousereg.io import read_volume

    if row.has("mr"):
        return dataclasses.replace(read_volume(row.path("mr")), modality="MR")
    channels = []
    for column in ("mr_water", "mr_fat"):
        if row.has(column):
            vol = read_volume(row.path(column))
            channels.append(dataclasses.replace(vol, channel_names=(column.split("_")[1],)))
    return dataclasses.replace(as_scan(channels), modality="MR")


def load_ct(row: Row) -> Volume:
    """The row's CT."""
    from mousereg.io import read_volume

    return dataclasses.replace(read_volume(row.path("ct")), modality="CT")


def organ_points(labels: Volume, n: int, seed: int = 0) -> np.ndarray:
    """Up to ``n`` physical points (LPS mm) at labelled voxels, a fixed random subset."""
    arr = labels.compute()
    zyx = np.argwhere(arr > 0)
    if len(zyx) > n:
        zyx = zyx[np.random.default_rng(seed).choice(len(zyx), n, replace=False)]
    return labels.index_to_physical(zyx[:, ::-1].astype(float))


def transform_error(estimate: Any, truth: Any, points: np.ndarray) -> dict[str, float]:
    """Distances (mm) between where the estimated and the true transform send ``points``."""
    d = np.linalg.norm(estimate.transform_points(points) - truth.transform_points(points), axis=1)
    return {
        "n_points": len(points),
        "mean_mm": round(float(d.mean()), 5),
        "median_mm": round(float(np.median(d)), 5),
        "p95_mm": round(float(np.percentile(d, 95)), 5),
        "max_mm": round(float(d.max()), 5),
    }


def _truth(row: Row) -> Any:
    from mousereg.registration import Transform

    if not row.has("truth"):
        return None
    path = row.path("truth") / TRUTH_TRANSFORM
    return Transform.read(path) if path.is_file() else None


@job_kind(
    "register-pair",
    scope="subject",
    params={
        "mode": "deformable",
        "backend": "elastix",
        "similarity": False,
        "max_fre_mm": 1.0,
        "propagate": True,
        "evaluate": True,
        "overlay": True,
        "format": "nii.gz",
    },
    requires=("ct", ("mr", "mr_water")),
    version="2",  # 2: holder left out of the MI mask, water + fat MI terms, holder taper
)
def register_pair(ctx: JobContext) -> dict[str, Any]:
    """Register CT onto MRI (holes, then intensity), carry labels both ways, evaluate."""
    from mousereg.io import write_volume
    from mousereg.propagate import propagate
    from mousereg.registration import Transform, register

    row, p, out = ctx.row, ctx.params, ctx.outdir
    mr, ct = load_mr(row), load_ct(row)
    truth = _truth(row) if p["evaluate"] else None
    mr_labels = load_labels(row, "mr_labels")
    ct_labels = load_labels(row, "ct_labels")
    points = organ_points(mr_labels, TRE_POINTS) if mr_labels is not None else None
    ctx.log.info("registering %s (mode %s, backend %s)", row.label, p["mode"], p["backend"])
    report = register(
        mr,
        ct,
        out,
        mode=p["mode"],
        backend=p["backend"],
        similarity=p["similarity"],
        max_fre_mm=p["max_fre_mm"],
        truth=None if truth is None else truth.transform_points,
        truth_points=points,
    )
    transform = Transform.read(out / "transform.h5")
    outputs: dict[str, str] = {}
    carried: dict[str, Volume] = {}
    if p["propagate"]:
        if ct_labels is not None:
            carried["ct_labels_in_mr"] = propagate(ct_labels, transform, mr.channel(0))
        if mr_labels is not None:
            carried["mr_labels_in_ct"] = propagate(mr_labels, transform, ct, inverse=True)
        for name, vol in carried.items():
            path = out / f"{name}.{p['format']}"
            write_volume(vol, path)
            outputs[name] = path.name
    if p["overlay"]:
        write_overlay(out / "overlay.png", mr, ct, transform, carried.get("ct_labels_in_mr"), row)
        outputs["overlay"] = "overlay.png"
    evaluation: dict[str, Any] = {}
    if p["evaluate"]:
        evaluation = evaluate_pair(carried, ct_labels, mr_labels, transform, truth, points)
        from mousereg.io.atomic import write_text

        write_text(out / "evaluation.json", _dumps(evaluation))
        outputs["evaluation"] = "evaluation.json"
    return {
        "subject": row.subject,
        "timepoint": row.timepoint,
        "group": row.group,
        "mode": p["mode"],
        "fiducial": _fiducial_summary(report),
        "seconds_registration": report.get("seconds_total"),
        "outputs": {**report.get("outputs", {}), **outputs},
        "evaluation": evaluation,
    }


def write_overlay(
    path: Path, mr: Volume, ct: Volume, transform: Any, labels: Volume | None, row: Row
) -> None:
    """The study report's overlay of the middle MRI slice: CT/MRI checkerboard, label edges."""
    from mousereg.io.atomic import write_bytes
    from mousereg.qc.study_figures import overlay_png
    from mousereg.resample import resample

    k = mr.shape[0] // 2
    ref = mr.channel(0).crop((slice(k, k + 1), slice(None), slice(None)))
    ct_slice = resample(ct, ref, transform, default_value=-1000.0).compute()[0]
    lab = None if labels is None else labels.compute()[k]
    aspect = mr.spacing[1] / mr.spacing[0]
    title = row.subject + (f" t={row.timepoint}" if row.timepoint else "")
    write_bytes(path, overlay_png(mr.channel(0).compute()[k], ct_slice, lab, aspect, title))


def load_labels(row: Row, column: str) -> Volume | None:
    """The row's label map in ``column`` with the default label table, or None."""
    from mousereg.io import read_volume
    from mousereg.labels import LabelTable

    if not row.has(column):
        return None
    vol = read_volume(row.path(column))
    if vol.labels is None:
        vol = dataclasses.replace(vol, labels=LabelTable.default())
    return vol


def _fiducial_summary(report: dict[str, Any]) -> dict[str, Any]:
    fid = report.get("fiducial", {})
    keys = ("holes_found", "matched_pairs", "fre_rms_mm", "predicted_tre", "truth", "error")
    return {k: fid[k] for k in keys if k in fid}


def evaluate_pair(
    carried: dict[str, Volume],
    ct_labels: Volume | None,
    mr_labels: Volume | None,
    transform: Any,
    truth: Any,
    points: np.ndarray | None,
) -> dict[str, Any]:
    """Overlap of carried labels with the target's own labels, and the error vs the truth."""
    from mousereg.metrics import evaluate

    doc: dict[str, Any] = {}
    if "ct_labels_in_mr" in carried and mr_labels is not None:
        doc["ct_labels_in_mr_vs_mr_labels"] = evaluate(carried["ct_labels_in_mr"], mr_labels)
    if "mr_labels_in_ct" in carried and ct_labels is not None:
        doc["mr_labels_in_ct_vs_ct_labels"] = evaluate(carried["mr_labels_in_ct"], ct_labels)
    if truth is not None and points is not None and len(points):
        doc["transform_error_vs_truth"] = transform_error(transform, truth, points)
    return doc


def _dumps(doc: dict[str, Any]) -> str:
    import json

    from mousereg.batch.execute import _json_default

    return json.dumps(doc, indent=2, default=_json_default) + "\n"
