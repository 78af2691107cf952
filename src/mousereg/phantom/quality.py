"""Checks that a phantom pair is what it claims: consistent truth, visible holes, organ sizes.

* :func:`landmark_agreement`: the fraction of landmarks whose nearest CT and MRI voxels both
  carry the landmark's organ label.
* :func:`hole_cnr`: contrast-to-noise of every marker hole,
  ``|mean(hole core) − mean(surrounding plastic)| / σ`` (the plastic of a coaxial shell 0.4–1.0
  mm outside the hole's wall, at least 0.3 mm inside the holder), with σ the noise of the image
  (CT: standard deviation in a plastic region; MRI: Rician σ from a signal-free region,
  ``sd / 0.655``).
* :func:`organ_volumes`: millilitres per label of a label map.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from mousereg.labels import LabelTable
from mousereg.phantom.holder import DEFAULT_DESIGN, HolderDesign
from mousereg.phantom.pair import PhantomPair
from mousereg.volume import Volume

RICIAN_BACKGROUND_SD = 0.655  # sd of a Rician magnitude where the signal is 0, in units of σ
# a region inside the bed plate far from every hole (holder frame, mm)
BED_NOISE_BOX = (np.array([-12.0, -3.3, 15.0]), np.array([0.0, -0.7, 40.0]))


def _labels_at(volume: Volume, array: np.ndarray, points: np.ndarray) -> np.ndarray:
    idx = np.round(volume.physical_to_index(points)).astype(int)
    size = np.array(volume.size)
    inside = np.all((idx >= 0) & (idx < size), axis=1)
    idx = np.clip(idx, 0, size - 1)
    out = array[idx[:, 2], idx[:, 1], idx[:, 0]]
    return np.where(inside, out, 0)


def landmark_agreement(pair: PhantomPair) -> float:
    """Fraction of landmarks labelled with their organ in both the CT and the MRI label map."""
    lm = pair.landmarks
    if len(lm["label"]) == 0:
        return 0.0
    ct = _labels_at(pair.ct_labels, pair.ct_labels.compute(), lm["ct"])
    mr = _labels_at(pair.mr_labels, pair.mr_labels.compute(), lm["mr"])
    return float(np.mean((ct == lm["label"]) & (mr == lm["label"])))


def _voxel_points(volume: Volume, center: np.ndarray, reach: float) -> tuple[tuple, np.ndarray]:
    """Index box (z, y, x slices) around ``center`` and the physical points of its voxels."""
    c = volume.physical_to_index(center)
    pad = reach / np.asarray(volume.spacing) + 1
    lo = np.clip(np.floor(c - pad).astype(int), 0, np.array(volume.size) - 1)
    hi = np.clip(np.ceil(c + pad).astype(int) + 1, 1, np.array(volume.size))
    k, j, i = np.meshgrid(*(np.arange(a, b) for a, b in zip(lo[::-1], hi[::-1], strict=True)),
                          indexing="ij")  # fmt: skip
    pts = volume.index_to_physical(np.stack([i, j, k], axis=-1).astype(float))
    box = tuple(slice(a, b) for a, b in zip(lo[::-1], hi[::-1], strict=True))
    return box, pts


def _in_plastic(holder_points: np.ndarray, design: HolderDesign, depth: float = 0.3) -> np.ndarray:
    """Points at least ``depth`` mm inside the holder's plastic parts (holder frame)."""
    inside = np.zeros(holder_points.shape[:-1], bool)
    for lo, hi in (design.bed, *design.rails):
        lo_a, hi_a = np.asarray(lo) + depth, np.asarray(hi) - depth
        inside |= np.all((holder_points >= lo_a) & (holder_points <= hi_a), axis=-1)
    return inside


def _hole_contrast(
    volume: Volume, image: np.ndarray, center: np.ndarray, axis: np.ndarray, diameter: float,
    length: float, to_holder: Callable[[np.ndarray], np.ndarray],
) -> float:  # fmt: skip
    """mean(hole core) − mean(plastic in a coaxial shell 0.4–1.0 mm outside the wall)."""
    r = diameter / 2
    box, pts = _voxel_points(volume, center, length / 2 + r + 1.5)
    values = image[box]
    d = pts - center
    t = d @ axis
    radial = np.sqrt(np.maximum(np.sum(d * d, axis=-1) - t * t, 0.0))
    along = np.abs(t) <= length / 2 - 0.2
    core = along & (radial <= 0.6 * r)
    if not core.any():
        dist = np.sqrt(np.sum(d * d, axis=-1))
        core = dist == dist.min()
    shell = (np.abs(t) <= length / 2) & (radial >= r + 0.4) & (radial <= r + 1.0)
    shell &= _in_plastic(to_holder(pts), DEFAULT_DESIGN)
    return float(values[core].mean() - values[shell].mean())


def _ct_noise(pair: PhantomPair, ct: np.ndarray) -> float:
    offset = np.asarray(pair.info["ct_offset_mm"])
    lo, hi = (b + offset for b in BED_NOISE_BOX)
    i0 = np.ceil(pair.ct.physical_to_index(lo)).astype(int)
    i1 = np.floor(pair.ct.physical_to_index(hi)).astype(int)
    return float(ct[i0[2] : i1[2], i0[1] : i1[1], i0[0] : i1[0]].std())


def _mr_noise(water: np.ndarray) -> float:
    """Rician σ from the image's signal-free corners (the slab's edge voxels outside the mouse)."""
    corner = np.concatenate(
        [water[:, :8, :8].ravel(), water[:, -8:, :8].ravel(), water[:, :8, -8:].ravel()]
    )
    low = corner[corner < np.percentile(corner, 90)]
    return float(low.std() / RICIAN_BACKGROUND_SD)


def hole_cnr(pair: PhantomPair) -> dict[str, np.ndarray]:
    """CNR of every hole in the CT and, for holes inside the slab, in MR water and fat.

    Returns arrays ``ct`` (all holes), ``fat`` and ``water`` (NaN for holes outside the slab).
    """
    ct = pair.ct.compute()
    sigma_ct = _ct_noise(pair, ct)
    water = pair.mr.channel("water").compute()
    fat = pair.mr.channel("fat").compute()
    sigma_mr = _mr_noise(water)
    mr_vol = pair.mr.channel("water")
    n = len(pair.hole_ids)
    offset = np.asarray(pair.info["ct_offset_mm"])
    m = np.asarray(pair.rigid.GetMatrix()).reshape(3, 3)
    t = np.asarray(pair.rigid.GetTranslation())

    def ct_holder(p: np.ndarray) -> np.ndarray:
        return p - offset

    def mr_holder(p: np.ndarray) -> np.ndarray:
        return p @ m.T + t - offset

    out = {"ct": np.zeros(n), "fat": np.full(n, np.nan), "water": np.full(n, np.nan)}
    for h in range(n):
        d, length = float(pair.hole_diameters[h]), float(pair.hole_lengths[h])
        axis_ct, axis_mr = pair.hole_axes_ct[h], pair.hole_axes_mr[h]
        c = _hole_contrast(pair.ct, ct, pair.holes_ct[h], axis_ct, d, length, ct_holder)
        out["ct"][h] = abs(c) / sigma_ct
        if pair.holes_in_mr[h]:
            for name, img in (("fat", fat), ("water", water)):
                c = _hole_contrast(mr_vol, img, pair.holes_mr[h], axis_mr, d, length, mr_holder)
                out[name][h] = abs(c) / sigma_mr
    return out


def organ_volumes(labels: Volume, table: LabelTable | None = None) -> dict[str, float]:
    """Volume (mL) of every label of ``table`` in a label map."""
    tab = table or labels.labels or LabelTable.default()
    counts = np.bincount(labels.compute().ravel(), minlength=max(tab.values) + 1)
    voxel_ml = float(np.prod(labels.spacing)) / 1000.0
    return {lab.name: float(counts[lab.value] * voxel_ml) for lab in tab}


# Published organ volumes for a 25 g mouse (mL; docs/phantom.md gives the sources). Organs marked
# True scale with body weight; brain and bladder (filling) do not.
PUBLISHED_RANGES_ML: dict[str, tuple[float, float, bool]] = {
    "liver": (1.0, 1.65, True),
    "kidney": (0.28, 0.50, True),
    "heart": (0.08, 0.16, True),
    "brain": (0.30, 0.55, False),
    "spleen": (0.05, 0.13, True),
    "lung": (0.5, 1.0, True),
    "bladder": (0.02, 0.3, False),
}


def volumes_in_range(volumes: dict[str, float], weight_g: float) -> dict[str, bool]:
    """Whether each organ of :data:`PUBLISHED_RANGES_ML` is within its range at ``weight_g``."""
    out = {}
    for organ, (lo, hi, scales) in PUBLISHED_RANGES_ML.items():
        f = weight_g / 25.0 if scales else 1.0
        out[organ] = lo * f <= volumes[organ] <= hi * f
    return out
