"""Multimodal mouse atlases: group-wise construction, the atlas format, atlas-based segmentation.

Public API: :func:`build_atlas_from_manifest`, :class:`BuildParameters`, :func:`segment`,
:func:`load_atlas`, :class:`Atlas`, :func:`validate_atlas`, :func:`check_atlas`,
:func:`atlas_summary`. The file format is :mod:`mousereg.atlas.format`.
"""

from __future__ import annotations

from mousereg.atlas.build import BuildParameters
from mousereg.atlas.from_manifest import build as build_atlas_from_manifest
from mousereg.atlas.info import atlas_summary
from mousereg.atlas.load import Atlas, load_atlas
from mousereg.atlas.segment import segment
from mousereg.atlas.validate import check_atlas, validate_atlas

__all__ = [
    "Atlas",
    "BuildParameters",
    "atlas_summary",
    "build_atlas_from_manifest",
    "check_atlas",
    "load_atlas",
    "segment",
    "validate_atlas",
]
