"""The mousereg atlas format: every file name, dtype and ``atlas.json`` key in one place.

An atlas is a folder::

    NAME/
      atlas.json            metadata (schema below, FORMAT_VERSION)
      templates.zarr        float32 (c, z, y, x): ct [HU], mr_water, mr_fat, mu511 [1/cm, 511 keV]
      labels.zarr           uint8 (z, y, x): maximum-probability organ labels (0 = background)
      probabilities.zarr    uint8 (c, z, y, x): one channel per label, probability x 255
      subjects/<id>/        per subject: transform.zarr (float16 (3, z, y, x) displacement field
                            dx, dy, dz in mm: template point p -> subject MR point p + u(p), ITK
                            convention; ``subject_transform`` turns it into a Transform that
                            writes as ITK .h5), images.zarr (the subject's
                            ct, mr_water, mr_fat warped into template space, for multi-atlas
                            segmentation), labels.zarr (uint8 (2, z, y, x): its CT and MR labels
                            in template space; UNKNOWN_LABEL outside its field of view)

The template space is the MRI acquisition frame (see :mod:`mousereg.atlas.prepare`): mm along
the Dixon slab's index axes (frequency, phase, slice). ``subjects[i]["frame"]`` is the 4x4 matrix
taking that frame to the subject's physical MRI space (LPS mm).

All volumes share the template grid (spacing, origin, direction in ``atlas.json["grid"]``).
"""

from __future__ import annotations

from typing import Any, Final

import numpy as np

FORMAT_NAME: Final = "mousereg-atlas"
FORMAT_VERSION: Final = "1.0"

ATLAS_JSON: Final = "atlas.json"
TEMPLATES: Final = "templates.zarr"
LABELS: Final = "labels.zarr"
PROBABILITIES: Final = "probabilities.zarr"
SUBJECTS_DIR: Final = "subjects"
SUBJECT_TRANSFORM: Final = "transform.zarr"
SUBJECT_IMAGES: Final = "images.zarr"
SUBJECT_LABELS: Final = "labels.zarr"
STATE_DIR: Final = ".build-state"

# Template channels, in storage order. "mr_water"/"mr_fat" are the Dixon channels.
TEMPLATE_CHANNELS: Final = ("ct", "mr_water", "mr_fat", "mu511")
# Which template channel a user's image of a given modality is registered against.
MODALITY_CHANNELS: Final = {"ct": ("ct",), "mr": ("mr_water", "mr_fat")}
# Channels of each subject stored in template space (for --multi).
SUBJECT_CHANNELS: Final = ("ct", "mr_water", "mr_fat")

TEMPLATE_DTYPE: Final = np.dtype(np.float32)
LABEL_DTYPE: Final = np.dtype(np.uint8)
PROBABILITY_DTYPE: Final = np.dtype(np.uint8)
PROBABILITY_SCALE: Final = 255  # stored value / PROBABILITY_SCALE = probability
UNKNOWN_LABEL: Final = 255  # subject label maps: voxel outside that subject's field of view
SUBJECT_LABEL_CHANNELS: Final = ("ct_labels", "mr_labels")
# Subject data (for --multi and provenance) is stored at half precision: < 0.02 mm for fields of
# up to 30 mm, < 1 HU for CT, 0.05 % of the MR signal; it halves the atlas on disk.
SUBJECT_IMAGE_DTYPE: Final = np.dtype(np.float16)
FIELD_DTYPE: Final = np.dtype(np.float16)
FIELD_CHANNELS: Final = ("dx", "dy", "dz")
CHUNK_EDGE: Final = 64
CHECKSUM_ALGORITHM: Final = "sha256"

# atlas.json keys with their JSON types; every key is required.
SCHEMA: Final[dict[str, type | tuple[type, ...]]] = {
    "format": str,
    "format_version": str,
    "name": str,
    "version": str,
    "species": str,
    "strain": str,
    "space": str,
    "modalities": list,
    "template_channels": list,
    "grid": dict,
    "labels": list,
    "label_sources": dict,
    "subjects": list,
    "excluded": list,
    "parameters": dict,
    "history": list,
    "software": dict,
    "checksums": dict,
    "created": str,
}
GRID_KEYS: Final = ("shape_zyx", "spacing_xyz_mm", "origin_xyz_mm", "direction")
SUBJECT_KEYS: Final = ("id", "transform", "images", "labels", "frame", "label_sources")
EXCLUDED_KEYS: Final = ("id", "reason")
HISTORY_KEYS: Final = ("iteration", "template_change", "sharpness", "mean_displacement_mm")
CHECKSUMMED: Final = (TEMPLATES, LABELS, PROBABILITIES)


def grid_record(
    shape_zyx: tuple[int, int, int],
    spacing: tuple[float, float, float],
    origin: tuple[float, float, float],
    direction: np.ndarray,
) -> dict[str, Any]:
    """The ``atlas.json["grid"]`` entry for a template grid."""
    return {
        "shape_zyx": [int(s) for s in shape_zyx],
        "spacing_xyz_mm": [float(s) for s in spacing],
        "origin_xyz_mm": [float(o) for o in origin],
        "direction": np.asarray(direction, dtype=float).reshape(3, 3).round(10).tolist(),
    }


def subject_paths(subject_id: str) -> dict[str, str]:
    """Paths (relative to the atlas folder) of one subject's stored files."""
    base = f"{SUBJECTS_DIR}/{subject_id}"
    return {
        "transform": f"{base}/{SUBJECT_TRANSFORM}",
        "images": f"{base}/{SUBJECT_IMAGES}",
        "labels": f"{base}/{SUBJECT_LABELS}",
    }
