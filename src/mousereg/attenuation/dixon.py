"""Dixon 4-class µ-map: air, lung, fat and soft tissue from the water and fat images.

* Signal ``S = water + fat``, lightly smoothed (:data:`SMOOTH_MM`) against the magnitude noise;
  tissue is ``S`` above a threshold: :data:`NOISE_FACTOR` times the background (noise) peak of the
  histogram, and at least :data:`SIGNAL_FRACTION` of Otsu's threshold — so that dim tissue such
  as a T2-dark liver stays tissue while the air's Rician noise does not.
* The body is the largest connected tissue object, closed and with holes filled
  (:mod:`.body`); its outermost voxels are then peeled where their signal is below
  :data:`SURFACE_FRACTION` of the tissue next to them (the noise threshold alone puts the edge
  a voxel too far out in bright tissue). The holder's vaseline markers are bright in the fat
  image but separate objects outside the body, so they drop out; the plastic gives no signal.
* Inside the body: fat where the fat fraction ``fat / S`` exceeds :data:`FAT_FRACTION`, soft
  tissue elsewhere; low signal inside the body is lung when it forms a large connected region
  (in a mouse the lung gives almost no MR signal, like air — the body mask is what tells them
  apart); small low-signal pockets (cortical bone, vessels, gas bubbles) become soft tissue.

Class values: :data:`mousereg.attenuation.tissues.MOUSE_DIXON` (or the clinical
Martinez-Möller set).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import numpy as np
from scipy import ndimage

from mousereg.attenuation import body as body_mod
from mousereg.attenuation.tissues import DIXON_VALUES
from mousereg.errors import InputError
from mousereg.volume import Volume

FAT_FRACTION = 0.5
SIGNAL_FRACTION = 0.3  # of Otsu's threshold
NOISE_FACTOR = 2.0  # times the background peak of the signal histogram
SMOOTH_MM = 0.3
SURFACE_FRACTION = 0.5
SURFACE_PASSES = 2
SURFACE_WINDOW_MM = 1.0
LUNG_MIN_MM3 = 20.0  # smaller low-signal pockets inside the body are soft tissue
LUNG_OPEN_MM = 0.4  # opening of the low-signal mask: thin dark shells (bone) are not lung
CLASSES = ("air", "lung", "fat", "soft tissue")
AIR, LUNG, FAT, SOFT = range(4)


@dataclasses.dataclass(frozen=True)
class DixonClasses:
    """Dixon tissue classes (uint8, :data:`CLASSES` order) and the masks behind them."""

    classes: Volume
    body: np.ndarray
    tissue: np.ndarray  # signal above the threshold
    signal: np.ndarray  # smoothed water + fat
    threshold: float


def otsu(values: np.ndarray, bins: int = 256) -> float:
    """Otsu's threshold of a 1-D sample."""
    hist, edges = np.histogram(values, bins=bins)
    centres = (edges[:-1] + edges[1:]) / 2
    w0 = np.cumsum(hist)
    w1 = w0[-1] - w0
    m0 = np.cumsum(hist * centres)
    mean0 = m0 / np.maximum(w0, 1)
    mean1 = (m0[-1] - m0) / np.maximum(w1, 1)
    between = w0 * w1 * (mean0 - mean1) ** 2
    return float(centres[int(np.argmax(between))])


def background_peak(signal: np.ndarray, upper: float) -> float:
    """The mode of the signal histogram below ``upper`` (the noise level of the air)."""
    low = signal[signal < upper]
    if low.size == 0:
        return 0.0
    counts, edges = np.histogram(low, bins=100)
    i = int(np.argmax(counts))
    return float((edges[i] + edges[i + 1]) / 2)


def check_dixon(water: Volume, fat: Volume) -> None:
    """Water and fat must be single 3-D images on one grid."""
    for name, v in (("water", water), ("fat", fat)):
        if v.is_multichannel:
            msg = f"--{name}: expected one channel, got {v.n_channels}"
            raise InputError(msg)
    if not water.same_grid(fat):
        msg = (
            f"--water and --fat are on different grids (water {water.shape} at {water.spacing} mm "
            f"origin {water.origin}; fat {fat.shape} at {fat.spacing} mm origin {fat.origin}); "
            "pass the two channels of the same Dixon acquisition"
        )
        raise InputError(msg)


def _spacing_zyx(volume: Volume) -> tuple[float, float, float]:
    return (volume.spacing[2], volume.spacing[1], volume.spacing[0])


def refine_surface(
    body: np.ndarray, signal: np.ndarray, spacing_zyx: tuple[float, float, float]
) -> np.ndarray:
    """Peel surface voxels darker than :data:`SURFACE_FRACTION` of the nearby body signal."""
    size = tuple(max(3, 2 * round(SURFACE_WINDOW_MM / s / 2) + 1) for s in spacing_zyx)
    out = body.copy()
    for _ in range(SURFACE_PASSES):
        surface = out & ~ndimage.binary_erosion(out)
        local = ndimage.maximum_filter(np.where(out, signal, 0), size=size)
        out &= ~(surface & (signal < SURFACE_FRACTION * local))
    return out


def _lung(low: np.ndarray, body: np.ndarray, spacing_zyx: tuple[float, float, float]) -> np.ndarray:
    """Large connected low-signal regions inside the body."""
    se = body_mod.ball(tuple(LUNG_OPEN_MM / s for s in spacing_zyx))  # type: ignore[arg-type]
    candidate = ndimage.binary_opening(low & body, structure=se)
    lab, n = ndimage.label(candidate)
    if n == 0:
        return np.zeros_like(body)
    voxel_mm3 = float(np.prod(spacing_zyx))
    sizes = np.bincount(lab.ravel()) * voxel_mm3
    keep = sizes >= LUNG_MIN_MM3
    keep[0] = False
    lung = keep[lab]
    # grow back what the opening removed, within the low-signal region
    return np.asarray(ndimage.binary_dilation(lung, structure=se) & low & body)


def dixon_classes(water: Volume, fat: Volume) -> DixonClasses:
    """Classify every voxel as air, lung, fat or soft tissue."""
    check_dixon(water, fat)
    spacing = _spacing_zyx(water)
    sigma = tuple(SMOOTH_MM / s for s in spacing)
    w = ndimage.gaussian_filter(np.clip(water.compute().astype(np.float32), 0, None), sigma)
    f = ndimage.gaussian_filter(np.clip(fat.compute().astype(np.float32), 0, None), sigma)
    signal = w + f
    if not np.any(signal > 0):
        msg = "--water/--fat: both images are empty (no signal)"
        raise InputError(msg)
    otsu_t = otsu(signal[signal > 0])
    threshold = max(NOISE_FACTOR * background_peak(signal, otsu_t), SIGNAL_FRACTION * otsu_t)
    tissue = signal > threshold
    body = refine_surface(body_mod.body_from_tissue(tissue, spacing, close_mm=1.0), signal, spacing)
    classes = np.full(signal.shape, AIR, dtype=np.uint8)
    fraction = np.divide(f, signal, out=np.zeros_like(signal), where=signal > 0)
    classes[body & tissue] = SOFT
    classes[body & tissue & (fraction > FAT_FRACTION)] = FAT
    low = ~tissue
    classes[body & low] = SOFT
    classes[_lung(low, body, spacing)] = LUNG
    return DixonClasses(
        water.with_array(classes, modality="labels"), body, tissue, signal, threshold
    )


def classes_to_mu(classes: np.ndarray, values: Mapping[str, float]) -> np.ndarray:
    """µ511 (float32) of a class map."""
    lut = np.array([values[name] for name in CLASSES], dtype=np.float32)
    return lut[classes]


def dixon_mumap(
    water: Volume, fat: Volume, *, values: str = "mouse"
) -> tuple[Volume, DixonClasses]:
    """The Dixon 4-class µ-map (cm⁻¹) and the classes it came from."""
    if values not in DIXON_VALUES:
        msg = f"Dixon values {values!r} unknown; use one of {', '.join(DIXON_VALUES)}"
        raise InputError(msg)
    dc = dixon_classes(water, fat)
    mu = classes_to_mu(dc.classes.compute(), DIXON_VALUES[values])
    return water.with_array(mu, modality="mu511", channel_names=()), dc
