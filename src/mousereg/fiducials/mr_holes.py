"""Marker holes in an MRI: vaseline is bright in the fat (or in-phase) image, the plastic around
it gives no signal, and the holes lie outside the body.

The background of a magnitude image is Rician (Rayleigh where there is no signal): its mean is
subtracted before weighting, so that the dark plastic around a hole adds no bias to the centroid.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from mousereg.fiducials.blobs import (
    Blob,
    HoleShape,
    components,
    grow,
    limits,
    measure,
    touches_border,
)
from mousereg.fiducials.body import body_fraction, strided, upsample

#: An MR candidate with more than this fraction of its weight inside the body is body fat.
MAX_BODY_OVERLAP = 0.1
#: Rayleigh distribution: mean / median, and Gaussian sigma / median.
RAYLEIGH_MEAN_OVER_MEDIAN = 1.0645
RAYLEIGH_SIGMA_OVER_MEDIAN = 0.8493


def background_level(
    img: np.ndarray, body: np.ndarray, steps: tuple[int, int, int]
) -> tuple[float, float]:
    """Mean and Gaussian sigma of the no-signal background (air and plastic), from its median."""
    outside = strided(img, steps)[~body]
    if outside.size == 0:
        outside = img.ravel()
    low = outside[outside <= np.percentile(outside, 90)]
    med = max(float(np.median(low)), 1e-6)
    return RAYLEIGH_MEAN_OVER_MEDIAN * med, RAYLEIGH_SIGMA_OVER_MEDIAN * med


def find_mr_holes(
    img: np.ndarray,
    body: np.ndarray,
    steps: tuple[int, int, int],
    spacing: tuple[float, float, float],
    shape: HoleShape,
) -> tuple[list[Blob], int, dict[str, int]]:
    """Measured hole candidates of one MR channel ``(z, y, x)``, with rejection counts.

    ``body`` is the body mask on the grid strided by ``steps`` (z, y, x).
    """
    bg, sigma = background_level(img, body, steps)
    outside = strided(img, steps)[~body]
    bright = float(np.percentile(outside, 99.95)) if outside.size else float(img.max())
    threshold = max(bg + 8.0 * sigma, 0.3 * bright)
    min_vox, max_vox, max_ext, margin = limits(spacing, shape)
    outside_body = ~upsample(body, steps, img.shape)
    comps = components((img > threshold) & outside_body, min_vox, max_vox, max_ext)
    rejected = {"inside_body": 0, "shape": 0, "edge": 0}
    blobs: list[Blob] = []
    if not comps:
        return blobs, 0, rejected
    peaks = [float(np.percentile(img[sl][labels[sl] == lab], 90)) for lab, sl, labels in comps]
    level = float(np.median(peaks)) - bg
    for (lab, sl, labels), peak in zip(comps, peaks, strict=True):
        # the hole's own plateau where it has one (large holes), else the typical level (small
        # holes never fill a voxel); the centroid does not depend on it, the volume does
        lvl = max(level, peak - bg)
        crop = grow(sl, img.shape, margin)
        lab_crop = labels[crop]
        comp = lab_crop == lab
        region = ndimage.binary_dilation(comp, iterations=2) & ((lab_crop == 0) | comp)
        weights = np.clip((img[crop] - bg) / lvl, -0.5, 1.5) * region
        edge = touches_border(sl, img.shape, 1)
        offset = (crop[0].start, crop[1].start, crop[2].start)
        in_body = body_fraction(body, steps, weights, offset)
        blob = measure(weights, offset, spacing, sigma / lvl, edge)
        if in_body > MAX_BODY_OVERLAP:
            rejected["inside_body"] += 1
        elif edge:
            rejected["edge"] += 1
        elif not blob.looks_like_hole(shape):
            rejected["shape"] += 1
        else:
            blobs.append(blob)
    return blobs, len(comps), rejected
