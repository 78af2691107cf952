"""Parallel-beam sinograms of transaxial slices and PET attenuation correction factors.

The line integral of µ along each line of response (LOR) of a 2-D parallel-beam sinogram,
for every transaxial slice: a Radon transform computed by rotating the slice stack
(``scipy.ndimage.rotate``, linear interpolation) and summing along one in-plane axis. The
attenuation correction factor of an LOR is ``ACF = exp(∫ µ dl)``.

Slices are perpendicular to the scanner axis. ``axis="auto"`` takes the array axis with the
longest physical extent of the object (a mouse lies along the scanner axis). The in-plane grid is
resampled to square pixels of ``pixel_mm`` first (block-averaged when coarser than the image, so
thin bone keeps its integral).
"""

from __future__ import annotations

import dataclasses

import numpy as np
from scipy import ndimage

AXES = {"z": 0, "y": 1, "x": 2}


@dataclasses.dataclass(frozen=True)
class SinogramGeometry:
    """How a volume is cut into transaxial slices and projected."""

    axis: int  # array axis (0=z, 1=y, 2=x) along the scanner axis
    pixel_mm: float
    angles_deg: tuple[float, ...]


def scanner_axis(mask: np.ndarray, spacing_zyx: tuple[float, float, float]) -> int:
    """Array axis along which the object in ``mask`` is longest in mm."""
    extents = []
    for ax in range(3):
        other = tuple(a for a in range(3) if a != ax)
        present = np.flatnonzero(mask.any(axis=other))
        length = (present[-1] - present[0] + 1) if present.size else 0
        extents.append(length * spacing_zyx[ax])
    return int(np.argmax(extents))


def make_geometry(
    mask: np.ndarray,
    spacing_zyx: tuple[float, float, float],
    *,
    axis: str | int = "auto",
    pixel_mm: float | None = None,
    n_angles: int = 60,
) -> SinogramGeometry:
    """A geometry for a volume: the scanner axis, the in-plane pixel and ``n_angles`` over 180°."""
    ax = scanner_axis(mask, spacing_zyx) if axis == "auto" else AXES.get(str(axis), axis)
    if not isinstance(ax, int) or ax not in (0, 1, 2):
        msg = f"sinogram axis must be 'auto', 'z', 'y', 'x' or 0..2, got {axis!r}"
        raise ValueError(msg)
    in_plane = [spacing_zyx[a] for a in range(3) if a != ax]
    pixel = float(pixel_mm) if pixel_mm is not None else float(min(in_plane))
    angles = tuple(float(a) for a in np.arange(n_angles) * 180.0 / n_angles)
    return SinogramGeometry(ax, pixel, angles)


def _square_slices(
    volume: np.ndarray, spacing_zyx: tuple[float, float, float], geometry: SinogramGeometry
) -> np.ndarray:
    """Slices first, in-plane resampled to square ``pixel_mm`` pixels and padded for rotation."""
    stack = np.moveaxis(volume.astype(np.float32), geometry.axis, 0)
    in_plane = [spacing_zyx[a] for a in range(3) if a != geometry.axis]
    factors = [s / geometry.pixel_mm for s in in_plane]
    sizes = [max(1, round(f)) for f in (1 / f for f in factors)]
    if any(s > 1 for s in sizes):  # coarser output: average blocks first
        stack = ndimage.uniform_filter(stack, size=(1, *sizes), mode="constant")
    if any(abs(f - 1) > 1e-6 for f in factors):
        stack = ndimage.zoom(stack, (1, *factors), order=1, mode="nearest", grid_mode=True)
    _, ny, nx = stack.shape
    side = int(np.ceil(np.hypot(ny, nx))) + 2
    py, px = side - ny, side - nx
    return np.pad(stack, ((0, 0), (py // 2, py - py // 2), (px // 2, px - px // 2)))


def line_integrals(
    volume: np.ndarray,
    spacing_zyx: tuple[float, float, float],
    geometry: SinogramGeometry,
) -> np.ndarray:
    """∫ values · dl (cm, for µ in cm⁻¹) along every LOR: array ``(slices, angles, bins)``."""
    stack = _square_slices(volume, spacing_zyx, geometry)
    pixel_cm = geometry.pixel_mm / 10.0
    out = np.empty((stack.shape[0], len(geometry.angles_deg), stack.shape[2]), dtype=np.float32)
    for i, angle in enumerate(geometry.angles_deg):
        rotated = ndimage.rotate(stack, angle, axes=(1, 2), reshape=False, order=1, mode="constant")
        out[:, i, :] = rotated.sum(axis=1) * pixel_cm
    return out


def path_lengths_mm(
    mask: np.ndarray,
    spacing_zyx: tuple[float, float, float],
    geometry: SinogramGeometry,
) -> np.ndarray:
    """Length (mm) of every LOR inside ``mask``: array ``(slices, angles, bins)``."""
    return line_integrals(mask.astype(np.float32), spacing_zyx, geometry) * 10.0


def acf(
    mu: np.ndarray, spacing_zyx: tuple[float, float, float], geometry: SinogramGeometry
) -> np.ndarray:
    """Attenuation correction factors ``exp(∫ µ dl)`` of every LOR (µ in cm⁻¹)."""
    return np.exp(line_integrals(mu, spacing_zyx, geometry))
