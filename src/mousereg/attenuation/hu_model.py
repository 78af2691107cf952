"""CT number (HU) → µ at 511 keV (cm⁻¹): piecewise-linear scaling models.

Two models, both piecewise linear in HU (docs/mumap.md has the derivation):

* ``"bilinear"`` — Carney et al. 2006 (Med Phys 33:976): µ = 9.6e-5·(HU+1000) up to the break
  point BP, µ = a·(HU+1000) + b above it; a, b, BP interpolated in kVp over the published 80–140
  kVp table. Below 80 kVp (micro-CT) the bone slope comes from the X-ray model: BP is the CT
  number of ICRU soft tissue and the bone branch goes through ICRU cortical bone, both evaluated
  at the effective energy of the tube voltage.
* ``"materials"`` (default) — the line through reference materials evaluated at the effective
  energy: air, the air–soft-tissue mixing line up to :data:`LUNG_UPPER_HU`, adipose, water, soft
  tissue and cortical bone, extrapolated beyond bone along the last segment. Unlike the bilinear
  form it puts adipose (−188 HU at 55 kV) at its own µ (0.0913), where the air–water line would
  be 14 % low.

The effective energy of a tube voltage comes from a filtered Kramers spectrum
(:mod:`mousereg.attenuation.spectrum`: 34.5 keV at 55 kV on a micro-CT), which reproduces the
effective energies implied by Carney's clinical slopes within 5 keV (:func:`carney_bone_energy`).
"""

from __future__ import annotations

import dataclasses
from types import MappingProxyType

import numpy as np
import numpy.typing as npt
from scipy.optimize import brentq

from mousereg.attenuation import xray
from mousereg.attenuation.spectrum import effective_energy
from mousereg.attenuation.tissues import MU_WATER
from mousereg.errors import InputError

# kVp: (a [cm^-1/HU], b [cm^-1], break point [HU]) — Carney 2006, Table I.
CARNEY = MappingProxyType(
    {
        80: (3.64e-5, 0.0626, 50.0),
        100: (4.43e-5, 0.0544, 52.0),
        110: (4.92e-5, 0.0488, 43.0),
        120: (5.10e-5, 0.0471, 47.0),
        130: (5.51e-5, 0.0424, 37.0),
        140: (5.64e-5, 0.0408, 30.0),
    }
)
SOFT_SLOPE = 9.6e-5  # cm^-1 per HU below the break point (air-water line)
LUNG_UPPER_HU = -400.0  # the air–soft-tissue (lung) line holds up to here (lung density <= 0.6)
MODELS = ("materials", "bilinear")


@dataclasses.dataclass(frozen=True)
class MuModel:
    """A piecewise-linear HU → µ511 map; HU are first corrected by ``gain·HU + offset``.

    Below the first knot µ is the first knot's value (air); above the last knot the last segment
    is extrapolated. µ never goes below 0.
    """

    hu: tuple[float, ...]
    mu: tuple[float, ...]
    name: str
    kvp: float
    effective_kev: float
    gain: float = 1.0
    offset: float = 0.0

    def __call__(self, values: npt.ArrayLike) -> np.ndarray:
        """µ511 (cm⁻¹, float32) of the given CT values."""
        h = np.asarray(values, dtype=np.float32) * np.float32(self.gain) + np.float32(self.offset)
        knots_h = np.asarray(self.hu, dtype=np.float32)
        knots_mu = np.asarray(self.mu, dtype=np.float32)
        out = np.interp(h, knots_h, knots_mu).astype(np.float32)
        slope = (knots_mu[-1] - knots_mu[-2]) / (knots_h[-1] - knots_h[-2])
        above = h > knots_h[-1]
        out[above] = knots_mu[-1] + slope * (h[above] - knots_h[-1])
        return np.maximum(out, np.float32(0.0))

    def metadata(self) -> dict[str, object]:
        """JSON-friendly description (written beside the µ-map)."""
        return {
            "model": self.name,
            "kvp": self.kvp,
            "effective_kev": round(self.effective_kev, 2),
            "knots_hu": [round(h, 2) for h in self.hu],
            "knots_mu_cm": [round(m, 6) for m in self.mu],
            "hu_gain": self.gain,
            "hu_offset": self.offset,
        }


def carney_bone_energy(kvp: int) -> float:
    """The energy at which ICRU cortical bone has the CT number implied by Carney's row ``kvp``
    (where that row's bone line reaches the bone's µ511): a check of :mod:`.spectrum`."""
    bone = xray.MATERIALS["cortical bone"]
    a, b, _ = CARNEY[kvp]
    bone_hu = (xray.mu511(bone) - b) / a - 1000.0
    return float(brentq(lambda e: float(xray.hounsfield(bone, e)) - bone_hu, 15.0, 300.0))


def material_hu(name: str, energy_kev: float) -> float:
    """CT number of an ICRU reference material at an effective energy."""
    if name == "air":
        return -1000.0
    return float(xray.hounsfield(xray.MATERIALS[name], energy_kev))


def material_mu(name: str) -> float:
    """µ511 (cm⁻¹) of an ICRU reference material (air is 0 on the HU scale's floor)."""
    return 0.0 if name == "air" else xray.mu511(xray.MATERIALS[name])


def materials_model(kvp: float, energy_kev: float | None = None) -> MuModel:
    """Piecewise-linear model through air, lung line, adipose, water, soft tissue, bone."""
    energy = effective_energy(kvp) if energy_kev is None else energy_kev
    soft_hu, soft_mu = material_hu("soft tissue", energy), material_mu("soft tissue")
    lung_mu = soft_mu * (LUNG_UPPER_HU + 1000.0) / (soft_hu + 1000.0)
    names = ("adipose", "soft tissue", "cortical bone")
    fat_hu, _, bone_hu = (material_hu(n, energy) for n in names)
    hu = (-1000.0, LUNG_UPPER_HU, fat_hu, 0.0, soft_hu, bone_hu)
    mu = (0.0, lung_mu, material_mu("adipose"), MU_WATER, soft_mu, material_mu("cortical bone"))
    return MuModel(hu, mu, "materials", float(kvp), energy)


def _carney_parameters(kvp: float) -> tuple[float, float, float]:
    kvps = np.array(sorted(CARNEY), dtype=float)
    table = np.array([CARNEY[int(k)] for k in kvps])
    return tuple(float(np.interp(kvp, kvps, table[:, i])) for i in range(3))  # type: ignore[return-value]


def bilinear_model(kvp: float, energy_kev: float | None = None) -> MuModel:
    """Carney's bilinear scaling (80–140 kVp), extended below 80 kVp by the X-ray model."""
    energy = effective_energy(kvp) if energy_kev is None else energy_kev
    if kvp >= min(CARNEY) and energy_kev is None:
        a, b, bp = _carney_parameters(kvp)
    else:
        bp = material_hu("soft tissue", energy)
        bone_hu, mu_bone = material_hu("cortical bone", energy), material_mu("cortical bone")
        mu_bp = SOFT_SLOPE * (bp + 1000.0)
        a = (mu_bone - mu_bp) / (bone_hu - bp)
        b = mu_bp - a * (bp + 1000.0)
    top = bp + 1000.0
    hu = (-1000.0, bp, top)
    mu = (0.0, SOFT_SLOPE * (bp + 1000.0), a * (top + 1000.0) + b)
    return MuModel(hu, mu, "bilinear", float(kvp), energy)


def make_model(kvp: float, name: str = "materials", energy_kev: float | None = None) -> MuModel:
    """The HU → µ511 model ``name`` (``"materials"`` or ``"bilinear"``) at a tube voltage.

    ``energy_kev`` overrides the effective energy that :func:`.spectrum.effective_energy` derives
    from the tube voltage (for a scanner whose filtration is known to differ).
    """
    if energy_kev is not None and not 10.0 <= energy_kev <= 200.0:
        msg = f"--effective-kev {energy_kev}: give an effective energy between 10 and 200 keV"
        raise InputError(msg)
    if name == "materials":
        return materials_model(kvp, energy_kev)
    if name == "bilinear":
        return bilinear_model(kvp, energy_kev)
    msg = f"unknown HU→µ model {name!r}; use one of {', '.join(MODELS)}"
    raise InputError(msg)
