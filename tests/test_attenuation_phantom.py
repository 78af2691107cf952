"""µ-maps from CT and Dixon MRI against the phantom's true µ511 (test resolution)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy import ndimage

from mousereg.attenuation.atlas_registration import register_affine
from mousereg.attenuation.ct import body_mask, mumap_from_ct
from mousereg.attenuation.dixon import CLASSES, dixon_classes
from mousereg.attenuation.evaluate import compare_mumaps
from mousereg.attenuation.mr import mumap_from_mr
from mousereg.attenuation.phantom_eval import MRTruth, class_masks, mr_truth, truth_body
from mousereg.attenuation.pseudo_ct import AtlasTemplates
from mousereg.errors import InputError
from mousereg.phantom import PhantomPair, make_pair
from mousereg.registration import Transform
from mousereg.volume import Volume

BONE, FAT, VISCERAL_FAT, LUNG = 2, 6, 17, 12


def bias(test: np.ndarray, ref: np.ndarray, mask: np.ndarray) -> float:
    """Signed relative error of the mean µ in ``mask``."""
    return float(test[mask].mean() / ref[mask].mean() - 1.0)


@pytest.fixture(scope="module")
def ct_case(phantom_pair: PhantomPair) -> dict[str, Any]:
    mu = phantom_pair.mu511.compute()
    return {
        "truth": mu,
        "body": truth_body(mu, dilate=2),
        "labels": phantom_pair.ct_labels.compute(),
    }


@pytest.fixture(scope="module")
def subject(phantom_pair: PhantomPair) -> MRTruth:
    return mr_truth(phantom_pair)


@pytest.fixture(scope="module")
def atlas_case() -> MRTruth:
    """A second mouse (another seed and frame) as the atlas."""
    return mr_truth(make_pair(seed=1, resolution="test"))


@pytest.fixture(scope="module")
def atlas_transform(subject: MRTruth, atlas_case: MRTruth) -> Any:
    fixed = Volume.stack([subject.water, subject.fat], names=("water", "fat"))
    moving = Volume.stack([atlas_case.water, atlas_case.fat], names=("water", "fat"))
    return register_affine(fixed, moving)


# ---- CT -------------------------------------------------------------------------------------
def test_ct_mu_matches_truth_per_tissue(phantom_pair: PhantomPair, ct_case: dict[str, Any]) -> None:
    mu = mumap_from_ct(phantom_pair.ct, kvp=phantom_pair.kvp).mumap.compute()
    masks = class_masks(ct_case["labels"], ct_case["body"])
    errors = {name: bias(mu, ct_case["truth"], m) for name, m in masks.items()}
    assert abs(errors["soft tissue"]) < 0.02
    assert abs(errors["fat"]) < 0.02
    assert abs(errors["bone"]) < 0.10
    assert abs(errors["lung"]) < 0.05


def test_ct_holder_removal(phantom_pair: PhantomPair, ct_case: dict[str, Any]) -> None:
    mu = mumap_from_ct(phantom_pair.ct, holder="remove").mumap.compute()
    body, truth = ct_case["body"], ct_case["truth"]
    # the holder (about 5x the animal's attenuation) is gone ...
    assert mu[~body].sum() < 0.01 * truth[~body].sum()
    # ... and the animal is kept
    assert (mu[body] > 0.01).mean() > 0.99
    masks = class_masks(ct_case["labels"], body)
    assert abs(bias(mu, truth, masks["soft tissue"])) < 0.02
    assert abs(bias(mu, truth, masks["fat"])) < 0.03


def test_ct_body_mask_is_chunked_and_matches_truth(
    phantom_pair: PhantomPair, ct_case: dict[str, Any]
) -> None:
    ct = phantom_pair.ct.rechunk((37, 50, 61))
    mask = body_mask(ct)
    assert mask.chunks == ct.data.chunks
    b = mask.compute()
    assert np.array_equal(b, body_mask(phantom_pair.ct.rechunk(64)).compute())
    body = ct_case["body"]
    assert (b & body).sum() / body.sum() > 0.99
    assert (b & ~body & (ct_case["truth"] > 0.05)).sum() / body.sum() < 0.015


def test_ct_chunked_equals_in_memory(phantom_pair: PhantomPair) -> None:
    from mousereg.attenuation.hu_model import make_model

    ct = phantom_pair.ct.rechunk((23, 41, 57))
    lazy = mumap_from_ct(ct, fwhm_mm=1.0).mumap
    expected = make_model(55)(ct.compute())
    sigma = 1.0 / 2.3548200450309493 / np.asarray(ct.spacing)[::-1]
    expected = ndimage.gaussian_filter(expected, sigma, mode="nearest")
    assert np.allclose(lazy.compute(), expected, atol=1e-6)


def test_ct_pet_grid_keeps_attenuation(phantom_pair: PhantomPair, ct_case: dict[str, Any]) -> None:
    fine = mumap_from_ct(phantom_pair.ct).mumap
    coarse = mumap_from_ct(phantom_pair.ct, spacing_mm=0.8, fwhm_mm=1.5).mumap
    assert coarse.spacing == (0.8, 0.8, 0.8)
    # total attenuation (µ × volume) is kept within 1 %
    total_fine = fine.compute().sum() * np.prod(fine.spacing)
    total_coarse = coarse.compute().sum() * np.prod(coarse.spacing)
    assert total_coarse == pytest.approx(total_fine, rel=0.01)
    like = mumap_from_ct(phantom_pair.ct, like=coarse).mumap
    assert like.same_grid(coarse)


def test_ct_calibration_recovers_a_miscalibrated_scanner(phantom_pair: PhantomPair) -> None:
    ct = phantom_pair.ct
    good = mumap_from_ct(ct)
    skewed = ct.with_array(ct.data * np.float32(0.92) + np.float32(35.0))
    uncal = mumap_from_ct(skewed)
    assert not uncal.metadata["hu_check"]["calibrated"]
    assert uncal.metadata["warnings"]
    fixed = mumap_from_ct(skewed, calibration="air=-885,water=35")
    assert fixed.metadata["hu_check"]["calibrated"]
    assert np.allclose(fixed.mumap.compute(), good.mumap.compute(), atol=2e-4)


def test_ct_refuses_values_not_in_hu(phantom_pair: PhantomPair) -> None:
    ct = phantom_pair.ct
    attenuation = ct.with_array((ct.data / np.float32(1000.0) + 1) * np.float32(0.4))
    with pytest.raises(InputError, match="linear attenuation"):
        mumap_from_ct(attenuation)
    counts = ct.with_array((ct.data + 1024).clip(0, 4095).round().astype(np.uint16))
    with pytest.raises(InputError, match="counts"):
        mumap_from_ct(counts)
    # the same data with a calibration that says what air and water are is fine
    mu = mumap_from_ct(attenuation, calibration="air=0,water=0.4").mumap.compute()
    assert np.allclose(mu, mumap_from_ct(ct).mumap.compute(), atol=2e-4)


# ---- MRI ------------------------------------------------------------------------------------
def test_dixon_classes(subject: MRTruth) -> None:
    dc = dixon_classes(subject.water, subject.fat)
    classes = dc.classes.compute()
    fat = np.isin(subject.labels, [FAT, VISCERAL_FAT])
    assert (classes[fat] == CLASSES.index("fat")).mean() > 0.9
    lung = subject.labels == LUNG
    assert (classes[lung] == CLASSES.index("lung")).mean() > 0.6
    # the body (holder and vaseline removed) agrees with the truth
    assert (dc.body & subject.body).sum() / subject.body.sum() > 0.97
    assert (dc.body & ~subject.body).sum() / subject.body.sum() < 0.03
    # vaseline (bright in the fat image) is outside the body: air
    vaseline = (subject.labels == 0) & (subject.fat.compute() > 400) & ~subject.body
    assert vaseline.sum() > 0
    assert (classes[vaseline] == CLASSES.index("air")).mean() > 0.99


def test_dixon_refuses_different_grids(subject: MRTruth) -> None:
    shifted = dataclasses.replace(subject.fat, origin=(0.0, 0.0, 0.0))
    with pytest.raises(InputError, match="different grids"):
        mumap_from_mr(subject.water, shifted)


def test_hybrid_beats_dixon_near_bone(
    subject: MRTruth, atlas_case: MRTruth, atlas_transform: Any
) -> None:
    atlas = AtlasTemplates(atlas_case.water, atlas_case.fat, atlas_case.truth)
    acf = {}
    for method in ("dixon", "atlas", "hybrid"):
        mu = mumap_from_mr(
            subject.water, subject.fat, method=method, atlas=atlas, transform=atlas_transform
        ).mumap
        acf[method] = compare_mumaps(mu, subject.truth, body=subject.body, n_angles=30)["acf"]
    assert acf["hybrid"]["body"]["mean"] < 0.03
    assert acf["hybrid"]["near_bone"]["mean"] < acf["dixon"]["near_bone"]["mean"]
    assert acf["dixon"]["body"]["mean"] < 0.03


def test_pseudo_ct_with_true_transform_recovers_bone(subject: MRTruth) -> None:
    """The subject as its own atlas (identity transform): bone comes back exactly."""
    atlas = AtlasTemplates(subject.water, subject.fat, subject.truth)
    hybrid = mumap_from_mr(
        subject.water, subject.fat, method="hybrid", atlas=atlas, transform=Transform.identity()
    ).mumap.compute()
    dixon = mumap_from_mr(subject.water, subject.fat).mumap.compute()
    bone = subject.labels == BONE
    truth = subject.truth.compute()
    assert abs(bias(hybrid, truth, bone)) < abs(bias(dixon, truth, bone)) / 2


# ---- command line ---------------------------------------------------------------------------
def _mousereg(*args: object) -> Any:
    from click.testing import CliRunner

    from mousereg.cli import main

    return CliRunner().invoke(main, [str(a) for a in args])


def test_cli_mumap_ct_mr_compare(
    tmp_path: Path,
    phantom_pair: PhantomPair,
    subject: MRTruth,
    atlas_case: MRTruth,
    atlas_transform: Any,
) -> None:
    import json

    import SimpleITK as sitk

    from mousereg.io import read_volume, write_volume

    ct, water, fat, truth = (tmp_path / f"{n}.nii.gz" for n in ("ct", "water", "fat", "truth"))
    write_volume(phantom_pair.ct, ct)
    write_volume(subject.water, water)
    write_volume(subject.fat, fat)
    write_volume(subject.truth, truth)
    atlas_dir = tmp_path / "atlas"
    atlas_dir.mkdir()
    write_volume(atlas_case.water, atlas_dir / "water.nii.gz")
    write_volume(atlas_case.fat, atlas_dir / "fat.nii.gz")
    write_volume(atlas_case.truth, atlas_dir / "mu511.nii.gz")
    to_atlas = tmp_path / "to_atlas.h5"
    sitk.WriteTransform(atlas_transform, str(to_atlas))
    mu_ct, mu_mr, report = tmp_path / "mu_ct.nii.gz", tmp_path / "mu_mr.nii.gz", tmp_path / "r.json"

    out = _mousereg("mumap", "ct", ct, "-o", mu_ct, "--holder", "remove")
    assert out.exit_code == 0, out.output
    assert read_volume(mu_ct).dtype == np.float32
    assert json.loads((tmp_path / "mu_ct.json").read_text())["holder"] == "remove"

    out = _mousereg(
        "mumap", "mr", "--water", water, "--fat", fat, "-o", mu_mr,
        "--method", "hybrid", "--atlas", atlas_dir, "--transform", to_atlas,
    )  # fmt: skip
    assert out.exit_code == 0, out.output

    out = _mousereg("mumap", "compare", mu_mr, truth, "-o", report, "--angles", 12)
    assert out.exit_code == 0, out.output
    assert json.loads(report.read_text())["acf"]["body"]["mean"] < 0.03
    assert "ACF |A/B-1| body" in out.output

    # bad inputs end in one line and exit status 2
    out = _mousereg("mumap", "compare", mu_ct, truth, "-o", report)
    assert (out.exit_code, "different grids" in out.output) == (2, True)
    out = _mousereg("mumap", "compare", ct, mu_ct, "-o", report)
    assert (out.exit_code, "physical range" in out.output) == (2, True)
    out = _mousereg("mumap", "ct", mu_ct, "-o", tmp_path / "x.nii.gz")
    assert (out.exit_code, "not HU" in out.output) == (2, True)
    out = _mousereg("mumap", "mr", "--water", water, "--fat", ct, "-o", tmp_path / "x.nii.gz")
    assert (out.exit_code, "different grids" in out.output) == (2, True)


@pytest.mark.slow
def test_demo_row(tmp_path: Path, phantom_pair: PhantomPair) -> None:
    from mousereg.attenuation.phantom_eval import demo_row

    row = demo_row("sub-01", phantom_pair, tmp_path)
    assert abs(row["ct_soft_bias"]) < 0.02 and abs(row["ct_fat_bias"]) < 0.02
    assert abs(row["ct_bone_bias"]) < 0.10
    assert 0 < row["dixon_acf_mean"] < 0.03
    assert (tmp_path / "mu_ct.nii.gz").is_file() and (tmp_path / "mu_dixon.nii.gz").is_file()
