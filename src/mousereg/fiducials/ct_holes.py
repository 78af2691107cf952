"""Marker holes in a CT (HU): fat-like vaseline inside the holder's plastic.

Candidates are the connected components of the vaseline density range, labelled on a grid
strided to about 0.25 mm (fast on a 140 µm whole-body CT); each is re-segmented and measured on
a small full-resolution crop. A hole must sit in plastic (the median of its surrounding wall is
plastic, not soft tissue), not touch air over much of its surface (that is a smear on the
holder's surface) and be hole-sized and compact.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from mousereg.fiducials.blobs import (
    STRUCTURE_26,
    Blob,
    HoleShape,
    components,
    grow,
    limits,
    measure,
    touches_border,
)
from mousereg.fiducials.body import body_steps, fill_slices, largest_components, strided

#: Candidate cores: vaseline (about −230…−100 HU), well below soft tissue (≥ 0 HU).
CT_FAT_HU = (-500.0, -100.0)
#: The wall of a hole: holder plastic, denser than soft tissue (muscle, liver ≈ +40…+75 HU).
CT_PLASTIC_HU = (105.0, 450.0)
CT_AIR_HU = -500.0
CT_BODY_MIN_HU = -400.0
#: A candidate whose surrounding ring is more than this fraction air is a smear, not a hole.
MAX_AIR_RING = 0.3
#: A wall with more than this fraction of voxels denser than plastic lies against bone.
MAX_BONE_WALL = 0.05
#: Candidates are labelled on a grid strided to about this spacing (mm).
COARSE_MM = 0.25


def noise_correlation_gain(arr: np.ndarray, background: np.ndarray, slices: int = 16) -> float:
    """Factor by which spatially correlated noise inflates the error of a weighted centroid.

    From the lag-1 correlation ρ of the background (air) along each axis, assuming a Gaussian
    correlation: each axis contributes Σₖ ρ^(k²) ≈ 1 + 2ρ + 2ρ⁴ + 2ρ⁹ to the variance of a sum;
    the standard deviation grows by the square root of their product. Uses the first
    ``slices`` slices only.
    """
    a = arr[:slices]
    m = background[:slices]
    gain = 1.0
    for axis in range(3):
        lo = [slice(None)] * 3
        hi = [slice(None)] * 3
        lo[axis] = slice(0, -1)
        hi[axis] = slice(1, None)
        both = m[tuple(lo)] & m[tuple(hi)]
        if both.sum() < 1000:
            continue
        x0 = a[tuple(lo)][both].astype(float)
        x1 = a[tuple(hi)][both].astype(float)
        x0 -= x0.mean()
        x1 -= x1.mean()
        rho = float(np.clip((x0 * x1).mean() / max(float(x0.std() * x1.std()), 1e-9), 0, 0.95))
        gain *= 1 + 2 * rho + 2 * rho**4 + 2 * rho**9
    return float(np.sqrt(gain))


def body_mask_ct(arr: np.ndarray, spacing: tuple[float, float, float]) -> np.ndarray:
    """Body of a CT: dense voxels that are not holder plastic, opened (which removes noise and
    the one-voxel partial-volume shells around the holder) and filled slice by slice."""
    voxel = float(np.prod(spacing))
    plastic = (arr >= CT_PLASTIC_HU[0]) & (arr <= CT_PLASTIC_HU[1])
    tissue = (arr > CT_BODY_MIN_HU) & ~plastic
    tissue = ndimage.binary_opening(tissue, iterations=1)
    return fill_slices(largest_components(tissue, voxel, 200.0))


def _symmetric(region: np.ndarray, centre_zyx: np.ndarray) -> np.ndarray:
    """Keep only voxels whose mirror image through ``centre_zyx`` is in ``region`` too."""
    idx = np.argwhere(region)
    mirror = np.rint(2 * centre_zyx - idx).astype(int)
    inside = np.all((mirror >= 0) & (mirror < np.array(region.shape)), axis=1)
    keep = np.zeros(len(idx), dtype=bool)
    keep[inside] = region[tuple(mirror[inside].T)]
    out = np.zeros_like(region)
    out[tuple(idx[keep].T)] = True
    return out


def _measure_candidate(
    a: np.ndarray,
    seeds: np.ndarray,
    spacing: tuple[float, float, float],
    noise_gain: float,
    offset: tuple[int, int, int],
    edge: bool,
) -> tuple[Blob | None, str]:
    """Segment the vaseline touching ``seeds`` in the crop ``a`` and measure it."""
    fat = (a > CT_FAT_HU[0]) & (a < CT_FAT_HU[1])
    lab, _ = ndimage.label(fat, structure=STRUCTURE_26)
    ids = np.unique(lab[seeds & fat])
    ids = ids[ids > 0]
    comp = np.isin(lab, ids)
    if not comp.any():
        return None, "shape"
    region = ndimage.binary_dilation(comp, iterations=2) & ((lab == 0) | comp)
    ring = ndimage.binary_dilation(region, iterations=2) & ~region
    air = a < CT_AIR_HU
    if float(air[ring].mean()) > MAX_AIR_RING:
        return None, "touches_air"
    near_air = ndimage.binary_dilation(air, iterations=1)
    wall = a[ring & ~near_air]
    plastic = float(np.median(wall)) if wall.size else -1000.0
    bone = float(np.mean(wall > CT_PLASTIC_HU[1])) if wall.size else 0.0
    if not CT_PLASTIC_HU[0] <= plastic <= CT_PLASTIC_HU[1] or bone > MAX_BONE_WALL:
        return None, "not_in_plastic"
    core = float(np.median(a[comp]))
    noise = 1.4826 * float(np.median(np.abs(wall - plastic))) * noise_gain
    contrast = max(plastic - core, 1.0)
    region &= ~ndimage.binary_dilation(air, iterations=2) | comp
    centre = np.argwhere(comp).mean(axis=0)
    region = _symmetric(region, centre) | comp
    weights = np.clip((plastic - a) / contrast, -0.5, 1.5) * region
    return measure(weights, offset, spacing, noise / contrast, edge), ""


def _inside(body: np.ndarray, steps: tuple[int, int, int], index_xyz: np.ndarray) -> bool:
    """True when the continuous index (full grid) falls in the strided body mask."""
    k = np.rint(np.asarray(index_xyz)[::-1] / np.asarray(steps)).astype(int)
    if np.any(k < 0) or np.any(k >= np.array(body.shape)):
        return False
    return bool(body[tuple(k)])


def find_ct_holes(
    arr: np.ndarray,
    spacing: tuple[float, float, float],
    shape: HoleShape,
    body: np.ndarray,
    body_steps: tuple[int, int, int],
) -> tuple[list[Blob], int, dict[str, int]]:
    """Measured hole candidates of a CT array ``(z, y, x)`` in HU, with rejection counts.

    ``body`` is the body mask on the grid strided by ``body_steps`` (z, y, x); candidates in it
    are body fat.
    """
    f = max(1, round(COARSE_MM / min(spacing)))
    coarse = strided(arr, f)
    coarse_sp = (spacing[0] * f, spacing[1] * f, spacing[2] * f)
    min_vox, max_vox, max_ext, _ = limits(coarse_sp, shape)
    _, _, _, margin = limits(spacing, shape)
    noise_gain = noise_correlation_gain(arr, arr < -800.0)
    mask = (coarse > CT_FAT_HU[0]) & (coarse < CT_FAT_HU[1])
    comps = components(mask, min_vox, max_vox, max_ext)
    rejected = {"touches_air": 0, "not_in_plastic": 0, "inside_body": 0, "shape": 0, "edge": 0}
    blobs: list[Blob] = []
    if comps:
        # partial-volume rims at air boundaries: mostly next to air already on the coarse grid
        near_air = ndimage.binary_dilation(coarse < CT_AIR_HU, structure=STRUCTURE_26)
        labels = comps[0][2]
        ids = [c[0] for c in comps]
        frac = np.asarray(ndimage.mean(near_air, labels, ids))
        rejected["touches_air"] = int((frac > 0.5).sum())
        comps = [c for c, fr in zip(comps, frac, strict=True) if fr <= 0.5]
    for lab, sl, labels in comps:
        full = tuple(slice(s.start * f, s.stop * f) for s in sl)
        crop = grow(full, arr.shape, margin + f)
        seeds = np.zeros([c.stop - c.start for c in crop], dtype=bool)
        pts = np.argwhere(labels[sl] == lab) + [s.start for s in sl]
        local = pts * f - [c.start for c in crop]
        seeds[tuple(local.T)] = True
        edge = touches_border(full, arr.shape, 2)
        offset = (crop[0].start, crop[1].start, crop[2].start)
        blob, why = _measure_candidate(arr[crop], seeds, spacing, noise_gain, offset, edge)
        if blob is None:
            rejected[why] += 1
        elif _inside(body, body_steps, blob.index_xyz):
            rejected["inside_body"] += 1
        elif edge:
            rejected["edge"] += 1
        elif not blob.looks_like_hole(shape):
            rejected["shape"] += 1
        else:
            blobs.append(blob)
    return blobs, len(comps), rejected


def ct_body(
    arr: np.ndarray, spacing: tuple[float, float, float]
) -> tuple[np.ndarray, tuple[int, int, int]]:
    """Body mask on a strided grid (see :func:`body_steps`), and the strides (z, y, x)."""
    st = body_steps(spacing)
    sp = (spacing[0] * st[2], spacing[1] * st[1], spacing[2] * st[0])
    return body_mask_ct(strided(arr, st), sp), st
