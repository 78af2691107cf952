"""HU → µ511 scaling: X-ray model, effective energy, Carney table, calibration, HU check."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest

from mousereg.attenuation import calibration, hu_check, hu_model, spectrum, xray
from mousereg.attenuation.tissues import MU_BONE, MU_FAT, MU_SOFT, MU_WATER
from mousereg.errors import InputError

# NIST XCOM mu/rho (cm²/g, with coherent) of water and ICRU-44 cortical bone
NIST_E = np.array([30.0, 40.0, 50.0, 60.0, 80.0, 100.0, 150.0])
NIST_WATER = np.array([0.3756, 0.2683, 0.2269, 0.2059, 0.1837, 0.1707, 0.1505])
NIST_BONE = np.array([1.331, 0.6655, 0.4242, 0.3148, 0.2229, 0.1855, 0.1480])


def test_xray_model_reproduces_nist() -> None:
    water = xray.mass_attenuation(xray.MATERIALS["water"], NIST_E)
    bone = xray.mass_attenuation(xray.MATERIALS["cortical bone"], NIST_E)
    assert np.max(np.abs(water / NIST_WATER - 1)) < 0.01
    assert np.max(np.abs(bone / NIST_BONE - 1)) < 0.01


def test_mu511_of_icru_materials_matches_tissue_table() -> None:
    assert xray.mu511(xray.MATERIALS["water"]) == pytest.approx(MU_WATER)
    assert xray.mu511(xray.MATERIALS["adipose"]) == pytest.approx(MU_FAT, rel=0.005)
    assert xray.mu511(xray.MATERIALS["soft tissue"]) == pytest.approx(MU_SOFT, rel=0.005)
    assert xray.mu511(xray.MATERIALS["cortical bone"]) == pytest.approx(MU_BONE, rel=0.005)


@pytest.mark.parametrize("kvp", sorted(hu_model.CARNEY))
def test_spectrum_reproduces_carney_effective_energy(kvp: int) -> None:
    assert spectrum.effective_energy(kvp) == pytest.approx(
        hu_model.carney_bone_energy(kvp), abs=5.0
    )


def test_micro_ct_effective_energy_and_range() -> None:
    assert 30.0 < spectrum.effective_energy(55) < 38.0
    assert spectrum.effective_energy(65) > spectrum.effective_energy(55)
    with pytest.raises(InputError, match="kvp"):
        spectrum.effective_energy(300)


@pytest.mark.parametrize("kvp", [80, 100, 120, 140])
def test_bilinear_is_carney_at_clinical_kvp(kvp: int) -> None:
    a, b, bp = hu_model.CARNEY[kvp]
    model = hu_model.make_model(kvp, "bilinear")
    hu = np.array([-1000.0, -500.0, bp - 1, 500.0, 1500.0])
    expected = np.where(hu <= bp, 9.6e-5 * (hu + 1000), a * (hu + 1000) + b)
    assert np.allclose(model(hu), expected, atol=2e-4)


def test_materials_model_hits_reference_materials() -> None:
    model = hu_model.make_model(55)
    energy = model.effective_kev
    for name in ("adipose", "soft tissue", "cortical bone"):
        h = xray.hounsfield(xray.MATERIALS[name], energy)
        assert model(np.array([h]))[0] == pytest.approx(xray.mu511(xray.MATERIALS[name]), rel=1e-4)
    assert model(np.array([0.0, -1000.0, -1500.0])).tolist() == pytest.approx([MU_WATER, 0, 0])
    # above cortical bone: extrapolated, monotonic
    assert model(np.array([6000.0]))[0] > MU_BONE


def test_materials_model_is_monotonic_and_float32() -> None:
    model = hu_model.make_model(60)
    hu = np.linspace(-1100, 4000, 500)
    mu = model(hu)
    assert mu.dtype == np.float32
    assert np.all(np.diff(mu) >= -1e-7)


def test_calibration_air_water_fixes_gain_and_offset() -> None:
    model = hu_model.make_model(55)
    truth = np.array([-1000.0, -150.0, 0.0, 60.0, 1500.0])
    measured = 0.9 * truth + 30.0  # a miscalibrated scanner
    refs = calibration.parse_references("air=-870,water=30")
    fixed = calibration.calibrate(model, refs)
    assert np.allclose(fixed(measured), model(truth), atol=1e-6)


def test_calibration_turns_linear_attenuation_into_hu() -> None:
    model = hu_model.make_model(55)
    mu_water_ct = 0.35  # cm^-1 at the CT energy
    truth = np.array([-1000.0, 0.0, 60.0])
    raw = mu_water_ct * (1 + truth / 1000)
    fixed = calibration.calibrate(model, calibration.parse_references("air=0,water=0.35"))
    assert np.allclose(fixed(raw), model(truth), atol=1e-6)


def test_calibration_bone_reference_sets_bone_slope() -> None:
    model = hu_model.make_model(55)
    refs = calibration.parse_references("water=10,bone=1810:0.15")
    fixed = calibration.calibrate(model, refs)
    assert fixed(np.array([1810.0]))[0] == pytest.approx(0.15, rel=1e-5)
    assert fixed(np.array([10.0]))[0] == pytest.approx(MU_WATER, rel=1e-5)


@pytest.mark.parametrize(
    "text", ["air=-1000", "air=1,air=2", "water=1,gold=3", "air=x,water=2", "bone=1,bone=2"]
)
def test_calibration_refuses_bad_text(text: str) -> None:
    with pytest.raises(InputError, match="--calibrate"):
        model = hu_model.make_model(55)
        calibration.calibrate(model, calibration.parse_references(text))


def _ct_like(air: float = -1000.0, tissue: float = 50.0, scale: float = 1.0) -> da.Array:
    rng = np.random.default_rng(0)
    arr = np.full((40, 40, 40), air, dtype=np.float32)
    arr[10:30, 10:30, 10:30] = tissue
    arr += rng.normal(0, 10, arr.shape).astype(np.float32)
    return da.from_array(arr * scale, chunks=20)


def test_hu_check_accepts_calibrated_ct() -> None:
    check = hu_check.check_hu(_ct_like())
    assert check.calibrated
    assert check.air_peak == pytest.approx(-1000, abs=15)
    assert check.tissue_peak == pytest.approx(50, abs=15)


def test_hu_check_warns_on_shifted_scale() -> None:
    check = hu_check.check_hu(_ct_like(air=-880.0, tissue=170.0))
    assert not check.calibrated
    assert any("uncalibrated" in w for w in check.warnings)


def test_hu_check_refuses_linear_attenuation() -> None:
    mu = (_ct_like() / 1000.0 + 1.0) * 0.35
    with pytest.raises(InputError, match="linear attenuation"):
        hu_check.check_hu(mu)


def test_hu_check_refuses_unsigned_counts() -> None:
    counts = da.clip(da.round(_ct_like() + 1024.0), 0, None).astype(np.uint16)
    with pytest.raises(InputError, match="counts"):
        hu_check.check_hu(counts)
