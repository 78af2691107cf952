"""Segmentation overlap and surface metrics per label, spacing-aware (docs/metrics.md).

Conventions:

* Surface: the boundary voxels of a mask (a voxel of the mask with at least one of its 6 face
  neighbours outside; beyond the image counts as outside), each weighted by the area of its
  exposed faces in mm² (so anisotropic voxels weigh correctly).
* Distances: Euclidean, in mm, between boundary voxel centres, from a distance transform with
  the voxel spacing (:func:`scipy.ndimage.distance_transform_edt`).
* ASSD: the two directed distance sets are POOLED (area-weighted mean over both surfaces).
* HD95: the larger of the two directed area-weighted 95th percentiles.
* NSD at τ (Nikolov et al. 2021): surface area of both surfaces within τ of the other, over the
  total area of both.
* Volume: voxel count × voxel volume; difference = pred − truth in mL and in % of truth.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

from mousereg.errors import InputError
from mousereg.labels import LabelTable
from mousereg.propagate import check_label_map, check_tables_agree
from mousereg.volume import Volume

DEFAULT_TAU_MM = 0.5
HD_PERCENTILE = 95.0
# Distances up to tau + this count as within tau: header spacings are float32 in NIfTI.
TAU_SLACK_MM = 1e-6
MEAN_KEYS = ("dice", "jaccard", "assd_mm", "hd95_mm", "nsd", "volume_difference_percent")


def surface(mask: np.ndarray, spacing_zyx: tuple[float, float, float]) -> np.ndarray:
    """Exposed face area (mm²) of every voxel of ``mask`` (0 for interior and outside voxels)."""
    m = np.pad(mask.astype(bool), 1)
    sz, sy, sx = spacing_zyx
    areas = (sy * sx, sz * sx, sz * sy)  # face area normal to z, y, x
    weight = np.zeros(m.shape, dtype=np.float64)
    for axis, area in enumerate(areas):
        for shift in (1, -1):
            exposed = m & ~np.roll(m, shift, axis=axis)
            weight += area * exposed
    inner = tuple(slice(1, -1) for _ in range(3))
    return weight[inner]


def _directed(
    from_weights: np.ndarray, to_weights: np.ndarray, spacing_zyx: tuple[float, float, float]
) -> tuple[np.ndarray, np.ndarray]:
    """Distances (mm) from each surface voxel of one mask to the other surface, and weights."""
    distance = ndimage.distance_transform_edt(to_weights == 0, sampling=spacing_zyx)
    where = from_weights > 0
    return np.asarray(distance)[where], from_weights[where]


def weighted_percentile(values: np.ndarray, weights: np.ndarray, percent: float) -> float:
    """The smallest value whose cumulative weight reaches ``percent`` % of the total."""
    order = np.argsort(values)
    cumulative = np.cumsum(weights[order])
    i = int(np.searchsorted(cumulative, percent / 100.0 * cumulative[-1], side="left"))
    return float(values[order][min(i, len(values) - 1)])


def _bbox(mask: np.ndarray) -> tuple[slice, ...]:
    idx = np.nonzero(mask)
    return tuple(slice(int(i.min()), int(i.max()) + 1) for i in idx)


def label_metrics(
    pred: np.ndarray, truth: np.ndarray, spacing_zyx: tuple[float, float, float], tau_mm: float
) -> dict[str, float | None]:
    """All metrics for one pair of boolean masks (distances ``None`` when a mask is empty)."""
    voxel_ml = float(np.prod(spacing_zyx)) / 1000.0
    n_pred, n_truth = int(pred.sum()), int(truth.sum())
    inter = int((pred & truth).sum())
    union = n_pred + n_truth - inter
    out: dict[str, float | None] = {
        "dice": 2.0 * inter / (n_pred + n_truth) if union else 1.0,
        "jaccard": inter / union if union else 1.0,
        "volume_pred_ml": n_pred * voxel_ml,
        "volume_truth_ml": n_truth * voxel_ml,
        "volume_difference_ml": (n_pred - n_truth) * voxel_ml,
        "volume_difference_percent": 100.0 * (n_pred - n_truth) / n_truth if n_truth else None,
        "assd_mm": None,
        "hd95_mm": None,
        "nsd": 0.0 if (n_pred == 0) != (n_truth == 0) else None,
    }
    if n_pred == 0 or n_truth == 0:
        return out
    box = _bbox(pred | truth)  # all surface points lie inside: crop for speed, exactly
    wp, wt = surface(pred[box], spacing_zyx), surface(truth[box], spacing_zyx)
    d_pt, w_pt = _directed(wp, wt, spacing_zyx)
    d_tp, w_tp = _directed(wt, wp, spacing_zyx)
    total = w_pt.sum() + w_tp.sum()
    out["assd_mm"] = float(((d_pt * w_pt).sum() + (d_tp * w_tp).sum()) / total)
    out["hd95_mm"] = max(
        weighted_percentile(d_pt, w_pt, HD_PERCENTILE),
        weighted_percentile(d_tp, w_tp, HD_PERCENTILE),
    )
    tau = tau_mm + TAU_SLACK_MM
    out["nsd"] = float((w_pt[d_pt <= tau].sum() + w_tp[d_tp <= tau].sum()) / total)
    return out


def _mean(rows: list[dict[str, Any]], key: str) -> float | None:
    vals = [r[key] for r in rows if r.get(key) is not None]
    return float(np.mean(vals)) if vals else None


def evaluate(
    pred: Volume,
    truth: Volume,
    *,
    tau_mm: float = DEFAULT_TAU_MM,
    table: LabelTable | None = None,
    roi: Volume | None = None,
) -> dict[str, Any]:
    """Per-label Dice, Jaccard, ASSD, HD95, NSD@τ and volume difference of ``pred`` vs ``truth``.

    Args:
        pred: predicted label map.
        truth: reference label map on the same grid.
        tau_mm: tolerance of the normalised surface Dice, mm.
        table: names for the label values when the volumes carry no table.
        roi: optional mask on the same grid: compare only inside it (e.g. the MRI's field of
            view on the CT grid, :func:`mousereg.propagate.field_of_view`).

    Returns:
        ``{"labels": [{value, name, dice, ...}, ...], "mean": {...}, "tau_mm", "conventions"}``.
        Labels present in either map are listed; the mean is over labels present in ``truth``.
    """
    check_label_map(pred, "prediction")
    check_label_map(truth, "truth")
    if not pred.same_grid(truth, tol=1e-4):
        msg = (
            f"prediction and truth are on different grids ({pred.shape} vs {truth.shape}, "
            f"spacing {pred.spacing} vs {truth.spacing}); put the prediction on the truth's "
            "grid first with `mousereg propagate`"
        )
        raise InputError(msg)
    if tau_mm < 0:
        msg = f"tau_mm must be >= 0, got {tau_mm}"
        raise InputError(msg)
    check_tables_agree(pred.labels, truth.labels, "prediction and truth")
    names = truth.labels or pred.labels or table or LabelTable.default()
    check_tables_agree(names, table, "the volumes and the given table")
    p, t = pred.compute(), truth.compute()
    if roi is not None:
        if not roi.same_grid(truth, tol=1e-4):
            msg = "the region of interest is not on the truth's grid; resample it first"
            raise InputError(msg)
        keep = roi.compute() > 0
        p, t = np.where(keep, p, 0), np.where(keep, t, 0)
    sx, sy, sz = pred.spacing
    spacing_zyx = (sz, sy, sx)
    values = sorted({int(v) for v in np.union1d(np.unique(p), np.unique(t))} - {0})
    rows = []
    for v in values:
        row: dict[str, Any] = {"value": v, "name": names.name_of(v)}
        row.update(label_metrics(p == v, t == v, spacing_zyx, tau_mm))
        row["in_truth"] = bool(row["volume_truth_ml"])
        rows.append(row)
    in_truth = [r for r in rows if r["in_truth"]]
    return {
        "tau_mm": tau_mm,
        "spacing_xyz_mm": list(pred.spacing),
        "roi_voxels": None if roi is None else int(keep.sum()),
        "conventions": {
            "surface": "boundary voxels (6-neighbourhood), weighted by exposed face area",
            "distance": "Euclidean between voxel centres, mm (spacing-aware EDT)",
            "assd": "pooled over both directions, area-weighted",
            "hd95": "max of the two directed area-weighted 95th percentiles",
            "nsd": "Nikolov 2021: area within tau of the other surface over total area",
        },
        "labels": rows,
        "mean": {key: _mean(in_truth, key) for key in MEAN_KEYS},
    }


def evaluate_file(
    pred: str | os.PathLike[str],
    truth: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    tau_mm: float = DEFAULT_TAU_MM,
    table: str | os.PathLike[str] | None = None,
    roi: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """:func:`evaluate` from label files, written atomically as JSON (``mousereg evaluate``)."""
    from mousereg.io import read_volume
    from mousereg.io.atomic import write_text

    names = LabelTable.read(Path(table)) if table is not None else None
    mask = read_volume(roi) if roi is not None else None
    doc = evaluate(read_volume(pred), read_volume(truth), tau_mm=tau_mm, table=names, roi=mask)
    doc = {"prediction": str(pred), "truth": str(truth), **doc}
    write_text(output, json.dumps(doc, indent=2) + "\n")
    return doc
