"""Body masks that keep the intensity registration on the animal (not the rigid holder).

* CT: tissue is above ``CT_AIR_HU`` and outside the holder's plastic band ``CT_PLASTIC_HU``;
  an opening cuts thin contacts with the holder, then the largest component, a closing and hole
  filling give the body.
* MRI (Dixon): the water + fat signal above an Otsu threshold; the largest component drops the
  vaseline marker holes (bright in fat, but outside the animal), then closing and filling.

Both work on a block-averaged copy near ``COARSE_MM`` and are returned on the image's own grid.
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from mousereg.errors import InputError
from mousereg.morphology import ball_mm, fill_holes, largest_component

CT_AIR_HU = -500.0
CT_PLASTIC_HU = (125.0, 400.0)  # the holder's plastic; bone above 400 HU stays tissue
COARSE_MM = 0.5
OPEN_MM = 0.6
CLOSE_MM = 1.0


def body_from_tissue(tissue: np.ndarray, spacing_zyx: np.ndarray, open_mm: float) -> np.ndarray:
    """Opening (optional), largest component grown back inside the tissue, closing, filling."""
    mask = np.asarray(tissue, dtype=bool)
    if open_mm > 0:
        se = ball_mm(open_mm, spacing_zyx)
        core = largest_component(ndimage.binary_opening(mask, structure=se))
        mask = np.asarray(ndimage.binary_dilation(core, structure=se) & mask)
    body = largest_component(mask)
    se = ball_mm(CLOSE_MM, spacing_zyx)
    pad = [(n // 2 + 1,) * 2 for n in se.shape]
    closed = ndimage.binary_closing(np.pad(body, pad), structure=se)
    return fill_holes(closed[tuple(slice(p[0], -p[1]) for p in pad)])


def _coarse(image: sitk.Image) -> tuple[sitk.Image, np.ndarray]:
    factors = [max(1, round(COARSE_MM / s)) for s in image.GetSpacing()]
    small = sitk.BinShrink(image, factors) if max(factors) > 1 else image
    sx, sy, sz = small.GetSpacing()
    return small, np.array([sz, sy, sx])


def _back_to_grid(mask: np.ndarray, coarse: sitk.Image, image: sitk.Image) -> sitk.Image:
    m = sitk.GetImageFromArray(mask.astype(np.uint8))
    m.CopyInformation(coarse)
    return sitk.Resample(m, image, sitk.Transform(), sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8)


def ct_body_mask(ct: sitk.Image) -> sitk.Image:
    """The animal's body in a CT in HU, without the holder, as a uint8 image on the CT grid."""
    small, spacing_zyx = _coarse(sitk.Cast(ct, sitk.sitkFloat32))
    hu = sitk.GetArrayFromImage(small)
    plastic = (hu >= CT_PLASTIC_HU[0]) & (hu < CT_PLASTIC_HU[1])
    body = body_from_tissue((hu > CT_AIR_HU) & ~plastic, spacing_zyx, OPEN_MM)
    if not body.any():
        msg = f"CT: no body found (no connected tissue above {CT_AIR_HU:g} HU); is it in HU?"
        raise InputError(msg)
    return _back_to_grid(body, small, ct)


def mr_body_mask(signal: sitk.Image) -> sitk.Image:
    """The animal's body in a Dixon MRI from its water + fat signal, uint8 on the MRI grid."""
    small, spacing_zyx = _coarse(sitk.Cast(signal, sitk.sitkFloat32))
    s = sitk.GetArrayFromImage(sitk.SmoothingRecursiveGaussian(small, float(spacing_zyx.min())))
    if not np.isfinite(s).all() or s.max() <= s.min():
        msg = "MRI: the water + fat signal is constant or not finite; check the Dixon channels"
        raise InputError(msg)
    threshold = _otsu(s)
    body = body_from_tissue(s > 0.5 * threshold, spacing_zyx, 0.0)
    if not body.any():
        msg = "MRI: no body found in the water + fat signal"
        raise InputError(msg)
    return _back_to_grid(body, small, signal)


def _otsu(values: np.ndarray, bins: int = 256) -> float:
    hist, edges = np.histogram(values, bins=bins)
    centres = (edges[:-1] + edges[1:]) / 2
    w0 = np.cumsum(hist)
    w1 = w0[-1] - w0
    m0 = np.cumsum(hist * centres)
    mu0 = m0 / np.maximum(w0, 1)
    mu1 = (m0[-1] - m0) / np.maximum(w1, 1)
    between = w0 * w1 * (mu0 - mu1) ** 2
    return float(centres[int(np.argmax(between))])


def dilate(mask: sitk.Image, radius_mm: float) -> sitk.Image:
    """A binary mask grown by ``radius_mm`` (per-axis radius in voxels, at least one)."""
    radius = [max(1, round(radius_mm / s)) for s in mask.GetSpacing()]
    return sitk.BinaryDilate(sitk.Cast(mask, sitk.sitkUInt8), radius)


def taper(mask: sitk.Image, ramp_mm: float) -> np.ndarray:
    """A weight ``(z, y, x)``: 1 inside ``mask``, falling linearly to 0 at ``ramp_mm`` outside."""
    dist = sitk.SignedMaurerDistanceMap(
        sitk.Cast(mask, sitk.sitkUInt8), insideIsPositive=False, useImageSpacing=True
    )
    d = sitk.GetArrayFromImage(dist)
    return np.clip(1.0 - d / ramp_mm, 0.0, 1.0).astype(np.float32)
