"""Candidate blobs: connected components on the full grid, sub-voxel features on small crops.

A blob is measured from a *weight* image in [0, 1] (the fraction of a voxel filled by marker
material, e.g. vaseline) over a region a little larger than the thresholded component, so that
partial-volume voxels at the edge count with their fraction: the weighted centroid is then the
centroid of the filled volume, free of the half-voxel bias of a plain thresholded centroid.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from scipy import ndimage

#: 26-connectivity for the component search.
STRUCTURE_26 = np.ones((3, 3, 3), dtype=bool)


@dataclasses.dataclass(frozen=True)
class HoleShape:
    """Size limits of a marker hole (mm, mm³); defaults cover 0.8–2 mm × 1.5–5 mm holes."""

    min_volume_mm3: float = 0.25
    max_volume_mm3: float = 25.0
    min_width_mm: float = 0.45
    max_width_mm: float = 3.0
    max_length_mm: float = 7.0
    min_fill: float = 0.45
    max_fill: float = 1.8


@dataclasses.dataclass(frozen=True)
class Blob:
    """A measured candidate.

    Attributes:
        index_xyz: weighted centroid, continuous index in (x, y, z) order.
        volume_mm3: weighted volume (sum of weights times voxel volume).
        extents_mm: sqrt(12·λ) along the principal axes, largest first (length, width, width).
        fill: volume over that of the cylinder with those extents (1 for a filled cylinder).
        fle_mm: RMS 3-D centroid error expected from image noise and voxel size.
        touches_edge: the component reaches the border of the image.
    """

    index_xyz: np.ndarray
    volume_mm3: float
    extents_mm: np.ndarray
    fill: float
    fle_mm: float
    touches_edge: bool

    def features(self) -> dict[str, float]:
        """JSON-friendly shape features."""
        return {
            "volume_mm3": self.volume_mm3,
            "length_mm": float(self.extents_mm[0]),
            "width_mm": float(np.sqrt(self.extents_mm[1] * self.extents_mm[2])),
            "fill": self.fill,
        }

    def looks_like_hole(self, shape: HoleShape) -> bool:
        """True when size, width, length and fill fit a marker hole."""
        length = float(self.extents_mm[0])
        width = float(np.sqrt(self.extents_mm[1] * self.extents_mm[2]))
        return bool(
            shape.min_volume_mm3 <= self.volume_mm3 <= shape.max_volume_mm3
            and shape.min_width_mm <= width <= shape.max_width_mm
            and length <= shape.max_length_mm
            and shape.min_fill <= self.fill <= shape.max_fill
            and not self.touches_edge
        )


def limits(
    spacing_xyz: tuple[float, float, float], shape: HoleShape
) -> tuple[int, int, np.ndarray, int]:
    """Voxel-count limits, largest bounding box (z, y, x voxels) and crop margin of a hole."""
    sp = np.asarray(spacing_xyz, dtype=float)
    voxel = float(np.prod(sp))
    min_vox = max(1, int(0.3 * shape.min_volume_mm3 / voxel))
    max_vox = int(2.0 * shape.max_volume_mm3 / voxel) + 8
    max_ext = (shape.max_length_mm + 2.0 * sp[::-1]) / sp[::-1] + 2
    margin = int(np.ceil(0.6 / sp.min())) + 2
    return min_vox, max_vox, max_ext, margin


def components(
    mask: np.ndarray, min_voxels: int, max_voxels: int, max_extent_vox: np.ndarray
) -> list[tuple[int, tuple[slice, slice, slice], np.ndarray]]:
    """Label ``mask`` and keep components of plausible voxel count and bounding box.

    Returns ``(label, bbox slices (z, y, x), labels)`` per kept component; ``labels`` is the
    shared label image.
    """
    labels, n = ndimage.label(mask, structure=STRUCTURE_26)
    if n == 0:
        return []
    counts = np.bincount(labels.ravel(), minlength=n + 1)
    objects = ndimage.find_objects(labels)
    kept = []
    for lab in np.flatnonzero((counts >= min_voxels) & (counts <= max_voxels)):
        if lab == 0:
            continue
        sl = objects[lab - 1]
        if sl is None:
            continue
        ext = np.array([s.stop - s.start for s in sl])
        if np.any(ext > max_extent_vox):
            continue
        kept.append((int(lab), sl, labels))
    return kept


def grow(sl: tuple[slice, ...], shape: tuple[int, ...], margin: int) -> tuple[slice, ...]:
    """Enlarge index slices by ``margin`` voxels, clipped to ``shape``."""
    return tuple(
        slice(max(s.start - margin, 0), min(s.stop + margin, n))
        for s, n in zip(sl, shape, strict=True)
    )


def touches_border(sl: tuple[slice, ...], shape: tuple[int, ...], margin: int) -> bool:
    """True when the slices come within ``margin`` voxels of the array border."""
    return any(s.start < margin or s.stop > n - margin for s, n in zip(sl, shape, strict=True))


def measure(
    weights: np.ndarray,
    offset_zyx: tuple[int, int, int],
    spacing_xyz: tuple[float, float, float],
    sigma_w: float,
    touches_edge: bool,
) -> Blob:
    """Weighted centroid, volume, principal extents and expected centroid error of a crop.

    Args:
        weights: crop ``(z, y, x)`` of filling fractions in [0, 1] (0 outside the blob region).
        offset_zyx: index of the crop's first voxel in the full image.
        spacing_xyz: voxel size (mm) in (x, y, z) order.
        sigma_w: standard deviation of one voxel's weight due to image noise.
        touches_edge: whether the component reaches the image border.
    """
    zz, yy, xx = np.nonzero(weights > 0)
    w = weights[zz, yy, xx].astype(float)
    total = float(w.sum())
    sp = np.asarray(spacing_xyz, dtype=float)
    idx = np.stack([xx, yy, zz], axis=1).astype(float)
    c_idx = (w[:, None] * idx).sum(axis=0) / total
    d = (idx - c_idx) * sp  # mm in the grid's axes (direction is orthonormal)
    cov = (w[:, None, None] * d[:, :, None] * d[:, None, :]).sum(axis=0) / total
    cov -= np.diag(sp**2 / 12.0)  # a voxel's own extent
    lam = np.clip(np.sort(np.linalg.eigvalsh(cov))[::-1], 1e-12, None)
    extents = np.sqrt(12.0 * lam)
    volume = total * float(np.prod(sp))
    # Filled cylinder: length L = sqrt(12 λ1), diameter 4 sqrt(λ2) (uniform disc: λ = R²/4).
    radius_sq = 4.0 * np.sqrt(lam[1] * lam[2])
    cylinder = np.pi * radius_sq * extents[0]
    fill = volume / cylinder if cylinder > 0 else 0.0
    # Noise: var(c_a) = σ_w² Σ (x_a − c_a)² / W²; discretisation: a small fraction of a voxel
    # per boundary voxel, averaging down over the ~sqrt(n) edge voxels.
    noise_var = sigma_w**2 * float((d**2).sum()) / total**2
    edge = max(float(np.count_nonzero((w > 0.02) & (w < 0.98))), 1.0)
    discretisation_var = float((sp**2).sum()) * 0.25 / edge
    fle = float(np.sqrt(noise_var + discretisation_var))
    off = np.asarray(offset_zyx[::-1], dtype=float)
    return Blob(c_idx + off, volume, extents, float(fill), fle, touches_edge)
