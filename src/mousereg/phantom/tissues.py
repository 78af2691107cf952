"""Tissue classes of the phantom: organ label, physical attenuation model and MR signal.

Every voxel of the phantom is one tissue class (before partial-volume blurring). A class carries:

* the organ label it belongs to (values of :meth:`mousereg.labels.LabelTable.default`; 0 = none),
* ``rho_e`` (electron density relative to water) and ``z_eff`` (effective atomic number), from
  which :mod:`mousereg.phantom.physics` derives both the CT number at the 55 kVp effective energy
  and the 511 keV attenuation coefficient, so HU and µ are consistent by construction,
* the T2-weighted Dixon water and fat signals (arbitrary units, 1000 = bright fluid).
"""

from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class Tissue:
    """One tissue class."""

    name: str
    label: int
    rho_e: float
    z_eff: float
    water: float
    fat: float


# label values of the default LabelTable
BLADDER, BONE, BRAIN, CAECUM, COLON, FAT, GALL, HEART, INTESTINE = 1, 2, 3, 4, 5, 6, 7, 8, 9
KIDNEY, LIVER, LUNG, SPINE, SPLEEN, STOMACH, THYROID, VFAT = 10, 11, 12, 13, 14, 15, 16, 17

# T2w RARE (TE 22.6 ms, TR 2715 ms) relative signals: liver dark, kidney and urine bright,
# fat only in the fat image, vaseline bright in fat and dark in water, plastic without signal.
TISSUES: tuple[Tissue, ...] = (
    Tissue("air", 0, 0.0011, 7.6, 0.0, 0.0),
    Tissue("plastic", 0, 1.17, 7.3, 0.0, 0.0),
    Tissue("vaseline", 0, 0.94, 6.1, 0.0, 820.0),
    Tissue("muscle", 0, 1.04, 7.45, 300.0, 25.0),
    Tissue("subcutaneous fat", FAT, 0.95, 6.45, 60.0, 1000.0),
    Tissue("visceral fat", VFAT, 0.95, 6.45, 60.0, 960.0),
    Tissue("bone", BONE, 1.45, 10.8, 40.0, 120.0),
    Tissue("lung", LUNG, 0.33, 7.45, 35.0, 5.0),
    Tissue("heart", HEART, 1.05, 7.5, 230.0, 10.0),
    Tissue("liver", LIVER, 1.05, 7.55, 170.0, 35.0),
    Tissue("gall bladder", GALL, 1.02, 7.45, 900.0, 0.0),
    Tissue("stomach", STOMACH, 1.03, 7.45, 520.0, 40.0),
    Tissue("stomach gas", STOMACH, 0.0011, 7.6, 0.0, 0.0),
    Tissue("spleen", SPLEEN, 1.05, 7.5, 420.0, 10.0),
    Tissue("kidney", KIDNEY, 1.04, 7.45, 680.0, 10.0),
    Tissue("intestine wall", INTESTINE, 1.04, 7.45, 380.0, 30.0),
    Tissue("intestine content", INTESTINE, 1.02, 7.45, 720.0, 20.0),
    Tissue("intestine gas", INTESTINE, 0.0011, 7.6, 0.0, 0.0),
    Tissue("caecum", CAECUM, 1.03, 7.5, 430.0, 45.0),
    Tissue("colon", COLON, 1.04, 7.55, 300.0, 40.0),
    Tissue("bladder", BLADDER, 1.01, 7.45, 1000.0, 0.0),
    Tissue("brain", BRAIN, 1.035, 7.4, 560.0, 15.0),
    Tissue("spinal cord", SPINE, 1.035, 7.4, 520.0, 15.0),
    Tissue("thyroid", THYROID, 1.05, 7.9, 380.0, 10.0),
    Tissue("mesenteric fat", VFAT, 0.95, 6.45, 60.0, 940.0),
)

_INDEX = {t.name: i for i, t in enumerate(TISSUES)}


def tid(name: str) -> int:
    """The integer id of the tissue called ``name`` (its index in :data:`TISSUES`)."""
    return _INDEX[name]


def lookup(attribute: str) -> np.ndarray:
    """A float32 lookup table ``tissue id -> attribute`` (e.g. ``"water"``)."""
    return np.array([getattr(t, attribute) for t in TISSUES], dtype=np.float32)


def label_lut() -> np.ndarray:
    """A uint8 lookup table ``tissue id -> organ label value``."""
    return np.array([t.label for t in TISSUES], dtype=np.uint8)
