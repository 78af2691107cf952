"""Find the holder's vaseline-filled marker holes in a CT or an MRI.

CT: vaseline is fat-like (about −150…−50 HU) inside plastic (+50…+300 HU). Candidates are the
connected components of the fat-density range on the full grid; each is measured on a small crop:
it must be enclosed by plastic (not by soft tissue or air), be hole-sized and compact.

MRI: vaseline is bright in the fat and in-phase images and dark in the water image; the plastic
gives no signal. Candidates are bright, small, compact components of the fat (or in-phase) image
that lie outside the body (the body is what the sum of the channels shows).

Centres are the centroids of the vaseline *fraction* of each voxel (partial volume counted), in
physical LPS mm of the Volume's own frame (any direction matrix), with an estimate of each
centre's localisation error from the image noise and the voxel size.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence

import numpy as np
from scipy import ndimage

from mousereg.errors import InputError, RegistrationError
from mousereg.fiducials.blobs import Blob, HoleShape, components, grow, measure, touches_border
from mousereg.fiducials.body import body_mask_mr, fill_slices, largest_components
from mousereg.fiducials.markers import Markers
from mousereg.volume import Volume

#: CT value ranges (HU).
CT_FAT_HU = (-400.0, -20.0)
#: Holder plastic is denser than soft tissue (muscle, liver ≈ +40…+75 HU) and far below bone.
CT_PLASTIC_HU = (100.0, 450.0)
CT_BODY_MIN_HU = -400.0
#: Fraction of a CT hole's surrounding shell that must be plastic.
MIN_PLASTIC_SHELL = 0.6
#: An MR candidate with more than this fraction of its weight inside the body is body fat.
MAX_BODY_OVERLAP = 0.1

_HOLE_CHANNELS = ("fat", "inphase", "in_phase", "in-phase", "ip", "in", "f")
_WATER_CHANNELS = ("water", "w", "opp", "opposed", "outphase", "out_phase", "out-phase")


@dataclasses.dataclass(frozen=True)
class Detection:
    """Markers found in one scan, with what is needed to report on them.

    Attributes:
        markers: the accepted hole centres.
        modality: ``"CT"`` or ``"MR"``.
        channel: the channel the holes were found in.
        body: boolean body mask ``(z, y, x)`` on the scan's grid.
        affine: 4×4 index (x, y, z) -> LPS mm of that grid.
        candidates: number of components measured.
        rejected: how many candidates each test rejected.
        seconds: wall time.
    """

    markers: Markers
    modality: str
    channel: str
    body: np.ndarray
    affine: np.ndarray
    candidates: int
    rejected: dict[str, int]
    seconds: float

    def summary(self) -> dict[str, object]:
        """JSON-friendly summary for reports."""
        fle = self.markers.fle_rms()
        return {
            "modality": self.modality,
            "channel": self.channel,
            "holes_found": len(self.markers),
            "candidates": self.candidates,
            "rejected": dict(self.rejected),
            "fle_rms_mm": round(fle, 5) if np.isfinite(fle) else None,
            "seconds": round(self.seconds, 3),
        }


def channel_role(name: str) -> str:
    """``"hole"`` (fat, in-phase), ``"water"`` (water, opposed-phase) or ``"unknown"``."""
    n = name.strip().lower()
    if n in _HOLE_CHANNELS or "fat" in n or "inphase" in n or "in_phase" in n:
        return "hole"
    if n in _WATER_CHANNELS or "water" in n or "opp" in n:
        return "water"
    return "unknown"


def guess_modality(volume: Volume) -> str:
    """``"CT"`` or ``"MR"``: from ``volume.modality``, else from the values (CT air ≈ −1000 HU)."""
    m = volume.modality.strip().upper()
    if m in ("CT", "MR", "MRI"):
        return "CT" if m == "CT" else "MR"
    if volume.is_multichannel:
        return "MR"
    low = float(volume.data[::4, ::4, ::4].min().compute())
    return "CT" if low < -500.0 else "MR"


def _order(blobs: list[Blob], volume: Volume) -> tuple[np.ndarray, list[Blob]]:
    pts = np.array([volume.index_to_physical(b.index_xyz) for b in blobs]).reshape(-1, 3)
    order = np.lexsort((pts[:, 0], pts[:, 1], pts[:, 2])) if len(pts) else np.array([], int)
    return pts[order], [blobs[i] for i in order]


def _markers(blobs: list[Blob], volume: Volume, source: str) -> Markers:
    pts, ordered = _order(blobs, volume)
    return Markers(
        pts,
        np.array([b.fle_mm for b in ordered]),
        tuple(f"H{i + 1}" for i in range(len(ordered))),
        tuple(b.features() for b in ordered),
        source,
    )


def _limits(volume: Volume, shape: HoleShape) -> tuple[int, int, np.ndarray, int]:
    sp = np.asarray(volume.spacing)
    voxel = float(np.prod(sp))
    min_vox = max(1, int(0.3 * shape.min_volume_mm3 / voxel))
    max_vox = int(2.0 * shape.max_volume_mm3 / voxel) + 8
    max_ext = (shape.max_length_mm + 2.0 * sp[::-1]) / sp[::-1] + 2
    margin = int(np.ceil(0.6 / sp.min())) + 2
    return min_vox, max_vox, max_ext, margin


def body_mask_ct(arr: np.ndarray, spacing: tuple[float, float, float]) -> np.ndarray:
    """Body of a CT: dense (not air) voxels that are not holder plastic, filled."""
    voxel = float(np.prod(spacing))
    dense = arr > CT_BODY_MIN_HU
    tissue = dense & ~((arr >= CT_PLASTIC_HU[0]) & (arr <= CT_PLASTIC_HU[1]))
    tissue = ndimage.binary_opening(tissue, iterations=1)
    return fill_slices(largest_components(tissue, voxel, 200.0))


def detect_ct(volume: Volume, shape: HoleShape | None = None, source: str = "") -> Detection:
    """Marker holes in a CT in HU: fat-like components enclosed by plastic."""
    t0 = time.perf_counter()
    shape = shape or HoleShape()
    arr = np.asarray(volume.compute(), dtype=np.float32)
    min_vox, max_vox, max_ext, margin = _limits(volume, shape)
    fat = (arr > CT_FAT_HU[0]) & (arr < CT_FAT_HU[1])
    comps = components(fat, min_vox, max_vox, max_ext)
    rejected = {"not_enclosed_by_plastic": 0, "shape": 0, "edge": 0}
    blobs: list[Blob] = []
    for lab, sl, labels in comps:
        crop = grow(sl, arr.shape, margin)
        a = arr[crop]
        lab_crop = labels[crop]
        comp = lab_crop == lab
        region = ndimage.binary_dilation(comp, iterations=2) & ((lab_crop == 0) | comp)
        shell = ndimage.binary_dilation(region, iterations=2) & ~region
        sv = a[shell]
        plastic_frac = float(np.mean((sv >= CT_PLASTIC_HU[0]) & (sv <= CT_PLASTIC_HU[1])))
        if plastic_frac < MIN_PLASTIC_SHELL:
            rejected["not_enclosed_by_plastic"] += 1
            continue
        plastic = float(np.median(sv))
        core = float(np.median(a[comp]))
        noise = 1.4826 * float(np.median(np.abs(sv - plastic)))
        contrast = max(plastic - core, 1.0)
        weights = np.clip((plastic - a) / contrast, 0.0, 1.0) * (region & (a > CT_FAT_HU[0]))
        edge = touches_border(sl, arr.shape, 2)
        offset = (crop[0].start, crop[1].start, crop[2].start)
        blob = measure(weights, offset, volume.spacing, noise / contrast, edge)
        if edge:
            rejected["edge"] += 1
        elif not blob.looks_like_hole(shape):
            rejected["shape"] += 1
        else:
            blobs.append(blob)
    body = body_mask_ct(arr, volume.spacing)
    return Detection(
        _markers(blobs, volume, source),
        "CT",
        "ct",
        body,
        volume.affine,
        len(comps),
        rejected,
        time.perf_counter() - t0,
    )


def _hole_channels(volume: Volume, source: str) -> list[int]:
    roles = [channel_role(n) for n in volume.channel_names] or ["unknown"]
    holes = [i for i, r in enumerate(roles) if r == "hole"]
    if holes:
        return holes
    unknown = [i for i, r in enumerate(roles) if r == "unknown"]
    if unknown:
        return unknown
    msg = (
        f"{source or 'MRI'}: only a water (or opposed-phase) image was given "
        f"(channels {list(volume.channel_names)}); vaseline is invisible in water images, so the "
        "marker holes cannot be found: pass the fat or in-phase image too "
        "(e.g. --fixed water.nii.gz --fixed fat.nii.gz)"
    )
    raise RegistrationError(msg)


def _noise_sigma(values: np.ndarray) -> float:
    """Noise of the (near-zero) background: robust spread of the darker half of the voxels."""
    low = values[values <= np.median(values)]
    return max(1.4826 * float(np.median(np.abs(low - np.median(low)))), 1e-6)


def detect_mr(volume: Volume, shape: HoleShape | None = None, source: str = "") -> Detection:
    """Marker holes in an MRI (one or several channels of one scan): bright vaseline outside the
    body in the fat or in-phase image."""
    t0 = time.perf_counter()
    shape = shape or HoleShape()
    chans = _hole_channels(volume, source)
    stack = np.asarray(volume.compute(), dtype=np.float32)
    if stack.ndim == 3:
        stack = stack[None]
    body = body_mask_mr(stack.sum(axis=0), volume.spacing)
    best: tuple[list[Blob], int, dict[str, int], int] | None = None
    for c in chans:
        blobs, n_cand, rejected = _mr_blobs(stack[c], body, volume, shape)
        if best is None or len(blobs) > len(best[0]):
            best = (blobs, c, rejected, n_cand)
    assert best is not None
    blobs, c, rejected, n_cand = best
    name = volume.channel_names[c] if volume.channel_names else "mr"
    return Detection(
        _markers(blobs, volume, source),
        "MR",
        name,
        body,
        volume.affine,
        n_cand,
        rejected,
        time.perf_counter() - t0,
    )


def _mr_blobs(
    img: np.ndarray, body: np.ndarray, volume: Volume, shape: HoleShape
) -> tuple[list[Blob], int, dict[str, int]]:
    sigma = _noise_sigma(img[::2, ::2, ::2])
    outside = img[~body]
    bright = float(np.percentile(outside, 99.95)) if outside.size else float(img.max())
    threshold = max(8.0 * sigma, 0.3 * bright)
    min_vox, max_vox, max_ext, margin = _limits(volume, shape)
    comps = components((img > threshold) & ~body, min_vox, max_vox, max_ext)
    rejected = {"inside_body": 0, "shape": 0, "edge": 0}
    if not comps:
        return [], 0, rejected
    peaks = [float(np.percentile(img[sl][labels[sl] == lab], 90)) for lab, sl, labels in comps]
    level = float(np.median(peaks))
    blobs = []
    for (lab, sl, labels), peak in zip(comps, peaks, strict=True):
        crop = grow(sl, img.shape, margin)
        lab_crop = labels[crop]
        comp = lab_crop == lab
        region = ndimage.binary_dilation(comp, iterations=2) & ((lab_crop == 0) | comp)
        lvl = max(level, peak) if peak > 0.5 * level else peak
        weights = np.clip(img[crop] / lvl, 0.0, 1.0) * region
        in_body = float((weights * body[crop]).sum() / max(weights.sum(), 1e-9))
        edge = touches_border(sl, img.shape, 1)
        offset = (crop[0].start, crop[1].start, crop[2].start)
        blob = measure(weights, offset, volume.spacing, sigma / lvl, edge)
        if in_body > MAX_BODY_OVERLAP:
            rejected["inside_body"] += 1
        elif edge:
            rejected["edge"] += 1
        elif not blob.looks_like_hole(shape):
            rejected["shape"] += 1
        else:
            blobs.append(blob)
    return blobs, len(comps), rejected


def as_scan(images: Volume | Sequence[Volume]) -> Volume:
    """One Volume from one image or several channels of one scan (same grid)."""
    if isinstance(images, Volume):
        return images
    vols = list(images)
    if not vols:
        msg = "no image given; pass at least one image of the scan"
        raise InputError(msg)
    if len(vols) == 1:
        return vols[0]
    flat = [ch for v in vols for ch in v.channels()]
    names = [ch.channel_names[0] if ch.channel_names else f"c{i}" for i, ch in enumerate(flat)]
    scan = Volume.stack(flat, names=names)
    return dataclasses.replace(scan, modality=vols[0].modality or "MR")


def detect(
    images: Volume | Sequence[Volume],
    *,
    modality: str | None = None,
    shape: HoleShape | None = None,
    source: str = "",
) -> Detection:
    """Find the marker holes in one scan (a CT, or one or several channels of one MRI).

    Args:
        images: the scan: one Volume (possibly multi-channel) or several channel Volumes on one
            grid (e.g. Dixon water and fat). Channel names say which is fat / in-phase.
        modality: ``"CT"`` or ``"MR"``; guessed from the volume when not given.
        shape: size limits of the holes.
        source: a name for messages and the markers file (e.g. the image path).
    """
    scan = as_scan(images)
    mod = (modality or guess_modality(scan)).upper()
    if mod == "CT":
        if scan.is_multichannel:
            msg = f"{source or 'CT'}: a CT has one channel, got {scan.n_channels}"
            raise InputError(msg)
        return detect_ct(scan, shape, source)
    return detect_mr(scan, shape, source)
