"""Marker holes of the animal holder: detect -> match -> fit (Umeyama) -> predicted TRE.

Public API: :func:`detect`, :func:`match_points`, :func:`fit_points`, :func:`predicted_tre`,
:class:`Markers`, :func:`read_markers`, :func:`write_markers`, :func:`load_holder`.
"""

from __future__ import annotations

from mousereg.fiducials.detect import Detection, detect
from mousereg.fiducials.fit import FitResult, PointTransform, fit_points, umeyama
from mousereg.fiducials.holder import HolderProfile, load_holder, match_to_holder
from mousereg.fiducials.markers import Markers, read_markers, write_markers
from mousereg.fiducials.match import Match, match_points
from mousereg.fiducials.tre import predicted_tre, tre_summary

__all__ = [
    "Detection",
    "FitResult",
    "HolderProfile",
    "Markers",
    "Match",
    "PointTransform",
    "detect",
    "fit_points",
    "load_holder",
    "match_points",
    "match_to_holder",
    "predicted_tre",
    "read_markers",
    "tre_summary",
    "umeyama",
    "write_markers",
]
