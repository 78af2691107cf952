"""Is this CT in Hounsfield units? A check of the scale from the histogram.

Air should peak near −1000 HU and soft tissue near 0…+100 HU. A CT that is clearly on another
scale — linear attenuation in cm⁻¹ or mm⁻¹ (values 0…~5) or unsigned detector counts (0…4095 or
0…65535, integers) — is refused with what to do; a CT whose peaks are off is accepted with a
warning that goes to the log and into the µ-map's metadata.
"""

from __future__ import annotations

import dataclasses
import logging

import dask.array as da
import numpy as np

from mousereg.errors import InputError

log = logging.getLogger(__name__)

AIR_WINDOW = (-1200.0, -700.0)
TISSUE_WINDOW = (-100.0, 300.0)
TISSUE_CENTRE = 40.0  # HU; of several peaks (soft tissue, holder plastic) the nearest is tissue
MIN_PEAK_HEIGHT = 0.1  # of the window's highest peak
AIR_TOLERANCE = 60.0  # HU
TISSUE_EXPECTED = (-20.0, 120.0)  # HU
SAMPLE_VOXELS = 2_000_000
MIN_PEAK_FRACTION = 0.002  # of all voxels, for a peak to count as present


@dataclasses.dataclass(frozen=True)
class HUCheck:
    """Outcome of the HU scale check: measured peaks and warnings (empty = calibrated)."""

    air_peak: float | None
    tissue_peak: float | None
    p01: float
    p99: float
    warnings: tuple[str, ...]

    @property
    def calibrated(self) -> bool:
        """True when no warning was raised."""
        return not self.warnings

    def metadata(self) -> dict[str, object]:
        """JSON-friendly summary."""
        return {
            "air_peak_hu": self.air_peak,
            "tissue_peak_hu": self.tissue_peak,
            "p0.1_p99.9": [self.p01, self.p99],
            "calibrated": self.calibrated,
            "warnings": list(self.warnings),
        }


def _sample(data: da.Array) -> np.ndarray:
    step = max(1, round((data.size / SAMPLE_VOXELS) ** (1 / 3)))
    return np.asarray(data[::step, ::step, ::step].compute(), dtype=np.float64).ravel()


def _histogram(
    values: np.ndarray, window: tuple[float, float], bin_width: float
) -> tuple[np.ndarray, np.ndarray] | None:
    inside = values[(values >= window[0]) & (values < window[1])]
    if inside.size < MIN_PEAK_FRACTION * values.size:
        return None
    bins = np.arange(window[0], window[1] + bin_width, bin_width)
    counts, edges = np.histogram(inside, bins=bins)
    smooth = np.convolve(counts, np.ones(3) / 3, mode="same")
    return smooth, (edges[:-1] + edges[1:]) / 2


def _peak(values: np.ndarray, window: tuple[float, float], bin_width: float = 10.0) -> float | None:
    """The highest histogram peak in ``window``."""
    hist = _histogram(values, window, bin_width)
    if hist is None:
        return None
    counts, centres = hist
    return float(centres[int(np.argmax(counts))])


def _tissue_peak(values: np.ndarray) -> float | None:
    """Of the histogram's local maxima in :data:`TISSUE_WINDOW` (soft tissue, holder plastic),
    the one nearest :data:`TISSUE_CENTRE`."""
    hist = _histogram(values, TISSUE_WINDOW, 10.0)
    if hist is None:
        return None
    counts, centres = hist
    padded = np.concatenate([[-1.0], counts, [-1.0]])
    is_max = (counts >= padded[:-2]) & (counts > padded[2:])
    is_max &= counts >= MIN_PEAK_HEIGHT * counts.max()
    peaks = centres[is_max]
    return float(peaks[np.argmin(np.abs(peaks - TISSUE_CENTRE))])


def refuse_non_hu(values: np.ndarray, source: str) -> None:
    """Raise InputError when the values are clearly not Hounsfield units."""
    lo, hi = np.percentile(values, [0.1, 99.9])
    calibrate = "--calibrate air=VALUE_IN_AIR,water=VALUE_IN_WATER"
    if lo >= -0.5 and hi <= 10.0:
        msg = (
            f"{source}: values {lo:.3g}…{hi:.3g} look like linear attenuation coefficients, "
            f"not HU; convert to HU = 1000·(µ − µwater)/µwater or pass {calibrate}"
        )
        raise InputError(msg)
    integer = bool(np.all(np.mod(values[:10000], 1.0) == 0))
    if lo >= 0.0 and integer and hi > 255:
        msg = (
            f"{source}: values {lo:.0f}…{hi:.0f} are non-negative integers (raw detector counts?), "
            f"not HU; export the scanner's HU-calibrated reconstruction or pass {calibrate}"
        )
        raise InputError(msg)


def check_hu(
    data: da.Array,
    source: str = "CT",
    *,
    strict: bool = True,
    gain: float = 1.0,
    offset: float = 0.0,
) -> HUCheck:
    """Check the HU scale of a CT (subsampled) after ``gain·value + offset``; refuse scales that
    are clearly not HU (checked on the raw values) when ``strict``."""
    values = _sample(data)
    values = values[np.isfinite(values)]
    if values.size == 0:
        msg = f"{source}: the CT has no finite values"
        raise InputError(msg)
    if strict:
        refuse_non_hu(values, source)
    values = values * gain + offset
    lo, hi = (float(v) for v in np.percentile(values, [0.1, 99.9]))
    air, tissue = _peak(values, AIR_WINDOW), _tissue_peak(values)
    warnings = []
    if air is None:
        warnings.append("no air peak between -1200 and -700 HU: the air level cannot be checked")
    elif abs(air + 1000.0) > AIR_TOLERANCE:
        warnings.append(f"air peaks at {air:.0f} HU, not -1000: the CT looks uncalibrated")
    if tissue is None:
        warnings.append("no soft-tissue peak between -100 and 300 HU")
    elif not TISSUE_EXPECTED[0] <= tissue <= TISSUE_EXPECTED[1]:
        warnings.append(
            f"soft tissue peaks at {tissue:.0f} HU, outside 0..100: the CT looks uncalibrated"
        )
    for w in warnings:
        log.warning("%s: %s; consider --calibrate", source, w)
    return HUCheck(air, tissue, round(lo, 2), round(hi, 2), tuple(warnings))
