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

from mousereg.errors import InputError, RegistrationError
from mousereg.fiducials.blobs import Blob, HoleShape
from mousereg.fiducials.body import body_mask_mr, body_steps, strided, strided_affine
from mousereg.fiducials.ct_holes import ct_body, find_ct_holes
from mousereg.fiducials.markers import Markers
from mousereg.fiducials.mr_holes import find_mr_holes
from mousereg.volume import Volume

_HOLE_CHANNELS = ("fat", "inphase", "in_phase", "in-phase", "ip", "in", "f")
_WATER_CHANNELS = ("water", "w", "opp", "opposed", "outphase", "out_phase", "out-phase")


@dataclasses.dataclass(frozen=True)
class Detection:
    """Markers found in one scan, with what is needed to report on them.

    Attributes:
        markers: the accepted hole centres.
        modality: ``"CT"`` or ``"MR"``.
        channel: the channel the holes were found in.
        body: boolean body mask ``(z, y, x)`` (on a possibly strided grid, see ``affine``).
        affine: 4×4 index (x, y, z) -> LPS mm of the body mask grid.
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


def detect_ct(volume: Volume, shape: HoleShape | None = None, source: str = "") -> Detection:
    """Marker holes in a CT in HU: fat-like components enclosed by plastic."""
    t0 = time.perf_counter()
    arr = np.asarray(volume.compute(), dtype=np.float32)
    body, steps = ct_body(arr, volume.spacing)
    blobs, n_cand, rejected = find_ct_holes(arr, volume.spacing, shape or HoleShape(), body, steps)
    return Detection(
        _markers(blobs, volume, source),
        "CT",
        "ct",
        body,
        strided_affine(volume.affine, steps),
        n_cand,
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


def detect_mr(volume: Volume, shape: HoleShape | None = None, source: str = "") -> Detection:
    """Marker holes in an MRI (one or several channels of one scan): bright vaseline outside the
    body in the fat or in-phase image."""
    t0 = time.perf_counter()
    shape = shape or HoleShape()
    chans = _hole_channels(volume, source)
    stack = np.asarray(volume.compute(), dtype=np.float32)
    if stack.ndim == 3:
        stack = stack[None]
    steps = body_steps(volume.spacing)
    sp = (volume.spacing[0] * steps[2], volume.spacing[1] * steps[1], volume.spacing[2] * steps[0])
    body = body_mask_mr(np.sum([strided(ch, steps) for ch in stack], axis=0), sp)
    best: tuple[list[Blob], int, dict[str, int], int] | None = None
    for c in chans:
        blobs, n_cand, rejected = find_mr_holes(stack[c], body, steps, volume.spacing, shape)
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
        strided_affine(volume.affine, steps),
        n_cand,
        rejected,
        time.perf_counter() - t0,
    )


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
