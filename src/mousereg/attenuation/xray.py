"""A two-term X-ray attenuation model: Compton (Klein–Nishina) plus photoelectric.

Per electron of an element with atomic number ``Z`` at photon energy ``E`` (keV)::

    sigma_e(E, Z) = sigma_KN(E) + K * Z**M / (E / 30)**N

``K``, ``M`` and ``N`` were fitted (least squares on log mu/rho) to the NIST XCOM mass attenuation
coefficients of water and ICRU-44 cortical bone at 30–150 keV; the fit reproduces all 14 values
within 0.6 %. At 511 keV the photoelectric term is negligible and mu is the electron density
times the Klein–Nishina cross-section, which is why CT numbers of low-Z tissues map to 511 keV so
simply. The model gives the CT number of a reference material at an effective CT energy, which is
how :mod:`mousereg.attenuation.hu_model` extends the clinical (80–140 kVp) bilinear scaling to
micro-CT tube voltages.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

import numpy as np

from mousereg.attenuation.tissues import MU_WATER

AVOGADRO = 6.02214076e23
ELECTRON_RADIUS_CM = 2.8179403262e-13
ELECTRON_REST_KEV = 510.99895

PHOTO_K = 7.65788e-28  # cm² per electron at E = 30 keV, Z = 1
PHOTO_M = 3.25024
PHOTO_N = 2.96131

# Z, atomic mass (g/mol)
ELEMENTS: Mapping[str, tuple[int, float]] = MappingProxyType(
    {
        "H": (1, 1.008),
        "C": (6, 12.011),
        "N": (7, 14.007),
        "O": (8, 15.999),
        "Na": (11, 22.990),
        "Mg": (12, 24.305),
        "P": (15, 30.974),
        "S": (16, 32.06),
        "Cl": (17, 35.45),
        "Ar": (18, 39.948),
        "K": (19, 39.098),
        "Ca": (20, 40.078),
        "Al": (13, 26.982),
    }
)

Material = tuple[float, Mapping[str, float]]
"""Mass density (g/cm³) and elemental mass fractions."""

# ICRU Report 44 compositions (mass fractions) and densities.
MATERIALS: Mapping[str, Material] = MappingProxyType(
    {
        "aluminium": (2.699, {"Al": 1.0}),
        "air": (0.001205, {"C": 0.000124, "N": 0.755268, "O": 0.231781, "Ar": 0.012827}),
        "water": (1.0, {"H": 0.111894, "O": 0.888106}),
        "adipose": (
            0.95,
            {"H": 0.114, "C": 0.598, "N": 0.007, "O": 0.278, "Na": 0.001, "S": 0.001, "Cl": 0.001},
        ),
        "soft tissue": (
            1.06,
            {
                "H": 0.102,
                "C": 0.143,
                "N": 0.034,
                "O": 0.708,
                "Na": 0.002,
                "P": 0.003,
                "S": 0.003,
                "Cl": 0.002,
                "K": 0.003,
            },
        ),
        "cortical bone": (
            1.92,
            {
                "H": 0.034,
                "C": 0.155,
                "N": 0.042,
                "O": 0.435,
                "Na": 0.001,
                "Mg": 0.002,
                "P": 0.103,
                "S": 0.003,
                "Ca": 0.225,
            },
        ),
    }
)


def klein_nishina(energy_kev: float | np.ndarray) -> np.ndarray:
    """Total Klein–Nishina cross-section per electron (cm²)."""
    k = np.asarray(energy_kev, dtype=float) / ELECTRON_REST_KEV
    log = np.log1p(2 * k)
    t1 = (1 + k) / k**2 * (2 * (1 + k) / (1 + 2 * k) - log / k)
    t2 = log / (2 * k) - (1 + 3 * k) / (1 + 2 * k) ** 2
    return np.asarray(2 * np.pi * ELECTRON_RADIUS_CM**2 * (t1 + t2))


def mass_attenuation(material: Material, energy_kev: float | np.ndarray) -> np.ndarray:
    """mu/rho (cm²/g) of a material at the given energies."""
    _, fractions = material
    e = np.asarray(energy_kev, dtype=float)
    total = np.zeros_like(e)
    for symbol, fraction in fractions.items():
        z, a = ELEMENTS[symbol]
        sigma = klein_nishina(e) + PHOTO_K * z**PHOTO_M / (e / 30.0) ** PHOTO_N
        total = total + fraction * AVOGADRO * z / a * sigma
    return total


def linear_attenuation(material: Material, energy_kev: float | np.ndarray) -> np.ndarray:
    """mu (cm⁻¹) of a material at the given energies."""
    return material[0] * mass_attenuation(material, energy_kev)


def hounsfield(material: Material, energy_kev: float | np.ndarray) -> np.ndarray:
    """CT number (HU) of a material at a monoenergetic effective energy."""
    water = linear_attenuation(MATERIALS["water"], energy_kev)
    return np.asarray(1000.0 * (linear_attenuation(material, energy_kev) / water - 1.0))


def mu511(material: Material) -> float:
    """mu at 511 keV (cm⁻¹), scaled so that water is :data:`MU_WATER` (the tissue table's value)."""
    ratio = linear_attenuation(material, 511.0) / linear_attenuation(MATERIALS["water"], 511.0)
    return float(MU_WATER * ratio)
