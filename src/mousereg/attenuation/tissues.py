"""Reference linear attenuation coefficients at 511 keV (cm⁻¹) and their physical range.

Tissue values follow the Digimouse table (Dogdas 2007; ``FACTS.md``); they agree to 0.3 % with
the ICRU-44 compositions run through :mod:`mousereg.attenuation.xray` (adipose 0.0913, soft
tissue 0.1008, cortical bone 0.1714). ``MARTINEZ_MOLLER`` holds the clinical Dixon 4-class values
(Martinez-Möller 2009, J Nucl Med 50:520).
"""

from __future__ import annotations

from types import MappingProxyType

MU_AIR = 1.0e-4
MU_LUNG = 0.0317
MU_FAT = 0.0913
MU_WATER = 0.0960
MU_SOFT = 0.1008
MU_MUSCLE = 0.0999
MU_BRAIN = 0.0994
MU_BONE = 0.1717

# Above this nothing biological exists (cortical bone 0.17; titanium 0.37 would be an implant).
MU_PHYSICAL_MAX = 0.25
# A small negative tolerance for interpolation ringing; anything below is not a mu-map.
MU_PHYSICAL_MIN = -1.0e-3

MOUSE_DIXON = MappingProxyType(
    {"air": 0.0, "lung": MU_LUNG, "fat": MU_FAT, "soft tissue": MU_SOFT},
)
"""Dixon 4-class values for mice: Digimouse lung (inflated mouse lung, density about 0.3 g/cm³),
adipose and soft tissue."""

MARTINEZ_MOLLER = MappingProxyType(
    {"air": 0.0, "lung": 0.018, "fat": 0.086, "soft tissue": 0.100},
)
"""Clinical Dixon 4-class values (human lung, density about 0.2 g/cm³)."""

DIXON_VALUES = MappingProxyType({"mouse": MOUSE_DIXON, "martinez-moller": MARTINEZ_MOLLER})
