"""Job kind ``inspect``: read every image of a row and record its frame, intensities and labels.

A cheap first stage of a study: it proves each file is readable (an unreadable image fails the
row with its reason before expensive stages start) and records shape, spacing, intensity range
and, for label maps, the volume of every label in mm³.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mousereg.batch.jobs import JobContext, job_kind
from mousereg.batch.manifest import PATH_COLUMNS

IMAGE_COLUMNS = tuple(c for c in PATH_COLUMNS if c != "truth")


def describe_image(column: str, array: np.ndarray, spacing: tuple[float, ...]) -> dict[str, Any]:
    """Intensity statistics, or label volumes (mm³) for a ``*_labels`` column."""
    doc: dict[str, Any] = {}
    if column.endswith("labels"):
        values, counts = np.unique(array, return_counts=True)
        voxel_mm3 = float(np.prod(spacing))
        doc["label_volumes_mm3"] = {
            str(int(v)): round(float(c) * voxel_mm3, 4)
            for v, c in zip(values, counts, strict=True)
            if v != 0
        }
    else:
        finite = array[np.isfinite(array)]
        doc.update(
            {
                "min": float(finite.min()) if finite.size else None,
                "max": float(finite.max()) if finite.size else None,
                "mean": float(finite.mean()) if finite.size else None,
                "p01": float(np.percentile(finite, 1)) if finite.size else None,
                "p99": float(np.percentile(finite, 99)) if finite.size else None,
                "nonfinite_voxels": int(array.size - finite.size),
            }
        )
    return doc


@job_kind("inspect", scope="subject", params={"columns": list(IMAGE_COLUMNS)})
def inspect(ctx: JobContext) -> dict[str, Any]:
    """Read each image of the row; record frame, intensity range and label volumes."""
    from mousereg.io import read_volume

    row = ctx.row
    images: dict[str, Any] = {}
    for column in ctx.params["columns"]:
        if not row.has(column):
            continue
        vol = read_volume(row.path(column))
        arr = vol.compute()
        ctx.log.info("%s: %s %s", column, vol.shape, vol.dtype)
        images[column] = {
            **vol.describe(),
            **describe_image(column, arr, vol.spacing),
        }
    return {"subject": row.subject, "timepoint": row.timepoint, "images": images}
