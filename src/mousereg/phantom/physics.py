"""A two-parameter photon attenuation model that links the phantom's CT numbers to its 511 keV µ.

Each material is described by its electron density relative to water ``rho_e`` and its effective
atomic number ``z_eff``. The linear attenuation coefficient at photon energy E is

    µ(E) = rho_e · [σ_incoh,w(E) + σ_coh,w(E)·(Z/Z_w)² + σ_photo,w(E)·(Z/Z_w)^3.5]

with σ·,w the per-electron-density (i.e. water) components of incoherent, coherent and
photo-electric attenuation of water (NIST XCOM, interpolated as power laws between 30 and 40 keV)
and Z_w = 7.42. At 511 keV only Compton scattering matters, so µ511 = rho_e · 0.0960 cm⁻¹ (water,
Digimouse table). The CT is modelled as monoenergetic at the effective energy of a 55 kVp
micro-CT beam (35 keV, assumed); HU = 1000 · (µ − µ_water) / (µ_water − µ_air).

The same ``rho_e`` therefore fixes both the HU (together with ``z_eff``) and µ511, which is what a
CT→µ conversion has to learn; bone's slope differs from soft tissue's because of ``z_eff``.
"""

from __future__ import annotations

import numpy as np

KVP = 55
E_EFF_KEV = 35.0
Z_WATER = 7.42
MU511_WATER = 0.0960  # cm^-1
RHO_E_AIR = 0.0011

# water mass attenuation components (cm^2/g, NIST XCOM) at 30 and 40 keV
_WATER_30 = {"coherent": 0.0296, "incoherent": 0.1880, "photo": 0.1580}
_WATER_40 = {"coherent": 0.0184, "incoherent": 0.1891, "photo": 0.0609}


def _water_component(name: str, energy_kev: float) -> float:
    lo, hi = _WATER_30[name], _WATER_40[name]
    exponent = np.log(hi / lo) / np.log(40.0 / 30.0)
    return float(lo * (energy_kev / 30.0) ** exponent)


def mu_at(
    rho_e: np.ndarray | float, z_eff: np.ndarray | float, energy_kev: float = E_EFF_KEV
) -> np.ndarray:
    """Linear attenuation (cm⁻¹) at ``energy_kev`` for materials ``(rho_e, z_eff)``."""
    ratio = np.asarray(z_eff, dtype=float) / Z_WATER
    per_e = (
        _water_component("incoherent", energy_kev)
        + _water_component("coherent", energy_kev) * ratio**2
        + _water_component("photo", energy_kev) * ratio**3.5
    )
    return np.asarray(rho_e, dtype=float) * per_e


def hounsfield(
    rho_e: np.ndarray | float, z_eff: np.ndarray | float, energy_kev: float = E_EFF_KEV
) -> np.ndarray:
    """CT number (HU) of materials ``(rho_e, z_eff)`` for a beam of effective ``energy_kev``."""
    mu_w = mu_at(1.0, Z_WATER, energy_kev)
    mu_air = mu_at(RHO_E_AIR, 7.6, energy_kev)
    return 1000.0 * (mu_at(rho_e, z_eff, energy_kev) - mu_w) / (mu_w - mu_air)


def mu511(rho_e: np.ndarray | float) -> np.ndarray:
    """Linear attenuation at 511 keV (cm⁻¹): Compton only, proportional to electron density."""
    return np.asarray(rho_e, dtype=float) * MU511_WATER
