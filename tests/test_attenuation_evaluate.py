"""Sinograms, ACFs and µ-map comparison on shapes with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from mousereg.attenuation import evaluate, sinogram
from mousereg.attenuation.tissues import MU_BONE, MU_FAT, MU_LUNG, MU_SOFT
from mousereg.errors import InputError
from mousereg.volume import Volume

SPACING = (0.25, 0.25, 0.5)  # x, y, z mm
RADIUS = 6.0  # mm


def _phantom() -> np.ndarray:
    """A cylinder along z (soft tissue) with a lung, a fat layer and a bone rod."""
    _, y, x = np.mgrid[0:60, 0:64, 0:64].astype(float)
    yy, xx = (y - 31.5) * SPACING[1], (x - 31.5) * SPACING[0]
    r = np.hypot(yy, xx)
    mu = np.zeros((60, 64, 64), dtype=np.float32)
    mu[r < RADIUS] = MU_SOFT
    mu[(r >= RADIUS - 1.0) & (r < RADIUS)] = MU_FAT
    mu[np.hypot(yy - 2.0, xx + 2.0) < 1.5] = MU_LUNG
    mu[np.hypot(yy + 2.5, xx - 2.0) < 1.0] = MU_BONE
    return mu


def _volume(arr: np.ndarray) -> Volume:
    return Volume(arr, spacing=SPACING, modality="mu511")


def test_line_integral_through_a_disc() -> None:
    _, y, x = np.mgrid[0:30, 0:64, 0:64].astype(float)
    disc = (np.hypot((y - 31.5) * 0.25, (x - 31.5) * 0.25) < RADIUS).astype(np.float32) * 0.1
    spacing_zyx = (0.5, 0.25, 0.25)
    geometry = sinogram.make_geometry(disc > 0, spacing_zyx, axis="z", n_angles=12)
    integrals = sinogram.line_integrals(disc, spacing_zyx, geometry)
    # the central LOR crosses 2R = 12 mm = 1.2 cm of µ = 0.1
    assert integrals.max(axis=2) == pytest.approx(np.full((30, 12), 0.12), rel=0.03)
    # total "mass" per angle is the disc's area × µ, for every angle
    area = np.pi * (RADIUS / 10) ** 2 * 0.1 / (geometry.pixel_mm / 10)
    assert integrals.sum(axis=2) == pytest.approx(np.full((30, 12), area), rel=0.02)


def test_scanner_axis_is_longest_extent() -> None:
    mask = np.zeros((20, 30, 10), dtype=bool)
    mask[2:18, 5:25, 1:9] = True
    assert sinogram.scanner_axis(mask, (1.0, 1.0, 1.0)) == 1
    assert sinogram.scanner_axis(mask, (3.0, 1.0, 1.0)) == 0


def test_block_averaged_projection_keeps_integrals() -> None:
    mu = _phantom()
    spacing_zyx = (0.5, 0.25, 0.25)
    fine = sinogram.make_geometry(mu > 0, spacing_zyx, axis="z", n_angles=6)
    coarse = sinogram.make_geometry(mu > 0, spacing_zyx, axis="z", n_angles=6, pixel_mm=0.5)
    a = sinogram.line_integrals(mu, spacing_zyx, fine).sum(axis=2) * fine.pixel_mm
    b = sinogram.line_integrals(mu, spacing_zyx, coarse).sum(axis=2) * coarse.pixel_mm
    assert b == pytest.approx(a, rel=0.02)


def test_identical_maps_have_zero_error() -> None:
    vol = _volume(_phantom())
    report = evaluate.compare_mumaps(vol, vol, n_angles=8)
    assert report["tissues"]["body"]["mean_abs_error"] == 0.0
    assert report["acf"]["body"]["mean"] == 0.0
    assert report["acf"]["axis"] == "z"
    assert set(report["tissues"]) == {"lung", "fat", "soft tissue", "bone", "near bone", "body"}


def test_scaled_map_has_known_errors() -> None:
    ref = _phantom()
    test = ref * np.float32(1.05)
    report = evaluate.compare_mumaps(_volume(test), _volume(ref), n_angles=8)
    for name in ("lung", "fat", "soft tissue", "bone"):
        assert report["tissues"][name]["mean_relative_error"] == pytest.approx(0.05, abs=1e-5)
    # ACF error exp(0.05 ∫µ) − 1; the longest LOR crosses 1.2 cm of soft tissue (+ 2 mm bone)
    acf = report["acf"]
    assert np.expm1(0.05 * 0.12) < acf["body"]["max"] < np.expm1(0.05 * (0.121 + 0.0709 * 0.2))
    assert 0 < acf["body"]["mean"] < acf["body"]["p95"] <= acf["body"]["max"]
    assert acf["near_bone"]["lors"] > 0


def test_missing_bone_shows_near_bone() -> None:
    ref = _phantom()
    test = np.where(ref == MU_BONE, np.float32(MU_SOFT), ref)
    acf = evaluate.compare_mumaps(_volume(test), _volume(ref), n_angles=8)["acf"]
    assert acf["near_bone"]["mean"] > 5 * max(acf["away_from_bone"]["mean"], 1e-6)
    # bone rod 2 mm across: ∆µ·L ≈ 0.071 · 0.2 cm at most
    assert acf["near_bone"]["max"] == pytest.approx(np.expm1(0.0709 * 0.2), rel=0.15)


def test_organ_errors_with_label_map() -> None:
    from mousereg.labels import LabelTable

    ref = _phantom()
    labels = np.zeros(ref.shape, dtype=np.uint8)
    labels[ref == MU_BONE] = 2
    labels[ref == MU_LUNG] = 12
    lab = Volume(labels, spacing=SPACING, modality="labels", labels=LabelTable.default())
    test = ref.copy()
    test[ref == MU_LUNG] *= 0.5
    report = evaluate.compare_mumaps(_volume(test), _volume(ref), labels=lab, n_angles=4)
    assert report["organs"]["lung"]["mean_relative_error"] == pytest.approx(-0.5, abs=1e-6)
    assert report["organs"]["bone"]["mean_abs_error"] == 0.0


def test_compare_refuses_different_grids() -> None:
    a = _volume(_phantom())
    b = Volume(_phantom(), spacing=(0.3, 0.25, 0.5))
    with pytest.raises(InputError, match="different grids"):
        evaluate.compare_mumaps(a, b)


def test_compare_refuses_hu_and_warns_on_stray_voxels() -> None:
    ref = _volume(_phantom())
    hu = _volume((_phantom() / 0.096 - 1) * 1000)
    with pytest.raises(InputError, match="physical range"):
        evaluate.compare_mumaps(hu, ref)
    stray = _phantom()
    stray[0, 0, 0] = 0.4
    report = evaluate.compare_mumaps(_volume(stray), ref, n_angles=4)
    assert any("outside the physical range" in w for w in report["warnings"])
    mm = _volume(_phantom() / 10)
    report = evaluate.compare_mumaps(mm, ref, n_angles=4)
    assert any("mm" in w for w in report["warnings"])
    nan = _phantom()
    nan[1, 1, 1] = np.nan
    with pytest.raises(InputError, match="NaN"):
        evaluate.compare_mumaps(_volume(nan), ref)
