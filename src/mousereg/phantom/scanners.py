"""Imaging models: micro-CT (HU, µ511) and Dixon T2w MRI (water, fat) from tissue maps.

CT: the noise-free image is the tissue's HU (see :mod:`mousereg.phantom.physics`) blurred by a
Gaussian point-spread function (partial volume); noise is white Gaussian with a fixed standard
deviation. The true µ511 map is blurred by the same PSF, so noise-free
HU and µ are linked by the physical model voxel by voxel.

MRI: each voxel averages three samples across the 400 µm slice (partial volume), the in-plane
PSF is a small Gaussian, a smooth receive-coil bias multiplies both Dixon images, and the
magnitude images carry Rician noise.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from mousereg.phantom import physics
from mousereg.phantom.tissues import TISSUES, lookup

CT_NOISE_HU = {"full": 40.0, "test": 25.0}
CT_PSF_VOXELS = 0.6
MR_NOISE = 18.0
MR_PSF_VOXELS = 0.45


def hu_table() -> np.ndarray:
    """HU per tissue id (float32)."""
    return np.array([physics.hounsfield(t.rho_e, t.z_eff) for t in TISSUES], np.float32)


def mu_table() -> np.ndarray:
    """µ at 511 keV (cm⁻¹) per tissue id (float32)."""
    return np.array([physics.mu511(t.rho_e) for t in TISSUES], np.float32)


def _noise(rng: np.random.Generator, shape: tuple[int, ...], sd: float) -> np.ndarray:
    n = rng.standard_normal(shape, dtype=np.float32)
    n *= np.float32(sd)
    return n


def ct_images(
    tissue: np.ndarray, rng: np.random.Generator, resolution: str
) -> tuple[np.ndarray, np.ndarray]:
    """``(hu, mu511)`` float32 arrays from a CT tissue map."""
    hu = hu_table()[tissue]
    ndimage.gaussian_filter(hu, CT_PSF_VOXELS, output=hu, truncate=3.0)
    mu = mu_table()[tissue]
    ndimage.gaussian_filter(mu, CT_PSF_VOXELS, output=mu, truncate=3.0)
    hu += _noise(rng, hu.shape, CT_NOISE_HU[resolution])
    return hu, mu


def bias_field(shape: tuple[int, int, int], rng: np.random.Generator) -> np.ndarray:
    """A smooth receive-coil profile over the slab (about ±25 %), shape ``(z, y, x)``."""
    nz, ny, nx = shape
    w = np.linspace(-1, 1, nz, dtype=np.float32)[:, None, None]
    v = np.linspace(-1, 1, ny, dtype=np.float32)[None, :, None]
    u = np.linspace(-1, 1, nx, dtype=np.float32)[None, None, :]
    a = rng.uniform(-0.12, 0.12, size=3).astype(np.float32)
    log_b = -0.3 * u * u - 0.15 * v * v - 0.1 * w * w + a[0] * u + a[1] * v + a[2] * w
    return np.exp(log_b).astype(np.float32)


def mr_images(
    tissue_samples: list[np.ndarray], rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """``(water, fat)`` float32 magnitude images from tissue maps sampled across each slice."""
    images = []
    bias = bias_field(tissue_samples[0].shape, rng)
    for table in (lookup("water"), lookup("fat")):
        img = np.mean([table[t] for t in tissue_samples], axis=0).astype(np.float32)
        ndimage.gaussian_filter(img, (0.0, MR_PSF_VOXELS, MR_PSF_VOXELS), output=img)
        img *= bias
        re = img + rng.standard_normal(img.shape, dtype=np.float32) * np.float32(MR_NOISE)
        im = rng.standard_normal(img.shape, dtype=np.float32) * np.float32(MR_NOISE)
        images.append(np.sqrt(re * re + im * im).astype(np.float32))
    return images[0], images[1]
