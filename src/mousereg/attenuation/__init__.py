"""PET attenuation (µ) maps at 511 keV from CT and from Dixon MRI, and their error estimates.

Public API: :func:`mumap_from_ct` (:func:`ct_to_mu` for just the map), :func:`mumap_from_mr`,
:func:`compare_mumaps`, :func:`load_atlas_templates`, :class:`AtlasTemplates`, :func:`make_model`.
"""

from __future__ import annotations

from mousereg.attenuation.ct import ct_to_mu, mumap_from_ct
from mousereg.attenuation.evaluate import compare_mumaps
from mousereg.attenuation.hu_model import make_model
from mousereg.attenuation.mr import load_atlas_templates, mumap_from_mr
from mousereg.attenuation.pseudo_ct import AtlasTemplates

__all__ = [
    "AtlasTemplates",
    "compare_mumaps",
    "ct_to_mu",
    "load_atlas_templates",
    "make_model",
    "mumap_from_ct",
    "mumap_from_mr",
]
