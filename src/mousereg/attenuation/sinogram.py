"""Parallel-beam sinograms of transaxial slices and PET attenuation correction factors.

The line integral of µ along each line of response (LOR) of a 2-D parallel-beam sinogram,
for every transaxial slice: a Radon transform. Each ray is sampled every pixel with bilinear
interpolation (Joseph's method); the weights of all rays form one sparse projection matrix per
slice shape, built once and applied to every slice with one sparse-dense product. The
attenuation correction factor of an LOR is ``ACF = exp(∫ µ dl)``.

Slices are perpendicular to the scanner axis. ``axis="auto"`` takes the array axis with the
longest physical extent of the object (a mouse lies along the scanner axis). The in-plane grid is
resampled to square pixels of ``pixel_mm`` first (block-averaged when coarser than the image, so
thin bone keeps its integral).
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np
from scipy import ndimage, sparse

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


def _slices(
    volume: np.ndarray, spacing_zyx: tuple[float, float, float], geometry: SinogramGeometry
) -> np.ndarray:
    """Slices first, in-plane resampled to square ``pixel_mm`` pixels."""
    stack = np.moveaxis(volume.astype(np.float32), geometry.axis, 0)
    in_plane = [spacing_zyx[a] for a in range(3) if a != geometry.axis]
    factors = [s / geometry.pixel_mm for s in in_plane]
    sizes = [max(1, round(f)) for f in (1 / f for f in factors)]
    if any(s > 1 for s in sizes):  # coarser output: average blocks first
        stack = ndimage.uniform_filter(stack, size=(1, *sizes), mode="constant")
    if any(abs(f - 1) > 1e-6 for f in factors):
        stack = ndimage.zoom(stack, (1, *factors), order=1, mode="nearest", grid_mode=True)
    return stack


@functools.lru_cache(maxsize=8)
def projector(ny: int, nx: int, angles_deg: tuple[float, ...]) -> sparse.csr_matrix:
    """Sparse matrix ``(angles·bins, ny·nx)``: ray sums (in pixels) of a ``(ny, nx)`` slice.

    Bins are one pixel apart and centred on the slice centre; there are enough of them to cover
    the slice's diagonal.
    """
    n_bins = int(np.ceil(np.hypot(ny, nx))) | 1
    half = (n_bins - 1) / 2
    offsets = np.arange(n_bins, dtype=np.float64) - half
    steps = np.arange(-half, half + 1, dtype=np.float64)
    cy, cx = (ny - 1) / 2, (nx - 1) / 2
    rows, cols, vals = [], [], []
    for a, angle in enumerate(np.deg2rad(np.asarray(angles_deg))):
        ray_y, ray_x = np.cos(angle), np.sin(angle)  # along the LOR
        det_y, det_x = -np.sin(angle), np.cos(angle)  # across LORs (detector axis)
        y = cy + offsets[:, None] * det_y + steps[None, :] * ray_y
        x = cx + offsets[:, None] * det_x + steps[None, :] * ray_x
        y0, x0 = np.floor(y), np.floor(x)
        fy, fx = y - y0, x - x0
        bins = np.broadcast_to(np.arange(n_bins)[:, None], y.shape) + a * n_bins
        for dy, dx, w in (
            (0, 0, (1 - fy) * (1 - fx)),
            (0, 1, (1 - fy) * fx),
            (1, 0, fy * (1 - fx)),
            (1, 1, fy * fx),
        ):
            yi, xi = y0 + dy, x0 + dx
            ok = (yi >= 0) & (yi < ny) & (xi >= 0) & (xi < nx) & (w > 0)
            rows.append(bins[ok].astype(np.int32))
            cols.append((yi[ok] * nx + xi[ok]).astype(np.int32))
            vals.append(w[ok].astype(np.float32))
    shape = (len(angles_deg) * n_bins, ny * nx)
    matrix = sparse.coo_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=shape
    )
    return matrix.tocsr()


def line_integrals(
    volume: np.ndarray,
    spacing_zyx: tuple[float, float, float],
    geometry: SinogramGeometry,
) -> np.ndarray:
    """∫ values · dl (cm, for µ in cm⁻¹) along every LOR: array ``(slices, angles, bins)``."""
    stack = _slices(volume, spacing_zyx, geometry)
    n, ny, nx = stack.shape
    p = projector(ny, nx, geometry.angles_deg)
    sums = (p @ stack.reshape(n, ny * nx).T).T * np.float32(geometry.pixel_mm / 10.0)
    return np.asarray(sums, dtype=np.float32).reshape(n, len(geometry.angles_deg), -1)


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
