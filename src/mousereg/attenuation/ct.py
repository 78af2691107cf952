"""µ-map at 511 keV from a CT: HU check, HU → µ scaling, holder removal, PET resolution and grid.

Everything is lazy and chunked: the scaling is a ``map_blocks`` of a piecewise-linear lookup,
the body mask (for ``holder="remove"``) is found on a 0.5 mm block-averaged copy and repeated
back to full resolution chunk by chunk, the smoothing is a ``map_overlap``.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import dask.array as da
import numpy as np
from scipy import ndimage

from mousereg.attenuation import body as body_mod
from mousereg.attenuation import pet_grid
from mousereg.attenuation.calibration import SOFT_REFERENCES, calibrate, parse_references
from mousereg.attenuation.hu_check import check_hu
from mousereg.attenuation.hu_model import MuModel, make_model
from mousereg.errors import InputError
from mousereg.volume import Volume

log = logging.getLogger(__name__)

HOLDER_MODES = ("keep", "remove")
DEFAULT_KVP = 55.0  # the dataset's micro-CT protocols (55 kV; 65 kV for ultra-focus)
# Holder removal. Tissue is anything above AIR_HU except the holder's plastic (+150 HU), i.e.
# not between PLASTIC_HU; bone (mostly above +400) counts as tissue so the skull joins the head
# to the body. The body is found on a 0.5 mm grid (opening cuts the thin partial-volume shells
# of the plastic that touch the skin), then refined at full resolution in a one-coarse-voxel band
# around its surface with the same rule on HU averaged over 3x3x3 voxels.
AIR_HU = -500.0
PLASTIC_HU = (125.0, 400.0)
BODY_OPEN_MM = 0.6
BODY_CLOSE_MM = 1.0
REFINE_BOX_VOXELS = 3
WORK_CHUNK = 128  # smaller input chunks are merged: fewer tasks, less scheduling overhead


@dataclasses.dataclass(frozen=True)
class CTMuMap:
    """The µ-map and what was done to make it (``metadata`` goes next to the output)."""

    mumap: Volume
    metadata: dict[str, Any]


def _body_tissue(hu: np.ndarray) -> np.ndarray:
    plastic = (hu >= PLASTIC_HU[0]) & (hu < PLASTIC_HU[1])
    return np.asarray((hu > AIR_HU) & ~plastic)


def _coarse_lookup(
    coarse: np.ndarray, factors: tuple[int, int, int], region: list[tuple[int, int]]
) -> np.ndarray:
    """The coarse mask at the full-resolution voxels of ``region`` ((start, stop) per axis);
    voxels beyond the coarse grid's edges take the edge's value. One axis at a time."""
    out = coarse
    for axis, ((a, b), f, n) in enumerate(zip(region, factors, coarse.shape, strict=True)):
        out = np.take(out, np.clip(np.arange(a, b) // f, 0, n - 1), axis=axis)
    return np.asarray(out)


def body_mask(hu: Volume) -> da.Array:
    """A lazy full-resolution body mask of a CT in HU (see the constants above).

    One task per chunk: the coarse body's interior is body, its outside air, and only in the
    band between them (chunks that hold a piece of the surface) the HU decide.
    """
    spacing_zyx = (hu.spacing[2], hu.spacing[1], hu.spacing[0])
    coarse, factors = body_mod.coarse_body_mask(
        hu.data, spacing_zyx, _body_tissue, open_mm=BODY_OPEN_MM, close_mm=BODY_CLOSE_MM
    )
    if not coarse.any():
        msg = f"CT: no body found (no connected tissue above {AIR_HU:g} HU besides the holder)"
        raise InputError(msg)
    core_c = ndimage.binary_erosion(coarse)
    outer_c = ndimage.binary_dilation(coarse)
    depth = REFINE_BOX_VOXELS // 2
    starts = [np.concatenate([[0], np.cumsum(c)]) for c in hu.data.chunks]

    def _refine(block: np.ndarray, block_info: dict[Any, Any] | None = None) -> np.ndarray:
        assert block_info is not None
        chunk = block_info[0]["chunk-location"]
        # the block holds its chunk plus the halo (depth voxels on each side, edges padded)
        region = [
            (int(st[i]) - depth, int(st[i]) - depth + n)
            for st, i, n in zip(starts, chunk, block.shape, strict=True)
        ]
        core = _coarse_lookup(core_c, factors, region)
        band = _coarse_lookup(outer_c, factors, region) & ~core
        if not band.any():
            return core
        mean = ndimage.uniform_filter(block.astype(np.float32), REFINE_BOX_VOXELS, mode="nearest")
        return np.asarray(core | (band & _body_tissue(mean)))

    return da.map_overlap(_refine, hu.data, depth=depth, boundary="nearest", dtype=bool)


def hu_to_mu(hu: Volume, model: MuModel) -> Volume:
    """Apply ``model`` block by block; float32 cm⁻¹, modality ``mu511``."""
    data = da.map_blocks(model, hu.data, dtype=np.float32)
    return hu.with_array(data, modality="mu511")


def _build_model(
    kvp: float, model: str, effective_kev: float | None, calibration: str | None
) -> tuple[MuModel, bool]:
    """The model, and whether the calibration fixed the HU scale itself."""
    mu_model = make_model(kvp, model, effective_kev)
    if not calibration:
        return mu_model, False
    refs = parse_references(calibration)
    scale_fixed = all(r.name in SOFT_REFERENCES for r in refs)
    return calibrate(mu_model, refs), scale_fixed


def mumap_from_ct(
    ct: Volume,
    *,
    kvp: float = DEFAULT_KVP,
    model: str = "materials",
    effective_kev: float | None = None,
    calibration: str | None = None,
    holder: str = "keep",
    fwhm_mm: float = 0.0,
    like: Volume | None = None,
    spacing_mm: float | None = None,
) -> CTMuMap:
    """A µ511 map (cm⁻¹) from a CT.

    Args:
        ct: the CT (HU, or any linear scale when ``calibration`` names two soft references).
        kvp: tube voltage (kV).
        model: ``"materials"`` or ``"bilinear"`` (see :mod:`.hu_model`).
        effective_kev: override the effective energy derived from ``kvp``.
        calibration: two references, e.g. ``"air=-990,water=4"`` (see :mod:`.calibration`).
        holder: ``"keep"`` or ``"remove"`` (everything outside the body becomes air).
        fwhm_mm: Gaussian smoothing to this resolution (0 = none).
        like: resample onto this volume's grid (a PET image).
        spacing_mm: or onto isotropic voxels of this size over the CT's field of view.
    """
    if ct.is_multichannel:
        msg = f"CT: expected one channel, got {ct.n_channels} ({', '.join(ct.channel_names)})"
        raise InputError(msg)
    if holder not in HOLDER_MODES:
        msg = f"--holder {holder!r}: use one of {', '.join(HOLDER_MODES)}"
        raise InputError(msg)
    if like is not None and spacing_mm is not None:
        msg = "give either --like or --spacing, not both"
        raise InputError(msg)
    mu_model, scale_fixed = _build_model(kvp, model, effective_kev, calibration)
    check = check_hu(
        ct.data, "CT", strict=not scale_fixed, gain=mu_model.gain, offset=mu_model.offset
    )
    small = any(c < min(WORK_CHUNK, n) for c, n in zip(ct.data.chunksize, ct.shape, strict=True))
    data = ct.data.rechunk(WORK_CHUNK) if small else ct.data
    hu = ct.with_array(
        data.astype(np.float32) * np.float32(mu_model.gain) + np.float32(mu_model.offset)
    )
    mu_model = dataclasses.replace(mu_model, gain=1.0, offset=0.0)
    mu = hu_to_mu(hu, mu_model)
    if holder == "remove":
        mask = body_mask(hu)
        mu = mu.with_array(da.where(mask, mu.data, np.float32(0.0)).astype(np.float32))
    if fwhm_mm > 0:
        mu = pet_grid.smooth(mu, fwhm_mm)
    if like is not None:
        mu = pet_grid.resample_like(mu, like, antialias=fwhm_mm == 0)
    elif spacing_mm is not None:
        mu = pet_grid.resample_like(
            mu, pet_grid.grid_with_spacing(mu, spacing_mm), antialias=fwhm_mm == 0
        )
    metadata: dict[str, Any] = {
        "units": "cm^-1 at 511 keV",
        "scaling": mu_model.metadata(),
        "calibration": calibration,
        "hu_check": check.metadata(),
        "warnings": list(check.warnings),
        "holder": holder,
        "fwhm_mm": fwhm_mm,
        "grid": {"spacing_xyz_mm": list(mu.spacing), "shape_zyx": list(mu.shape)},
    }
    return CTMuMap(mu.with_array(mu.data, modality="mu511"), metadata)


def ct_to_mu(ct: Volume, *, kvp: float | None = None, **options: Any) -> Volume:
    """Just the µ511 Volume of :func:`mumap_from_ct` (same options; ``kvp`` None = 55 kV)."""
    return mumap_from_ct(ct, kvp=DEFAULT_KVP if kvp is None else kvp, **options).mumap
